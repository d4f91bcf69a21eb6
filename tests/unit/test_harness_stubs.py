"""`orchestrion.testing.Stub`: what a stub answers, and the mistakes it refuses at once
(rather than as a failed task in the middle of a run)."""

from __future__ import annotations

import pytest

from orchestrion.testing import Stub


def test_a_stub_answers_and_records_its_calls() -> None:
    stub = Stub("t", raises=ConnectionError("down"), times=1, result={"ok": True})
    with pytest.raises(ConnectionError):
        stub(None, day="d1")
    assert stub(None, day="d2") == {"ok": True}
    assert stub.calls == [{"day": "d1"}, {"day": "d2"}]
    assert Stub("t", fn=lambda day: day.upper())(None, day="d") == "D"


@pytest.mark.parametrize(
    ("kwargs", "error"),
    [
        ({"fn": len, "result": 1}, "either fn, or result and raises"),
        ({"times": 2}, "give raises too"),
    ],
)
def test_contradictions_are_refused(kwargs: dict[str, object], error: str) -> None:
    with pytest.raises(ValueError, match=error):
        Stub("t", **kwargs)  # type: ignore[arg-type]


def test_a_result_that_is_no_json_is_refused() -> None:
    with pytest.raises(TypeError, match="JSON serializable"):
        Stub("t", result=object())
