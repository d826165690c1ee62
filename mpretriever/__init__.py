"""mpretriever: dense retrievers trained with multiple positive passages."""

import os

# Haystack sends usage events unless this variable says otherwise, and reads it once, when it is first imported.
# Every entry point (``mpr``, ``python -m mpretriever.service``, library use) imports this package before Haystack,
# so nothing leaves the machine unless the user has set the variable themselves.
os.environ.setdefault("HAYSTACK_TELEMETRY_ENABLED", "False")

__version__ = "0.1.0"
