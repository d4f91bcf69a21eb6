"""A workflow's code as part of its version: the project-local Python files it runs.

A `CodeBundle` holds the workflow file (or, for YAML, the files its ``python:`` references
name) and every project-local module they import, found by reading their ``import``
statements, never by running them. Its digest goes into the spec (``WorkflowSpec.code``), so
the version hash covers the source; the store keeps the files content-addressed; workers
import them from that snapshot, so a run executes the code it started with.

Imports resolve the way Python resolves them for a script: against the workflow file's
folder first, then the project root (the file's folder unless configured). Those folders are
the bundle's `paths`, relative to the root. A name that resolves to no file under them (the
standard library, installed packages, ``orchestrion`` itself) is not bundled: it comes from
the worker's environment. Imports spelled at run time (``importlib.import_module(name)``)
and data files read through ``__file__`` are not seen; the docs say so.
"""

from __future__ import annotations

import ast
import hashlib
import json
import os
import sys
from collections.abc import Iterable, Mapping
from functools import cached_property
from pathlib import Path, PurePosixPath
from typing import Any

import msgspec

from orchestrion.errors import SpecError

__all__ = [
    "MAX_BUNDLE_BYTES",
    "MAX_BUNDLE_FILES",
    "CodeBundle",
    "bundle_python_file",
    "bundle_references",
    "project_root",
    "ref_module",
]

#: Limits on one version's code: a project that needs more is bundling what it should
#: install as a package.
MAX_BUNDLE_FILES = 500
MAX_BUNDLE_BYTES = 8 * 1024 * 1024

#: Names never taken from the project even if a file of that name is there: Orchestrion
#: itself and the standard library, as Python would find them first once imported.
_NEVER_LOCAL = frozenset({"orchestrion", "__future__", *sys.stdlib_module_names})


class CodeBundle(msgspec.Struct, frozen=True, eq=False, dict=True):
    """Python source files by path relative to the project root (POSIX separators), and the
    folders imports resolve against (`paths`, in order; ``""`` is the root itself)."""

    files: Mapping[str, bytes]
    paths: tuple[str, ...]

    @cached_property  # in the instance's __dict__ (``dict=True``)
    def digest(self) -> str:
        """SHA-256 of the manifest (each file's path and content hash) and the paths: two
        bundles with the same digest import exactly the same code."""
        canonical = json.dumps(
            {"files": self.manifest(), "paths": list(self.paths)},
            sort_keys=True,
            separators=(",", ":"),
        )
        return hashlib.sha256(canonical.encode()).hexdigest()

    def manifest(self) -> dict[str, str]:
        """Each file's path and the SHA-256 of its content (how the store keeps it)."""
        return {path: hashlib.sha256(data).hexdigest() for path, data in self.files.items()}

    @property
    def size(self) -> int:
        """Total bytes of source."""
        return sum(len(data) for data in self.files.values())

    def to_wire(self) -> dict[str, Any]:
        """JSON for the API: paths and each file's text."""
        return {
            "paths": list(self.paths),
            "files": {path: data.decode("utf-8") for path, data in sorted(self.files.items())},
        }

    @classmethod
    def from_wire(cls, data: Any) -> CodeBundle:
        """A bundle from `to_wire`'s JSON, every path and limit checked (`SpecError`)."""
        if not isinstance(data, dict) or set(data) != {"paths", "files"}:
            raise SpecError("code must be an object with exactly 'paths' and 'files'")
        paths, files = data["paths"], data["files"]
        if not isinstance(paths, list) or not paths or len(paths) > 16:
            raise SpecError("code.paths must be a list of 1 to 16 folders")
        if not isinstance(files, dict) or not files:
            raise SpecError("code.files must be a non-empty object of path: source text")
        for path in paths:
            if not isinstance(path, str) or (path and not _safe_relative(path, suffix=None)):
                raise SpecError(f"code.paths: bad folder {path!r}")
        decoded: dict[str, bytes] = {}
        for path, text in files.items():
            if not _safe_relative(path, suffix=".py"):
                raise SpecError(f"code.files: bad path {path!r}: a relative path to a .py file")
            if not isinstance(text, str):
                raise SpecError(f"code.files[{path!r}] must be the file's text")
            decoded[path] = text.encode("utf-8")
        bundle = cls(decoded, tuple(paths))
        bundle.check_limits()
        return bundle

    def check_limits(self) -> None:
        """`SpecError` when the bundle is larger than a version's code may be."""
        if len(self.files) > MAX_BUNDLE_FILES:
            raise SpecError(
                f"the workflow's code has {len(self.files)} files; at most"
                f" {MAX_BUNDLE_FILES} project-local modules may be bundled (install the rest as"
                " a package on the workers)"
            )
        if self.size > MAX_BUNDLE_BYTES:
            raise SpecError(
                f"the workflow's code is {self.size} bytes; at most {MAX_BUNDLE_BYTES} may be"
                " bundled (install large libraries as a package on the workers)"
            )


