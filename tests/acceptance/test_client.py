"""`orchestrion.client.Client` against a real ``orchestrion server`` process (with one
embedded worker) on a SQLite file, or a PostgreSQL schema with
``ORCHESTRION_TEST_DATABASE=postgres``: typed answers, waiting on the event stream, and
errors that carry the status, the API's code and problem detail, or the URL."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion.client import Client, ClientError, ServerUnreachable
from orchestrion.errors import OrchestrionError
from orchestrion.states import RunState, TaskState
from tests.acceptance.test_server import Cluster, free_port

FLOW = """\
name: client_flow
params:
  word: {type: string, default: hi}
tasks:
  say:
    shell: [echo, "{{ params.word }}"]
"""


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    c = Cluster(tmp_path_factory.mktemp("client"))
    try:
        c.server(workers=1)
        c.wait_ready(workers=1, workflows=("saga", "e2e_slow"))
        yield c
    finally:
        c.close(show=False)


@pytest.fixture
def api(cluster: Cluster) -> Iterator[Client]:
    with Client(cluster.url, cluster.env["ORCHESTRION_TOKEN"]) as made:
        yield made
    print(cluster.report())  # shown when the test failed


def test_runs_typed_from_trigger_to_logs(api: Client) -> None:
    assert "saga" in {w["name"] for w in api.list_workflows()}
    assert api.get_workflow("saga")["spec"]["name"] == "saga"
    run = api.trigger_and_wait("saga", {"order_id": "C-1"}, timeout=60)
    assert run.state is RunState.SUCCEEDED
    tasks = {t.task_name: t for t in api.task_runs(run.id)}
    assert tasks["ship"].state is TaskState.SUCCEEDED
    assert {a.outcome for a in api.attempts(run.id)} == {"succeeded"}
    assert [e.to_state for e in api.events(run.id) if e.kind.startswith("run.")][-1] == "succeeded"
    assert run.id in {r.id for r in api.list_runs("saga", RunState.SUCCEEDED)}
    assert list(api.all_logs(run.id)) == api.logs(run.id)

    failed = api.trigger_and_wait("saga", {"order_id": "C-2", "fail_at": "ship"}, timeout=60)
    assert failed.state is RunState.FAILED and "ship" in str(failed.error)


def test_deploy_a_file_then_run_it(api: Client, tmp_path: Path) -> None:
    (tmp_path / "flow.yaml").write_text(FLOW)
    [deployed] = api.deploy_file(tmp_path / "flow.yaml")
    assert deployed["current"] is True
    run = api.trigger_and_wait("client_flow", {"word": "hello"}, timeout=60)
    assert run.state is RunState.SUCCEEDED
    assert [line.line for line in api.logs(run.id)] == ["hello"]


def test_cancel_and_wait_timeout(api: Client) -> None:
    run = api.trigger("e2e_slow", {"tag": "client", "seconds": 60})
    with pytest.raises(ClientError) as waited:
        api.wait(run.id, timeout=0.5)
    assert waited.value.code == "wait_timeout" and run.id in str(waited.value)
    assert api.cancel(run.id).id == run.id
    assert api.wait(run.id, timeout=60).state is RunState.CANCELED
    with pytest.raises(ClientError) as again:
        api.cancel(run.id)
    assert again.value.status == 409 and again.value.code == "conflict"


def test_errors_carry_status_code_and_detail(api: Client, cluster: Cluster) -> None:
    with pytest.raises(ClientError) as missing:
        api.get_run("0000nosuchrun")
    assert missing.value.status == 404 and missing.value.code == "not_found"
    assert "0000nosuchrun" in missing.value.detail["message"]
    with pytest.raises(ClientError) as bad:
        api.trigger("saga", {"cents": "many"})
    assert bad.value.status == 422 and "cents" in str(bad.value)
    with Client(cluster.url, "not-a-token") as stranger, pytest.raises(ClientError) as denied:
        stranger.list_runs()
    assert denied.value.status == 401 and denied.value.code == "unauthenticated"
    assert isinstance(denied.value, OrchestrionError)  # the one error root


def test_an_unreachable_server_is_named() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with Client(url, "t", timeout=2.0) as nobody, pytest.raises(ServerUnreachable) as caught:
        nobody.health()
    assert url in str(caught.value) and caught.value.status is None


def test_secrets_metadata_never_values(api: Client) -> None:
    api.set_secret("default", "client_key", "s3cr3t-value")  # the cluster runs in dev mode
    names = {(s.namespace, s.name) for s in api.secrets("default")}
    assert ("default", "client_key") in names
    assert "s3cr3t-value" not in repr(api.secrets())
    api.delete_secret("default", "client_key")
    assert ("default", "client_key") not in {(s.namespace, s.name) for s in api.secrets()}
