"""Cross-process wake-ups for SQLite: the part of LISTEN/NOTIFY that one machine needs.

Every process that waits for work (a worker) binds a Unix datagram socket in a folder next
to the database file. A process whose transaction made work ready sends one empty datagram
to each socket there. A lost datagram costs nothing but latency: waiters still poll on
their own, so this is an accelerator, never a source of truth.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path

__all__ = ["Waker"]

_REFRESH_SECONDS = 0.5


class Waker:
    """One process's end of the wake-ups of one database's folder: it pings the other
    processes' sockets, and may listen on a socket of its own."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._send = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._send.setblocking(False)
        self._peers: list[str] = []
        self._listed_at = 0.0
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._path: str | None = None

    def ping(self, *, work: bool, history: bool) -> None:
        """Wake the other processes listening for this kind of change: `work` (a task run
        may have become ready) and/or `history` (event rows were written)."""
        kinds = ("w" if work else "") + ("h" if history else "")
        if not kinds:
            return
        with self._lock:
            now = time.monotonic()
            if now - self._listed_at > _REFRESH_SECONDS:
                self._peers = self._list()
                self._listed_at = now
            peers = [p for p in self._peers if p != self._path]
        stale = False
        for path in peers:
            wanted = "".join(k for k in kinds if k in _kinds_of(path))
            if not wanted:
                continue
            try:
                self._send.sendto(wanted.encode(), path)
            except BlockingIOError:
                pass  # its queue is full: it is awake already
            except OSError:
                stale = True
                self._remove_if_dead(path)
        if stale:
            with self._lock:
                self._listed_at = 0.0

    def listen(
        self,
        on_work: Callable[[], None] | None = None,
        on_history: Callable[[], None] | None = None,
    ) -> None:
        """Receive pings in a daemon thread and call the callback of each kind received."""
        if self._listener is not None:
            return
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        kinds = ("w" if on_work else "") + ("h" if on_history else "")
        name = f"{os.getpid()}-{uuid.uuid4().hex[:8]}.{kinds}.sock"
        path = str(self.folder / name)
        if len(path.encode()) > 100:  # AF_UNIX paths are short; fall back to /tmp
            path = f"/tmp/orchestrion-{name}"
            self._link(path)
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(path)
        self._listener, self._path = sock, path
        thread = threading.Thread(
            target=self._receive,
            args=(sock, on_work, on_history),
            daemon=True,
            name="wake-listener",
        )
        thread.start()

    def close(self) -> None:
        """Stop listening and remove this process's socket."""
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        if self._path is not None:
            with contextlib.suppress(OSError):
                os.unlink(self._path)
            with contextlib.suppress(OSError):
                os.unlink(self.folder / Path(self._path).name)
            self._path = None
        self._send.close()

    def _receive(
        self,
        sock: socket.socket,
        on_work: Callable[[], None] | None,
        on_history: Callable[[], None] | None,
    ) -> None:
        while True:
            try:
                data = sock.recv(16)
            except OSError:
                return
            if on_work is not None and b"w" in data:
                on_work()
            if on_history is not None and b"h" in data:
                on_history()

    def _list(self) -> list[str]:
        try:
            entries = list(self.folder.iterdir())
        except OSError:
            return []
        out = []
        for entry in entries:
            if entry.suffix == ".sock":
                out.append(os.path.realpath(entry) if entry.is_symlink() else str(entry))
        return out

    def _link(self, target: str) -> None:
        with contextlib.suppress(OSError):
            os.symlink(target, self.folder / Path(target).name)

    def _remove_if_dead(self, path: str) -> None:
        pid = (
            Path(path).name.split("-")[-2]
            if "orchestrion-" in path
            else Path(path).name.split("-")[0]
        )
        try:
            os.kill(int(pid), 0)
        except (ValueError, ProcessLookupError):
            with contextlib.suppress(OSError):
                os.unlink(path)
            with contextlib.suppress(OSError):
                os.unlink(self.folder / Path(path).name)
        except PermissionError:
            pass


def _kinds_of(path: str) -> str:
    """The kinds a listener wants, from its socket name ``<pid>-<id>.<kinds>.sock``."""
    parts = Path(path).name.split(".")
    return parts[-2] if len(parts) >= 3 else "w"
