"""Where template libraries are found: the `LibrarySource` seam, libraries held in memory (a
Python module's, a server's) and a chain of sources searched in order. Folders of library
files are `orchestrion.spec.yaml.libraries.DirectorySource`.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Protocol

from orchestrion.spec.templates.library import TemplateLibrary

__all__ = ["ChainSource", "LibrarySource", "MemorySource"]


class LibrarySource(Protocol):
    """Where a workflow's ``uses:`` are looked up."""

    def library(self, name: str, version: int) -> TemplateLibrary | None:
        """Library `name` at `version`, or None when this source does not hold it."""
        ...

    def versions(self, name: str) -> list[int]:
        """The versions of library `name` this source holds (for error messages)."""
        ...


class MemorySource:
    """Libraries already loaded: built in Python, or read from a server's store."""

    def __init__(self, libraries: Iterable[TemplateLibrary] = ()) -> None:
        self._by_key = {(lib.name, lib.version): lib for lib in libraries}

    def library(self, name: str, version: int) -> TemplateLibrary | None:
        """See `LibrarySource`."""
        return self._by_key.get((name, version))

    def versions(self, name: str) -> list[int]:
        """See `LibrarySource`."""
        return sorted(v for n, v in self._by_key if n == name)


class ChainSource:
    """Sources searched in order: the first that holds the requested version wins."""

    def __init__(self, sources: Sequence[LibrarySource]) -> None:
        self.sources = list(sources)

    def library(self, name: str, version: int) -> TemplateLibrary | None:
        """See `LibrarySource`."""
        for source in self.sources:
            found = source.library(name, version)
            if found is not None:
                return found
        return None

    def versions(self, name: str) -> list[int]:
        """See `LibrarySource`."""
        return sorted({v for source in self.sources for v in source.versions(name)})
