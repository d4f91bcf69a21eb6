"""The S3 object store (any S3-compatible server): boto3, imported only when chosen.

Credentials come the way boto3 finds them (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``,
a profile, an instance role); ``ORCHESTRION_S3_ENDPOINT_URL`` names a non-AWS server.
Uploads and downloads are boto3's managed transfers: multipart, streamed from and to a
file, never a whole object in memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import IO, Any, cast
from urllib.parse import urlparse

from orchestrion.errors import OrchestrionError
from orchestrion.store.object_keys import new_key

__all__ = ["S3Objects"]

_DELETE_BATCH = 1000  # S3's DeleteObjects limit


class S3Objects:
    """Objects in one bucket, under a prefix."""

    def __init__(self, url: str, *, endpoint: str | None = None) -> None:
        try:
            import boto3
        except ImportError:
            raise OrchestrionError(
                "ORCHESTRION_RESULTS_URL names S3, but boto3 is not installed:"
                " pip install 'orchestrion[s3]'"
            ) from None
        parsed = urlparse(url)
        if not parsed.netloc:
            raise OrchestrionError(f"ORCHESTRION_RESULTS_URL: {url!r} names no bucket")
        self.url = url.rstrip("/")
        self.bucket = parsed.netloc
        self.prefix = parsed.path.strip("/")
        self._client: Any = boto3.client("s3", endpoint_url=endpoint)

    def staging_dir(self) -> Path:
        import tempfile

        return Path(tempfile.gettempdir())

    def put_file(self, path: Path, name: str) -> str:
        key = "/".join(p for p in (self.prefix, new_key(name)) if p)
        try:
            self._client.upload_file(str(path), self.bucket, key)
        finally:
            path.unlink(missing_ok=True)
        return f"s3://{self.bucket}/{key}"

    def open(self, uri: str) -> IO[bytes]:
        found = self._client.get_object(Bucket=self.bucket, Key=self._key(uri))
        return cast(IO[bytes], found["Body"])

    def local_path(self, uri: str, scratch: Path) -> Path:
        scratch.mkdir(parents=True, exist_ok=True)
        target = scratch / self._key(uri).rsplit("/", 1)[-1]
        self._client.download_file(self.bucket, self._key(uri), str(target))
        return target

    def delete(self, uris: Iterable[str]) -> int:
        keys = [self._key(u) for u in uris if u.startswith(f"s3://{self.bucket}/")]
        gone = 0
        for start in range(0, len(keys), _DELETE_BATCH):
            batch = [{"Key": k} for k in keys[start : start + _DELETE_BATCH]]
            answer = self._client.delete_objects(
                Bucket=self.bucket, Delete={"Objects": batch, "Quiet": True}
            )
            gone += len(batch) - len(answer.get("Errors", []))
        return gone

    def _key(self, uri: str) -> str:
        head = f"s3://{self.bucket}/"
        if not uri.startswith(head):
            raise OrchestrionError(f"object {uri!r} is not in the result store {self.url!r}")
        return uri[len(head) :]
