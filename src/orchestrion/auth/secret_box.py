"""Secrets at rest: AES-256-GCM under a master key, bound to the secret's namespace and name.

* Every value is sealed with a fresh random 96-bit nonce under the ring's *current* key and
  carries that key's id, so older keys keep opening older values after a rotation.
* The associated data is ``f"{namespace}/{name}"``: a ciphertext copied to another secret's
  row (or namespace) fails to open instead of yielding the wrong secret. Namespaces hold no
  ``/``, so the pair is unambiguous.
* The master key comes from ``ORCHESTRION_MASTER_KEY`` (base64 of 32 bytes) or
  ``ORCHESTRION_MASTER_KEY_FILE``. Several keys may be given, newest first, each as
  ``[key_id:]base64``, separated by commas or lines; the first is current. Without a key,
  `load_key_ring` refuses unless dev mode is explicit, and then uses a well-known, insecure
  key whose id (``dev-insecure``) makes such data easy to find later.
* Values, keys and plaintexts never appear in an exception or a repr: `Secret` masks itself.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Final

import msgspec

from orchestrion.auth.principals import NAMESPACE_RE
from orchestrion.errors import SecretError
from orchestrion.types import NO_RICH_REPR

__all__ = [
    "DEV_KEY_ID",
    "DEV_MODE_ENV",
    "KEY_ENV",
    "KEY_FILE_ENV",
    "KeyRing",
    "MasterKey",
    "Sealed",
    "Secret",
    "decrypt",
    "encrypt",
    "generate_key_text",
    "load_key_ring",
    "rotate",
]

KEY_ENV: Final = "ORCHESTRION_MASTER_KEY"
KEY_FILE_ENV: Final = "ORCHESTRION_MASTER_KEY_FILE"
#: Set to ``1`` to run without a master key, using an insecure, well-known one.
DEV_MODE_ENV: Final = "ORCHESTRION_DEV_MODE"
DEV_KEY_ID: Final = "dev-insecure"

_KEY_BYTES = 32
_NONCE_BYTES = 12
_DEV_KEY = hashlib.sha256(b"orchestrion insecure development master key").digest()
_HOW_TO_SET = (
    f"set {KEY_ENV} to a base64-encoded 256-bit key (make one with "
    '`python -c "import base64, os; print(base64.b64encode(os.urandom(32)).decode())"`), '
    f"or {KEY_FILE_ENV} to a file holding it; for local development only, "
    f"set {DEV_MODE_ENV}=1 to use an insecure built-in key"
)


class Secret:
    """A secret value that prints as ``***``; call `reveal` where the value is really needed."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The value itself, as a plain string that prints as it is: call it only where the
        value is really used."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Secret):
            return NotImplemented
        return hmac.compare_digest(self._value.encode(), other._value.encode())

    def __hash__(self) -> int:
        return hash(hashlib.sha256(self._value.encode()).digest())

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("a Secret cannot be pickled")


class MasterKey(msgspec.Struct, frozen=True):
    """One 256-bit master key and the id stored with what it sealed, so that a key ring can tell
    which key opens a value."""

    key_id: str
    key: bytes

    def __post_init__(self) -> None:
        if len(self.key) != _KEY_BYTES:
            raise SecretError(f"master key {self.key_id!r} must be 32 bytes (256 bits)")
        if not self.key_id or not self.key_id.replace("-", "").replace("_", "").isalnum():
            raise SecretError("a master key id must be letters, digits, '-' or '_'")

    def __repr__(self) -> str:
        return f"MasterKey(key_id={self.key_id!r}, key='***')"

    __rich_repr__ = NO_RICH_REPR  # msgspec's would show the key to rich


class Sealed(msgspec.Struct, frozen=True):
    """An encrypted value as stored: which key, the nonce, and ciphertext plus GCM tag."""

    key_id: str
    nonce: bytes
    ciphertext: bytes


class KeyRing:
    """The current master key (sealing) plus older ones (opening only, until rotated out)."""

    def __init__(self, keys: Sequence[MasterKey]) -> None:
        if not keys:
            raise SecretError(f"no master key: {_HOW_TO_SET}")
        ids = [k.key_id for k in keys]
        if len(set(ids)) != len(ids):
            raise SecretError(f"duplicate master key ids in {ids}")
        self._keys = {k.key_id: k for k in keys}
        self.current_id: str = keys[0].key_id

    @property
    def key_ids(self) -> tuple[str, ...]:
        """The ids of every key in the ring, the current one first."""
        return tuple(self._keys)

    @property
    def is_dev(self) -> bool:
        """True when sealing with the insecure built-in development key: the server then warns
        loudly."""
        return self.current_id == DEV_KEY_ID

    def key(self, key_id: str) -> MasterKey:
        """The key `key_id`, to open a value sealed under it; `SecretError` says how to add a
        rotated-out key back."""
        try:
            return self._keys[key_id]
        except KeyError:
            raise SecretError(
                f"unknown master key id {key_id!r} (have {', '.join(self._keys)}): add the old "
                f"key after the current one in {KEY_ENV} to open data sealed under it"
            ) from None

    def __repr__(self) -> str:
        return f"KeyRing(current={self.current_id!r}, keys={list(self._keys)!r})"


