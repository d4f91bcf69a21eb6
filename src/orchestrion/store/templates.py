"""`TemplateStore`: template libraries held by a server, so that YAML workflows it loads
resolve ``uses:`` without library files (``docs/templates.md``)."""

from __future__ import annotations

from typing import Literal, Protocol

from orchestrion.store.template_records import StoredLibrary

__all__ = ["PushOutcome", "TemplateStore"]

#: What a push did: stored it, found the same content already there, or found other
#: content under that version (refused: a library version means one thing for ever).
PushOutcome = Literal["created", "unchanged", "conflict"]


class TemplateStore(Protocol):
    """Library versions by (name, version), written once."""

    def push_library(self, library: StoredLibrary, *, now: float) -> PushOutcome:
        """Store a library version unless one exists; a new one writes an event."""
        ...

    def get_library(self, name: str, version: int) -> StoredLibrary | None:
        """One library version, or None."""
        ...

    def list_libraries(self) -> list[StoredLibrary]:
        """Every library version, by name and version."""
        ...
