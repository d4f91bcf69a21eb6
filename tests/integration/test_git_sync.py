"""Git sync (issue 19, part 3) against local bare repositories: a fast-forward is picked
up, a bad commit is reported and not applied, a force-push is followed, and a secret
reaches git only through its environment (never a log, an error or the API)."""

from __future__ import annotations

import logging
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrion.app import App
from orchestrion.app.projects.git import GitError
from orchestrion.app.projects.sync import SyncDuty, sync_once
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey
from tests.helpers import database_url_for

KEY = MasterKey("k", os.urandom(32))
TOKEN = "ghp-sentinel-token-7c4e91"
ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.com",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.com",
}
PROJECT = "project: p\nnamespace: prod\nworkflows: [flows/]\n"
FLOW = "name: etl\ntasks:\n  hello:\n    shell: [echo, {text}]\n"
CYCLE = (
    "name: etl\ntasks:\n  a: {shell: [echo], depends_on: [b]}\n"
    "  b: {shell: [echo], depends_on: [a]}\n"
)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=cwd, env=ENV, capture_output=True, check=True)
    return done.stdout.decode().strip()


class Remote:
    """A bare repository and a working clone that pushes to it."""

    def __init__(self, root: Path) -> None:
        self.bare = root / "origin.git"
        self.work = root / "work"
        subprocess.run(["git", "init", "--bare", "-q", "-b", "main", str(self.bare)], check=True)
        subprocess.run(["git", "clone", "-q", str(self.bare), str(self.work)], check=True, env=ENV)
        git(self.work, "checkout", "-q", "-b", "main")

    def commit(self, flow: str, message: str, *, project: str = PROJECT) -> str:
        (self.work / "deploy" / "flows").mkdir(parents=True, exist_ok=True)
        (self.work / "deploy" / "project.yaml").write_text(project)
        (self.work / "deploy" / "flows" / "etl.yaml").write_text(flow)
        git(self.work, "add", "-A")
        git(self.work, "commit", "-q", "-m", message)
        git(self.work, "push", "-q", "--force", "origin", "main")
        return git(self.work, "rev-parse", "HEAD")


@pytest.fixture
def app(tmp_path: Path) -> Iterator[App]:
    url = database_url_for(tmp_path / "g.db")
    with App(Settings(database_url=url, key_ring=KeyRing([KEY]))).open() as app:
        yield app


def test_fast_forward_bad_commit_and_force_push(app: App, tmp_path: Path) -> None:
    origin = Remote(tmp_path)
    first = origin.commit(FLOW.format(text="one"), "first")
    app.projects.put_source(
        "main", repo=origin.bare.as_uri(), branch="main", project_path="deploy/project.yaml"
    )
    app.notifications.put_channel(
        "prod", "ops", kind="webhook", config={"url": "https://h.example/x"}
    )
    app.notifications.put_rule("prod", "sync", channel="ops", events=["sync.failed"])
    duty = SyncDuty(app, cache=tmp_path / "cache")
    [result] = duty.pass_once() or []
    assert (result.commit_sha, result.outcome) == (first, "applied")
    v1 = app.workflows.workflow_record("etl").version
    assert app.projects.commits_of("etl") == {v1: first}
    assert duty.pass_once() == []  # the same commit is not looked at twice

    second = origin.commit(FLOW.format(text="two"), "fast-forward")
    [result] = duty.pass_once() or []
    assert (result.commit_sha, result.outcome) == (second, "applied")
    v2 = app.workflows.workflow_record("etl").version
    assert v2 != v1

    bad = origin.commit(CYCLE, "a cycle")
    [result] = duty.pass_once() or []
    assert (result.commit_sha, result.outcome) == (bad, "failed")
    assert result.error is not None and "cycle" in result.error
    assert "/tmp" not in result.error  # paths read as in the repository
    assert app.workflows.workflow_record("etl").version == v2  # not applied
    [delivery] = app.notifications.list_deliveries("prod")
    assert delivery.event == "sync.failed" and bad[:12] in delivery.message
    assert duty.pass_once() == []  # reported once

    # A force-push rewrites history back onto the first commit's parent line.
    git(origin.work, "reset", "-q", "--hard", first)
    rewritten = origin.commit(FLOW.format(text="three"), "rewritten")
    [result] = duty.pass_once() or []
    assert (result.commit_sha, result.outcome) == (rewritten, "applied")
    assert app.workflows.workflow_record("etl").spec.tasks[0].action.argv == ("echo", "three")  # type: ignore[union-attr]
    assert [r.outcome for r in app.projects.sync_results("main")] == [
        "applied", "failed", "applied", "applied",
    ]  # fmt: skip
    applies = app.projects.applies("prod")
    assert applies[0].commit_sha == rewritten and applies[0].actor == "sync:main"


