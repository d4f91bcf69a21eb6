"""Settings, read once at the edge (CLI) and passed down; nothing reads the environment later.

They live beside `App`, not in the kernel: reading them builds auth's `KeyRing` (the master
keys) and `AllowList` (where HTTP tasks may go), so they sit above `orchestrion.auth`.
"""

from __future__ import annotations

import ipaddress
import os
from collections.abc import Iterable, Mapping

import msgspec

from orchestrion.auth.secret_box import DEV_MODE_ENV, KEY_ENV, KEY_FILE_ENV, KeyRing, load_key_ring
from orchestrion.auth.ssrf import AllowList
from orchestrion.errors import OrchestrionError
from orchestrion.store.objects import ObjectsSettings
from orchestrion.types import NO_RICH_REPR, repr_hiding
from orchestrion.worker.containers.settings import ContainerSettings

__all__ = [
    "CONTAINER_HOST_ENV",
    "CONTAINER_WORK_DIR_ENV",
    "DEFAULT_DATABASE_URL",
    "HTTP_ALLOW_ENV",
    "METRICS_SCRAPERS_ENV",
    "TRUSTED_PROXIES_ENV",
    "Settings",
    "networks",
    "trusted_proxies",
]

#: Hosts (``internal.example``, ``*.corp.example``) and networks (``10.0.0.0/8``) that HTTP
#: tasks may reach although they are not public: comma-separated, set by an admin.
HTTP_ALLOW_ENV = "ORCHESTRION_HTTP_ALLOW"

#: Addresses and networks (``10.0.0.5``, ``10.0.0.0/24``, ``::1``) of the reverse proxies whose
#: ``X-Forwarded-For``/``-Proto`` headers the server believes: comma-separated, default none.
TRUSTED_PROXIES_ENV = "ORCHESTRION_TRUSTED_PROXIES"
METRICS_SCRAPERS_ENV = "ORCHESTRION_METRICS_SCRAPERS"

DEFAULT_DATABASE_URL = "sqlite:///.orchestrion/orchestrion.db"

#: The container engine's API (``unix:///run/podman/podman.sock``, ``tcp://host:2376``) that
#: workers run container tasks on; unset: ``DOCKER_HOST``, else Docker's default socket.
CONTAINER_HOST_ENV = "ORCHESTRION_CONTAINER_HOST"
#: Where workers make the per-attempt work folders they mount into containers.
CONTAINER_WORK_DIR_ENV = "ORCHESTRION_CONTAINER_WORK_DIR"


class Settings(msgspec.Struct, frozen=True, kw_only=True):
    """How an App and the processes built on it are configured (see `from_env`)."""

    database_url: str = DEFAULT_DATABASE_URL
    #: ``ORCHESTRION_CONCURRENCY``; None: by executor (`orchestrion.worker.sizing`).
    concurrency: int | None = None
    lease_seconds: float = 30.0
    heartbeat_every: float = 2.0
    #: ``ORCHESTRION_STORE_PATIENCE``: how long ``orchestrion run`` lets the database refuse
    #: writes (a full disk) before it stops with a message saying how to resume.
    store_patience: float = 60.0
    #: ``ORCHESTRION_SYNC_SECONDS``: how often the scheduler's ``sync`` duty looks at the
    #: configured Git sources (docs/projects.md); at least 1 (each look runs ``git fetch``).
    sync_every: float = 30.0
    #: The master keys that seal secrets; None when none is configured (secrets then
    #: cannot be set or used, and the server and workers refuse to start).
    key_ring: KeyRing | None = None
    #: ``ORCHESTRION_DEV_MODE=1``: an insecure built-in master key, loud warnings.
    dev_mode: bool = False
    #: Non-public destinations HTTP tasks may reach (``ORCHESTRION_HTTP_ALLOW``).
    http_allow: AllowList = msgspec.field(default_factory=AllowList)
    #: Proxies whose forwarded headers name the client (``ORCHESTRION_TRUSTED_PROXIES``,
    #: ``server --trusted-proxy``); empty: the TCP peer is the client, whatever it sends.
    trusted_proxies: tuple[str, ...] = ()
    #: Addresses that may scrape ``GET /metrics`` without a token
    #: (``ORCHESTRION_METRICS_SCRAPERS``); empty: a token is needed (docs/operating.md).
    metrics_scrapers: tuple[str, ...] = ()
    #: Where container tasks run (``ORCHESTRION_CONTAINER_HOST``, ``DOCKER_HOST``) and their
    #: work folders (``ORCHESTRION_CONTAINER_WORK_DIR``).
    containers: ContainerSettings = msgspec.field(default_factory=ContainerSettings)
    #: Where large results and file artifacts go, and the sizes that decide it
    #: (``ORCHESTRION_RESULTS_*``, ``ORCHESTRION_S3_ENDPOINT_URL``; docs/results.md).
    results: ObjectsSettings = msgspec.field(default_factory=ObjectsSettings)
    #: Where schedulers post OpenLineage run events (``ORCHESTRION_OPENLINEAGE_URL``,
    #: e.g. ``http://marquez:5000/api/v1/lineage``); None: none are sent.
    openlineage_url: str | None = None

    def __repr__(self) -> str:
        return repr_hiding(self, "key_ring")

    __rich_repr__ = NO_RICH_REPR

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, *, db: str | None = None) -> Settings:
        """`db` (a ``--db`` flag) wins over ``ORCHESTRION_DATABASE_URL``, which wins over the
        default. A bare path is taken as a SQLite file. ``ORCHESTRION_LEASE_SECONDS`` and
        ``ORCHESTRION_HEARTBEAT_SECONDS`` tune failure detection (defaults 30 and 2).

        The master key comes from ``ORCHESTRION_MASTER_KEY`` or ``..._FILE``; a bad one is an
        error here, a missing one only where secrets are needed (`App.secrets.key_ring`, and the
        server and worker commands, which refuse to start without one)."""
        env = os.environ if env is None else env
        dev_mode = env.get(DEV_MODE_ENV, "").strip().lower() in ("1", "true", "yes")
        configured = env.get(KEY_ENV, "").strip() or env.get(KEY_FILE_ENV, "").strip()
        allow = [e for e in env.get(HTTP_ALLOW_ENV, "").split(",") if e.strip()]
        url = db or env.get("ORCHESTRION_DATABASE_URL") or DEFAULT_DATABASE_URL
        if "://" not in url:
            url = f"sqlite:///{url}"
        return cls(
            database_url=url,
            concurrency=_concurrency(env.get("ORCHESTRION_CONCURRENCY", "")),
            lease_seconds=float(env.get("ORCHESTRION_LEASE_SECONDS", "30")),
            heartbeat_every=float(env.get("ORCHESTRION_HEARTBEAT_SECONDS", "2")),
            store_patience=_seconds(env, "ORCHESTRION_STORE_PATIENCE", 60.0),
            sync_every=_seconds(env, "ORCHESTRION_SYNC_SECONDS", 30.0, least=1.0),
            key_ring=load_key_ring(env) if configured or dev_mode else None,
            dev_mode=dev_mode,
            http_allow=_allow_list(allow),
            trusted_proxies=trusted_proxies(env.get(TRUSTED_PROXIES_ENV, "").split(",")),
            metrics_scrapers=networks(
                METRICS_SCRAPERS_ENV, env.get(METRICS_SCRAPERS_ENV, "").split(",")
            ),
            containers=_containers(env),
            results=_results(env),
            openlineage_url=env.get("ORCHESTRION_OPENLINEAGE_URL", "").strip() or None,
        )


