"""``@workflow``: a function whose body, run once with placeholders, describes a task graph.

The function is called with a `ParamRef` for each parameter. Task calls inside it record
nodes; ordinary Python (loops over literal lists, helper functions) runs at build time. The
return value is ignored: return nothing, or a task reference for readability.

Calling a workflow inside another workflow's function records a sub-workflow task whose
reference yields the child run's result.
"""

from __future__ import annotations

import functools
import inspect
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Unpack, overload

import msgspec

from orchestrion.errors import OrchestrionError, SpecError
from orchestrion.spec.model import (
    DEFAULT_NAMESPACE,
    ScheduleSpec,
    SubWorkflowAction,
    TriggerSpec,
    WorkflowSpec,
)
from orchestrion.spec.python.build import (
    BuildState,
    ParamRef,
    Ref,
    TaskRef,
    build_context,
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
    task_fields,
)
from orchestrion.spec.python.options import validation_message as _vmsg
from orchestrion.spec.python.params import workflow_params
from orchestrion.spec.python.task import record_task
from orchestrion.spec.python.values import Collector, template
from orchestrion.spec.structs import Invalid

__all__ = ["Workflow", "workflow"]

ScheduleArg = str | Mapping[str, Any] | ScheduleSpec
TriggerArg = Mapping[str, Any] | TriggerSpec
_OPTION_KEYS: frozenset[str] = TaskOptions.__optional_keys__
_SETTINGS = frozenset(
    {
        "name",
        "description",
        "timeout",
        "max_active_runs",
        "sla",
        "timezone",
        "tags",
        "triggers",
        "namespace",
    }
)


class _Built(msgspec.Struct, frozen=True):
    spec: WorkflowSpec
    callables: dict[str, Callable[..., Any]]
    children: dict[str, Workflow]


