"""Deploy A, B, A with real ``orchestrion`` processes: A is current again and a trigger
runs it; the API and the UI say so; ``workflows set-version`` back to B works, locally and
through ``--server``, and a trigger then runs B; the audit log has every change.

One ``orchestrion server`` (one worker process) on one database (a SQLite file, or a
PostgreSQL schema with ``ORCHESTRION_TEST_DATABASE=postgres``); every command is a real
``python -m orchestrion.cli.main`` subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.acceptance.test_server import free_port, wait_for
from tests.helpers import database_url_for, db_arg, seed_admin, session_cookie
from tests.processes import Proc

FLOW = """\
name: rolled
tasks:
  say:
    shell: [echo, "running {which}"]
"""


class Setup:
    def __init__(self, root: Path) -> None:
        self.work = root / "work"
        self.work.mkdir()
        self.logs = root / "logs"
        self.logs.mkdir()
        self.db = db_arg(root / "orchestrion.db")
        self.url = f"http://127.0.0.1:{free_port()}"
        self.env = {**os.environ, "PYTHONUNBUFFERED": "1", "NO_COLOR": "1", "COLUMNS": "250"}
        for name in ("ORCHESTRION_DATABASE_URL", "ORCHESTRION_SERVER", "ORCHESTRION_ACTOR"):
            self.env.pop(name, None)
        token = seed_admin(database_url_for(root / "orchestrion.db"))
        self.env["ORCHESTRION_TOKEN"] = token
        self.env["ORCHESTRION_CREDENTIALS_FILE"] = str(root / "credentials.json")
        self.http = httpx.Client(
            base_url=self.url, timeout=10.0, headers={"Authorization": f"Bearer {token}"}
        )
        for which in ("A", "B"):
            (self.work / f"{which.lower()}.yaml").write_text(FLOW.format(which=which))
        port = self.url.rsplit(":", 1)[1]
        self.server = Proc(
            "server",
            ["server", "--port", port, "--workers", "1", "--db", self.db],
            self.work,
            self.env,
            self.logs,
        )

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", *args],
            cwd=self.work,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )
        assert done.returncode == 0, (args, done.stdout, done.stderr, self.server.output())
        return done

    def local(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli(*args, "--db", self.db)

    def remote(self, *args: str) -> subprocess.CompletedProcess[str]:
        return self.cli(*args, "--server", self.url)

    def trigger(self) -> dict[str, Any]:
        """``orchestrion trigger --wait`` through the server; the run it made."""
        self.remote("trigger", "rolled", "--wait")
        runs = self.http.get("/api/v1/runs", params={"workflow": "rolled"}).json()["items"]
        run: dict[str, Any] = runs[0]
        logs = self.http.get(f"/api/v1/runs/{run['id']}/logs").json()["items"]
        run["said"] = [x["line"] for x in logs]
        return run


@pytest.fixture
def setup(tmp_path: Path) -> Iterator[Setup]:
    s = Setup(tmp_path)
    try:
        wait_for(
            "the server",
            lambda: _ready(s),
            timeout=60,
            on_fail=s.server.output,
        )
        yield s
    finally:
        s.http.close()
        s.server.kill_group()
        print(s.server.output()[-6000:])  # shown by pytest only when the test failed


def _ready(s: Setup) -> bool:
    try:
        if s.http.get("/api/v1/ready", timeout=2).status_code != 200:
            return False
        workers = s.http.get("/api/v1/workers", timeout=2).json()
    except httpx.HTTPError:
        return False
    return any(w["state"] == "running" for w in workers)


def _versions(s: Setup, *where: str) -> list[dict[str, Any]]:
    out = s.cli("workflows", "versions", "rolled", "-o", "json", *where).stdout
    rows: list[dict[str, Any]] = json.loads(out)
    return rows


def test_deploy_a_b_a_runs_a_and_set_version_goes_back_to_b(setup: Setup) -> None:
    s = setup
    said = [s.local("deploy", f"{f}.yaml").stdout for f in ("a", "b", "a")]
    versions = {r["version"]: r for r in _versions(s, "--db", s.db)}
    assert len(versions) == 2
    [a] = [v for v, r in versions.items() if r["current"]]
    [b] = [v for v in versions if v != a]
    assert said == [
        f"deployed rolled {a} (current) from a.yaml\n",
        f"deployed rolled {b} (current) from b.yaml\n",
        f"deployed rolled {a} (current) from a.yaml\n",
    ]
    # the same answer locally and through the server
    assert _versions(s, "--server", s.url) == _versions(s, "--db", s.db)
    assert s.remote("workflows", "list").stdout == s.local("workflows", "list").stdout

    run = s.trigger()
    assert (run["state"], run["version"]) == ("succeeded", a)
    assert "running A" in run["said"], run["said"]

    listed = s.http.get("/api/v1/workflows/rolled/versions").json()
    assert {v["version"]: v["current"] for v in listed} == {a: True, b: False}
    cookie = session_cookie(s.url)
    page = httpx.get(
        f"{s.url}/workflows/rolled", cookies={"orchestrion_session": cookie}, timeout=10
    )
    assert page.status_code == 200
    assert f'id="current-version">{a}<' in page.text
    assert f'data-version="{a}" data-current="true"' in page.text

    assert (
        s.remote("workflows", "set-version", "rolled", b).stdout == f"rolled: current version {b}\n"
    )
    run = s.trigger()
    assert (run["state"], run["version"]) == ("succeeded", b)
    assert "running B" in run["said"], run["said"]
    # and locally, back to A and forward to B again
    s.local("workflows", "set-version", "rolled", a)
    assert [r["version"] for r in _versions(s, "--db", s.db) if r["current"]] == [a]
    s.local("workflows", "set-version", "rolled", b)
    assert "(current)" in s.remote("workflows", "show", "rolled").stdout
    # what a server or worker does with its --workflows folder at start: A is known, so the
    # restart re-registers it without undoing the rollback to B
    kept = s.local("deploy", "--keep-current", "a.yaml").stdout
    assert kept == f"deployed rolled {a} from a.yaml\n"
    assert [r["version"] for r in _versions(s, "--db", s.db) if r["current"]] == [b]

    audit = s.http.get("/api/v1/audit", params={"limit": 100}).json()
    records = audit["items"] if isinstance(audit, dict) else audit
    # the API's guard audits its request (source: the client's address), App the CLI's
    changes = [
        (
            r["action"],
            "local" if r["source"] == "local" else "api",
            (r.get("params") or {}).get("version"),
        )
        for r in reversed(records)
        if r["action"] in ("workflow.deploy", "workflow.set_version") and r["outcome"] == "ok"
    ]
    assert changes == [
        ("workflow.deploy", "local", a),
        ("workflow.deploy", "local", b),
        ("workflow.deploy", "local", a),
        ("workflow.set_version", "api", None),
        ("workflow.set_version", "local", a),
        ("workflow.set_version", "local", b),
        ("workflow.deploy", "local", a),
    ], records
