"""Every input is validated at the edge, by class (issue 12, findings 1 and 7).

- every integer a request may carry (query, header, JSON body, workflow spec) has a range
  that fits the column it reaches, so a number past it is a 4xx, never a driver overflow;
  the event streams check theirs before the stream starts;
- a namespace is checked by one definition everywhere (spec, token and user bindings,
  secret routes), so a bad one is a 422 naming it, never a 500 from an authorisation check;
- control characters are refused where text reaches a terminal or a log (names,
  descriptions, tags, keys, the URL), with a 4xx naming the field.

The integer parameters are read off the published OpenAPI document, so a new one is covered
without an edit. Runs on SQLite and (``ORCHESTRION_TEST_DATABASE=postgres``) PostgreSQL,
whose ``INTEGER`` and ``BIGINT`` overflow where SQLite's integers would not. No request may
log a traceback: the ``orchestrion.api`` logger must stay silent.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
import time
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any

import httpx
import pytest

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.server import create_server
from orchestrion.spec.model import PythonAction, TaskSpec, WorkflowSpec
from tests.helpers import database_url_for

HUGE = [2**63, 2**64, -(2**63) - 1, 10**40]
BAD_NAMESPACES = ["", "..", "../x", "a/b", "a/../b", "Finance", "a b", "-x", ".x", "x" * 64]
CONTROLS = ["\x00", "\x1b[31m", "\r", "\x07", "\x7f", "\x85", "\x9b", "\u202e", "\u2028"]


class Served:
    """The module's App, its ASGI server and tokens: an admin of ``*``, an editor of ``team``."""

    def __init__(self, app: App) -> None:
        self.app = app
        self.server = create_server(app)
        self.run_id = ""
        self.admin: dict[str, str] = {}
        self.editor: dict[str, str] = {}

    def request(
        self, method: str, url: str, *, headers: dict[str, Any] | None = None, **kw: Any
    ) -> httpx.Response:
        return asyncio.run(self._request(method, url, headers or self.admin, **kw))

    async def _request(
        self, method: str, url: str, headers: dict[str, Any], **kw: Any
    ) -> httpx.Response:
        transport = httpx.ASGITransport(app=self.server, raise_app_exceptions=False)
        async with (
            httpx.AsyncClient(transport=transport, base_url="http://t") as client,
            client.stream(method, url, headers=headers, **kw) as response,
        ):
            # A stream that started would never end: read only its status and headers.
            if not response.headers.get("content-type", "").startswith("text/event-stream"):
                await response.aread()
            return response


def noop() -> int:
    return 1


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    db = Path(tmp_path_factory.mktemp("edge")) / "edge.db"
    with App(Settings(database_url=database_url_for(db))) as app:
        app.code.add({"t:noop": noop})
        spec = WorkflowSpec(
            name="w", tasks=(TaskSpec(name="a", action=PythonAction(ref="t:noop")),)
        )
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        out = Served(app)
        out.run_id = app.runs.trigger("w").id
        admin, _ = app.accounts.create_token("admin", {"*": "admin"}, expires="never")
        editor, _ = app.accounts.create_token("editor", {"team": "editor"}, expires="never")
        out.admin = {"authorization": f"Bearer {admin}"}
        out.editor = {"authorization": f"Bearer {editor}"}
        yield out


