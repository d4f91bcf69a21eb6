"""Notifications and SLAs (issue 16, part 3) over a real database (SQLite, or PostgreSQL
with ``ORCHESTRION_TEST_DATABASE=postgres``), real runs, a real SMTP server on loopback
(aiosmtpd) and real HTTP receivers on loopback."""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from email import message_from_bytes
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from orchestrion.app import App
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.auth.ssrf import AllowList
from orchestrion.errors import NotFound, ParameterError
from orchestrion.store.records import AuditFilter, ConsumerRecord, WorkerRecord
from orchestrion.triggers.notifications import Notifications
from tests.helpers import make_app

KEY = MasterKey("k", os.urandom(32))
HOOK_KEY = "hook-key-sentinel-8c2f"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    app = make_app(tmp_path, key_ring=KeyRing([KEY]), http_allow=AllowList.parse(["127.0.0.1/32"]))
    try:
        yield app
    finally:
        app.close()


def _register(app: App, name: str, argv: list[str], **extra: Any) -> None:
    data = {"name": name, "tags": ["nightly"], "tasks": [{"name": "only", "action": {
        "kind": "shell", "argv": argv}}], **extra}  # fmt: skip
    app.workflows.register_spec(data, source=None)


def _run(app: App, name: str) -> str:
    run = app.runs.trigger(name)
    app.runtime.run_until_done(run.id, every=0.05)
    return run.id


def _duty(app: App, **options: Any) -> Notifications:
    return app.runtime.notifications("test", **options)


# ------------------------------------------------------------------ receivers


