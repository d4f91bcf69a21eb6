"""Daily ETL: extract one day of orders, clean each partition in parallel, load the lot.

    orchestrion run examples/etl.py                        # day defaults to 2026-11-26
    orchestrion run examples/etl.py -p day=2026-01-01 -p partitions=8

* ``extract`` pulls the day's raw orders from a (simulated) source database and splits them
  into partitions. The source is flaky: the first attempt of every run fails with a
  `SourceBusy` error, and the task is retried (``retries=3``, exponential backoff, only
  for that error). ``orchestrion runs show`` lists both attempts.
* ``transform`` runs once per partition (``transform.map(...)``): it drops bad rows and
  converts amounts to cents. Each partition is a task run of its own, retried on its own.
* ``load`` receives the list of every partition's result (in partition order), writes
  the clean rows as JSON lines and returns a summary.

Everything is deterministic for a given day. Output goes to
``./.orchestrion/work/etl/<day>.jsonl`` under the directory the command runs in; nothing
is written anywhere else.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import random
from pathlib import Path
from typing import Any

from orchestrion.spec.python import task, workflow

WORK_DIR = Path(".orchestrion") / "work" / "etl"
PRODUCTS = {"P-100": 1999, "P-200": 4550, "P-300": 125, "P-400": 99900}


class SourceBusy(Exception):
    """The source database refused the query for now (a transient error worth retrying)."""


@task(retries=3, backoff="200ms", factor=2.0, jitter=0.0, retry_on=[SourceBusy])
def extract(day: str, partitions: int, ctx: Any) -> list[dict[str, Any]]:
    """Read the day's raw orders and split them into partitions."""
    if ctx.attempt == 1:
        raise SourceBusy(f"source is busy (simulated) while reading {day}; try again")
    rng = random.Random(day)
    rows = []
    for n in range(rng.randint(40, 60)):
        product = rng.choice(sorted(PRODUCTS))
        qty = rng.choice([1, 1, 2, 3, 0, -1])  # 0 and -1 are bad rows transform drops
        rows.append({"order": f"{day}-{n:04d}", "product": product, "qty": qty})
    parts = [{"partition": i, "day": day, "rows": rows[i::partitions]} for i in range(partitions)]
    print(f"extracted {len(rows)} orders for {day} into {partitions} partitions")
    return parts


@task(retries=2, backoff="100ms")
def transform(part: dict[str, Any]) -> dict[str, Any]:
    """Clean one partition: drop rows with no quantity, price every line in cents."""
    good = [
        {**row, "cents": PRODUCTS[row["product"]] * row["qty"]}
        for row in part["rows"]
        if row["qty"] > 0
    ]
    dropped = len(part["rows"]) - len(good)
    print(f"partition {part['partition']}: kept {len(good)}, dropped {dropped}")
    return {"partition": part["partition"], "rows": good, "dropped": dropped}


@task
def load(parts: list[dict[str, Any]], day: str) -> dict[str, Any]:
    """Write every clean row to one JSON-lines file; return the day's totals."""
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    target = WORK_DIR / f"{day}.jsonl"
    tmp = target.with_suffix(".tmp")
    rows = [row for part in parts for row in part["rows"]]
    with tmp.open("w") as out:
        for row in rows:
            out.write(json.dumps(row, sort_keys=True) + "\n")
    os.replace(tmp, target)  # all or nothing: a retried load never leaves half a file
    summary = {
        "day": day,
        "rows": len(rows),
        "dropped": sum(part["dropped"] for part in parts),
        "revenue_cents": sum(row["cents"] for row in rows),
        "file": str(target),
    }
    print(f"loaded {summary['rows']} rows into {target}")
    return summary


@workflow(tags=["example", "etl"])
def etl(day: dt.date = dt.date(2026, 11, 26), partitions: int = 4):
    """Extract a day of orders, transform each partition in parallel, load the results."""
    parts = extract(day, partitions)
    cleaned = transform.map(parts)
    load(cleaned, day)
