"""`ServerSource`: a server's template libraries as a source for ``uses:``, so that a client
deploying with ``--server`` can expand templates the server holds and ship a concrete spec."""

from __future__ import annotations

from typing import Any, Protocol

from orchestrion.errors import ClientError
from orchestrion.spec.templates.library import TemplateLibrary, library_from_data

__all__ = ["ServerSource"]


class _Templates(Protocol):
    """The part of `orchestrion.client.Client` this needs (typed apart: no import cycle)."""

    url: str

    def get_template_library(self, name: str, version: int) -> dict[str, Any]: ...

    def list_templates(self) -> list[dict[str, Any]]: ...


class ServerSource:
    """Libraries fetched from the server on first use (each at most once)."""

    def __init__(self, client: _Templates) -> None:
        self._client = client
        self._found: dict[tuple[str, int], TemplateLibrary | None] = {}

    def library(self, name: str, version: int) -> TemplateLibrary | None:
        """See `orchestrion.spec.templates.search.LibrarySource`."""
        key = (name, version)
        if key not in self._found:
            try:
                data = self._client.get_template_library(name, version)["library"]
            except ClientError as exc:
                if exc.status != 404:
                    raise
                self._found[key] = None
            else:
                source = f"{self._client.url} library {name}@{version}"
                self._found[key] = library_from_data(data, source=source)
        return self._found[key]

    def versions(self, name: str) -> list[int]:
        """See `orchestrion.spec.templates.search.LibrarySource`."""
        return [int(lib["version"]) for lib in self._client.list_templates() if lib["name"] == name]
