"""`App.secrets`: seal before the store, open after it, re-seal to rotate.

Values go in (set) and, for workers only, come out (`Secrets.resolve_secrets`); every other
read returns names and metadata. The store only ever sees `SealedRow`s; plaintexts live in
this module's callers' memory for as long as they need them. Names are checked here with
the same patterns the spec uses for references, so a secret that can be set can also be
named by a task.
"""

from __future__ import annotations

from collections.abc import Collection

from orchestrion.app.core import Facet
from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import (
    KeyRing,
    Sealed,
    Secret,
    decrypt,
    encrypt,
    load_key_ring,
    rotate,
)
from orchestrion.errors import NotFound, SecretError
from orchestrion.spec.rules import check_ref
from orchestrion.store.records import SealedRow, SecretMeta
from orchestrion.store.secrets import SecretStore

__all__ = [
    "MAX_SECRET_BYTES",
    "Secrets",
    "key_ring_of",
    "put",
    "reseal_all",
    "resolve",
]

#: The largest value accepted (a PEM key or a service-account JSON fits easily).
MAX_SECRET_BYTES = 64 * 1024


class Secrets(Facet):
    """Secrets by ``namespace/name``, sealed under the configured master keys."""

    @property
    def key_ring(self) -> KeyRing:
        """The configured master keys, or `SecretError` saying how to configure one."""
        return key_ring_of(self._core.settings)

    def set_secret(self, namespace: str, name: str, value: str | Secret) -> bool:
        """Create or replace ``namespace/name``; True if it was created."""
        with self._core.audited("secret.set", f"secret {namespace}/{name}"):  # never the value
            return put(self.store.secrets, self.key_ring, namespace, name, value, self.clock.now())

    def list_secrets(self, namespace: str | None = None) -> list[SecretMeta]:
        """Names and metadata (never values), of one namespace or all."""
        return self.store.secrets.list_secrets(namespace)

    def delete_secret(self, namespace: str, name: str) -> None:
        """Delete ``namespace/name``, or `NotFound`."""
        with self._core.audited("secret.delete", f"secret {namespace}/{name}"):
            check_ref(namespace, name, "secret")
            if not self.store.secrets.delete_secret(namespace, name, now=self.clock.now()):
                raise NotFound(f"secret {namespace}/{name} does not exist")

    def rotate_secrets(self) -> int:
        """Re-encrypt every secret under the current (first) master key; how many changed.
        Afterwards the older keys may be removed from ``ORCHESTRION_MASTER_KEY``."""
        with self._core.audited("secrets.rotate", "secrets"):
            return reseal_all(self.store.secrets, self.key_ring, self.clock.now())

    def resolve_secrets(self, namespace: str, names: Collection[str]) -> dict[str, Secret]:
        """The values of `names` in `namespace`, for a worker about to run a task that
        declared them. `NotFound` names a missing one."""
        if not names:
            return {}
        return resolve(self.store.secrets, self.key_ring, namespace, names)


def key_ring_of(settings: Settings) -> KeyRing:
    """The master keys `settings` configure, or `SecretError` saying how to configure one
    (also what the server and worker commands say when they refuse to start without)."""
    if settings.key_ring is None:
        return load_key_ring({}, dev_mode=False)  # raises, with the how-to
    return settings.key_ring


def put(
    secrets: SecretStore, ring: KeyRing, namespace: str, name: str, value: str | Secret, now: float
) -> bool:
    """Seal `value` under the ring's current key and store it; True if it was created."""
    check_ref(namespace, name, "secret")
    text = value.reveal() if isinstance(value, Secret) else value
    if not text:
        raise SecretError(f"the value of secret {namespace}/{name} is empty")
    if len(text.encode("utf-8")) > MAX_SECRET_BYTES:
        raise SecretError(
            f"the value of secret {namespace}/{name} is over {MAX_SECRET_BYTES} bytes"
        )
    sealed = encrypt(ring, namespace, name, text)
    return secrets.put_secret(_row(namespace, name, sealed), now=now)


def resolve(
    secrets: SecretStore, ring: KeyRing, namespace: str, names: Collection[str]
) -> dict[str, Secret]:
    """The opened values of `names` in `namespace`; `NotFound` naming any that is missing."""
    wanted = set(names)
    rows = secrets.sealed_secrets(namespace, sorted(wanted))
    missing = sorted(wanted - {r.name for r in rows})
    if missing:
        raise NotFound(
            f"secret {namespace}/{missing[0]} does not exist"
            f" (set it with `orchestrion secrets set {namespace}/{missing[0]}`)"
        )
    return {r.name: decrypt(ring, namespace, r.name, _sealed(r)) for r in rows}


def reseal_all(secrets: SecretStore, ring: KeyRing, now: float) -> int:
    """Re-encrypt every secret not sealed under the current key; how many were."""
    done = 0
    for row in secrets.sealed_secrets():
        if row.key_id == ring.current_id:
            continue
        fresh = rotate(ring, row.namespace, row.name, _sealed(row))
        if secrets.reseal_secret(row, _row(row.namespace, row.name, fresh), now=now):
            done += 1
    return done


def _row(namespace: str, name: str, sealed: Sealed) -> SealedRow:
    return SealedRow(
        namespace=namespace,
        name=name,
        key_id=sealed.key_id,
        nonce=sealed.nonce,
        ciphertext=sealed.ciphertext,
    )


def _sealed(row: SealedRow) -> Sealed:
    return Sealed(row.key_id, row.nonce, row.ciphertext)
