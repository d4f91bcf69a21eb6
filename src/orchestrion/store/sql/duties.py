"""The scheduler's bookkeeping, shared by every dialect: named cursors over the event
history, and the leases that keep two schedulers from doing the same duty at once.

Each function runs inside the caller's one write transaction (`Advance`). A lease only
spares work: exactly once rests on the unique keys of fires and events
(`trigger_verbs.py`), never on who holds a duty.
"""

from __future__ import annotations

from orchestrion.store.sql.advance import Advance

__all__ = ["acquire_lease", "release_lease", "renew_lease", "set_cursor"]


def set_cursor(adv: Advance, name: str, position: int) -> None:
    adv.tx.execute(
        "INSERT INTO cursors (name, position, updated_at) VALUES (?, ?, ?)"
        " ON CONFLICT (name) DO UPDATE SET position = CASE WHEN excluded.position >"
        " cursors.position THEN excluded.position ELSE cursors.position END,"
        " updated_at = excluded.updated_at",
        (name, position, adv.now),
    )


# --------------------------------------------------------------------------- leases


def acquire_lease(adv: Advance, name: str, holder: str, ttl: float) -> int | None:
    """Take the lease if it is free or expired, or extend it for its holder; its epoch (a
    new one whenever the holder changes or the lease had lapsed), or None if held."""
    row = adv.tx.execute(
        "INSERT INTO leases (name, holder, epoch, expires_at) VALUES (?, ?, 1, ?)"
        " ON CONFLICT (name) DO UPDATE SET"
        " epoch = CASE WHEN leases.holder = excluded.holder AND leases.expires_at > ?"
        " THEN leases.epoch ELSE leases.epoch + 1 END,"
        " holder = excluded.holder, expires_at = excluded.expires_at"
        " WHERE leases.holder = excluded.holder OR leases.expires_at <= ?"
        " RETURNING epoch",
        (name, holder, adv.now + ttl, adv.now, adv.now),
    ).fetchone()
    return None if row is None else int(row["epoch"])


def renew_lease(adv: Advance, name: str, holder: str, epoch: int, ttl: float) -> bool:
    """Extend a lease still held under `epoch`; False if it lapsed or changed hands."""
    cur = adv.tx.execute(
        "UPDATE leases SET expires_at = ? WHERE name = ? AND holder = ? AND epoch = ?"
        " AND expires_at > ?",
        (adv.now + ttl, name, holder, epoch, adv.now),
    )
    return bool(cur.rowcount == 1)


def release_lease(adv: Advance, name: str, holder: str, epoch: int) -> None:
    """Let the next scheduler take the lease at once (a graceful shutdown)."""
    adv.tx.execute(
        "UPDATE leases SET expires_at = 0 WHERE name = ? AND holder = ? AND epoch = ?",
        (name, holder, epoch),
    )
