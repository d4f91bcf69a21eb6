"""OpenLineage run events to a receiver on loopback (a real HTTP server), on real
databases: a producer's run gives START and COMPLETE with its assets as outputs, a failed
run gives FAIL; every event parses into the openlineage-python client's RunEvent model of
the published spec (2-0-2), whose validators check the UUID run id and the date-time, and
serialises back to exactly what was sent. A receiver that refuses an event gets it again."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.serde import Serde

from orchestrion.clock import FakeClock
from orchestrion.spec.model import AssetRef, TriggerSpec
from orchestrion.store.records import Outcome, Produced
from orchestrion.triggers.openlineage import LineageEmitter, run_uuid
from tests.helpers import Driver, py, wf


class Receiver:
    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.refuse = 0
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if receiver.refuse:
                    receiver.refuse -= 1
                    self.send_response(503)
                else:
                    receiver.bodies.append(body)
                    self.send_response(201)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                return None

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/api/v1/lineage"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


def _validated(body: dict[str, Any]) -> RunEvent:
    """The body as the client's model (its validators run), which must serialise back to
    exactly the body: no field the spec does not know, none missing."""
    event = RunEvent(
        eventTime=body["eventTime"],
        producer=body["producer"],
        eventType=RunState(body["eventType"]),
        run=Run(runId=body["run"]["runId"]),
        job=Job(namespace=body["job"]["namespace"], name=body["job"]["name"]),
        inputs=[InputDataset(namespace=d["namespace"], name=d["name"]) for d in body["inputs"]],
        outputs=[OutputDataset(namespace=d["namespace"], name=d["name"]) for d in body["outputs"]],
    )
    again = Serde.to_dict(event)
    for dataset in (*again.get("inputs", []), *again.get("outputs", [])):
        for facets in ("facets", "inputFacets", "outputFacets"):
            assert dataset.pop(facets, {}) == {}
    for part in ("run", "job"):
        assert again[part].pop("facets", {}) == {}
    assert {k: v for k, v in again.items() if v != []} == {k: v for k, v in body.items() if v != []}
    return event


def test_runs_post_start_complete_and_fail(tmp_path: Path, receiver: Receiver) -> None:
    drv = Driver(tmp_path / "lineage.db", FakeClock(1_800_000_000.0))
    try:
        spec = wf(
            "mart",
            py("build", consumes=(AssetRef(key="lake.staged"),),
               produces=(AssetRef(key="lake.mart"), AssetRef(key="lake.unused"))),
            triggers=(TriggerSpec(assets=("lake.raw",)),),
        )  # fmt: skip
        drv.register(spec)
        store = drv.store
        emitter = LineageEmitter(
            receiver.url, reads=store.reads, workflows=store.workflows,
            triggers=store.triggers, assets=store.assets,
        )  # fmt: skip
        assert emitter.tick(drv.now) == 0  # starts at the newest event
        good = drv.start(spec)
        (claim,) = drv.claim()
        made = (Produced("lake.mart", "2026-12-06", {"rows": 1}),)
        outcome = Outcome(task_run_id=claim.task_run_id, epoch=claim.epoch, status="succeeded",
                          result=1, assets=made)  # fmt: skip
        store.runs.finish([outcome], now=drv.now)
        bad = drv.start(spec)
        (claim,) = drv.claim()
        drv.fail(claim)
        receiver.refuse = 1  # the first delivery is refused: sent again on the next pass
        assert emitter.tick(drv.now) == 0
        assert emitter.tick(drv.now) == 4
        assert emitter.tick(drv.now) == 0  # nothing twice once delivered
    finally:
        drv.close()
    events = [_validated(b) for b in receiver.bodies]
    assert [(e.run.runId, e.eventType) for e in events] == [
        (run_uuid(good), RunState.START),
        (run_uuid(good), RunState.COMPLETE),
        (run_uuid(bad), RunState.START),
        (run_uuid(bad), RunState.FAIL),
    ]
    start, complete, _, fail = events
    assert (start.job.namespace, start.job.name) == ("default", "mart")
    assert [d.name for d in start.inputs or []] == ["lake.raw", "lake.staged"]
    assert [d.name for d in start.outputs or []] == ["lake.mart", "lake.unused"]
    assert [d.name for d in complete.outputs or []] == ["lake.mart"]  # what the run made
    assert fail.outputs == []
