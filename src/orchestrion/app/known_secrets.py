"""A masker of every stored secret's value, for what is written where anyone with read access
looks: the audit log.

The audit log masks parameters by key name (`orchestrion.auth.redaction`), which misses a
value sent under a misspelled or unexpected key, or pasted into another field. So every
audit record is also masked with the values of all known secrets. Opening every secret on
every write would cost a decryption per secret per request: the masker is rebuilt only
when the secrets' metadata (names, keys, update times: one small query) changed, which a
set, delete or rotation in any process does.
"""

from __future__ import annotations

import logging
import threading

from orchestrion.auth.masking import Masker
from orchestrion.auth.secret_box import KeyRing, Sealed, decrypt
from orchestrion.errors import OrchestrionError
from orchestrion.store.secrets import SecretStore

__all__ = ["KnownSecrets"]

log = logging.getLogger("orchestrion.app.secrets")

#: Shorter values are not masked in audit records: a 1- or 2-character "secret" would blank
#: that text everywhere in them, and such a value is no secret worth the damage.
_MIN_LENGTH = 4


class KnownSecrets:
    """The masker of all stored secret values, cached until the secrets change."""

    def __init__(self, secrets: SecretStore, key_ring: KeyRing | None) -> None:
        self._secrets = secrets
        self._ring = key_ring
        self._lock = threading.Lock()
        self._stamp: tuple[tuple[str, str, str, float], ...] | None = None
        self._masker = Masker()

    def masker(self) -> Masker:
        """The masker of every secret's current value (empty without a key ring)."""
        if self._ring is None:
            return self._masker
        stamp = tuple(
            (m.namespace, m.name, m.key_id, m.updated_at) for m in self._secrets.list_secrets()
        )
        with self._lock:
            if stamp != self._stamp:
                self._masker = Masker(self._values(self._ring), min_length=_MIN_LENGTH)
                self._stamp = stamp
            return self._masker

    def _values(self, ring: KeyRing) -> list[str]:
        values: list[str] = []
        for row in self._secrets.sealed_secrets():
            try:
                sealed = Sealed(row.key_id, row.nonce, row.ciphertext)
                values.append(decrypt(ring, row.namespace, row.name, sealed).reveal())
            except OrchestrionError:
                # A value under a key no longer configured cannot be masked: say so (at
                # each rebuild) rather than fail the audit write.
                log.warning(
                    "audit.secret_unreadable",
                    extra={"secret": f"{row.namespace}/{row.name}", "key_id": row.key_id},
                )
        return values
