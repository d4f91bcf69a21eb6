"""The workflow spec: one frozen, JSON-serialisable value that Python and YAML both compile to.

A spec is data. It never holds a Python object: Python callables are named by a reference
(``module:qualname``) and resolved by workers only. Its `version` is a content hash of its
canonical JSON, so registering an unchanged workflow twice is a no-op and a changed one
makes a new version.

Inputs, shell arguments, HTTP fields and `when`/`map` use the sandboxed expression
language of `orchestrion.spec.expressions` over the names ``params``, ``tasks`` (upstream
results by task name) and ``item`` (the element of a mapped task).
"""

import hashlib
import json
import re
import weakref
from collections.abc import Mapping
from enum import StrEnum
from typing import TYPE_CHECKING, Annotated, Any, Literal, NamedTuple

from msgspec import Meta

from orchestrion.errors import CycleError
from orchestrion.spec.actions import (
    Action,
    ApprovalAction,
    ContainerAction,
    HttpAction,
    PluginAction,
    PublishAction,
    PythonAction,
    ShellAction,
    SubWorkflowAction,
    WaitAction,
)
from orchestrion.spec.assets import AssetRef, AssetRefs
from orchestrion.spec.rules import (
    ENV_NAME_PATTERN,
    LABEL_PATTERN,
    MAX_LABELS,
    NAME_PATTERN,
    SECRET_NAME_PATTERN,
)
from orchestrion.spec.schedule_model import ScheduleSpec, TriggerSpec, check_triggers
from orchestrion.spec.structs import (
    Bool,
    Check,
    Duration,
    FieldProblem,
    Float,
    Int,
    Label,
    Line,
    Name,
    Namespace,
    Pattern,
    Range,
    SpecModel,
    Str,
    Text,
)
from orchestrion.spec.template_origin import TemplateOrigin
from orchestrion.spec.validation import ExpressionCheck, find_cycle

# The action models and the field types live in `orchestrion.spec.actions` and
# `orchestrion.spec.structs`; they are re-exported here, where authors and the rest of the
# code have always imported the spec from.
__all__ = [
    "DEFAULT_NAMESPACE",
    "LABEL_PATTERN",
    "MAX_LABELS",
    "NAME_PATTERN",
    "SECRET_NAME_PATTERN",
    "SPEC_VERSION",
    "Action",
    "AssetRef",
    "CacheSpec",
    "ContainerAction",
    "Duration",
    "HttpAction",
    "InputSpec",
    "ParamSpec",
    "ParamType",
    "PluginAction",
    "PublishAction",
    "PythonAction",
    "RetryPolicy",
    "ScheduleSpec",
    "ShellAction",
    "SubWorkflowAction",
    "TaskSpec",
    "TriggerRule",
    "TriggerSpec",
    "WhenSpec",
    "WorkflowSpec",
]

#: The version of the spec format itself (not of a workflow). Bump on incompatible changes.
SPEC_VERSION = 1

#: How long a cached result stays usable unless the task says otherwise (7 days).
DEFAULT_CACHE_TTL = 7 * 86400.0

#: The namespace of a workflow that names none.
DEFAULT_NAMESPACE = "default"

_NAME_RE = re.compile(NAME_PATTERN)


class TriggerRule(StrEnum):
    """When a task with finished upstreams runs (Airflow's names, for familiarity)."""

    ALL_SUCCESS = "all_success"  #: every upstream succeeded (skipped counts as success-free)
    ALL_DONE = "all_done"  #: every upstream finished, whatever the outcome
    ONE_SUCCESS = "one_success"  #: at least one upstream succeeded
    ONE_FAILED = "one_failed"  #: at least one upstream failed
    ALL_FAILED = "all_failed"  #: every upstream failed
    NONE_FAILED = "none_failed"  #: no upstream failed (succeeded or skipped)


class ParamType(StrEnum):
    """The types a workflow parameter may declare; a run's values are checked against them before
    the run starts."""

    STRING = "string"
    INTEGER = "integer"
    NUMBER = "number"
    BOOLEAN = "boolean"
    ARRAY = "array"
    OBJECT = "object"
    DATE = "date"
    DATETIME = "datetime"


class ParamSpec(SpecModel, frozen=True, kw_only=True):
    """One declared parameter of a workflow: its type, its default, whether a run must set it, and
    the values it may take."""

    type: ParamType = ParamType.STRING
    default: Any = None
    required: Bool = False
    enum: tuple[Any, ...] | None = None
    description: Text = ""


