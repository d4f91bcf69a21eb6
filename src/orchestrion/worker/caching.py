"""Task result caching on the worker (``docs/caching.md``): the key of a cached task's
attempt, and the lookup that decides whether its body runs.

Only a task with ``cache`` comes here (`Worker._execute` checks one attribute first), so
uncached tasks pay nothing. The lookup happens after the claim and before the body,
where the inputs are evaluated anyway: the key needs upstream results and evaluated
inputs, which only the claim carries (``docs/architecture.md``, "Task result caching").
"""

from __future__ import annotations

import hashlib
import inspect
import json
from collections.abc import Callable
from typing import Any

from orchestrion.clock import Clock
from orchestrion.errors import OrchestrionError
from orchestrion.spec.expressions import compile_expression
from orchestrion.spec.model import CacheSpec, PythonAction, TaskSpec, WorkflowSpec
from orchestrion.store.cache import CacheStore
from orchestrion.store.record import replace
from orchestrion.store.records import CacheKey, CacheNote, Claim, Outcome
from orchestrion.worker.code import CodeRegistry
from orchestrion.worker.context import TaskContext

__all__ = ["cache_key", "run_cached"]

#: The longest pause between two lookups of a key another task run is computing.
_MOST_WAIT = 1.0


def _digest(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"), default=repr)
    return hashlib.sha256(text.encode()).hexdigest()


def _inputs(task: TaskSpec, claim: Claim) -> dict[str, Any]:
    scope = {"params": claim.params, "tasks": claim.upstream, "item": claim.item}
    return {
        name: compile_expression(s.expr).evaluate(scope) if s.expr is not None else s.value
        for name, s in task.inputs.items()
    }


#: (workflow, version, task) -> its code version: a version is immutable, and dumping a
#: task's spec for every attempt of a cached task cost more than the lookup.
_VERSIONS: dict[tuple[str, str, str], str] = {}
_MOST_VERSIONS = 4096


def code_version(task: TaskSpec, spec: WorkflowSpec, code: CodeRegistry) -> str:
    """The task's own spec (its command, templates, inputs) and, for Python code, the
    digest of the version's files or, without one, the function's source."""
    at = (spec.name, spec.version, task.name)
    found = _VERSIONS.get(at)
    if found is None:
        if len(_VERSIONS) >= _MOST_VERSIONS:
            _VERSIONS.clear()
        found = _VERSIONS[at] = _code_version(task, spec, code)
    return found


def _code_version(task: TaskSpec, spec: WorkflowSpec, code: CodeRegistry) -> str:
    parts = [task.action.model_dump_json(), json.dumps(task.model_dump(mode="json")["inputs"])]
    if isinstance(task.action, PythonAction):
        if spec.code is not None:
            parts.append(spec.code)
        else:
            try:
                parts.append(inspect.getsource(code.resolve(task.action.ref, None)))
            except (OSError, TypeError, OrchestrionError):
                parts.append(task.action.ref)
    return _digest(parts)


def cache_key(
    task: TaskSpec, cache: CacheSpec, spec: WorkflowSpec, claim: Claim, code: CodeRegistry
) -> str:
    """The entry's key: the value of the task's key expression (over ``params`` and
    ``inputs``), or by default its inputs with its code version. A task that is not a
    Python function has no inputs of its own: what its templates may read stands in."""
    inputs = _inputs(task, claim)
    if cache.key is not None:
        value = compile_expression(cache.key).evaluate({"params": claim.params, "inputs": inputs})
        return _digest({"key": value})
    if isinstance(task.action, PythonAction):
        reads: Any = inputs
    else:
        reads = {"params": claim.params, "tasks": claim.upstream, "item": claim.item}
    return _digest({"inputs": reads, "code": code_version(task, spec, code)})


def run_cached(
    store: CacheStore,
    clock: Clock,
    claim: Claim,
    spec: WorkflowSpec,
    task: TaskSpec,
    ctx: TaskContext,
    code: CodeRegistry,
    body: Callable[[], Outcome | None],
) -> Outcome | None:
    """Reuse the entry, or run `body` and carry what its finish writes. While another task
    run computes the key this attempt waits (its lease kept by heartbeats) and asks again:
    a hit once that entry lands, the key itself if that task run stops running."""
    assert task.cache is not None
    try:
        digest = cache_key(task, task.cache, spec, claim, code)
    except OrchestrionError as exc:
        return Outcome(
            task_run_id=claim.task_run_id,
            epoch=claim.epoch,
            status="failed",
            error=f"cannot compute the task's cache key: {exc}",
            error_types=(f"{type(exc).__module__}.{type(exc).__qualname__}",),
        )
    key = CacheKey(spec.namespace, spec.name, task.name, digest)
    wait = 0.02
    while True:
        look = store.cache_begin(
            key, run_id=claim.run_id, task_run_id=claim.task_run_id, now=clock.now()
        )
        if look.verdict == "hit":
            note = CacheNote(
                key=key,
                source_run_id=look.source_run_id,
                source_task_run_id=look.source_task_run_id,
            )
            return Outcome(
                task_run_id=claim.task_run_id,
                epoch=claim.epoch,
                status="succeeded",
                result=look.result,
                cache=note,
            )
        if look.verdict == "compute":
            outcome = body()
            if outcome is None:
                return None
            return replace(outcome, cache=CacheNote(key=key, ttl=task.cache.ttl))
        if ctx.cancel_event.wait(wait):
            return Outcome(
                task_run_id=claim.task_run_id,
                epoch=claim.epoch,
                status="canceled",
                error="canceled",
            )
        wait = min(wait * 2, _MOST_WAIT)
