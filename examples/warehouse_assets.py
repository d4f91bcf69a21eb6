"""A raw -> staged -> mart pipeline wired by data assets instead of a schedule per step.

    orchestrion run examples/warehouse_assets.py -w raw_orders -p day=2026-11-26
    orchestrion assets history warehouse.raw_orders      # the event, its run and row count
    orchestrion assets show warehouse.orders_mart        # upstream: warehouse.staged_orders
    orchestrion server --workflows examples              # then /assets in the browser

* ``raw_orders`` lands one day of (simulated) orders as JSON lines and declares that it
  produces the asset ``warehouse.raw_orders``, partitioned by day
  (``partition="{{ params.day }}"``). Its result carries the row count as the asset
  event's metadata (``asset_metadata(rows=...)``); the key is taken out of the stored
  result.
* ``staged_orders`` has an asset trigger: once ``warehouse.raw_orders`` has a new event
  (a scheduler is running: ``orchestrion server`` or ``orchestrion scheduler``), it
  starts with ``day`` set to that event's partition, drops bad rows and produces
  ``warehouse.staged_orders`` for the same day.
* ``orders_mart`` waits the same way for ``warehouse.staged_orders`` and writes a per
  product summary: ``warehouse.orders_mart``, which promises to be at most 26 hours old
  (``max_age``): past that it shows as stale, and an ``asset.stale`` event lets a
  notification rule tell someone.

``orchestrion assets materialize warehouse.orders_mart --partition 2026-11-26 --upstream``
starts the three producers, furthest upstream first. Output goes to
``./.orchestrion/work/warehouse/`` under the directory the command runs in.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

from orchestrion import asset, asset_metadata, assets_updated
from orchestrion.spec.python import task, workflow

WORK_DIR = Path(".orchestrion") / "work" / "warehouse"
PRICES = {"P-100": 1999, "P-200": 4550, "P-300": 125}


def _path(layer: str, day: str) -> Path:
    return WORK_DIR / layer / f"{day}.jsonl"


def _write(path: Path, rows: list[dict[str, Any]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def _read(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines()]


@task(produces=[asset("warehouse.raw_orders", partition="{{ params.day }}")])
def land_orders(day: str) -> dict[str, Any]:
    """Land a day of orders; every tenth has a negative quantity (a bad row)."""
    rng = random.Random(day)
    rows = [
        {"id": i, "product": rng.choice(sorted(PRICES)), "qty": -1 if i % 10 == 9 else 1 + i % 3}
        for i in range(40)
    ]
    _write(_path("raw", day), rows)
    return {"file": str(_path("raw", day)), **asset_metadata(rows=len(rows))}


@task(
    consumes=["warehouse.raw_orders"],
    produces=[asset("warehouse.staged_orders", partition="{{ params.day }}")],
)
def stage_orders(day: str) -> dict[str, Any]:
    """Keep the good rows and price them."""
    rows = [
        {**r, "cents": r["qty"] * PRICES[r["product"]]}
        for r in _read(_path("raw", day))
        if r["qty"] > 0
    ]
    _write(_path("staged", day), rows)
    return {"file": str(_path("staged", day)), **asset_metadata(rows=len(rows))}


@task(
    consumes=["warehouse.staged_orders"],
    produces=[asset("warehouse.orders_mart", partition="{{ params.day }}", max_age="26h")],
)
def build_mart(day: str) -> dict[str, Any]:
    """Revenue per product for the day."""
    totals: dict[str, int] = {}
    for r in _read(_path("staged", day)):
        totals[r["product"]] = totals.get(r["product"], 0) + r["cents"]
    _write(_path("mart", day), [{"product": p, "cents": c} for p, c in sorted(totals.items())])
    return {"products": len(totals), **asset_metadata(products=len(totals))}


@workflow(tags=["example", "assets"])
def raw_orders(day: str = "2026-11-26"):
    """Land the day's orders (start it by hand, on a schedule, or by materializing)."""
    land_orders(day)


@workflow(
    tags=["example", "assets"],
    triggers=[assets_updated(["warehouse.raw_orders"], params={"day": "{{ partition }}"})],
)
def staged_orders(day: str = "2026-11-26"):
    """Stage a day once its raw orders landed."""
    stage_orders(day)


@workflow(
    tags=["example", "assets"],
    triggers=[assets_updated(["warehouse.staged_orders"], params={"day": "{{ partition }}"})],
)
def orders_mart(day: str = "2026-11-26"):
    """Summarise a day once it is staged."""
    build_mart(day)
