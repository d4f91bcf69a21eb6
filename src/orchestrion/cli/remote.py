"""The CLI's view of a server: the same read and control methods as `App`, over the REST API.

Commands use `Remote` when ``--server`` / ``ORCHESTRION_SERVER`` is given and the local
`App` otherwise, so their output is the same either way. Responses become records through
the API's own `api.wire` tables, so the two sides cannot disagree on a record's shape.
"""

from __future__ import annotations

import contextlib
from typing import Any

import httpx

from orchestrion.api.wire import ATTEMPT, LOG_LINE, RUN, TASK_RUN
from orchestrion.cli.credentials import auth_headers
from orchestrion.errors import AuthError, Forbidden, IllegalTransition, NotFound, OrchestrionError
from orchestrion.store.records import AttemptRecord, LogRecord, RunFilter, RunRecord, TaskRunRecord

__all__ = ["Remote"]


class Remote:
    """A server's run verbs over its REST API, typed as `RunReader` so that commands treat it
    exactly as `App.runs`. Use it as a context manager: it holds an HTTP client."""

    def __init__(self, server: str, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self._client = httpx.Client(
            base_url=self.server, timeout=timeout, headers=auth_headers(self.server)
        )

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self._client.close()

    def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """One API call; API errors become the matching Orchestrion errors."""
        try:
            response = self._client.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise OrchestrionError(f"cannot reach the server at {self.server}: {exc}") from exc
        if response.status_code < 400:
            return response.json() if response.content else None
        try:
            error = response.json()["error"]
            code, message = str(error["code"]), str(error["message"])
        except (ValueError, KeyError, TypeError):
            code, message = "http_error", response.text[:300]
        if code == "not_found":
            raise NotFound(message)
        if code == "conflict":
            raise IllegalTransition(message)
        if code == "unauthenticated":
            raise AuthError(f"{message} (set ORCHESTRION_TOKEN or run `orchestrion tokens create`)")
        if code == "forbidden":
            raise Forbidden(message)
        raise OrchestrionError(f"server said {response.status_code}: {message}")

    def stream(self, method: str, path: str) -> contextlib.AbstractContextManager[httpx.Response]:
        """A streamed response (for downloads); check the path with `call` first."""
        return self._client.stream(method, path)

    # ------------------------------------------------------------------ the App's verbs

    def get_run(self, run_id: str) -> RunRecord:
        """`RunReader.get_run`, over ``GET /api/v1/runs/{id}``."""
        return RUN.decode(self.call("GET", f"/api/v1/runs/{run_id}"))

    def list_runs(self, filt: RunFilter | None = None) -> list[RunRecord]:
        """`RunReader.list_runs`, over ``GET /api/v1/runs`` (the first page, of `filt.limit`
        runs)."""
        filt = filt or RunFilter()
        params: dict[str, Any] = {"limit": filt.limit}
        if filt.workflow:
            params["workflow"] = filt.workflow
        if filt.state:
            params["state"] = filt.state.value
        page = self.call("GET", "/api/v1/runs", params=params)
        return [RUN.decode(item) for item in page["items"]]

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """`RunReader.task_runs`, over ``GET /api/v1/runs/{id}/tasks``."""
        return [TASK_RUN.decode(t) for t in self.call("GET", f"/api/v1/runs/{run_id}/tasks")]

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """`RunReader.attempts`, over ``GET /api/v1/runs/{id}/attempts``."""
        rows = self.call("GET", f"/api/v1/runs/{run_id}/attempts")
        return [ATTEMPT.decode(a, run_id=run_id) for a in rows]

    def logs(self, run_id: str, task: str | None = None, after_id: int = 0) -> list[LogRecord]:
        """`RunReader.logs`, over ``GET /api/v1/runs/{id}/logs`` (one page)."""
        params: dict[str, Any] = {"after": after_id}
        if task:
            params["task"] = task
        page = self.call("GET", f"/api/v1/runs/{run_id}/logs", params=params)
        return [LOG_LINE.decode(x, run_id=run_id) for x in page["items"]]

    def cancel_or_raise(self, run_id: str) -> None:
        """`RunReader.cancel_or_raise`, over ``POST /api/v1/runs/{id}/cancel`` (a 409 becomes
        `IllegalTransition`)."""
        self.call("POST", f"/api/v1/runs/{run_id}/cancel")

    def retry_or_raise(self, run_id: str) -> None:
        """`RunReader.retry_or_raise`, over ``POST /api/v1/runs/{id}/retry`` (a 409 becomes
        `IllegalTransition`)."""
        self.call("POST", f"/api/v1/runs/{run_id}/retry")
