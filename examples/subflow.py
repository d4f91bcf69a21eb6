"""Sub-workflows: a nightly report that runs one child workflow per region.

    orchestrion run examples/subflow.py                     # the parent, nightly_report
    orchestrion run examples/subflow.py -p day=2026-01-01
    orchestrion run examples/subflow.py -w region_report -p region=apac

``region_report`` is an ordinary workflow (it can be run on its own with ``-w``): it
fetches a region's sales and summarises them. ``nightly_report`` calls it twice, as two
sub-workflow tasks (``emea`` and ``amer``): each call starts a child run with its own task
runs, attempts and logs, and the parent task waits for it; its result is the child run's
result, a mapping of the child's final tasks' names to their results. ``combine`` then
reads ``summarise`` from both children.

``orchestrion runs list`` shows the parent run and its two child runs; run ids of the
children are in each sub-workflow task's row of ``orchestrion runs show <parent-run-id>``.
"""

from __future__ import annotations

import datetime as dt
import random
from typing import Any

from orchestrion.spec.python import task, workflow


@task(retries=1, backoff="100ms")
def fetch_sales(region: str, day: str) -> list[int]:
    """The region's order amounts for the day (deterministic fake data)."""
    rng = random.Random(f"{region}/{day}")
    sales = [rng.randint(5, 500) for _ in range(rng.randint(5, 15))]
    print(f"{region}: fetched {len(sales)} orders for {day}")
    return sales


@task
def summarise(region: str, sales: list[int]) -> dict[str, Any]:
    """Count, total and largest order of a region."""
    summary = {"region": region, "orders": len(sales), "total": sum(sales), "max": max(sales)}
    print(f"{region}: {summary['orders']} orders, total {summary['total']}")
    return summary


@workflow(tags=["example", "child"])
def region_report(region: str = "emea", day: str = "2026-11-26"):
    """One region's daily sales summary (used as a sub-workflow)."""
    sales = fetch_sales(region, day)
    summarise(region, sales)


@task
def combine(emea: dict[str, Any], amer: dict[str, Any]) -> dict[str, Any]:
    """Merge the regional summaries into the company-wide figure."""
    regions = [emea["summarise"], amer["summarise"]]
    report = {
        "regions": [r["region"] for r in regions],
        "orders": sum(r["orders"] for r in regions),
        "total": sum(r["total"] for r in regions),
    }
    print(f"all regions: {report['orders']} orders, total {report['total']}")
    return report


@workflow(tags=["example", "parent"])
def nightly_report(day: dt.date = dt.date(2026, 11, 26)):
    """Run region_report for each region as a sub-workflow, then combine the results."""
    emea = region_report.options(name="emea")(region="emea", day=day)
    amer = region_report.options(name="amer")(region="amer", day=day)
    combine(emea, amer)
