"""Dagster: the four workloads as jobs of ops, run with `execute_in_process`.

Mode: `job.execute_in_process(instance=...)` on a SQLite-backed `DagsterInstance` in a
temporary folder (what `dagster dev` keeps under DAGSTER_HOME: runs and every event are
written to SQLite). `execute_in_process` always uses Dagster's in-process executor: one op
at a time, in this process (a deployed job's default is the multiprocess executor, a
process per op). Op outputs go through the in-memory IO manager, execute_in_process's
default. Fan-outs use dynamic outputs (`DynamicOut` ... `.map(...).collect()`).
"""

import sys
import tempfile
from typing import Any

from common import Peer, client_home, items, join, main, noop, timed
from dagster import (
    DagsterInstance,
    DynamicOut,
    DynamicOutput,
    In,
    Nothing,
    graph,
    job,
    op,
)

_INSTANCE: list[DagsterInstance] = []


def instance() -> DagsterInstance:
    if not _INSTANCE:
        _INSTANCE.append(DagsterInstance.local_temp(tempfile.mkdtemp(prefix="peers-dagster-")))
    return _INSTANCE[0]


@op(out=DynamicOut(int), config_schema={"n": int})
def start_op(context):  # type: ignore[no-untyped-def]  # Dagster reads the hint
    for i in items(context.op_config["n"]):
        yield DynamicOutput(i, mapping_key=str(i))


@op
def noop_op(x: int) -> int:
    return noop(x)


@op
def join_op(xs: list[int]) -> int:
    return join(xs)


@op(ins={"after": In(Nothing)})
def layer_op() -> int:
    return noop()


@job
def fan_job() -> None:
    join_op(start_op().map(noop_op).collect())


def chain_job(length: int) -> Any:
    @op
    def first() -> int:
        return noop()

    @graph(name=f"chain{length}")
    def chain_graph() -> None:
        value = first()
        for i in range(1, length):
            value = noop_op.alias(f"c{i}")(value)

    return chain_graph.to_job()


def layers_job(depth: int, width: int) -> Any:
    @graph(name=f"layers{depth}x{width}")
    def layers_graph() -> None:
        previous: list[Any] = []
        for layer in range(depth):
            previous = [
                layer_op.alias(f"l{layer}_{i}")(after=previous)
                if previous
                else layer_op.alias(f"l{layer}_{i}")()
                for i in range(width)
            ]

    return layers_graph.to_job()


def run(job_def: Any, config: dict[str, Any] | None = None) -> float:
    def go() -> None:
        result = job_def.execute_in_process(instance=instance(), run_config=config)
        assert result.success

    return timed(go)


def client() -> None:
    @op
    def a() -> int:
        return 1

    @op
    def b(x: int) -> int:
        return x + 1

    @op
    def c(x: int) -> int:
        return x * 2

    @job
    def three() -> None:
        c(b(a()))

    with DagsterInstance.local_temp(client_home()) as temp:
        assert three.execute_in_process(instance=temp).success


PEER = Peer(
    name="dagster",
    w1=lambda width: run(fan_job, {"ops": {"start_op": {"config": {"n": width}}}}),
    w2=lambda length: run(chain_job(length)),
    w3=lambda depth, width: run(layers_job(depth, width)),
    client=client,
)

if __name__ == "__main__":
    main(PEER, sys.argv[0])
