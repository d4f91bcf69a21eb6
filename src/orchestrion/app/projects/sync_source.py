"""A sync source's checks: a name, a repository URL without a credential in it, a branch
or a tag, a relative project path, and a secret by ``namespace/name`` reference."""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import urlsplit

from orchestrion.errors import ParameterError
from orchestrion.spec.rules import NAME_PATTERN, parse_ref
from orchestrion.store.project_records import SyncSource

__all__ = ["checked_source"]

_REF = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._/\-]{0,199}$")


def checked_source(
    name: str,
    repo: str,
    branch: str | None,
    tag: str | None,
    project_path: str,
    secret: str | None,
) -> SyncSource:
    """The source, or `ParameterError` naming what is wrong."""
    if not re.fullmatch(NAME_PATTERN, name):
        raise ParameterError(f"bad sync source name {name[:100]!r}")
    if not repo or len(repo) > 2000 or repo.startswith("-"):
        raise ParameterError("the repository is a URL or path of 1 to 2000 characters")
    parts = urlsplit(repo)
    if parts.password is not None:
        raise ParameterError("the repository URL holds a password: put it in a secret (--secret)")
    if parts.scheme in ("http", "https") and parts.username is not None:
        # ``https://<token>@host/...`` is how some hosts take a token: never kept or shown.
        raise ParameterError(
            "the repository URL holds a user name (a token?): put the credential in a secret"
            " (--secret)"
        )
    if (branch is None) == (tag is None):
        raise ParameterError("give a branch or a tag (one of them)")
    ref = branch if branch is not None else tag
    assert ref is not None
    if not _REF.fullmatch(ref) or ".." in ref:
        raise ParameterError(f"bad branch or tag {ref[:100]!r}")
    path = PurePosixPath(project_path)
    if not project_path or path.is_absolute() or ".." in path.parts:
        raise ParameterError("the project path is relative to the repository, without '..'")
    if secret is not None:
        parse_ref(secret, "secret")
    return SyncSource(
        name=name,
        repo=repo,
        ref_kind="branch" if branch is not None else "tag",
        ref=ref,
        project_path=project_path,
        secret=secret,
    )
