"""A pending approval is announced by notification rules that ask for
``approval.pending`` (a webhook on loopback receives it, once), and a duty pass resolves
timeouts and sensors without any worker (the store's due-times, not sleeping threads)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion.app import App
from orchestrion.auth.secret_box import KeyRing
from orchestrion.auth.ssrf import AllowList
from orchestrion.clock import FakeClock
from orchestrion.errors import IllegalTransition, InvalidValue
from tests.helpers import make_app
from tests.integration.test_notifications import HOOK_KEY, KEY, _Hook

SPEC = {
    "name": "release",
    "tags": ["prod"],
    "tasks": [
        {"name": "sign_off", "action": {"kind": "approval", "role": "editor",
                                        "message": "Release 1.2?", "timeout": 60}},
        {"name": "flag", "action": {"kind": "wait", "file": "{FLAG}", "every": 5},
         "depends_on": ["sign_off"]},
    ],
}  # fmt: skip


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = make_app(
        tmp_path,
        clock=FakeClock(),
        key_ring=KeyRing([KEY]),
        http_allow=AllowList.parse(["127.0.0.1/32"]),
    )
    spec = json.loads(json.dumps(SPEC).replace("{FLAG}", str(tmp_path / "flag")))
    app.workflows.register_spec(spec, source=None)
    try:
        yield app
    finally:
        app.close()


def test_a_pending_approval_is_announced_once(app: App) -> None:
    hook = _Hook()
    try:
        app.secrets.set_secret("default", "hook-key", HOOK_KEY)
        app.notifications.put_channel(
            "default", "hook", kind="webhook", config={"url": hook.url}, secret="hook-key"
        )
        app.notifications.put_rule(
            "default", "asks", channel="hook", events=["approval.pending"], tags=["prod"]
        )
        duty = app.runtime.notifications("test")
        duty.pass_once()
        run = app.runs.trigger("release")
        duty.pass_once()
        duty.pass_once()
        [(_, body)] = hook.received
        document = json.loads(body)
        assert document["event"] == "approval.pending"
        assert document["run_id"] == run.id
        assert "sign_off" in document["message"] and "Release 1.2?" in document["message"]
    finally:
        hook.close()


def test_timeouts_and_sensors_are_due_times_resolved_by_the_duty(app: App, tmp_path: Path) -> None:
    clock = app.clock
    assert isinstance(clock, FakeClock)
    timed_out = app.runs.trigger("release")
    decided = app.runs.trigger("release")
    duty = app.runtime.wait_duty(None)
    assert duty.pass_once() is not None
    assert app.store.waits.count_waiting() >= 2
    app.waits.approve(decided.id, "sign_off", reason="go")
    with pytest.raises(IllegalTransition):  # decided once: a second decision is refused
        app.waits.reject(decided.id, "sign_off")
    # The sensor is checked at once, then every 5 s of the clock, never in between.
    assert duty.pass_once().checked == [_task_run(app, decided.id, "flag")]  # type: ignore[union-attr]
    assert duty.pass_once().checked == []  # type: ignore[union-attr]
    clock.advance(61)
    done = duty.pass_once()
    assert done is not None and done.timed_out == [_task_run(app, timed_out.id, "sign_off")]
    assert app.runs.get_run(timed_out.id).state.value == "failed"
    (tmp_path / "flag").write_text("x")
    assert duty.pass_once().came_true == []  # type: ignore[union-attr]  # not due yet
    clock.advance(5)
    assert duty.pass_once().came_true == [_task_run(app, decided.id, "flag")]  # type: ignore[union-attr]
    assert app.runs.get_run(decided.id).state.value == "succeeded"
    assert app.store.waits.count_waiting() == 0
    with pytest.raises(InvalidValue):
        app.waits.signal(decided.id, "no spaces allowed")


def _task_run(app: App, run_id: str, task: str) -> int:
    return next(t.id for t in app.runs.task_runs(run_id) if t.task_name == task)
