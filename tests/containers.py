"""The container engine the container-task tests use: Podman with its Docker-compatible API
(issue 15). `.ci/run` sets it up through ``../shared/containers.sh api``, which also builds
the local test image (no registry is reachable here: images are built, never pulled).

A test that needs it fails under ``CI=true`` when it is missing, and is skipped elsewhere
saying how to set it up.
"""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

SOCKET = "/run/podman/podman.sock"
HOST = f"unix://{SOCKET}"
IMAGE = "localhost/orchestrion-test/busybox:1"
HOW = "run ../shared/containers.sh api (installs Podman, builds the test image, serves the API)"


def _problem() -> str | None:
    if shutil.which("podman") is None:
        return "podman is not installed"
    found = subprocess.run(
        ["podman", "image", "exists", IMAGE], capture_output=True, timeout=60, check=False
    )
    if found.returncode != 0:
        return f"the test image {IMAGE} is missing"
    try:
        import docker

        client = docker.DockerClient(base_url=HOST, timeout=10)
        try:
            client.ping()
        finally:
            client.close()
    except Exception as exc:
        return f"the Docker-compatible API does not answer on {HOST} ({exc})"
    return None


def require_podman() -> None:
    """Fail (under CI) or skip unless Podman, the test image and its API are there."""
    problem = _problem()
    if problem is None:
        return
    message = f"{problem}; {HOW}"
    if os.environ.get("CI") == "true":
        pytest.fail(message, pytrace=False)
    pytest.skip(message)


def containers_of(run_id: str, *, running: bool = False) -> list[str]:
    """The names of the containers labelled with the run, per podman: all of them (in any
    state), or the running ones."""
    which = ["--filter", "status=running"] if running else ["-a"]
    out = subprocess.run(
        ["podman", "ps", *which, "--filter", f"label=dev.orchestrion.run={run_id}",
         "--format", "{{.Names}}"],
        capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return [line for line in out.stdout.splitlines() if line.strip()]
