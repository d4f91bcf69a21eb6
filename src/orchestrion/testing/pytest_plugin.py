"""The pytest plugin: the ``orchestrion_harness`` fixture, an open `Harness` per test on a
SQLite file in the test's ``tmp_path``.

Registered through the ``pytest11`` entry point, so installing Orchestrion is enough. This
module imports nothing of Orchestrion until a test asks for the fixture: every pytest run
in an environment with Orchestrion installed loads it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from orchestrion.testing.harness import Harness

__all__ = ["orchestrion_harness"]


@pytest.fixture
def orchestrion_harness(tmp_path: Path) -> Iterator[Harness]:
    """An open `orchestrion.testing.Harness` whose store is a SQLite file in ``tmp_path``."""
    from orchestrion.testing.harness import Harness

    with Harness(tmp_path) as made:
        yield made
