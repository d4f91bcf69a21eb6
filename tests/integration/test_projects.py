"""Declarative projects (issue 19, part 2): plan, apply, drift, prune, undo on a failure
part way, over a real database (SQLite, or PostgreSQL with ORCHESTRION_TEST_DATABASE)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner

from orchestrion.app import App
from orchestrion.app.projects import ApplyFailed, Change
from orchestrion.app.projects.kinds import KINDS
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from orchestrion.cli.main import main
from orchestrion.errors import NotFound, PolicyDenied
from orchestrion.spec.project import load_project
from tests.helpers import admin_client, database_url_for, serve_api

KEY = MasterKey("k", os.urandom(32))

FLOW = """\
name: {name}
tasks:
  hello:
    shell: [echo, {text}]
"""

PROJECT = """\
project: analytics
namespace: prod
workflows: [flows/]
schedules: {etl: paused}
queues: {prod-q: {limit: 3}}
connections: {warehouse: {kind: postgres, url: "postgresql://db.example/wh", secret: wh_password}}
channels: {ops: {kind: webhook, url: "https://hooks.example/x"}}
notifications: [{name: failures, on: [run.failed], channel: ops}]
roles: {alice: editor}
"""


def write_project(root: Path, text: str = "one", project: str = PROJECT) -> Path:
    (root / "flows").mkdir(parents=True, exist_ok=True)
    (root / "flows" / "etl.yaml").write_text(FLOW.format(name="etl", text=text))
    (root / "flows" / "report.yaml").write_text(FLOW.format(name="report", text="r"))
    (root / "project.yaml").write_text(project)
    return root / "project.yaml"


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    url = database_url_for(tmp_path / "p.db")
    with App(Settings(database_url=url, key_ring=KeyRing([KEY]))).open() as app:
        app.secrets.set_secret("prod", "wh_password", "s3cret-value")
        app.accounts.create_user("alice", "pw-alice-123456", {"dev": "viewer"})
        yield app


def state(app: App) -> dict[str, object]:
    """Every kind's current state in ``prod``."""
    return {k.name: k.read_current(app, "prod") for k in KINDS}


def test_plan_apply_is_idempotent_and_drift_is_put_back(app: App, tmp_path: Path) -> None:
    loaded = load_project(write_project(tmp_path))
    plan = app.projects.plan(loaded)
    assert plan.summary() == {"create": 8, "update": 0, "delete": 0}
    done = app.projects.apply(loaded, commit="abc1234")
    assert done.outcome == "applied"
    assert app.workflows.paused_workflows() == {"etl"}
    assert dict(app.accounts.get_user("alice").bindings) == {"dev": "viewer", "prod": "editor"}
    version = app.workflows.workflow_record("etl").version
    assert app.projects.commits_of("etl") == {version: "abc1234"}
    again = app.projects.apply(load_project(tmp_path / "project.yaml"))
    assert again.outcome == "unchanged" and again.plan.changes == ()
    # Drift: changed by hand, put back by the next apply.
    app.queues.set_queue_limit("prod-q", 9)
    app.workflows.set_paused("etl", False)
    drift = app.projects.plan(loaded)
    assert [c.line() for c in drift.changes] == [
        "~ queue prod-q (limit: 9 -> 3)",
        "~ schedule etl (active -> paused)",
    ]
    app.projects.apply(loaded)
    assert app.projects.plan(loaded).changes == ()
    history = app.projects.applies("prod")
    assert [a.outcome for a in history] == ["applied", "unchanged", "applied"]
    assert history[-1].commit_sha == "abc1234"


def test_unmanaged_is_reported_and_prune_deletes(app: App, tmp_path: Path) -> None:
    app.connections.put_connection("prod", "legacy", kind="redis", url="redis://127.0.0.1:6379/0")
    loaded = load_project(write_project(tmp_path))
    assert ("connection", "legacy") in app.projects.plan(loaded).unmanaged
    app.projects.apply(loaded)
    assert {c.name for c in app.connections.list_connections("prod")} == {"legacy", "warehouse"}
    pruned = load_project(write_project(tmp_path, project=PROJECT + "prune: true\n"))
    lines = [c.line() for c in app.projects.plan(pruned).changes]
    assert lines == ["- connection legacy"]
    app.projects.apply(pruned)
    assert {c.name for c in app.connections.list_connections("prod")} == {"warehouse"}


