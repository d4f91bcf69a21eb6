"""End to end: a failure email from a real run on ``orchestrion server``.

The server process (its embedded scheduler runs the notifications duty) and a worker
process on one database; a real SMTP server (aiosmtpd) on loopback receives the email. The
channel and rule are made through the API, the deliveries listed by the CLI with
``--server``.
"""

from __future__ import annotations

from collections.abc import Iterator
from email import message_from_bytes
from pathlib import Path

import pytest
from aiosmtpd.controller import Controller

from tests.acceptance.test_server import Cluster, free_port, wait_for
from tests.integration.test_notifications import _Smtp

FAILING = """\
name: nightly_fail
tags: [nightly]
sla: {deadline: 1h}
tasks:
  load:
    shell: ["sh", "-c", "echo 'disk full' >&2; exit 3"]
"""


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[Cluster]:
    c = Cluster(tmp_path)
    (c.flows / "nightly_fail.yaml").write_text(FAILING)
    try:
        yield c
    finally:
        c.close()


def test_a_failed_run_on_the_server_sends_an_email(cluster: Cluster) -> None:
    handler = _Smtp()
    port = free_port()
    smtp = Controller(handler, hostname="127.0.0.1", port=port)
    smtp.start()
    try:
        cluster.server(workers=1)
        cluster.wait_ready(workers=1, workflows=("nightly_fail",))
        channel = {"kind": "smtp", "config": {"host": "127.0.0.1", "port": port,
                   "sender": "orchestrion@example.com", "to": ["oncall@example.com"]}}  # fmt: skip
        made = cluster.http.put("/api/v1/notifications/channels/default/mail", json=channel)
        assert made.status_code == 201, made.text
        rule = {"channel": "mail", "events": ["run.failed"], "tags": ["nightly"]}
        made = cluster.http.put("/api/v1/notifications/rules/default/nightly", json=rule)
        assert made.status_code == 201, made.text
        run_id = cluster.trigger("nightly_fail")
        assert cluster.wait_run(run_id)["state"] == "failed"
        wait_for("the email", lambda: handler.messages, 20.0, cluster.report)
        [(rcpt, raw)] = handler.messages
        email = message_from_bytes(raw)
        assert rcpt == ["oncall@example.com"]
        assert email["Subject"].startswith(f"[orchestrion] run.failed: nightly_fail run {run_id}")
        assert "exited with status 3" in email["Subject"]
        assert "disk full" in email.get_payload()
        print(raw.decode())  # the closing note's failure email
        listed = cluster.start(
            "deliveries", "notifications", "deliveries", "list", "--server", cluster.url
        )
        assert listed.wait(30) == 0, listed.output()
        assert "sent" in listed.output() and run_id in listed.output()
    finally:
        smtp.stop()