def _safe_relative(path: Any, *, suffix: str | None) -> bool:
    """A relative POSIX path inside its root: no ``..``, no absolute or empty parts."""
    if not isinstance(path, str) or not path or len(path) > 500 or "\\" in path:
        return False
    parts = PurePosixPath(path).parts
    if not parts or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        return False
    if any(not p.isprintable() for p in parts):
        return False
    return suffix is None or path.endswith(suffix)


# ---------------------------------------------------------------------------- building


def project_root(file: Path, configured: str | os.PathLike[str] | None = None) -> Path:
    """The project root of a workflow file: `configured` (or ``ORCHESTRION_PROJECT_ROOT``),
    which must contain the file, else the file's own folder."""
    chosen = configured if configured is not None else os.environ.get("ORCHESTRION_PROJECT_ROOT")
    folder = file.resolve().parent
    if not chosen:
        return folder
    root = Path(chosen).resolve()
    if not folder.is_relative_to(root):
        raise SpecError(
            f"the workflow file is not inside the project root {root} (ORCHESTRION_PROJECT_ROOT)",
            source=str(file),
        )
    return root


def bundle_python_file(file: Path, root: Path | None = None) -> CodeBundle:
    """The bundle of a Python workflow file: it, and the project-local modules it imports."""
    file = file.resolve()
    root = project_root(file) if root is None else root
    paths = _paths(root, [file.parent])
    return _Collector(root, paths).collect([file])


def bundle_references(
    refs: Iterable[str], file: Path, root: Path | None = None
) -> CodeBundle | None:
    """The bundle of a YAML workflow's ``python:`` references (`file` is the YAML file):
    the project-local modules they name and what those import; None when none is local
    (every reference is to an installed module, or there is none)."""
    file = file.resolve()
    root = project_root(file) if root is None else root
    folder = file.parent
    entries: list[Path] = []
    extra: list[Path] = []
    for ref in refs:
        module = ref_module(ref)
        if module is None:
            continue
        if module.endswith(".py"):
            target = (folder / module).resolve()
            if target.is_file() and target.is_relative_to(root):
                entries.append(target)
                extra.append(target.parent)
            continue
        found = _Collector(root, _paths(root, [folder])).resolve_absolute(module)
        entries.extend(found)
    if not entries:
        return None
    paths = _paths(root, [folder, *extra])
    return _Collector(root, paths).collect(entries)


def ref_module(ref: str) -> str | None:
    """The module part of a ``module:qualname`` or ``path.py:qualname`` reference."""
    module, sep, qualname = ref.partition(":")
    return module if sep and module and qualname else None


