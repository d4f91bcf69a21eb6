"""Records of declarative projects and Git sync (issue 19): applies, sync sources and
what each look at a source found."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrion.store.record import Record, field

__all__ = ["APPLY_OUTCOMES", "ProjectApply", "SyncResult", "SyncSource"]

#: How an apply (or a sync of one commit) ended: changed something, had nothing to change,
#: or changed nothing because it failed.
APPLY_OUTCOMES = ("applied", "unchanged", "failed")


class ProjectApply(Record, frozen=True, kw_only=True):
    """One apply of a namespace's project: who, when, from which commit, what changed."""

    id: int = 0
    namespace: str
    project: str
    actor: str
    #: The Git commit applied (sync, or ``apply --commit``); None for a plain file.
    commit_sha: str | None = None
    #: The project file or the sync source it came from.
    source: str | None = None
    outcome: str
    #: Counts of ``create``, ``update`` and ``delete``, and the changes' one-line texts.
    summary: Mapping[str, Any] = field(default_factory=dict)
    error: str | None = None
    created_at: float = 0.0


class SyncSource(Record, frozen=True, kw_only=True):
    """A Git repository and branch (or tag) whose project file the sync duty applies."""

    name: str
    repo: str
    #: ``branch`` or ``tag``.
    ref_kind: str
    ref: str
    #: The project file's path inside the repository.
    project_path: str
    #: ``namespace/name`` of the secret holding an HTTPS token or an SSH private key.
    secret: str | None = None
    created_at: float = 0.0
    updated_at: float = 0.0


class SyncResult(Record, frozen=True, kw_only=True):
    """What one look at a source found: a commit, and what became of it."""

    id: int = 0
    source: str
    commit_sha: str
    outcome: str
    error: str | None = None
    summary: Mapping[str, Any] = field(default_factory=dict)
    created_at: float = 0.0
