"""Records from rows (`orchestrion.store.sql.rows`): each field from its column, decoded by
its type, with what differs declared once in the reader's table."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pytest

from orchestrion.states import RunState, TaskState
from orchestrion.store.record import field_names
from orchestrion.store.records import (
    BackfillRecord,
    RunRecord,
    SealedRow,
    UserRecord,
    WorkerRecord,
)
from orchestrion.store.sql import rows
from orchestrion.store.sql.jsontext import loads


def test_decoders_follow_the_field_types() -> None:
    assert rows.decoder(str) is None and rows.decoder(int) is None
    assert rows.decoder(float | None) is None
    assert rows.decoder(bool) is bool
    assert rows.decoder(bytes) is bytes
    assert rows.decoder(TaskState) is TaskState
    assert rows.decoder(Any) is loads
    assert rows.decoder(dict[str, Any] | None) is loads
    decode = rows.decoder(Mapping[str, str])
    assert decode is not None and decode('{"a":"b"}') == {"a": "b"} and decode(None) == {}
    decode = rows.decoder(tuple[str, ...])
    assert decode is not None and decode('["a","b"]') == ("a", "b")


def _run_row() -> dict[str, Any]:
    return {
        "id": "r1",
        "workflow": "w",
        "version": "v1",
        "state": "running",
        "params": '{"n":1}',
        "priority": 0,
        "trigger": "manual",
        "idempotency_key": None,
        "parent_task_run_id": None,
        "created_at": 1.0,
        "started_at": 2.0,
        "finished_at": None,
        "deadline": None,
        "result": '[1,"x"]',
        "error": None,
        "keep": 0,
        "unfinished": 3,  # a column the record does not have: ignored
    }


def test_a_run_reads_every_field_from_its_column() -> None:
    run = rows.RUN(_run_row())
    assert run == RunRecord(
        id="r1",
        workflow="w",
        version="v1",
        state=RunState.RUNNING,
        params={"n": 1},
        priority=0,
        trigger="manual",
        idempotency_key=None,
        parent_task_run_id=None,
        created_at=1.0,
        started_at=2.0,
        finished_at=None,
        deadline=None,
        result=[1, "x"],
        error=None,
    )
    assert rows.RUN.__name__ == "read_RunRecord"


def test_stored_integers_and_bytes_become_their_types() -> None:
    user = rows.USER(
        {
            "id": "u",
            "name": "ann",
            "password_hash": "h",
            "bindings": '{"*":"admin"}',
            "disabled": 1,
            "auth_epoch": 2,
            "created_at": 1.0,
            "updated_at": 1.0,
        }
    )
    assert user.disabled is True and user.bindings == {"*": "admin"}
    sealed = rows.SEALED(
        {"namespace": "n", "name": "s", "key_id": "k", "nonce": memoryview(b"12"),
         "ciphertext": bytearray(b"ct")}
    )  # fmt: skip
    assert sealed == SealedRow(namespace="n", name="s", key_id="k", nonce=b"12", ciphertext=b"ct")
    worker = rows.WORKER(
        {"id": "w", "host": "h", "pid": 1, "queues": '["a","b"]', "started_at": 1.0,
         "heartbeat_at": 2.0, "state": "running", "labels": '{"gpu":"a100"}', "slots": 4}
    )  # fmt: skip
    assert worker == WorkerRecord(
        id="w",
        host="h",
        pid=1,
        queues=("a", "b"),
        started_at=1.0,
        heartbeat_at=2.0,
        state="running",
        labels={"gpu": "a100"},
        slots=4,
    )


def test_renamed_columns_and_given_fields() -> None:
    row: dict[str, Any] = dict.fromkeys(field_names(BackfillRecord))
    row |= {"range_start": 1.0, "range_end": 2.0, "id": "bf"}
    del row["start"], row["end"], row["counts"]
    backfill = rows.BACKFILL(row, counts={"running": 1})
    assert (backfill.start, backfill.end, backfill.counts) == (1.0, 2.0, {"running": 1})
    with pytest.raises(TypeError):
        rows.BACKFILL(row)  # the counts are the caller's


def test_a_reader_refuses_what_its_record_lacks() -> None:
    with pytest.raises(TypeError, match="no fields"):
        rows.row_reader(RunRecord, columns={"nope": "x"})
    with pytest.raises(TypeError, match="no fields"):
        rows.row_reader(RunRecord, given=["nope"])
    with pytest.raises(TypeError, match="not a name"):
        rows.row_reader(RunRecord, columns={"id": "id]); import os; ("})


def test_column_lists_follow_the_records() -> None:
    assert rows.column_list(SealedRow) == "namespace, name, key_id, nonce, ciphertext"
    assert rows.column_list(UserRecord).startswith("id, name, password_hash")


def test_every_reader_is_built_at_first_use_and_kept() -> None:
    """Readers are made lazily (a run uses five): each named one builds, is declared for
    type checkers, and is the same function on the next use."""
    declared = set(rows.__annotations__) - {"BACKFILL_COLUMNS", "_READERS", "_KEPT"}
    assert declared == set(rows._READERS)
    for name in rows._READERS:
        reader = getattr(rows, name)
        assert reader is getattr(rows, name)
        assert reader.__name__ == f"read_{rows._READERS[name][0].__name__}"
    with pytest.raises(AttributeError, match="NOT_A_READER"):
        rows.__getattr__("NOT_A_READER")


def test_another_modules_reader_is_built_once() -> None:
    assert rows.reader(SealedRow) is rows.reader(SealedRow)
    assert rows.reader(SealedRow).__name__ == "read_SealedRow"
