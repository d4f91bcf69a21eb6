"""Test your workflows: run them in your tests, in process, under a clock you move.

    from orchestrion.testing import Harness

    def test_etl(tmp_path):
        with Harness(tmp_path) as h:
            h.load("workflows/etl.py")
            h.stub("load", result={"rows": 3})
            result = h.run("etl", params={"day": "2026-01-01"})
            result.assert_succeeded()
            assert result.task("extract").attempts[0].outcome == "failed"

With pytest, the ``orchestrion_harness`` fixture gives an open harness per test (the
plugin is registered when Orchestrion is installed). docs/testing.md has the how-to.

The command line never imports this package: ``orchestrion run`` does not pay for it.
"""

from __future__ import annotations

from orchestrion.testing.harness import Harness, HarnessError
from orchestrion.testing.results import AttemptResult, RunResult, TaskResult
from orchestrion.testing.stubs import Stub

__all__ = [
    "AttemptResult",
    "Harness",
    "HarnessError",
    "RunResult",
    "Stub",
    "TaskResult",
]
