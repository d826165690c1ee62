"""What the service tells a client when something fails: what is wrong, without where things live.

Messages from Qdrant, the encoder or the generator may name absolute paths of the store or internal URLs (of
Qdrant, of an OpenAI-compatible endpoint); clients see them with those replaced by ``<path>`` and ``<url>``, and
cut to a readable length. The service log keeps the full text.
"""

from __future__ import annotations

import re

MAX_MESSAGE_CHARS = 300
URL = re.compile(r"\b[a-z][a-z0-9+.-]*://[^\s'\"<>]*[^\s'\"<>.,;:)]", re.IGNORECASE)
ABSOLUTE_PATH = re.compile(r"(?<![\w.:/~<>-])/[^\s'\"<>:/]+(?:/[^\s'\"<>:/]*)*")


def public_message(message: str) -> str:
    """``message`` without URLs or absolute paths, at most :data:`MAX_MESSAGE_CHARS` characters."""
    message = ABSOLUTE_PATH.sub("<path>", URL.sub("<url>", message))
    if len(message) > MAX_MESSAGE_CHARS:
        message = message[: MAX_MESSAGE_CHARS - 1].rstrip() + "…"
    return message
