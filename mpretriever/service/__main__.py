"""``python -m mpretriever.service [options]`` is ``mpr serve [options]``."""

import sys

from mpretriever.cli.app import main

sys.argv = ["mpr", "serve", *sys.argv[1:]]
main()
