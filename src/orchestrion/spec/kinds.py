"""Task kinds as plugins (issue 15): the interface a kind implements, and where kinds are found.

A *task kind* is what a task does, named by the key a YAML task uses for it (``sql:``,
``example-greet:``). Orchestrion's first kinds (``python``, ``shell``, ``http``,
``workflow``, ``publish``, ``container``) are part of the spec's `Action` union and keep their
own models, so that stored specs and version hashes never change; every kind after them,
built in (``sql``) or third-party, implements `TaskKind` and is stored the same way, as a
`PluginAction` (``{"kind": "plugin", "plugin": NAME, "options": {...}}``). A worker runs
every kind but ``python`` and ``workflow`` through `TaskKind` too: the core ones' runners
(`CORE_KINDS`) take their own spec model as options (docs/architecture.md says why Python
and sub-workflow tasks stay apart).

A kind is:

* a **name** (the YAML key; lowercase letters, digits, ``-`` and ``_``);
* an **options model** (pydantic), checked when a workflow is loaded (`TaskKind.validate`),
  so a mistake fails ``orchestrion validate`` with the file and line, not a run;
* the **templated** option fields: their string leaves may hold ``{{ params.x }}`` /
  ``{{ tasks.a.y }}`` templates, rendered by the worker before `TaskKind.run`; templates in
  any other field are refused at load time (a SQL query is never templated: values are
  bound parameters);
* the **connections** its options name (`TaskKind.connections`): the worker opens them
  before the attempt and masks their passwords like declared secrets;
* `TaskKind.run`, called by a worker with the rendered, validated options and a
  `KindContext` (parameters, secrets, connections, log, cancellation, the deadline). It
  returns a JSON value (the task's result) or raises: `orchestrion.errors.TaskError` (or a
  subclass) fails the attempt and goes through the task's retry policy, `TaskTimeout` marks
  it timed out, and `CancelRequested` (from `KindContext.check_cancel`) ends it canceled.

Third-party kinds are found through the ``orchestrion.task_kinds`` entry point group: a
package declares ``[project.entry-points."orchestrion.task_kinds"] NAME = "pkg.mod:Kind"``
(a `TaskKind` subclass or instance), and the kind appears in YAML, ``orchestrion validate``,
``orchestrion schema`` and `orchestrion.spec.python.plugin` without a change to
Orchestrion. Entry points are read, and kinds imported, only when a workflow uses a kind
that is not one of the core ones: start-up stays as cheap as before.
"""

from __future__ import annotations

import functools
import importlib
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, ClassVar, Final, Generic, Protocol, TypeVar

from orchestrion.errors import SpecError

__all__ = [
    "BUILTIN_KINDS",
    "CORE_ACTIONS",
    "CORE_KINDS",
    "ENTRY_POINT_GROUP",
    "KIND_NAME_PATTERN",
    "KindConnection",
    "KindContext",
    "KindRegistry",
    "TaskKind",
    "builtin_kinds",
    "installed_kinds",
    "options_message",
]

log = logging.getLogger(__name__)

#: The entry point group third-party task kinds are declared in.
ENTRY_POINT_GROUP: Final = "orchestrion.task_kinds"

#: The kinds that are part of the spec's `Action` union (their own models and YAML keys).
CORE_ACTIONS: Final = ("python", "shell", "http", "workflow", "publish", "container")

#: Kinds that ship with Orchestrion but go through this interface, as ``module:attr``:
#: loaded the same way as an entry point, so a built-in kind is no different from a plugin.
BUILTIN_KINDS: Final[Mapping[str, str]] = {"sql": "orchestrion.kinds.sql:SqlKind"}

#: The runners of the core kinds that are not Python code or a store operation, as
#: ``module:attr``. Their specs stay the `Action` union's own models (stored JSON and version
#: hashes unchanged), but a worker runs them through this interface, like every other kind:
#: `TaskKind.render` makes the attempt's concrete model, `TaskKind.run` runs it. They live in
#: the worker (they drive processes, sockets and container engines) and are imported only by
#: a worker running such a task; they are not YAML keys of their own (`KindRegistry.names`).
CORE_KINDS: Final[Mapping[str, str]] = {
    name: f"orchestrion.worker.core_kinds:{cls}"
    for name, cls in (
        ("shell", "ShellKind"),
        ("http", "HttpKind"),
        ("publish", "PublishKind"),
        ("container", "ContainerKind"),
    )
}

