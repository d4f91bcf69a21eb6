"""API tokens: random, shown once, stored only as a SHA-256 hash, with expiry and revocation.

A token reads ``orc_<id>_<secret>``: ``id`` (16 hex digits) finds the stored row without a
scan, and ``secret`` (``secrets.token_urlsafe(32)``, 256 bits) is what proves possession.
The store keeps ``sha256(whole token)``; a plain, fast hash is right here because the
secret is random and long (nothing to brute-force), unlike a password. Comparison is
constant-time.

The prefix makes a leaked token easy to spot (secret scanners, log masking) and to tell
apart from a password. Nothing here ever puts a token or its secret into a message.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from orchestrion.errors import AuthError

__all__ = [
    "DEFAULT_PREFIX",
    "MAX_EXPIRY_SECONDS",
    "NewToken",
    "ParsedToken",
    "TokenCheck",
    "TokenStatus",
    "check_token",
    "expiry_time",
    "hash_token",
    "new_token",
    "parse_expiry",
    "parse_token",
]

DEFAULT_PREFIX: Final = "orc"
#: The longest expiry a token may have (5 years); "never" is allowed explicitly.
MAX_EXPIRY_SECONDS: Final = 5 * 365 * 86400.0

_SECRET_BYTES = 32
_SECRET_CHARS = 43  # len(secrets.token_urlsafe(32))
_ID_HEX = 16
_MAX_TEXT = 200
_PREFIX_RE = re.compile(r"[a-z][a-z0-9]{1,15}")
_ID_RE = re.compile(rf"[0-9a-f]{{{_ID_HEX}}}")
_SECRET_RE = re.compile(rf"[A-Za-z0-9_-]{{{_SECRET_CHARS}}}")
_EXPIRY_RE = re.compile(r"(\d{1,6})([mhdwy])")
_EXPIRY_UNITS = {"m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0, "y": 365 * 86400.0}
_FORMAT_HINT = "expected <prefix>_<16 hex digits>_<43 URL-safe characters>"


@dataclass(frozen=True, slots=True)
class NewToken:
    """A freshly made token: show ``plaintext`` once, store ``token_id`` and ``token_hash``."""

    plaintext: str
    token_id: str
    token_hash: str

    def __repr__(self) -> str:
        return f"NewToken(plaintext='***', token_id={self.token_id!r})"

    def __iter__(self) -> Iterator[str]:
        """Unpack as ``plaintext, token_id, token_hash = new_token()``."""
        return iter((self.plaintext, self.token_id, self.token_hash))


@dataclass(frozen=True, slots=True)
class ParsedToken:
    """A well-formed token split into its parts (``secret`` is masked in the repr)."""

    prefix: str
    token_id: str
    secret: str

    def __repr__(self) -> str:
        return f"ParsedToken(prefix={self.prefix!r}, token_id={self.token_id!r}, secret='***')"


class TokenStatus(enum.Enum):
    """Why a token was accepted or refused; the value is the reason an `AuthError` gives."""

    VALID = "valid"
    MALFORMED = "malformed"
    WRONG_SECRET = "wrong secret"
    REVOKED = "revoked"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class TokenCheck:
    """The outcome of `check_token`; truthy exactly when the token is valid."""

    status: TokenStatus
    token_id: str | None

    def __bool__(self) -> bool:
        return self.status is TokenStatus.VALID

    def raise_if_invalid(self) -> None:
        """Raise `AuthError` naming the reason (and the id), never the token."""
        if self.status is not TokenStatus.VALID:
            which = f" {self.token_id}" if self.token_id else ""
            raise AuthError(f"API token{which} refused: {self.status.value}")


def new_token(prefix: str = DEFAULT_PREFIX) -> NewToken:
    """A new random token; unpacks as ``(plaintext, token_id, token_hash)``."""
    if not _PREFIX_RE.fullmatch(prefix):
        raise ValueError(f"invalid token prefix {prefix!r}: 2 to 16 lowercase letters/digits")
    token_id = secrets.token_hex(_ID_HEX // 2)
    plaintext = f"{prefix}_{token_id}_{secrets.token_urlsafe(_SECRET_BYTES)}"
    return NewToken(plaintext, token_id, hash_token(plaintext))


def hash_token(text: str) -> str:
    """The hex SHA-256 the store keeps in place of the token."""
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def parse_token(text: str, *, prefix: str = DEFAULT_PREFIX) -> ParsedToken:
    """Split a token into its parts; `AuthError` says what is wrong, never echoing it."""
    if not isinstance(text, str) or not text.strip():
        raise AuthError("malformed API token: empty")
    text = text.strip()
    if len(text) > _MAX_TEXT or not text.isascii():
        raise AuthError(f"malformed API token: {_FORMAT_HINT}")
    head, sep, rest = text.partition("_")
    token_id, sep2, secret = rest.partition("_")
    if not (sep and sep2):
        raise AuthError(f"malformed API token: {_FORMAT_HINT}")
    if head != prefix:
        raise AuthError(f"malformed API token: expected prefix {prefix!r}")
    if not _ID_RE.fullmatch(token_id):
        raise AuthError("malformed API token: the id must be 16 lowercase hex digits")
    if not _SECRET_RE.fullmatch(secret):
        raise AuthError("malformed API token: the secret part has the wrong length or characters")
    return ParsedToken(head, token_id, secret)


def check_token(
    text: str,
    stored_hash: str,
    *,
    expires_at: float | None,
    revoked_at: float | None,
    now: float,
    prefix: str = DEFAULT_PREFIX,
) -> TokenCheck:
    """Check a presented token against its stored row (found by ``parse_token(text).token_id``).

    The secret is checked first, so revocation and expiry are told only to someone holding
    the secret. A token is expired from ``expires_at`` on, and revoked from ``revoked_at``
    on (a revocation takes effect on the next request).
    """
    try:
        parsed = parse_token(text, prefix=prefix)
    except AuthError:
        return TokenCheck(TokenStatus.MALFORMED, None)
    presented = hash_token(text.strip())
    if not hmac.compare_digest(presented.encode("ascii"), stored_hash.lower().encode("utf-8")):
        return TokenCheck(TokenStatus.WRONG_SECRET, parsed.token_id)
    if revoked_at is not None and revoked_at <= now:
        return TokenCheck(TokenStatus.REVOKED, parsed.token_id)
    if expires_at is not None and expires_at <= now:
        return TokenCheck(TokenStatus.EXPIRED, parsed.token_id)
    return TokenCheck(TokenStatus.VALID, parsed.token_id)


def parse_expiry(text: str) -> float | None:
    """Seconds from ``"90d"`` (units m, h, d, w, y), or None for ``"never"``."""
    cleaned = text.strip().lower()
    if cleaned == "never":
        return None
    match = _EXPIRY_RE.fullmatch(cleaned)
    if not match:
        hint = "a number and a unit m, h, d, w or y (e.g. '90d'), or 'never'"
        raise ValueError(f"bad expiry {text!r}: use {hint}")
    seconds = int(match.group(1)) * _EXPIRY_UNITS[match.group(2)]
    if seconds <= 0 or seconds > MAX_EXPIRY_SECONDS:
        raise ValueError(f"expiry {text!r} is out of range (1 minute to 5 years)")
    return seconds


def expiry_time(text: str, *, now: float) -> float | None:
    """The ``expires_at`` for a token made at ``now`` with expiry ``text`` (None: never)."""
    seconds = parse_expiry(text)
    return None if seconds is None else now + seconds
