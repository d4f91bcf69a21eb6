"""Large results: encoded as a stream into the object store, and read back for the tasks
downstream (docs/results.md).

The hot path pays one bounded walk: `_estimate` stops as soon as a value might encode to
more than the threshold, so a small result (the usual case) is recognised in a few
steps and kept in the database as before. A larger one is encoded chunk by chunk
(`_chunks`: large strings in slices, small sub-values by the C encoder) into a temporary
file on the store's file system, hashed while written, and moved or uploaded: the value
and one encoder chunk are in memory, never a second full copy. Past ``max_bytes`` the
write stops and the task fails with a message naming the task, the size and the cap.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import msgspec

from orchestrion.errors import TaskError
from orchestrion.store.objects import ObjectRef, ObjectsSettings, ObjectStore

__all__ = ["ResultFiles", "ResultTooLarge"]

_ENCODE = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode
#: Sub-values estimated under this are encoded in one call of the C encoder.
_PIECE = 64 * 1024
#: Strings are written in slices of this many characters.
_SLICE = 1024 * 1024
#: Most nodes the hot-path walk visits before it takes the streaming path anyway.
_WALK = 2000
_SCALARS = (bool, int, float, type(None))
#: Exact types whose values are always JSON and small (a huge int is not: it is walked).
_PLAIN = frozenset({bool, float, type(None)})
#: Exact types counted as 24 bytes inside a container (ints up to 2**64 included).
_SMALL = frozenset({bool, float, type(None)})


class ResultTooLarge(TaskError):
    """A result over the hard cap (``ORCHESTRION_RESULTS_MAX_BYTES``)."""


class ResultFiles(msgspec.Struct, frozen=True):
    """A worker's object store and the sizes that decide what goes there."""

    objects: ObjectStore
    settings: ObjectsSettings

    # ---------------------------------------------------------------- writing

    def prepare(self, value: Any, task_name: str) -> tuple[Any, ObjectRef | None]:
        """`value` as the outcome carries it: itself when small, else a reference to where
        it was stored. Raises `TypeError`/`ValueError` as `json.dumps` would for a value
        that is not JSON, `ResultTooLarge` over the cap."""
        kind = type(value)
        if kind in _PLAIN:  # the most common results: nothing to walk, nothing to refuse
            return value, None
        if kind is str and len(value) * 6 <= self.settings.threshold:
            return value, None
        if _estimate(value, self.settings.threshold) is not None:
            _ENCODE(value)  # refuses what is not JSON, as before (the C encoder: fast)
            return value, None
        ref = self.write(_chunks(value, set()), task_name, "result.json")
        if ref is None:
            return value, None
        return ref.as_result(), ref

    def write(
        self, chunks: Iterator[str], task_name: str, name: str, *, inline_below: bool = True
    ) -> ObjectRef | None:
        """Write `chunks` to the store: the object's reference, or None when the encoding
        turned out to be under the threshold (`inline_below`) and stays in the database.
        Up to the threshold the encoding is kept in memory: a value that the walk could
        not call small but that is (many small items) costs no file."""
        head: list[bytes] = []
        size, digest = 0, hashlib.sha256()
        for chunk in chunks:
            data = chunk.encode()
            head.append(data)
            size += len(data)
            if size > self.settings.threshold:
                break
        else:
            if inline_below:
                return None
        cap = self.settings.max_bytes
        if size > cap:
            raise ResultTooLarge(
                f"task {task_name!r}: its result is over {size:,} bytes, more than"
                f" the cap of {cap:,} bytes (ORCHESTRION_RESULTS_MAX_BYTES)"
            )
        fd, tmp = tempfile.mkstemp(dir=self.objects.staging_dir(), suffix=".part")
        path = Path(tmp)
        try:
            with os.fdopen(fd, "wb", buffering=1024 * 1024) as out:
                for data in head:
                    digest.update(data)
                    out.write(data)
                head.clear()
                for chunk in chunks:
                    data = chunk.encode()
                    size += len(data)
                    if size > cap:
                        raise ResultTooLarge(
                            f"task {task_name!r}: its result is over {size:,} bytes, more than"
                            f" the cap of {cap:,} bytes (ORCHESTRION_RESULTS_MAX_BYTES)"
                        )
                    digest.update(data)
                    out.write(data)
            uri = self.objects.put_file(path, name)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return ObjectRef(uri=uri, size=size, sha256=digest.hexdigest())

    def put_file(self, source: Path, task_name: str, media_type: str) -> ObjectRef:
        """Copy a file (a file artifact) into the store, streamed and hashed."""

        def blocks() -> Iterator[bytes]:
            with source.open("rb") as f:
                while block := f.read(1024 * 1024):
                    yield block

        fd, tmp = tempfile.mkstemp(dir=self.objects.staging_dir(), suffix=".part")
        path = Path(tmp)
        try:
            digest, size = hashlib.sha256(), 0
            with os.fdopen(fd, "wb") as out:
                for block in blocks():
                    size += len(block)
                    if size > self.settings.max_bytes:
                        raise ResultTooLarge(
                            f"task {task_name!r}: file {source.name!r} is over"
                            f" {self.settings.max_bytes:,} bytes, the cap"
                        )
                    digest.update(block)
                    out.write(block)
            uri = self.objects.put_file(path, source.name)
        except BaseException:
            path.unlink(missing_ok=True)
            raise
        return ObjectRef(uri=uri, size=size, sha256=digest.hexdigest(), media_type=media_type)

    # ---------------------------------------------------------------- reading

    def has_refs(self, upstream: Mapping[str, Any]) -> bool:
        """Whether any upstream result is stored (cheap: most results are not one-key
        dicts)."""
        return any(ObjectRef.of(v) is not None for v in upstream.values())

    def values(self, upstream: Mapping[str, Any]) -> dict[str, Any]:
        """The upstream results with every stored one read back (for Python tasks)."""
        out = dict(upstream)
        for name, value in upstream.items():
            ref = ObjectRef.of(value)
            if ref is not None:
                with self.objects.open(ref.uri) as stream:
                    # Decoded before parsing, so the bytes are gone by then: the peak is
                    # the text and the value, not the bytes, the text and the value.
                    text = stream.read().decode("utf-8")
                out[name] = json.loads(text)
                del text
        return out

    def paths(self, upstream: Mapping[str, Any], scratch: Path) -> dict[str, Any]:
        """The upstream results with every stored one replaced by a local file's path (for
        shell, container and other tasks that take files)."""
        out = dict(upstream)
        for name, value in upstream.items():
            ref = ObjectRef.of(value)
            if ref is not None:
                out[name] = str(self.objects.local_path(ref.uri, scratch / name))
        return out