class _Smtp:
    def __init__(self) -> None:
        self.messages: list[tuple[list[str], bytes]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.messages.append((list(envelope.rcpt_tos), bytes(envelope.content)))
        return "250 OK"


@pytest.fixture
def smtp() -> Iterator[tuple[int, _Smtp]]:
    handler = _Smtp()
    port = _free_port()
    controller = Controller(handler, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield port, handler
    finally:
        controller.stop()


class _Hook:
    """A webhook receiver: answers each request by the next of `plan` (a status, or
    ``hang`` to sleep past the sender's timeout), 200 once the plan is used up."""

    def __init__(self, plan: list[int | str] | None = None) -> None:
        self.plan = list(plan or [])
        self.received: list[tuple[dict[str, str], bytes]] = []
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                step = hook.plan.pop(0) if hook.plan else 200
                hook.received.append((dict(self.headers), body))
                if step == "hang":
                    time.sleep(1.5)
                    step = 200
                self.send_response(int(step))
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _verify(headers: dict[str, str], body: bytes, key: str) -> bool:
    """What a receiver does: recompute the signature over timestamp and body."""
    stamp = headers["X-Orchestrion-Timestamp"]
    expected = hmac.new(key.encode(), f"{stamp}.".encode() + body, hashlib.sha256).hexdigest()
    given = headers["X-Orchestrion-Signature"].removeprefix("sha256=")
    return hmac.compare_digest(expected, given) and abs(time.time() - int(stamp)) < 300


# ------------------------------------------------------------------ tests


def test_a_failed_run_sends_an_email_once(app: App, smtp: tuple[int, _Smtp]) -> None:
    port, server = smtp
    app.notifications.put_channel(
        "default", "ops-mail", kind="smtp",
        config={"host": "127.0.0.1", "port": port, "sender": "orch@example.com",
                "to": ["ops@example.com"]},
    )  # fmt: skip
    app.notifications.put_rule(
        "default", "failures", channel="ops-mail", events=["run.failed"], tags=["nightly"]
    )
    duty = _duty(app)  # the rule started the history cursor: no pass needed before the run
    _register(app, "nightly-load", ["sh", "-c", "echo boom >&2; exit 3"])
    run_id = _run(app, "nightly-load")
    assert app.runs.get_run(run_id).state.value == "failed"
    report = duty.pass_once()
    assert report is not None and report.enqueued == 1 and len(report.sent) == 1
    [(rcpt, raw)] = server.messages
    assert rcpt == ["ops@example.com"]
    email = message_from_bytes(raw)
    assert email["Subject"].startswith(f"[orchestrion] run.failed: nightly-load run {run_id}")
    assert run_id in email.get_payload()
    # Passes again, and another process's duty reading the same history: nothing twice.
    assert duty.pass_once() is not None
    fresh = _duty(app)
    duty.lease.release()  # type: ignore[union-attr]
    fresh.pass_once()
    assert len(server.messages) == 1
    [delivery] = app.notifications.list_deliveries()
    assert (delivery.state, delivery.attempts, delivery.event) == ("sent", 1, "run.failed")
    audit = app.accounts.list_audit(AuditFilter(action="notification.deliver"))
    assert [a.outcome for a in audit] == ["ok"]


def test_a_webhook_is_signed_and_verified(app: App) -> None:
    hook = _Hook()
    try:
        app.secrets.set_secret("default", "hook-key", HOOK_KEY)
        app.notifications.put_channel(
            "default", "hook", kind="webhook", config={"url": hook.url}, secret="hook-key"
        )
        app.notifications.put_rule(
            "default", "done", channel="hook", events=["run.succeeded"], workflows="ok-*",
            template="{{ workflow }} finished ({{ event }})",
        )  # fmt: skip
        duty = _duty(app)
        duty.pass_once()
        _register(app, "ok-wf", ["true"])
        _register(app, "other", ["true"])  # the pattern leaves it out
        run_id = _run(app, "ok-wf")
        _run(app, "other")
        duty.pass_once()
        [(headers, body)] = hook.received
        assert _verify(headers, body, HOOK_KEY)
        assert not _verify(headers, body.replace(b"ok-wf", b"ok-wX"), HOOK_KEY)
        document = json.loads(body)
        assert document["message"] == "ok-wf finished (run.succeeded)"
        assert (document["run_id"], document["rule"]) == (run_id, "done")
        assert headers["X-Orchestrion-Delivery"] == str(document["delivery"])
        # The key is nowhere in what is listed.
        assert HOOK_KEY not in repr(app.notifications.list_deliveries())
        assert HOOK_KEY not in repr(app.notifications.list_channels())
    finally:
        hook.close()


def test_a_receiver_that_is_down_is_retried_and_the_run_is_not_delayed(app: App) -> None:
    hook = _Hook(plan=["hang", 503])  # a timeout, then an error, then it is back
    try:
        app.notifications.put_channel("default", "hook", kind="webhook", config={"url": hook.url})
        app.notifications.put_rule("default", "all", channel="hook", events=["run.succeeded"])
        duty = _duty(app, every=0.05, retry_base=0.1)
        duty.outbound = type(duty.outbound)(allow=duty.outbound.allow, timeout=0.5)
        duty.pass_once()
        _register(app, "quick", ["true"])
        duty.start()
        try:
            first = _run(app, "quick")
            started = time.monotonic()
            second = _run(app, "quick")  # while the first's delivery is failing
            took = time.monotonic() - started
            deadline = time.monotonic() + 15
            while time.monotonic() < deadline:
                states = {d.run_id: d for d in app.notifications.list_deliveries()}
                if len(states) == 2 and all(d.state == "sent" for d in states.values()):
                    break
                time.sleep(0.05)
        finally:
            duty.stop()
        assert took < 2.0, took
        runs = {r: app.runs.get_run(r) for r in (first, second)}
        for run in runs.values():
            assert run.finished_at is not None and run.finished_at - run.created_at < 2.0
        assert all(d.state == "sent" for d in states.values()), states
        # The hang (timed out) and the 503 were each retried: 4 attempts for 2 messages.
        assert sum(d.attempts for d in states.values()) == 4
        assert len(hook.received) == 4
        audit = app.accounts.list_audit(AuditFilter(action="notification.deliver"))
        assert sorted(a.outcome for a in audit) == ["failed", "failed", "ok", "ok"]
    finally:
        hook.close()


def test_a_receiver_that_stays_down_fails_after_the_last_attempt(app: App) -> None:
    app.notifications.put_channel(
        "default", "dead", kind="webhook", config={"url": f"http://127.0.0.1:{_free_port()}/"}
    )
    app.notifications.put_rule("default", "all", channel="dead", events=["run.failed"])
    duty = _duty(app, retry_base=10.0, max_attempts=3)
    duty.pass_once()
    _register(app, "bad", ["false"])
    _run(app, "bad")
    now = time.time()
    duty.pass_once(now)
    [d] = app.notifications.list_deliveries()
    assert (d.state, d.attempts) == ("pending", 1)
    assert d.next_attempt_at == pytest.approx(now + 10.0)
    assert "ConnectError" in (d.last_error or "")
    duty.pass_once(now + 5)  # not due yet
    assert app.notifications.list_deliveries()[0].attempts == 1
    duty.pass_once(now + 10)
    assert app.notifications.list_deliveries()[0].next_attempt_at == pytest.approx(now + 30)
    duty.pass_once(now + 30)
    [d] = app.notifications.list_deliveries()
    assert (d.state, d.attempts) == ("failed", 3)
    assert app.notifications.list_deliveries(state="failed") == [d]


def test_an_sla_miss_fires_once_per_run(app: App) -> None:
    hook = _Hook()
    try:
        app.notifications.put_channel("default", "hook", kind="webhook", config={"url": hook.url})
        app.notifications.put_rule("default", "late", channel="hook", events=["run.late"])
        _register(app, "slow", ["sleep", "1.5"], sla={"deadline": "0.5s"})
        _register(app, "fast", ["true"], sla={"deadline": "30s"})
        duty = _duty(app, every=0.05)
        duty.start()
        try:
            slow = _run(app, "slow")
            _run(app, "fast")
            time.sleep(0.3)
        finally:
            duty.stop()
        _duty(app).pass_once()  # a new process: only the outbox's key remembers
        late = [json.loads(body) for _, body in hook.received]
        assert [(d["event"], d["run_id"]) for d in late] == [("run.late", slow)]
        assert "not finished 0.5s after its nominal start" in late[0]["message"]
        assert [d.event for d in app.notifications.list_deliveries()] == ["run.late"]
    finally:
        hook.close()


def test_bad_channels_and_rules_are_refused_by_name(app: App) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        ({"kind": "pager"}, "unknown channel kind 'pager'"),
        ({"kind": "webhook", "config": {}}, "needs url"),
        ({"kind": "webhook", "config": {"url": "http://u:p@h/"}}, "holds no credentials"),
        ({"kind": "webhook", "config": {"url": "http://h/", "x": 1}}, "unknown webhook .* 'x'"),
        ({"kind": "slack"}, "needs --secret"),
        ({"kind": "smtp", "config": {"host": "h", "to": []}}, "1 to 50 addresses"),
        ({"kind": "smtp", "config": {"host": "h", "to": ["nope"]}}, "bad email address 'nope'"),
        ({"kind": "smtp", "config": {"host": "h", "port": 0, "to": ["a@b"]}}, "port"),
    ]  # fmt: skip
    for kwargs, message in cases:
        with pytest.raises(ParameterError, match=message):
            app.notifications.put_channel("default", "c", **kwargs)
    with pytest.raises(ParameterError, match="bad notification name 'a b'"):
        app.notifications.put_channel("default", "a b", kind="webhook", config={"url": "http://h/"})
    with pytest.raises(ParameterError, match="bad namespace 'Shop'"):
        app.notifications.put_rule("Shop", "r", channel="c", events=["run.failed"])
    app.notifications.put_channel("default", "c", kind="webhook", config={"url": "http://h/"})
    with pytest.raises(NotFound, match="channel default/nope does not exist"):
        app.notifications.put_rule("default", "r", channel="nope", events=["run.failed"])
    with pytest.raises(ParameterError, match=r"unknown event 'run\.exploded'"):
        app.notifications.put_rule("default", "r", channel="c", events=["run.exploded"])
    with pytest.raises(ParameterError, match="bad template"):
        app.notifications.put_rule("default", "r", channel="c", events=["run.failed"],
                                   template="{{ __import__('os') }}")  # fmt: skip
    assert app.notifications.put_rule("default", "r", channel="c", events=["run.failed"])
    app.notifications.delete_rule("default", "r")
    app.notifications.delete_channel("default", "c")
    with pytest.raises(NotFound):
        app.notifications.delete_channel("default", "c")


def test_a_worker_or_consumer_that_is_down_is_reported_once(app: App) -> None:
    hook = _Hook()
    try:
        app.notifications.put_channel("ops", "hook", kind="webhook", config={"url": hook.url})
        app.notifications.put_rule(
            "ops", "down", channel="hook", events=["worker.down", "consumer.down"]
        )
        _register(app, "feed", ["true"], namespace="ops")
        base = time.time()  # after the rule: what happens from now on is news
        now = base + 200
        for wid, state, beat in (("w-dead", "dead", base + 1), ("w-silent", "running", base + 2),
                                 ("w-ok", "running", now - 1), ("w-stopped", "stopped", base + 5),
                                 ("w-before-rule", "dead", base - 3600)):  # fmt: skip
            app.store.runs.register_worker(WorkerRecord(
                id=wid, host="h", pid=1, queues=("default",), started_at=beat - 10,
                heartbeat_at=beat, state=state))  # fmt: skip
        app.store.triggers.put_consumer(
            ConsumerRecord(key="feed/redis:c:s", workflow="feed", kind="redis", connection="c",
                           destination="s", holder="sch", epoch=3, state="error",
                           error="connection refused"),
            now=base + 1,
        )  # fmt: skip
        duty = _duty(app, system_every=0.0)
        duty.pass_once(now)
        duty.pass_once(now + 1)
        _duty(app, system_every=0.0).pass_once(now + 2)
        got = sorted((d.event, d.message) for d in app.notifications.list_deliveries())
        assert [e for e, _ in got] == ["consumer.down", "worker.down", "worker.down"]
        assert "w-dead" in got[1][1] + got[2][1] and "w-silent" in got[1][1] + got[2][1]
        assert "connection refused" in got[0][1]
        assert len(hook.received) == 3
    finally:
        hook.close()


def test_a_run_that_ended_late_while_nobody_looked_is_late_once(app: App) -> None:
    app.notifications.put_channel("default", "c", kind="webhook", config={"url": "http://h/"})
    app.notifications.put_rule("default", "late", channel="c", events=["run.late"])
    _register(app, "slow", ["sleep", "1"], sla={"expected_duration": "0.2s"})
    run_id = _run(app, "slow")  # no duty ran meanwhile
    duty = _duty(app)
    duty.collect(time.time())
    _duty(app).collect(time.time())  # another process after it: nothing twice
    [d] = app.notifications.list_deliveries()
    assert (d.event, d.run_id, d.state) == ("run.late", run_id, "pending")
    assert "running longer than the expected 0.2s" in d.message


def test_slack_gets_text_and_its_url_stays_secret(app: App) -> None:
    hook = _Hook(plan=[500])
    try:
        secret_url = hook.url + "/T000/B000/slack-sentinel-77"
        app.secrets.set_secret("default", "slack-url", secret_url)
        app.notifications.put_channel("default", "slack", kind="slack", secret="slack-url")
        app.notifications.put_rule(
            "default", "fails", channel="slack", events=["run.failed"], template="{{ workflow }}!"
        )
        _register(app, "bad", ["false"])
        _run(app, "bad")
        now = time.time()
        duty = _duty(app, retry_base=1.0)
        duty.pass_once(now)
        duty.pass_once(now + 1)
        assert [json.loads(body) for _, body in hook.received] == [{"text": "bad!"}] * 2
        [d] = app.notifications.list_deliveries()
        assert d.state == "sent" and d.attempts == 2
        audit = app.accounts.list_audit(AuditFilter(action="notification.deliver"))
        shown = repr([d, audit, app.notifications.list_channels()])
        assert "answered 500" in shown and "slack-sentinel-77" not in shown
    finally:
        hook.close()


def test_fires_the_catch_up_policy_skipped_are_a_missed_schedule(app: App) -> None:
    app.notifications.put_channel("default", "c", kind="webhook", config={"url": "http://h/"})
    app.notifications.put_rule("default", "missed", channel="c", events=["schedule.missed"])
    _register(app, "minutely", ["true"], schedules=[{"every": "60s", "catchup": "none"}])
    scheduler = app.runtime.scheduler(use_leases=False)
    now = time.time()
    scheduler.tick(now)
    scheduler.tick(now + 630)  # a scheduler outage of 10 minutes: catch-up none skips them
    duty = _duty(app)
    duty.collect(now + 631)
    [d] = app.notifications.list_deliveries()
    assert (d.event, d.workflow, d.run_id) == ("schedule.missed", "minutely", None)
    # 9 to 11 of them: where the minutes fall, and the last may be within the grace and fire.
    count = int(re.search(r"(\d+) fires from", d.message)[1])  # type: ignore[index]
    assert 9 <= count <= 11, d.message