PY_FLOW = """\
from orchestrion.spec.python import task, workflow

import sys
sys.modules["orchestrion_sync_marker"] = sys  # loading this file in-process would leave it
print("a workflow file may print while it loads")  # stdout is the loader's JSON channel


@task
def hello(text: str) -> str:
    return text


@workflow
def py_flow(text: str = "{text}"):
    hello(text)
"""


def test_the_one_pass_command(app: App, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from orchestrion.cli.main import main

    origin = Remote(tmp_path)
    commit = origin.commit(FLOW.format(text="one"), "first")
    runner = CliRunner(env={"ORCHESTRION_SYNC_CACHE": str(tmp_path / "cache")})
    args = ["sync", "--repo", origin.bare.as_uri(), "--branch", "main"]
    args += ["--project", "deploy/project.yaml", "--db", app.settings.database_url]
    done = runner.invoke(main, args)
    assert done.exit_code == 0, done.output
    assert f"{commit[:12]} applied" in done.output
    status = runner.invoke(
        main, ["sync", "status", "-o", "json", "--db", app.settings.database_url]
    )
    assert commit in status.output


def test_python_workflows_load_in_a_child_process(app: App, tmp_path: Path) -> None:
    import sys

    origin = Remote(tmp_path)
    (origin.work / "deploy" / "flows").mkdir(parents=True)
    (origin.work / "deploy" / "flows" / "py_flow.py").write_text(PY_FLOW.format(text="a"))
    first = origin.commit(FLOW.format(text="one"), "with python")
    app.projects.put_source(
        "main", repo=origin.bare.as_uri(), branch="main", project_path="deploy/project.yaml"
    )
    source = app.projects.source("main")
    result = sync_once(app, source, cache=tmp_path / "cache")
    assert result is not None and (result.commit_sha, result.outcome) == (first, "applied")
    record = app.workflows.workflow_record("py_flow")
    assert record.namespace == "prod" and record.spec.code is not None
    assert record.source == f"git:main@{first[:12]}"
    assert "orchestrion_sync_marker" not in sys.modules  # imported by the child only
    app.workflows.code(record.spec.code)  # the code is stored with the version


def test_a_secret_reaches_git_through_askpass_only(
    app: App, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    origin = Remote(tmp_path)
    commit = origin.commit(FLOW.format(text="one"), "first")
    record = tmp_path / "askpass.txt"
    fail = tmp_path / "fail"
    fake = tmp_path / "fake-git"
    # Stands in for git talking to an HTTPS remote: it asks GIT_ASKPASS, as git does, and
    # records the answer; with `fail` present it fails saying the token, as a careless
    # server's message might.
    fake.write_text(
        "#!/bin/sh\n"
        f'if [ -n "$GIT_ASKPASS" ]; then "$GIT_ASKPASS" "Password for x: " >> {record}; fi\n'
        f'if [ -e {fail} ]; then echo "fatal: bad token $("$GIT_ASKPASS" P)" >&2; exit 128; fi\n'
        'exec git "$@"\n'
    )
    fake.chmod(0o755)
    app.secrets.set_secret("prod", "git_token", TOKEN)
    app.projects.put_source(
        "main",
        repo=origin.bare.as_uri(),
        branch="main",
        project_path="deploy/project.yaml",
        secret="prod/git_token",
    )
    source = app.projects.source("main")
    caplog.set_level(logging.DEBUG)
    result = sync_once(app, source, cache=tmp_path / "cache", git=str(fake))
    assert result is not None and (result.commit_sha, result.outcome) == (commit, "applied")
    assert TOKEN in record.read_text()
    fail.touch()
    with pytest.raises(GitError) as caught:
        sync_once(app, source, cache=tmp_path / "cache", git=str(fake))
    assert "bad token ***" in str(caught.value)
    shown = [str(caught.value), caplog.text, repr(app.projects.sources())]
    shown += [repr(r) for r in app.projects.sync_results()] + [
        repr(a) for a in app.projects.applies()
    ]
    assert not any(TOKEN in text for text in shown)


def test_a_tag_with_an_ssh_key_under_the_duty_lease(app: App, tmp_path: Path) -> None:
    origin = Remote(tmp_path)
    tagged = origin.commit(FLOW.format(text="one"), "release")
    git(origin.work, "tag", "v1")
    git(origin.work, "push", "-q", "origin", "v1")
    origin.commit(FLOW.format(text="two"), "after the tag")
    record = tmp_path / "ssh.txt"
    fake = tmp_path / "fake-git"
    # Records the key file GIT_SSH_COMMAND names (git would hand it to ssh), then runs git.
    fake.write_text(
        "#!/bin/sh\n"
        'key=$(printf "%s" "$GIT_SSH_COMMAND" | sed -n "s/^ssh -i \\([^ ]*\\) .*/\\1/p")\n'
        f'if [ -n "$key" ]; then stat -c %a "$key" >> {record}; cat "$key" >> {record}; fi\n'
        'exec git "$@"\n'
    )
    fake.chmod(0o755)
    key = (
        "-----BEGIN OPENSSH PRIVATE KEY-----\nc2VudGluZWwta2V5LTQ0\n"
        "-----END OPENSSH PRIVATE KEY-----"
    )
    app.secrets.set_secret("ops", "deploy_key", key)
    app.projects.put_source(
        "release",
        repo=origin.bare.as_uri(),
        tag="v1",
        project_path="deploy/project.yaml",
        secret="ops/deploy_key",
    )
    duty = app.runtime.sync_duty("holder-1")
    duty.git, duty.cache = str(fake), tmp_path / "cache"
    [result] = duty.pass_once() or []
    assert (result.commit_sha, result.outcome) == (tagged, "applied")
    seen = record.read_text()
    assert seen.startswith("600\n") and "c2VudGluZWwta2V5LTQ0" in seen
    other = app.runtime.sync_duty("holder-2")
    assert other.pass_once() is None  # the first holder has the lease
    duty.stop()


@pytest.mark.sqlite_only(reason="argument checks: no database dialect involved")
def test_sources_refuse_credentials_in_urls(app: App) -> None:
    from orchestrion.errors import ParameterError

    with pytest.raises(ParameterError, match="holds a password"):
        app.projects.put_source(
            "x", repo="https://u:pw@example.com/r.git", branch="main", project_path="p.yaml"
        )
    with pytest.raises(ParameterError, match="a user name"):
        app.projects.put_source(
            "x", repo="https://ghp_token@example.com/r.git", branch="main", project_path="p.yaml"
        )
    with pytest.raises(ParameterError, match="a branch or a tag"):
        app.projects.put_source("x", repo="/r.git", project_path="p.yaml")
    with pytest.raises(ParameterError, match=r"without '\.\.'"):
        app.projects.put_source("x", repo="/r.git", tag="v1", project_path="../p.yaml")


@pytest.mark.sqlite_only(reason="the cache folder's owner and mode: no store involved")
def test_the_cache_folder_is_private(tmp_path: Path) -> None:
    from orchestrion.app.projects.git import GitError, private_folder

    loose = tmp_path / "loose"
    loose.mkdir(mode=0o777)
    loose.chmod(0o777)
    private_folder(loose)
    assert loose.stat().st_mode & 0o777 == 0o700
    (tmp_path / "link").symlink_to(loose)
    with pytest.raises(GitError, match="not a folder"):
        private_folder(tmp_path / "link")


@pytest.mark.sqlite_only(reason="settings wiring: no database dialect involved")
def test_the_duty_passes_at_the_configured_interval_under_a_lease_that_outlives_it(
    tmp_path: Path,
) -> None:
    """``ORCHESTRION_SYNC_SECONDS``: a pass renews the duty's lease, so the lease must last
    longer than the wait between two passes, or each scheduler would take a turn."""
    from orchestrion.app.settings import Settings

    url = f"sqlite:///{tmp_path / 'every.db'}"
    with App(Settings(database_url=url, sync_every=120.0)).open() as app:
        duty = app.runtime.sync_duty("holder-1")
        assert duty.every == 120.0
        assert duty.lease is not None and duty.lease.ttl == 240.0
    with App(Settings(database_url=url)).open() as app:
        duty = app.runtime.sync_duty("holder-1")
        assert duty.every == 30.0 and duty.lease is not None and duty.lease.ttl == 60.0