def _estimate(value: Any, limit: int) -> int | None:
    """An upper bound of `value`'s encoded size, or None once it might pass `limit` (or the
    walk grows long): the hot path's only cost. Scalars inside a container are counted in
    its own loop (`_members`), not pushed: a list of numbers costs one pass over it."""
    total, seen, stack = 0, 0, [value]
    while stack:
        item = stack.pop()
        kind = type(item)
        if kind is dict:
            seen += len(item)
            total += 2 + 8 * len(item) + _keys_size(item) + _members(item.values(), stack)
        elif kind is list or kind is tuple:
            seen += len(item)
            total += 2 + 3 * len(item) + _members(item, stack)
        elif kind is str:
            total += 6 * len(item) + 2  # \u escapes at worst
        elif kind is int:
            total += 24 + item.bit_length() // 3
        elif kind in _SMALL:
            total += 24
        elif isinstance(item, dict | list | tuple | str | int):
            return None  # a subclass: the streaming path takes it, without a copy
        else:
            total += 64  # the encoder refuses it
        if total > limit or seen > _WALK:
            return None
    return total


def _keys_size(item: dict[Any, Any]) -> int:
    return sum(6 * len(k) if type(k) is str else 32 for k in item)


def _members(values: Iterable[Any], stack: list[Any]) -> int:
    """The size of the strings and scalars among `values`; the rest go on `stack`."""
    total = 0
    for v in values:
        kind = type(v)
        if kind is str:
            total += 6 * len(v)
        elif kind is int:
            total += 24 + v.bit_length() // 3
        elif kind in _SMALL:
            total += 24
        else:
            stack.append(v)
    return total


def _chunks(value: Any, active: set[int]) -> Iterator[str]:
    """`value`'s canonical JSON (as `jsontext.dumps`) in pieces, never one piece the
    size of a large string or container."""
    if isinstance(value, str):
        yield from _string(value)
        return
    if isinstance(value, _SCALARS) or _estimate(value, _PIECE) is not None:
        yield _ENCODE(value)
        return
    if id(value) in active:
        raise ValueError("Circular reference detected")
    active.add(id(value))
    if isinstance(value, dict):
        yield "{"
        for i, (k, v) in enumerate(value.items()):
            yield ("," if i else "") + _ENCODE(_key(k)) + ":"
            yield from _chunks(v, active)
        yield "}"
    elif isinstance(value, list | tuple):
        yield "["
        for i, v in enumerate(value):
            if i:
                yield ","
            yield from _chunks(v, active)
        yield "]"
    else:
        yield _ENCODE(value)  # raises the encoder's own TypeError
    active.discard(id(value))


def _string(value: str) -> Iterator[str]:
    if len(value) <= _SLICE:
        yield _ENCODE(value)
        return
    yield '"'
    for start in range(0, len(value), _SLICE):
        yield _ENCODE(value[start : start + _SLICE])[1:-1]
    yield '"'


def _key(k: Any) -> str:
    """A dict key as `json` converts it."""
    if isinstance(k, str):
        return k
    if isinstance(k, bool | int | float) or k is None:
        return _ENCODE(k)
    raise TypeError(f"keys must be str, int, float, bool or None, not {type(k).__name__}")
