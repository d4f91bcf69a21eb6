"""The limiter of refused-request audit records: N a minute per address and kind, the rest
counted and reported once their minute is over (time passed in)."""

from __future__ import annotations

from orchestrion.web.probes import ProbeLimiter, Suppressed

T0 = 1_000.0


def test_each_address_and_kind_has_its_own_allowance() -> None:
    limiter = ProbeLimiter(per_minute=2)
    assert [limiter.admit("10.0.0.1", "401", T0 + i) for i in range(5)] == [
        True,
        True,
        False,
        False,
        False,
    ]
    assert limiter.admit("10.0.0.1", "405", T0 + 5)
    assert limiter.admit("10.0.0.2", "401", T0 + 5)
    assert limiter.due(T0 + 59) == []  # the minute is not over
    assert limiter.due(T0 + 60) == [Suppressed("10.0.0.1", "401", 3, T0)]
    assert limiter.due(T0 + 61) == []  # reported once
    assert limiter.admit("10.0.0.1", "401", T0 + 61)  # a new minute, a new allowance


def test_a_window_that_suppressed_nothing_reports_nothing() -> None:
    limiter = ProbeLimiter(per_minute=3)
    for i in range(3):
        assert limiter.admit("a", "413", T0 + i)
    assert limiter.due(T0 + 600) == []


def test_the_number_of_open_windows_is_bounded() -> None:
    limiter = ProbeLimiter(per_minute=1, max_keys=2)
    assert limiter.admit("a", "401", T0)
    assert not limiter.admit("a", "401", T0 + 1)
    assert limiter.admit("b", "401", T0 + 2)
    assert limiter.admit("c", "401", T0 + 3)  # closes a's window early, counts kept
    assert limiter.due(T0 + 3) == [Suppressed("a", "401", 1, T0)]
    assert limiter.admit("a", "401", T0 + 4)
