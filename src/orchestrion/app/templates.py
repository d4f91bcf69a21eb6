"""`App.templates`: template libraries held by the server (``docs/templates.md``).

A pushed library is checked like a library file (every template body must make a valid
task) and kept per (name, version), once: other content under a version that exists is
refused, so a version means one thing. YAML workflows the server loads resolve ``uses:``
against these (`source`) after the local search path; a client deploying with
``--server`` expands its templates itself and ships a concrete spec.
"""

from __future__ import annotations

import json
from typing import Any

from orchestrion.app.core import Facet
from orchestrion.errors import AlreadyExists, NotFound, SpecError
from orchestrion.spec.templates.library import TemplateLibrary, canonical_json, library_from_data
from orchestrion.spec.templates.search import LibrarySource
from orchestrion.store.template_records import StoredLibrary
from orchestrion.store.templates import PushOutcome, TemplateStore

__all__ = ["StoredSource", "Templates"]


class Templates(Facet):
    """Push, list and read the server's template libraries."""

    def push(self, library: TemplateLibrary | str | bytes | dict[str, Any]) -> PushOutcome:
        """Store a library version (a parsed library, its YAML or JSON text, or its data);
        "unchanged" when the same content is there already. `SpecError` names a bad
        library; `AlreadyExists` other content under its version."""
        from orchestrion.spec.yaml.libraries import check_library, load_library_text

        if isinstance(library, str | bytes):
            library = load_library_text(library, source="<pushed library>")
        elif isinstance(library, dict):
            library = library_from_data(library, source="<pushed library>")
            check_library(library)
        lib = library
        with self._core.audited("template.push", f"template library {lib.name}@{lib.version}"):
            actor = self._core.actor
            record = StoredLibrary(
                name=lib.name,
                version=lib.version,
                digest=lib.digest,
                description=lib.description,
                body=canonical_json(lib.to_data()),
                pushed_by=f"{actor.kind}:{actor.name}" if actor else None,
                pushed_at=self.clock.now(),
            )
            outcome = self.store.templates.push_library(record, now=self.clock.now())
            if outcome == "conflict":
                raise AlreadyExists(
                    f"library {lib.name}@{lib.version} is stored with other content; a"
                    f" version never changes: push it as version {lib.version + 1}"
                )
            return outcome

    def list_libraries(self) -> list[StoredLibrary]:
        """Every stored library version, by name and version."""
        return self.store.templates.list_libraries()

    def library(self, name: str, version: int) -> TemplateLibrary:
        """One stored library version, or `NotFound`."""
        found = self.store.templates.get_library(name, version)
        if found is None:
            raise NotFound(f"template library {name}@{version} is not stored on this server")
        return parsed(found)

    def source(self) -> StoredSource:
        """The stored libraries, as a source for ``uses:``."""
        return StoredSource(self.store.templates)


def parsed(stored: StoredLibrary) -> TemplateLibrary:
    """A stored row as a library (it was checked when pushed)."""
    source = f"<server library {stored.name}@{stored.version}>"
    try:
        return library_from_data(json.loads(stored.body), source=source)
    except (ValueError, SpecError) as exc:  # a row written by hand: say so, do not crash
        raise SpecError(f"stored library is unreadable: {exc}", source=source) from None


class StoredSource(LibrarySource):
    """`LibrarySource` over a `TemplateStore`, read on demand."""

    def __init__(self, store: TemplateStore) -> None:
        self._store = store

    def library(self, name: str, version: int) -> TemplateLibrary | None:
        """See `LibrarySource`."""
        found = self._store.get_library(name, version)
        return parsed(found) if found is not None else None

    def versions(self, name: str) -> list[int]:
        """See `LibrarySource`."""
        return [lib.version for lib in self._store.list_libraries() if lib.name == name]
