"""Secrets in the worker: open the ones a task declared, and mask them in all it reports.

A task names secrets by reference (`TaskSpec.secrets`, ``{ENV_VAR: name}``, names in the
workflow's namespace). Just before the attempt runs, the worker opens exactly those
(declared-only: a task cannot read a secret of its namespace that it did not declare, so a
spec review shows everything a task can see). Every value, in every form the `Masker`
knows (JSON- and URL-escaped, line by line), is replaced by ``***`` in each log line as it
is captured and in the result, error and traceback before they leave the worker.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping

from orchestrion.auth.masking import Masker
from orchestrion.auth.secret_box import KEY_ENV, KEY_FILE_ENV, Secret
from orchestrion.store.record import replace
from orchestrion.store.records import Outcome
from orchestrion.worker.context import LogSink

__all__ = ["HIDDEN_ENV", "SecretResolver", "masked_outcome", "masked_sink", "masker_for"]

#: ``(namespace, names) -> {name: value}``; raises (`NotFound`, `SecretError`) when it cannot.
SecretResolver = Callable[[str, Collection[str]], Mapping[str, Secret]]

#: Never handed down to a task's processes: the master key opens every secret.
HIDDEN_ENV: tuple[str, ...] = (KEY_ENV, KEY_FILE_ENV)


def masker_for(values: Mapping[str, Secret]) -> Masker:
    """A masker of every value the task's opened secrets hold."""
    return Masker(v.reveal() for v in values.values())


def masked_sink(sink: LogSink, masker: Masker) -> LogSink:
    """`sink`, with every secret value in a line replaced before it is written; `sink` itself when
    there is nothing to mask."""
    if masker.is_empty:
        return sink

    def masked(stream: str, line: str) -> None:
        sink(stream, masker.mask(line))

    return masked


def masked_outcome(outcome: Outcome, masker: Masker) -> Outcome:
    """`outcome` with every secret value masked in its result, error and traceback, before it leaves
    the worker."""
    if masker.is_empty:
        return outcome
    return replace(
        outcome,
        result=masker.mask_data(outcome.result),
        error=None if outcome.error is None else masker.mask(outcome.error),
        traceback=None if outcome.traceback is None else masker.mask(outcome.traceback),
        # An artifact's text is shown on the run page: masked like the rest (a file
        # artifact's bytes, like a stored result's, are not read to be masked).
        artifacts=tuple(
            replace(
                a,
                title=None if a.title is None else masker.mask(a.title),
                body=None if a.body is None else masker.mask(a.body),
            )
            for a in outcome.artifacts
        ),
    )
