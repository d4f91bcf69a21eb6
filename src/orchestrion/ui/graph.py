"""A layered layout of a workflow's DAG, drawn as SVG by the templates.

Longest-path layering (each task one column right of its deepest dependency), then one
barycenter sweep to order each column by its parents' rows. Linear in tasks plus edges,
so a 2,000-task run lays out in milliseconds on the server, and the browser only paints.
A mapped task is one node whose item counts are shown (and updated live) on it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from orchestrion.spec.model import WorkflowSpec
from orchestrion.store.records import TaskRunRecord

__all__ = ["NODE_H", "NODE_W", "Graph", "Node", "layout", "layout_dag"]

NODE_W = 190
NODE_H = 40
GAP_X = 70
GAP_Y = 16
PAD = 12


@dataclass(slots=True)
class Node:
    """One task drawn on the graph: its position, the state of its task run (``none`` before one
    exists), and for a mapped task the count of its items in each state."""

    name: str
    x: int
    y: int
    state: str = "none"
    kind: str = "task"
    task_run_id: int | None = None
    mapped: bool = False
    #: Item state -> count, for a mapped task.
    counts: dict[str, int] = field(default_factory=dict)

    @property
    def total(self) -> int:
        """How many items a mapped task has (zero before it expands)."""
        return sum(self.counts.values())


@dataclass(slots=True)
class Graph:
    """A laid-out workflow graph, ready for the template: nodes, edge paths and the canvas size."""

    nodes: list[Node]
    #: SVG path data, one per dependency edge.
    edges: list[tuple[str, str, str]]
    width: int
    height: int


def _layers(spec: WorkflowSpec) -> dict[str, int]:
    # A dict, not spec.task(): that is a linear search, quadratic over a 2,000-task graph.
    return _depths({t.name: t.depends_on for t in spec.tasks})


def _depths(depends: Mapping[str, Sequence[str]]) -> dict[str, int]:
    layer: dict[str, int] = {}
    for start in depends:  # the graph is acyclic; resolve depths iteratively
        stack = [start]
        while stack:
            name = stack[-1]
            deps = depends[name] if name not in layer else ()
            todo = [d for d in deps if d not in layer]
            if todo:
                stack.extend(todo)
                continue
            stack.pop()
            if name not in layer:
                layer[name] = 1 + max((layer[d] for d in deps), default=-1)
    return layer


def _order(spec: WorkflowSpec, layer: dict[str, int]) -> list[list[str]]:
    return _columns({t.name: t.depends_on for t in spec.tasks}, layer)


def _columns(deps: Mapping[str, Sequence[str]], layer: dict[str, int]) -> list[list[str]]:
    columns: list[list[str]] = [[] for _ in range(max(layer.values(), default=0) + 1)]
    for name in deps:
        columns[layer[name]].append(name)
    row: dict[str, float] = {}
    for col in columns:
        keyed = []
        for i, name in enumerate(col):
            parents = [row[d] for d in deps[name] if d in row]
            keyed.append((sum(parents) / len(parents) if parents else float(i), i, name))
        keyed.sort()
        col[:] = [name for _, _, name in keyed]
        for i, name in enumerate(col):
            row[name] = float(i)
    return columns


def _states(
    task_runs: Iterable[TaskRunRecord],
) -> tuple[dict[str, TaskRunRecord], dict[str, Counter[str]]]:
    main: dict[str, TaskRunRecord] = {}
    items: dict[str, Counter[str]] = {}
    for tr in task_runs:
        if tr.kind == "item":
            items.setdefault(tr.task_name, Counter())[tr.state.value] += 1
        elif tr.kind != "undo":
            main[tr.task_name] = tr
    return main, items


def layout(spec: WorkflowSpec, task_runs: Sequence[TaskRunRecord] = ()) -> Graph:
    """Positions for every task of `spec`, coloured by the states in `task_runs`."""
    columns = _order(spec, _layers(spec))
    main, items = _states(task_runs)
    mapped = {t.name for t in spec.tasks if t.map_over is not None}
    nodes: dict[str, Node] = {}
    for c, col in enumerate(columns):
        for r, name in enumerate(col):
            tr = main.get(name)
            nodes[name] = Node(
                name=name,
                x=PAD + c * (NODE_W + GAP_X),
                y=PAD + r * (NODE_H + GAP_Y),
                state=tr.state.value if tr else "none",
                kind=tr.kind if tr else "task",
                task_run_id=tr.id if tr else None,
                mapped=name in mapped,
                counts=dict(items.get(name, {})),
            )
    edges = []
    for task in spec.tasks:
        end = nodes[task.name]
        for dep in task.depends_on:
            start = nodes[dep]
            x1, y1 = start.x + NODE_W, start.y + NODE_H // 2
            x2, y2 = end.x, end.y + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append((dep, task.name, f"M{x1} {y1}C{mid} {y1} {mid} {y2} {x2} {y2}"))
    tallest = max((len(col) for col in columns), default=1)
    width = 2 * PAD + len(columns) * (NODE_W + GAP_X) - GAP_X
    height = 2 * PAD + tallest * (NODE_H + GAP_Y) - GAP_Y
    return Graph(nodes=list(nodes.values()), edges=edges, width=width, height=height)


def layout_dag(depends: Mapping[str, Sequence[str]], states: Mapping[str, str]) -> Graph:
    """The same drawing for any acyclic graph (node -> the nodes it depends on), such as
    assets' lineage; `states` colour the nodes (``none`` for those it leaves out)."""
    columns = _columns(depends, _depths(depends))
    nodes: dict[str, Node] = {}
    for c, col in enumerate(columns):
        for r, name in enumerate(col):
            x, y = PAD + c * (NODE_W + GAP_X), PAD + r * (NODE_H + GAP_Y)
            nodes[name] = Node(name=name, x=x, y=y, state=states.get(name, "none"))
    edges = []
    for name, deps in depends.items():
        end = nodes[name]
        for dep in deps:
            start = nodes[dep]
            x1, y1 = start.x + NODE_W, start.y + NODE_H // 2
            x2, y2 = end.x, end.y + NODE_H // 2
            mid = (x1 + x2) // 2
            edges.append((dep, name, f"M{x1} {y1}C{mid} {y1} {mid} {y2} {x2} {y2}"))
    tallest = max((len(col) for col in columns), default=1)
    width = 2 * PAD + len(columns) * (NODE_W + GAP_X) - GAP_X
    height = 2 * PAD + tallest * (NODE_H + GAP_Y) - GAP_Y
    return Graph(nodes=list(nodes.values()), edges=edges, width=width, height=height)
