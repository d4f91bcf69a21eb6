"""Appending one audit record: masked, trimmed, timestamped.

Apart from `orchestrion.app.accounts` so that a command auditing its own action (every
mutating App method a CLI user calls) does not import what signing in needs (argon2, the
token code): `orchestrion run` writes an audit record and never checks a password.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrion.auth.masking import Masker
from orchestrion.auth.redaction import printable, redact
from orchestrion.clock import Clock
from orchestrion.store.accounts import AccountStore
from orchestrion.store.records import AuditEntry

__all__ = ["append_audit"]


def append_audit(
    accounts: AccountStore,
    clock: Clock,
    *,
    actor: str,
    actor_kind: str,
    action: str,
    object: str,
    namespace: str | None = None,
    params: Mapping[str, Any] | None = None,
    outcome: str = "ok",
    detail: str | None = None,
    request_id: str | None = None,
    source: str | None = None,
    known: Masker | None = None,
) -> int:
    """Append one audit record. Secrets never land in it: ``params`` keys that name a
    credential are masked, and every `known` secret's value is masked in every text field,
    before anything is cut to size (a cut through a value would hide it from the mask)."""
    known = known if known is not None else Masker()
    return accounts.append_audit(
        AuditEntry(
            at=clock.now(),
            actor=printable(known.mask(actor))[:200],
            actor_kind=actor_kind,
            action=printable(known.mask(action))[:200],
            object=printable(known.mask(object))[:500],
            namespace=printable(namespace) if namespace else None,
            params=redact(known.mask_data(dict(params or {}))),
            outcome=outcome,
            detail=printable(known.mask(detail))[:1000] if detail else None,
            request_id=request_id,
            source=source,
        )
    )
