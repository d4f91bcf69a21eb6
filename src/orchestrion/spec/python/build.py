"""The state of one workflow build, and the placeholders a workflow function handles.

Building a Python workflow calls its function once. Inside that call, task calls do not run
anything: they record a `TaskSpec` on the current `BuildState` and return a `TaskRef`, a
placeholder for a result that will only exist at run time. Workflow parameters arrive as
`ParamRef` placeholders in the same way.

The current build lives in a `ContextVar`, not a module global, so that two threads (or two
nested builds, when one workflow's spec is computed while another is being built) never see
each other's state.
"""

from __future__ import annotations

import keyword
import re
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, NoReturn

import msgspec

from orchestrion.errors import SpecError
from orchestrion.spec.model import NAME_PATTERN, ParamSpec, ParamType, TaskSpec
from orchestrion.types import NO_RICH_REPR

__all__ = [
    "BuildState",
    "MappedTaskRef",
    "ParamRef",
    "Ref",
    "TaskRef",
    "build_context",
    "call_site",
    "current_build",
    "is_valid_name",
    "member_expr",
    "raise_spec",
]

_CURRENT: ContextVar[BuildState | None] = ContextVar("orchestrion_build", default=None)
_OWN_MODULES = "orchestrion.spec.python"
_NAME_RE = re.compile(NAME_PATTERN)


def current_build() -> BuildState | None:
    """The build in progress in this context, or None outside any workflow function."""
    return _CURRENT.get()


@contextmanager
def build_context(state: BuildState) -> Iterator[BuildState]:
    """Make `state` the current build for the duration of the block (nests and restores)."""
    token = _CURRENT.set(state)
    try:
        yield state
    finally:
        _CURRENT.reset(token)


def call_site() -> tuple[str | None, int | None]:
    """File and line of the nearest caller outside this package: where the user wrote the call.

    Errors found while building point there, not at our internals.
    """
    frame = sys._getframe(1)
    while frame is not None and str(frame.f_globals.get("__name__", "")).startswith(_OWN_MODULES):
        frame = frame.f_back  # type: ignore[assignment]
    if frame is None:
        return None, None
    return frame.f_code.co_filename, frame.f_lineno


def member_expr(base: str, key: str | int) -> str:
    """``base.key`` when `key` is a plain identifier, else ``base["key"]`` / ``base[0]``."""
    if isinstance(key, bool) or not isinstance(key, str | int):
        raise SpecError(f"a result can be indexed by a string or an int, not {key!r}")
    if isinstance(key, int):
        return f"{base}[{key}]"
    if key.isidentifier() and not keyword.iskeyword(key):
        return f"{base}.{key}"
    escaped = key.replace("\\", "\\\\").replace('"', '\\"')
    return f'{base}["{escaped}"]'


class BuildState(msgspec.Struct, eq=False):
    """What one workflow build has recorded so far."""

    workflow: str
    params: dict[str, ParamSpec]
    tasks: list[TaskSpec] = msgspec.field(default_factory=list)
    callables: dict[str, Callable[..., Any]] = msgspec.field(default_factory=dict)
    #: Template text produced by formatting a ref (``f"{ref}"``) -> that ref, so that the
    #: text can be recognised (and its dependency found) where it ends up.
    formatted: dict[str, Ref] = msgspec.field(default_factory=dict)
    #: Sub-workflows called by this one, by name (the registry needs them too).
    children: dict[str, Any] = msgspec.field(default_factory=dict)
    _names: set[str] = msgspec.field(default_factory=set)
    _explicit: set[str] = msgspec.field(default_factory=set)

    def error(self, task: str | None, problem: str) -> SpecError:
        """A SpecError naming this workflow, the task and the user's line of code."""
        source, line = call_site()
        where = f"workflow {self.workflow!r}: " + (f"task {task!r}: " if task else "")
        return SpecError(where + problem, source=source, line=line)

    def claim_name(self, base: str, *, explicit: bool) -> str:
        """A unique task name: `base` itself, or ``base_2``, ``base_3``... for repeated calls.

        An explicit name (``.options(name=...)``, ``shell(name, ...)``) is never renumbered:
        two tasks asking for the same explicit name is an error.
        """
        if explicit:
            if base in self._names:
                raise self.error(
                    base, "duplicate task name (names given explicitly must be unique)"
                )
            self._explicit.add(base)
            self._names.add(base)
            return base
        name, n = base, 1
        while name in self._names:
            n += 1
            name = f"{base}_{n}"
        self._names.add(name)
        return name

    def add_callable(self, ref: str, fn: Callable[..., Any], task: str) -> None:
        """Remember how the worker finds `ref`; two different callables may not share one ref."""
        known = self.callables.get(ref)
        if known is not None and known is not fn:
            raise self.error(
                task, f"two different callables share the reference {ref!r}; rename one of them"
            )
        self.callables[ref] = fn

    def check_owner(self, ref: Ref, task: str | None) -> None:
        """Refuse a placeholder that another (or a finished) workflow build made."""
        if ref.build is not self:
            raise self.error(
                task,
                f"{ref.expr} belongs to workflow {ref.build.workflow!r}, not to this one; "
                "pass values between workflows as sub-workflow parameters",
            )

    def param_type(self, name: str) -> ParamType | None:
        """The declared type of parameter `name`, or None when it is not declared."""
        spec = self.params.get(name)
        return spec.type if spec else None


