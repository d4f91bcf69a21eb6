"""The S3 result store against a real S3-compatible server on loopback (moto's server mode,
started here as a process): ``orchestrion run`` stores a large result in the bucket and the
task downstream reads it back intact; the object's bytes match the reference's SHA-256;
retention deletes the object with its run."""

from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrion.store.objects import ObjectRef, ObjectsSettings
from tests.helpers import by_name, db_arg, make_app

BUCKET = "orchestrion-results"

FLOW = """\
from orchestrion import task, workflow


@task
def produce(size: int) -> list:
    return [f"item-{i}" for i in range(size)]


@task
def count(items: list) -> dict:
    return {"n": len(items), "last": items[-1]}


@workflow
def s3flow(size: int = 100_000):
    count(produce(size))
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def s3(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """A moto S3 server on a free loopback port, with the bucket made; its environment."""
    port = _free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    env = {
        "ORCHESTRION_RESULTS_URL": f"s3://{BUCKET}/runs",
        "ORCHESTRION_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
                break
            except OSError:
                assert proc.poll() is None and time.monotonic() < deadline, log.read_text()
                time.sleep(0.1)
        _client(env).create_bucket(Bucket=BUCKET)
        yield env
    finally:
        proc.terminate()
        proc.wait(10)


def _client(env: dict[str, str]) -> Any:
    import boto3

    return boto3.client(
        "s3",
        endpoint_url=env["ORCHESTRION_S3_ENDPOINT_URL"],
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
        region_name=env["AWS_DEFAULT_REGION"],
    )


def _keys(env: dict[str, str]) -> list[str]:
    listed = _client(env).list_objects_v2(Bucket=BUCKET)
    return [o["Key"] for o in listed.get("Contents", [])]


def test_a_large_result_goes_to_s3_and_back(
    s3: dict[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in s3.items():  # boto3 in this process (the App's retention) reads them
        monkeypatch.setenv(name, value)
    (tmp_path / "s3flow.py").write_text(FLOW)
    env = {**os.environ, **s3, "ORCHESTRION_RESULTS_THRESHOLD": "65536"}
    env.pop("ORCHESTRION_DATABASE_URL", None)
    args = ["run", "s3flow.py", "--db", db_arg(tmp_path / "app.db"), "-p", "size=100000"]
    done = subprocess.run(
        [sys.executable, "-m", "orchestrion.cli.main", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr

    settings = ObjectsSettings(
        url=s3["ORCHESTRION_RESULTS_URL"],
        threshold=65536,
        s3_endpoint=s3["ORCHESTRION_S3_ENDPOINT_URL"],
    )
    with make_app(tmp_path, results=settings) as app:
        [run] = app.runs.list_runs()
        tasks = by_name(app.runs.task_runs(run.id))
        ref = ObjectRef.of(tasks["produce"].result)
        assert ref is not None and ref.uri.startswith(f"s3://{BUCKET}/runs/")
        assert tasks["count"].result == {"n": 100_000, "last": "item-99999"}
        key = ref.uri.removeprefix(f"s3://{BUCKET}/")
        assert _keys(s3) == [key]
        body = _client(s3).get_object(Bucket=BUCKET, Key=key)["Body"].read()
        assert len(body) == ref.size and hashlib.sha256(body).hexdigest() == ref.sha256
        assert json.loads(body)[:2] == ["item-0", "item-1"]
        with app.outputs.result_content(run.id, tasks["produce"].id)[1] as stream:
            assert hashlib.sha256(stream.read()).hexdigest() == ref.sha256

        time.sleep(0.05)
        assert app.retention.prune(older_than=0.01).counts.runs == 1
        assert _keys(s3) == []
