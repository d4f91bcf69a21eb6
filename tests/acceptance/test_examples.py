"""The example workflows, through the real command in real processes.

Every example is validated, run, listed, shown and its logs read, as a user would. Then the
cross-process behaviours: ``cancel`` from another terminal, ``retry`` of a failed run, bad
parameters, and the wall time of a small run (printed, never asserted).
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import Any

import pytest

from tests.acceptance.conftest import EXAMPLES, Cli, Result, by_task

EXAMPLE_FILES = [
    "etl.py",
    "shell_pipeline.yaml",
    "api_chain.py",
    "branching.yaml",
    "saga.py",
    "subflow.py",
]


def run_id_of(res: Result) -> str:
    """The run id that ``orchestrion run`` announces on its first line."""
    match = re.search(r"^run (\S+) of ", res.stdout, re.MULTILINE)
    assert match, res
    return match.group(1)


def run_ok(cli: Cli, *args: Any) -> tuple[Result, str]:
    """Run, expect success, return the result and the run's id."""
    res = cli("run", *args)
    assert res.code == 0, res
    return res, run_id_of(res)


def succeeded(show: dict[str, Any]) -> set[str]:
    return {name for name, tr in by_task(show).items() if tr["state"] == "succeeded"}


def attempts_of(show: dict[str, Any], name: str) -> list[dict[str, Any]]:
    tr = by_task(show)[name]
    return [a for a in show["attempts"] if a["task_run_id"] == tr["id"]]


# ---------------------------------------------------------------------------- every example


def test_the_examples_are_all_here() -> None:
    present = {p.name for p in EXAMPLES.iterdir() if p.suffix in (".py", ".yaml")}
    assert set(EXAMPLE_FILES) <= present
    for name in EXAMPLE_FILES:
        head = (EXAMPLES / name).read_text().lstrip()
        assert head.startswith(('"""', "#")), f"{name} has no explanatory header"


@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_example_validates_runs_lists_shows_and_logs(cli: Cli, name: str) -> None:
    path = EXAMPLES / name
    res = cli("validate", path)
    assert res.code == 0, res
    assert "ok" in res.stdout and str(path) in res.stdout

    res, run_id = run_ok(cli, path)

    listed = cli("runs", "list", "-o", "json")
    assert listed.code == 0, listed
    assert run_id in [r["id"] for r in listed.json()]
    [mine] = [r for r in listed.json() if r["id"] == run_id]
    assert mine["state"] == "succeeded"

    shown = cli("runs", "show", run_id)
    assert shown.code == 0, shown
    assert run_id in shown.stdout and "succeeded" in shown.stdout

    show = cli.show(run_id)
    assert show["run"]["state"] == "succeeded"
    logs = cli("logs", run_id)
    assert logs.code == 0, logs
    CHECKS[name](cli, run_id, show, logs.stdout)


def check_etl(cli: Cli, run_id: str, show: dict[str, Any], logs: str) -> None:
    tasks = by_task(show)
    assert {"extract", "transform", "load"} <= set(tasks)
    assert {f"transform[{i}]" for i in range(4)} <= succeeded(show)
    tries = attempts_of(show, "extract")
    assert [a["outcome"] for a in tries] == ["failed", "succeeded"]
    assert "SourceBusy" in (tries[0]["error"] or "")
    assert "extracted" in logs and "for 2026-11-26 into 4 partitions" in logs
    summary = tasks["load"]["result"]
    out = cli.cwd / summary["file"]
    assert out.is_file(), "load wrote outside the run's directory"
    assert len(out.read_text().splitlines()) == summary["rows"] > 0
    assert f"loaded {summary['rows']} rows" in logs


def check_shell_pipeline(cli: Cli, run_id: str, show: dict[str, Any], logs: str) -> None:
    tasks = by_task(show)
    assert tasks["count_requests"]["result"] == "2000"
    top = tasks["top_paths"]["result"]
    assert isinstance(top, list) and len(top) == 3
    assert top[0]["hits"] >= top[1]["hits"] >= top[2]["hits"]
    assert "report: 2000 requests" in logs
    assert f"busiest {top[0]['path']}" in logs
    assert "generated 2000 requests" in logs  # a stderr line
    log_file = cli.cwd / tasks["generate"]["result"]
    assert log_file.is_file() and run_id in str(log_file)


