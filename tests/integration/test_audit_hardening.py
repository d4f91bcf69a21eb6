"""The audit log against malformed requests and probing (issue 12, findings 3 and 4).

A real server on a real database (SQLite, or PostgreSQL with
``ORCHESTRION_TEST_DATABASE=postgres``):

* a secret-setting or password-carrying request with misspelled, extra or misplaced fields
  leaves no value in the audit log (nor in the database's bytes): the record says which
  fields were present and that a value was given;
* every audited body is masked with the values of the secrets already stored, before it is
  cut to size, including secrets set by another process after the server started;
* requests refused with 401, 405 and 413 are recorded, never with the credential they
  sent, at most N a minute per address and kind, the rest counted.
"""

from __future__ import annotations

import json
import os
import random
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.clock import FakeClock
from orchestrion.store.records import AuditFilter, AuditRecord
from tests.helpers import admin_client, database_url_for, serve_api, stored_bytes

_ALPHABET = "QZXJKWVY"  # letters no audit text writes in upper case, 3 in a row
RING = KeyRing([MasterKey("test", os.urandom(32))])


def sentinel(length: int = 24) -> str:
    return "".join(random.SystemRandom().choice(_ALPHABET) for _ in range(length))


def pieces(text: str | bytes, secret: str, size: int) -> list[str]:
    data = text.decode("latin-1") if isinstance(text, bytes) else text
    return [
        secret[i : i + size] for i in range(len(secret) - size + 1) if secret[i : i + size] in data
    ]


def audit_text(app: App, since: int = 0) -> str:
    records = [r for r in app.accounts.list_audit(AuditFilter(limit=500)) if r.id > since]
    return "\n".join(_record_text(r) for r in records)


def _record_text(r: AuditRecord) -> str:
    return json.dumps(
        [r.actor, r.action, r.object, r.namespace, r.params, r.detail, r.source, r.request_id]
    )


def records(app: App, action: str) -> list[AuditRecord]:
    return app.accounts.list_audit(AuditFilter(action=action, limit=500))


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def app(tmp_path: Path, clock: FakeClock) -> Iterator[App]:
    settings = Settings(database_url=database_url_for(tmp_path / "audit.db"), key_ring=RING)
    with App(settings, clock=clock) as app:
        yield app


@pytest.fixture
def api(app: App) -> Iterator[httpx.Client]:
    with (
        serve_api(app, max_body_bytes=4096, probe_records_per_minute=3) as url,
        admin_client(app, url) as client,
    ):
        yield client


# ------------------------------------------------------------------------ finding 3


def test_secret_routes_never_audit_a_value(app: App, api: httpx.Client, tmp_path: Path) -> None:
    values = [sentinel() for _ in range(8)]
    url = "/api/v1/secrets/ops/db"
    answers = [
        api.put(url, json={"valeu": values[0]}),  # misspelled
        api.put(url, json={"value": values[1], "extra": values[2]}),  # an extra field
        api.put(url, json=[values[3]]),  # not an object
        api.put(url, json={values[4]: "x"}),  # the value pasted as a name
        api.put(url, content=values[5], headers={"content-type": "text/plain"}),
        api.put(url, params={"value": values[6]}, json={"value": values[7]}),  # well formed
    ]
    assert [a.status_code for a in answers] == [422, 422, 422, 422, 422, 201]
    found = records(app, "secret.set")
    assert len(found) == len(answers)
    text = audit_text(app)
    for value in values:
        found_pieces = pieces(text, value, 3)
        assert found_pieces == [], [
            text[max(text.find(p) - 80, 0) : text.find(p) + 40] for p in found_pieces
        ]
    first = found[-1].params  # newest first
    assert first["fields"] == ["valeu"] and first["value_given"] is True
    assert first["namespace"] == "ops" and first["name"] == "db"
    assert "body" not in first  # nothing of a secret route's body is kept
    assert found[-4].params["fields"] == ["<other field of 24 characters>"]
    assert found[0].params["fields"] == ["value"]
    app.close()
    data = stored_bytes(tmp_path / "audit.db")
    for value in values[:7]:  # the last one is stored, sealed
        assert pieces(data, value, 12) == []


def test_password_routes_keep_only_their_declared_fields(app: App, api: httpx.Client) -> None:
    password = sentinel()
    made = api.post("/api/v1/users", json={"name": "ana", "pasword": password, "bindings": {}})
    assert made.status_code == 422
    made = api.post(
        "/api/v1/users", json={"name": "ana", "password": password, "bindings": {}, "pw": password}
    )
    assert made.status_code == 422
    changed = api.patch("/api/v1/users/admin", json={"passwd": password})
    assert changed.status_code in (404, 422)
    assert pieces(audit_text(app), password, 3) == []
    (create, create_extra) = records(app, "user.create")[::-1]
    assert create.params["body"] == {"name": "ana", "bindings": {}}
    assert create.params["fields"] == ["bindings", "name", "pasword"]
    # "pw" is no near miss of a declared field: only its length is kept.
    assert create_extra.params["fields"] == [
        "<other field of 2 characters>",
        "bindings",
        "name",
        "password",
    ]


def test_a_password_typed_as_the_user_name_is_not_audited(app: App, api: httpx.Client) -> None:
    """A failed login names its user in the audit record only when the user exists."""
    app.accounts.create_user("ana", "a long enough password", {"*": "viewer"})
    typed = sentinel(30)
    with httpx.Client(base_url=str(api.base_url), timeout=30) as browser:
        for user in (typed, "ana"):
            page = browser.get("/login")
            csrf = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
            assert csrf, page.text
            form = {"user": user, "password": "wrong!", "login_csrf": csrf.group(1)}
            assert browser.post("/login", data=form).status_code == 401
    unknown, known = records(app, "session.login")[::-1]
    assert pieces(audit_text(app), typed, 3) == []
    assert unknown.actor == "anonymous" and unknown.object == "<unknown user, 30 characters>"
    assert known.actor == "ana" and known.outcome == "denied"