def _results(env: Mapping[str, str]) -> ObjectsSettings:
    default = ObjectsSettings()
    return ObjectsSettings(
        url=env.get("ORCHESTRION_RESULTS_URL", "").strip() or None,
        threshold=_bytes(env, "ORCHESTRION_RESULTS_THRESHOLD", default.threshold),
        max_bytes=_bytes(env, "ORCHESTRION_RESULTS_MAX_BYTES", default.max_bytes),
        s3_endpoint=env.get("ORCHESTRION_S3_ENDPOINT_URL", "").strip() or None,
    )


def _bytes(env: Mapping[str, str], name: str, default: int) -> int:
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = int(text)
    except ValueError:
        value = -1
    if value < 0:
        raise OrchestrionError(f"{name} must be a whole number of bytes, not {text!r}")
    return value


def _containers(env: Mapping[str, str]) -> ContainerSettings:
    host = env.get(CONTAINER_HOST_ENV, "").strip() or env.get("DOCKER_HOST", "").strip()
    work = env.get(CONTAINER_WORK_DIR_ENV, "").strip()
    default = ContainerSettings()
    return ContainerSettings(host=host or None, work_root=work or default.work_root)


def trusted_proxies(entries: Iterable[str]) -> tuple[str, ...]:
    """Proxy addresses or networks, normalised (``10.0.0.0/24``, ``::1/128``); blanks are
    skipped. A host name or ``*`` is refused: trust goes to addresses the operator names,
    never to whoever connects."""
    return networks(TRUSTED_PROXIES_ENV, entries)


def networks(setting: str, entries: Iterable[str]) -> tuple[str, ...]:
    """Addresses or networks named by `setting`, normalised; blanks skipped, a host name
    or ``*`` refused (an error naming the setting)."""
    out: list[str] = []
    for entry in (e.strip() for e in entries):
        if not entry:
            continue
        try:
            out.append(str(ipaddress.ip_network(entry, strict=False)))
        except ValueError:
            raise OrchestrionError(
                f"{setting}: {entry!r} is not an IP address or network (such as"
                " 10.0.0.5 or 10.0.0.0/24)"
            ) from None
    return tuple(dict.fromkeys(out))


def _seconds(env: Mapping[str, str], name: str, default: float, *, least: float = 0.0) -> float:
    """A number of seconds above 0 (or from `least`) up to a day, from `env`."""
    text = env.get(name, "").strip()
    if not text:
        return default
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    low_ok = value >= least if least else value > 0  # nan fails both
    if not low_ok or not value <= 86_400:
        raise OrchestrionError(
            f"{name} must be a number of seconds from {least:g} to 86400, not {text!r}"
        )
    return value


def _concurrency(text: str) -> int | None:
    if not text.strip():
        return None
    try:
        value = int(text)
    except ValueError:
        value = 0
    if not 1 <= value <= 512:
        raise OrchestrionError(
            f"ORCHESTRION_CONCURRENCY must be a whole number from 1 to 512, not {text!r}"
        )
    return value


def _allow_list(entries: list[str]) -> AllowList:
    try:
        return AllowList.parse(entries)
    except ValueError as exc:
        raise OrchestrionError(f"{HTTP_ALLOW_ENV}: {exc}") from None
