"""The release example end to end on the command line: ``orchestrion run`` waits on the
approval and the signal (holding no worker), and other processes decide and signal."""

from __future__ import annotations

import time
from typing import Any

from tests.acceptance.conftest import EXAMPLES, Cli
from tests.helpers import db_arg


def _waiting(cli: Cli, task: str) -> dict[str, Any]:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        listed = cli("waits", "-o", "json", "--db", db_arg(cli.db))
        if listed.code == 0:
            for wait in listed.json():
                if wait["task"] == task:
                    return dict(wait)
        time.sleep(0.2)
    raise AssertionError(f"{task} never waited")


def test_the_release_example_waits_for_a_decision_and_a_signal(cli: Cli) -> None:
    run = cli.popen("run", EXAMPLES / "release_approval.yaml", "-p", "version=1.2.0")
    try:
        wait = _waiting(cli, "sign_off")
        assert wait["details"]["role"] == "editor"
        run_id = wait["run_id"]
        db = ("--db", db_arg(cli.db))
        approved = cli("approve", run_id, "sign_off", "--reason", "changelog checked", *db)
        assert approved.code == 0, approved
        _waiting(cli, "deployed")
        sent = cli("signal", run_id, "deployed", '{"url": "https://example.com/1.2.0"}', *db)
        assert sent.code == 0 and "taken by task deployed" in sent.stdout, sent
        out, err = run.communicate(timeout=60)
    finally:
        run.kill()
        run.communicate()
    assert run.returncode == 0, (out, err)
    assert cli.show(run_id)["run"]["state"] == "succeeded"
    logs = cli("logs", run_id, "announce")
    assert "released by cli:" in logs.stdout and "https://example.com/1.2.0" in logs.stdout, logs
