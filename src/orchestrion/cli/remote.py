"""The CLI's view of a server: the same read and control methods as `App`, over the REST API.

Commands use `Remote` when ``--server`` / ``ORCHESTRION_SERVER`` is given and the local
`App` otherwise, so their output is the same either way.
"""

from __future__ import annotations

from typing import Any

import httpx

from orchestrion.cli.credentials import auth_headers
from orchestrion.errors import AuthError, Forbidden, IllegalTransition, NotFound, OrchestrionError
from orchestrion.states import RunState, TaskState
from orchestrion.store.records import AttemptRecord, LogRecord, RunFilter, RunRecord, TaskRunRecord

__all__ = ["Remote"]


class Remote:
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

    # ------------------------------------------------------------------ the App's verbs

    def get_run(self, run_id: str) -> RunRecord:
        return _run(self.call("GET", f"/api/v1/runs/{run_id}"))

    def list_runs(self, filt: RunFilter | None = None) -> list[RunRecord]:
        filt = filt or RunFilter()
        params: dict[str, Any] = {"limit": filt.limit}
        if filt.workflow:
            params["workflow"] = filt.workflow
        if filt.state:
            params["state"] = filt.state.value
        page = self.call("GET", "/api/v1/runs", params=params)
        return [_run(item) for item in page["items"]]

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        return [_task_run(t) for t in self.call("GET", f"/api/v1/runs/{run_id}/tasks")]

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        rows = self.call("GET", f"/api/v1/runs/{run_id}/attempts")
        return [AttemptRecord(run_id=run_id, epoch=0, **{k: a[k] for k in _ATTEMPT}) for a in rows]

    def logs(self, run_id: str, task: str | None = None, after_id: int = 0) -> list[LogRecord]:
        params: dict[str, Any] = {"after": after_id}
        if task:
            params["task"] = task
        page = self.call("GET", f"/api/v1/runs/{run_id}/logs", params=params)
        return [
            LogRecord(
                id=x["id"],
                run_id=run_id,
                task_run_id=x["task_run_id"],
                task_name=x["task"],
                attempt=x["attempt"],
                at=x["at"],
                stream=x["stream"],
                line=x["line"],
            )
            for x in page["items"]
        ]

    def cancel_or_raise(self, run_id: str) -> None:
        self.call("POST", f"/api/v1/runs/{run_id}/cancel")

    def retry_or_raise(self, run_id: str) -> None:
        self.call("POST", f"/api/v1/runs/{run_id}/retry")


_ATTEMPT = (
    "id",
    "task_run_id",
    "number",
    "worker",
    "started_at",
    "finished_at",
    "outcome",
    "error",
    "error_type",
    "traceback",
)


def _run(d: dict[str, Any]) -> RunRecord:
    return RunRecord(
        id=d["id"],
        workflow=d["workflow"],
        version=d["version"],
        state=RunState(d["state"]),
        params=d["params"],
        priority=d["priority"],
        trigger=d["trigger"],
        idempotency_key=d["idempotency_key"],
        parent_task_run_id=d["parent_task_run_id"],
        created_at=d["created_at"],
        started_at=d["started_at"],
        finished_at=d["finished_at"],
        deadline=None,
        result=d["result"],
        error=d["error"],
    )


def _task_run(d: dict[str, Any]) -> TaskRunRecord:
    return TaskRunRecord(
        id=d["id"],
        run_id=d["run_id"],
        task_name=d["task"],
        map_index=-1 if d["map_index"] is None else d["map_index"],
        kind=d["kind"],
        state=TaskState(d["state"]),
        queue=d["queue"],
        priority=d["priority"],
        attempts=d["attempts"],
        ready_at=0.0,
        result=d["result"],
        error=d["error"],
        started_at=d["started_at"],
        finished_at=d["finished_at"],
        lease_owner=None,
        lease_epoch=0,
    )
