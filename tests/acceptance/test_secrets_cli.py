"""``orchestrion secrets`` as a user runs it: values from stdin only, never printed; and
the server and worker refusing to start without a master key outside dev mode."""

from __future__ import annotations

import json
import subprocess
import sys
from typing import Any

from tests.acceptance.conftest import Cli
from tests.helpers import db_arg, stored_bytes

VALUE = 'Sentinel-CLI-7f3a9c d\\q"uote'


def orch(cli: Cli, *args: str, stdin: str = "", env: dict[str, str] | None = None) -> Any:
    return subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", *args],
        cwd=cli.cwd,
        env=env if env is not None else cli.env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def keyed_env(cli: Cli, keys: str) -> dict[str, str]:
    env = {k: v for k, v in cli.env.items() if k != "ORCHESTRION_DEV_MODE"}
    env["ORCHESTRION_MASTER_KEY"] = keys
    return env


def test_set_list_rotate_delete(cli: Cli) -> None:
    db = db_arg(cli.db)
    key1 = orch(cli, "secrets", "generate-key").stdout.strip()
    key2 = orch(cli, "secrets", "generate-key", "--id", "two").stdout.strip()
    assert key2.startswith("two:") and key1 != key2.removeprefix("two:")
    old = keyed_env(cli, f"one:{key1}")

    made = orch(cli, "secrets", "set", "finance/db-pass", "--db", db, stdin=VALUE + "\n", env=old)
    assert made.returncode == 0, made.stderr
    assert made.stdout.strip() == "created secret finance/db-pass"
    again = orch(cli, "secrets", "set", "finance/db-pass", "--db", db, stdin=VALUE, env=old)
    assert again.stdout.strip() == "updated secret finance/db-pass"

    listed = orch(cli, "secrets", "list", "--db", db, "-o", "json", env=old)
    rows = json.loads(listed.stdout)
    assert [(r["namespace"], r["name"], r["key_id"]) for r in rows] == [
        ("finance", "db-pass", "one")
    ]
    both = keyed_env(cli, f"{key2},one:{key1}")
    rotated = orch(cli, "secrets", "rotate", "--db", db, env=both)
    assert rotated.stdout.strip() == "re-encrypted 1 secret(s) under key two"
    table = orch(cli, "secrets", "list", "--namespace", "finance", "--db", db, env=both)
    assert "db-pass" in table.stdout and "two" in table.stdout

    gone = orch(cli, "secrets", "delete", "finance/db-pass", "--db", db, env=both)
    assert gone.returncode == 0
    missing = orch(cli, "secrets", "delete", "finance/db-pass", "--db", db, env=both)
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr

    audit = orch(cli, "audit", "list", "--db", db, "-o", "json", env=both)
    records = [(r["action"], r["object"], r["outcome"]) for r in json.loads(audit.stdout)]
    assert records[::-1] == [
        ("secret.set", "secret finance/db-pass", "ok"),
        ("secret.set", "secret finance/db-pass", "ok"),
        ("secrets.rotate", "secrets", "ok"),
        ("secret.delete", "secret finance/db-pass", "ok"),
        ("secret.delete", "secret finance/db-pass", "failed"),
    ]
    everything = "".join(
        r.stdout + r.stderr for r in (made, again, listed, rotated, table, gone, missing, audit)
    )
    assert "Sentinel-CLI" not in everything
    assert b"Sentinel-CLI" not in stored_bytes(cli.db)


def test_set_refuses_without_a_key_and_bad_names(cli: Cli) -> None:
    env = {k: v for k, v in cli.env.items() if k != "ORCHESTRION_DEV_MODE"}
    res = orch(cli, "secrets", "set", "a/b", "--db", db_arg(cli.db), stdin="x", env=env)
    assert res.returncode == 2
    assert "ORCHESTRION_MASTER_KEY" in res.stderr
    for ref in ("nonamespace", "Bad Space/x", "a/b/c", "a/"):
        bad = orch(cli, "secrets", "set", ref, "--db", db_arg(cli.db), stdin="x")
        assert bad.returncode == 2, ref
    empty = orch(cli, "secrets", "set", "a/b", "--db", db_arg(cli.db), stdin="")
    assert empty.returncode == 2 and "empty" in empty.stderr


