"""Records of the web UI's batched reads (kept apart from `records.py`: they are views)."""

from __future__ import annotations

from dataclasses import dataclass

from orchestrion.states import RunState

__all__ = ["RunMark"]


@dataclass(frozen=True, slots=True, kw_only=True)
class RunMark:
    """Just enough of a run to draw it as a coloured mark in a list: no params, no result
    (which may be large), so listing the last runs of 500 workflows stays cheap."""

    id: str
    workflow: str
    state: RunState
    created_at: float
    finished_at: float | None
