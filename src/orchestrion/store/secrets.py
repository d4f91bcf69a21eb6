"""`SecretStore`: sealed secrets only (key id, nonce, ciphertext). Sealing and opening
happen above the store (`orchestrion.app.secrets` with `orchestrion.auth.secret_box`), so
no plaintext ever reaches it and a database dump holds nothing readable."""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from orchestrion.store.records import SealedRow, SecretMeta

__all__ = ["SecretStore"]


class SecretStore(Protocol):
    """Every change writes its event row (namespace and name, never a value)."""

    def put_secret(self, sealed: SealedRow, *, now: float) -> bool:
        """Create or replace a sealed secret; True if it was created. Writes an event."""
        ...

    def sealed_secrets(
        self, namespace: str | None = None, names: Collection[str] | None = None
    ) -> list[SealedRow]:
        """Sealed secrets, of one namespace and/or just `names`, by namespace and name."""
        ...

    def list_secrets(self, namespace: str | None = None) -> list[SecretMeta]:
        """Names and metadata of the secrets (of one namespace), by namespace and name."""
        ...

    def delete_secret(self, namespace: str, name: str, *, now: float) -> bool:
        """Delete a secret; False if there was none. Writes an event."""
        ...

    def reseal_secret(self, old: SealedRow, new: SealedRow, *, now: float) -> bool:
        """Replace the sealed value `old` with `new` (a rotation) if the row still holds
        `old`; False if it changed meanwhile."""
        ...
