"""Stubbed tasks: a task whose body a test replaces with a fixed result, an error, or a
function of its own, whatever kind the task is (Python, shell, HTTP, SQL...).

A stub does not patch user code: the harness registers a copy of the workflow in which the
stubbed task calls the stub (a Python action under a reference of its own), so the engine
runs it exactly as it runs any task: its inputs, retries, timeouts and downstream tasks are
the workflow's own.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from typing import Any

from orchestrion.spec.model import WorkflowSpec

__all__ = ["STUB_PREFIX", "Stub", "python_workflow", "stubbed"]

#: The references stubbed tasks call (looked up in the harness's code registry).
STUB_PREFIX = "orchestrion-stub:"


class Stub:
    """What a stubbed task does instead of its body, and the calls it received.

    `result`: what it returns. `raises`: an exception (instance or class) it raises; with
    `times`, only on its first `times` calls (the ones after return `result`), to test
    retries. `fn`: a function called with the task's inputs (and ``ctx`` if it takes one)
    whose return value is the task's result.
    """

    def __init__(
        self,
        task: str,
        *,
        result: Any = None,
        raises: BaseException | type[BaseException] | None = None,
        times: int | None = None,
        fn: Callable[..., Any] | None = None,
    ) -> None:
        if fn is not None and (raises is not None or result is not None):
            raise ValueError("a stub takes either fn, or result and raises")
        if times is not None and raises is None:
            raise ValueError("times counts the calls that raise: give raises too")
        if result is not None:
            json.dumps(result)  # a task result must be JSON: say so here, not in the run
        self.task = task
        self.result = result
        self.raises = raises
        self.times = times
        self.fn = fn
        self._calls: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    @property
    def calls(self) -> list[dict[str, Any]]:
        """The inputs of every call so far, in call order (one per attempt and item)."""
        with self._lock:
            return [dict(c) for c in self._calls]

    def __call__(self, ctx: Any, **inputs: Any) -> Any:
        """The task's body: record the call, then answer as configured."""
        with self._lock:
            self._calls.append(inputs)
            count = len(self._calls)
        if self.fn is not None:
            return self.fn(**inputs)
        if self.raises is not None and (self.times is None or count <= self.times):
            raise self.raises
        return self.result


def stubbed(spec: WorkflowSpec, stubs: Mapping[str, Stub]) -> WorkflowSpec:
    """`spec` with each task named in `stubs` calling its stub instead of its action."""
    data = json.loads(spec.to_json())
    for task in data["tasks"]:
        if task["name"] in stubs:
            task["action"] = {"kind": "python", "ref": stub_ref(spec.name, task["name"])}
            task["executor"] = None  # a stub is a callable of this process
            task["secrets"] = {}
    return WorkflowSpec.from_json(json.dumps(data))


def python_workflow(spec: WorkflowSpec) -> WorkflowSpec:
    """`spec` without its code snapshot: its Python tasks then call the functions this
    process imported (so a test's monkeypatching and coverage see them), in this process's
    threads (not in a child process, whose code would be the snapshot's)."""
    data = json.loads(spec.to_json())
    data["code"] = None
    for task in data["tasks"]:
        if task["action"]["kind"] == "python":
            task["executor"] = None
    return WorkflowSpec.from_json(json.dumps(data))


def stub_ref(workflow: str, task: str) -> str:
    """The reference a stubbed task calls."""
    return f"{STUB_PREFIX}{workflow}/{task}"
