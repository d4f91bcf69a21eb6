"""The CLI's API token for a server: ``ORCHESTRION_TOKEN``, else the credentials file.

The file (``ORCHESTRION_CREDENTIALS_FILE``, by default
``$XDG_CONFIG_HOME/orchestrion/credentials.json``) maps a server URL to a token. A server's
first start writes its admin token there, readable by its owner only (0600, in a 0700
folder), so the local CLI works at once without the token ever being typed or shown again.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

__all__ = ["auth_headers", "credentials_file", "save_token", "token_for"]

TOKEN_ENV = "ORCHESTRION_TOKEN"
FILE_ENV = "ORCHESTRION_CREDENTIALS_FILE"


def credentials_file() -> Path:
    """Where tokens are remembered: ``ORCHESTRION_CREDENTIALS_FILE``, else ``credentials.json`` in
    the user's config folder."""
    given = os.environ.get(FILE_ENV)
    if given:
        return Path(given)
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "orchestrion" / "credentials.json"


def _key(server: str) -> str:
    return server.strip().rstrip("/").lower()


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def token_for(server: str) -> str | None:
    """The token to send to ``server``, if any."""
    env = os.environ.get(TOKEN_ENV, "").strip()
    if env:
        return env
    return _read(credentials_file()).get(_key(server))


def auth_headers(server: str) -> dict[str, str]:
    """The ``Authorization`` header for `server`, or none when no token is known for it."""
    token = token_for(server)
    return {"Authorization": f"Bearer {token}"} if token else {}


def save_token(servers: list[str], token: str) -> Path:
    """Remember ``token`` for each of ``servers`` (atomically; owner-only permissions)."""
    path = credentials_file()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    data = _read(path)
    for server in servers:
        data[_key(server)] = token
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".credentials-")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "w") as out:
            json.dump(data, out, indent=2, sort_keys=True)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path
