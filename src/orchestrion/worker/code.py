"""Where workers find task code: the snapshot of the run's version, else callables
registered by ref or importable modules."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from orchestrion.errors import TaskError
from orchestrion.spec.bundle import CodeBundle
from orchestrion.worker.snapshots import Snapshot, load_snapshot

__all__ = ["CodeFetcher", "CodeRegistry"]

#: Reads a version's code by its digest (the store's ``get_code``); None if not stored.
CodeFetcher = Callable[[str], CodeBundle | None]


class CodeRegistry:
    """Resolves a task's reference to a callable. Only workers hold one: the engine and the
    store never import user code.

    A spec with code (``spec.code``, a digest) runs that code, imported from its snapshot
    (`orchestrion.worker.snapshots`), fetched from the store the first time: a run keeps
    the code it started with whatever was deployed since. A spec without code (its tasks
    call installed modules, or it was registered before versions carried code) resolves a
    ref to a callable registered with `add`, else imports the module by name.
    """

    def __init__(self, fetch: CodeFetcher | None = None) -> None:
        self._fetch = fetch
        self._refs: dict[str, Callable[..., Any]] = {}
        self._overrides: dict[str, Callable[..., Any]] = {}
        self._bundles: dict[str, CodeBundle] = {}
        self._lock = threading.Lock()

    def add(self, callables: Mapping[str, Callable[..., Any]]) -> None:
        """Register callables by ref, for specs without code; a ref registered again points
        at the new callable."""
        with self._lock:
            self._refs.update(callables)

    def override(self, callables: Mapping[str, Callable[..., Any]]) -> None:
        """Register callables by ref that win over any version's code: a test harness's
        stubbed tasks, which call refs of their own in specs that may carry code."""
        with self._lock:
            self._overrides.update(callables)

    def add_bundle(self, bundle: CodeBundle) -> None:
        """Keep a bundle this process loaded, so that it need not be read back."""
        with self._lock:
            self._bundles[bundle.digest] = bundle

    def bundle(self, digest: str) -> CodeBundle:
        """The bundle of `digest`: kept, or fetched from the store (`TaskError` if neither)."""
        with self._lock:
            found = self._bundles.get(digest)
        if found is None and self._fetch is not None:
            found = self._fetch(digest)
        if found is None:
            raise TaskError(f"the version's code {digest[:12]} is not stored")
        with self._lock:
            self._bundles[digest] = found
        return found

    def snapshot(self, digest: str) -> Snapshot:
        """The importable snapshot of `digest`."""
        return load_snapshot(self.bundle(digest))

    def resolve(self, ref: str, code: str | None = None) -> Callable[..., Any]:
        """The callable for `ref` in the version whose code is `code` (see the class)."""
        overridden = self._overrides.get(ref) if self._overrides else None  # one dict read
        if overridden is not None:
            return overridden
        if code is not None:
            return self.snapshot(code).resolve(ref)
        with self._lock:
            found = self._refs.get(ref)
        if found is not None:
            return found
        module_name, _, qualname = ref.partition(":")
        if not module_name or not qualname:
            raise TaskError(f"bad task reference {ref!r}: expected 'module:function'")
        try:
            target: Any = importlib.import_module(module_name)
            for part in qualname.split("."):
                target = getattr(target, part)
        except (ImportError, AttributeError) as exc:
            raise TaskError(
                f"cannot load task code {ref!r}: {exc}; is the workflow file loaded on this"
                " worker (or the module importable)?"
            ) from exc
        fn = getattr(target, "fn", target)
        if not callable(fn):
            raise TaskError(f"task reference {ref!r} is not callable")
        with self._lock:
            self._refs[ref] = fn
        return fn  # type: ignore[no-any-return]