def test_a_reference_that_does_not_resolve_writes_nothing(app: App, tmp_path: Path) -> None:
    bad = PROJECT.replace("secret: wh_password", "secret: missing")
    loaded = load_project(write_project(tmp_path, project=bad))
    with pytest.raises(NotFound, match="prod/missing"):
        app.projects.apply(loaded)
    assert app.workflows.list_workflows() == []
    assert app.connections.list_connections("prod") == []


def test_a_failure_mid_apply_leaves_the_previous_state(app: App, tmp_path: Path) -> None:
    app.projects.apply(load_project(write_project(tmp_path)))
    before = state(app)
    changed = PROJECT.replace("limit: 3", "limit: 5").replace("alice: editor", "alice: admin")
    changed = changed.replace("etl: paused", "etl: active")
    (tmp_path / "flows" / "new.yaml").write_text(FLOW.format(name="brand_new", text="n"))
    loaded = load_project(write_project(tmp_path, text="two", project=changed))
    assert len(app.projects.plan(loaded).changes) == 5

    def explode(change: Change) -> None:
        if change.kind == "schedule":  # after queues, roles and workflows were changed
            raise RuntimeError("injected failure")

    with pytest.raises(ApplyFailed, match="injected failure") as caught:
        app.projects.apply(loaded, after_each=explode)
    assert caught.value.undo_errors == []
    assert state(app) == before
    with pytest.raises(NotFound):
        app.workflows.workflow_record("brand_new")
    assert app.projects.applies("prod")[0].outcome == "failed"


def test_one_apply_per_namespace_at_a_time(app: App, tmp_path: Path) -> None:
    from orchestrion.errors import IllegalTransition

    loaded = load_project(write_project(tmp_path))
    held = app.store.triggers.acquire_lease("project.prod", "other", ttl=60, now=app.clock.now())
    assert held is not None
    with pytest.raises(IllegalTransition, match="in progress"):
        app.projects.apply(loaded)
    app.store.triggers.release_lease("project.prod", "other", held)
    assert app.projects.apply(loaded).outcome == "applied"


def test_cli_plan_exit_codes_and_apply(app: App, tmp_path: Path) -> None:
    path = write_project(tmp_path)
    db = app.settings.database_url
    runner = CliRunner()
    first = runner.invoke(main, ["plan", "-f", str(path), "--db", db])
    assert first.exit_code == 2, first.output
    assert "+ workflow etl" in first.output
    applied = runner.invoke(main, ["apply", "-f", str(path), "--db", db])
    assert applied.exit_code == 0, applied.output
    assert runner.invoke(main, ["plan", "-f", str(path), "--db", db]).exit_code == 0
    broken = runner.invoke(main, ["plan", "-f", str(tmp_path / "nope.yaml"), "--db", db])
    assert broken.exit_code == 1


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[App, str]]:
    root = tmp_path_factory.mktemp("served")
    url = database_url_for(root / "s.db")
    with App(Settings(database_url=url, key_ring=KeyRing([KEY]))).open() as app:
        app.secrets.set_secret("prod", "wh_password", "s3cret-value")
        app.accounts.create_user("alice", "pw-alice-123456", {})
        with serve_api(app) as base:
            yield app, base


