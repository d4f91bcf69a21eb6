"""Task options (retries, timeout, queue, when, undo...) and how they become TaskSpec fields.

The same options are accepted by ``@task(...)``, ``task.options(...)``, ``shell(...)``,
``http(...)`` and ``workflow.options(...)``, so they are declared once, as TypedDicts that
type-check the keyword arguments of all of them.
"""

from __future__ import annotations

import inspect
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, TypedDict

from orchestrion.spec.model import PythonAction, RetryPolicy, TriggerRule, WhenSpec
from orchestrion.spec.python.build import Ref
from orchestrion.spec.structs import Invalid

__all__ = [
    "CommonOptions",
    "Fail",
    "FunctionHolder",
    "ShellOptions",
    "TaskOptions",
    "check_keys",
    "function_ref",
    "python_action",
    "secret_refs",
    "task_fields",
    "validation_message",
]

#: Makes the exception to raise for a problem description (decoration or build time).
Fail = Callable[[str], Exception]

_RETRY_KEYS = ("retries", "backoff", "factor", "max_delay", "jitter")
_PLAIN_KEYS = (
    "timeout", "queue", "priority", "concurrency", "trigger_rule", "requires", "description",
    "concurrency_key", "key_limit", "executor", "cache", "produces", "consumes",
)  # fmt: skip
_WHEN_ARGS = frozenset({"params", "results"})


class CommonOptions(TypedDict, total=False):
    """Options every kind of task accepts."""

    retries: int
    backoff: float | str
    factor: float
    max_delay: float | str
    jitter: float
    retry_on: Sequence[type[BaseException] | str]
    queue: str
    priority: int
    concurrency: int
    #: A key template (``"customer-{{ params.customer }}"``): at most `key_limit` task runs
    #: with the same rendered key run at once, across all workflows.
    concurrency_key: str
    key_limit: int
    #: Worker labels the task needs (``{"gpu": "a100"}``).
    requires: Mapping[str, str]
    trigger_rule: TriggerRule | str
    when: Callable[..., Any] | str
    undo: Callable[..., Any]
    description: str
    #: Ordering-only dependencies: run after these tasks without taking their results.
    after: Sequence[Ref]
    #: Result caching (``docs/caching.md``): True for the defaults, or
    #: ``{"key": "<expression over params and inputs>", "ttl": "7d"}``.
    cache: bool | Mapping[str, Any]
    #: Secrets of the workflow's namespace the task may use: names (a Python task reads
    #: them with ``ctx.secret(name)``), or ``{ENV_VAR: name}`` (a shell task's environment).
    secrets: Mapping[str, str] | Sequence[str]
    #: Data assets a success updates (``asset("warehouse.sales")`` or plain keys).
    produces: Sequence[Any]
    #: Data assets the task reads (lineage).
    consumes: Sequence[Any]


class ShellOptions(CommonOptions, total=False):
    """The options of a shell task: the common ones and its timeout."""

    #: The task's timeout (``http`` has its own request ``timeout`` instead).
    timeout: float | str


class TaskOptions(ShellOptions, total=False):
    """The options of a Python task (``@task(...)`` and ``.options(...)``): a shell task's, plus its
    name and where its code runs."""

    name: str
    #: Where the code runs: ``"process"`` (a child process per attempt: no GIL, killed on
    #: timeout or cancel) or ``"thread"``; unset, the worker's ``--executor`` decides.
    executor: Literal["thread", "process"]


class FunctionHolder:
    """A wrapper around a Python function (a `Task`): used as an undo, its function is meant."""

    fn: Callable[..., Any]


def check_keys(opts: Mapping[str, Any], allowed: frozenset[str], fail: Fail) -> None:
    """Refuse option names that do not exist (a typo would otherwise be silently ignored)."""
    unknown = sorted(set(opts) - allowed)
    if unknown:
        raise fail(f"unknown option {unknown[0]!r} (options: {', '.join(sorted(allowed))})")


def validation_message(exc: Invalid) -> str:
    """One line per pydantic error, with its field path: our users never see pydantic names."""
    parts = []
    for err in exc.errors():
        loc = ".".join(str(x) for x in err["loc"])
        parts.append(f"{loc}: {err['msg']}" if loc else str(err["msg"]))
    return "; ".join(parts)


