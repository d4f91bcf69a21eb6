"""The published OpenAPI document, fuzzed by schemathesis: no request gets a 5xx, and every
response conforms to the document (status code, content type, headers, body schema).

schemathesis generates requests from the document served by the real server (in process,
over ASGI, as `test_api_fuzz` does), valid ones and invalid ones (wrong types, out of range,
malformed strings), and checks each response. It runs against the module's own App, on
SQLite, and with ``ORCHESTRION_TEST_DATABASE=postgres`` on a fresh PostgreSQL schema
(`database_url_for`), where integer overflows and NUL characters are refused by the database.

Bounded in time: a fixed number of examples per operation (``ORCHESTRION_FUZZ_EXAMPLES``,
default 25), no shrinking deadline; the whole run takes well under a minute per database.
The live event streams are left out (they never end by design): their inputs are checked
before the stream starts, which `test_api_fuzz` and `test_edge_input` cover.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Unsatisfiable
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.core.result import Ok
from schemathesis.generation import GenerationMode

from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.server import create_server
from orchestrion.spec.model import PythonAction, TaskSpec, WorkflowSpec
from tests.helpers import database_url_for

EXAMPLES = int(os.environ.get("ORCHESTRION_FUZZ_EXAMPLES", "25"))

#: The checks every response must pass: no server error, and conformance to the document.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
]


def noop() -> int:
    return 1


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str]]]:
    """The server over a fresh App with one workflow and one run, and an admin's headers."""
    db = Path(tmp_path_factory.mktemp("schemathesis")) / "fuzz.db"
    with App(Settings(database_url=database_url_for(db))) as app:
        app.code.add({"t:noop": noop})
        spec = WorkflowSpec(
            name="w", tasks=(TaskSpec(name="a", action=PythonAction(ref="t:noop")),)
        )
        app.store.workflows.register_workflow(spec, source=None, now=time.time())
        app.runs.trigger("w")
        token, _ = app.accounts.create_token("fuzz", {"*": "admin"}, expires="never")
        yield create_server(app, max_body_bytes=100_000), {"authorization": f"Bearer {token}"}


def _operations(server: Any, headers: dict[str, str]) -> list[Any]:
    loaded = schemathesis.openapi.from_asgi("/api/v1/openapi.json", server, headers=headers)
    # The live streams never end by design; their inputs are checked before they start.
    operations = []
    for result in loaded.exclude(path_regex=r"/stream$").get_all_operations():
        # An operation schemathesis cannot read is a broken document: fail on it.
        assert isinstance(result, Ok), result.err()
        operations.append(result.ok())
    return operations


def _failures(operation: Any, mode: GenerationMode, headers: dict[str, str]) -> list[str]:
    """Run `operation` on generated cases; each failing check, once, with its request."""
    found: dict[str, str] = {}

    @settings(
        max_examples=EXAMPLES,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
        database=None,
    )
    @given(case=operation.as_strategy(generation_mode=mode))
    def run(case: Any) -> None:
        response = case.call(headers=headers)
        try:
            case.validate_response(response, checks=CHECKS, headers=headers)
        except (Exception, BaseExceptionGroup) as exc:  # note it, keep exploring the others
            parts = exc.exceptions if isinstance(exc, BaseExceptionGroup) else (exc,)
            for part in parts:
                key = f"{operation.label}: {type(part).__name__}"
                found.setdefault(key, f"{key}\n{part}\n{case.as_curl_command()}"[:2000])

    with contextlib.suppress(Unsatisfiable):  # no invalid request exists (no parameter)
        run()
    return list(found.values())


# The pytest plugin's lazy loader (`schemathesis.pytest.from_fixture`) needs a pytest
# internal that pytest 9 removed, so the operations are driven here with hypothesis
# directly: one test per generation mode, every operation, every failure reported at once.
@pytest.mark.parametrize("mode", [GenerationMode.POSITIVE, GenerationMode.NEGATIVE])
def test_openapi_fuzz(served: tuple[Any, dict[str, str]], mode: GenerationMode) -> None:
    server, headers = served
    operations = _operations(server, headers)
    assert len(operations) >= 25
    failures = [f for op in operations for f in _failures(op, mode, headers)]
    assert not failures, f"{len(failures)} failing checks:\n\n" + "\n\n".join(failures)