@pytest.fixture(autouse=True)
def no_traceback(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """No request of these tests may end in the API's 'internal error' log."""
    with caplog.at_level(logging.ERROR, logger="orchestrion"):
        yield
    errors = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert not errors, [r.getMessage() for r in errors]


def _refused(response: httpx.Response, *words: str, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    body = response.json()
    assert "error" in body, body
    for word in words:
        assert word in body["error"]["message"], (word, body)


def _fill(path: str, served: Served) -> str:
    return path.replace("{run_id}", served.run_id).replace("{name}", "w")


# ------------------------------------------------------------------------------ integers


def _integer_parameters(served: Served) -> list[tuple[str, str, str, str]]:
    """(method, path, where, name) of every integer parameter in the OpenAPI document."""
    found = []
    for path, methods in served.server.openapi()["paths"].items():
        for method, operation in methods.items():
            for param in operation.get("parameters", []):
                schema = param["schema"]
                kinds = [schema, *schema.get("anyOf", [])]
                if any(k.get("type") == "integer" for k in kinds):
                    found.append((method.upper(), path, param["in"], param["name"]))
    return found


def _required_query(served: Served, method: str, path: str) -> list[str]:
    """The names of the operation's required query parameters (e.g. an asset's ``key``)."""
    operation = served.server.openapi()["paths"][path][method.lower()]
    return [
        p["name"]
        for p in operation.get("parameters", [])
        if p["in"] == "query" and p.get("required")
    ]


def test_the_document_lists_the_cursor_parameters(served: Served) -> None:
    params = {(path, name) for _, path, _, name in _integer_parameters(served)}
    for expected in [
        ("/api/v1/events", "after"),
        ("/api/v1/audit", "before"),
        ("/api/v1/runs/{run_id}/events", "after"),
        ("/api/v1/runs/{run_id}/logs", "after"),
        ("/api/v1/runs/{run_id}/logs/stream", "after"),
        ("/api/v1/stream", "after"),
    ]:
        assert expected in params


@pytest.mark.parametrize("value", HUGE, ids=str)
def test_every_integer_parameter_refuses_a_number_past_its_column(
    served: Served, value: int
) -> None:
    """Also the streams: refused with a 422 before the stream starts (no 200, no traceback)."""
    for method, path, where, name in _integer_parameters(served):
        assert where in ("query", "path"), (path, name)  # no integer in a header today
        params: dict[str, Any] = {name: str(value)} if where == "query" else {}
        if path == "/api/v1/stream":
            params["run_id"] = served.run_id
        # Other required query parameters get a plain value, so the huge one is the problem.
        params |= {other: "x" for other in _required_query(served, method, path) if other != name}
        filled = _fill(path, served)
        for other in re.findall(r"{(\w+)}", filled):  # the path's ids: this one huge, others 1
            filled = filled.replace(f"{{{other}}}", str(value) if other == name else "1")
        response = served.request(method, filled, params=params)
        _refused(response, name, status=422)


@pytest.mark.parametrize(
    ("path", "name"),
    [
        ("/events", "before"),
        ("/fragments/events", "before"),
        ("/audit", "before"),
        ("/runs/{run_id}", "item"),
        ("/runs/{run_id}/fragments/panel", "item"),
    ],
)
@pytest.mark.parametrize("value", HUGE, ids=str)
def test_the_pages_integer_parameters_are_bounded_too(
    served: Served, path: str, name: str, value: int
) -> None:
    response = served.request("GET", _fill(path, served), params={name: str(value)})
    _refused(response, name, status=422)


@pytest.mark.parametrize("path", ["/api/v1/stream", "/api/v1/runs/{run_id}/logs/stream"])
@pytest.mark.parametrize(
    "last", ["9223372036854775808", "99999999999999999999999", "\u00b2", "-1", "1e3", "0x10"]
)
def test_a_bad_last_event_id_is_refused_before_the_stream_starts(
    served: Served, path: str, last: str
) -> None:
    # Latin-1 on the wire, as a server decodes it: '²' is a digit to str.isdigit.
    headers = {**served.admin, "last-event-id": last.encode("latin-1")}
    response = served.request(
        "GET", _fill(path, served), headers=headers, params={"run_id": served.run_id}
    )
    _refused(response, "Last-Event-ID", status=422)


@pytest.mark.parametrize(
    ("method", "path", "body", "field"),
    [
        ("POST", "/api/v1/workflows/w/runs", {"priority": 0}, "priority"),
        ("PUT", "/api/v1/queues/q/limit", {"max_running": 1}, "max_running"),
        (
            "POST",
            "/api/v1/backfills",
            {"workflow": "w", "start": "2024-01-01", "end": "2024-01-02", "max_active": 1},
            "max_active",
        ),
        ("PUT", "/api/v1/retention/ns", {"keep_last": 1}, "keep_last"),
        ("POST", "/api/v1/retention/prune", {"older_than": 60, "dry_run": True}, "keep_last"),
    ],
)
@pytest.mark.parametrize("value", HUGE, ids=str)
def test_every_integer_body_field_is_bounded(
    served: Served, method: str, path: str, body: dict[str, Any], field: str, value: int
) -> None:
    response = served.request(method, path, json={**body, field: value})
    _refused(response, field, status=422)


def test_the_body_fields_above_are_every_integer_of_a_request_body(served: Served) -> None:
    """The list above is complete: a new integer field in a request body must join it."""
    doc = served.server.openapi()
    schemas = doc["components"]["schemas"]
    found = set()
    for methods in doc["paths"].values():
        for operation in methods.values():
            body = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
            )
            for ref in [k["$ref"] for k in [body, *body.get("anyOf", [])] if "$ref" in k]:
                model = schemas[ref.rsplit("/", 1)[1]]
                for name, prop in model.get("properties", {}).items():
                    kinds = [prop, *prop.get("anyOf", [])]
                    integers = [k for k in kinds if k.get("type") == "integer"]
                    if integers:
                        found.add(name)
                        assert all("maximum" in k for k in integers), (ref, name)
    assert found == {"priority", "max_running", "max_active", "keep_last"}


def _spec(**extra: Any) -> dict[str, Any]:
    return {"name": "e", "tasks": [{"name": "a", "action": {"kind": "python", "ref": "m:f"}}]}


def _with_task(**task: Any) -> dict[str, Any]:
    spec = _spec()
    spec["tasks"][0].update(task)
    return spec


@pytest.mark.parametrize(
    ("spec", "field"),
    [
        ({**_spec(), "max_active_runs": 2**31}, "max_active_runs"),
        (_with_task(concurrency=2**40), "concurrency"),
        (_with_task(concurrency_key="k", key_limit=2**63), "key_limit"),
        (_with_task(priority=2**63), "priority"),
        (_with_task(retry={"retries": 10**30}), "retries"),
        (_with_task(timeout=10**400), "timeout"),
        (_with_task(retry={"backoff": 10**400}), "backoff"),
        ({**_spec(), "schedules": [{"every": 60, "max_catchup": 2**63}]}, "max_catchup"),
        (
            _with_task(action={"kind": "http", "url": "https://x.test", "expect_status": [2**63]}),
            "expect_status",
        ),
    ],
    ids=lambda v: v if isinstance(v, str) else "",
)
def test_every_integer_of_a_spec_is_bounded(
    served: Served, spec: dict[str, Any], field: str
) -> None:
    _refused(served.request("POST", "/api/v1/workflows", json=spec), field, status=422)


# ---------------------------------------------------------------------------- namespaces


@pytest.mark.parametrize("bad", BAD_NAMESPACES, ids=repr)
@pytest.mark.parametrize("who", ["admin", "editor"])
def test_a_spec_with_a_bad_namespace_is_a_422(served: Served, bad: str, who: str) -> None:
    """Also for an editor of one namespace: the authorisation check reads the namespace
    before the handler validates the spec, and must not fail on it."""
    headers = served.admin if who == "admin" else served.editor
    response = served.request(
        "POST", "/api/v1/workflows", headers=headers, json={**_spec(), "namespace": bad}
    )
    _refused(response, "namespace", status=422)
    # A spec broken elsewhere too: still a 422 (its first error), never a 500.
    response = served.request(
        "POST", "/api/v1/workflows", headers=headers, json={"namespace": bad, "tasks": 1}
    )
    _refused(response, status=422)


@pytest.mark.parametrize("bad", BAD_NAMESPACES, ids=repr)
def test_bindings_with_a_bad_namespace_are_a_422(served: Served, bad: str) -> None:
    bindings = {bad: "viewer"}
    made = served.request("POST", "/api/v1/tokens", json={"name": "t", "bindings": bindings})
    _refused(made, "namespace", status=422)
    user = {"name": "u", "password": "pw-pw-pw-pw", "bindings": bindings}
    _refused(served.request("POST", "/api/v1/users", json=user), "namespace", status=422)
    change = served.request("PATCH", "/api/v1/users/nobody", json={"bindings": bindings})
    _refused(change, "namespace", status=422)
    listed = served.request("GET", "/api/v1/secrets", params={"namespace": bad})
    if bad:  # an empty filter is no filter
        _refused(listed, "namespace", status=422)


@pytest.mark.parametrize("bad", [b for b in BAD_NAMESPACES if "/" not in b and b], ids=repr)
def test_secret_routes_refuse_a_bad_namespace(served: Served, bad: str) -> None:
    for method in ("PUT", "DELETE"):
        response = served.request(method, f"/api/v1/secrets/{bad}/x", json={"value": "v"})
        _refused(response)


def test_the_namespace_rule_is_one(served: Served) -> None:
    """The spec, the bindings and an authorisation resource accept and refuse the same."""
    from orchestrion.app.accounts import parse_bindings
    from orchestrion.auth.principals import Resource, check_namespace
    from orchestrion.errors import InvalidValue, ParameterError

    for bad in BAD_NAMESPACES:
        with pytest.raises(InvalidValue):
            check_namespace(bad)
        with pytest.raises(InvalidValue):
            Resource(bad, "workflow")
        with pytest.raises(ParameterError):
            parse_bindings({bad: "viewer"})
        with pytest.raises(ValueError, match="namespace"):
            WorkflowSpec.model_validate({**_spec(), "namespace": bad})
    for good in ["a", "finance", "team-1.eu_west", "0"]:
        assert check_namespace(good) == good
        assert WorkflowSpec.model_validate({**_spec(), "namespace": good}).namespace == good


# ---------------------------------------------------------------------- control characters


@pytest.mark.parametrize("char", CONTROLS, ids=repr)
def test_control_characters_in_spec_text_are_refused_naming_the_field(
    served: Served, char: str
) -> None:
    text = f"a{char}b"
    cases = [
        ({**_spec(), "description": text}, "description"),
        ({**_spec(), "tags": ["ok", text]}, "tags"),
        ({**_spec(), "params": {"p": {"description": text}}}, "description"),
        (_with_task(description=text), "description"),
        (_with_task(concurrency_key=text, key_limit=1), "concurrency_key"),
        (_with_task(retry={"retry_on": [text]}), "retry_on"),
        ({**_spec(), "schedules": [{"every": 60, "timezone": text}]}, "timezone"),
    ]
    # A NUL is refused by the body check that comes first (see below), also naming the field.
    what = "NUL" if char == "\x00" else "control character"
    for spec, field in cases:
        response = served.request("POST", "/api/v1/workflows", json=spec)
        _refused(response, field, what, status=422)


def test_a_description_may_span_lines(served: Served) -> None:
    spec = {**_spec(), "name": "multi", "description": "one\n\ttwo\nthree"}
    response = served.request("POST", "/api/v1/workflows", json=spec)
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "one\n\ttwo\nthree"


@pytest.mark.parametrize("char", CONTROLS, ids=repr)
def test_control_characters_in_api_names_are_refused(served: Served, char: str) -> None:
    name = f"a{char}b"
    what = "NUL" if char == "\x00" else "control character"
    made = served.request(
        "POST", "/api/v1/tokens", json={"name": name, "bindings": {"x": "viewer"}}
    )
    _refused(made, "name", what, status=422)
    user = {"name": name, "password": "pw-pw-pw-pw", "bindings": {"x": "viewer"}}
    _refused(served.request("POST", "/api/v1/users", json=user), status=422)
    event = served.request("POST", "/api/v1/events", json={"type": "t", "id": name})
    _refused(event, "id", status=422)
    run = served.request("POST", "/api/v1/workflows/w/runs", json={"idempotency_key": name})
    _refused(run, "idempotency_key", what, status=422)


@pytest.mark.parametrize("char", CONTROLS, ids=repr)
def test_control_characters_anywhere_in_a_url_are_refused(served: Served, char: str) -> None:
    from urllib.parse import quote

    for url in [
        f"/api/v1/workflows/{quote('w' + char)}",
        f"/api/v1/runs?workflow={quote('w' + char)}",
        f"/api/v1/audit?actor={quote(char)}",
        f"/runs?workflow={quote(char)}",
    ]:
        _refused(served.request("GET", url), "in the request URL", status=400)


def test_text_outside_control_characters_is_accepted(served: Served) -> None:
    """Non-ASCII letters are not control characters: names in any script stay allowed."""
    made = served.request(
        "POST", "/api/v1/tokens", json={"name": "équipe données €", "bindings": {"x": "viewer"}}
    )
    assert made.status_code == 201, made.text
    spec = {**_spec(), "name": "intl", "description": "déploiement — 日本語", "tags": ["ünï"]}
    assert served.request("POST", "/api/v1/workflows", json=spec).status_code == 201
    url = "/api/v1/runs?workflow=" + "%C3%A9%E2%82%AC"  # 'é€': no C1 byte once decoded
    assert served.request("GET", url).status_code == 200


# ------------------------------------------------------------------------------ NUL bytes


def _string_body_fields(served: Served) -> list[tuple[str, str, str]]:
    """(method, path, field) of every string property of every JSON request body."""
    doc = served.server.openapi()
    schemas = doc["components"]["schemas"]
    found = []
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            body = (
                operation.get("requestBody", {})
                .get("content", {})
                .get("application/json", {})
                .get("schema", {})
            )
            for ref in [k["$ref"] for k in [body, *body.get("anyOf", [])] if "$ref" in k]:
                for name, prop in schemas[ref.rsplit("/", 1)[1]].get("properties", {}).items():
                    kinds = [prop, *prop.get("anyOf", [])]
                    if any(k.get("type") == "string" for k in kinds):
                        found.append((method.upper(), path, name))
    return found


def test_a_nul_in_any_string_of_a_request_body_is_a_422(served: Served) -> None:
    """PostgreSQL text cannot hold NUL: a name or key with one would fail in the database
    (a 503), so every body is refused whole, before it reaches a handler."""
    fields = _string_body_fields(served)
    assert {("POST", "/api/v1/workflows/{name}/current", "version")} <= set(fields)
    for method, path, field in fields:
        url = _fill(path, served).replace("{queue}", "q").replace("{backfill_id}", "b")
        url = url.replace("{namespace}", "team").replace("{user}", "nobody").replace("{task}", "a")
        response = served.request(method, url, json={field: "a\x00b"})
        _refused(response, "NUL", f"at {field}", status=422)
    # Free-form bodies too: a spec, run parameters, an event's payload.
    for method, path, body in [
        ("POST", "/api/v1/workflows", {**_spec(), "params": {"p": {"default": "\x00"}}}),
        ("POST", "/api/v1/workflows/w/runs", {"params": {"\x00": 1}}),
        ("POST", "/api/v1/events", {"type": "t", "payload": ["\x00"]}),
    ]:
        _refused(served.request(method, path, json=body), "NUL", status=422)


@pytest.mark.parametrize("bad", ["\\ud800", "x\\udfff", "\\uDBFF"])
def test_a_lone_surrogate_in_any_string_of_a_request_body_is_a_422(
    served: Served, bad: str
) -> None:
    """A lone surrogate (valid JSON, not Unicode text) fails to encode in both drivers and
    in the audit record: refused whole like a NUL, naming where."""
    for method, path, field in _string_body_fields(served):
        url = _fill(path, served).replace("{queue}", "q").replace("{backfill_id}", "b")
        url = url.replace("{namespace}", "team").replace("{user}", "nobody").replace("{task}", "a")
        body = ("{" + f'"{field}": "{bad}"' + "}").encode()
        headers = {**served.admin, "content-type": "application/json"}
        response = served.request(method, url, content=body, headers=headers)
        _refused(response, "lone surrogate", f"at {field}", status=422)
    spec = json.dumps(_spec()).replace('"a"', f'"a{bad}"').encode()
    headers = {**served.admin, "content-type": "application/json"}
    _refused(served.request("POST", "/api/v1/workflows", content=spec, headers=headers))
    # Refused, and still audited: without the body, which the record could not hold.
    from orchestrion.store.records import AuditFilter

    record = served.app.accounts.list_audit(AuditFilter(action="workflow.deploy", limit=1))[0]
    assert record.outcome == "failed" and "refused: lone surrogate" in str(record.params)


def test_a_surrogate_pair_is_text(served: Served) -> None:
    spec = json.dumps({**_spec(), "name": "pair", "description": "\U0001f600"}).encode()
    headers = {**served.admin, "content-type": "application/json"}
    response = served.request("POST", "/api/v1/workflows", content=spec, headers=headers)
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "\U0001f600"


def test_an_escaped_backslash_before_u0000_is_text_not_a_nul(served: Served) -> None:
    spec = {**_spec(), "name": "slash", "description": "C:\\u0000 is a path"}
    response = served.request("POST", "/api/v1/workflows", json=spec)
    assert response.status_code == 201, response.text
    assert response.json()["description"] == "C:\\u0000 is a path"


# ---------------------------------------------------------------------------- deep JSON


@pytest.mark.parametrize("depth", [65, 300, 950, 5000])
def test_json_nested_too_deep_is_a_4xx_on_every_route_that_takes_a_body(
    served: Served, depth: int
) -> None:
    """Past `MAX_JSON_DEPTH` a body is refused, also on routes that declare no body (their
    audit record decoded it) and where pydantic's serializer would fail further in."""
    deep = b'{"a":' * depth + b"1" + b"}" * depth
    headers = {**served.admin, "content-type": "application/json"}
    doc = served.server.openapi()
    for path, methods in doc["paths"].items():
        for method in methods:
            if method.upper() not in ("POST", "PUT", "PATCH", "DELETE"):
                continue
            url = _fill(path, served).replace("{queue}", "q").replace("{backfill_id}", "b")
            url = url.replace("{namespace}", "team").replace("{user}", "x").replace("{task}", "a")
            url = url.replace("{token_id}", "t")
            response = served.request(method.upper(), url, content=deep, headers=headers)
            if not url.startswith("/hooks/"):
                _refused(response)
    # Inside a field, as deep as a parameter, a default or an event's payload may go.
    for method, path, body in [
        ("POST", "/api/v1/events", b'{"type": "t", "payload": ' + deep + b"}"),
        ("POST", "/api/v1/workflows/w/runs", b'{"params": {"p": ' + deep + b"}}"),
    ]:
        _refused(served.request(method, path, content=body, headers=headers))


def test_json_as_deep_as_the_limit_is_accepted(served: Served) -> None:
    from orchestrion.spec.fields import MAX_JSON_DEPTH

    inner = "1"
    for _ in range(MAX_JSON_DEPTH - 2):  # the body and "payload" are two levels
        inner = '{"a": ' + inner + "}"
    body = ('{"type": "t", "payload": ' + inner + "}").encode()
    headers = {**served.admin, "content-type": "application/json"}
    assert (
        served.request("POST", "/api/v1/events", content=body, headers=headers).status_code == 202
    )


@pytest.mark.parametrize("number", ["NaN", "Infinity", "-Infinity"])
def test_nan_and_infinity_are_not_json_numbers(served: Served, number: str) -> None:
    """Python's decoder takes them; stored and echoed back they would make responses no
    client can parse (and that break the published schema)."""
    headers = {**served.admin, "content-type": "application/json"}
    for path, body in [
        ("/api/v1/workflows/w/runs", '{"params": {"p": %s}}'),
        ("/api/v1/events", '{"type": "t", "payload": [1, %s]}'),
        ("/api/v1/workflows", '{"name": "n", "timeout": %s, "tasks": []}'),
    ]:
        content = body.replace("%s", number).encode()
        response = served.request("POST", path, content=content, headers=headers)
        _refused(response, "not a JSON number", status=422)


@pytest.mark.parametrize("path", ["/api/v1/stream", "/api/v1/runs/{run_id}/logs/stream"])
def test_the_streams_answer_as_published(served: Served, path: str) -> None:
    """A stream is published as text/event-stream and its refusals as the JSON error body,
    and it answers so (schemathesis leaves the live streams out: they never end)."""
    operation = served.server.openapi()["paths"][path]["get"]["responses"]
    assert set(operation["200"]["content"]) == {"text/event-stream"}
    assert set(operation["4XX"]["content"]) == {"application/json"}
    url = _fill(path, served)
    status, content_type = asyncio.run(_stream_start(served, url, f"run_id={served.run_id}"))
    assert status == 200 and content_type.startswith("text/event-stream")
    refused = served.request("GET", url, params={"run_id": served.run_id, "after": "-1"})
    assert refused.status_code == 422
    assert refused.headers["content-type"] == "application/json"


async def _stream_start(served: Served, path: str, query: str) -> tuple[int, str]:
    """The status and content type a live stream starts with; then the client goes away
    (httpx's ASGI transport would wait for a body that never ends)."""
    started: dict[str, Any] = {}
    gone = asyncio.Event()
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await gone.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "http.response.start":
            started.update(message)
            gone.set()

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": query.encode(),
        "root_path": "",
        "headers": [(k.encode(), v.encode()) for k, v in served.admin.items()],
        "client": ("127.0.0.1", 1),
        "server": ("t", 80),
    }
    await asyncio.wait_for(served.server(scope, receive, send), timeout=30)
    headers = dict(started["headers"])
    return started["status"], headers[b"content-type"].decode()
