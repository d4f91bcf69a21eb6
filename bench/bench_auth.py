"""Credentials for the benchmarks' throwaway servers: an admin made in the database before
the server starts (so it skips its first-start admin), its API token, and a UI session."""

from __future__ import annotations

import re
from pathlib import Path

import httpx

from orchestrion.app import App
from orchestrion.app.settings import Settings

PASSWORD = "bench admin password 0123"


def seed_admin(db: Path) -> str:
    """Make user ``admin`` (`PASSWORD`) and return a fresh ``*`` admin API token."""
    with App(Settings(database_url=f"sqlite:///{db}")) as app:
        app.accounts.create_user("admin", PASSWORD, {"*": "admin"})
        token, _ = app.accounts.create_token("bench", {"*": "admin"}, expires="never")
    return token


def session_cookie(base: str) -> dict[str, str]:
    """Sign in through the login form; the cookie for a browser context."""
    with httpx.Client(base_url=base, timeout=30, follow_redirects=False) as client:
        page = client.get("/login")
        found = re.search(r'name="login_csrf" value="([^"]+)"', page.text)
        assert found, "no login form"
        form = {"user": "admin", "password": PASSWORD, "login_csrf": found.group(1)}
        assert client.post("/login", data=form).status_code == 303, "sign-in failed"
        value = client.cookies["orchestrion_session"]
    return {"name": "orchestrion_session", "value": value, "url": base}
