"""The record of a template library held by a server (``docs/templates.md``).

Pure (stdlib only)."""

from __future__ import annotations

from orchestrion.store.record import Record

__all__ = ["StoredLibrary"]


class StoredLibrary(Record, frozen=True, kw_only=True):
    """One version of a library, as pushed: its JSON body never changes."""

    name: str
    version: int
    #: ``sha256:...`` of the library's canonical JSON.
    digest: str
    description: str
    #: The library as JSON text (``orchestrion.spec.templates.library.library_from_data``).
    body: str
    pushed_by: str | None
    pushed_at: float
