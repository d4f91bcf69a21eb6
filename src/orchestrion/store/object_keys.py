"""Keys of new objects in a result store."""

from __future__ import annotations

import uuid

__all__ = ["new_key"]


def new_key(name: str) -> str:
    """A fresh key: a two-level fan-out so that no folder grows to millions of entries."""
    token = uuid.uuid4().hex
    safe = "".join(c if c.isalnum() or c in "._-" else "_" for c in name)[:80] or "object"
    return f"{token[:2]}/{token[2:4]}/{token}-{safe}"
