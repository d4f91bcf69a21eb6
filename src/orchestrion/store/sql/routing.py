"""Routing by worker labels: which task runs a worker may claim.

A task's ``requires`` (``{"gpu": "a100"}``) is stored on each of its task runs as one
canonical JSON text (sorted keys, no spaces), or NULL when it requires nothing. A worker
with labels L may run a task run whose requirement R is a subset of L; a claim therefore
lists the canonical text of every non-empty subset of L (at most 2**MAX_LABELS - 1, 255)
and matches ``requires IS NULL OR requires IN (...)``: plain equality, the same SQL on
both dialects, and no JSON functions in the claim.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Mapping
from typing import Any

from orchestrion.store.sql.named import marks
from orchestrion.store.sql.queries import Q

__all__ = ["requirement_key", "route_filter"]


def requirement_key(requires: Mapping[str, str]) -> str | None:
    """The stored form of a task's requirements (None: none)."""
    if not requires:
        return None
    return json.dumps(dict(sorted(requires.items())), separators=(",", ":"))


def route_filter(labels: Mapping[str, str] | None) -> tuple[str, tuple[Any, ...]]:
    """A condition on ``requires`` (AND-ed to a claim) and its parameters. `labels` None
    means a claimer that ignores requirements: the in-process worker of ``orchestrion
    run``, which runs whatever the run it was asked to finish holds."""
    if labels is None:
        return "", ()
    items = sorted(labels.items())
    keys = [
        requirement_key(dict(subset))
        for size in range(1, len(items) + 1)
        for subset in itertools.combinations(items, size)
    ]
    if not keys:
        return f" {Q.route_unlabelled}", ()
    return f" {Q.route_labelled.fill(keys=marks(len(keys)))}", tuple(keys)
