"""Route print() output and logging from a task's thread into that attempt's log.

Python tasks run in worker threads that share one `sys.stdout`. While a worker runs, stdout,
stderr and the root logger are wrapped once; each write is sent to the sink of the attempt
running on the current thread, or to the original stream when no attempt is.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO

from orchestrion.worker.context import LogSink

__all__ = ["attempt_capture", "install_capture"]

_current = threading.local()
_install_lock = threading.Lock()
_installed = 0


class _ThreadStream(io.TextIOBase):
    def __init__(self, original: TextIO, stream: str) -> None:
        self._original = original
        self._stream = stream

    def write(self, text: str) -> int:
        sink: LogSink | None = getattr(_current, "sink", None)
        if sink is None:
            return self._original.write(text)
        buffer = getattr(_current, self._stream, "") + text
        *lines, rest = buffer.split("\n")
        for line in lines:
            sink(self._stream, line)
        setattr(_current, self._stream, rest)
        return len(text)

    def flush(self) -> None:
        self._original.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._original.fileno()

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._original, "encoding", "utf-8")


class _SinkHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        sink: LogSink | None = getattr(_current, "sink", None)
        if sink is not None:
            sink("log", f"{record.levelname} {record.name}: {record.getMessage()}")


_handler = _SinkHandler(level=logging.DEBUG)
_saved: tuple[TextIO, TextIO] | None = None


def install_capture() -> None:
    """Wrap stdout, stderr and the root logger (reference counted; see `uninstall`)."""
    global _installed, _saved
    with _install_lock:
        _installed += 1
        if _installed > 1 and isinstance(sys.stdout, _ThreadStream):
            return
        # First worker, or someone (a test runner, an embedding app) swapped the streams
        # since: wrap what is there now.
        _saved = (sys.stdout, sys.stderr)
        sys.stdout = _ThreadStream(sys.stdout, "stdout")
        sys.stderr = _ThreadStream(sys.stderr, "stderr")
        if _handler not in logging.getLogger().handlers:
            logging.getLogger().addHandler(_handler)
        if logging.getLogger().level > logging.INFO or logging.getLogger().level == 0:
            logging.getLogger("orchestrion.task").setLevel(logging.INFO)


def uninstall_capture() -> None:
    global _installed
    with _install_lock:
        _installed -= 1
        if _installed > 0 or _saved is None:
            return
        sys.stdout, sys.stderr = _saved
        logging.getLogger().removeHandler(_handler)


@contextmanager
def attempt_capture(sink: LogSink) -> Iterator[None]:
    """Send this thread's output to `sink` for the duration of one attempt."""
    _current.sink = sink
    _current.stdout = ""
    _current.stderr = ""
    try:
        yield
    finally:
        for stream in ("stdout", "stderr"):
            rest = getattr(_current, stream, "")
            if rest:
                sink(stream, rest)
        _current.sink = None
