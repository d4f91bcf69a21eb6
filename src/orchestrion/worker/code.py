"""Where workers find task code: callables registered from loaded workflow files, by ref."""

from __future__ import annotations

import importlib
import threading
from collections.abc import Callable, Mapping
from typing import Any

from orchestrion.errors import TaskError

__all__ = ["CodeRegistry"]


class CodeRegistry:
    """Maps ``module:qualname`` refs to callables. Only workers hold one: the engine and the
    store never import user code."""

    def __init__(self) -> None:
        self._refs: dict[str, Callable[..., Any]] = {}
        self._lock = threading.Lock()

    def add(self, callables: Mapping[str, Callable[..., Any]]) -> None:
        """Register a loaded workflow file's callables by ref; a ref registered again (the file
        reloaded) points at the new callable."""
        with self._lock:
            self._refs.update(callables)

    def resolve(self, ref: str) -> Callable[..., Any]:
        """The callable for `ref`: registered, or imported from an importable module."""
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