#: A kind's name, which is its YAML key.
KIND_NAME_PATTERN: Final = r"^[a-z][a-z0-9_-]{0,62}$"

#: YAML task keys a kind may not take (the task's own fields).
_RESERVED: Final = frozenset(
    {
        "depends_on", "inputs", "when", "trigger_rule", "map", "retry", "timeout",
        "concurrency", "priority", "queue", "requires", "undo", "description", "secrets",
        "concurrency_key", "key_limit", "executor", "plugin", "name", "kind",
    }
)  # fmt: skip

#: A kind's options: a pydantic model for a plugin (its author's), the spec's own model
#: for a core kind (`orchestrion.worker.core_kinds`, which overrides what differs).
#: pydantic is imported by a plugin's options module, not here.
OptionsT = TypeVar("OptionsT")


class KindConnection(Protocol):
    """A named connection of the workflow's namespace, opened for this attempt: where to
    connect and, through `password_text`, the password from its secret (masked in every
    log line, error and result of the task)."""

    @property
    def name(self) -> str:
        """The connection's name."""
        ...

    @property
    def kind(self) -> str:
        """What it connects to: ``postgres``, ``mysql``, ``sqlite``, ``redis``, ..."""
        ...

    @property
    def url(self) -> str:
        """Its URL, which never holds a password."""
        ...

    @property
    def username(self) -> str | None:
        """The user to log in as, if the URL does not name one."""
        ...

    def password_text(self) -> str | None:
        """The password, for the client library that sends it."""
        ...


class KindContext(Protocol):
    """What `TaskKind.run` sees of its attempt. The worker makes one per attempt."""

    @property
    def run_id(self) -> str:
        """The run's id."""
        ...

    @property
    def task_name(self) -> str:
        """The task's name (``undo:NAME`` for an undo step)."""
        ...

    @property
    def attempt(self) -> int:
        """The attempt's number, from 1."""
        ...

    @property
    def idempotency_key(self) -> str:
        """Stable across the attempts of one task run: use it to make effects happen once."""
        ...

    @property
    def params(self) -> Mapping[str, Any]:
        """The run's parameters."""
        ...

    @property
    def deadline(self) -> float | None:
        """When the attempt must end, as a `time.monotonic` value; None without a timeout."""
        ...

    @property
    def cancel_event(self) -> threading.Event:
        """Set when the run or task is canceled, the lease lost or the worker stopping."""
        ...

    def time_left(self) -> float | None:
        """Seconds until `deadline` (at least 0), or None without a timeout."""
        ...

    def check_cancel(self) -> None:
        """Raise `CancelRequested` once the attempt should stop; call it between steps."""
        ...

    def log(self, text: str) -> None:
        """Write a line to the attempt's log (secret values are masked)."""
        ...

    def secret(self, name: str) -> str:
        """The value of a secret the task declared (``secrets:``), from its namespace."""
        ...

    def connection(self, name: str) -> KindConnection:
        """A connection that `TaskKind.connections` named, opened for this attempt."""
        ...


