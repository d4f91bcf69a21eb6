"""What goes into an audit record's parameters: the request's, with secrets masked.

A key that names a credential (password, token, secret, value of a secret, key, …) has its
value replaced by ``***`` at any depth; long strings and big structures are cut so that one
request cannot flood the log. The audit log is append-only, so what is written here stays.
"""

from __future__ import annotations

import re
from typing import Any, Final

__all__ = ["MASK", "printable", "redact"]

MASK: Final = "***"
_SENSITIVE: Final = re.compile(
    r"pass(word|wd|phrase)?|secret|token|api[_-]?key|private|credential|authorization"
    r"|cookie|session|csrf|^value$",
    re.IGNORECASE,
)
_MAX_STRING: Final = 500
_MAX_ITEMS: Final = 50
_MAX_DEPTH: Final = 5


def printable(text: str) -> str:
    """`text` with NUL bytes spelled out: PostgreSQL's text type cannot hold them, and an
    audit record must not be lost because a request carried one."""
    return text.replace("\x00", "\\x00")


def redact(data: Any, *, depth: int = 0) -> Any:
    """A copy of ``data`` with sensitive keys masked and sizes capped."""
    if depth > _MAX_DEPTH:
        return "…"
    if isinstance(data, dict):
        out: dict[str, Any] = {}
        for i, (key, value) in enumerate(data.items()):
            if i >= _MAX_ITEMS:
                out["…"] = f"{len(data) - _MAX_ITEMS} more"
                break
            name = str(key)[:100]
            out[name] = MASK if _SENSITIVE.search(name) else redact(value, depth=depth + 1)
        return out
    if isinstance(data, list | tuple):
        items = [redact(v, depth=depth + 1) for v in list(data)[:_MAX_ITEMS]]
        return items + ([f"… {len(data) - _MAX_ITEMS} more"] if len(data) > _MAX_ITEMS else [])
    if isinstance(data, str):
        data = printable(data)
        return data if len(data) <= _MAX_STRING else data[:_MAX_STRING] + "…"
    if data is None or isinstance(data, bool | int | float):
        return data
    return redact(str(data), depth=depth + 1)
