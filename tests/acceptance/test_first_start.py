"""A server's first start on an empty database: one random admin password and admin token,
shown once, the token saved owner-only for the local CLI, which then works at once; the
second start shows nothing and nothing works without credentials."""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
from pathlib import Path

import httpx

from tests.acceptance.test_server import free_port, wait_for
from tests.helpers import db_arg, session_cookie
from tests.processes import Proc


def _start(tmp: Path, port: int, env: dict[str, str], name: str) -> Proc:
    args = ["server", "--port", str(port), "--workers", "0", "--db", db_arg(tmp / "first.db")]
    return Proc(name, args, tmp, env, tmp)


def _ready(url: str) -> bool:
    try:
        return httpx.get(url + "/api/v1/ready", timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def test_first_start_shows_and_saves_one_admin_then_never_again(tmp_path: Path) -> None:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    creds = tmp_path / "config" / "credentials.json"
    env = {**os.environ, "ORCHESTRION_CREDENTIALS_FILE": str(creds), "NO_COLOR": "1"}
    env.pop("ORCHESTRION_TOKEN", None)
    server = _start(tmp_path, port, env, "server-1")
    try:
        wait_for("the server", lambda: _ready(url), 30, server.output)
        wait_for("the banner", lambda: "API token:" in server.output(), 10, server.output)
        out = server.output()
        password = re.search(r"user 'admin', password (\S+)", out)
        token = re.search(r"API token:\s+(orc_\S+)", out)
        assert password and token, out
        assert len(password.group(1)) >= 20
        saved = json.loads(creds.read_text())
        assert saved[url] == token.group(1)
        assert stat.S_IMODE(creds.stat().st_mode) == 0o600
        assert stat.S_IMODE(creds.parent.stat().st_mode) == 0o700
        # Nothing works without credentials; the saved token works for the CLI at once.
        assert httpx.get(url + "/api/v1/runs").status_code == 401
        listed = subprocess.run(
            [sys.executable, "-m", "orchestrion.cli.main", "runs", "list", "--server", url],
            env=env, cwd=tmp_path, capture_output=True, text=True, timeout=60, check=False,
        )  # fmt: skip
        assert listed.returncode == 0, listed.stderr
        # The printed password signs in to the UI.
        assert session_cookie(url, "admin", password.group(1))
    finally:
        server.signal(signal.SIGTERM)
        server.wait(30)
    again = _start(tmp_path, port, env, "server-2")
    try:
        wait_for("the server again", lambda: _ready(url), 30, again.output)
        assert "First start" not in again.output()
        assert "password" not in again.output()
    finally:
        again.signal(signal.SIGTERM)
        again.wait(30)


def test_a_taken_port_fails_before_the_first_start(tmp_path: Path) -> None:
    """`orchestrion server` on a port another process listens on exits 2 at once, naming
    the address, and has made no admin: the next start on a free port is the first start
    (issue 12: it used to make and print the admin, then fail in uvicorn)."""
    port = free_port()
    holder = subprocess.Popen(
        [sys.executable, "-c", _HOLD_PORT, str(port)], stdout=subprocess.PIPE, text=True
    )
    creds = tmp_path / "config" / "credentials.json"
    env = {**os.environ, "ORCHESTRION_CREDENTIALS_FILE": str(creds), "NO_COLOR": "1"}
    env.pop("ORCHESTRION_TOKEN", None)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "listening"
        taken = _start(tmp_path, port, env, "server-taken")
        assert taken.wait(60) == 2, taken.output()
        out = taken.output()
        assert f"error: orchestrion server: cannot listen on 127.0.0.1:{port}" in out, out
        assert "Address already in use" in out and "--port" in out, out
        assert "First start" not in out and "password" not in out and "Traceback" not in out
        assert not creds.exists()
    finally:
        holder.kill()
        holder.wait(10)
        if holder.stdout is not None:
            holder.stdout.close()
    free = free_port()
    server = _start(tmp_path, free, env, "server-free")
    try:
        wait_for("the server", lambda: _ready(f"http://127.0.0.1:{free}"), 30, server.output)
        wait_for("the banner", lambda: "API token:" in server.output(), 10, server.output)
    finally:
        server.signal(signal.SIGTERM)
        server.wait(30)


# A real process holding the port (not a socket of the test's own process).
_HOLD_PORT = """
import socket, sys, time
sock = socket.socket()
sock.bind(("127.0.0.1", int(sys.argv[1])))
sock.listen()
print("listening", flush=True)
time.sleep(120)
"""
