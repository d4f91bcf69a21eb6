"""JSON as the store keeps it: canonical text in TEXT columns (parameters, results, items,
event data, bindings), on both dialects."""

from __future__ import annotations

import json
from typing import Any

__all__ = ["dumps", "loads"]


#: Built once: `json.dumps` with any option builds an encoder on every call.
_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode


def dumps(value: Any) -> str:
    """A value as the canonical JSON text the store keeps (compact, UTF-8 as is)."""
    return _ENCODE(value)


def loads(text: str | None) -> Any:
    """A JSON column's value (None for NULL)."""
    return None if text is None else json.loads(text)
