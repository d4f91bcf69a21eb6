"""Issue 12, finding 6: webhooks over real HTTP (an in-process uvicorn) on both databases.

- a signed body of any kind (JSON, form data, text) reaches YAML and Python triggers as
  ``event.json`` / ``event.form`` / ``event.text`` (and ``event.payload``);
- the Content-Type must be one the hook takes, and the body what its type says;
- a replay starts nothing, whatever delivery id it claims, on any server of the database;
  replay keys are pruned when their window ends;
- an unconfigured hook answers exactly like a configured one (status, body, headers) and
  costs the same work; answers never name workflows or their parameter errors.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import statistics
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.clock import FakeClock
from orchestrion.errors import BadSignature
from orchestrion.triggers import webhooks
from orchestrion.triggers.webhooks import REFUSED, UNSTAMPED_REPLAY_WINDOW, Style, read_body, sign
from tests.helpers import database_url_for
from tests.integration.test_route_policy import Server

SECRET = "hook secret 123"

YAML_FLOW = """\
name: hook_yaml
params: {kind: string, who: string, text: string, ctype: string}
triggers:
  - event: webhook.yamlhook
    filter: event.kind == "json"
    params:
      kind: "{{ event.kind }}"
      who: "{{ event.json.who }}"
      text: "{{ event.text }}"
      ctype: "{{ event.content_type }}"
  - event: webhook.yamlhook
    filter: event.kind == "form"
    params:
      kind: "{{ event.kind }}"
      who: "{{ event.form.who }}"
      text: "{{ event.text }}"
      ctype: "{{ event.content_type }}"
  - event: webhook.yamlhook
    filter: event.kind == "text"
    params:
      kind: "{{ event.kind }}"
      who: "{{ event.payload }}"
      text: "{{ event.text }}"
      ctype: "{{ event.content_type }}"
tasks:
  a:
    shell: [echo, hi]
"""

PY_FLOW = '''\
"""A Python workflow started by webhook ``pyhook``."""

from orchestrion.spec.python import task, workflow


@task
def noop() -> None:
    """Nothing."""


def _trigger(kind: str, who: str) -> dict:
    return {
        "event": "webhook.pyhook",
        "filter": f"event.kind == '{kind}'",
        "params": {
            "kind": "{{ event.kind }}",
            "who": who,
            "text": "{{ event.text }}",
            "ctype": "{{ event.content_type }}",
        },
    }


@workflow(
    triggers=[
        _trigger("json", "{{ event.json.who }}"),
        _trigger("form", "{{ event.form.who }}"),
        _trigger("text", "{{ event.payload }}"),
    ]
)
def hook_py(kind: str, who: str, text: str, ctype: str):
    """Records what the webhook's trigger saw."""
    noop()
