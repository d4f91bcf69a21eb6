"""Where template libraries are found: the `LibrarySource` seam, libraries held in memory (a
Python module's, a server's) and a chain of sources searched in order. Folders of library
files are `orchestrion.spec.yaml.libraries.DirectorySource`.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Protocol

from orchestrion.spec.templates.library import TemplateLibrary

__all__ = ["ChainSource", "LibrarySource", "MemorySource", "extra_sources", "loading_with"]


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


#: Sources the loader adds for this load (a server's or database's libraries): Python
#: workflows are built inside `load_workflows`, which sets this around the build, so a
#: ``use()`` made at import time still finds what the deploy target holds.
_EXTRA: ContextVar[tuple[LibrarySource, ...]] = ContextVar("template_sources", default=())


def extra_sources() -> tuple[LibrarySource, ...]:
    """The sources `loading_with` set for the current load (none outside one)."""
    return _EXTRA.get()


@contextmanager
def loading_with(sources: Sequence[LibrarySource]) -> Iterator[None]:
    """Make `sources` the extra sources of the loads in the block."""
    token = _EXTRA.set(tuple(sources))
    try:
        yield
    finally:
        _EXTRA.reset(token)
