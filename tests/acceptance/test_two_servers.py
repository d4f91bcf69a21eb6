"""Two ``orchestrion server`` processes on one database, as behind a load balancer.

Real processes: servers A and B (API, UI, scheduler; no embedded workers) started at once
on a new database, and one ``orchestrion worker``. Whatever server a request reaches, the
answer is the same: one first-start admin was made (by one of them; the other started
normally), a session signed in on one is honoured and ended on the other, a run triggered
through one streams live on the other, and both write to the one audit log. On SQLite the
servers share a file; with ``ORCHESTRION_TEST_DATABASE=postgres``, a schema.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrion.web.guard import SESSION_COOKIE
from tests.acceptance.conftest import EXAMPLES
from tests.acceptance.test_server import free_port, wait_for
from tests.helpers import database_url_for, session_cookie
from tests.processes import Proc

_PATIENCE = 60.0  # hang guard, never a timing assertion


class Pair:
    """Servers A and B and a worker on one database."""

    def __init__(self, root: Path) -> None:
        self.flows = root / "flows"
        self.flows.mkdir()
        shutil.copy(EXAMPLES / "etl.py", self.flows / "etl.py")
        work, self.logs = root / "work", root / "logs"
        work.mkdir()
        self.logs.mkdir()
        db = database_url_for(root / "shared.db")
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("ORCHESTRION_DATABASE_URL", "ORCHESTRION_TOKEN", "ORCHESTRION_SERVER")
        }
        env.update(
            PYTHONUNBUFFERED="1",
            ORCHESTRION_CREDENTIALS_FILE=str(root / "credentials.json"),
            ORCHESTRION_LEASE_SECONDS="3",
            ORCHESTRION_HEARTBEAT_SECONDS="0.5",
        )
        self.urls: dict[str, str] = {}
        self.procs: list[Proc] = []
        for name in ("a", "b"):
            port = free_port()
            self.urls[name] = f"http://127.0.0.1:{port}"
            args = ["server", "--port", str(port), "--workers", "0", "--workflows",
                    str(self.flows), "--db", db]  # fmt: skip
            self.procs.append(Proc(f"server-{name}", args, work, env, self.logs))
        worker_args = ["worker", "--workflows", str(self.flows), "--db", db, "-c", "4"]
        self.procs.append(Proc("worker", worker_args, work, env, self.logs))

    def report(self) -> str:
        return "\n".join(
            f"===== {p.name} (exit {p.popen.poll()})\n{p.output()[-4000:]}" for p in self.procs
        )

    def first_start(self) -> tuple[str, str]:
        """(password, token) of the first-start admin, from whichever server made it."""

        def shown() -> tuple[str, str] | None:
            for proc in self.procs[:2]:
                text = proc.output()
                password = re.search(r"password (\S+)\n", text)
                token = re.search(r"API token:\s+(\S+)", text)
                if password and token:
                    return password.group(1), token.group(1)
            return None

        found: tuple[str, str] = wait_for("the first-start admin", shown, _PATIENCE, self.report)
        return found

    def close(self) -> None:
        for proc in self.procs:
            proc.kill_group()


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[Pair]:
    p = Pair(tmp_path)
    try:
        yield p
    finally:
        p.close()
        print(p.report())  # shown only when the test failed


def _login(url: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=10, follow_redirects=False)
    client.cookies.set(SESSION_COOKIE, session_cookie(url, "admin", password))
    return client


def _stream_until(url: str, token: str, run_id: str, kind: str) -> list[dict[str, Any]]:
    """Events of `run_id` from `url`'s live stream, until one of `kind` arrives."""
    seen: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {token}"}
    with (
        httpx.Client(base_url=url, timeout=_PATIENCE, headers=headers) as client,
        client.stream("GET", "/api/v1/stream", params={"run_id": run_id}) as answer,
    ):
        assert answer.status_code == 200
        for line in answer.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[len("data: ") :]))
                if seen[-1]["kind"] == kind:
                    return seen
    pytest.fail(f"the stream ended before {kind}: {seen}")


def test_two_servers_on_one_database_answer_as_one(pair: Pair) -> None:
    password, token = pair.first_start()
    bearer = {"Authorization": f"Bearer {token}"}

    def ready() -> bool:
        for url in pair.urls.values():
            try:
                answer = httpx.get(f"{url}/api/v1/workflows", headers=bearer, timeout=2)
            except httpx.HTTPError:
                return False
            if answer.status_code != 200 or "etl" not in {w["name"] for w in answer.json()}:
                return False
        return all(p.alive() for p in pair.procs)

    wait_for("both servers with the workflows", ready, _PATIENCE, pair.report)
    made = [p.name for p in pair.procs[:2] if "First start" in p.output()]
    assert len(made) == 1, pair.report()  # one admin, shown once, by one server

    a, b = pair.urls["a"], pair.urls["b"]
    on_a = _login(a, password)
    cookie = on_a.cookies[SESSION_COOKIE]
    with httpx.Client(base_url=b, timeout=10, follow_redirects=False) as on_b:
        on_b.cookies.set(SESSION_COOKIE, cookie)
        assert on_b.get("/runs").status_code == 200  # the session is in the database

        trigger = httpx.post(f"{a}/api/v1/workflows/etl/runs", json={"params": {}}, headers=bearer)
        assert trigger.status_code == 201, trigger.text
        run_id = trigger.json()["id"]
        events = _stream_until(b, token, run_id, "run.succeed")
        kinds = [e["kind"] for e in events]
        assert kinds[0] == "run.created" and kinds.count("run.succeed") == 1, kinds

        csrf = re.findall(r'name="csrf_token" value="([^"]+)"', on_b.get("/runs").text)
        assert csrf, "no form on the runs page"
        assert on_b.post("/logout", data={"csrf_token": csrf[0]}).status_code == 303
    assert on_a.get("/runs").status_code == 303  # ended on B, so gone on A: to /login
    on_a.close()

    audit = httpx.get(f"{b}/api/v1/audit", headers=bearer, params={"limit": 200}).json()
    actions = {e["action"]: e for e in audit["items"]}
    assert {"session.login", "run.trigger", "session.logout"} <= set(actions), audit
    assert actions["session.logout"]["actor"] == "admin", audit