def check_api_chain(cli: Cli, run_id: str, show: dict[str, Any], logs: str) -> None:
    tasks = by_task(show)
    assert succeeded(show) == set(tasks)
    customer = tasks["create_customer"]["result"]
    order = tasks["create_order"]["result"]
    assert order["customer"] == customer["id"]
    assert tasks["get_order"]["result"]["id"] == order["id"]
    assert tasks["pay_order"]["result"] == {
        "order": order["id"],
        "status": "paid",
        "amount": order["total"],
    }
    port = tasks["start_api"]["result"]["port"]
    assert f"demo API listening on http://127.0.0.1:{port}" in logs
    assert f"POST http://127.0.0.1:{port}/customers/{customer['id']}/orders" in logs
    assert f"demo API on port {port} stopped" in logs
    assert "Ada (customer 1) bought 2 x P-100" in logs


def check_branching(cli: Cli, run_id: str, show: dict[str, Any], logs: str) -> None:
    states = {name: tr["state"] for name, tr in by_task(show).items()}
    assert states == {
        "inspect": "succeeded",
        "full_rebuild": "skipped",
        "incremental_update": "succeeded",
        "small_batch": "succeeded",
        "large_batch": "skipped",
        "publish": "succeeded",
        "cleanup": "succeeded",
    }
    assert "published: refresh=incremental batch=processing 120 rows in one batch" in logs
    assert f"cleaned up the work directory of run {run_id}" in logs


def check_saga(cli: Cli, run_id: str, show: dict[str, Any], logs: str) -> None:
    assert succeeded(show) == {"reserve_stock", "charge_card", "ship", "confirm"}
    assert not any(tr["task_name"].startswith("undo:") for tr in show["task_runs"])
    assert "order A-1001 shipped, tracking TRK-A-1001" in logs


def check_subflow(cli: Cli, run_id: str, show: dict[str, Any], logs: str) -> None:
    assert show["run"]["workflow"] == "nightly_report"
    tasks = by_task(show)
    assert {"emea", "amer", "combine"} == set(tasks) == succeeded(show)
    emea = tasks["emea"]["result"]["summarise"]
    amer = tasks["amer"]["result"]["summarise"]
    report = tasks["combine"]["result"]
    assert report["total"] == emea["total"] + amer["total"]
    assert "all regions:" in logs
    runs = cli("runs", "list", "-o", "json").json()
    children = [r for r in runs if r["workflow"] == "region_report"]
    assert len(children) == 2
    assert all(r["state"] == "succeeded" and r["trigger"].startswith("parent:") for r in children)
    child_logs = cli("logs", children[0]["id"])
    assert "fetched" in child_logs.stdout, child_logs


CHECKS = {
    "etl.py": check_etl,
    "shell_pipeline.yaml": check_shell_pipeline,
    "api_chain.py": check_api_chain,
    "branching.yaml": check_branching,
    "saga.py": check_saga,
    "subflow.py": check_subflow,
}


# ---------------------------------------------------------------------------- example variants


def test_warehouse_assets_records_the_landed_day(cli: Cli) -> None:
    """The asset pipeline's first step, run here (its downstream steps start from a
    scheduler: tests/ui/test_ui_assets.py runs the whole cascade)."""
    path = EXAMPLES / "warehouse_assets.py"
    assert (EXAMPLES / "warehouse_assets.py").read_text().startswith('"""')
    res = cli("validate", path)
    assert res.code == 0, res
    run_ok(cli, path, "-w", "raw_orders", "-p", "day=2026-11-30")
    history = cli("assets", "history", "warehouse.raw_orders", "-o", "json")
    assert history.code == 0, history
    (event,) = history.json()
    assert (event["partition"], event["metadata"]) == ("2026-11-30", {"rows": 40})
    shown = cli("assets", "show", "warehouse.orders_mart", "-o", "json")
    assert shown.code == 0, shown
    assert shown.json()["upstream"] == ["warehouse.staged_orders"]
    assert shown.json()["state"] == "missing"


def test_etl_with_parameters(cli: Cli) -> None:
    _, run_id = run_ok(cli, EXAMPLES / "etl.py", "-p", "day=2026-01-01", "-p", "partitions=3")
    show = cli.show(run_id)
    assert show["run"]["params"] == {"day": "2026-01-01", "partitions": 3}
    assert {"transform[0]", "transform[1]", "transform[2]"} <= succeeded(show)
    assert "transform[3]" not in by_task(show)
    assert (cli.cwd / ".orchestrion/work/etl/2026-01-01.jsonl").is_file()


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        (["-p", "mode=full"], {"full_rebuild": "succeeded", "incremental_update": "skipped"}),
        (["-p", "rows=5000"], {"small_batch": "skipped", "large_batch": "succeeded"}),
    ],
)
def test_branching_follows_params_and_upstream_results(
    cli: Cli, params: list[str], expected: dict[str, str]
) -> None:
    _, run_id = run_ok(cli, EXAMPLES / "branching.yaml", *params)
    states = {name: tr["state"] for name, tr in by_task(cli.show(run_id)).items()}
    assert expected.items() <= states.items()
    assert states["publish"] == states["cleanup"] == "succeeded"


