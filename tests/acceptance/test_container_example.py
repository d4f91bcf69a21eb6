"""examples/container_task.yaml through the real command, on Podman (issue 15, part 2):
the secret is set with ``orchestrion secrets set``, the run succeeds, the result file and
the templated report come back, the logs show the container's lines with the password
masked, and no container of the run is left."""

from __future__ import annotations

from tests.acceptance.conftest import EXAMPLES, Cli, by_task
from tests.containers import HOST, containers_of, require_podman

PASSWORD = "pa55-Wq7-container"


def test_the_container_example_runs(cli: Cli) -> None:
    require_podman()
    cli.env["ORCHESTRION_CONTAINER_HOST"] = HOST
    cli.env["ORCHESTRION_CONTAINER_WORK_DIR"] = str(cli.cwd / "container-work")
    stored = cli("secrets", "set", "default/warehouse-password", stdin=PASSWORD)
    assert stored.code == 0, stored
    path = EXAMPLES / "container_task.yaml"
    assert cli("validate", path).code == 0
    res = cli("run", path, "-p", "day=2024-07-01")
    assert res.code == 0, res
    run_id = res.stdout.split()[1]
    tasks = by_task(cli.show(run_id))
    assert tasks["transform"]["result"] == {"day": "2024-07-01", "rows": 42}
    assert tasks["report"]["result"] == "loaded 42 rows for 2024-07-01"
    logs = cli("logs", run_id).stdout
    assert "transforming 2024-07-01 in mode full" in logs
    assert f"got a password of {len(PASSWORD)} characters" in logs
    assert PASSWORD not in logs
    assert containers_of(run_id) == []
