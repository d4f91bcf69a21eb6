"""``ORCHESTRION_SYNC_SECONDS``: how often the scheduler's Git sync duty looks at its
sources (docs/projects.md), read and bounded like the other second settings."""

from __future__ import annotations

import pytest

from orchestrion.app.settings import Settings
from orchestrion.errors import OrchestrionError


def test_the_default_is_thirty_seconds() -> None:
    assert Settings.from_env({}).sync_every == 30.0


def test_the_environment_sets_it() -> None:
    assert Settings.from_env({"ORCHESTRION_SYNC_SECONDS": "300"}).sync_every == 300.0
    assert Settings.from_env({"ORCHESTRION_SYNC_SECONDS": " 2.5 "}).sync_every == 2.5
    assert Settings.from_env({"ORCHESTRION_SYNC_SECONDS": "1"}).sync_every == 1.0


@pytest.mark.parametrize("bad", ["0", "0.5", "-5", "soon", "nan", "inf", "86401", "1e9"])
def test_a_bad_value_is_refused_by_name(bad: str) -> None:
    with pytest.raises(OrchestrionError, match=r"ORCHESTRION_SYNC_SECONDS must be .*seconds"):
        Settings.from_env({"ORCHESTRION_SYNC_SECONDS": bad})
