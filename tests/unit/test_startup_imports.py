"""Start-up stays cheap: what a command imports is pinned, not timed (issue 20).

Wall time on a shared machine is noise; the modules a fresh process loads are not. Each test
runs a fresh interpreter, does one thing (``orchestrion --version``, ``import
orchestrion.spec.python``, ``orchestrion run`` of a small file) and lists which of the heavy
modules it loaded. docs/performance.md has the figures these imports cost.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

# What costs start-up time and no command needs for --version (figures with pyc files).
HEAVY = (
    "pydantic",  # ~35 ms with pydantic_core
    "orchestrion.spec",  # the spec models: ~30 ms more
    "orchestrion.app",
    "orchestrion.store",
    "orchestrion.worker",
    "sqlite3",
    "rich",  # ~15 ms
    "httpx",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "psycopg",
    "cryptography",
    "argon2",
    "asyncio",
    "docker",  # the container engine's client: only when a container task runs
    "orchestrion.testing",
    "orchestrion.client",
)

# What serving, the API and the UI load, and `orchestrion run` never needs.
SERVER_STACK = (
    "httpx",
    "fastapi",
    "starlette",
    "uvicorn",
    "jinja2",
    "psycopg",
    "orchestrion.api",
    "orchestrion.ui",
    "orchestrion.web",
    "orchestrion.server",
    # Users' tooling: the test harness and the Python client (the CLI's --server mode
    # loads the client, a local run never).
    "orchestrion.testing",
    "orchestrion.client",
)


def loaded_after(code: str, watch: tuple[str, ...], cwd: Path | None = None) -> list[str]:
    """Run `code` in a fresh interpreter; the modules of `watch` it loaded (a package
    counts as loaded when it or any submodule of it is)."""
    probe = "\n".join(
        [
            "import json, sys",
            code,
            f"watch = {list(watch)!r}",
            "found = [w for w in watch"
            " if any(m == w or m.startswith(w + '.') for m in sys.modules)]",
            "print(json.dumps(found))",
        ]
    )
    out = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, cwd=cwd
    )
    return list(json.loads(out.stdout.strip().splitlines()[-1]))


def run_quietly(path: str) -> str:
    """The code of a process that runs `path` with ``orchestrion run`` into ``run.db``,
    output discarded, and fails unless the run succeeded."""
    return textwrap.dedent(f"""
        import contextlib, io
        from orchestrion.cli.main import main
        with contextlib.redirect_stdout(io.StringIO()):
            try:
                main(["run", {path!r}, "--db", "run.db", "-q"])
            except SystemExit as exc:
                assert exc.code == 0, exc.code
    """)


def test_version_imports_only_click() -> None:
    code = textwrap.dedent("""
        from orchestrion.cli.main import main
        try:
            main(["--version"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
    """)
    assert loaded_after(code, HEAVY) == []


def test_help_lists_every_command_without_running_one() -> None:
    """--help imports every command module (to show their help); it still opens nothing."""
    code = textwrap.dedent("""
        from orchestrion.cli.main import COMMANDS, main
        try:
            main(["--help"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
    """)
    assert loaded_after(code, ("sqlite3", "fastapi", "uvicorn", "psycopg")) == []


def test_a_mistyped_command_is_told_the_lazy_ones() -> None:
    from click.testing import CliRunner

    from orchestrion.cli.main import main

    result = CliRunner().invoke(main, ["ru"])
    assert result.exit_code == 2
    assert "No such command 'ru'" in result.output
    assert "'run'" in result.output and "'runs'" in result.output


def test_importing_the_package_imports_only_the_errors() -> None:
    assert loaded_after("import orchestrion", HEAVY) == []


def test_authoring_api_imports_no_runtime() -> None:
    """A workflow file imports this; the spec models (msgspec) are all it may bring."""
    watch = tuple(m for m in HEAVY if m != "orchestrion.spec")
    assert loaded_after("import orchestrion.spec.python", (*watch, "click")) == []
    assert loaded_after("from orchestrion import task, workflow", (*watch, "click")) == []


def test_the_client_and_the_records_import_no_spec_or_app() -> None:
    """The Python client decodes the API's JSON into the store's records, and the CLI's
    --server mode is built on it: neither needs pydantic, the spec, the App or the store's
    roles (together a third of a second of start-up)."""
    watch = (
        "pydantic",
        "orchestrion.spec.model",
        "orchestrion.app",
        "orchestrion.worker",
        "orchestrion.store.stores",
        "orchestrion.store.sql",
        "sqlite3",
    )
    assert loaded_after("import orchestrion.store.records", watch) == []
    assert loaded_after("import orchestrion.client", watch) == []


def test_the_spec_rules_import_no_pydantic() -> None:
    """The names, bounds and JSON checks every edge shares: a ``--server`` command checks
    its arguments by them (a secret's ``namespace/name``, a signal's JSON) without loading
    the models."""
    watch = ("pydantic", "orchestrion.spec.fields", "orchestrion.spec.model", "orchestrion.app")
    assert loaded_after("import orchestrion.spec.rules", watch) == []


def test_run_imports_no_server_stack(tmp_path: Path) -> None:
    (tmp_path / "two.py").write_text(
        textwrap.dedent("""
            from orchestrion import task, workflow

            @task
            def a() -> int:
                return 1

            @task
            def b(x: int) -> int:
                return x + 1

            @workflow
            def two():
                b(a())
        """)
    )
    code = run_quietly("two.py")
    # Nor the container engine's client: no task of this workflow runs in a container.
    # Nor what only publish tasks, broker triggers (asyncio, ssl), notifications and
    # retention need: each once cost every `orchestrion run` its import. Nor the policy
    # models (pydantic classes to build) while the store holds no policy, nor pydantic
    # at all: the spec's models are msgspec's (0.10 s of import and 66 ms of building).
    unused = (
        "pydantic",
        "orchestrion.spec.fields",
        "docker",
        "asyncio",
        "ssl",
        "orchestrion.brokers.publish",
        "orchestrion.app.notifications",
        "orchestrion.app.retention",
        "orchestrion.spec.policies.model",
    )
    assert loaded_after(code, (*SERVER_STACK, *unused), cwd=tmp_path) == []


def test_a_mapped_run_without_policies_builds_no_policy_model(tmp_path: Path) -> None:
    """A mapped task's admission reads the policies in force when its width is known;
    with none stored, it loads neither their models nor their evaluation."""
    (tmp_path / "mapped.yaml").write_text(
        textwrap.dedent("""
            name: mapped
            tasks:
              list:
                shell:
                  argv: [echo, "[1, 2]"]
                  json_output: true
              each:
                map: "{{ tasks.list }}"
                shell: [echo, "{{ item }}"]
        """)
    )
    code = run_quietly("mapped.yaml")
    watch = ("orchestrion.spec.policies.model", "orchestrion.spec.policies.evaluation")
    assert loaded_after(code, watch, cwd=tmp_path) == []


# What only a task of a plugin kind needs (issue 15): its client libraries, the kinds
# themselves, and the scan of every installed package's entry points.
KIND_STACK = ("sqlalchemy", "pymysql", "orchestrion.kinds", "orchestrion_greet")


def test_run_and_validate_load_no_task_kind_unless_used(tmp_path: Path) -> None:
    (tmp_path / "plain.yaml").write_text('name: plain\ntasks:\n  a: {shell: ["true"]}\n')
    (tmp_path / "kinds.yaml").write_text(
        "name: kinds\ntasks:\n  a: {sql: {connection: w, query: 'select 1'}}\n"
    )
    run = run_quietly("plain.yaml")
    assert loaded_after(run, KIND_STACK, cwd=tmp_path) == []
    validate = textwrap.dedent("""
        from orchestrion.spec.yaml.loader import load_yaml_file
        load_yaml_file("kinds.yaml")
    """)
    # Loading a sql task reads its options model, never SQLAlchemy or the plugins.
    assert loaded_after(validate, KIND_STACK, cwd=tmp_path) == ["orchestrion.kinds"]


def test_the_version_constant_is_the_package_version() -> None:
    from importlib.metadata import version

    from orchestrion.version import VERSION

    assert version("orchestrion") == VERSION


def test_version_reads_no_package_metadata() -> None:
    code = textwrap.dedent("""
        from orchestrion.cli.main import main
        try:
            main(["--version"])
        except SystemExit as exc:
            assert exc.code == 0, exc.code
    """)
    assert loaded_after(code, ("importlib.metadata",)) == []
