"""Records are defined once on the wire: the API's models and the CLI's decoding derive from
the record dataclasses through `orchestrion.api.wire`, and the published shapes stay put.

``openapi_v1.json`` is the OpenAPI document as it was before the models were derived (taken
from the hand-written models). When the API changes on purpose, regenerate it with
``create_server(app).openapi()`` and review the diff like any other API change.
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

import pytest

from orchestrion.api.schemas import Run, TaskRun, model_of
from orchestrion.api.wire import ATTEMPT, EVENT, LOG_LINE, RUN, TASK_RUN, WORKER, Wire
from orchestrion.app import App
from orchestrion.app.settings import Settings
from orchestrion.server import create_server
from orchestrion.states import RunState, TaskState
from orchestrion.store.record import field_names
from orchestrion.store.records import (
    AttemptRecord,
    EventRecord,
    LogRecord,
    RunRecord,
    TaskRunRecord,
    WorkerRecord,
)
from tests.helpers import database_url_for

SNAPSHOT = Path(__file__).with_name("openapi_v1.json")

RUN_REC = RunRecord(
    id="r1",
    workflow="w",
    version="v1",
    state=RunState.SUCCEEDED,
    params={"x": 1},
    priority=3,
    trigger="api",
    idempotency_key=None,
    parent_task_run_id=None,
    created_at=1.0,
    started_at=2.0,
    finished_at=3.0,
    deadline=None,
    result={"a": [1, 2]},
    error=None,
)


def _task_run(map_index: int) -> TaskRunRecord:
    return TaskRunRecord(
        id=7,
        run_id="r1",
        task_name="fetch",
        map_index=map_index,
        kind="item" if map_index >= 0 else "task",
        state=TaskState.FAILED,
        queue="default",
        priority=0,
        attempts=2,
        ready_at=0.0,
        result=None,
        error="boom",
        started_at=2.0,
        finished_at=2.5,
        lease_owner=None,
        lease_epoch=0,
    )


def _canonical(doc: Any) -> Any:
    """JSON Schema's ``required`` is a set: its order follows the record's field order now
    (a run's ``priority`` comes before ``trigger``); everything else must be equal as is.
    (Objects compare without order, as JSON objects are unordered.)"""
    if isinstance(doc, dict):
        return {
            k: sorted(v) if k == "required" and isinstance(v, list) else _canonical(v)
            for k, v in doc.items()
        }
    if isinstance(doc, list):
        return [_canonical(item) for item in doc]
    return doc


def test_the_openapi_document_is_the_one_published_before(tmp_path: Path) -> None:
    with App(Settings(database_url=database_url_for(tmp_path / "doc.db"))) as app:
        document = create_server(app).openapi()
    before = json.loads(SNAPSHOT.read_text())
    assert _canonical(document) == _canonical(before)
    # The renames and conversions are there, and the hidden fields are not.
    task_run = document["components"]["schemas"]["TaskRun"]["properties"]
    assert "task" in task_run and "task_name" not in task_run
    assert not {"ready_at", "lease_owner", "lease_epoch"} & set(task_run)
    assert {"type": "null"} in task_run["map_index"]["anyOf"]
    assert "deadline" not in document["components"]["schemas"]["Run"]["properties"]


def test_a_new_record_field_reaches_the_model_its_schema_and_the_decoder() -> None:
    """One edit to the record (here a derived copy with ``owner``) is the whole change."""

    class OwnedRun(RunRecord, frozen=True, kw_only=True):
        owner: str | None

    wire = dataclasses.replace(RUN, record=OwnedRun)
    model = model_of(wire, "Run")
    assert list(model.model_fields)[-1] == "owner"
    schema = model.model_json_schema()
    assert "owner" in schema["required"]
    assert schema["properties"]["owner"]["anyOf"] == [{"type": "string"}, {"type": "null"}]
    record = OwnedRun(**{**_fields(RUN_REC), "owner": "ana"})
    sent = model.of(record).model_dump(mode="json")
    assert sent["owner"] == "ana" and sent["state"] == "succeeded"
    assert wire.decode(sent) == record


def _fields(record: Any) -> dict[str, Any]:
    return {n: getattr(record, n) for n in field_names(record)}


@pytest.mark.parametrize("map_index", [-1, 0, 12])
def test_records_come_back_from_the_wire_as_they_went(map_index: int) -> None:
    """What the API sends, the CLI's `Remote` reads back into the same record (hidden
    fields at the values a client cannot know: no lease, no deadline)."""
    assert RUN.decode(Run.of(RUN_REC).model_dump(mode="json")) == RUN_REC
    task_run = _task_run(map_index)
    sent = TaskRun.of(task_run).model_dump(mode="json")
    assert sent["task"] == "fetch" and "task_name" not in sent
    assert sent["map_index"] == (None if map_index < 0 else map_index)
    assert TASK_RUN.decode(sent) == task_run


def test_every_wire_table_round_trips_its_record() -> None:
    attempt = AttemptRecord(
        id=1, task_run_id=7, run_id="r1", number=1, epoch=0, worker="w1", started_at=1.0,
        finished_at=None, outcome=None, error=None, error_type=None, traceback=None,
    )  # fmt: skip
    event = EventRecord(
        id=5, run_id=None, task_run_id=None, at=1.0, kind="schedule.fired",
        from_state=None, to_state=None, data={"k": "v"},
    )  # fmt: skip
    log = LogRecord(
        id=9, run_id="r1", task_run_id=7, task_name="fetch", attempt=1, at=1.0,
        stream="stdout", line="hello",
    )  # fmt: skip
    worker = WorkerRecord(
        id="w1", host="h", pid=1, queues=("a", "b"), started_at=1.0, heartbeat_at=2.0,
        state="alive", labels={"gpu": "a100"},
    )  # fmt: skip
    assert ATTEMPT.decode(ATTEMPT.encode(attempt), run_id="r1") == attempt
    assert EVENT.decode(EVENT.encode(event)) == event
    assert LOG_LINE.decode(LOG_LINE.encode(log), run_id="r1") == log
    sent = WORKER.encode(worker)
    assert sent["queues"] == ["a", "b"] and sent["labels"] == {"gpu": "a100"}
    assert WORKER.decode(json.loads(json.dumps(sent))) == worker
    with pytest.raises(TypeError, match="run_id="):
        LOG_LINE.decode(LOG_LINE.encode(log))  # the run id is the caller's to give


def test_a_wire_table_names_only_fields_its_record_has() -> None:
    with pytest.raises(TypeError, match="no fields"):
        Wire(record=RunRecord, hidden={"deadlines": None})
