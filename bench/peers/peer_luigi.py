"""Luigi: the four workloads as Tasks with `requires()` and file targets, `luigi.build`.

Mode: the local scheduler (`local_scheduler=True`) with WORKERS worker processes (Luigi
forks a process per running task when workers > 1). State is Luigi's own: a task is done
when its output target exists, so every task writes a small `LocalTarget` file (a fresh
folder per run) and the join reads its inputs' files; that is how Luigi passes results.
"""

from __future__ import annotations

import json
import logging
import sys
import tempfile
from typing import Any

import luigi
from common import Peer, join, main, noop, timed

WORKERS = 4  # two per core: tasks are short, and each one is a forked process


class Base(luigi.Task):
    root = luigi.Parameter()

    def output(self) -> luigi.LocalTarget:
        return luigi.LocalTarget(f"{self.root}/{self.task_id}.json")

    def save(self, value: object) -> None:
        with self.output().open("w") as f:
            json.dump(value, f)


class Start(Base):
    width = luigi.IntParameter()

    def run(self) -> None:
        self.save(list(range(self.width)))


class Mid(Base):
    width = luigi.IntParameter()
    index = luigi.IntParameter()

    def requires(self) -> Any:
        return Start(root=self.root, width=self.width)

    def run(self) -> None:
        self.save(noop())


class Join(Base):
    width = luigi.IntParameter()

    def requires(self) -> Any:
        # Luigi resolves dependencies before running, so the fan-out's width is known here.
        return [Mid(root=self.root, width=self.width, index=i) for i in range(self.width)]

    def run(self) -> None:
        values = []
        for target in self.input():
            with target.open() as f:
                values.append(json.load(f))
        self.save(join(values))


class Link(Base):
    index = luigi.IntParameter()

    def requires(self) -> Any:
        return Link(root=self.root, index=self.index - 1) if self.index else []

    def run(self) -> None:
        self.save(noop())


class Cell(Base):
    layer = luigi.IntParameter()
    index = luigi.IntParameter()
    width = luigi.IntParameter()

    def requires(self) -> Any:
        if not self.layer:
            return []
        return [
            Cell(root=self.root, layer=self.layer - 1, index=i, width=self.width)
            for i in range(self.width)
        ]

    def run(self) -> None:
        self.save(noop())


def build(tasks: list[luigi.Task], workers: int = WORKERS) -> None:
    result = luigi.build(
        tasks, local_scheduler=True, workers=workers, detailed_summary=True, log_level="WARNING"
    )
    assert result.status.name.startswith("SUCCESS"), result.summary_text


def fresh() -> str:
    return tempfile.mkdtemp(prefix="peers-luigi-")


def w3(depth: int, width: int) -> float:
    root = fresh()
    last = [Cell(root=root, layer=depth - 1, index=i, width=width) for i in range(width)]
    return timed(lambda: build(last))


def client() -> None:
    logging.disable(logging.INFO)

    class A(Base):
        def run(self) -> None:
            self.save(1)

    class B(Base):
        def requires(self) -> Any:
            return A(root=self.root)

        def run(self) -> None:
            self.save(2)

    class C(Base):
        def requires(self) -> Any:
            return B(root=self.root)

        def run(self) -> None:
            self.save(4)

    build([C(root=fresh())], workers=1)


PEER = Peer(
    name="luigi",
    w1=lambda width: timed(lambda: build([Join(root=fresh(), width=width)])),
    w2=lambda length: timed(lambda: build([Link(root=fresh(), index=length - 1)])),
    w3=w3,
    client=client,
)

if __name__ == "__main__":
    sys.setrecursionlimit(10_000)
    main(PEER, sys.argv[0])
