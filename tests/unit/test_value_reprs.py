"""Values that hold secrets keep them out of their ``repr`` (which may reach a log or a
traceback): they are msgspec Structs, which have no per-field ``repr=False``, so each
says what it hides (`orchestrion.types.repr_hiding`)."""

from __future__ import annotations

from rich.pretty import pretty_repr

from orchestrion.app.settings import Settings
from orchestrion.auth.secret_box import KeyRing, MasterKey, Secret
from orchestrion.brokers.endpoint import Endpoint
from orchestrion.worker.context import TaskContext
from orchestrion.worker.executors import Invocation
from orchestrion.worker.kinds import AttemptKindContext
from tests.helpers import task_context

PLAIN = "hunter2-plain-value"


def _context() -> TaskContext:
    return task_context(secret_values={"TOKEN": Secret(PLAIN)})


def _shown(value: object) -> str:
    """What both ``repr`` and rich (a pretty-printed value, a traceback's locals) show."""
    return repr(value) + "\n" + pretty_repr(value)


def test_a_task_context_shows_no_secret_and_still_masks() -> None:
    ctx = _context()
    assert PLAIN not in _shown(ctx)
    assert "secret_values" not in _shown(ctx)
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
    assert PLAIN not in _shown(call)
    endpoint = Endpoint(
        namespace="d", name="q", kind="redis", url="redis://x", password=Secret(PLAIN)
    )
    assert PLAIN not in _shown(endpoint)
    assert "password" not in _shown(endpoint)


def test_a_kind_context_shows_neither_scope_nor_connections() -> None:
    """The scope holds the run's parameters and upstream results, handed to plugins."""
    kind_ctx = AttemptKindContext(
        task=_context(), deadline=None, scope={"params": {"api_token": PLAIN}}
    )
    assert PLAIN not in _shown(kind_ctx)
    assert "scope" not in _shown(kind_ctx)
    assert kind_ctx.files == {}  # a real default, not a dataclass field object


def test_settings_show_no_key_ring() -> None:
    settings = Settings(key_ring=KeyRing([MasterKey("k1", b"\x01" * 32)]))
    assert "key_ring" not in _shown(settings)
    assert "KeyRing" not in _shown(settings)
    assert "database_url=" in repr(settings)


def test_a_master_key_shows_its_id_not_its_bytes() -> None:
    key = MasterKey("k1", bytes(range(1, 33)))
    assert "k1" in repr(key)
    assert repr(bytes(range(1, 33))) not in _shown(key)
    assert "\\x01\\x02" not in _shown(key)
