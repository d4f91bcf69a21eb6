"""``@task``: a Python function that is a plain function outside a workflow and a node inside.

Outside a workflow build, calling a task calls its function, so task code can be unit-tested
directly (a function that declares ``ctx`` then needs one passed in). Inside a build the call
records a `TaskSpec` and returns a `TaskRef`; nothing runs.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable
from typing import Any, Unpack, overload

from orchestrion.spec.model import Action, ParamType, TaskSpec
from orchestrion.spec.python.build import (
    BuildState,
    MappedTaskRef,
    ParamRef,
    Ref,
    TaskRef,
    current_build,
    is_valid_name,
    member_expr,
    raise_spec,
)
from orchestrion.spec.python.options import (
    Fail,
    FunctionHolder,
    TaskOptions,
    check_keys,
    python_action,
    task_fields,
    validation_message,
)
from orchestrion.spec.python.values import ITEM, Collector, input_spec
from orchestrion.spec.structs import Invalid

__all__ = ["Task", "record_task", "task"]

_OPTION_KEYS: frozenset[str] = TaskOptions.__optional_keys__
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def record_task(
    state: BuildState,
    name: str,
    col: Collector,
    action: Action,
    opts: dict[str, Any],
    **extra: Any,
) -> TaskSpec:
    """Turn options into fields, add ordering deps, validate, and append the TaskSpec."""

    def fail(problem: str) -> Exception:
        return state.error(name, problem)

    fields, callables = task_fields(opts, fail)
    for ref in opts.get("after") or ():
        if not isinstance(ref, TaskRef):
            raise fail(f"after= takes task references (results of task calls), not {ref!r}")
        col.add(ref)
    for key, func in callables.items():
        state.add_callable(key, func, name)
    try:
        spec = TaskSpec(name=name, action=action, depends_on=tuple(col.deps), **fields, **extra)
    except Invalid as exc:
        raise fail(validation_message(exc)) from None
    state.tasks.append(spec)
    return spec


def _is_ctx(param: inspect.Parameter) -> bool:
    """The worker's TaskContext goes to ``ctx`` or to a parameter annotated ``TaskContext``.

    Annotations are compared by name so that the authoring API never imports the worker.
    """
    ann = param.annotation
    text = ann if isinstance(ann, str) else getattr(ann, "__name__", "")
    return param.name == "ctx" or text.rsplit(".", 1)[-1] == "TaskContext"


class Task(FunctionHolder):
    """A decorated task function. Call it inside a ``@workflow`` to add a node."""

    __name__: str
    __qualname__: str
    __wrapped__: Callable[..., Any]

    def __init__(
        self,
        fn: Callable[..., Any],
        defaults: dict[str, Any],
        overrides: dict[str, Any] | None = None,
    ) -> None:
        functools.update_wrapper(self, fn)
        self.fn = fn
        self._defaults = defaults
        self._overrides = overrides or {}
        self._action, _ = python_action(fn, self._fail, "a task")
        self.ref: str = self._action.ref
        self.is_async: bool = self._action.is_async
        self._ctx, self._inputs = self._split_signature()
        if not is_valid_name(self.name):
            self._fail(f"task name {self.name!r} is invalid: use letters, digits, '_' and '-'")
        task_fields({**defaults, **self._overrides}, self._fail)

    @property
    def name(self) -> str:
        """The task's name in a workflow (repeated calls get ``_2``, ``_3``... appended)."""
        name = self._overrides.get("name") or self._defaults.get("name") or self.fn.__name__
        return str(name)

    def _fail(self, problem: str) -> Exception:
        raise_spec(f"task {self.fn.__qualname__}: {problem}", self.fn)

    def _split_signature(self) -> tuple[str | None, inspect.Signature]:
        try:
            sig = inspect.signature(self.fn)
        except (TypeError, ValueError):
            raise self._fail("its signature cannot be read") from None
        ctx = [p.name for p in sig.parameters.values() if _is_ctx(p)]
        rest = [p for p in sig.parameters.values() if not _is_ctx(p)]
        for p in rest:
            if p.kind is p.POSITIONAL_ONLY:
                self._fail(f"parameter {p.name!r} is positional-only; inputs are passed by name")
        return (ctx[0] if ctx else None), sig.replace(parameters=rest)

    def options(self, **overrides: Unpack[TaskOptions]) -> Task:
        """A copy with options overridden, for one call: ``extract.options(retries=5)(day)``.

        ``name=`` given here is explicit: it is used as is, and must be unique in the workflow.
        """
        state = current_build()
        fail: Fail = self._fail if state is None else functools.partial(state.error, self.name)
        check_keys(overrides, _OPTION_KEYS, fail)
        merged = {**self._overrides, **overrides}
        task_fields({**self._defaults, **merged}, fail)
        if "name" in overrides and not is_valid_name(str(overrides["name"])):
            raise fail(f"task name {overrides['name']!r} is invalid: use letters, digits, _, -")
        return Task(self.fn, self._defaults, merged)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        """Inside a workflow body, add a task run of this function and return its `TaskRef`; outside
        one, call the function itself, so tasks stay testable as plain functions."""
        state = current_build()
        if state is None:
            _refuse_refs(self.name, (args, kwargs))
            return self.fn(*args, **kwargs)
        return self._record(state, args, kwargs, None)

    def map(self, *args: Any, **kwargs: Any) -> MappedTaskRef:
        """One task run per element of a list known at run time; downstream gets the list
        of results.

        The mapped list is a task result or an array parameter, passed either positionally
        (``f.map(files, bucket=b)``: bound to the first parameter not passed by name) or as
        the only reference among the keyword arguments (``f.map(path=files, bucket="x")``).
        """
        state = current_build()
        if state is None:
            raise_spec(f"task {self.name!r}: map() can only be used inside a @workflow", self.fn)
        param, mapped = self._mapped_argument(state, args, kwargs)
        ref = self._record(state, (), {**kwargs, param: ITEM}, mapped)
        return MappedTaskRef(ref.expr, state, ref.task)

    def _mapped_argument(
        self, state: BuildState, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> tuple[str, Ref]:
        if len(args) > 1:
            raise state.error(self.name, "map() takes the mapped list as its only positional arg")
        if args:
            free = [p.name for p in self._inputs.parameters.values() if p.kind in _NAMED]
            free = [n for n in free if n not in kwargs]
            if not free:
                raise state.error(self.name, "map(): no parameter is left for the mapped list")
            param, value = free[0], args[0]
        else:
            found = [k for k, v in kwargs.items() if _mappable(v, state)]
            if len(found) != 1:
                raise state.error(
                    self.name,
                    "map() needs exactly one list argument (a task result or an array "
                    f"parameter), found {len(found)}: {', '.join(found) or 'none'}; pass the "
                    "mapped list positionally",
                )
            param, value = found[0], kwargs[found[0]]
        if not _mappable(value, state):
            raise state.error(
                self.name,
                f"map(): argument {param!r} must be a task result or an array parameter, "
                f"not {value!r}",
            )
        return param, value

    def _record(
        self, state: BuildState, args: tuple[Any, ...], kwargs: dict[str, Any], over: Ref | None
    ) -> TaskRef:
        name = state.claim_name(self.name, explicit="name" in self._overrides)
        col = Collector(state, name)
        bound = self._bind(state, name, args, kwargs)
        inputs = {key: input_spec(value, col, key) for key, value in bound.items()}
        if over is not None:
            col.add(over)
        state.add_callable(self.ref, self.fn, name)
        opts = {**self._defaults, **self._overrides}
        map_over = over.expr if over is not None else None
        record_task(state, name, col, self._action, opts, inputs=inputs, map_over=map_over)
        return TaskRef(member_expr("tasks", name), state, name)

    def _bind(
        self, state: BuildState, name: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> dict[str, Any]:
        """Argument name -> value, positional arguments bound by the function's signature."""
        params = self._inputs.parameters
        has_var_kw = any(p.kind is p.VAR_KEYWORD for p in params.values())
        for key in kwargs:
            if key == self._ctx:
                raise state.error(name, f"{key!r} is passed by the worker at run time; omit it")
            if key not in params and not has_var_kw:
                known = ", ".join(p for p in params if params[p].kind in _NAMED) or "none"
                raise state.error(name, f"unknown argument {key!r} (parameters: {known})")
        try:
            bound = self._inputs.bind(*args, **kwargs)
        except TypeError as exc:
            raise state.error(name, f"bad arguments: {exc}") from None
        out: dict[str, Any] = {}
        for key, value in bound.arguments.items():
            kind = params[key].kind
            if kind is inspect.Parameter.VAR_POSITIONAL:
                if value:
                    raise state.error(name, f"*{key} cannot take inputs; pass values by name")
            elif kind is inspect.Parameter.VAR_KEYWORD:
                out.update(value)
            else:
                out[key] = value
        return out

    def __repr__(self) -> str:
        return f"<Task {self.name} {self.ref}>"


def _mappable(value: Any, state: BuildState) -> bool:
    """A task result, or a parameter that is an array (or part of an object parameter)."""
    if isinstance(value, TaskRef):
        return True
    if not isinstance(value, ParamRef):
        return False
    for pname, spec in state.params.items():
        if member_expr("params", pname) == value.expr:
            return spec.type is ParamType.ARRAY
    return True


def _refuse_refs(name: str, value: Any) -> None:
    """Outside a build a placeholder means a leaked ref: running the function on it is a bug."""
    if isinstance(value, Ref):
        raise_spec(
            f"task {name!r} was called outside a workflow build with {value!r}; "
            "references only exist while a @workflow function is being built"
        )
    if isinstance(value, list | tuple):
        for item in value:
            _refuse_refs(name, item)
    elif isinstance(value, dict):
        for item in value.values():
            _refuse_refs(name, item)


def _first_line(fn: Callable[..., Any]) -> str:
    doc = inspect.getdoc(fn) or ""
    return doc.strip().split("\n", 1)[0].strip()


def _make(fn: Callable[..., Any], options: dict[str, Any]) -> Task:
    fail: Fail = functools.partial(_decoration_error, fn)
    if isinstance(fn, Task):
        raise fail("it is already a task; apply @task once")
    if not callable(fn):
        raise fail(f"@task decorates a function, not {type(fn).__name__}")
    if "after" in options:
        raise fail("after= is per call: use task.options(after=[...])(...)")
    check_keys(options, _OPTION_KEYS, fail)
    defaults = dict(options)
    if "description" not in defaults and _first_line(fn):
        defaults["description"] = _first_line(fn)
    return Task(fn, defaults)


def _decoration_error(fn: Any, problem: str) -> Exception:
    name = getattr(fn, "__qualname__", repr(fn))
    raise_spec(f"@task {name}: {problem}", fn if callable(fn) else None)


@overload
def task(fn: Callable[..., Any], /) -> Task: ...


@overload
def task(
    fn: None = None, /, **options: Unpack[TaskOptions]
) -> Callable[[Callable[..., Any]], Task]: ...


def task(
    fn: Callable[..., Any] | None = None, /, **options: Any
) -> Task | Callable[[Callable[..., Any]], Task]:
    """Make a function a task: ``@task`` or ``@task(retries=3, timeout="5m", queue="io")``.

    Options: ``name``, ``retries``, ``backoff``, ``factor``, ``max_delay``, ``jitter``,
    ``retry_on`` (exception classes, stored as ``module.QualName``, or names as given),
    ``timeout``, ``queue``, ``priority``, ``concurrency``, ``concurrency_key`` with
    ``key_limit`` (a key template and its limit), ``requires`` (worker labels,
    ``{"gpu": "a100"}``), ``trigger_rule``, ``when``,
    ``undo`` (a function or another task), ``description`` (default: the docstring's
    first line), ``executor`` (``"process"``: a child process per attempt; ``"thread"``).
    """
    if fn is not None:
        return _make(fn, options)
    return functools.partial(_make, options=options)
