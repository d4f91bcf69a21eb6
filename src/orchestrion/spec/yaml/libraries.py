"""Library files: folders of them searched for ``uses:``, and their templates checked by
translating each body as a YAML task, so a broken body is reported against the library file
rather than later against each workflow that uses it.

A folder holds ``NAME@VERSION.yaml`` files (``.yml`` too) so that versions live side by side;
a plain ``NAME.yaml`` is found too, at the version its ``version`` field gives. A file whose
name and ``version`` field disagree is an error rather than a guess.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from orchestrion.errors import SpecError
from orchestrion.spec.templates.expand import fill_task
from orchestrion.spec.templates.library import TaskTemplate, TemplateLibrary, library_from_data
from orchestrion.spec.templates.search import ChainSource, LibrarySource
from orchestrion.spec.yaml.loader import load_yaml_data
from orchestrion.spec.yaml.reader import decode_text, read_document

__all__ = [
    "ENV_VAR",
    "DirectorySource",
    "check_library",
    "default_source",
    "load_library_file",
    "load_library_text",
    "sample_values",
    "translate_task",
]

#: Folders searched for libraries, separated like PATH (``os.pathsep``).
ENV_VAR: Final = "ORCHESTRION_TEMPLATE_PATH"
_FILE: Final = re.compile(r"([A-Za-z_][A-Za-z0-9_-]*)(?:@([1-9][0-9]*))?\.ya?ml")
_MAX_BYTES: Final = 1_048_576


class DirectorySource:
    """The library files of one folder, read on first use of each library name."""

    def __init__(self, folder: str | os.PathLike[str]) -> None:
        self.folder = Path(folder)
        self._cache: dict[str, dict[int, TemplateLibrary]] = {}
        self._one: dict[tuple[str, int], TemplateLibrary | None] = {}

    def library(self, name: str, version: int) -> TemplateLibrary | None:
        """See `LibrarySource`. Only the files that may hold `version` are read, so a
        broken file of another version does not stop this one being used."""
        key = (name, version)
        if key not in self._one:
            found = None
            for file, stated in self._named(name):
                if stated is None or int(stated) == version:
                    lib = self._read(file, name, stated)
                    if lib.version == version:
                        found = lib
            self._one[key] = found
        return self._one[key]

    def versions(self, name: str) -> list[int]:
        """See `LibrarySource`."""
        return sorted(self._versions(name))

    def all(self) -> list[TemplateLibrary]:
        """Every library in the folder (``orchestrion templates list``)."""
        names = {m.group(1) for m in map(_FILE.fullmatch, self._files()) if m}
        return [lib for name in sorted(names) for _, lib in sorted(self._versions(name).items())]

    def _files(self) -> list[str]:
        try:
            return sorted(os.listdir(self.folder))
        except OSError:
            return []

    def _named(self, name: str) -> list[tuple[str, str | None]]:
        """The files of library `name`, each with the version its name states (if any)."""
        out = []
        for file in self._files():
            match = _FILE.fullmatch(file)
            if match is not None and match.group(1) == name:
                out.append((file, match.group(2)))
        return out

    def _read(self, file: str, name: str, stated: str | None) -> TemplateLibrary:
        lib = load_library_file(self.folder / file)
        _check_file_name(lib, name, stated, {})
        return lib

    def _versions(self, name: str) -> dict[int, TemplateLibrary]:
        if name not in self._cache:
            found: dict[int, TemplateLibrary] = {}
            for file, stated in self._named(name):
                lib = self._read(file, name, stated)
                _check_file_name(lib, name, stated, found)
                found[lib.version] = lib
            self._cache[name] = found
        return self._cache[name]


def _check_file_name(
    lib: TemplateLibrary, name: str, version: str | None, found: dict[int, TemplateLibrary]
) -> None:
    if lib.name != name:
        raise SpecError(
            f"the file names library {name!r} but holds {lib.name!r}", source=lib.source
        )
    if version is not None and int(version) != lib.version:
        raise SpecError(
            f"the file names version {version} but its 'version' is {lib.version}",
            source=lib.source,
            path="version",
        )
    if lib.version in found:
        raise SpecError(
            f"version {lib.version} of library {name!r} is also in {found[lib.version].source}",
            source=lib.source,
        )


def default_source(
    workflow_file: str | os.PathLike[str] | None,
    dirs: Sequence[str | os.PathLike[str]] = (),
    *,
    extra: Sequence[LibrarySource] = (),
) -> ChainSource:
    """The search path, in precedence order: `dirs` (``--templates``), the folders of
    ``ORCHESTRION_TEMPLATE_PATH``, the ``templates/`` folder beside `workflow_file`, then
    `extra` (a server's stored libraries)."""
    folders = [Path(d) for d in dirs]
    folders += [Path(d) for d in os.environ.get(ENV_VAR, "").split(os.pathsep) if d]
    if workflow_file is not None:
        folders.append(Path(workflow_file).resolve().parent / "templates")
    sources: list[LibrarySource] = [DirectorySource(f) for f in folders]
    return ChainSource([*sources, *extra])


def load_library_file(path: str | os.PathLike[str]) -> TemplateLibrary:
    """A library file, parsed and its templates checked.

    Raises:
        SpecError: naming the file, the field and the problem.
    """
    source = os.fspath(path)
    try:
        with open(source, "rb") as handle:
            data = handle.read(_MAX_BYTES + 1)
    except OSError as exc:
        raise SpecError(f"cannot read the file: {exc.strerror or exc}", source=source) from None
    return load_library_text(data, source=source)


def load_library_text(text: str | bytes, *, source: str = "<library>") -> TemplateLibrary:
    """A library from YAML (or JSON) text, parsed safely and its templates checked."""
    data, _, _ = read_document(decode_text(text, source, _MAX_BYTES), source, 50)
    library = library_from_data(data, source=source)
    check_library(library)
    return library


#: A stand-in value per param type, used to check a body whose params have no default.
_SAMPLES: Final[dict[str, Any]] = {
    "string": "sample",
    "integer": 1,
    "number": 1,
    "boolean": False,
    "array": [],
    "object": {},
    "date": "2026-01-01",
    "datetime": "2026-01-01T00:00:00",
}


def sample_values(template: TaskTemplate) -> dict[str, Any]:
    """A value for every param: its default, its first enum value, or a stand-in of its type."""
    out: dict[str, Any] = {}
    for name, param in template.params.items():
        if param.default is not None:
            out[name] = param.default
        elif param.enum:
            out[name] = param.enum[0]
        else:
            out[name] = _SAMPLES[param.type.value]
    return out


def check_library(library: TemplateLibrary) -> None:
    """Every template's body, filled with sample values, must make a valid task.

    Raises:
        SpecError: naming the library's source, the template and the problem.
    """
    for name, template in library.templates.items():
        where = f"templates.{name}.task"

        def fail(message: str, where: str = where) -> SpecError:
            return SpecError(message, source=library.source, path=where)

        if "uses" in template.task or "with" in template.task:
            raise fail("a template cannot use another template")
        body = fill_task(template.task, sample_values(template), fail)
        try:
            load_yaml_data({"name": "template_check", "tasks": {name: body}}, source="")
        except SpecError as exc:
            inner = (exc.path or "").removeprefix(f"tasks.{name}").lstrip(".")
            raise SpecError(
                f"template {name!r} does not make a valid task: {exc.detail}",
                source=library.source,
                path=f"{where}.{inner}".rstrip("."),
            ) from None


def translate_task(
    workflow: str,
    params: dict[str, dict[str, Any]],
    names: list[str],
    name: str,
    body: dict[str, Any],
) -> dict[str, Any]:
    """A task body in the YAML shape as the spec's task fields, checked as part of a
    workflow with `params` and (stand-in) tasks `names`: how a template used from Python
    gets the same translation as one used from YAML."""
    tasks: dict[str, Any] = {other: {"shell": ["true"]} for other in names if other != name}
    tasks[name] = body
    spec = load_yaml_data({"name": workflow, "params": params, "tasks": tasks}, source="")
    found = next(task for task in spec.tasks if task.name == name)
    return {name: getattr(found, name) for name in found.field_names()}
