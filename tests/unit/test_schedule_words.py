"""Schedules in words, as the web UI shows them."""

from __future__ import annotations

import pytest

from orchestrion.spec.model import ScheduleSpec
from orchestrion.ui.schedule_words import Words, words

CASES = [
    ({"every": 300}, Words("every 5 minutes", clock=False)),
    ({"every": 3600}, Words("every hour", clock=False)),
    ({"every": 90}, Words("every 90 seconds", clock=False)),
    ({"cron": "* * * * *"}, Words("every minute", clock=False)),
    ({"cron": "*/15 * * * *"}, Words("every 15 minutes", clock=False)),
    ({"cron": "5 * * * *"}, Words("every hour at minute 5", clock=False)),
    ({"cron": "0 */6 * * *"}, Words("every 6 hours at minute 0", clock=False)),
    ({"cron": "0 3 * * *"}, Words("every day at", clock=True, local="03:00 UTC")),
    (
        {"cron": "30 6 * * 1-5", "timezone": "Europe/Paris"},
        Words("every weekday at", clock=True, local="06:30 Europe/Paris"),
    ),
    ({"cron": "0 9 * * 1,3"}, Words("every Monday, Wednesday at", clock=True, local="09:00 UTC")),
    ({"cron": "15 2 1 * *"}, Words("monthly on day 1 at", clock=True, local="02:15 UTC")),
    ({"cron": "0 3 * 6 *"}, Words("cron 0 3 * 6 *", clock=False)),
    ({"cron": "0 3,15 * * *"}, Words("cron 0 3,15 * * *", clock=False)),
]


@pytest.mark.parametrize(("fields", "expected"), CASES, ids=[str(c[0]) for c in CASES])
def test_words(fields: dict[str, object], expected: Words) -> None:
    assert words(ScheduleSpec.model_validate(fields)) == expected
