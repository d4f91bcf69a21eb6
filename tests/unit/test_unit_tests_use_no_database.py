"""The PostgreSQL pass of ``scripts/test`` skips tests/unit: a unit test opens no store.

A test that needs a database belongs in tests/integration or tests/contract, which run on
both dialects; this keeps one from landing here and silently losing its PostgreSQL run.
"""

from __future__ import annotations

import re
from pathlib import Path

# What opens a store in a test: the helpers that pick the dialect, or opening one directly.
_OPENS_A_STORE = re.compile(r"\b(database_url_for|db_arg|make_app|Driver|open_store)\(")


def test_no_unit_test_opens_a_store() -> None:
    here = Path(__file__).parent
    found = [
        f"{path.name}:{number}"
        for path in sorted(here.glob("*.py"))
        if path.name != Path(__file__).name
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if _OPENS_A_STORE.search(line)
    ]
    assert found == [], f"move these to tests/integration (they need a database): {found}"
