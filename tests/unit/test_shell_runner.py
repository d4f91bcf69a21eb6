"""The shell runner against real processes: no mocks, real process groups, real signals."""

from __future__ import annotations

import os
import sys
import threading
import time
from pathlib import Path

import pytest

from orchestrion.errors import CancelRequested, TaskError, TaskTimeout
from orchestrion.spec.model import ShellAction
from orchestrion.worker.context import LogSink, TaskContext
from orchestrion.worker.shell import (
    MAX_LINE_BYTES,
    MAX_STDOUT_BYTES,
    kill_running_process_groups,
    run_shell,
)

PY = sys.executable


class Sink:
    """Records (stream, line, monotonic time) from any thread."""

    def __init__(self) -> None:
        self.lines: list[tuple[str, str, float]] = []
        self.lock = threading.Lock()
        self.first_line = threading.Event()

    def __call__(self, stream: str, line: str) -> None:
        with self.lock:
            self.lines.append((stream, line, time.monotonic()))
        self.first_line.set()

    def stream(self, name: str) -> list[str]:
        with self.lock:
            return [line for stream, line, _ in self.lines if stream == name]


def make_ctx(sink: LogSink | None = None, *, cancel: threading.Event | None = None) -> TaskContext:
    return TaskContext(
        run_id="run-123",
        task_run_id=7,
        task_name="build",
        workflow="wf",
        attempt=2,
        idempotency_key="idem-abc",
        cancel_event=cancel or threading.Event(),
        log_sink=sink or Sink(),
    )


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (nobody may reap orphans here)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    state = stat.rsplit(")", 1)[1].split()[0]
    return state not in ("Z", "X")