class Workflow:
    """A decorated workflow function; `spec` is what gets registered."""

    def __init__(
        self,
        fn: Callable[..., Any],
        *,
        name: str | None = None,
        description: str | None = None,
        timeout: float | str | None = None,
        max_active_runs: int | None = None,
        sla: Mapping[str, float | str] | None = None,
        schedules: Sequence[ScheduleArg] = (),
        timezone: str = "UTC",
        tags: Sequence[str] = (),
        triggers: Sequence[TriggerArg] = (),
        namespace: str = DEFAULT_NAMESPACE,
    ) -> None:
        if isinstance(fn, Workflow | FunctionHolder) or not inspect.isfunction(fn):
            raise_spec(f"@workflow decorates a plain function, not {fn!r}")
        functools.update_wrapper(self, fn)
        self.fn = fn
        self.name: str = name or fn.__name__
        if not is_valid_name(self.name):
            self._fail(f"name {self.name!r} is invalid: use letters, digits, '_' and '-'")
        doc = (inspect.getdoc(fn) or "").strip().split("\n", 1)[0]
        self._settings: dict[str, Any] = {
            "description": description if description is not None else doc,
            "timeout": timeout,
            "max_active_runs": max_active_runs,
            "sla": None if sla is None else dict(sla),
            "schedules": _schedules(schedules, timezone, self._fail),
            "triggers": _triggers(triggers, self._fail),
            "tags": tuple(tags),
            "namespace": namespace,
        }
        self.params = workflow_params(fn, self._fail)
        self._signature = inspect.signature(fn)

    def _fail(self, problem: str) -> Exception:
        raise_spec(f"workflow {self.name!r}: {problem}", self.fn)

    @functools.cached_property
    def _built(self) -> _Built:
        return self._build()

    @property
    def spec(self) -> WorkflowSpec:
        """The compiled spec (built on first use, then cached)."""
        return self._built.spec

    @property
    def callables(self) -> dict[str, Callable[..., Any]]:
        """Every Python reference in the spec (tasks, ``when``, ``undo``) -> its callable."""
        return dict(self._built.callables)

    @property
    def subworkflows(self) -> dict[str, Workflow]:
        """Workflows this one calls as sub-workflows, by name; register them too."""
        return dict(self._built.children)

    def _build(self) -> _Built:
        state = BuildState(workflow=self.name, params=self.params)
        refs = {p: ParamRef(member_expr("params", p), state) for p in self.params}
        kinds = {p.name: p.kind for p in self._signature.parameters.values()}
        positional = [r for p, r in refs.items() if kinds[p] is inspect.Parameter.POSITIONAL_ONLY]
        named = {p: r for p, r in refs.items() if kinds[p] is not inspect.Parameter.POSITIONAL_ONLY}
        with build_context(state):
            result = self._run_body(positional, named)
        if result is not None and not isinstance(result, Ref):
            self._fail(f"the workflow function returned {result!r}; return nothing or a task")
        if isinstance(result, Ref):
            state.check_owner(result, None)
        if not state.tasks:
            self._fail("it defines no tasks (call at least one task in its body)")
        try:
            spec = WorkflowSpec(
                name=self.name, params=self.params, tasks=tuple(state.tasks), **self._settings
            )
        except Invalid as exc:
            self._fail(_vmsg(exc))
        return _Built(spec, dict(state.callables), dict(state.children))

    def _run_body(self, positional: Sequence[Ref], named: Mapping[str, Ref]) -> Any:
        """Call the function; an error from user code becomes a SpecError at its line."""
        try:
            return self.fn(*positional, **named)
        except OrchestrionError:
            raise
        except (Exception, SystemExit) as exc:  # sys.exit() in a body is a bad workflow too
            frame = traceback.extract_tb(exc.__traceback__)[-1]
            raise SpecError(
                f"workflow {self.name!r}: building failed: {type(exc).__name__}: {exc}",
                source=frame.filename,
                line=frame.lineno,
            ) from exc

    def options(self, **options: Unpack[TaskOptions]) -> SubWorkflowCall:
        """Task options for one sub-workflow call: ``child.options(retries=2)(day=day)``."""
        state = current_build()
        fail: Fail = self._fail if state is None else functools.partial(state.error, self.name)
        check_keys(options, _OPTION_KEYS, fail)
        task_fields(options, fail)
        return SubWorkflowCall(self, dict(options))

    def __call__(self, *args: Any, **kwargs: Any) -> TaskRef:
        """Inside another workflow's body, add a sub-workflow task running this workflow, with
        `args` and `kwargs` as its parameters."""
        return SubWorkflowCall(self, {})(*args, **kwargs)

    def __repr__(self) -> str:
        return f"<Workflow {self.name}>"


class SubWorkflowCall:
    """A workflow with task options, ready to be called inside another workflow."""

    def __init__(self, child: Workflow, options: dict[str, Any]) -> None:
        self.child = child
        self.options = options

    def __call__(self, *args: Any, **kwargs: Any) -> TaskRef:
        """Record a sub-workflow task; refs in the parameters become ``{{ ... }}`` templates."""
        state = current_build()
        child = self.child
        if state is None:
            raise_spec(
                f"workflow {child.name!r} was called outside a workflow build; to start a "
                "run use the CLI, the API or App.submit_run; inside another workflow's "
                "function the call makes a sub-workflow task",
                child.fn,
            )
        explicit = "name" in self.options
        name = state.claim_name(str(self.options.get("name", child.name)), explicit=explicit)
        if child.name == state.workflow:
            raise state.error(name, "a workflow cannot run itself as a sub-workflow")
        known = state.children.setdefault(child.name, child)
        if known is not child:
            raise state.error(name, f"two different workflows are named {child.name!r}")
        col = Collector(state, name)
        params = _bind_params(child, state, name, args, kwargs)
        values = {k: template(v, col, f"parameter {k!r}") for k, v in params.items()}
        action = SubWorkflowAction(workflow=child.name, params=values)
        record_task(state, name, col, action, self.options)
        return TaskRef(member_expr("tasks", name), state, name)