class TaskKind(Generic[OptionsT]):
    """The base of a task kind: subclass it, set `name`, `options` and `templated`, and
    override `run` (and, where they apply, `check` and `connections`).

    Instances hold no state between attempts: a worker may run many attempts of one kind
    at once, in threads. Import heavy libraries inside `run`, not at module level: a kind's
    module is imported to validate workflows, where only its options are needed.
    """

    #: The YAML key, e.g. ``"sql"``.
    name: ClassVar[str]
    #: The options model; its fields are the keys of the YAML mapping. Use
    #: ``model_config = ConfigDict(extra="forbid")`` so that a misspelt field is refused.
    options: type[OptionsT]
    #: The top-level option fields whose strings may hold ``{{ }}`` templates.
    templated: ClassVar[tuple[str, ...]] = ()
    #: One line for the docs and the JSON Schema.
    summary: ClassVar[str] = ""

    def validate(self, raw: Mapping[str, Any]) -> OptionsT:
        """The options of `raw` (a YAML mapping, or stored spec options), checked; a
        `ValueError` (pydantic's `ValidationError` is one) names what is wrong."""
        model: Any = self.options
        options: OptionsT = model.model_validate(dict(raw))
        self.check(options)
        return options

    def render(self, stored: Any, scope: Mapping[str, Any]) -> Any:
        """The options of one attempt before `validate`: `stored` (the options the spec
        holds) with the string leaves of the `templated` fields rendered over `scope`
        (``params``, ``tasks``, ``item``). Called by the worker only; a core kind, whose
        stored options are its own spec model, overrides it to render that model."""
        from orchestrion.spec.expressions import render

        options = dict(stored)
        for name in self.templated:
            if name in options:
                options[name] = render(options[name], scope)
        return options

    def check(self, options: OptionsT) -> None:
        """Checks across fields that the model cannot express; raise `ValueError`."""

    def connections(self, options: OptionsT) -> tuple[str, ...]:
        """The names of the connections `run` will ask its context for."""
        return ()

    def run(self, options: OptionsT, ctx: KindContext) -> Any:
        """Run one attempt: return its JSON result, or raise (see the module docstring)."""
        raise NotImplementedError(f"task kind {self.name!r} does not implement run()")

    def json_schema(self, ref_template: str = "#/$defs/{model}") -> dict[str, Any]:
        """The JSON Schema of the options (what editors see for this kind's YAML key);
        `ref_template` places the models it nests (pydantic's argument of that name)."""
        model: Any = self.options
        schema: dict[str, Any] = model.model_json_schema(ref_template=ref_template)
        if self.summary:
            schema.setdefault("description", self.summary)
        return schema

    def stored(self, options: OptionsT) -> dict[str, Any]:
        """The options as the spec stores them: JSON, fields at their default left out, so a
        kind that gains an optional field later keeps the versions of existing workflows."""
        model: Any = options
        stored: dict[str, Any] = model.model_dump(mode="json", exclude_defaults=True)
        return stored


def options_message(exc: ValueError) -> str:
    """A one-line description of what is wrong with a kind's options (a `ValueError`, or a
    validation error listing its problems: pydantic's for a plugin, `Invalid` for a core
    kind's model)."""
    errors = getattr(exc, "errors", None)
    if not callable(errors):
        return str(exc)
    parts = []
    for error in errors():
        where = ".".join(str(p) for p in error["loc"])
        message = str(error["msg"]).removeprefix("Value error, ")
        parts.append(f"{where}: {message}" if where else message)
    return "; ".join(parts)


class KindRegistry:
    """Task kinds by name, each loaded (imported) on first use from ``module:attr``.

    Built from `BUILTIN_KINDS` and the entry point group by `installed_kinds`; a test or an
    embedding program may build its own. A service with a lock and a cache, not a value:
    a plain class (a dataclass would cost half a millisecond of every start).
    """

    __slots__ = ("_loaded", "_lock", "core", "origins", "sources")

    def __init__(
        self,
        sources: Mapping[str, str | TaskKind[Any]],
        origins: Mapping[str, str] | None = None,
        core: Mapping[str, str | TaskKind[Any]] | None = None,
    ) -> None:
        #: name -> ``module:attr`` (a `TaskKind` subclass or instance), or the kind itself.
        self.sources = sources
        #: Where a source came from, for error messages (``package 'orchestrion-example'``).
        self.origins: Mapping[str, str] = {} if origins is None else origins
        #: The core kinds' runners (`CORE_KINDS`): found by `core_kind`, not YAML keys.
        self.core: Mapping[str, str | TaskKind[Any]] = {} if core is None else core
        self._loaded: dict[str, TaskKind[Any]] = {}
        self._lock = threading.Lock()

    def names(self) -> list[str]:
        """Every kind's name, sorted."""
        return sorted(self.sources)

    def __contains__(self, name: object) -> bool:
        return name in self.sources

    def get(self, name: str) -> TaskKind[Any]:
        """The kind named `name`; `SpecError` if there is none or it does not load."""
        with self._lock:
            found = self._loaded.get(name)
            if found is None:
                found = self._loaded[name] = self._load(name, self.sources.get(name))
            return found

    def core_kind(self, name: str) -> TaskKind[Any]:
        """The runner of the core kind `name` (``shell``, ``http``, ...); `SpecError` if
        there is none. Kept apart from `get`, so a core kind never turns into a plugin key."""
        source = self.core.get(name)
        if source is None:
            raise SpecError(f"no runner for the core task kind {name!r}")
        with self._lock:
            found = self._loaded.get(f"core:{name}")
            if found is None:
                found = self._loaded[f"core:{name}"] = self._load(name, source, "core")
            return found

    def all(self) -> list[TaskKind[Any]]:
        """Every kind, loaded, by name."""
        return [self.get(name) for name in self.names()]

    def _load(
        self, name: str, source: str | TaskKind[Any] | None, origin: str | None = None
    ) -> TaskKind[Any]:
        if source is None:
            known = ", ".join(self.names()) or "none"
            raise SpecError(
                f"unknown task kind {name!r} (installed: {known}); a plugin kind is"
                f" installed as a Python package declaring the {ENTRY_POINT_GROUP!r} entry point"
            )
        if not isinstance(source, str):
            return _checked(name, source)
        origin = origin or self.origins.get(name, source)
        module, _, attr = source.partition(":")
        try:
            target: Any = importlib.import_module(module)
            for part in attr.split(".") if attr else ():
                target = getattr(target, part)
        except Exception as exc:
            raise SpecError(f"task kind {name!r} ({origin}) does not load: {exc}") from exc
        return _checked(name, target() if isinstance(target, type) else target)