def _paths(root: Path, folders: Iterable[Path]) -> tuple[str, ...]:
    """Import folders relative to `root`, in order, without repeats, the root last."""
    out: list[str] = []
    for folder in [*folders, root]:
        rel = folder.resolve().relative_to(root).as_posix()
        rel = "" if rel == "." else rel
        if rel not in out:
            out.append(rel)
    return tuple(out)


class _Collector:
    """Follows import statements from entry files to every project-local file."""

    def __init__(self, root: Path, paths: tuple[str, ...]) -> None:
        self.root = root
        self.paths = paths
        self.bases = [root / p if p else root for p in paths]

    def collect(self, entries: Iterable[Path]) -> CodeBundle:
        files: dict[str, bytes] = {}
        pending = [e.resolve() for e in entries]
        total = 0
        while pending:
            file = pending.pop()
            rel = file.relative_to(self.root).as_posix()
            if rel in files:
                continue
            data = file.read_bytes()
            files[rel] = data
            total += len(data)
            if len(files) > MAX_BUNDLE_FILES or total > MAX_BUNDLE_BYTES:
                CodeBundle(files, self.paths).check_limits()
            pending.extend(self._imports_of(file, data))
        return CodeBundle(files, self.paths)

    def _imports_of(self, file: Path, data: bytes) -> list[Path]:
        try:
            tree = ast.parse(data, filename=str(file))
        except SyntaxError as exc:
            raise SpecError(
                f"syntax error: {exc.msg}", source=str(file), line=exc.lineno, column=exc.offset
            ) from None
        found: list[Path] = []
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                for alias in node.names:
                    found += self.resolve_absolute(alias.name)
            elif isinstance(node, ast.ImportFrom):
                names = [a.name for a in node.names if a.name != "*"]
                if node.level:
                    found += self._resolve_relative(file, node.level, node.module, names)
                elif node.module:
                    found += self.resolve_absolute(node.module, names)
        return found

    def resolve_absolute(self, dotted: str, names: Iterable[str] = ()) -> list[Path]:
        """The project files an absolute import loads: the module, its packages'
        ``__init__`` files and, for ``from x import y``, a submodule ``y``."""
        parts = dotted.split(".")
        if parts[0] in _NEVER_LOCAL:
            return []
        for base in self.bases:
            found = _walk(base, parts, names)
            if found:
                return [f for f in found if f.resolve().is_relative_to(self.root)]
        return []

    def _resolve_relative(
        self, file: Path, level: int, module: str | None, names: list[str]
    ) -> list[Path]:
        folder = file.parent
        for _ in range(level - 1):
            folder = folder.parent
        if not folder.is_relative_to(self.root):
            return []
        if module is None:  # from . import a, b: each a module or a name of __init__
            found = [f for n in names for f in _walk(folder, [n], ())]
            init = folder / "__init__.py"
            return found + ([init] if init.is_file() else [])
        return [f for f in _walk(folder, module.split("."), names) if f.is_relative_to(self.root)]


def _walk(base: Path, parts: list[str], names: Iterable[str]) -> list[Path]:
    """The files that importing ``parts`` (then ``names`` from it) loads from `base`, or []
    when the module is not there. A folder without ``__init__.py`` counts only if the
    module is found inside it (Python prefers a regular package elsewhere on the path)."""
    found: list[Path] = []
    here = base
    for i, part in enumerate(parts):
        if not part.isidentifier():
            return []
        candidate = here / part
        module_file = candidate.with_name(part + ".py")
        if module_file.is_file():
            return [*found, module_file] if i == len(parts) - 1 else []
        if not candidate.is_dir():
            return []
        init = candidate / "__init__.py"
        if init.is_file():
            found.append(init)
        here = candidate
    if not found and not any((here / f"{n}.py").is_file() for n in names):
        return []  # a bare namespace folder: not ours unless a submodule is imported
    for name in names:
        sub = here / f"{name}.py"
        if sub.is_file():
            found.append(sub)
        elif (here / name / "__init__.py").is_file():
            found.append(here / name / "__init__.py")
    return found
