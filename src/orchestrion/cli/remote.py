"""The CLI's view of a server: `orchestrion.client.Client` under the CLI's token (the
environment or the credentials file), typed as the `RunReader` that `App.runs` also is.

Commands use `Remote` when ``--server`` / ``ORCHESTRION_SERVER`` is given and the local
`App` otherwise, so their output is the same either way. The HTTP is the client's; what
is the CLI's own is which token to send and which errors commands know by class: a
server's ``not_found`` is `NotFound` here, as the local database's is.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from typing import Any, TypeVar

import httpx

from orchestrion.cli.credentials import token_for
from orchestrion.client import Client
from orchestrion.errors import (
    AuthError,
    ClientError,
    Forbidden,
    IllegalTransition,
    NotFound,
    PolicyDenied,
)
from orchestrion.store.records import AttemptRecord, LogRecord, RunFilter, RunRecord, TaskRunRecord

__all__ = ["Remote", "translated"]

T = TypeVar("T")

#: The API's error codes that commands handle by class, as the local App raises them.
_BY_CODE: dict[str, Callable[[str], Exception]] = {
    "not_found": NotFound,
    "conflict": IllegalTransition,
    "forbidden": Forbidden,
    "policy_denied": PolicyDenied,
    "unauthenticated": lambda m: AuthError(
        f"{m} (set ORCHESTRION_TOKEN or run `orchestrion tokens create`)"
    ),
}


@contextmanager
def translated() -> Iterator[None]:
    """Errors of the block as the local App raises them (`NotFound`, `IllegalTransition`,
    `Forbidden`, `AuthError`); other refusals stay `ClientError`."""
    try:
        yield
    except ClientError as exc:
        make = _BY_CODE.get(exc.code or "")
        if make is None:
            raise
        raise make(str(exc.detail.get("message") or exc)) from exc


class Remote:
    """A server's run verbs over its REST API. Use it as a context manager: it holds an
    HTTP client (`client`, for everything beyond the run verbs)."""

    def __init__(self, server: str, timeout: float = 30.0) -> None:
        self.server = server.rstrip("/")
        self.client = Client(self.server, token_for(self.server), timeout=timeout)

    def __enter__(self) -> Remote:
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> Any:
        """One API call; API errors become the matching Orchestrion errors."""
        with translated():
            return self.client.request(method, path, json=json, params=params)

    def _do(self, fn: Callable[..., T], *args: Any) -> T:
        with translated():
            return fn(*args)

    def stream(self, method: str, path: str) -> AbstractContextManager[httpx.Response]:
        """A streamed response (for downloads); check the path with `call` first."""
        return self.client.stream(method, path)

    # ------------------------------------------------------------------ the App's verbs

    def get_run(self, run_id: str) -> RunRecord:
        """`RunReader.get_run`."""
        return self._do(self.client.get_run, run_id)

    def list_runs(self, filt: RunFilter | None = None) -> list[RunRecord]:
        """`RunReader.list_runs` (the first page, of `filt.limit` runs)."""
        filt = filt or RunFilter()
        with translated():
            return self.client.list_runs(filt.workflow, filt.state, limit=filt.limit)

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """`RunReader.task_runs`."""
        return self._do(self.client.task_runs, run_id)

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """`RunReader.attempts`."""
        return self._do(self.client.attempts, run_id)

    def logs(self, run_id: str, task: str | None = None, after_id: int = 0) -> list[LogRecord]:
        """`RunReader.logs` (one page)."""
        return self._do(self.client.logs, run_id, task, after_id)

    def cancel_or_raise(self, run_id: str) -> None:
        """`RunReader.cancel_or_raise` (a 409 becomes `IllegalTransition`)."""
        self._do(self.client.cancel, run_id)

    def retry_or_raise(self, run_id: str) -> None:
        """`RunReader.retry_or_raise` (a 409 becomes `IllegalTransition`)."""
        self._do(self.client.retry, run_id)
