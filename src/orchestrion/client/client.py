"""`Client`: typed methods over the REST API at ``/api/v1``, synchronous, on httpx.

Every method is one request (`request` is the way to any endpoint without a method of its
own), except `wait`, which follows the run's event stream (server-sent events) until the
run finishes, and falls back to polling with backoff when the stream is unavailable.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

import httpx

from orchestrion.api.wire import ATTEMPT, EVENT, LOG_LINE, RUN, SECRET, TASK_RUN
from orchestrion.errors import ClientError, ServerUnreachable
from orchestrion.states import RunState
from orchestrion.store.records import (
    AttemptRecord,
    EventRecord,
    LogRecord,
    RunRecord,
    SecretMeta,
    TaskRunRecord,
)

if TYPE_CHECKING:
    from orchestrion.spec.bundle import CodeBundle
    from orchestrion.spec.model import WorkflowSpec

__all__ = ["Client"]

#: The longest pause between two polls of a run when its event stream is unavailable.
_POLL_MOST = 5.0


def _seg(text: str) -> str:
    """One path segment, escaped."""
    return quote(text, safe="")


class Client:
    """One server, one token, one connection pool. Use it as a context manager (or call
    `close`)."""

    def __init__(
        self,
        url: str,
        token: str | None = None,
        *,
        timeout: float = 30.0,
        headers: Mapping[str, str] | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        """`url` is the server's base URL (``http://host:8642``); `token` an API token
        (``orchestrion tokens create``), sent as a bearer token."""
        self.url = url.rstrip("/")
        sent = dict(headers or {})
        if token:
            sent["Authorization"] = f"Bearer {token}"
        self._http = httpx.Client(
            base_url=self.url, timeout=timeout, headers=sent, transport=transport
        )
        #: The admission policies' findings (warnings, approvals) of the last call: a
        #: deploy or a trigger the server accepted with some (``X-Policy-Findings``).
        self.policy_findings: list[dict[str, Any]] = []

    def close(self) -> None:
        """Close the connections."""
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ any endpoint

    def request(
        self,
        method: str,
        path: str,
        *,
        json: Any = None,
        params: Mapping[str, Any] | None = None,
    ) -> Any:
        """One call; its JSON answer (None when empty). `ClientError` for an error
        status, `ServerUnreachable` when no answer came."""
        try:
            response = self._http.request(method, path, json=json, params=params)
        except httpx.HTTPError as exc:
            raise ServerUnreachable(
                f"cannot reach the server at {self.url}: {exc}", url=f"{self.url}{path}"
            ) from exc
        self.policy_findings = _findings(response)
        if response.status_code >= 400:
            raise self._refused(response, path)
        return response.json() if response.content else None

    def stream(self, method: str, path: str) -> AbstractContextManager[httpx.Response]:
        """A streamed response, for downloads (stored results, artifacts): the caller
        reads it in pieces. The status is not checked: check the path with `request`
        first, or look at ``response.status_code``."""
        return self._http.stream(method, path)

    def _refused(self, response: httpx.Response, path: str) -> ClientError:
        code, message, detail = "http_error", response.text[:300], None
        try:
            found = response.json()["error"]
            code, message, detail = str(found["code"]), str(found["message"]), dict(found)
        except (ValueError, KeyError, TypeError):
            pass
        return ClientError(
            f"server said {response.status_code}: {message}",
            status=response.status_code,
            code=code,
            detail=detail,
            url=f"{self.url}{path}",
        )

    def health(self) -> dict[str, Any]:
        """``GET /api/v1/health``: whether the server is up (no token needed)."""
        return dict(self.request("GET", "/api/v1/health"))

    # ------------------------------------------------------------------ workflows

    def list_workflows(self) -> list[dict[str, Any]]:
        """Every workflow's current version the token may read."""
        return list(self.request("GET", "/api/v1/workflows"))

    def get_workflow(self, name: str, version: str | None = None) -> dict[str, Any]:
        """A workflow (its current version, or `version`), its spec under ``spec``."""
        params = {"version": version} if version else None
        return dict(self.request("GET", f"/api/v1/workflows/{_seg(name)}", params=params))

    def workflow_versions(self, name: str) -> list[dict[str, Any]]:
        """Every version of a workflow."""
        return list(self.request("GET", f"/api/v1/workflows/{_seg(name)}/versions"))

    def deploy(
        self, spec: WorkflowSpec | Mapping[str, Any], code: CodeBundle | None = None
    ) -> dict[str, Any]:
        """Register a spec (and first its code, when it has some) as the workflow's
        current version; the workflow as registered (``current``: whether it is)."""
        if code is not None:  # content-addressed: sent again, kept once
            self.request("PUT", f"/api/v1/code/{code.digest}", json=code.to_wire())
        body = json.loads(spec.to_json()) if hasattr(spec, "to_json") else dict(spec)
        return dict(self.request("POST", "/api/v1/workflows", json=body))

    def deploy_file(self, path: str | Path) -> list[dict[str, Any]]:
        """Load a workflow file (.py or .yaml) here and deploy each of its workflows."""
        from orchestrion.client.templates import ServerSource
        from orchestrion.spec.loading import load_workflows

        # `uses:` resolve here (local search path, then the server's libraries): the spec
        # shipped is concrete, so the server needs no library files.
        loaded = load_workflows(path, templates=[ServerSource(self)])
        return [self.deploy(item.spec, item.code) for item in loaded]

    # ------------------------------------------------------------------ templates

    def list_templates(self) -> list[dict[str, Any]]:
        """The template libraries the server holds, each version with its templates."""
        return list(self.request("GET", "/api/v1/templates"))

    def get_template_library(self, name: str, version: int) -> dict[str, Any]:
        """One library version; ``library`` holds its text as a file would."""
        return dict(self.request("GET", f"/api/v1/templates/{_seg(name)}/{int(version)}"))

    def push_templates(self, library: str | Path | Mapping[str, Any]) -> dict[str, Any]:
        """Push a library (a file's path, or its data), checked here first; the answer's
        ``outcome`` is ``created`` or ``unchanged``."""
        if not isinstance(library, Mapping):
            from orchestrion.spec.yaml.libraries import load_library_file

            library = load_library_file(library).to_data()
        return dict(self.request("POST", "/api/v1/templates", json=dict(library)))

    def project(
        self, path: str | Path, *, apply: bool = False, commit: str | None = None
    ) -> dict[str, Any]:
        """Plan (or, with `apply`, apply) a project file: its workflows are loaded here
        and their code uploaded first, then the declaration and the specs are sent as one
        bundle (the server cannot read this disk). The plan (and the outcome) as JSON."""
        from orchestrion.spec.project import load_project

        loaded = load_project(path)
        for item in loaded.workflows:
            if item.code is not None:
                self.request("PUT", f"/api/v1/code/{item.code.digest}", json=item.code.to_wire())
        body: dict[str, Any] = {
            "project": loaded.spec.to_data(),
            "workflows": [json.loads(w.spec.to_json()) for w in loaded.workflows],
            "policies": list(loaded.policies),
        }
        if commit is not None:
            body["commit"] = commit
        verb = "apply" if apply else "plan"
        return dict(self.request("POST", f"/api/v1/projects/{verb}", json=body))

    def set_current(self, name: str, version: str) -> dict[str, Any]:
        """Make `version` the current one (a rollback)."""
        path = f"/api/v1/workflows/{_seg(name)}/current"
        return dict(self.request("POST", path, json={"version": version}))

    def pause(self, name: str, paused: bool = True) -> dict[str, Any]:
        """Pause (or unpause) a workflow's schedules and triggers."""
        verb = "pause" if paused else "unpause"
        return dict(self.request("POST", f"/api/v1/workflows/{_seg(name)}/{verb}"))

    # ------------------------------------------------------------------ runs

    def list_runs(
        self,
        workflow: str | None = None,
        state: RunState | str | None = None,
        *,
        limit: int = 50,
    ) -> list[RunRecord]:
        """Runs, newest first (the first page of `limit`)."""
        params: dict[str, Any] = {"limit": limit}
        if workflow:
            params["workflow"] = workflow
        if state:
            params["state"] = RunState(state).value
        page = self.request("GET", "/api/v1/runs", params=params)
        return [RUN.decode(item) for item in page["items"]]

    def get_run(self, run_id: str) -> RunRecord:
        """One run (an unambiguous id prefix will do)."""
        return RUN.decode(self.request("GET", f"/api/v1/runs/{_seg(run_id)}"))

    def task_runs(self, run_id: str) -> list[TaskRunRecord]:
        """Every task run of a run."""
        rows = self.request("GET", f"/api/v1/runs/{_seg(run_id)}/tasks")
        return [TASK_RUN.decode(t) for t in rows]

    def attempts(self, run_id: str) -> list[AttemptRecord]:
        """Every attempt of a run's task runs."""
        rows = self.request("GET", f"/api/v1/runs/{_seg(run_id)}/attempts")
        return [ATTEMPT.decode(a, run_id=run_id) for a in rows]

    def events(self, run_id: str) -> list[EventRecord]:
        """A run's history: every state change and action, oldest first."""
        rows = self.request("GET", f"/api/v1/runs/{_seg(run_id)}/events")
        return [EVENT.decode(e) for e in rows]

    def logs(self, run_id: str, task: str | None = None, after_id: int = 0) -> list[LogRecord]:
        """One page of a run's captured output lines after line id `after_id` (of one
        task, when given)."""
        params: dict[str, Any] = {"after": after_id}
        if task:
            params["task"] = task
        page = self.request("GET", f"/api/v1/runs/{_seg(run_id)}/logs", params=params)
        return [LOG_LINE.decode(x, run_id=run_id) for x in page["items"]]

    def all_logs(self, run_id: str, task: str | None = None) -> Iterator[LogRecord]:
        """Every captured line of a run so far, page after page."""
        after = 0
        while True:
            page = self.logs(run_id, task, after)
            if not page:
                return
            yield from page
            after = page[-1].id

    def trigger(
        self,
        workflow: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
    ) -> RunRecord:
        """Start a run of a workflow's current version; the same `idempotency_key` again
        returns the run it started."""
        body = {"params": dict(params or {}), "idempotency_key": idempotency_key}
        path = f"/api/v1/workflows/{_seg(workflow)}/runs"
        return RUN.decode(self.request("POST", path, json=body))

    def cancel(self, run_id: str) -> RunRecord:
        """Cancel a run (`ClientError` with code ``conflict`` if it already finished)."""
        return RUN.decode(self.request("POST", f"/api/v1/runs/{_seg(run_id)}/cancel"))

    def retry(self, run_id: str) -> RunRecord:
        """Re-open a failed or canceled run."""
        return RUN.decode(self.request("POST", f"/api/v1/runs/{_seg(run_id)}/retry"))

    def rerun(self, run_id: str, from_task: str) -> RunRecord:
        """A new run of the same version, from a chosen task on."""
        path = f"/api/v1/runs/{_seg(run_id)}/rerun"
        return RUN.decode(self.request("POST", path, json={"from_task": from_task}))

    def wait(self, run_id: str, timeout: float | None = None) -> RunRecord:
        """Block until the run finishes; the finished run. Follows the run's event
        stream; polls (every 0.2 s, slowing to 5 s) when the stream is unavailable.
        `ClientError` (code ``wait_timeout``) after `timeout` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        last: str | None = None
        pause = 0.2
        while True:
            run = self.get_run(run_id)
            if run.state.finished:
                return run
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                raise ClientError(
                    f"run {run_id} did not finish within {timeout} s (it is {run.state.value})",
                    code="wait_timeout",
                    url=f"{self.url}/api/v1/runs/{run_id}",
                )
            try:
                last, ended = self._follow(run.id, last, left)
                pause = 0.2
                if ended:
                    continue  # read the finished run whole
            except (httpx.HTTPError, ClientError):
                # No stream (a proxy that buffers, an older server): poll, slower each time.
                time.sleep(min(pause, left) if left is not None else pause)
                pause = min(pause * 2, _POLL_MOST)

    def _follow(self, run_id: str, last: str | None, left: float | None) -> tuple[str | None, bool]:
        """Read the run's event stream until a run event says it finished (True) or the
        stream ends or stays quiet (False); the last event id seen."""
        headers = {"Last-Event-ID": last} if last else {}
        read = 30.0 if left is None else max(0.1, min(30.0, left))
        with self._http.stream(
            "GET",
            "/api/v1/stream",
            params={"run_id": run_id},
            headers=headers,
            timeout=httpx.Timeout(30.0, read=read),
        ) as response:
            if response.status_code >= 400:
                response.read()
                raise self._refused(response, "/api/v1/stream")
            try:
                for line in response.iter_lines():
                    if line.startswith("id: "):
                        last = line[4:]
                    elif line.startswith("data: ") and '"run.' in line:
                        event = json.loads(line[6:])
                        to = event.get("to_state")
                        if event.get("run_id") == run_id and to and RunState(to).finished:
                            return last, True
            except httpx.ReadTimeout:
                pass  # quiet for a while: check the run, then follow again
        return last, False

    def trigger_and_wait(
        self,
        workflow: str,
        params: Mapping[str, Any] | None = None,
        *,
        idempotency_key: str | None = None,
        timeout: float | None = None,
    ) -> RunRecord:
        """`trigger`, then `wait`: the finished run."""
        run = self.trigger(workflow, params, idempotency_key=idempotency_key)
        return self.wait(run.id, timeout=timeout)

    # ------------------------------------------------------------------ secrets

    def secrets(self, namespace: str | None = None) -> list[SecretMeta]:
        """Secrets' metadata (names, versions, times; never a value)."""
        params = {"namespace": namespace} if namespace else None
        return [SECRET.decode(s) for s in self.request("GET", "/api/v1/secrets", params=params)]

    def set_secret(self, namespace: str, name: str, value: str) -> dict[str, Any]:
        """Create or replace a secret's value (write-only: it is never read back)."""
        path = f"/api/v1/secrets/{_seg(namespace)}/{_seg(name)}"
        return dict(self.request("PUT", path, json={"value": value}) or {})

    def delete_secret(self, namespace: str, name: str) -> None:
        """Delete a secret."""
        self.request("DELETE", f"/api/v1/secrets/{_seg(namespace)}/{_seg(name)}")

    # ------------------------------------------------------------------ policies

    def policies(self) -> list[dict[str, Any]]:
        """The admission policies in force (each with its document and YAML)."""
        return list(self.request("GET", "/api/v1/policies"))

    def put_policy(self, document: Mapping[str, Any]) -> dict[str, Any]:
        """Write a policy (a new version when it changed); the version in force."""
        return dict(self.request("POST", "/api/v1/policies", json=dict(document)))

    def delete_policy(self, name: str) -> None:
        """Take a policy out of force (its history stays)."""
        self.request("DELETE", f"/api/v1/policies/{_seg(name)}")


def _findings(response: httpx.Response) -> list[dict[str, Any]]:
    """The ``X-Policy-Findings`` of a response (none when absent or unreadable)."""
    raw = response.headers.get("X-Policy-Findings")
    if not raw:
        return []
    try:
        found = json.loads(raw)
    except ValueError:
        return []
    return [f for f in found if isinstance(f, dict)] if isinstance(found, list) else []