def _checked(name: str, kind: Any) -> TaskKind[Any]:
    if not isinstance(kind, TaskKind):
        raise SpecError(f"task kind {name!r} is not an orchestrion.spec.kinds.TaskKind")
    if kind.name != name:
        raise SpecError(f"task kind {name!r} calls itself {kind.name!r}")
    return kind


def builtin_kinds() -> KindRegistry:
    """The kinds that ship with Orchestrion (what the committed JSON Schema documents)."""
    return KindRegistry(
        dict(BUILTIN_KINDS), {n: "built in" for n in BUILTIN_KINDS}, core=dict(CORE_KINDS)
    )


@functools.cache
def installed_kinds() -> KindRegistry:
    """The built-in kinds, every kind an installed package declares and the core kinds'
    runners, found once per process (an installed package does not change under a running
    process). The entry points are read on the first look-up of a plugin-form kind, not
    here: a worker running only core kinds (`KindRegistry.core_kind`) never scans them."""
    discovery = _Discovery()
    return KindRegistry(
        _Lazy(lambda: discovery.found()[0]),
        _Lazy(lambda: discovery.found()[1]),
        core=dict(CORE_KINDS),
    )


V = TypeVar("V")


class _Lazy(Mapping[str, V]):
    """A mapping made by `load` when first read (`_Discovery` keeps what it made)."""

    __slots__ = ("load",)

    def __init__(self, load: Callable[[], Mapping[str, V]]) -> None:
        self.load = load

    def __getitem__(self, key: str) -> V:
        return self.load()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.load())

    def __len__(self) -> int:
        return len(self.load())


class _Discovery:
    """The built-in kinds plus those the entry point group declares, read once. A plugin
    whose name is taken or malformed is left out with a warning rather than failing every
    load."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._found: tuple[dict[str, str | TaskKind[Any]], dict[str, str]] | None = None

    def found(self) -> tuple[dict[str, str | TaskKind[Any]], dict[str, str]]:
        """(name -> source, name -> origin)."""
        with self._lock:
            if self._found is None:
                self._found = self._discover()
            return self._found

    @staticmethod
    def _discover() -> tuple[dict[str, str | TaskKind[Any]], dict[str, str]]:
        sources: dict[str, str | TaskKind[Any]] = dict(BUILTIN_KINDS)
        origins = {n: "built in" for n in BUILTIN_KINDS}
        for point in _entry_points():
            name = point.name
            taken = name in sources or name in CORE_ACTIONS or name in CORE_KINDS
            if taken or name in _RESERVED or not re.fullmatch(KIND_NAME_PATTERN, name):
                log.warning("task_kind.refused", extra={"kind": name, "value": point.value})
                continue
            sources[name] = point.value
            dist = getattr(point, "dist", None)
            origins[name] = f"package {getattr(dist, 'name', '?')!r}, {point.value}"
        return sources, origins


def _entry_points() -> Iterable[Any]:
    from importlib.metadata import entry_points  # reads every installed package's metadata

    return sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda p: p.name)
