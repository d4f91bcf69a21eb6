"""Git through the ``git`` binary: fetch a branch or tag into a cache, read a commit's
files. No network of our own and no library: the binary does transport and auth.

Credentials come from the secret store by reference and reach only the ``git`` child
process, through its environment: an HTTPS token via ``GIT_ASKPASS`` (a tiny script that
prints an environment variable), an SSH private key via ``GIT_SSH_COMMAND`` (a 0600 file
in a temporary folder removed afterwards). The value never enters a command line, a
log or an error: `GitError` texts are masked with it.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shlex
import stat
import subprocess
import tarfile
import tempfile
from collections.abc import Iterator
from pathlib import Path

from orchestrion.errors import OrchestrionError

__all__ = ["GitError", "Repo", "credentials_env"]

_ASKPASS = """#!/bin/sh
case "$1" in
  Username*) printf '%s\\n' "${ORCHESTRION_GIT_USERNAME:-x-access-token}" ;;
  *) printf '%s\\n' "$ORCHESTRION_GIT_PASSWORD" ;;
esac
"""


class GitError(OrchestrionError):
    """A git command failed (its stderr, masked)."""


@contextlib.contextmanager
def credentials_env(secret: str | None) -> Iterator[dict[str, str]]:
    """The environment that hands `secret` (a token, or an SSH private key) to git."""
    env = {"GIT_TERMINAL_PROMPT": "0"}
    if secret is None:
        yield env
        return
    with tempfile.TemporaryDirectory(prefix="orchestrion-git-") as tmp:
        if secret.lstrip().startswith("-----BEGIN"):
            key = Path(tmp) / "key"
            key.touch(mode=0o600)
            key.write_text(secret if secret.endswith("\n") else secret + "\n")
            env["GIT_SSH_COMMAND"] = (
                f"ssh -i {shlex.quote(str(key))} -o IdentitiesOnly=yes"
                " -o StrictHostKeyChecking=accept-new"
            )
        else:
            askpass = Path(tmp) / "askpass"
            askpass.write_text(_ASKPASS)
            askpass.chmod(0o700)
            env["GIT_ASKPASS"] = str(askpass)
            env["ORCHESTRION_GIT_PASSWORD"] = secret
        yield env


class Repo:
    """A bare cache of one remote repository, under `cache`."""

    def __init__(
        self, url: str, cache: Path, *, git: str = "git", secret: str | None = None
    ) -> None:
        self.url = url
        self.git = git
        self._secret = secret
        self.path = cache / (hashlib.sha256(url.encode()).hexdigest()[:24] + ".git")

    def fetch(self, ref_kind: str, ref: str) -> str:
        """Fetch the branch or tag (history rewrites included: a forced update) and
        return the commit it points to."""
        private_folder(self.path.parent)
        if not self.path.exists():
            self._run("init", "--bare", "--quiet", str(self.path), bare=False)
        local = f"refs/orchestrion/{ref_kind}/{ref}"
        remote = f"refs/heads/{ref}" if ref_kind == "branch" else f"refs/tags/{ref}"
        self._run("fetch", "--quiet", "--force", "--no-tags", "--", self.url, f"+{remote}:{local}")
        return self._run("rev-parse", "--verify", f"{local}^{{commit}}").strip()

    def extract(self, commit: str, into: Path) -> None:
        """Write the commit's files into the folder `into`."""
        data = self._run_bytes("archive", "--format=tar", commit)
        try:
            with tarfile.open(fileobj=io.BytesIO(data)) as archive:
                # The "data" filter refuses links out of the folder, devices, odd modes.
                archive.extractall(into, filter="data")
        except tarfile.TarError as exc:
            raise GitError(f"commit {commit[:12]} cannot be read safely: {exc}") from None

    def _run(self, *args: str, bare: bool = True) -> str:
        return self._run_bytes(*args, bare=bare).decode("utf-8", "replace")

    def _run_bytes(self, *args: str, bare: bool = True) -> bytes:
        prefix = [self.git, f"--git-dir={self.path}"] if bare else [self.git]
        with credentials_env(self._secret) as extra:
            env = {**os.environ, **extra}
            try:
                done = subprocess.run(
                    [*prefix, *args], env=env, capture_output=True, timeout=300, check=False
                )
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise GitError(self._mask(f"git {args[0]}: {exc}")) from None
        if done.returncode != 0:
            err = done.stderr.decode("utf-8", "replace").strip()[-2000:]
            raise GitError(self._mask(f"git {args[0]} failed: {err}"))
        return done.stdout

    def _mask(self, text: str) -> str:
        if self._secret:
            for line in self._secret.splitlines():
                if len(line.strip()) >= 4:
                    text = text.replace(line.strip(), "***")
        return text


def private_folder(path: Path) -> None:
    """Make `path` (mode 0700) or check that it is this user's own, private folder: the
    cache holds private repositories fetched with a secret, and git obeys a config file
    it finds there (``core.sshCommand``), so a folder another user made or can write is
    refused, as is a symbolic link."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode):
        raise GitError(f"the sync cache {path} is not a folder (a link?): refusing to use it")
    if info.st_uid != os.getuid():
        raise GitError(f"the sync cache {path} belongs to another user: refusing to use it")
    if info.st_mode & 0o077:
        path.chmod(0o700)  # ours, made with a looser umask before: close it
