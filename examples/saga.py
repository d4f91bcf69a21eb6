"""Order saga: reserve stock, charge the card, ship; undo what was done if a step fails.

    orchestrion run examples/saga.py                        # every step succeeds
    orchestrion run examples/saga.py -p fail_at=ship        # shipping fails: exit code 1
    orchestrion runs show <run-id>                          # undo:charge_card, undo:reserve_...

Each step declares an ``undo`` compensation. When a step fails, the steps that had already
succeeded are compensated in reverse order (refund the card, then release the stock) and
the run ends ``failed`` with those task runs ``compensated``. The failing step itself has
nothing to undo. ``fail_at`` picks the step that fails (``none``, ``reserve``, ``charge``
or ``ship``), so the compensation path can be tried without breaking anything.

The "services" are a ledger file, ``./.orchestrion/work/saga/<order>.ledger``: every
action and compensation appends one line, keyed by the task's idempotency key so that a
retried step is never applied twice.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from orchestrion.spec.python import task, workflow

WORK_DIR = Path(".orchestrion") / "work" / "saga"


class StepFailed(Exception):
    """A service refused the request (here: on purpose, because of ``fail_at``)."""


def _ledger(order_id: str) -> Path:
    WORK_DIR.mkdir(parents=True, exist_ok=True)
    return WORK_DIR / f"{order_id}.ledger"


def _record(order_id: str, key: str, entry: dict[str, Any]) -> None:
    """Append one ledger line, once per idempotency key (a retry finds it already there)."""
    path = _ledger(order_id)
    done = path.read_text().splitlines() if path.exists() else []
    if any(json.loads(line)["key"] == key for line in done):
        return
    with path.open("a") as out:
        out.write(json.dumps({"key": key, **entry}, sort_keys=True) + "\n")


def release_stock(order_id: str, result: dict[str, Any], ctx: Any, **_: Any) -> None:
    """Compensation of reserve_stock: put the reserved items back."""
    print(f"releasing reservation {result['reservation']} for order {order_id}")
    _record(order_id, ctx.idempotency_key, {"action": "release", "of": result["reservation"]})


def refund_card(order_id: str, result: dict[str, Any], ctx: Any, **_: Any) -> None:
    """Compensation of charge_card: refund the charge."""
    print(f"refunding charge {result['charge']} ({result['cents']} cents) for {order_id}")
    _record(order_id, ctx.idempotency_key, {"action": "refund", "of": result["charge"]})


def cancel_shipment(order_id: str, result: dict[str, Any], ctx: Any, **_: Any) -> None:
    """Compensation of ship: recall the parcel (only reached if a later step failed)."""
    print(f"recalling parcel {result['tracking']} for {order_id}")
    _record(order_id, ctx.idempotency_key, {"action": "recall", "of": result["tracking"]})


def _maybe_fail(step: str, fail_at: str) -> None:
    if fail_at == step:
        raise StepFailed(f"{step} refused the order (fail_at={fail_at})")


@task(undo=release_stock)
def reserve_stock(order_id: str, items: list[dict[str, Any]], fail_at: str, ctx: Any) -> dict:
    """Reserve every item of the order in the warehouse."""
    _maybe_fail("reserve", fail_at)
    reservation = f"R-{order_id}"
    count = sum(item["qty"] for item in items)
    print(f"reserved {count} items for order {order_id}: {reservation}")
    _record(order_id, ctx.idempotency_key, {"action": "reserve", "id": reservation})
    return {"reservation": reservation, "items": count}


@task(undo=refund_card)
def charge_card(order_id: str, cents: int, stock: dict, fail_at: str, ctx: Any) -> dict:
    """Charge the customer's card for the order."""
    _maybe_fail("charge", fail_at)
    charge = f"CH-{order_id}"
    print(f"charged {cents} cents for {stock['items']} items: {charge}")
    _record(order_id, ctx.idempotency_key, {"action": "charge", "id": charge, "cents": cents})
    return {"charge": charge, "cents": cents}


@task(undo=cancel_shipment)
def ship(order_id: str, payment: dict, fail_at: str, ctx: Any) -> dict:
    """Hand the parcel to the carrier."""
    _maybe_fail("ship", fail_at)
    tracking = f"TRK-{order_id}"
    print(f"shipped order {order_id} (paid by {payment['charge']}): {tracking}")
    _record(order_id, ctx.idempotency_key, {"action": "ship", "id": tracking})
    return {"tracking": tracking}


@task
def confirm(order_id: str, parcel: dict) -> str:
    """Tell the customer the order is on its way."""
    message = f"order {order_id} shipped, tracking {parcel['tracking']}"
    print(message)
    return message


@workflow(tags=["example", "saga"])
def saga(
    order_id: str = "A-1001",
    cents: int = 4999,
    fail_at: Literal["none", "reserve", "charge", "ship"] = "none",
):
    """Reserve, charge, ship; compensate in reverse order when a step fails."""
    items = [{"sku": "P-100", "qty": 2}, {"sku": "P-300", "qty": 1}]
    stock = reserve_stock(order_id, items, fail_at)
    payment = charge_card(order_id, cents, stock, fail_at)
    parcel = ship(order_id, payment, fail_at)
    confirm(order_id, parcel)