class RetryPolicy(SpecModel, frozen=True, kw_only=True):
    """How a failed attempt is retried: exponential backoff, capped, with jitter."""

    retries: Annotated[Int, Meta(ge=0, le=1000)] = 0
    backoff: Annotated[Duration, Range(ge=0)] = 1.0
    factor: Annotated[Float, Meta(ge=1.0, le=100.0)] = 2.0
    max_delay: Annotated[Duration, Range(ge=0)] = 300.0
    jitter: Annotated[Float, Meta(ge=0.0, le=1.0)] = 0.1
    #: Exception type names (``ValueError``, ``mymod.TransientError``) that are retried;
    #: empty means every error is retried.
    retry_on: tuple[Line, ...] = ()


class InputSpec(SpecModel, frozen=True, kw_only=True):
    """One argument of a task: an expression over params/tasks/item, or a literal value."""

    expr: Text | None = None
    value: Any = None

    def check(self) -> None:
        """Not both an expression and a value."""
        if self.expr is not None and self.value is not None:
            raise ValueError("an input has either 'expr' or 'value', not both")


class WhenSpec(SpecModel, frozen=True, kw_only=True):
    """A condition: a sandboxed expression, or a Python callable reference."""

    expr: Text | None = None
    ref: Line | None = None

    def check(self) -> None:
        """Exactly one of an expression and a reference."""
        if (self.expr is None) == (self.ref is None):
            raise ValueError("a condition needs exactly one of 'expr' or 'ref'")


def _cache_key_names(value: str) -> str:
    # Checked with the field, not only with the workflow's checks, so that YAML names the
    # key's line; the workflow's checks add the declared parameters.
    from orchestrion.errors import ExpressionError
    from orchestrion.spec.expressions import compile_expression

    try:
        names = compile_expression(value).names
    except ExpressionError as exc:
        raise ValueError(f"bad expression: {exc}") from None
    unknown = sorted(names - {"params", "inputs"})
    if unknown:
        raise ValueError(f"unknown name {unknown[0]!r} (use params or inputs)")
    return value


class CacheSpec(SpecModel, frozen=True, kw_only=True):
    """Result caching of a task (``docs/caching.md``): a run whose task has the same key
    (and namespace, workflow and task) as an earlier success within `ttl` reuses that
    result instead of running the task again.

    The default key hashes the task's evaluated inputs (for a non-Python task: the params,
    upstream results and item its templates may read) with its code version (the task's
    own spec and, for project code, the version's code digest). `key` is an expression
    over ``params`` and ``inputs`` whose value replaces that default entirely."""

    key: Annotated[Text, Check(_cache_key_names)] | None = None
    #: How long an entry stays usable; None: until retention removes its source run.
    ttl: Annotated[Duration, Range(gt=0)] | None = DEFAULT_CACHE_TTL


def _cache_value(value: Any) -> CacheSpec | None:
    if value is None or isinstance(value, CacheSpec):
        return value
    if isinstance(value, bool):
        return CacheSpec() if value else None
    if not isinstance(value, Mapping):
        raise ValueError(f"expected true, false or {{key, ttl}}, got {type(value).__name__}")
    return CacheSpec.model_validate(value)


if TYPE_CHECKING:
    CacheField = CacheSpec | None
else:
    #: ``cache: true`` (the defaults), ``false`` (none) or ``{key, ttl}``.
    CacheField = Annotated[Any, Check(_cache_value)]