def encrypt(key_ring: KeyRing, namespace: str, name: str, plaintext: str | Secret) -> Sealed:
    """Seal ``plaintext`` for the secret ``namespace/name`` under the current key."""
    # cryptography is imported when a secret is sealed or opened, not by every process that
    # builds Settings (~6 ms of start-up).
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    value = plaintext.reveal() if isinstance(plaintext, Secret) else plaintext
    key = key_ring.key(key_ring.current_id)
    nonce = os.urandom(_NONCE_BYTES)
    sealed = AESGCM(key.key).encrypt(nonce, value.encode("utf-8"), _aad(namespace, name))
    return Sealed(key.key_id, nonce, sealed)


def decrypt(key_ring: KeyRing, namespace: str, name: str, sealed: Sealed) -> Secret:
    """Open a value sealed for ``namespace/name``; `SecretError` if anything does not match."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    key = key_ring.key(sealed.key_id)
    if len(sealed.nonce) != _NONCE_BYTES:
        raise SecretError(f"cannot open secret {namespace}/{name}: bad nonce length")
    try:
        data = AESGCM(key.key).decrypt(sealed.nonce, sealed.ciphertext, _aad(namespace, name))
    except InvalidTag:
        raise SecretError(
            f"cannot open secret {namespace}/{name} with key {key.key_id!r}: the key is wrong, "
            "or the data was altered or copied from another secret"
        ) from None
    return Secret(data.decode("utf-8"))


def rotate(key_ring: KeyRing, namespace: str, name: str, sealed: Sealed) -> Sealed:
    """``sealed`` re-encrypted under the current key (returned unchanged if it already is)."""
    if sealed.key_id == key_ring.current_id:
        return sealed
    return encrypt(key_ring, namespace, name, decrypt(key_ring, namespace, name, sealed))


def generate_key_text() -> str:
    """A new master key, base64-encoded, for ``ORCHESTRION_MASTER_KEY``."""
    return base64.b64encode(os.urandom(_KEY_BYTES)).decode("ascii")


def load_key_ring(env: Mapping[str, str], *, dev_mode: bool | None = None) -> KeyRing:
    """The key ring from ``env`` (pass ``os.environ`` at the edge), or a clear refusal.

    ``dev_mode`` None reads ``ORCHESTRION_DEV_MODE`` from ``env``. A key that is given is
    always used, dev mode or not.
    """
    text = env.get(KEY_ENV, "").strip()
    path = env.get(KEY_FILE_ENV, "").strip()
    if text and path:
        raise SecretError(f"set {KEY_ENV} or {KEY_FILE_ENV}, not both")
    if path:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise SecretError(f"cannot read {KEY_FILE_ENV} {path!r}: {exc.strerror}") from None
    entries = _entries(text)
    if entries:
        where = KEY_FILE_ENV if path else KEY_ENV
        return KeyRing([_parse_key(entry, where=where) for entry in entries])
    if dev_mode is None:
        dev_mode = env.get(DEV_MODE_ENV, "").strip().lower() in ("1", "true", "yes")
    if dev_mode:
        return KeyRing([MasterKey(DEV_KEY_ID, _DEV_KEY)])
    raise SecretError(f"refusing to start without a master key: {_HOW_TO_SET}")


def _entries(text: str) -> list[str]:
    lines = (line.split("#", 1)[0] for line in text.splitlines())
    return [part.strip() for line in lines for part in line.split(",") if part.strip()]


def _parse_key(entry: str, *, where: str) -> MasterKey:
    key_id, sep, encoded = entry.rpartition(":")
    try:
        key = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise SecretError(f"a master key in {where} is not valid base64") from None
    if len(key) != _KEY_BYTES:
        raise SecretError(f"a master key in {where} is {len(key)} bytes; it must be 32")
    return MasterKey(key_id.strip() if sep else _derived_id(key), key)


def _derived_id(key: bytes) -> str:
    """A stable id for a key given without one (a one-way hash: it reveals nothing)."""
    return "k" + hashlib.sha256(b"orchestrion master key id\x00" + key).hexdigest()[:12]


def _aad(namespace: str, name: str) -> bytes:
    if not NAMESPACE_RE.fullmatch(namespace):
        raise SecretError(f"invalid namespace {namespace!r} for a secret")
    if not name or len(name) > 200 or not name.isprintable():
        raise SecretError("a secret name must be 1 to 200 printable characters")
    return f"{namespace}/{name}".encode()