def _bind_params(
    child: Workflow, state: BuildState, task: str, args: tuple[Any, ...], kwargs: dict[str, Any]
) -> dict[str, Any]:
    """The child's parameters from the call, checked against its signature."""
    for key in kwargs:
        if key not in child.params:
            known = ", ".join(child.params) or "none"
            raise state.error(
                task, f"workflow {child.name!r} has no parameter {key!r} (parameters: {known})"
            )
    try:
        bound = child._signature.bind_partial(*args, **kwargs)
    except TypeError as exc:
        raise state.error(task, f"bad arguments for workflow {child.name!r}: {exc}") from None
    for pname, spec in child.params.items():
        if spec.required and pname not in bound.arguments:
            raise state.error(
                task, f"missing required parameter {pname!r} of workflow {child.name!r}"
            )
    return dict(bound.arguments)


def _schedules(items: Sequence[ScheduleArg], timezone: str, fail: Fail) -> tuple[ScheduleSpec, ...]:
    """Cron strings (in `timezone`), dicts of ScheduleSpec fields, or ScheduleSpecs."""
    out: list[ScheduleSpec] = []
    for item in items:
        try:
            if isinstance(item, ScheduleSpec):
                out.append(item)
            elif isinstance(item, str):
                out.append(ScheduleSpec(cron=item, timezone=timezone))
            else:
                out.append(ScheduleSpec(**{"timezone": timezone, **item}))
        except Invalid as exc:
            raise fail(f"bad schedule {item!r}: {_vmsg(exc)}") from None
    return tuple(out)


def _triggers(items: Sequence[TriggerArg], fail: Fail) -> tuple[TriggerSpec, ...]:
    """Dicts of TriggerSpec fields (``{"event": "orders.created", ...}``) or TriggerSpecs."""
    out: list[TriggerSpec] = []
    for item in items:
        try:
            out.append(item if isinstance(item, TriggerSpec) else TriggerSpec(**item))
        except Invalid as exc:
            raise fail(f"bad trigger {item!r}: {_vmsg(exc)}") from None
    return tuple(out)


@overload
def workflow(fn: Callable[..., Any], /) -> Workflow: ...


@overload
def workflow(
    fn: None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
    timeout: float | str | None = None,
    max_active_runs: int | None = None,
    sla: Mapping[str, float | str] | None = None,
    schedule: str | None = None,
    schedules: Sequence[ScheduleArg] = (),
    timezone: str = "UTC",
    tags: Sequence[str] = (),
    triggers: Sequence[TriggerArg] = (),
    namespace: str = ...,
) -> Callable[[Callable[..., Any]], Workflow]: ...


def workflow(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    schedule: str | None = None,
    schedules: Sequence[ScheduleArg] = (),
    **settings: Any,
) -> Workflow | Callable[[Callable[..., Any]], Workflow]:
    """Make a function a workflow: ``@workflow`` or ``@workflow(schedule="0 3 * * *")``.

    Settings: ``name`` (default: the function's name), ``description`` (default: the
    docstring's first line), ``timeout``, ``max_active_runs``, ``sla`` (``{"deadline": "30m",
    "expected_duration": "10m"}``: when a run is late), ``schedule`` (a cron string)
    and/or ``schedules`` (cron strings, or dicts of `ScheduleSpec` fields: ``cron`` or
    ``every``, ``timezone``, ``params``, ``catchup``, ``overlap``...), ``timezone`` (for
    cron strings; default UTC), ``tags`` and ``triggers`` (dicts of `TriggerSpec` fields:
    ``{"event": "orders.created", "params": {...}}`` or ``{"after": {"workflow": "a"}}``)
    and ``namespace`` (the group roles are granted on and secrets belong to; default
    ``"default"``).
    """
    all_schedules = ([schedule] if schedule else []) + list(schedules)

    def make(func: Callable[..., Any]) -> Workflow:
        unknown = sorted(set(settings) - _SETTINGS)
        if unknown:
            raise_spec(
                f"@workflow {func.__qualname__}: unknown setting {unknown[0]!r} "
                f"(settings: schedule, schedules, {', '.join(sorted(_SETTINGS))})",
                func,
            )
        return Workflow(func, schedules=all_schedules, **settings)

    return make(fn) if fn is not None else make
