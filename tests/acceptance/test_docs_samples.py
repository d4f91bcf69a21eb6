"""Every code sample of the tutorial and the how-to guides runs, against a real server.

Each page (``docs/tutorial.md``, ``docs/how-to/*.md``) is read by the rules in
`tests.acceptance.docs_samples`: its files are written and its commands and Python run in
page order, in one project folder shared by the pages (as a reader working through them
would), with ``orchestrion`` on the PATH and a real ``orchestrion server`` (one worker
process, first start: it creates the admin and saves its token for the CLI, as for a
reader) on that folder's database. A failing step fails the test naming the page and line.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from tests.acceptance.conftest import REPO
from tests.acceptance.docs_samples import DEFAULT_URL, Sample, SampleError, export_of, parse_page
from tests.acceptance.test_server import free_port, wait_for
from tests.helpers import database_url_for
from tests.processes import Proc

DOCS = REPO / "docs"
PAGES = [DOCS / "tutorial.md", *sorted((DOCS / "how-to").glob("*.md"))]
TIMEOUT = 90.0

# The samples test the pages, not the database under them: the SQLite pass runs them once
# (each page starts servers and ~65 CLI processes; twice would double that for nothing).
pytestmark = pytest.mark.sqlite_only(reason="the docs' samples, run once on the default store")


class Project:
    """The readers' project folder, its environment and the server running on it."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "flows").mkdir(parents=True)
        self.logs = root.parent / "logs"
        self.logs.mkdir()
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {k: v for k, v in os.environ.items() if not k.startswith("ORCHESTRION_")}
        env.update(
            PATH=f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}",
            ORCHESTRION_DATABASE_URL=database_url_for(root / "orchestrion.db"),
            ORCHESTRION_DEV_MODE="1",
            # The webhook of docs/how-to/events-and-webhooks.md, as that page starts it.
            ORCHESTRION_WEBHOOK_SHOP_SECRET="s3cret",
            ORCHESTRION_CREDENTIALS_FILE=str(root.parent / "credentials.json"),
            ORCHESTRION_LEASE_SECONDS="3",
            ORCHESTRION_HEARTBEAT_SECONDS="0.5",
            PYTHONUNBUFFERED="1",
            NO_COLOR="1",
            COLUMNS="200",
        )
        self.env = env
        self.server = Proc(
            "server",
            ["server", "--port", str(self.port), "--workflows", "flows", "--workers", "1"],
            root,
            env,
            self.logs,
        )

    def wait_ready(self) -> None:
        """Until the server answers and has saved its first start's token for the CLI."""
        credentials = Path(self.env["ORCHESTRION_CREDENTIALS_FILE"])
        wait_for("the server's first start", self._ready(credentials), 60, self.server.output)

    def _ready(self, credentials: Path) -> Callable[[], bool]:
        def check() -> bool:
            if not self.server.alive():
                pytest.fail(f"the server exited\n{self.server.output()}")
            try:
                answer = httpx.get(f"{self.url}/api/v1/ready", timeout=2)
            except httpx.HTTPError:
                return False
            return answer.status_code == 200 and credentials.exists()

        return check

    def rewrite(self, text: str) -> str:
        return text.replace(DEFAULT_URL, self.url)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Project]:
    project = Project(tmp_path_factory.mktemp("docs") / "project")
    try:
        project.wait_ready()
        yield project
    finally:
        project.server.kill_group()


def _fail(sample: Sample, what: str, project: Project, output: str) -> None:
    pytest.fail(
        f"{sample.where}: {what}\n--- output\n{output[-4000:]}\n"
        f"--- server log (end)\n{project.server.output()[-3000:]}",
        pytrace=False,
    )


def _run(sample: Sample, script: str, project: Project, env: dict[str, str]) -> None:
    argv = ["python", "-c", script] if sample.kind == "python" else ["bash", "-c", script]
    if sample.kind == "python":
        argv[0] = sys.executable
    try:
        done = subprocess.run(
            argv, cwd=project.root, env=env, capture_output=True, text=True, timeout=TIMEOUT
        )
    except subprocess.TimeoutExpired as exc:
        _fail(sample, f"timed out after {TIMEOUT:.0f}s: {script}", project, str(exc.output))
        return
    if done.returncode != sample.exit_code:
        _fail(
            sample,
            f"exit {done.returncode}, expected {sample.exit_code}: {script}",
            project,
            done.stdout + done.stderr,
        )


def _export(sample: Sample, name: str, value: str, project: Project, env: dict[str, str]) -> None:
    """``export NAME=value`` as the shell would evaluate it, kept for the page's next steps."""
    done = subprocess.run(
        ["bash", "-c", f'{name}={value}; printf %s "${name}"'],
        cwd=project.root,
        env=env,
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
    )
    if done.returncode != 0:
        _fail(sample, f"export {name} failed", project, done.stderr)
    env[name] = done.stdout


def _background(sample: Sample, project: Project, env: dict[str, str]) -> subprocess.Popen[str]:
    script = "\n".join(project.rewrite(c) for c in sample.commands) or project.rewrite(sample.text)
    with (project.logs / f"background-{sample.line}.log").open("w") as log:
        return subprocess.Popen(
            ["bash", "-c", script],
            cwd=project.root,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )


def run_page(page: Path, project: Project) -> None:
    env = dict(project.env)
    started: list[subprocess.Popen[str]] = []
    try:
        for sample in parse_page(page, shown=page.relative_to(REPO)):
            if sample.kind in ("skip", "server"):
                continue
            if sample.kind == "file":
                target = project.root / sample.path
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_text(project.rewrite(sample.text))
            elif sample.background:
                started.append(_background(sample, project, env))
            elif sample.kind == "commands":
                for command in sample.commands:
                    exported = export_of(command)
                    if exported:
                        name, value = exported
                        _export(sample, name, project.rewrite(value), project, env)
                    else:
                        _run(sample, project.rewrite(command), project, env)
            else:
                _run(sample, project.rewrite(sample.text), project, env)
    finally:
        for proc in started:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


@pytest.mark.parametrize("page", PAGES, ids=[p.stem for p in PAGES])
def test_the_samples_of_a_page_run(page: Path, project: Project) -> None:
    run_page(page, project)


def test_every_block_of_the_sample_pages_follows_the_rules() -> None:
    problems = []
    for page in PAGES:
        try:
            samples = parse_page(page)
        except SampleError as exc:
            problems.append(str(exc))
            continue
        assert samples, f"{page}: a sample page without a sample"
    assert not problems, "\n".join(problems)


def test_the_rules_refuse_an_unmarked_block(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text("Text\n\n```yaml\nname: x\n```\n")
    with pytest.raises(SampleError, match=r"page.md:3: a ```yaml block"):
        parse_page(page)
    page.write_text("<!-- sample: skip -->\n```yaml\nname: x\n```\n")
    with pytest.raises(SampleError, match="needs a reason"):
        parse_page(page)
    page.write_text(
        '```yaml title="flows/x.yaml"\nname: x\n```\n\n<!-- sample: exit=1 -->\n'
        "```console\n$ orchestrion run \\\n    flows/x.yaml\nrun ... failed\n```\n"
    )
    first, second = parse_page(page)
    assert (first.kind, first.path, first.text) == ("file", "flows/x.yaml", "name: x\n")
    assert second.commands == ("orchestrion run \\\n    flows/x.yaml",)
    assert second.exit_code == 1