def function_ref(fn: Any, fail: Fail, what: str) -> tuple[str, Callable[..., Any]]:
    """``module:qualname`` of a function (the worker's key for it) and the function itself."""
    if isinstance(fn, FunctionHolder):
        fn = fn.fn
    if not callable(fn):
        raise fail(f"{what} must be a function, got {type(fn).__name__}")
    module = getattr(fn, "__module__", None)
    qualname = getattr(fn, "__qualname__", None)
    if not module or not qualname:
        raise fail(f"{what} must be a named function (it has no module or qualified name)")
    return f"{module}:{qualname}", fn


def python_action(fn: Any, fail: Fail, what: str) -> tuple[PythonAction, Callable[..., Any]]:
    """The action of a Python task calling `fn`, and `fn` itself for the workflow's code registry;
    async functions are marked so the worker awaits them."""
    ref, func = function_ref(fn, fail, what)
    is_async = inspect.iscoroutinefunction(func)
    return PythonAction(ref=ref, is_async=is_async), func


def task_fields(
    opts: Mapping[str, Any], fail: Fail
) -> tuple[dict[str, Any], dict[str, Callable[..., Any]]]:
    """TaskSpec keyword arguments for `opts`, and the callables they reference (by ref)."""
    fields: dict[str, Any] = {k: opts[k] for k in _PLAIN_KEYS if k in opts}
    callables: dict[str, Callable[..., Any]] = {}
    fields["retry"] = _retry_policy(opts, fail)
    if opts.get("secrets"):
        fields["secrets"] = secret_refs(opts["secrets"], fail)
    if opts.get("when") is not None:
        fields["when"] = _when(opts["when"], fail, callables)
    if opts.get("undo") is not None:
        action, func = python_action(opts["undo"], fail, "undo")
        callables[action.ref] = func
        fields["undo"] = action
    return fields, callables


def secret_refs(value: Any, fail: Fail) -> dict[str, str]:
    """``{ENV_VAR: name}`` from a mapping, or from names (each gets an upper-cased variable)."""
    if isinstance(value, Mapping):
        return {str(k): v for k, v in value.items()}
    if isinstance(value, str) or not isinstance(value, Sequence):
        raise fail(f"secrets takes a list of names or a mapping ENV_VAR -> name, not {value!r}")
    out: dict[str, str] = {}
    for name in value:
        if not isinstance(name, str):
            raise fail(f"a secret name must be a string, not {name!r}")
        out[re.sub(r"[^A-Za-z0-9_]", "_", name).upper().lstrip("0123456789") or "_"] = name
    return out


def _retry_policy(opts: Mapping[str, Any], fail: Fail) -> RetryPolicy:
    values: dict[str, Any] = {k: opts[k] for k in _RETRY_KEYS if k in opts}
    if "retry_on" in opts:
        values["retry_on"] = _exception_names(opts["retry_on"], fail)
    try:
        return RetryPolicy(**values)
    except Invalid as exc:
        raise fail(f"bad retry option: {validation_message(exc)}") from None


def _exception_names(items: Any, fail: Fail) -> tuple[str, ...]:
    """Qualified names for exception classes (``builtins.ValueError``); names kept as given."""
    if isinstance(items, str | type):
        items = [items]
    names: list[str] = []
    for item in items:
        if isinstance(item, str) and item:
            names.append(item)
        elif isinstance(item, type) and issubclass(item, BaseException):
            names.append(f"{item.__module__}.{item.__qualname__}")
        else:
            raise fail(f"retry_on takes exception classes or their names, not {item!r}")
    return tuple(names)


def _when(value: Any, fail: Fail, callables: dict[str, Callable[..., Any]]) -> WhenSpec:
    """A string is a sandboxed expression; a callable is called by the worker with `params`
    and/or `results`, whichever its signature names."""
    if isinstance(value, str):
        return WhenSpec(expr=value)
    ref, func = function_ref(value, fail, "when")
    try:
        params = list(inspect.signature(func).parameters.values())
    except (TypeError, ValueError):
        params = []
    for param in params:
        if param.kind is param.VAR_KEYWORD:
            continue
        if param.name not in _WHEN_ARGS or param.kind is param.POSITIONAL_ONLY:
            raise fail(
                f"the when callable {ref} takes {param.name!r}; it may only take the keyword "
                "arguments 'params' (the run parameters) and 'results' (upstream results)"
            )
    callables[ref] = func
    return WhenSpec(ref=ref)