def test_branching_cleanup_runs_after_a_failure(cli: Cli) -> None:
    res = cli("run", EXAMPLES / "branching.yaml", "-p", "fail=true")
    assert res.code == 1, res
    run_id = run_id_of(res)
    states = {name: tr["state"] for name, tr in by_task(cli.show(run_id)).items()}
    assert states["small_batch"] == "failed"
    assert states["publish"] == "upstream_failed"
    assert states["cleanup"] == "succeeded"


def test_saga_failure_compensates_in_reverse_order(cli: Cli) -> None:
    res = cli("run", EXAMPLES / "saga.py", "-p", "fail_at=ship", "-p", "order_id=B-7")
    assert res.code == 1, res
    assert "StepFailed" in res.output
    run_id = run_id_of(res)

    shown = cli("runs", "show", run_id)
    assert shown.code == 0, shown
    assert "compensated" in shown.stdout
    assert "undo:charge_card" in shown.stdout and "undo:reserve_stock" in shown.stdout

    show = cli.show(run_id)
    assert show["run"]["state"] == "failed"
    tasks = {tr["task_name"]: tr for tr in show["task_runs"]}
    assert tasks["reserve_stock"]["state"] == "compensated"
    assert tasks["charge_card"]["state"] == "compensated"
    assert tasks["ship"]["state"] == "failed"
    assert tasks["confirm"]["state"] == "upstream_failed"
    undo_charge, undo_reserve = tasks["undo:charge_card"], tasks["undo:reserve_stock"]
    assert undo_charge["state"] == undo_reserve["state"] == "succeeded"
    assert "undo:ship" not in tasks  # the failed step has nothing to undo
    assert undo_charge["finished_at"] <= undo_reserve["started_at"]  # reverse order

    logs = cli("logs", run_id).stdout
    assert logs.index("refunding charge CH-B-7") < logs.index("releasing reservation R-B-7")
    ledger = (cli.cwd / ".orchestrion/work/saga/B-7.ledger").read_text().splitlines()
    actions = [json.loads(line)["action"] for line in ledger]
    assert actions == ["reserve", "charge", "refund", "release"]


def test_saga_failure_at_the_first_step_has_nothing_to_compensate(cli: Cli) -> None:
    res = cli("run", EXAMPLES / "saga.py", "-p", "fail_at=reserve", "-p", "order_id=C-1")
    assert res.code == 1, res
    show = cli.show(run_id_of(res))
    assert not [tr for tr in show["task_runs"] if tr["task_name"].startswith("undo:")]
    assert by_task(show)["reserve_stock"]["state"] == "failed"


def test_subflow_child_runs_on_its_own(cli: Cli) -> None:
    _, run_id = run_ok(cli, EXAMPLES / "subflow.py", "-w", "region_report", "-p", "region=apac")
    show = cli.show(run_id)
    assert show["run"]["workflow"] == "region_report"
    assert by_task(show)["summarise"]["result"]["region"] == "apac"


# ---------------------------------------------------------------------------- cancel


SLOW = """\
name: slow
tasks:
  first:
    shell: [echo, starting]
  nap:
    depends_on: first
    shell:
      script: |
        echo $$ > "$PID_FILE"
        echo "sleeping"
        exec sleep 30
      env: {PID_FILE: "{{ params.pid_file }}"}
  after:
    depends_on: nap
    shell: [echo, never]
params:
  pid_file: {type: string, required: true}
"""


