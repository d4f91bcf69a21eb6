"""Replace every known secret value in text with ``***``: logs, errors, results, API output.

A value is also looked for in the forms it takes when it passes through JSON
(``json.dumps`` escapes, with and without ``ensure_ascii``), Python's ``repr`` (``{x!r}``
in messages and tracebacks doubles backslashes), a URL (percent-encoding, upper
and lower case hex, ``+`` for spaces) and, for a multi-line value (a PEM key), each of its
lines alone, since logs arrive line by line.

All forms of all values go into one compiled regex of escaped alternatives, longest first.
Matches are found at *every* position (a lookahead), and overlapping matches are merged
before replacing, so two secrets that overlap ("abc", "bcd" in "abcd") leave no character
of either behind.

**Shortening.** Text that is cut (a log line at its maximum length, the tail of stderr kept
for an error, the head of unparsable output) must be masked *before* the cut: a cut through
a value leaves a fragment that no longer matches any form. `head` and `tail` mask, then cut.
Where the cut happened before the text could be seen whole (a line read from a pipe in
bounded chunks), `scrub_end` replaces a trailing fragment that begins a form, so no part of
a value survives at the edge.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from typing import Any, Final
from urllib.parse import quote, quote_plus

__all__ = ["MASK", "Masker"]

MASK: Final = "***"

_PERCENT_HEX = re.compile(r"%[0-9A-F]{2}")


class Masker:
    """Masks a fixed set of secret values; cheap to call, build a new one when values change.

    Values shorter than ``min_length`` are not masked (a one-character "secret" would blank
    every occurrence of that character); the default masks every non-empty value.
    """

    __slots__ = ("_forms", "_pattern", "_size")

    def __init__(self, values: Iterable[str] = (), *, min_length: int = 1) -> None:
        forms: set[str] = set()
        for value in values:
            forms.update(f for f in _forms(value) if len(f) >= max(min_length, 1))
        self._size = len(forms)
        self._forms = frozenset(forms)
        ordered = sorted(forms, key=lambda f: (-len(f), f))
        self._pattern = (
            re.compile("(?=(" + "|".join(map(re.escape, ordered)) + "))") if ordered else None
        )

    def __repr__(self) -> str:
        return f"Masker({self._size} forms)"

    @property
    def is_empty(self) -> bool:
        """True when there is nothing to mask, so callers can skip the work."""
        return self._pattern is None

    def mask(self, text: str) -> str:
        """``text`` with every occurrence of every form of every value replaced by ``***``."""
        if self._pattern is None or not text:
            return text
        spans: list[list[int]] = []
        for match in self._pattern.finditer(text):
            start, end = match.start(1), match.end(1)
            if spans and start <= spans[-1][1]:
                spans[-1][1] = max(spans[-1][1], end)
            else:
                spans.append([start, end])
        if not spans:
            return text
        out: list[str] = []
        pos = 0
        for start, end in spans:
            out += (text[pos:start], MASK)
            pos = end
        out.append(text[pos:])
        return "".join(out)

    def head(self, text: str, limit: int, *, marker: str = "") -> str:
        """The first `limit` characters of `text` masked (``marker`` appended when cut): masked
        whole first, so the cut cannot split a value into a fragment the masker misses."""
        masked = self.mask(text)
        return masked if len(masked) <= limit else masked[: max(limit, 0)] + marker

    def tail(self, text: str, limit: int, *, marker: str = "") -> str:
        """The last `limit` characters of `text` masked (``marker`` prepended when cut), masked
        whole before the cut as in `head`."""
        masked = self.mask(text)
        if len(masked) <= limit:
            return masked
        return marker + (masked[-limit:] if limit > 0 else "")

    def scrub_end(self, text: str) -> str:
        """`text`, masked, with a trailing fragment that begins any form replaced by ``***``.

        For text that was cut before the masker could see it whole: its end may hold the
        first characters of a value whose rest was dropped. Any such fragment, however
        short, goes (a cut edge may lose a few innocent characters; it never keeps a piece
        of a value)."""
        masked = self.mask(text)
        if self._pattern is None or not masked:
            return masked
        cut = len(masked)
        for form in self._forms:
            cut = min(cut, _fragment_start(masked, form))
        return masked if cut == len(masked) else masked[:cut] + MASK

    def mask_data(self, data: Any) -> Any:
        """A copy of JSON-like ``data`` with every string (keys included) masked."""
        if self._pattern is None:
            return data
        if isinstance(data, str):
            return self.mask(data)
        if isinstance(data, dict):
            return {self.mask_data(k): self.mask_data(v) for k, v in data.items()}
        if isinstance(data, list | tuple):
            return [self.mask_data(item) for item in data]
        return data


def _fragment_start(text: str, form: str) -> int:
    """Where the longest suffix of `text` that is a proper prefix of `form` starts;
    ``len(text)`` when there is none."""
    first = form[0]
    pos = text.find(first, max(len(text) - len(form) + 1, 0))
    while pos != -1:
        if form.startswith(text[pos:]):
            return pos
        pos = text.find(first, pos + 1)
    return len(text)


def _forms(value: str) -> set[str]:
    """The value as it may appear after JSON or URL encoding, and its lines."""
    if not value:
        return set()
    pieces = {value}
    pieces.update(line.strip() for line in value.splitlines() if line.strip())
    forms: set[str] = set()
    for piece in pieces:
        forms.add(piece)
        forms.add(json.dumps(piece)[1:-1])
        forms.add(json.dumps(piece, ensure_ascii=False)[1:-1])
        forms.add(repr(piece)[1:-1])
        forms.add(ascii(piece)[1:-1])
        for encoded in (quote(piece, safe=""), quote(piece), quote_plus(piece)):
            forms.add(encoded)
            forms.add(_PERCENT_HEX.sub(lambda m: m.group(0).lower(), encoded))
    forms.discard("")
    return forms
