"""Task code imported from a version's snapshot, each version in isolation.

A snapshot is a `CodeBundle` written once to a cache folder named by its digest and
imported under a private package name (``_orchestrion_code_<digest>``), so that version 1
and version 2 of ``pin.py`` and its ``helpers.py`` live side by side in one worker process.

Inside a snapshot, ``import helpers`` must find the snapshot's ``helpers``, not another
version's nor one on ``sys.path``: every module of a snapshot gets its own ``__import__``
(through its ``__builtins__``, which is where the ``import`` statement looks it up) that
maps the snapshot's top-level names to their private names and leaves every other import
(the standard library, installed packages, ``orchestrion``) alone. Relative imports work
as in any package. ``importlib.import_module("helpers")`` spelled in task code is not
mapped; the docs say so.

The cache folder is ``ORCHESTRION_CODE_CACHE``, else ``$XDG_CACHE_HOME/orchestrion/code``
(``~/.cache/orchestrion/code``). Folders are written under a temporary name and renamed
into place, so a reader never sees half a snapshot; being content-addressed they are
never rewritten, and any number of processes may share them.
"""

from __future__ import annotations

import builtins
import importlib
import importlib.abc
import importlib.machinery
import importlib.util
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

from orchestrion.errors import TaskError
from orchestrion.spec.bundle import CodeBundle

__all__ = ["Snapshot", "cache_folder", "load_snapshot", "public_names"]

_PREFIX = "_orchestrion_code_"
_PRIVATE = re.compile(_PREFIX + r"[0-9a-f]{64}\.b\d+\.")


def public_names(text: str) -> str:
    """`text` with snapshot modules under the names their authors gave them: an error type
    reads ``etl.SourceBusy`` (what ``retry_on`` names), not its private name."""
    return _PRIVATE.sub("", text) if _PREFIX in text else text


_real_import = builtins.__import__


def cache_folder() -> Path:
    """Where snapshots are written (see the module's docs)."""
    configured = os.environ.get("ORCHESTRION_CODE_CACHE")
    if configured:
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(Path.home(), ".cache")
    return Path(base) / "orchestrion" / "code"


class Snapshot:
    """One version's code, importable in isolation; `resolve` finds a task's callable."""

    def __init__(self, bundle: CodeBundle, folder: Path) -> None:
        self.digest = bundle.digest
        self.folder = folder
        self.package = _PREFIX + bundle.digest
        self.paths = bundle.paths
        #: top-level module name -> index of the import folder it is found in (first wins)
        self.tops: dict[str, int] = {}
        for index, base in enumerate(bundle.paths):
            prefix = f"{base}/" if base else ""
            for rel in bundle.files:
                if rel.startswith(prefix):
                    first = rel[len(prefix) :].split("/")[0]
                    self.tops.setdefault(first.removesuffix(".py"), index)
        self.builtins = {**builtins.__dict__, "__import__": self._import}

    def module_name(self, module: str) -> str | None:
        """The private name of a module of this snapshot, or None if it is not one."""
        if module.endswith(".py"):  # a path reference: relative to the first folder
            return f"{self.package}.b0.{module.removesuffix('.py').replace('/', '.')}"
        index = self.tops.get(module.split(".")[0])
        return None if index is None else f"{self.package}.b{index}.{module}"

    def resolve(self, ref: str) -> Callable[..., Any]:
        """The callable a ``module:qualname`` (or ``path.py:qualname``) reference names: from
        the snapshot when the module is one of its files, else from the environment."""
        module_name, _, qualname = ref.partition(":")
        if not module_name or not qualname:
            raise TaskError(f"bad task reference {ref!r}: expected 'module:function'")
        private = self.module_name(module_name)
        try:
            target: Any = importlib.import_module(private or module_name)
        except ImportError as exc:
            why = str(exc).replace(f"{self.package}.", "").replace(".b0.", ".")
            where = "the version's code" if private else "this worker's environment"
            raise TaskError(f"cannot load task code {ref!r} from {where}: {why}") from exc
        module = target
        for part in qualname.split("."):
            try:
                target = getattr(target, part)
            except AttributeError as exc:
                found = _declared_callable(module, ref)  # a lambda, a nested function
                if found is not None:
                    return found
                raise TaskError(
                    f"cannot load task code {ref!r}: {module_name!r} has no attribute {part!r}"
                ) from exc
        fn = getattr(target, "fn", target)
        if not callable(fn):
            raise TaskError(f"task reference {ref!r} is not callable")
        return fn  # type: ignore[no-any-return]

    def _import(
        self,
        name: str,
        globals: dict[str, Any] | None = None,
        locals: Any = None,
        fromlist: Sequence[str] | None = (),
        level: int = 0,
    ) -> ModuleType:
        """``__import__`` for this snapshot's modules: its own top-level names map to
        their private names; everything else imports as usual."""
        if level == 0:
            top = name.partition(".")[0]
            index = self.tops.get(top)
            if index is not None:
                base = f"{self.package}.b{index}"
                module = _real_import(f"{base}.{name}", globals, locals, fromlist or (), 0)
                return module if fromlist else sys.modules[f"{base}.{top}"]
        return _real_import(name, globals, locals, fromlist or (), level)