class TaskSpec(SpecModel, frozen=True, kw_only=True):
    """One task of a workflow: what it runs, what it waits for (`depends_on`, `when`,
    `trigger_rule`), how it is retried, limited and routed, and how it is undone."""

    name: Name
    action: Action
    depends_on: tuple[Name, ...] = ()
    inputs: dict[str, InputSpec] = {}
    when: WhenSpec | None = None
    trigger_rule: TriggerRule = TriggerRule.ALL_SUCCESS
    #: An expression that yields a list: one task run per element, bound to ``item``.
    map_over: Text | None = None
    retry: RetryPolicy = RetryPolicy()
    timeout: Annotated[Duration, Range(gt=0)] | None = None
    #: At most this many task runs of this task run at once, across all runs.
    concurrency: Annotated[Int, Meta(ge=1)] | None = None
    #: A template (``"customer-{{ params.customer }}"``) rendered when a task run becomes
    #: ready: at most `key_limit` task runs with the same rendered key run at once, across
    #: all tasks, workflows and runs.
    concurrency_key: Line | None = None
    key_limit: Annotated[Int, Meta(ge=1)] | None = None
    priority: Annotated[Int, Meta(ge=-1000, le=1000)] = 0
    queue: Name = "default"
    #: Worker labels this task needs: only a worker whose labels include every one of
    #: these key/value pairs claims it.
    requires: Annotated[dict[Label, Label], Meta(max_length=MAX_LABELS)] = {}
    #: The undo step, run once if the run fails after this task succeeded.
    undo: Action | None = None
    description: Text = ""
    #: Environment variable -> secret name (in the workflow's namespace). The worker
    #: resolves them at run time; values never pass through templates or the spec.
    secrets: dict[str, Str] = {}
    #: Where a Python task's code runs: ``process`` (a child process per attempt, on any
    #: worker), ``thread`` (the worker's own threads), None (the worker's ``--executor``).
    executor: Literal["thread", "process"] | None = None
    #: Result caching (``cache: true`` or ``{key, ttl}``); None: the task always runs.
    cache: CacheField = None

    #: The data assets a success of this task updates (an asset event each, recorded with
    #: the finish) and those it reads (lineage only): `orchestrion.spec.assets`.
    produces: Annotated[AssetRefs, Meta(max_length=100)] = ()
    consumes: Annotated[AssetRefs, Meta(max_length=100)] = ()
    #: The template this task was expanded from (``uses:``), when it was.
    template: TemplateOrigin | None = None

    def check(self) -> None:
        """Secrets' names, the pairs of fields that go together, and what each kind of
        action allows."""
        self._check_secrets()
        if (self.concurrency_key is None) != (self.key_limit is None):
            raise ValueError("'concurrency_key' and 'key_limit' go together")
        if self.cache is not None and isinstance(
            self.action, SubWorkflowAction | ApprovalAction | WaitAction
        ):
            raise ValueError("'cache' does not apply to a sub-workflow, approval or wait task")
        self._check_waits()
        if self.executor is not None and not isinstance(self.action, PythonAction):
            raise ValueError("'executor' applies to Python tasks only")

    def _check_secrets(self) -> None:
        for env, name in self.secrets.items():
            if not re.fullmatch(ENV_NAME_PATTERN, env):
                raise FieldProblem(
                    ("secrets", env), f"bad environment variable name {env!r} for a secret"
                )
            if not re.fullmatch(SECRET_NAME_PATTERN, name):
                raise FieldProblem(
                    ("secrets", env),
                    f"bad secret name {name!r}: letters, digits, '_', '.' and '-' (no '/':"
                    " a task reads secrets of its own workflow's namespace only)",
                )
        for action in (self.action, self.undo):
            if isinstance(action, ShellAction | ContainerAction):
                both = sorted(set(action.env) & set(self.secrets))
                if both:
                    raise ValueError(f"{both[0]!r} is set both by 'env' and by 'secrets'")

    def _check_waits(self) -> None:
        # A waiting step holds no worker: nothing routes, limits or undoes it.
        if isinstance(self.undo, ApprovalAction | WaitAction):
            raise ValueError("an undo step cannot be an approval or a wait")
        if isinstance(self.action, ApprovalAction | WaitAction):
            if self.concurrency is not None or self.concurrency_key is not None:
                raise ValueError("an approval or wait step takes no concurrency limit")
            if self.map_over is not None:
                raise ValueError("an approval or wait step cannot be mapped")


class SlaSpec(SpecModel, frozen=True, kw_only=True):
    """When a run counts as late (``run.late``, notified once per run): past `deadline`
    after its nominal start (a fire's nominal time, else its creation), or running longer
    than `expected_duration`."""

    deadline: Annotated[Duration, Range(gt=0)] | None = None
    expected_duration: Annotated[Duration, Range(gt=0)] | None = None

    def check(self) -> None:
        if self.deadline is None and self.expected_duration is None:
            raise ValueError("an sla needs a deadline, an expected_duration or both")


