"""`PolicyStore`: the store role of admission policies' versions. Every write is one
transaction with its event row (``policy.put`` / ``policy.deleted``)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

from orchestrion.store.policy_records import PolicyRecord

__all__ = ["PolicyStore"]


class PolicyStore(Protocol):
    """Policies, versioned: the newest version of each name is the one in force, unless it
    records a deletion."""

    def current_policies(self) -> list[PolicyRecord]:
        """The policies in force (newest version of each name, not deleted), by name."""
        ...

    def policy_history(self, name: str) -> list[PolicyRecord]:
        """Every version of one policy, newest first (empty for an unknown name)."""
        ...

    def put_policy(
        self, name: str, document: Mapping[str, Any], *, by: str | None, now: float
    ) -> PolicyRecord:
        """Write `document` as the next version of `name`, unless the policy in force has
        the same content (then its record, unchanged)."""
        ...

    def delete_policy(self, name: str, *, by: str | None, now: float) -> bool:
        """Record the deletion of `name` as a version; False when none is in force."""
        ...
