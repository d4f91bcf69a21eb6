"""A Python client for an Orchestrion server's REST API.

    from orchestrion.client import Client

    with Client("http://127.0.0.1:8642", token="...") as api:
        run = api.trigger_and_wait("etl", {"day": "2026-01-01"}, timeout=600)
        print(run.state, run.result)

Responses are the records the server itself uses (`RunRecord`, `TaskRunRecord`...),
decoded with the API's own wire tables; errors are `orchestrion.errors.ClientError`
(status, the API's error code and problem detail) and `ServerUnreachable` (naming the
URL). The CLI's ``--server`` mode speaks through this client. docs/client.md has more.
"""

from __future__ import annotations

from orchestrion.client.client import Client
from orchestrion.errors import ClientError, ServerUnreachable

__all__ = ["Client", "ClientError", "ServerUnreachable"]
