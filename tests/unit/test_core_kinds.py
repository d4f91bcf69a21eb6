"""The core kinds a worker runs through `TaskKind` (issue 15): shell, http, publish and
container have runners in the registry the worker uses, found without scanning the plugins'
entry points, never YAML keys of the plugin form; one code path (`run_kind`) runs them with
the attempt's context, deadline included."""

from __future__ import annotations

import threading
import time
from types import SimpleNamespace
from typing import Any

import pytest

from orchestrion.auth.secret_box import Secret
from orchestrion.errors import SpecError, TaskTimeout
from orchestrion.spec import kinds as kinds_module
from orchestrion.spec.kinds import CORE_KINDS, TaskKind, installed_kinds
from orchestrion.spec.model import (
    ContainerAction,
    HttpAction,
    PublishAction,
    PythonAction,
    ShellAction,
)
from orchestrion.worker.kinds import AttemptKindContext, connection_names, run_kind
from tests.helpers import task_context


def _fresh(monkeypatch: pytest.MonkeyPatch, points: list[Any] | None) -> Any:
    """A registry as `installed_kinds` builds it, over `points` (None: scanning fails)."""

    def scan() -> list[Any]:
        if points is None:
            raise AssertionError("the entry points were scanned")
        return points

    monkeypatch.setattr(kinds_module, "_entry_points", scan)
    return installed_kinds.__wrapped__()


def test_the_core_kinds_are_found_without_scanning_plugins(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry = _fresh(monkeypatch, None)
    for name in ("shell", "http", "publish", "container"):
        kind = registry.core_kind(name)
        assert isinstance(kind, TaskKind) and kind.name == name
        assert registry.core_kind(name) is kind  # loaded once
    with pytest.raises(SpecError, match="no runner for the core task kind 'python'"):
        registry.core_kind("python")


def test_core_kinds_are_no_plugin_keys_and_no_plugin_takes_their_names(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    points = [SimpleNamespace(name=name, value="evil:Kind") for name in ("container", "shell")]
    registry = _fresh(monkeypatch, points)
    assert registry.names() == ["sql"]
    assert "shell" not in registry and "container" not in registry


def test_the_process_registry_has_the_core_kinds_apart() -> None:
    assert set(CORE_KINDS) <= set(installed_kinds().core)
    assert "shell" not in installed_kinds().names()


def test_the_worker_opens_the_connections_each_kind_names() -> None:
    publish = PublishAction(broker="redis", connection="events", stream="s", body="x")
    assert connection_names(publish) == ("events",)
    assert connection_names(ShellAction(argv=("true",))) == ()
    assert connection_names(HttpAction(url="https://example.org/")) == ()
    assert connection_names(ContainerAction(image="localhost/x:1")) == ()
    assert connection_names(PythonAction(ref="m:f")) == ()
    assert connection_names(None) == ()


def _context(**kw: Any) -> AttemptKindContext:
    task = task_context(
        params={"who": "Ada"},
        cancel_event=threading.Event(),
        secret_values={"token": Secret("s3cret-value")},
    )
    scope = {"params": {"who": "Ada"}, "tasks": {"up": {"n": 3}}, "item": None}
    return AttemptKindContext(task=task, scope=scope, **{"deadline": None, **kw})


def test_a_shell_task_runs_through_its_kind_with_templates_and_secrets() -> None:
    action = ShellAction(
        script='echo "$GREETING ${#TOKEN}"',  # the secret's length, not the secret
        env={"GREETING": "hi {{ params.who }} x{{ tasks.up.n }}"},
    )
    context = _context(task_secrets={"TOKEN": "token"})
    assert run_kind(action, context) == "hi Ada x3 12"


def test_the_attempts_deadline_stops_a_kind_before_its_timeout() -> None:
    """The deadline counts from the claim: a kind started late stops at it, with its own
    message (the task's timeout in it), not after the full timeout from its start."""
    context = _context(deadline=time.monotonic() + 0.3, timeout=30.0)
    started = time.monotonic()
    with pytest.raises(TaskTimeout, match="timed out after 30s; process group killed"):
        run_kind(ShellAction(argv=("sleep", "10")), context)
    assert time.monotonic() - started < 5