def test_api_plan_apply_is_authorised_and_audited(served: tuple[App, str], tmp_path: Path) -> None:
    app, base = served
    path = write_project(tmp_path)
    from orchestrion.client import Client

    viewer, _ = app.accounts.create_token("viewer", {"prod": "viewer"}, expires="never")
    with (
        Client(base, viewer) as client,
        pytest.raises(Exception, match=r"403|not allowed|Forbidden|role"),
    ):
        client.project(path)
    admin, _ = app.accounts.create_token("root", {"*": "admin"}, expires="never")
    with Client(base, admin) as client:
        plan = client.project(path)
        assert plan["summary"]["create"] == 8
        done = client.project(path, apply=True, commit="feedbeef")
        assert done["outcome"] == "applied"
        assert client.project(path)["changes"] == []
    with admin_client(app, base) as http:
        rows = http.get("/api/v1/projects", params={"namespace": "prod"}).json()
        assert rows[0]["commit_sha"] == "feedbeef"
        bad = http.post("/api/v1/projects/plan", json={"project": {"namespace": "prod"}})
        assert bad.status_code == 422 or bad.status_code == 400
    with admin_client(app, base) as http:
        versions = http.get("/api/v1/workflows/etl/versions").json()
        assert versions[0]["commit"] == "feedbeef"
        from orchestrion.store.project_records import SyncResult

        hostile = SyncResult(source="s", commit_sha="ab" * 20, outcome="failed", error="<b>x</b>")
        app.store.projects.record_sync(hostile, now=1.0)
        page = http.get("/projects")
        assert page.status_code == 200 and "feedbeef" in page.text and "analytics" in page.text
        assert "&lt;b&gt;x&lt;/b&gt;" in page.text and "<b>x</b>" not in page.text
        status = http.get("/api/v1/sync/status").json()
        assert status[0]["error"] == "<b>x</b>"
    # The CLI's --server mode: the same bundle, plan's exit codes kept.
    runner = CliRunner(env={"ORCHESTRION_TOKEN": admin})
    (tmp_path / "flows" / "etl.yaml").write_text(FLOW.format(name="etl", text="changed"))
    changed = runner.invoke(main, ["plan", "-f", str(path), "--server", base])
    assert changed.exit_code == 2, changed.output
    assert "~ workflow etl (version:" in changed.output
    applied = runner.invoke(main, ["apply", "-f", str(path), "--server", base])
    assert applied.exit_code == 0 and "applied" in applied.output
    same = runner.invoke(main, ["plan", "-f", str(path), "--server", base])
    assert same.exit_code == 0 and "no changes" in same.output
    # Sync sources over the API: kept, listed (the secret by name), removed.
    add = ["sync", "add", "main", "--repo", "https://git.example/r.git", "--branch", "main"]
    added = runner.invoke(
        main, [*add, "--project", "p.yaml", "--secret", "prod/t", "--server", base]
    )
    assert added.exit_code == 0, added.output
    listed = runner.invoke(main, ["sync", "list", "-o", "json", "--server", base])
    assert '"secret": "prod/t"' in listed.output
    gone = runner.invoke(main, ["sync", "remove", "main", "--server", base])
    assert gone.exit_code == 0 and app.projects.sources() == []
    from orchestrion.store.records import AuditFilter

    actions = {a.action for a in app.accounts.list_audit(AuditFilter(limit=100))}
    assert {"project.plan", "project.apply", "sync.source.put", "sync.source.delete"} <= actions


POLICY = """\
policy: prod-retries
applies_to: {{namespaces: [prod], on: [deploy]}}
rules:
  - name: retries
    for_each: tasks
    require: "task.retries >= 1"
    effect: {effect}
    message: "must be >= 1"
    field: "tasks.{{task.name}}.retries"
"""


def write_policy_project(root: Path, effect: str) -> Path:
    (root / "policies").mkdir(parents=True, exist_ok=True)
    (root / "policies" / "prod.yaml").write_text(POLICY.format(effect=effect))
    return write_project(root, project="project: p\nnamespace: prod\nworkflows: [flows/]\n"
                         "policies: [policies/]\n")  # fmt: skip


def test_declared_policies_are_written_first_and_check_the_workflows(
    app: App, tmp_path: Path
) -> None:
    # A warning: the plan notes it per workflow; the apply writes the policy, then the flows.
    loaded = load_project(write_policy_project(tmp_path, "warn"))
    assert [d["policy"] for d in loaded.policies] == ["prod-retries"]
    plan = app.projects.plan(loaded)
    assert ("create", "policy", "prod-retries") in [(c.action, c.kind, c.key) for c in plan.changes]
    assert any(n.startswith("workflow etl: ") and "[rule retries]" in n for n in plan.notes)
    assert app.projects.apply(loaded).outcome == "applied"
    assert app.policies.get("prod-retries").version == 1
    assert app.projects.apply(load_project(tmp_path / "project.yaml")).outcome == "unchanged"
    # The same policy turned into a denial, with a new workflow: refused before anything is
    # written, naming the workflow and the rule; the policy in force stays the warning.
    (tmp_path / "policies" / "prod.yaml").write_text(POLICY.format(effect="deny"))
    (tmp_path / "flows" / "late.yaml").write_text(FLOW.format(name="late", text="x"))
    denied = load_project(tmp_path / "project.yaml")
    with pytest.raises(PolicyDenied, match=r"workflow etl: .*prod-retries.*retries"):
        app.projects.plan(denied)
    with pytest.raises(PolicyDenied):
        app.projects.apply(denied)
    assert app.policies.get("prod-retries").version == 1
    with pytest.raises(NotFound):
        app.workflows.workflow_record("late")


