"""Values that hold secrets keep them out of their ``repr`` (which may reach a log or a
traceback): they are msgspec Structs, which have no per-field ``repr=False``, so each
says what it hides (`orchestrion.types.repr_hiding`)."""

from __future__ import annotations

from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey, Secret
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.worker.context import TaskContext
from orchestrion.worker.executors import Invocation

PLAIN = "hunter2-plain-value"


def _context() -> TaskContext:
    return TaskContext(
        run_id="r",
        task_run_id=1,
        task_name="t",
        workflow="w",
        attempt=1,
        idempotency_key="k",
        secret_values={"TOKEN": Secret(PLAIN)},
    )


def test_a_task_context_shows_no_secret_and_still_masks() -> None:
    ctx = _context()
    assert PLAIN not in repr(ctx)
    assert "secret_values" not in repr(ctx)
    assert "run_id='r'" in repr(ctx)
    assert PLAIN not in ctx.masker.mask(f"token is {PLAIN}")  # the cached property works


def test_an_invocation_and_an_endpoint_show_no_secret() -> None:
    call = Invocation(
        ref="m:f",
        source=None,
        kwargs={},
        run_id="r",
        task_run_id=1,
        task_name="t",
        workflow="w",
        attempt=1,
        idempotency_key="k",
        secrets={"TOKEN": PLAIN},
    )
    assert PLAIN not in repr(call)
    endpoint = Endpoint(
        namespace="d", name="q", kind="redis", url="redis://x", password=Secret(PLAIN)
    )
    assert PLAIN not in repr(endpoint)
    assert "password" not in repr(endpoint)


def test_settings_show_no_key_ring() -> None:
    settings = Settings(key_ring=KeyRing([MasterKey("k1", b"\x01" * 32)]))
    assert "key_ring" not in repr(settings)
    assert "KeyRing" not in repr(settings)
    assert "database_url=" in repr(settings)