class WorkflowSpec(SpecModel, frozen=True, kw_only=True, weakref=True):
    """A workflow: parameters, tasks, schedules and triggers. Validation checks the whole graph
    (unique names, known dependencies, no cycle, expressions that read only what a task will have),
    so a bad workflow is refused when it is registered, not halfway through a run."""

    spec_version: Literal[1] = 1
    name: Name
    description: Text = ""
    params: dict[str, ParamSpec] = {}
    tasks: Annotated[tuple[TaskSpec, ...], Meta(min_length=1, max_length=10_000)]
    timeout: Annotated[Duration, Range(gt=0)] | None = None
    max_active_runs: Annotated[Int, Meta(ge=1)] | None = None
    #: When a run is late (notifications' ``run.late``); None: never.
    sla: SlaSpec | None = None
    schedules: tuple[ScheduleSpec, ...] = ()
    triggers: tuple[TriggerSpec, ...] = ()
    tags: tuple[Line, ...] = ()
    #: The group (e.g. a team) that roles are granted on; also the scope of its secrets.
    namespace: Namespace = DEFAULT_NAMESPACE
    #: The digest of the version's code (`orchestrion.spec.bundle.CodeBundle`): set by the
    #: loader from the files, never written by hand; None when no task runs project code.
    code: Annotated[Str, Pattern(r"^[0-9a-f]{64}$")] | None = None

    def check(self) -> None:
        """Parameter names, the task graph and its expressions, the triggers' parameters."""
        for name in self.params:
            if not _NAME_RE.fullmatch(name):
                raise FieldProblem(("params", name), f"bad parameter name {name!r}")
        self._check_graph()
        check_triggers(self.name, self.params, self.schedules, self.triggers)

    def _check_graph(self) -> None:
        names: set[str] = set()
        for i, task in enumerate(self.tasks):
            if task.name in names:
                raise ValueError(f"tasks[{i}]: duplicate task name {task.name!r}")
            names.add(task.name)
        for i, task in enumerate(self.tasks):
            for dep in task.depends_on:
                if dep not in names:
                    raise ValueError(
                        f"tasks[{i}] ({task.name}): depends_on names unknown task {dep!r}"
                    )
                if dep == task.name:
                    raise CycleError([task.name, task.name])
        cycle = find_cycle({t.name: t.depends_on for t in self.tasks})
        if cycle:
            raise CycleError(cycle)
        for i, task in enumerate(self.tasks):
            _check_expressions(self, task, f"tasks[{i}] ({task.name})")

    # ----------------------------------------------------------------- helpers

    def task(self, name: str) -> TaskSpec:
        """The task named `name`; `KeyError` if there is none."""
        return _index(self.tasks).by_name[name]

    def downstream(self) -> Mapping[str, tuple[Str, ...]]:
        """Task name -> names of the tasks that depend on it, in spec order."""
        return _index(self.tasks).downstream

    def leaves(self) -> frozenset[str]:
        """Names of the tasks nothing depends on (a run's result is theirs)."""
        return _index(self.tasks).leaves

    def undoable(self) -> frozenset[str]:
        """Names of the tasks with an undo step."""
        return _index(self.tasks).undoable

    def results_read(self, name: str) -> tuple[str, ...]:
        """The upstream results a worker needs to run task `name`, sorted: for a Python
        task, those its inputs read; for any other, every upstream's (its templates, or a
        Python condition, which receives them all). A mapped item of a task that reads
        only ``item`` needs none: its claim must not carry the whole mapped list."""
        index = _index(self.tasks)
        found = index.reads.get(name)
        if found is None:
            found = index.reads[name] = _results_read(index.by_name[name])
        return found

    def to_json(self) -> str:
        """Canonical JSON: sorted keys, no whitespace; the input of the version hash.

        Fields added after specs were first registered are left out while they hold their
        default, so adding them did not change the version of any existing workflow.
        """
        return _canonical(self)[0]

    def _to_json(self) -> str:
        data = self.model_dump(mode="json")
        if data["namespace"] == DEFAULT_NAMESPACE:
            del data["namespace"]
        if data["code"] is None:
            del data["code"]
        if data["sla"] is None:
            del data["sla"]
        for task in data["tasks"]:
            for field, empty in _OPTIONAL_TASK_FIELDS:
                if task[field] == empty:
                    del task[field]
        _drop_asset_defaults(data)
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    @property
    def version(self) -> str:
        """A hash of `to_json`: registering an unchanged workflow again keeps its version, any
        change makes a new one."""
        return _canonical(self)[1]

    @classmethod
    def from_json(cls, text: str | bytes) -> "WorkflowSpec":
        """A spec from the canonical JSON of `to_json`, as stored."""
        return cls.model_validate_json(text)


#: Task fields added after specs were first registered, left out of the canonical JSON
#: while they hold this default (so adding them changed no existing workflow's version).
_OPTIONAL_TASK_FIELDS: tuple[tuple[str, Any], ...] = (
    ("secrets", {}),
    ("requires", {}),
    ("concurrency_key", None),
    ("key_limit", None),
    ("executor", None),
    ("cache", None),
    ("template", None),
)


def _drop_asset_defaults(data: dict[str, Any]) -> None:
    """Leave the asset fields out of the canonical JSON while unset (`to_json`)."""
    for task in data["tasks"]:
        for field in ("produces", "consumes"):
            if not task[field]:
                del task[field]
    for schedule in data["schedules"]:
        if not schedule["require_fresh"]:
            del schedule["require_fresh"]
    for trigger in data["triggers"]:
        for field in ("assets", "when"):
            if trigger[field] is None:
                del trigger[field]


