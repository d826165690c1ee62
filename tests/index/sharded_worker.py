"""What torchrun runs in the sharded-indexing tests: ``mpr index`` in rounds of 16 passages (so that a run has
several), and with ``MPR_TEST_KILL_RANK`` set, that process kills itself (SIGKILL, as a crash or an OOM kill would)
as it starts encoding its second round."""

from __future__ import annotations

import os
import signal
import sys

from mpretriever.cli.app import main
from mpretriever.index import sharded
from mpretriever.model.bi_encoder import BiEncoder

sharded.CHUNK_SIZE = 16

if os.environ.get("MPR_TEST_KILL_RANK") == os.environ.get("RANK"):
    encode = BiEncoder.encode
    calls = []

    def encode_then_die(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        calls.append(1)
        if len(calls) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
        return encode(self, *args, **kwargs)

    BiEncoder.encode = encode_then_die  # type: ignore[method-assign]

sys.argv = ["mpr", *sys.argv[1:]]
main()