@pytest.mark.parametrize("offset", [470, 476, 480, 488, 495, 499, 500, 501])
def test_known_secrets_are_masked_in_every_audited_body_before_the_cut(
    app: App, api: httpx.Client, offset: int
) -> None:
    """Audited strings are cut at 500 characters: a stored secret placed across the cut
    (and anywhere else in a body, a path or a detail) leaves nothing behind."""
    known = sentinel(30)
    app.secrets.set_secret("ops", "known", known)
    note = "." * offset + known + "." * 100
    sent = api.post("/api/v1/events", json={"type": "ping", "payload": {"note": note, known: 1}})
    assert sent.status_code in (202, 403, 422), sent.text
    missing = api.post(f"/api/v1/runs/{known}/cancel")
    assert missing.status_code in (404, 422)
    text = audit_text(app)
    assert pieces(text, known, 3) == []
    assert "***" in text


def test_secrets_set_elsewhere_are_masked_too(
    app: App, api: httpx.Client, tmp_path: Path, clock: FakeClock
) -> None:
    """A secret set by another process (here another App on the same database) after the
    server built its masker is masked from the next record on."""
    api.post("/api/v1/events", json={"type": "warm", "payload": {}})  # builds the masker
    later = sentinel(30)
    settings = Settings(database_url=database_url_for(tmp_path / "audit.db"), key_ring=RING)
    with App(settings, clock=clock) as other:
        clock.advance(1)
        other.secrets.set_secret("ops", "later", later)
    api.post("/api/v1/events", json={"type": "ping", "payload": {"pasted": later}})
    assert pieces(audit_text(app), later, 3) == []


# ------------------------------------------------------------------------ finding 4


def test_unauthenticated_requests_are_recorded_without_their_credential(
    app: App, api: httpx.Client, clock: FakeClock
) -> None:
    base = str(api.base_url)
    bad_token = "orc_" + os.urandom(8).hex() + "_" + sentinel(43)
    with httpx.Client(base_url=base, timeout=30) as anon:
        assert (
            anon.get("/api/v1/runs", headers={"Authorization": f"Bearer {bad_token}"}).status_code
            == 401
        )
        assert (
            anon.get("/api/v1/runs", headers={"Authorization": f"Basic {bad_token}"}).status_code
            == 401
        )
        assert anon.post("/api/v1/events", json={"type": "x"}).status_code == 401
        clock.advance(61)  # a new minute: this server records 3 refusals a minute
        cookie = {"cookie": f"orchestrion_session={bad_token}"}
        assert anon.get("/runs", headers=cookie, follow_redirects=False).status_code == 303
    found = records(app, "request.unauthenticated")[::-1]
    assert [r.params["presented"] for r in found] == [
        "bearer token",
        "malformed Authorization header",
        "none",
        "session cookie",
    ]
    assert all(r.outcome == "denied" and r.source == "127.0.0.1" for r in found)
    assert found[0].object == "GET /api/v1/runs" and found[0].detail
    assert found[2].object == "POST /api/v1/events"
    text = audit_text(app)
    for part in bad_token.split("_")[1:]:
        assert pieces(text, part, 6) == [], "the bad token is in the audit log"
    assert found[0].detail and "<id>" in found[0].detail
    # A browser that simply is not signed in is sent to the login page: not a probe.
    with httpx.Client(base_url=base, timeout=30) as browser:
        assert browser.get("/runs", follow_redirects=False).status_code == 303
    assert len(records(app, "request.unauthenticated")) == 4


def test_wrong_methods_and_oversized_bodies_are_recorded(app: App, api: httpx.Client) -> None:
    assert api.patch("/api/v1/runs").status_code == 405
    (wrong,) = records(app, "request.method_not_allowed")
    assert wrong.object == "PATCH /api/v1/runs" and wrong.actor == "tests"
    assert wrong.actor_kind == "token" and wrong.outcome == "failed"
    big = api.post("/api/v1/events", json={"type": "x", "payload": {"p": "." * 5000}})
    assert big.status_code == 413
    streamed = api.post(
        "/api/v1/events",
        content=iter([b"{" + b" " * 3000, b" " * 3000 + b"}"]),
        headers={"content-type": "application/json"},
    )
    assert streamed.status_code == 413
    large = records(app, "request.too_large")[::-1]
    assert [r.object for r in large] == ["POST /api/v1/events"] * 2
    assert large[0].params["content_length"] and large[1].params["content_length"] is None
    assert large[0].actor == "anonymous" and large[0].source == "127.0.0.1"


def test_refusals_are_rate_limited_per_address_and_kind_and_counted(
    app: App, api: httpx.Client, clock: FakeClock
) -> None:
    base = str(api.base_url)
    with httpx.Client(base_url=base, timeout=30) as anon:
        for _ in range(10):
            assert anon.get("/api/v1/runs").status_code == 401
        # Another kind has its own allowance.
        assert api.patch("/api/v1/runs").status_code == 405
        assert len(records(app, "request.unauthenticated")) == 3
        assert len(records(app, "request.method_not_allowed")) == 1
        assert records(app, "request.suppressed") == []
        clock.advance(61)
        assert anon.get("/api/v1/runs").status_code == 401
    (suppressed,) = records(app, "request.suppressed")
    assert (
        suppressed.params["count"] == 7
        and suppressed.params["refused"] == "request.unauthenticated"
    )
    assert suppressed.source == "127.0.0.1"
    assert len(records(app, "request.unauthenticated")) == 4