def test_server_and_worker_refuse_to_start_without_a_master_key(cli: Cli) -> None:
    env = {k: v for k, v in cli.env.items() if k != "ORCHESTRION_DEV_MODE"}
    env.pop("ORCHESTRION_MASTER_KEY", None)
    env.pop("ORCHESTRION_MASTER_KEY_FILE", None)
    for command in (["server", "--port", "0"], ["worker"]):
        res = orch(cli, *command, "--db", db_arg(cli.db), env=env)
        assert res.returncode == 2, res.stderr
        assert "refusing to start without a master key" in res.stderr
        assert "ORCHESTRION_MASTER_KEY" in res.stderr
        assert "ORCHESTRION_DEV_MODE=1" in res.stderr
        assert "orchestrion secrets generate-key" in res.stderr


def test_a_bad_master_key_is_an_error(cli: Cli) -> None:
    res = orch(cli, "worker", "--db", db_arg(cli.db), env=keyed_env(cli, "not-base64!"))
    assert res.returncode == 2
    assert "not valid base64" in res.stderr
    assert "Traceback" not in res.stderr


FLOW = """
name: uses_secrets
namespace: finance
tasks:
  echo_env:
    shell:
      script: |
        echo "token=$TOKEN"
        env | sort
    secrets: {TOKEN: token}
  python_env:
    python: secret_tasks:show
    secrets: {TOKEN: token}
"""

TASKS = """
import os


def show(ctx):
    print("token", ctx.secret("token"))
    # The worker dropped the master key from its environment once it had read it.
    return {"key_in_env": os.environ.get("ORCHESTRION_MASTER_KEY"), "len": len(ctx.secret("token"))}
"""


def test_a_worker_process_hands_secrets_to_tasks_and_never_the_master_key(cli: Cli) -> None:
    """A real `orchestrion worker` process with the key in its environment (no dev mode)."""
    db = db_arg(cli.db)
    key = orch(cli, "secrets", "generate-key").stdout.strip()
    env = keyed_env(cli, f"prod:{key}")
    token = "Sentinel-Proc-51d2e0"
    (cli.cwd / "flows").mkdir()
    (cli.cwd / "flows" / "uses_secrets.yaml").write_text(FLOW)
    (cli.cwd / "secret_tasks.py").write_text(TASKS)  # importable: the worker runs in cwd
    assert (
        orch(cli, "secrets", "set", "finance/token", "--db", db, stdin=token, env=env).returncode
        == 0
    )
    assert orch(cli, "deploy", "flows/uses_secrets.yaml", "--db", db, env=env).returncode == 0
    worker = subprocess.Popen(
        [sys.executable, "-m", "orchestrion.cli.main", "worker", "--db", db, "--grace", "2",
         "--workflows", "flows"],
        cwd=cli.cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        done = orch(cli, "trigger", "uses_secrets", "--wait", "--db", db, env=env)
    finally:
        worker.terminate()
        worker_output = worker.communicate(timeout=60)[0]
    show = cli.show(cli.run_ids()[0])
    errors = [a["error"] for a in show["attempts"]]
    assert done.returncode == 0, (errors, worker_output)
    tasks = {t["task_name"]: t for t in show["task_runs"]}
    assert tasks["python_env"]["result"] == {"key_in_env": None, "len": len(token)}
    logs = cli("logs", show["run"]["id"]).stdout
    assert "token=***" in logs and "token ***" in logs
    assert "ORCHESTRION_MASTER_KEY" not in logs  # not inherited by the shell task
    assert key not in logs
    for text in (logs, json.dumps(show), worker_output, done.stdout, done.stderr):
        assert token not in text
    assert token.encode() not in stored_bytes(cli.db)