def _declared_callable(module: ModuleType, ref: str) -> Callable[..., Any] | None:
    """A callable that no attribute path reaches (``when=lambda ...``, a function defined
    inside another), found the way the loader found it: among the callables of the
    module's workflows, whose refs name the module by its private name here."""
    from orchestrion.spec.python import Workflow

    for value in list(vars(module).values()):
        if isinstance(value, Workflow):
            for key, fn in value.callables.items():
                if public_names(key) == ref:
                    return fn
    return None


class _Finder(importlib.abc.MetaPathFinder):
    """Finds the modules of loaded snapshots by their private names."""

    def __init__(self) -> None:
        self.snapshots: dict[str, Snapshot] = {}

    def find_spec(
        self, fullname: str, path: Any = None, target: Any = None
    ) -> importlib.machinery.ModuleSpec | None:
        if not fullname.startswith(_PREFIX):
            return None
        parts = fullname.split(".")
        snapshot = self.snapshots.get(parts[0])
        if snapshot is None:
            return None
        if len(parts) == 1:  # the snapshot's own package: holds one package per folder
            spec = importlib.machinery.ModuleSpec(fullname, None, is_package=True)
            spec.submodule_search_locations = []
            return spec
        index = int(parts[1][1:]) if parts[1][1:].isdigit() else -1
        if not 0 <= index < len(snapshot.paths):
            return None
        here = snapshot.folder / snapshot.paths[index] if snapshot.paths[index] else snapshot.folder
        if len(parts) == 2:
            return _package_spec(fullname, here, None)
        target_path = here.joinpath(*parts[2:])
        init = target_path / "__init__.py"
        if init.is_file():
            return _package_spec(fullname, target_path, _Loader(fullname, str(init), snapshot))
        file = target_path.with_name(target_path.name + ".py")
        if file.is_file():
            return importlib.util.spec_from_file_location(
                fullname, file, loader=_Loader(fullname, str(file), snapshot)
            )
        if target_path.is_dir():
            return _package_spec(fullname, target_path, None)
        return None


def _package_spec(
    fullname: str, folder: Path, loader: importlib.abc.Loader | None
) -> importlib.machinery.ModuleSpec:
    origin = str(folder / "__init__.py") if loader is not None else None
    spec = importlib.machinery.ModuleSpec(fullname, loader, origin=origin, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    spec.has_location = loader is not None
    return spec


class _Loader(importlib.machinery.SourceFileLoader):
    """Runs a snapshot module with the snapshot's ``__import__``."""

    def __init__(self, fullname: str, path: str, snapshot: Snapshot) -> None:
        super().__init__(fullname, path)
        self.snapshot = snapshot

    def exec_module(self, module: ModuleType) -> None:
        module.__dict__["__builtins__"] = self.snapshot.builtins
        super().exec_module(module)


_finder = _Finder()
_lock = threading.Lock()


def load_snapshot(bundle: CodeBundle, folder: Path | None = None) -> Snapshot:
    """The snapshot of `bundle`, written to the cache folder if it is not there yet, and
    importable from now on in this process."""
    package = _PREFIX + bundle.digest
    with _lock:
        known = _finder.snapshots.get(package)
        if known is not None:
            return known
        where = _materialise(bundle, folder or cache_folder())
        snapshot = Snapshot(bundle, where)
        _finder.snapshots[package] = snapshot
        if _finder not in sys.meta_path:
            sys.meta_path.insert(0, _finder)
        return snapshot


def _materialise(bundle: CodeBundle, cache: Path) -> Path:
    """The snapshot's folder, written atomically the first time."""
    final = cache / bundle.digest
    if final.is_dir():
        return final
    cache.mkdir(parents=True, exist_ok=True, mode=0o700)
    staging = Path(tempfile.mkdtemp(prefix=".staging-", dir=cache))
    try:
        for rel, data in bundle.files.items():
            target = staging.joinpath(*rel.split("/"))
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(data)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():  # not another process that got there first
                raise
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
    return final
