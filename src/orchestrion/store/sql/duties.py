"""The scheduler's bookkeeping, shared by every dialect: named cursors over the event
history, and the leases that keep two schedulers from doing the same duty at once.

Each function runs inside the caller's one write transaction (`Advance`). A lease only
spares work: exactly once rests on the unique keys of fires and events
(`trigger_verbs.py`), never on who holds a duty.
"""

from __future__ import annotations

from orchestrion.store.sql.advance import Advance
from orchestrion.store.sql.queries import Q

__all__ = ["acquire_lease", "release_lease", "renew_lease", "set_cursor"]


def set_cursor(adv: Advance, name: str, position: int) -> None:
    """Move a reader's position in the history forward (never back)."""
    adv.tx.execute(Q.set_cursor, (name, position, adv.now))


# --------------------------------------------------------------------------- leases


def acquire_lease(adv: Advance, name: str, holder: str, ttl: float) -> int | None:
    """Take the lease if it is free or expired, or extend it for its holder; its epoch (a
    new one whenever the holder changes or the lease had lapsed), or None if held."""
    row = adv.tx.execute(
        Q.acquire_lease, (name, holder, adv.now + ttl, adv.now, adv.now)
    ).fetchone()
    return None if row is None else int(row["epoch"])


def renew_lease(adv: Advance, name: str, holder: str, epoch: int, ttl: float) -> bool:
    """Extend a lease still held under `epoch`; False if it lapsed or changed hands."""
    cur = adv.tx.execute(Q.renew_lease, (adv.now + ttl, name, holder, epoch, adv.now))
    return bool(cur.rowcount == 1)


def release_lease(adv: Advance, name: str, holder: str, epoch: int) -> None:
    """Let the next scheduler take the lease at once (a graceful shutdown)."""
    adv.tx.execute(Q.release_lease, (name, holder, epoch))
