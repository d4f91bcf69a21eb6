"""Passwords (argon2id) and the login rate limiter, driven by a fake clock."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher, Type

from orchestrion.auth.passwords import (
    DEFAULT_HASHER,
    LoginLimiter,
    MemoryFailureLog,
    hash_password,
    verify_password,
)
from orchestrion.clock import FakeClock
from orchestrion.errors import ParameterError

#: Cheap parameters keep the tests fast; one test uses the real defaults.
FAST = PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1, type=Type.ID)
STRONGER = PasswordHasher(time_cost=2, memory_cost=2048, parallelism=1, type=Type.ID)
PASSWORD = "correct horse battery staple"


def test_default_hash_is_argon2id_and_verifies() -> None:
    stored = hash_password(PASSWORD)
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    check = verify_password(stored, PASSWORD)
    assert check and not check.needs_rehash
    assert not verify_password(stored, PASSWORD + "!", hasher=DEFAULT_HASHER)


def test_salted() -> None:
    assert hash_password(PASSWORD, hasher=FAST) != hash_password(PASSWORD, hasher=FAST)


@pytest.mark.parametrize("wrong", ["", "correct horse battery stapl", PASSWORD.upper(), "x" * 2000])
def test_wrong_password(wrong: str) -> None:
    stored = hash_password(PASSWORD, hasher=FAST)
    check = verify_password(stored, wrong, hasher=FAST)
    assert not check and not check.ok and not check.needs_rehash


@pytest.mark.parametrize("stored", ["", "not a hash", "$argon2id$v=19$m=1024,t=1,p=1$AAAA$BBBB"])
def test_corrupt_stored_hash_is_a_no(stored: str) -> None:
    assert not verify_password(stored, PASSWORD, hasher=FAST)


def test_unknown_user_costs_a_verify_and_fails() -> None:
    assert not verify_password(None, PASSWORD, hasher=FAST)


def test_rehash_signal_when_parameters_grow() -> None:
    old = hash_password(PASSWORD, hasher=FAST)
    check = verify_password(old, PASSWORD, hasher=STRONGER)
    assert check and check.needs_rehash
    fresh = hash_password(PASSWORD, hasher=STRONGER)
    assert not verify_password(fresh, PASSWORD, hasher=STRONGER).needs_rehash


def test_password_length_policy() -> None:
    with pytest.raises(ParameterError, match="too short"):
        hash_password("short", hasher=FAST)
    with pytest.raises(ParameterError, match="too long"):
        hash_password("x" * 1025, hasher=FAST)


# ----------------------------------------------------------------------------- limiter


def test_lockout_after_max_failures_then_doubles() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=3, window=60, base_lockout=10, max_lockout=35)
    for _ in range(2):
        assert limiter.record_failure("ana", "1.2.3.4", now=clock.now())
        assert limiter.check("ana", "1.2.3.4", now=clock.now())
    third = limiter.record_failure("ana", "1.2.3.4", now=clock.now())
    assert not third and third.retry_after == 10
    assert limiter.check("ana", "1.2.3.4", now=clock.now()).retry_after == 10
    clock.advance(10)
    assert limiter.check("ana", "1.2.3.4", now=clock.now())
    assert limiter.record_failure("ana", "1.2.3.4", now=clock.now()).retry_after == 20
    clock.advance(20)
    assert limiter.record_failure("ana", "1.2.3.4", now=clock.now()).retry_after == 35  # capped


def test_window_slides() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=3, window=60, base_lockout=10)
    for _ in range(2):
        limiter.record_failure("ana", "src", now=clock.now())
        clock.advance(40)
    # the first failure is 80 s old now: only two inside the window
    assert limiter.record_failure("ana", "src", now=clock.now())
    assert limiter.check("ana", "src", now=clock.now())


def test_keys_are_per_user_and_source_and_case_blind() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=1, window=60, base_lockout=10)
    limiter.record_failure("Ana", "a", now=clock.now())
    assert not limiter.check("ana ", "a", now=clock.now())
    assert limiter.check("ana", "b", now=clock.now())
    assert limiter.check("bob", "a", now=clock.now())


def test_success_clears() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=2, window=60, base_lockout=10)
    limiter.record_failure("ana", "a", now=clock.now())
    limiter.record_success("ana", "a")
    assert limiter.record_failure("ana", "a", now=clock.now())


def test_memory_is_bounded() -> None:
    limiter = LoginLimiter(
        max_failures=1, window=60, base_lockout=10, log=MemoryFailureLog(max_keys=3)
    )
    for i in range(10):
        limiter.record_failure(f"user{i}", "a", now=0.0)
    assert not limiter.check("user9", "a", now=1.0)
    assert limiter.check("user0", "a", now=1.0)  # evicted, least recently seen


def test_a_lockout_outlives_the_window_of_its_failures() -> None:
    clock = FakeClock()
    limiter = LoginLimiter(max_failures=2, window=60, base_lockout=50, max_lockout=400)
    for _ in range(4):  # the 4th failure locks for 50 * 2**2 = 200 s, past the 60 s window
        limiter.record_failure("ana", "a", now=clock.now())
    clock.advance(150)
    assert limiter.check("ana", "a", now=clock.now()).retry_after == 50
    clock.advance(50)
    assert limiter.check("ana", "a", now=clock.now())


def test_limiter_refuses_nonsense_settings() -> None:
    with pytest.raises(ValueError):
        LoginLimiter(max_failures=0)
    with pytest.raises(ValueError):
        LoginLimiter(base_lockout=100, max_lockout=10)