def test_policies_of_a_project_reach_the_server(served: tuple[App, str], tmp_path: Path) -> None:
    app, base = served
    path = write_policy_project(tmp_path, "warn")
    from orchestrion.client import Client

    # Policies are cluster-wide: a namespace admin alone may not declare them.
    ns_admin, _ = app.accounts.create_token("ns-admin", {"prod": "admin"}, expires="never")
    with (
        Client(base, ns_admin) as client,
        pytest.raises(Exception, match=r"403|not allowed|Forbidden|role"),
    ):
        client.project(path)
    # ... nor by sending the documents without naming policy files in the declaration.
    with admin_client(app, base) as http:
        sneaky = {
            "project": {"project": "p", "namespace": "prod"},
            "policies": [yaml.safe_load(POLICY.format(effect="warn"))],
        }
        answer = http.post(
            "/api/v1/projects/plan", json=sneaky, headers={"Authorization": f"Bearer {ns_admin}"}
        )
        assert answer.status_code == 403, answer.text
    admin, _ = app.accounts.create_token("root2", {"*": "admin"}, expires="never")
    with Client(base, admin) as client:
        plan = client.project(path)
        assert {"action": "create", "kind": "policy", "key": "prod-retries"}.items() <= next(
            c for c in plan["changes"] if c["kind"] == "policy"
        ).items()
        assert client.project(path, apply=True)["outcome"] in ("applied", "unchanged")
    assert app.policies.get("prod-retries").name == "prod-retries"
    # The policies see who applies: a rule on the principal holds for the API's caller.
    (tmp_path / "policies" / "who.yaml").write_text(
        "policy: prod-by-token\napplies_to: {namespaces: [prod], on: [deploy]}\nrules:\n"
        "  - {name: who, require: \"principal != null and principal.name == 'root2'\"}\n"
    )
    (tmp_path / "flows" / "etl.yaml").write_text(FLOW.format(name="etl", text="by-root2"))
    with Client(base, admin) as client:
        assert client.project(path, apply=True)["outcome"] == "applied"
    app.policies.delete("prod-by-token")
    with admin_client(app, base) as http:
        bad = {"project": {"project": "p", "namespace": "prod"}, "policies": [{"policy": "x"}]}
        answer = http.post("/api/v1/projects/plan", json=bad)
        assert answer.status_code == 422 and "rules" in answer.text


@pytest.mark.sqlite_only(reason="checks the example files, not the store")
def test_the_example_projects_plan_on_a_fresh_database(app: App) -> None:
    examples = Path(__file__).parents[2] / "examples" / "projects"
    app.secrets.set_secret("prod", "warehouse_password", "x")
    for user in ("bob",):
        app.accounts.create_user(user, "pw-bob-123456789", {"dev": "viewer"})
    prod = app.projects.plan(load_project(examples / "prod" / "project.yaml"))
    assert ("policy", "prod-needs-retries") in [(c.kind, c.key) for c in prod.changes]
    assert prod.notes == ()  # its workflows satisfy its policy
    staging = app.projects.plan(load_project(examples / "staging" / "project.yaml"))
    assert staging.summary()["create"] >= 3


def test_a_watched_workflow_folder_skips_project_policy_and_library_files(
    app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """`orchestrion server --workflows DIR` over a repository: the project, policy and
    template library files beside the workflows are not invalid workflows."""
    from orchestrion.cli.processes import WorkflowFolder, load_folder
    from orchestrion.spec.documents import other_document

    write_policy_project(tmp_path, "warn")
    library = tmp_path / "templates" / "lib@1.yaml"
    library.parent.mkdir()
    library.write_text("library: lib\nversion: 1\ntemplates: {}\n")
    broken = tmp_path / "flows" / "broken.yaml"
    broken.write_text("name: broken\ntasks: {a: {shell: [x], depends_on: [nope]}}\n")
    kinds = {p.name: other_document(p) for p in WorkflowFolder(str(tmp_path)).files()}
    assert kinds == {
        "project.yaml": "a project file",
        "prod.yaml": "an admission policy",
        "lib@1.yaml": "a template library",
        "etl.yaml": None,
        "report.yaml": None,
        "broken.yaml": None,
    }
    with caplog.at_level("INFO", logger="orchestrion.process"):
        load_folder(app, WorkflowFolder(str(tmp_path)).files())
    assert {r.name for r in app.workflows.list_workflows()} == {"etl", "report"}
    invalid = [r.getMessage() for r in caplog.records if "workflows.invalid" in r.getMessage()]
    assert len(invalid) == 1 and "broken.yaml" in invalid[0]  # a bad workflow still is one