def alive(pid: int) -> bool:
    """The process exists and is not a zombie (nobody may reap orphans in a container)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def wait_for(predicate: Any, timeout: float, what: str) -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_cancel_from_another_process_stops_the_run_and_kills_the_process(
    cli: Cli, tmp_path: Path
) -> None:
    wf = tmp_path / "slow.yaml"
    wf.write_text(SLOW)
    pid_file = tmp_path / "sleep.pid"
    proc = cli.popen("run", wf, "-p", f"pid_file={pid_file}")
    try:
        pid = wait_for(
            lambda: pid_file.exists() and pid_file.read_text().strip(), 30, "the sleep task"
        )
        sleep_pid = int(pid)
        assert alive(sleep_pid)
        [run_id] = cli.run_ids()

        start = time.monotonic()
        res = cli("cancel", run_id)
        assert res.code == 0, res
        assert "canceled" in res.stdout
        code = proc.wait(timeout=20)
        took = time.monotonic() - start
    finally:
        if proc.poll() is None:
            proc.kill()
        out, err = proc.communicate()
    print(f"\ncancel -> run process exit: {took:.2f}s")
    assert code == 1, (out, err)
    assert took < 8  # the worker does not sit out its 5 s stop grace for a canceled run
    show = cli.show(run_id)
    assert show["run"]["state"] == "canceled"
    states = {name: tr["state"] for name, tr in by_task(show).items()}
    assert states == {"first": "succeeded", "nap": "canceled", "after": "canceled"}
    wait_for(lambda: not alive(sleep_pid), 5, "the sleep process to be gone")
    assert "sleeping" in cli("logs", run_id, "nap").stdout

    again = cli("cancel", run_id)
    assert again.code == 1 and "already canceled" in again.stderr, again


# ---------------------------------------------------------------------------- retry


FLAKY = '''\
"""Fails once: 'flaky' fails while its marker file is missing (and creates it)."""
from pathlib import Path

from orchestrion.spec.python import task, workflow


def bump(name: str) -> None:
    counter = Path("counts") / name
    counter.parent.mkdir(exist_ok=True)
    counter.write_text(str(int(counter.read_text()) + 1 if counter.exists() else 1))


@task
def prepare() -> int:
    bump("prepare")
    print("prepared")
    return 41


@task
def flaky(n: int) -> int:
    bump("flaky")
    marker = Path("flaky.marker")
    if not marker.exists():
        marker.write_text("failed once")
        raise RuntimeError("first attempt fails (marker file created)")
    print("flaky worked this time")
    return n + 1


@task
def report(n: int) -> str:
    bump("report")
    print(f"answer {n}")
    return f"answer {n}"


@workflow
def fails_once():
    report(flaky(prepare()))
'''


def test_retry_of_a_failed_run_reruns_only_what_failed(cli: Cli, tmp_path: Path) -> None:
    wf = tmp_path / "fails_once.py"
    wf.write_text(FLAKY)
    res = cli("run", wf)
    assert res.code == 1, res
    assert "first attempt fails" in res.output
    [run_id] = cli.run_ids()
    first = cli.show(run_id)
    assert first["run"]["state"] == "failed"
    assert by_task(first)["report"]["state"] == "upstream_failed"

    res = cli("retry", run_id)
    assert res.code == 0, res
    assert cli.run_ids() == [run_id]  # the same run, not a new one
    show = cli.show(run_id)
    assert show["run"]["state"] == "succeeded"
    tasks = by_task(show)
    assert tasks["report"]["result"] == "answer 42"
    assert tasks["prepare"]["attempts"] == 1
    assert [a["outcome"] for a in attempts_of(show, "prepare")] == ["succeeded"]
    assert [a["outcome"] for a in attempts_of(show, "flaky")] == ["failed", "succeeded"]
    assert [a["outcome"] for a in attempts_of(show, "report")] == ["succeeded"]
    counts = {p.name: p.read_text() for p in (cli.cwd / "counts").iterdir()}
    assert counts == {"prepare": "1", "flaky": "2", "report": "1"}
    assert "answer 42" in cli("logs", run_id, "report").stdout

    again = cli("retry", run_id)
    assert again.code == 2, again
    assert "succeeded" in again.stderr


# ---------------------------------------------------------------------------- bad input


PARAMS_YAML = """\
name: typed
params:
  day: {type: date, required: true}
  count: {type: integer, default: 3}
  mode: {type: string, enum: [fast, slow], default: fast}
  flag: {type: boolean, default: false}
tasks:
  only:
    shell: [echo, "{{ params.day }}"]
