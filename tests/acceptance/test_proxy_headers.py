"""Issue 12, finding 5: forwarded headers are believed only from proxies the operator names.

A real ``orchestrion server`` process on loopback. Before the fix, uvicorn trusted
``X-Forwarded-For`` from loopback by default, so a client on this host (or any client
through a proxy that appends to the header) chose the address the login limiter counts
against, and a new address per attempt was never locked out.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.store.records import AuditFilter
from tests.acceptance.test_server import free_port, wait_for
from tests.helpers import ADMIN_PASSWORD, database_url_for, db_arg, seed_admin
from tests.processes import Proc

WRONG = "not the admin password"
#: Starts a server on the test's database: extra arguments, and the environment.
Starter = Callable[..., tuple[Proc, str]]


def _env(tmp: Path, **extra: str) -> dict[str, str]:
    env = {**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **extra}
    for name in ("ORCHESTRION_DATABASE_URL", "ORCHESTRION_SERVER", "ORCHESTRION_TRUSTED_PROXIES"):
        if name not in extra:
            env.pop(name, None)
    env["ORCHESTRION_CREDENTIALS_FILE"] = str(tmp / "credentials.json")
    return env


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Starter]:
    procs: list[Proc] = []
    db = tmp_path / "proxy.db"
    seed_admin(database_url_for(db))

    def _start(*extra: str, env: dict[str, str] | None = None) -> tuple[Proc, str]:
        port = free_port()
        args = ["server", "--port", str(port), "--workers", "0", "--db", db_arg(db), *extra]
        proc = Proc(f"server-{len(procs)}", args, tmp_path, env or _env(tmp_path), tmp_path)
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_for("the server", lambda: _ready(url), 30, proc.output)
        return proc, url

    yield _start
    for proc in procs:
        proc.signal(signal.SIGTERM)
        proc.wait(30)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/api/v1/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def _login(url: str, password: str, forwarded: str) -> httpx.Response:
    """One sign-in through the form, every request claiming to be for `forwarded`."""
    headers = {"X-Forwarded-For": forwarded}
    with httpx.Client(base_url=url, timeout=30, headers=headers) as client:
        page = client.get("/login")
        found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert found, page.text[:300]
        return client.post(
            "/login", data={"user": "admin", "password": password, "login_csrf": found.group(1)}
        )


def _sources(tmp_path: Path) -> list[str | None]:
    with App(Settings(database_url=database_url_for(tmp_path / "proxy.db"))) as app:
        records = app.accounts.list_audit(AuditFilter(action="session.login"))
    return [r.source for r in reversed(records)]


def test_rotating_forwarded_headers_do_not_escape_the_login_limiter(
    start: Starter, tmp_path: Path
) -> None:
    """No proxy named: forwarded headers are ignored, even with uvicorn's own
    ``FORWARDED_ALLOW_IPS=*`` in the environment; the limiter counts the TCP peer."""
    proc, url = start(env=_env(tmp_path, FORWARDED_ALLOW_IPS="*"))
    assert "forwarded headers trusted from: none" in proc.output()
    for i in range(5):
        answer = _login(url, WRONG, f"198.51.100.{i + 1}")
        assert answer.status_code == 401 and "wrong user name" in answer.text
    locked = _login(url, ADMIN_PASSWORD, "198.51.100.99")
    assert locked.status_code == 401 and "too many failed logins" in locked.text
    assert _sources(tmp_path) == ["127.0.0.1"] * 6


def test_a_named_proxy_is_believed_and_only_its_own_hop(start: Starter, tmp_path: Path) -> None:
    """``--trusted-proxy 127.0.0.1``: the address the proxy appended is the client (each
    client its own limit), and what the client itself wrote before it is not."""
    proc, url = start("--trusted-proxy", "127.0.0.1")
    assert "forwarded headers trusted from: 127.0.0.1/32" in proc.output()
    for _ in range(5):
        assert _login(url, WRONG, "203.0.113.7").status_code == 401
    # The client prepends addresses of its choice; the proxy appended the real one.
    spoofed = _login(url, ADMIN_PASSWORD, "192.0.2.1, 203.0.113.7")
    assert spoofed.status_code == 401 and "too many failed logins" in spoofed.text
    other = _login(url, ADMIN_PASSWORD, "203.0.113.8")  # another client of the proxy
    assert other.status_code == 303, other.text[:300]
    assert _sources(tmp_path) == ["203.0.113.7"] * 6 + ["203.0.113.8"]


def test_the_setting_comes_from_the_environment_and_is_checked(
    start: Starter, tmp_path: Path
) -> None:
    env = _env(tmp_path, ORCHESTRION_TRUSTED_PROXIES="10.9.0.0/16, 127.0.0.1")
    _, url = start(env=env)
    for _ in range(5):
        assert _login(url, WRONG, "203.0.113.20").status_code == 401
    assert _login(url, ADMIN_PASSWORD, "203.0.113.21").status_code == 303
    for bad in (
        ["--trusted-proxy", "proxy.example"],
        ["--trusted-proxy", "*"],
    ):
        refused = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", "server", "--port", "0", *bad],
            env=_env(tmp_path), cwd=tmp_path, capture_output=True, text=True, timeout=60,
            check=False,
        )  # fmt: skip
        assert refused.returncode == 2 and "not an IP address" in refused.stderr, refused
    from_env = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", "server", "--port", "0"],
        env=_env(tmp_path, ORCHESTRION_TRUSTED_PROXIES="everyone"), cwd=tmp_path,
        capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert from_env.returncode == 2 and "ORCHESTRION_TRUSTED_PROXIES" in from_env.stderr