class Ref(msgspec.Struct, frozen=True, eq=False):
    """A placeholder for a value known only at run time, as an expression over the run scope.

    It can be indexed (``ref["rows"]``, ``ref[0]``) to name part of the value, passed to
    other tasks, and formatted into a string for shell, HTTP and sub-workflow fields (it
    formats as the template ``{{ expr }}``). Testing (``if ref:``), comparing (``ref == 3``),
    iterating or measuring it raises a SpecError at build time, because the value does not
    exist yet: a silent ``False`` would quietly drop tasks.
    """

    expr: str
    build: BuildState
    #: The task whose result this names (None for a parameter).
    task: str | None = None

    def __getitem__(self, key: str | int) -> Ref:
        return type(self)(member_expr(self.expr, key), self.build, self.task)

    def __bool__(self) -> NoReturn:
        raise self.build.error(
            None,
            f"{self.expr} has no value while the workflow is being built, so it cannot be "
            "used in 'if', 'and', 'or' or 'not'; make the task conditional with "
            "when=<callable or expression> instead",
        )

    def __iter__(self) -> NoReturn:
        raise self.build.error(
            None,
            f"{self.expr} cannot be iterated while the workflow is being built; "
            "use task.map(...) to run a task once per element at run time",
        )

    def __len__(self) -> NoReturn:
        raise self.build.error(None, f"{self.expr} has no length while the workflow is built")

    def _compare(self, other: object) -> NoReturn:
        raise self.build.error(
            None,
            f"{self.expr} cannot be compared while the workflow is being built (its value "
            "exists only at run time); compare inside a task, or use when=",
        )

    __eq__ = __ne__ = __lt__ = __le__ = __gt__ = __ge__ = _compare

    def __hash__(self) -> int:
        return id(self)

    def __str__(self) -> str:
        text = "{{ " + self.expr + " }}"
        self.build.formatted[text] = self
        return text

    def __format__(self, spec: str) -> str:
        return str(self)

    def __repr__(self) -> str:
        return f"<{type(self).__name__} {self.expr}>"

    # msgspec's would print the whole build (every task and callable) to rich
    __rich_repr__ = NO_RICH_REPR


class TaskRef(Ref, frozen=True):
    """The result of a task (or of a sub-workflow run) in the workflow being built."""

    @property
    def mapped(self) -> bool:
        """True for the gathered list of a mapped task."""
        return False


class MappedTaskRef(TaskRef, frozen=True):
    """The gathered results of a mapped task: a list, one element per mapped item."""

    @property
    def mapped(self) -> bool:
        """True: this is the gathered list; index it for one item's result."""
        return True

    def __getitem__(self, key: str | int) -> Ref:
        if not isinstance(key, int) or isinstance(key, bool):
            raise self.build.error(
                self.task,
                f"{self.expr} is the list of a mapped task's results; index it with an int",
            )
        return TaskRef(member_expr(self.expr, key), self.build, self.task)


class ParamRef(Ref, frozen=True):
    """A workflow parameter (or part of an object parameter)."""


def is_valid_name(name: str) -> bool:
    """True when `name` fits the spec's name pattern."""
    return _NAME_RE.fullmatch(name) is not None


def raise_spec(message: str, fn: Callable[..., Any] | None = None) -> NoReturn:
    """Raise a SpecError located at the definition of `fn` (decoration-time problems)."""
    code = getattr(fn, "__code__", None)
    if code is None:
        raise SpecError(message)
    raise SpecError(message, source=code.co_filename, line=code.co_firstlineno)
