"""Settings, read once at the edge (CLI) and passed down; nothing reads the environment later."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["DEFAULT_DATABASE_URL", "Settings"]

DEFAULT_DATABASE_URL = "sqlite:///.orchestrion/orchestrion.db"


@dataclass(frozen=True, kw_only=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    concurrency: int = 8
    lease_seconds: float = 30.0
    heartbeat_every: float = 2.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, db: str | None = None) -> Settings:
        """`db` (a ``--db`` flag) wins over ``ORCHESTRION_DATABASE_URL``, which wins over the
        default. A bare path is taken as a SQLite file. ``ORCHESTRION_LEASE_SECONDS`` and
        ``ORCHESTRION_HEARTBEAT_SECONDS`` tune failure detection (defaults 30 and 2)."""
        env = os.environ if env is None else env
        url = db or env.get("ORCHESTRION_DATABASE_URL") or DEFAULT_DATABASE_URL
        if "://" not in url:
            url = f"sqlite:///{url}"
        return cls(
            database_url=url,
            concurrency=int(env.get("ORCHESTRION_CONCURRENCY", "8")),
            lease_seconds=float(env.get("ORCHESTRION_LEASE_SECONDS", "30")),
            heartbeat_every=float(env.get("ORCHESTRION_HEARTBEAT_SECONDS", "2")),
        )