#: id(spec) -> (a weak reference to it, its canonical JSON, its version). A spec is
#: immutable, and a run's creation asks for its version more than once: hashing a
#: 10,000-task spec each time cost more than the rest of the trigger.
_CANONICAL: dict[int, tuple[weakref.ref[WorkflowSpec], str, str]] = {}


def _canonical(spec: WorkflowSpec) -> tuple[str, str]:
    found = _CANONICAL.get(id(spec))
    if found is not None and found[0]() is spec:
        return found[1], found[2]
    text = spec._to_json()
    version = hashlib.sha256(text.encode()).hexdigest()[:16]
    if len(_CANONICAL) >= _MOST_INDEXES:
        _CANONICAL.clear()
    _CANONICAL[id(spec)] = (weakref.ref(spec), text, version)
    return text, version


class _TaskIndex(NamedTuple):
    """Lookups over a spec's tasks, built once per `tasks` tuple (see `_index`)."""

    tasks: tuple[TaskSpec, ...]
    by_name: dict[str, TaskSpec]
    downstream: Mapping[str, tuple[str, ...]]
    #: Task name -> `WorkflowSpec.results_read`, filled as asked.
    reads: dict[str, tuple[str, ...]]
    leaves: frozenset[str]
    undoable: frozenset[str]


#: id(tasks) -> its index. The engine asks a spec for a task by name and for a task's
#: downstream names on every state change; a scan of a 10,000-task spec each time made
#: those quadratic. Keyed by the tuple's identity (an entry holds the tuple, so its id
#: cannot be reused while cached), not by an attribute of the spec: a model's fields are
#: compared in ``==`` and copied, stale, into ``model_copy(update=...)``.
_INDEXES: dict[int, _TaskIndex] = {}
_MOST_INDEXES = 256


def _index(tasks: tuple[TaskSpec, ...]) -> _TaskIndex:
    found = _INDEXES.get(id(tasks))
    if found is not None and found.tasks is tasks:
        return found
    out: dict[str, list[str]] = {t.name: [] for t in tasks}
    for task in tasks:
        for dep in task.depends_on:
            out[dep].append(task.name)
    made = _TaskIndex(
        tasks,
        {t.name: t for t in tasks},
        {k: tuple(v) for k, v in out.items()},
        {},
        frozenset(k for k, v in out.items() if not v),
        frozenset(t.name for t in tasks if t.undo is not None),
    )
    if len(_INDEXES) >= _MOST_INDEXES:
        _INDEXES.clear()  # specs in use are re-indexed on their next lookup
    _INDEXES[id(tasks)] = made
    return made


def _results_read(task: TaskSpec) -> tuple[str, ...]:
    upstream = set(task.depends_on)
    if not isinstance(task.action, PythonAction) or (task.when is not None and task.when.ref):
        return tuple(sorted(upstream))
    from orchestrion.spec.expressions import compile_expression

    found: set[str] = set()
    for each in task.inputs.values():
        if each.expr is not None:
            found |= compile_expression(each.expr).referenced_tasks
    return tuple(sorted(found & upstream))


def _check_expressions(spec: WorkflowSpec, task: TaskSpec, where: str) -> None:
    """Every expression and template a worker will evaluate for `task` compiles, reads only
    declared parameters, and reads only results the task will have (its dependencies; an
    undo also its own), so a mistake fails validation, not a run.

    The YAML loader makes the same checks with line numbers first; this catches what
    Python authoring lets through (``when="..."`` strings, hand-written ``{{ }}``).
    """
    mapped = task.map_over is not None
    deps = frozenset(task.depends_on)
    check = ExpressionCheck(where, frozenset(spec.params))
    if task.when is not None and task.when.expr is not None:
        check.expression(task.when.expr, "when", deps, item=False)
    if task.map_over is not None:
        check.expression(task.map_over, "map", deps, item=False)
    for key, value in task.inputs.items():
        if value.expr is not None:
            check.expression(value.expr, f"inputs.{key}", deps, item=mapped)
    check.action(task.action, "action", deps, item=mapped)
    if task.cache is not None and task.cache.key is not None:
        check.cache_key(task.cache.key)
    for i, ref in enumerate(task.produces):
        if ref.partition is not None:
            check.templates(ref.partition, f"produces[{i}].partition", frozenset(), item=mapped)
    if task.undo is not None:  # an undo step also sees the result of the task it undoes
        check.action(task.undo, "undo", deps | {task.name}, item=mapped)