"""


@pytest.mark.parametrize(
    ("params", "message"),
    [
        (["-p", "day=2026-01-01", "-p", "nope=1"], "unknown parameter 'nope'"),
        (["-p", "day=2026-01-01", "-p", "count=many"], "parameter 'count'"),
        (["-p", "day=2026-02-30"], "parameter 'day' must be a date"),
        (["-p", "day=2026-01-01", "-p", "mode=medium"], "parameter 'mode' must be one of"),
        (["-p", "day=2026-01-01", "-p", "flag=yes"], "parameter 'flag'"),
        (["-p", "day"], "use name=value"),
        ([], "parameter 'day' is required"),
    ],
)
def test_bad_parameters_exit_2_with_a_clear_message(
    cli: Cli, tmp_path: Path, params: list[str], message: str
) -> None:
    wf = tmp_path / "typed.yaml"
    wf.write_text(PARAMS_YAML)
    res = cli("run", wf, *params)
    assert res.code == 2, res
    assert message in res.stderr, res
    assert "Traceback" not in res.output
    listed = cli("runs", "list", "-o", "json")
    assert listed.json() == []


def test_bad_parameters_of_a_python_example(cli: Cli) -> None:
    res = cli("run", EXAMPLES / "saga.py", "-p", "fail_at=payment")
    assert res.code == 2, res
    assert "parameter 'fail_at' must be one of" in res.stderr
    res = cli("run", EXAMPLES / "etl.py", "-p", "partitions=4.5")
    assert res.code == 2, res
    assert "parameter 'partitions'" in res.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run"], "give a workflow file, or --resume RUN_ID"),
        (["run", "missing.yaml"], "no such file"),
        (["run", "--resume", "no-such-run"], "no run"),
        (["runs", "show", "no-such-run"], "no run"),
        (["logs", "no-such-run"], "no run"),
        (["retry", "no-such-run"], "no run"),
        (["cancel", "no-such-run"], "no run"),
    ],
)
def test_bad_command_lines_exit_2(cli: Cli, args: list[str], message: str) -> None:
    res = cli(*args)
    assert res.code == 2, res
    assert message in res.stderr, res
    assert "Traceback" not in res.output


# ---------------------------------------------------------------------------- odd values


ODD = """\
name: odd
params:
  dir: {type: string, required: true}
  label: {type: string, default: "[/p] [bold]x"}
tasks:
  where:
    shell: {argv: [pwd], cwd: "{{ params.dir }}"}
  markup:
    shell: [echo, "[/x] [bold]y {{ params.label }}"]
  fails:
    depends_on: [where, markup]
    shell:
      script: 'echo "[/boom] [red]" >&2; exit 4'
"""


def test_values_that_look_like_markup_or_templates_are_shown_as_they_are(
    cli: Cli, tmp_path: Path
) -> None:
    """Results, errors and parameters holding rich markup ("[/x]") are printed literally,
    and a templated shell cwd is rendered."""
    target = tmp_path / "target dir"
    target.mkdir()
    wf = tmp_path / "odd.yaml"
    wf.write_text(ODD)
    res = cli("run", wf, "-p", f"dir={target}")
    assert res.code == 1, res
    assert "Traceback" not in res.output
    assert "[/x] [bold]y [/p] [bold]x" in res.stdout
    assert "[/boom] [red]" in res.output
    run_id = run_id_of(res)
    tasks = by_task(cli.show(run_id))
    assert tasks["where"]["result"] == str(target)
    shown = cli("runs", "show", run_id)
    assert shown.code == 0, shown
    assert '"label": "[/p] [bold]x"' in shown.stdout and "[/boom] [red]" in shown.stdout
    logs = cli("logs", run_id)
    assert "[/x] [bold]y" in logs.stdout and "[/boom] [red]" in logs.stdout
    missing = cli("runs", "show", "[/nope]")
    assert missing.code == 2 and "[/nope]" in missing.stderr, missing


# ---------------------------------------------------------------------------- timing


THREE = """\
name: three
tasks:
  a: {shell: [echo, a]}
  b: {shell: [echo, "{{ tasks.a }}b"]}
  c: {shell: [echo, "{{ tasks.b }}c"]}
"""


def test_time_of_a_small_run_from_process_start_to_exit(cli: Cli, tmp_path: Path) -> None:
    """Printed for the record (run with -s to see it); never asserted."""
    wf = tmp_path / "three.yaml"
    wf.write_text(THREE)
    timings = []
    for target in (wf, EXAMPLES / "etl.py"):
        res = cli("run", target, "-q")
        assert res.code == 0, res
        timings.append(f"{target.name}: {res.seconds * 1000:.0f} ms")
    res = cli("validate", wf)
    timings.append(f"validate three.yaml: {res.seconds * 1000:.0f} ms")
    print("\norchestrion run, process start to exit: " + "; ".join(timings))
    show = cli.show(cli.run_ids()[1])
    assert by_task(show)["c"]["result"] == "abc"


def test_side_effects_stay_in_the_working_directory(cli: Cli) -> None:
    """Examples write under ./.orchestrion of the directory they run in, not into the repo."""
    before = sorted(set(os.listdir(EXAMPLES)) - {"__pycache__"})
    run_ok(cli, EXAMPLES / "saga.py")
    assert sorted(set(os.listdir(EXAMPLES)) - {"__pycache__"}) == before
    assert (cli.cwd / ".orchestrion" / "work" / "saga").is_dir()
