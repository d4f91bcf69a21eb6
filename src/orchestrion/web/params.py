"""The bounded query parameters both faces share: every number a URL carries has a range.

A number past the database's integer (a row id is a ``BIGINT``, a map index an ``INTEGER``)
is refused here with a 422 naming the parameter, before a handler or a stream starts; it
would otherwise overflow in the driver (a 500), or inside a started event stream (a 200,
then a traceback in the log).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Path, Query

from orchestrion.spec.rules import ID_MAX, INT_MAX

__all__ = ["AfterId", "BeforeId", "ItemIndex", "PathId", "RowId", "Since"]

#: A row id as a cursor (an event, log line or audit id, or 0 for "none"): a ``BIGINT``.
RowId = Annotated[int, Query(ge=0, le=ID_MAX)]
#: An ``after=`` cursor: the id of the last item seen (0: from the start).
AfterId = RowId
#: A ``before=`` cursor: the id of the oldest item seen.
BeforeId = Annotated[int, Query(ge=1, le=ID_MAX)]
#: A row id in a path (an artifact's, a task run's): a ``BIGINT``.
PathId = Annotated[int, Path(ge=1, le=ID_MAX)]
#: A mapped task run's index (``-1``: the task itself): an ``INTEGER``.
ItemIndex = Annotated[int, Query(ge=-1, le=INT_MAX)]
#: A time in seconds since the epoch, as a filter: finite (no ``nan``, no ``inf``).
Since = Annotated[float, Query(ge=0, le=1e11, allow_inf_nan=False)]
