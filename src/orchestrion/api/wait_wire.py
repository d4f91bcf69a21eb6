"""How a waiting step (`WaitRecord`) looks on the wire: the API's `Wait` model
(`api.routes.waits`) and the CLI's decoding both come from this one table, as `wire` does
for the other records (kept apart from it so that the two merge without a conflict)."""

from __future__ import annotations

from typing import Final

from orchestrion.api.wire import Wire
from orchestrion.store.wait_records import WaitRecord

__all__ = ["WAIT"]

WAIT: Final = Wire(record=WaitRecord)
