"""The grading prompt: a Jinja template (as Haystack's prompt builders use) with the variables ``query`` and
``passage``, rendered once per judged pair.

The default, :data:`DEFAULT_TEMPLATE`, asks for a grade on the 0-3 scale of UMBRELA (TREC 2024 RAG): 0 unrelated,
1 related but does not answer, 2 partly answers, 3 answers exactly. A user's own template (``--prompt FILE``)
must use both variables and end where the grade is to be written; the judges add nothing but the answer's
leading space. The template's text is hashed into every judgement, so a changed prompt is never mistaken for
the one that produced earlier judgements.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from jinja2 import Environment, StrictUndefined, TemplateSyntaxError, meta

from mpretriever.data.errors import DataFormatError, not_utf8

DEFAULT_TEMPLATE = Path(__file__).with_name("umbrela.jinja")
VARIABLES = frozenset({"query", "passage"})
GRADES = (0, 1, 2, 3)


@dataclass(frozen=True)
class GradingPrompt:
    """A parsed grading template: :meth:`render` fills it, :attr:`sha256` identifies it."""

    text: str
    source: str = "<string>"

    def __post_init__(self) -> None:
        environment = Environment(undefined=StrictUndefined, keep_trailing_newline=False, autoescape=False)
        try:
            parsed = environment.parse(self.text)
        except TemplateSyntaxError as error:
            raise DataFormatError(
                Path(self.source), f"invalid Jinja template: {error.message}", line=error.lineno
            ) from None
        used = meta.find_undeclared_variables(parsed)
        missing, unknown = sorted(VARIABLES - used), sorted(used - VARIABLES)
        if missing or unknown:
            problems = [f"it must use {{{{ {name} }}}}" for name in missing]
            problems += [f"unknown variable {name!r} (only query and passage are given)" for name in unknown]
            raise DataFormatError(Path(self.source), "grading template: " + "; ".join(problems))
        object.__setattr__(self, "_template", environment.from_string(self.text))

    @classmethod
    def from_file(cls, path: str | Path | None = None) -> GradingPrompt:
        """Read a template file (default: the packaged UMBRELA-style prompt)."""
        path = Path(path) if path is not None else DEFAULT_TEMPLATE
        try:
            text = path.read_bytes().decode("utf-8")
        except FileNotFoundError:
            raise DataFormatError(path, "prompt template not found") from None
        except UnicodeDecodeError as error:
            raise not_utf8(path, error) from None
        return cls(text=text, source=str(path))

    @property
    def sha256(self) -> str:
        return hashlib.sha256(self.text.encode("utf-8")).hexdigest()

    def render(self, query: str, passage: str) -> str:
        """The prompt for one pair, without trailing whitespace (the judge adds the answer's leading space)."""
        return self._template.render(query=query, passage=passage).rstrip()  # type: ignore[attr-defined]
