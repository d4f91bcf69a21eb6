"""``orchestrion users``, ``tokens`` and ``audit`` as a user types them, on a real database;
and every mutating local command leaves exactly one audit record as ``cli:<user>``."""

from __future__ import annotations

import getpass

from tests.acceptance.conftest import EXAMPLES, Cli

PASSWORD = "a long enough password"


def test_users_tokens_and_the_audit_log_from_the_command_line(cli: Cli) -> None:
    made = cli("users", "create", "ana", "--role", "operator", "--namespace", "finance",
               stdin=PASSWORD + "\n")  # fmt: skip
    assert made.code == 0, made
    assert PASSWORD not in made.output
    listed = cli("users", "list", "-o", "json")
    assert listed.json()[0]["name"] == "ana"
    assert listed.json()[0]["bindings"] == {"finance": "operator"}
    short = cli("users", "create", "bo", "--role", "viewer", stdin="short\n")
    assert short.code == 2 and "too short" in short.output

    token = cli("tokens", "create", "ci-bot", "--role", "operator", "--namespace", "finance",
                "--expires", "90d")  # fmt: skip
    assert token.code == 0, token
    plaintext = token.stdout.strip()
    assert plaintext.startswith("orc_") and "shown once" in token.stderr
    tokens = cli("tokens", "list", "-o", "json").json()
    assert [t["name"] for t in tokens] == ["ci-bot"] and plaintext not in str(tokens)
    assert cli("tokens", "revoke", tokens[0]["id"]).code == 0
    assert cli("tokens", "list", "-o", "json").json()[0]["revoked_at"] is not None
    bad = cli("tokens", "create", "x", "--role", "root")
    assert bad.code == 2 and "unknown role 'root'" in bad.output
    assert cli("tokens", "create", "x", "--role", "viewer", "--expires", "10x").code == 2

    records = cli("audit", "list", "--since", "1d", "-o", "json").json()
    actions = [(r["action"], r["outcome"]) for r in reversed(records)]
    assert actions == [
        ("user.create", "ok"),
        ("user.create", "failed"),
        ("token.create", "ok"),
        ("token.revoke", "ok"),
        ("token.create", "failed"),
    ]
    me = f"cli:{getpass.getuser()}"
    assert {r["actor"] for r in records} == {me}
    assert all(PASSWORD not in str(r) and plaintext not in str(r) for r in records)
    only = cli("audit", "list", "--actor", me, "--action", "token.revoke", "-o", "json").json()
    assert len(only) == 1


def test_local_commands_write_one_audit_record_each(cli: Cli) -> None:
    assert cli("run", EXAMPLES / "branching.yaml").code in (0, 1)
    run_id = cli.run_ids()[0]
    assert cli("cancel", run_id).code == 1  # already finished: refused, and audited so
    records = cli("audit", "list", "-o", "json").json()
    actions = [(r["action"], r["outcome"]) for r in reversed(records)]
    assert actions == [
        ("workflow.deploy", "ok"),
        ("run.trigger", "ok"),
        ("run.cancel", "failed"),
    ]
    assert records[0]["object"] == f"run {run_id}"
