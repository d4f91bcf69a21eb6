"""How a waiting step (`WaitRecord`) looks on the wire: the API's `Wait` model and the
CLI's `Remote` decode both come from this one table (as `wire` does for the others)."""

from __future__ import annotations

from typing import Any, Final

from orchestrion.api.schemas import model_of
from orchestrion.api.wire import Wire
from orchestrion.store.wait_records import WaitRecord

__all__ = ["WAIT", "Wait"]

WAIT: Final = Wire(record=WaitRecord)
#: A waiting step, with `details`: its kind's settings (an approval's role and message).
Wait = model_of(WAIT, "Wait", details=dict[str, Any])
