"""API tokens: random, shown once, hashed, expiring, revocable; malformed ones refused."""

from __future__ import annotations

import hashlib
import hmac
from typing import Any

import pytest

from orchestrion.auth.tokens import (
    TokenStatus,
    check_token,
    expiry_time,
    hash_token,
    new_token,
    parse_expiry,
    parse_token,
)
from orchestrion.errors import AuthError

NOW = 1_800_000_000.0


def test_round_trip() -> None:
    plaintext, token_id, token_hash = new_token()
    assert plaintext.startswith(f"orc_{token_id}_")
    assert token_hash == hashlib.sha256(plaintext.encode()).hexdigest() == hash_token(plaintext)
    parsed = parse_token(plaintext)
    assert (parsed.prefix, parsed.token_id) == ("orc", token_id)
    assert len(parsed.secret) == 43  # 32 random bytes
    check = check_token(plaintext, token_hash, expires_at=None, revoked_at=None, now=NOW)
    assert check and check.status is TokenStatus.VALID and check.token_id == token_id
    check.raise_if_invalid()


def test_tokens_are_unique_and_never_in_a_repr() -> None:
    made = [new_token() for _ in range(200)]
    assert len({t.plaintext for t in made}) == len({t.token_id for t in made}) == 200
    token = made[0]
    secret = parse_token(token.plaintext).secret
    assert secret not in repr(token) and secret not in repr(parse_token(token.plaintext))


def test_custom_prefix() -> None:
    token = new_token("ci")
    assert parse_token(token.plaintext, prefix="ci").prefix == "ci"
    with pytest.raises(AuthError, match="prefix"):
        parse_token(token.plaintext)
    with pytest.raises(ValueError, match="prefix"):
        new_token("Bad_Prefix")


# A fixed, well-formed token: parametrized ids must be the same in every xdist worker.
GOOD = "orc_0123456789abcdef_" + "A" * 43
HEAD, ID, SECRET = GOOD.split("_", 2)

MALFORMED = [
    "",
    "   ",
    "orc",
    "orc_",
    "orc__",
    f"orc_{ID}",
    f"orc_{ID}_",
    f"xyz_{ID}_{SECRET}",
    f"ORC_{ID}_{SECRET}",
    f"orc_{ID.upper()}_{SECRET}",
    f"orc_{ID[:-1]}_{SECRET}",
    f"orc_{ID}0_{SECRET}",
    f"orc_{ID}_{SECRET[:-1]}",
    f"orc_{ID}_{SECRET}A",
    f"orc_{ID}_{SECRET[:-1]}=",
    f"orc_{ID}_{SECRET[:-1]}é",
    f"orc_{ID}_{SECRET[:20]} {SECRET[21:]}",
    f"Bearer {GOOD}",
    GOOD + "x" * 300,
    f"orc-{ID}-{SECRET}",
    f"orc_{'g' * 16}_{SECRET}",
    "\x00" * 80,
]


@pytest.mark.parametrize("text", MALFORMED)
def test_malformed_tokens_are_refused_clearly(text: str) -> None:
    with pytest.raises(AuthError, match="malformed API token") as info:
        parse_token(text)
    if len(text) > 10:
        assert text.strip() not in str(info.value)
    check = check_token(text, hash_token(text), expires_at=None, revoked_at=None, now=NOW)
    assert not check and check.status is TokenStatus.MALFORMED


def test_non_string_is_malformed() -> None:
    with pytest.raises(AuthError):
        parse_token(None)  # type: ignore[arg-type]


def test_surrounding_whitespace_is_tolerated() -> None:
    token = new_token()
    check = check_token(
        f"  {token.plaintext}\n", token.token_hash, expires_at=None, revoked_at=None, now=NOW
    )
    assert check


def test_wrong_secret() -> None:
    token, other = new_token(), new_token()
    check = check_token(
        other.plaintext, token.token_hash, expires_at=None, revoked_at=None, now=NOW
    )
    assert check.status is TokenStatus.WRONG_SECRET
    with pytest.raises(AuthError, match="wrong secret") as info:
        check.raise_if_invalid()
    assert other.plaintext not in str(info.value)


@pytest.mark.parametrize(
    ("expires_at", "status"),
    [
        (NOW + 1, TokenStatus.VALID),
        (NOW, TokenStatus.EXPIRED),
        (NOW - 1, TokenStatus.EXPIRED),
        (None, TokenStatus.VALID),
    ],
)
def test_expiry(expires_at: float | None, status: TokenStatus) -> None:
    token = new_token()
    check = check_token(
        token.plaintext, token.token_hash, expires_at=expires_at, revoked_at=None, now=NOW
    )
    assert check.status is status


def test_revoked_takes_effect_at_once() -> None:
    token = new_token()
    check = check_token(token.plaintext, token.token_hash, expires_at=None, revoked_at=NOW, now=NOW)
    assert check.status is TokenStatus.REVOKED
    with pytest.raises(AuthError, match=f"{token.token_id} refused: revoked"):
        check.raise_if_invalid()


def test_state_is_told_only_to_the_secret_holder() -> None:
    token, forged = new_token(), new_token()
    check = check_token(
        forged.plaintext, token.token_hash, expires_at=NOW - 1, revoked_at=NOW - 1, now=NOW
    )
    assert check.status is TokenStatus.WRONG_SECRET


def test_compare_is_constant_time(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, Any]] = []
    real = hmac.compare_digest

    def spy(a: Any, b: Any) -> bool:
        calls.append((a, b))
        return real(a, b)

    monkeypatch.setattr(hmac, "compare_digest", spy)
    token = new_token()
    assert check_token(token.plaintext, token.token_hash, expires_at=None, revoked_at=None, now=NOW)
    assert calls == [(token.token_hash.encode(), token.token_hash.encode())]


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("90d", 90 * 86400.0), ("12h", 43200.0), ("30m", 1800.0), ("2w", 1209600.0),
     ("1y", 365 * 86400.0), (" 7D ", 7 * 86400.0), ("never", None)],
)  # fmt: skip
def test_parse_expiry(text: str, seconds: float | None) -> None:
    assert parse_expiry(text) == seconds


@pytest.mark.parametrize("text", ["", "90", "d", "-1d", "1.5d", "0d", "6y", "90 d", "1d2h"])
def test_bad_expiry(text: str) -> None:
    with pytest.raises(ValueError, match="expiry"):
        parse_expiry(text)


def test_expiry_time() -> None:
    assert expiry_time("90d", now=NOW) == NOW + 90 * 86400
    assert expiry_time("never", now=NOW) is None