'''

#: A workflow of another team whose trigger fails on every delivery: its name and its
#: parameter error must not reach the sender.
SECRET_FLOW = """\
name: payroll_secret_flow
params: {amount: integer}
triggers:
  - event: webhook.*
    params: {amount: "{{ event.text }}"}
tasks:
  a:
    shell: [echo, hi]
"""


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow files, written once: a Python file's module name is its own."""
    folder = Path(tmp_path_factory.mktemp("hook_flows"))
    (folder / "hook_yaml.yaml").write_text(YAML_FLOW)
    (folder / "hook_py_flows.py").write_text(PY_FLOW)
    (folder / "payroll.yaml").write_text(SECRET_FLOW)
    return folder


@pytest.fixture
def app(tmp_path: Path, flows: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[App]:
    for hook in ("YAMLHOOK", "PYHOOK", "GH", "ST", "HM"):
        monkeypatch.setenv(f"ORCHESTRION_WEBHOOK_{hook}_SECRET", SECRET)
    monkeypatch.setenv("ORCHESTRION_WEBHOOK_ST_STYLE", "stripe")
    monkeypatch.setenv("ORCHESTRION_WEBHOOK_HM_STYLE", "hmac")
    with App(Settings(database_url=database_url_for(tmp_path / "hooks.db"))) as opened:
        for name in ("hook_yaml.yaml", "hook_py_flows.py", "payroll.yaml"):
            opened.workflows.load(flows / name)
        yield opened


@pytest.fixture
def server(app: App) -> Iterator[Server]:
    srv = Server(app)
    yield srv
    srv.stop()


def _post(
    server: Server,
    hook: str,
    body: bytes,
    content_type: str | None,
    *,
    style: Style = "github",
    extra: dict[str, str] | None = None,
    secret: str = SECRET,
) -> httpx.Response:
    headers = sign(style, secret.encode(), body, time.time())
    if content_type is not None:
        headers["Content-Type"] = content_type
    headers.update(extra or {})
    with server.client() as client:
        return client.post(f"/hooks/{hook}", content=body, headers=headers)


def _params(app: App, answer: httpx.Response, workflow: str) -> dict[str, Any]:
    assert answer.status_code == 202, answer.text
    runs = [app.runs.get_run(r) for r in answer.json()["run_ids"]]
    [run] = [r for r in runs if r.workflow == workflow]
    return dict(run.params)


@pytest.mark.parametrize(("hook", "workflow"), [("yamlhook", "hook_yaml"), ("pyhook", "hook_py")])
def test_signed_bodies_of_every_kind_reach_the_trigger(
    app: App, server: Server, hook: str, workflow: str
) -> None:
    as_json = _post(server, hook, b'{"who": "ana"}', "application/json")
    assert _params(app, as_json, workflow) == {
        "kind": "json",
        "who": "ana",
        "text": '{"who": "ana"}',
        "ctype": "application/json",
    }
    form = b"who=bob+b%C3%A9&tag=a&tag=b"
    as_form = _post(server, hook, form, "application/x-www-form-urlencoded")
    assert _params(app, as_form, workflow) == {
        "kind": "form",
        "who": "bob bé",
        "text": form.decode(),
        "ctype": "application/x-www-form-urlencoded",
    }
    latin = "café".encode("latin-1")
    as_text = _post(server, hook, latin, "text/plain; charset=ISO-8859-1")
    assert _params(app, as_text, workflow) == {
        "kind": "text",
        "who": "café",
        "text": "café",
        "ctype": "text/plain",
    }
    xml = b"<push ref='main'/>"
    as_xml = _post(server, hook, xml, "application/xml")
    assert _params(app, as_xml, workflow)["who"] == xml.decode()
    vendor = _post(server, hook, b'{"who": "eve"}', "application/vnd.github+json")
    assert _params(app, vendor, workflow)["who"] == "eve"


def test_the_content_type_must_be_one_the_hook_takes(
    app: App, server: Server, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRION_WEBHOOK_YAMLHOOK_CONTENT_TYPE", "form, text")
    ok = _post(server, "yamlhook", b"who=ana", "application/x-www-form-urlencoded")
    assert ok.status_code == 202
    refused = {
        "json for a form/text hook": (b'{"who": 1}', "application/json", 415, "json"),
        "no Content-Type": (b"who=ana", None, 415, "Content-Type"),
        "bytes": (b"\x00\x01", "application/octet-stream", 415, "application/octet-stream"),
        "multipart": (b"--x--", "multipart/form-data; boundary=x", 415, "multipart"),
        "not UTF-8": (b"who=\xff\xfe", "application/x-www-form-urlencoded", 422, "utf-8"),
        "unknown charset": (b"who", "text/plain; charset=klingon", 422, "klingon"),
        "a non-text codec": (b"who", "text/plain; charset=rot13", 422, "rot13"),
    }
    for what, (body, kind, status, says) in refused.items():
        answer = _post(server, "yamlhook", body, kind)
        assert answer.status_code == status, (what, answer.text)
        assert says in answer.json()["error"]["message"], (what, answer.text)
    monkeypatch.delenv("ORCHESTRION_WEBHOOK_YAMLHOOK_CONTENT_TYPE")
    not_json = _post(server, "yamlhook", b"{not json", "application/json")
    assert not_json.status_code == 422 and "not the JSON" in not_json.text
    # A hook whose setting is unusable refuses everything, as if it did not exist.
    monkeypatch.setenv("ORCHESTRION_WEBHOOK_YAMLHOOK_CONTENT_TYPE", "yaml")
    unusable = _post(server, "yamlhook", b"who=ana", "application/x-www-form-urlencoded")
    assert unusable.status_code == 401 and unusable.json()["error"]["message"] == REFUSED


def _count_runs(app: App, workflow: str) -> int:
    return len([r for r in app.runs.list_runs() if r.workflow == workflow])


def test_replays_start_nothing_whatever_delivery_id_they_claim(
    app: App, server: Server, tmp_path: Path
) -> None:
    body = b'{"who": "ana"}'
    github = sign("github", SECRET.encode(), body, time.time())
    hmac_value = github["X-Hub-Signature-256"]
    json_type = {"Content-Type": "application/json"}
    with server.client() as client:
        first = client.post("/hooks/yamlhook", content=body, headers={**github, **json_type})
        assert first.status_code == 202 and first.json()["duplicate"] is False
        replays = [
            {**github, **json_type},  # as it was
            {**github, **json_type, "X-GitHub-Delivery": "a-new-id"},  # a fresh delivery id
            {**github, **json_type, "X-GitHub-Delivery": "another"},
            {"X-Hub-Signature-256": "sha256=" + hmac_value[7:].upper(), **json_type},
            {**github, "Content-Type": "application/json; charset=utf-8"},
        ]
        for headers in replays:
            again = client.post("/hooks/yamlhook", content=body, headers=headers)
            assert again.status_code == 202, again.text
            assert again.json() == {**first.json(), "duplicate": True}, headers
    assert _count_runs(app, "hook_yaml") == 1
    # Timestamped styles: the same signed header is a replay, however it is rewritten;
    # the same body signed afresh is a new delivery.
    for hook, style, header in (
        ("st", "stripe", "Stripe-Signature"),
        ("hm", "hmac", "X-Orchestrion-Signature"),
    ):
        signed = sign(style, SECRET.encode(), body, time.time())  # type: ignore[arg-type]
        stamp, mac = signed[header].split(",")
        with server.client() as client:
            made = client.post(f"/hooks/{hook}", content=body, headers={**signed, **json_type})
            assert made.json()["duplicate"] is False
            for value in (signed[header], f"{stamp},v1={'0' * 64},{mac}", f"{mac},{stamp}"):
                extra = {header: value, "X-Orchestrion-Delivery": f"d-{value[-6:]}", **json_type}
                again = client.post(f"/hooks/{hook}", content=body, headers=extra)
                assert again.json() == {**made.json(), "duplicate": True}, value
    # Another server on the same database knows the key too.
    with App(Settings(database_url=app.store.url)) as other_app:
        other = Server(other_app)
        try:
            answer = _post(other, "yamlhook", body, "application/json")  # signed the same
            assert answer.json()["duplicate"] is True
        finally:
            other.stop()
    assert _count_runs(app, "hook_yaml") == 1


def _seen_rows(url: str) -> int:
    if url.startswith("sqlite:///"):
        with contextlib.closing(sqlite3.connect(url.removeprefix("sqlite:///"))) as conn:
            return int(conn.execute("SELECT count(*) FROM webhook_seen").fetchone()[0])
    with psycopg.connect(url) as pconn:
        row = pconn.execute("SELECT count(*) FROM webhook_seen").fetchone()
        assert row is not None
        return int(row[0])


def test_replay_keys_are_kept_for_their_window_then_pruned(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ORCHESTRION_WEBHOOK_GH_SECRET", SECRET)
    monkeypatch.setenv("ORCHESTRION_WEBHOOK_ST_SECRET", SECRET)
    monkeypatch.setenv("ORCHESTRION_WEBHOOK_ST_STYLE", "stripe")
    clock = FakeClock(1_800_000_000.0)
    url = database_url_for(tmp_path / "prune.db")
    with App(Settings(database_url=url), clock) as app:
        body = b"ping"
        plain = {"Content-Type": "text/plain"}
        github = {**sign("github", SECRET.encode(), body, clock.now()), **plain}
        _, first = app.triggers.receive_webhook("gh", github, body)
        stripe = {**sign("stripe", SECRET.encode(), body, clock.now()), **plain}
        app.triggers.receive_webhook("st", stripe, body)
        assert _seen_rows(url) == 2
        clock.advance(webhooks.DEFAULT_TOLERANCE + 5)
        with pytest.raises(BadSignature):  # past its tolerance the signature is refused ...
            app.triggers.receive_webhook("st", stripe, body)
        _, again = app.triggers.receive_webhook("gh", github, body)
        assert again.duplicate and again.event_id == first.event_id
        assert _seen_rows(url) == 1  # ... so its key was pruned by the next delivery
        clock.advance(UNSTAMPED_REPLAY_WINDOW)
        _, late = app.triggers.receive_webhook("gh", github, body)
        # Past the window an unstamped body counts as new (docs/security.md): its key was
        # pruned and recorded afresh, and the event id repeats, so its first runs stand.
        assert _seen_rows(url) == 1
        assert late.event_id == first.event_id and late.duplicate


def _answer(response: httpx.Response) -> tuple[int, bytes, dict[str, str]]:
    headers = {k: v for k, v in response.headers.items() if k not in ("x-request-id", "date")}
    return response.status_code, response.content, headers


def test_an_unconfigured_hook_answers_like_a_configured_one(server: Server) -> None:
    body = b'{"who": "mallory"}'
    wrong = "not the secret"
    probes: list[dict[str, str]] = [
        {},
        {"Content-Type": "application/json"},
        sign("github", wrong.encode(), body, time.time()),
        {"X-Hub-Signature-256": "md5=00"},
        sign("stripe", wrong.encode(), body, time.time()),
        {"Stripe-Signature": "garbage"},
        sign("hmac", wrong.encode(), body, time.time()),
        {"X-Orchestrion-Signature": "t=1,v1=00"},
    ]
    with server.client() as client:
        for headers in probes:
            answers = {
                hook: _answer(client.post(f"/hooks/{hook}", content=body, headers=headers))
                for hook in ("ghost", "gh", "st", "hm", "yamlhook")
            }
            assert len(set(map(repr, answers.values()))) == 1, (headers, answers)
            status, content, _ = answers["ghost"]
            assert status == 401 and json.loads(content)["error"]["message"] == REFUSED
        # Other methods and over-large bodies answer alike too.
        for method, content in (("GET", b""), ("PUT", body), ("POST", b"x" * 2_000_000)):
            ghost = client.request(method, "/hooks/ghost", content=content)
            assert _answer(ghost) == _answer(client.request(method, "/hooks/gh", content=content))
        assert client.post("/hooks/ghost", content=b"x" * 2_000_000).status_code == 413


def test_refusals_cost_the_same_work_configured_or_not() -> None:
    """Timing class: an unconfigured hook checks an HMAC over the body like a configured
    one does (a decoy), so its refusal is not measurably faster."""
    body = b"x" * 1_000_000
    env = {"ORCHESTRION_WEBHOOK_REAL_SECRET": SECRET}
    now = time.time()
    headers = sign("github", b"wrong", body, now)

    def once(hook: str) -> float:
        start = time.perf_counter()
        with pytest.raises(BadSignature):
            webhooks.accept(hook, env, headers, body, now)
        return time.perf_counter() - start

    once("real"), once("ghost")  # warm up
    # Interleaved, so a burst of load on this shared machine hits both alike.
    pairs = [(once("real"), once("ghost")) for _ in range(21)]
    real = statistics.median(r for r, _ in pairs)
    ghost = statistics.median(g for _, g in pairs)
    assert 0.5 < ghost / real < 2.0, (real, ghost)


def test_answers_name_no_workflow_and_no_parameter_error(app: App, server: Server) -> None:
    answer = _post(server, "yamlhook", b"not a number", "text/plain")
    assert answer.status_code == 202
    assert set(answer.json()) == {"event_id", "duplicate", "run_ids"}
    assert "payroll" not in answer.text and "amount" not in answer.text
    for probe in (b"{bad", b""):
        refused = _post(server, "yamlhook", probe, "application/json" if probe else "x/y")
        assert "payroll" not in refused.text and "hook_yaml" not in refused.text


def test_form_fields_sent_twice_are_lists() -> None:
    body = read_body("application/x-www-form-urlencoded", b"tag=a&tag=b&tag=c&one=1&blank=")
    assert body.form == {"tag": ["a", "b", "c"], "one": "1", "blank": ""}
    assert body.payload == body.form and body.json is None
    with pytest.raises(Exception, match="more than"):
        read_body("application/x-www-form-urlencoded", b"&".join([b"a=1"] * 1001))
