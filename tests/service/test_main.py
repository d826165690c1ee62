"""``python -m mpretriever.service`` serves the app with the settings of the environment, through the library."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.conftest import REPO_ROOT

# Runs the module as ``python -m`` does, with uvicorn replaced by a print of what it was asked to serve.
PROBE = """
import runpy, sys
import mpretriever.service as service
service.run_server = lambda settings, host, port: print("serving", settings.collection, host, port)
runpy.run_module("mpretriever.service", run_name="__main__", alter_sys=True)
print("cli imported:", any(name.startswith("mpretriever.cli") for name in sys.modules))
"""


def test_python_m_mpretriever_service_serves_the_environments_settings_without_the_cli() -> None:
    environment = {**os.environ, "MPR_COLLECTION": "scifact", "MPR_HOST": "127.0.0.2", "MPR_PORT": "8123"}
    result = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=REPO_ROOT, env=environment, capture_output=True, text=True, timeout=300
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines()[-2:] == ["serving scifact 127.0.0.2 8123", "cli imported: False"]
