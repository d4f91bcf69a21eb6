"""Follow a container's output: one thread per stream reads the engine's log stream and
sends each line to the task's log as the container prints it.

stdout is kept (up to `MAX_STDOUT_BYTES`) for the result, the end of stderr for the error
message. Every place that shortens output masks the task's secrets first (`ctx.masker`),
as shell tasks do, so a value straddling a cut leaves no fragment behind.
"""

from __future__ import annotations

import codecs
import contextlib
import threading
import time
from collections import deque
from typing import TYPE_CHECKING, Any

from orchestrion.worker.context import TaskContext
from orchestrion.worker.shell import MAX_LINE_BYTES

if TYPE_CHECKING:
    from docker import DockerClient

__all__ = ["LogFollower", "join_followers"]

_READER_JOIN_SECONDS = 5.0
_STDERR_TAIL_LINES = 10
_TRUNCATED_MARK = " [line truncated]"


class LogFollower:
    """Follows one of the container's streams in a daemon thread, sending each line to the
    log sink as it arrives; keeps stdout for the result and the end of stderr for errors."""

    def __init__(
        self, client: DockerClient, container_id: str, stream: str, ctx: TaskContext, *,
        keep_bytes: int,
    ) -> None:  # fmt: skip
        self._client = client
        self._id = container_id
        self._stream = stream
        self._sink = ctx.log_sink
        self._masker = ctx.masker
        self._keep_bytes = keep_bytes
        self.kept = bytearray()
        self.overflowed = False
        self.last_line: str | None = None
        self.tail: deque[str] = deque(maxlen=_STDERR_TAIL_LINES)
        self._chunks: Any = None
        self.thread = threading.Thread(
            target=self._run, name=f"orchestrion-container-{stream}", daemon=True
        )
        self.thread.start()

    def _run(self) -> None:
        which = {"stdout": self._stream == "stdout", "stderr": self._stream == "stderr"}
        try:
            self._chunks = self._client.api.logs(self._id, stream=True, follow=True, **which)
            self._pump(self._chunks)
        except Exception:  # the container was removed under us: nothing more to read
            pass
        finally:
            self.close()

    def close(self) -> None:
        """Let go of the engine's stream (it ends with the container anyway)."""
        with contextlib.suppress(Exception):
            if self._chunks is not None:
                self._chunks.close()

    def _pump(self, chunks: Any) -> None:
        pending = bytearray()
        discarding = False  # inside an over-long line whose head was already sent
        for chunk in chunks:
            self._keep(chunk)
            pending += chunk
            while (end := pending.find(b"\n")) >= 0:
                line = bytes(pending[:end])
                del pending[: end + 1]
                if not discarding:
                    self._emit(line)
                discarding = False
            if len(pending) >= MAX_LINE_BYTES and not discarding:
                self._cut(bytes(pending))
                discarding = True
            if discarding:
                pending.clear()
        if pending and not discarding:
            self._emit(bytes(pending))

    def _emit(self, line: bytes) -> None:
        if len(line) > MAX_LINE_BYTES:
            self._cut(line)
        else:
            self._line(self._masker.mask(_decode(line)))

    def _cut(self, data: bytes) -> None:
        """The head of an over-long line; the rest is dropped. What is kept may end inside
        a secret, so its end is scrubbed of any fragment of one."""
        head = codecs.getincrementaldecoder("utf-8")(errors="replace").decode(
            data[:MAX_LINE_BYTES], final=False
        )  # without a partial last character, which would hide the fragment before it
        self._line(self._masker.scrub_end(head) + _TRUNCATED_MARK)

    def _keep(self, chunk: bytes) -> None:
        if self._keep_bytes <= 0 or self.overflowed:
            return
        room = self._keep_bytes - len(self.kept)
        if len(chunk) > room:
            self.overflowed = True
            chunk = chunk[:room]
        self.kept += chunk

    def _line(self, text: str) -> None:
        if text.strip():
            self.last_line = text
            self.tail.append(text)
        with contextlib.suppress(Exception):  # a broken sink must not stop the draining
            self._sink(self._stream, text)


def _decode(line: bytes) -> str:
    return line.removesuffix(b"\r").decode("utf-8", errors="replace")


def join_followers(*readers: LogFollower) -> None:
    """Wait (5 s in all, at most) for the streams to end; let go of any still open."""
    deadline = time.monotonic() + _READER_JOIN_SECONDS
    for reader in readers:
        reader.thread.join(timeout=max(deadline - time.monotonic(), 0.0))
        if reader.thread.is_alive():
            reader.close()