def wait_for_pids(path: Path, count: int, timeout: float = 5.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            pids = [int(x) for x in path.read_text().split()]
            if len(pids) >= count:
                return pids
        time.sleep(0.02)
    raise AssertionError(f"{path} never held {count} pids")


def wait_until_dead(pids: list[int], timeout: float = 3.0) -> list[int]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = [pid for pid in pids if alive(pid)]
        if not left:
            return []
        time.sleep(0.02)
    return [pid for pid in pids if alive(pid)]


# --------------------------------------------------------------------------- argv and env

HOSTILE = [
    "; rm -rf /",
    "$(id)",
    "`id`",
    "'single' \"double\"",
    "line1\nline2",
    "*",
    "",
    "--help",
    "  spaced  ",
    "ünïcødé ✓",
    "$HOME ${PATH} \\ | & > < !",
]


def test_argv_passes_hostile_strings_verbatim() -> None:
    code = "import json, sys; sys.stdout.write(json.dumps(sys.argv[1:]))"
    action = ShellAction(argv=(PY, "-c", code, *HOSTILE), json_output=True)
    assert run_shell(action, make_ctx(), timeout=30) == HOSTILE


def test_argv_bytes_reach_child_identically() -> None:
    code = "import os, sys; sys.stdout.write(' '.join(os.fsencode(a).hex() for a in sys.argv[1:]))"
    action = ShellAction(argv=(PY, "-c", code, *HOSTILE))
    result = run_shell(action, make_ctx(), timeout=30)
    assert result == " ".join(a.encode().hex() for a in HOSTILE)


def test_environment_layers(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ORCH_TEST_INHERITED", "from-parent")
    monkeypatch.delenv("ORCHESTRION_DEV_MODE", raising=False)
    for name in ("ORCHESTRION_TEST_DATABASE", "ORCHESTRION_TEST_PG_URL"):  # the test run's own
        monkeypatch.delenv(name, raising=False)
    # The master key (and its file's path) is never handed down to a task.
    monkeypatch.setenv("ORCHESTRION_MASTER_KEY", "key-material")
    monkeypatch.setenv("ORCHESTRION_MASTER_KEY_FILE", "/key/file")
    code = (
        "import json, os; print(json.dumps({k: v for k, v in os.environ.items()"
        " if k.startswith(('ORCH', 'USER_'))}))"
    )
    action = ShellAction(
        argv=(PY, "-c", code),
        env={"USER_VALUE": 'a; $(id) `id` "q"', "USER_OVERRIDDEN": "action"},
        json_output=True,
    )
    env = run_shell(action, make_ctx(), timeout=30, extra_env={"USER_OVERRIDDEN": "extra"})
    assert env == {
        "ORCH_TEST_INHERITED": "from-parent",
        "USER_VALUE": 'a; $(id) `id` "q"',
        "USER_OVERRIDDEN": "extra",
        "ORCHESTRION_RUN_ID": "run-123",
        "ORCHESTRION_TASK": "build",
        "ORCHESTRION_ATTEMPT": "2",
        "ORCHESTRION_IDEMPOTENCY_KEY": "idem-abc",
    }


def test_script_reads_values_from_env_without_evaluating_them(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    value = f"hello $(touch {marker}) `touch {marker}` ; touch {marker}"
    action = ShellAction(script='printf "%s\\n" "$GREETING"', env={"GREETING": value})
    assert run_shell(action, make_ctx(), timeout=30) == value
    assert not marker.exists()


def test_cwd(tmp_path: Path) -> None:
    action = ShellAction(argv=("pwd",), cwd=str(tmp_path))
    assert run_shell(action, make_ctx(), timeout=30) == str(tmp_path)


def test_bad_cwd(tmp_path: Path) -> None:
    action = ShellAction(argv=("pwd",), cwd=str(tmp_path / "missing"))
    with pytest.raises(TaskError, match="working directory does not exist"):
        run_shell(action, make_ctx(), timeout=30)


def test_missing_command() -> None:
    action = ShellAction(argv=("orchestrion-no-such-command-xyz", "arg"))
    with pytest.raises(TaskError, match="command not found: orchestrion-no-such-command-xyz"):
        run_shell(action, make_ctx(), timeout=30)


def test_nul_byte_in_argument_is_a_task_error() -> None:
    action = ShellAction(argv=("echo", "a\x00b"))
    with pytest.raises(TaskError, match="cannot start echo"):
        run_shell(action, make_ctx(), timeout=30)


# --------------------------------------------------------------------------- results


def test_last_non_empty_stdout_line_is_the_result() -> None:
    action = ShellAction(script="echo first; echo second; echo; echo '   '")
    assert run_shell(action, make_ctx(), timeout=30) == "second"


def test_no_output_gives_none() -> None:
    assert run_shell(ShellAction(argv=("true",)), make_ctx(), timeout=30) is None


def test_json_output() -> None:
    action = ShellAction(script="""echo '{"a": [1, 2],'; echo '"b": null}'""", json_output=True)
    assert run_shell(action, make_ctx(), timeout=30) == {"a": [1, 2], "b": None}


def test_json_output_parse_failure_shows_the_start() -> None:
    action = ShellAction(script="echo 'this is not json'", json_output=True)
    with pytest.raises(TaskError, match="not valid JSON") as info:
        run_shell(action, make_ctx(), timeout=30)
    assert "this is not json" in info.value.message


def test_non_zero_exit_carries_stderr_tail() -> None:
    script = "for i in $(seq 1 30); do echo err$i >&2; done; echo out; exit 3"
    with pytest.raises(TaskError) as info:
        run_shell(ShellAction(script=script), make_ctx(), timeout=30)
    message = info.value.message
    assert message.startswith("command exited with status 3")
    assert "err30" in message and "err29" in message
    assert "err1\n" not in message  # only the tail


def test_killed_by_signal_is_named() -> None:
    with pytest.raises(TaskError, match="killed by SIGKILL"):
        run_shell(ShellAction(script="kill -KILL $$"), make_ctx(), timeout=30)


# --------------------------------------------------------------------------- streaming


def test_lines_stream_in_order_and_split_by_stream() -> None:
    sink = Sink()
    script = "for i in $(seq 1 300); do echo out$i; echo err$i >&2; done"
    run_shell(ShellAction(script=script), make_ctx(sink), timeout=30)
    assert sink.stream("stdout") == [f"out{i}" for i in range(1, 301)]
    assert sink.stream("stderr") == [f"err{i}" for i in range(1, 301)]


def test_line_arrives_while_the_process_still_runs() -> None:
    seen_alive: list[bool] = []

    def sink(stream: str, line: str) -> None:
        if stream == "stdout" and line.isdigit():
            seen_alive.append(alive(int(line)))

    action = ShellAction(script="echo $$; sleep 1; echo done")
    assert run_shell(action, make_ctx(sink), timeout=30) == "done"
    assert seen_alive == [True]


def test_crlf_and_invalid_utf8_are_handled() -> None:
    sink = Sink()
    code = "import sys; sys.stdout.buffer.write(b'dos\\r\\nbad \\xff byte\\nno newline')"
    assert run_shell(ShellAction(argv=(PY, "-c", code)), make_ctx(sink), timeout=30) == (
        "no newline"
    )
    assert sink.stream("stdout") == ["dos", "bad \ufffd byte", "no newline"]


def test_a_failing_sink_does_not_block_the_child() -> None:
    def sink(stream: str, line: str) -> None:
        raise RuntimeError("sink down")

    action = ShellAction(script="for i in $(seq 1 20000); do echo line$i; done")
    assert run_shell(action, make_ctx(sink), timeout=30) == "line20000"


def test_huge_output_is_capped() -> None:
    sink = Sink()
    code = (
        "import sys\n"
        "w = sys.stdout.write\n"
        f"w('x' * {MAX_LINE_BYTES * 3} + '\\n')\n"
        "block = ('y' * 1023 + '\\n') * 1024\n"
        f"for _ in range({MAX_STDOUT_BYTES // (1024 * 1024) + 1}): w(block)\n"
        "w('LAST\\n')\n"
    )
    result = run_shell(ShellAction(argv=(PY, "-c", code)), make_ctx(sink), timeout=60)
    assert result == "LAST"
    lines = sink.stream("stdout")
    assert lines[0].startswith("x" * MAX_LINE_BYTES)
    assert len(lines[0]) < MAX_LINE_BYTES + 100
    assert lines[0].endswith("[line truncated]")
    assert lines[1] == "y" * 1023
    assert lines[-1] == "LAST"

    action = ShellAction(argv=(PY, "-c", code), json_output=True)
    with pytest.raises(TaskError, match="stdout larger than"):
        run_shell(action, make_ctx(), timeout=60)


# --------------------------------------------------------------------------- timeout/cancel

GROUP_SCRIPT = (
    'echo $$ >> "$PIDS"; sleep 100 & echo $! >> "$PIDS"; '
    'sleep 100 & echo $! >> "$PIDS"; echo ready; wait'
)


def test_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    action = ShellAction(script=GROUP_SCRIPT, env={"PIDS": str(pid_file)})
    started = time.monotonic()
    with pytest.raises(TaskTimeout, match=r"timed out after 1s; process group killed"):
        run_shell(action, make_ctx(), timeout=1.0, kill_grace=1.0)
    assert time.monotonic() - started < 5
    pids = wait_for_pids(pid_file, 3)
    assert wait_until_dead(pids) == []


def test_sigterm_ignored_escalates_to_sigkill(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    script = 'trap "" TERM; sleep 100 & echo $! >> "$PIDS"; echo $$ >> "$PIDS"; wait'
    action = ShellAction(script=script, env={"PIDS": str(pid_file)})
    started = time.monotonic()
    with pytest.raises(TaskTimeout):
        run_shell(action, make_ctx(), timeout=0.5, kill_grace=0.5)
    elapsed = time.monotonic() - started
    assert 0.9 <= elapsed < 5
    assert wait_until_dead(wait_for_pids(pid_file, 2)) == []


def test_cancel_from_another_thread_kills_the_group(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    cancel = threading.Event()
    sink = Sink()
    ctx = make_ctx(sink, cancel=cancel)

    def canceller() -> None:
        sink.first_line.wait(10)
        cancel.set()

    thread = threading.Thread(target=canceller)
    thread.start()
    action = ShellAction(script=GROUP_SCRIPT, env={"PIDS": str(pid_file)})
    started = time.monotonic()
    try:
        with pytest.raises(CancelRequested):
            run_shell(action, ctx, timeout=60, kill_grace=1.0)
    finally:
        thread.join()
    assert time.monotonic() - started < 5
    assert sink.stream("stdout") == ["ready"]
    assert wait_until_dead(wait_for_pids(pid_file, 3)) == []


def test_background_jobs_do_not_outlive_a_finished_task(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    script = 'sleep 100 & echo $! >> "$PIDS"; echo finished'
    action = ShellAction(script=script, env={"PIDS": str(pid_file)})
    started = time.monotonic()
    assert run_shell(action, make_ctx(), timeout=30, kill_grace=1.0) == "finished"
    assert time.monotonic() - started < 5
    assert wait_until_dead(wait_for_pids(pid_file, 1)) == []


def test_child_inherits_the_worker_environment() -> None:
    code = "import json, os; print(json.dumps(dict(os.environ)))"
    env = run_shell(ShellAction(argv=(PY, "-c", code), json_output=True), make_ctx(), timeout=30)
    assert env["PATH"] == os.environ["PATH"]
    assert env["ORCHESTRION_TASK"] == "build"


def test_worker_shutdown_kills_running_groups(tmp_path: Path) -> None:
    pid_file = tmp_path / "pids"
    sink = Sink()
    errors: list[BaseException] = []

    def run() -> None:
        action = ShellAction(script=GROUP_SCRIPT, env={"PIDS": str(pid_file)})
        try:
            run_shell(action, make_ctx(sink), timeout=60, kill_grace=1.0)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    assert sink.first_line.wait(10)
    assert kill_running_process_groups(grace=1.0) == 1
    thread.join(10)
    assert not thread.is_alive()
    assert len(errors) == 1 and isinstance(errors[0], TaskError)
    assert "killed by SIGTERM" in str(errors[0])
    assert wait_until_dead(wait_for_pids(pid_file, 3)) == []
