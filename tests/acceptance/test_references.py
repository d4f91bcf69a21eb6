"""References resolve the way Python users expect, checked by real ``orchestrion``
processes run from another folder, without ``PYTHONPATH``:

* ``validate`` reports a missing function, a missing module and a missing child workflow
  in one call, each with its file and line, and accepts a child deployed in the database;
* a YAML parent calling a deployed Python child runs under ``orchestrion run``;
* a Python workflow importing a package of the project root (configured) runs.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.helpers import db_arg

HELPERS = "def fn():\n    print('fn ran')\n    return 1\n"

CHECKED = """\
name: checks
tasks:
  good:
    python: helpers:fn
  by_path:
    python: helpers.py:fn
  no_function:
    python: helpers:nope
  no_module:
    python: missing_mod:fn
  child:
    workflow: kid
"""

KID = """\
from orchestrion import task, workflow


@task
def hello():
    print("hello from kid")
    return "kid"


@workflow
def kid():
    hello()
"""


def _cli(cwd: Path, *args: str, ok: bool = True) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "250"}
    for name in ("PYTHONPATH", "ORCHESTRION_DATABASE_URL", "ORCHESTRION_SERVER"):
        env.pop(name, None)
    env["ORCHESTRION_CODE_CACHE"] = str(cwd / ".code-cache")
    done = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert (done.returncode == 0) == ok, (args, done.stdout, done.stderr)
    return done


def test_validate_lists_every_broken_reference_with_its_line(tmp_path: Path) -> None:
    project, elsewhere = tmp_path / "project", tmp_path / "elsewhere"
    project.mkdir()
    elsewhere.mkdir()
    (project / "helpers.py").write_text(HELPERS)
    flow = project / "flow.yaml"
    flow.write_text(CHECKED)
    done = _cli(elsewhere, "validate", str(flow), "-o", "json", ok=False)
    rows = json.loads(done.stdout)
    assert [(r["line"], r["ok"]) for r in rows] == [(8, False), (10, False), (12, False)]
    messages = [r["error"] for r in rows]
    assert f"{flow}:8: tasks.no_function.python" in messages[0]
    assert "'helpers' has no attribute 'nope'" in messages[0]
    assert f"{flow}:10: tasks.no_module.python" in messages[1]
    assert "No module named 'missing_mod'" in messages[1]
    assert f"{flow}:12: tasks.child.workflow" in messages[2]
    assert "'kid'" in messages[2]
    # the table lists the same three, and a count
    table = _cli(elsewhere, "validate", str(flow), ok=False).stderr
    assert table.count("invalid ") == 3 and "3 problem(s)" in table

    # with the child deployed (or validated in the same batch), only the two remain
    db = db_arg(tmp_path / "o.db")
    (project / "kid.py").write_text(KID)
    _cli(elsewhere, "deploy", str(project / "kid.py"), "--db", db)
    rows = json.loads(
        _cli(elsewhere, "validate", str(flow), "--db", db, "-o", "json", ok=False).stdout
    )
    assert [r["line"] for r in rows if not r["ok"]] == [8, 10]
    rows = json.loads(_cli(elsewhere, "validate", str(project), "-o", "json", ok=False).stdout)
    assert [r["line"] for r in rows if not r["ok"]] == [8, 10]  # kid.py is in the batch
    assert {r["workflow"] for r in rows if r["ok"]} == {"kid"}  # helpers.py is a module


def test_a_yaml_parent_runs_a_deployed_python_child(tmp_path: Path) -> None:
    kid_dir, parent_dir, elsewhere = tmp_path / "kid", tmp_path / "parent", tmp_path / "cwd"
    for folder in (kid_dir, parent_dir, elsewhere):
        folder.mkdir()
    (kid_dir / "kidflow.py").write_text(KID)
    (parent_dir / "parent.yaml").write_text("name: parent\ntasks:\n  call:\n    workflow: kid\n")
    db = db_arg(tmp_path / "o.db")
    _cli(elsewhere, "deploy", str(kid_dir / "kidflow.py"), "--db", db)
    (kid_dir / "kidflow.py").unlink()  # the child's code comes from the database
    done = _cli(elsewhere, "run", str(parent_dir / "parent.yaml"), "--db", db)
    assert done.stdout.splitlines()[-1].startswith("succeeded"), done.stdout
    assert '{"hello": "kid"}' in done.stdout


def test_a_configured_project_root_puts_its_packages_within_reach(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    (root / "flows").mkdir(parents=True)
    (root / "shared").mkdir()
    (root / "shared" / "__init__.py").write_text("")
    (root / "shared" / "names.py").write_text("WHO = 'shared package'\n")
    (root / "flows" / "rooted.py").write_text(
        "from orchestrion import task, workflow\nfrom shared import names\n\n\n"
        "@task\ndef who():\n    return names.WHO\n\n\n@workflow\ndef rooted():\n    who()\n"
    )
    os.environ["ORCHESTRION_PROJECT_ROOT"] = str(root)
    try:
        done = _cli(
            tmp_path, "run", str(root / "flows" / "rooted.py"), "--db", db_arg(tmp_path / "r.db")
        )
    finally:
        del os.environ["ORCHESTRION_PROJECT_ROOT"]
    assert "shared package" in done.stdout, done.stdout
