"""Where large results and file artifacts live: an object store beside the database.

A result whose JSON encoding is over the threshold (``ORCHESTRION_RESULTS_THRESHOLD``,
256 KiB by default) is written here by the worker that produced it, and the database keeps
only a small `ObjectRef` (its URI, size and SHA-256) in the task run's result. Two stores:

* ``file:///path`` (the default: a ``results`` folder beside the SQLite file), for one
  machine or a shared file system;
* ``s3://bucket/prefix`` (`orchestrion.store.objects_s3`, boto3, imported only then), for
  many machines; ``ORCHESTRION_S3_ENDPOINT_URL`` points it at any S3-compatible server.

Objects are written once under a fresh key and never changed; retention deletes them with
their runs (`orchestrion.triggers.retention`).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, Protocol
from urllib.parse import unquote, urlparse

import msgspec

from orchestrion.errors import OrchestrionError
from orchestrion.store.object_keys import new_key

__all__ = [
    "REF_KEY",
    "LocalObjects",
    "ObjectRef",
    "ObjectStore",
    "ObjectsSettings",
    "open_objects",
]

#: The one key of the JSON object a task run's result holds when its value is stored here.
REF_KEY = "$orchestrion_ref"

KIB = 1024
#: Results whose JSON encoding is larger go to the object store.
DEFAULT_THRESHOLD = 256 * KIB
#: No result may be larger (the task fails with a message naming it, its size and the cap).
DEFAULT_MAX_BYTES = 5 * KIB**3


class ObjectRef(msgspec.Struct, frozen=True, kw_only=True):
    """A stored object: where it is, how large, its SHA-256 (hex)."""

    uri: str
    size: int
    sha256: str
    #: ``application/json`` for a result; a file artifact's guessed type otherwise.
    media_type: str = "application/json"

    def as_result(self) -> dict[str, Any]:
        """The small JSON value the database keeps in place of the result."""
        return {
            REF_KEY: {
                "uri": self.uri,
                "size": self.size,
                "sha256": self.sha256,
                "media_type": self.media_type,
            }
        }

    @classmethod
    def of(cls, value: Any) -> ObjectRef | None:
        """The reference `value` holds, or None if it is an ordinary value."""
        if type(value) is not dict or len(value) != 1 or REF_KEY not in value:
            return None
        inner = value[REF_KEY]
        if not isinstance(inner, dict):
            return None
        try:
            return cls(
                uri=str(inner["uri"]),
                size=int(inner["size"]),
                sha256=str(inner["sha256"]),
                media_type=str(inner.get("media_type", "application/json")),
            )
        except (KeyError, TypeError, ValueError):
            return None


class ObjectsSettings(msgspec.Struct, frozen=True, kw_only=True):
    """Where objects go and the sizes that decide it (`orchestrion.app.settings`)."""

    #: ``file:///...`` or ``s3://bucket/prefix``; None: ``results`` beside the SQLite file
    #: (``.orchestrion/results`` for another database).
    url: str | None = None
    threshold: int = DEFAULT_THRESHOLD
    max_bytes: int = DEFAULT_MAX_BYTES
    #: An S3-compatible server's URL (MinIO, Ceph, moto); None: AWS itself.
    s3_endpoint: str | None = None

    def resolved_url(self, database_url: str) -> str:
        """The store's URL, defaulting beside a SQLite database file."""
        if self.url:
            return self.url if "://" in self.url else Path(self.url).resolve().as_uri()
        if database_url.startswith("sqlite:///") and ":memory:" not in database_url:
            folder = Path(database_url.removeprefix("sqlite:///")).resolve().parent
            return (folder / "results").as_uri()
        return Path(".orchestrion/results").resolve().as_uri()


class ObjectStore(Protocol):
    """Objects written once under a fresh key, read back as streams, deleted by URI."""

    #: The store's base URI (``file:///...``, ``s3://bucket/prefix``).
    url: str

    def staging_dir(self) -> Path:
        """A folder for files being written; on the store's own file system when it has
        one, so that `put_file` is a rename."""
        ...

    def put_file(self, path: Path, name: str) -> str:
        """Move (or upload, then delete) the file at `path` into the store under a new key
        ending in `name`; its URI."""
        ...

    def open(self, uri: str) -> IO[bytes]:
        """The object at `uri` as a binary stream (not read into memory)."""
        ...

    def local_path(self, uri: str, scratch: Path) -> Path:
        """A local file with the object's content: the object itself for a file store, a
        copy downloaded (streamed) into `scratch` otherwise."""
        ...

    def delete(self, uris: Iterable[str]) -> int:
        """Delete the objects of `uris` that are this store's; how many were there."""
        ...


class LocalObjects:
    """Objects as files under one folder (a local disk or a shared file system)."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")
        self.root = Path(unquote(urlparse(self.url).path))

    def staging_dir(self) -> Path:
        folder = self.root / ".staging"
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    def put_file(self, path: Path, name: str) -> str:
        key = new_key(name)
        target = self.root / key
        target.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.replace(path, target)
        except OSError:  # another file system: copy in streamed blocks
            shutil.move(str(path), target)
        return f"{self.url}/{key}"

    def open(self, uri: str) -> IO[bytes]:
        return self._path(uri).open("rb")

    def local_path(self, uri: str, scratch: Path) -> Path:
        return self._path(uri)

    def delete(self, uris: Iterable[str]) -> int:
        gone = 0
        for uri in uris:
            if not uri.startswith(self.url + "/"):
                continue
            try:
                self._path(uri).unlink()
                gone += 1
            except FileNotFoundError:
                pass
        return gone

    def _path(self, uri: str) -> Path:
        if not uri.startswith(self.url + "/"):
            raise OrchestrionError(f"object {uri!r} is not in the result store {self.url!r}")
        key = uri[len(self.url) + 1 :]
        if ".." in key.split("/"):
            raise OrchestrionError(f"object {uri!r} is not in the result store {self.url!r}")
        return self.root / key


def open_objects(settings: ObjectsSettings, database_url: str) -> ObjectStore:
    """The object store `settings` name."""
    url = settings.resolved_url(database_url)
    scheme = urlparse(url).scheme
    if scheme == "file":
        return LocalObjects(url)
    if scheme == "s3":
        from orchestrion.store.objects_s3 import S3Objects

        return S3Objects(url, endpoint=settings.s3_endpoint)
    raise OrchestrionError(
        f"ORCHESTRION_RESULTS_URL: {url!r} is neither file:///path nor s3://bucket/prefix"
    )
