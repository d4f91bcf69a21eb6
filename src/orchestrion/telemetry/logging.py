"""Structured logs for long-running processes: JSON lines or readable lines.

Every Orchestrion log call names a stable event (``log.info("worker.started", extra=...)``);
ids and values travel as fields, not inside the message, so JSON logs can be queried.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import sys
from typing import Any, Literal

from orchestrion.telemetry.tracing import current_ids

__all__ = ["LogFormat", "configure_logging"]

LogFormat = Literal["text", "json"]

# Attributes every LogRecord has; anything else was passed through `extra=` and is a field.
_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}


def _fields(record: logging.LogRecord) -> dict[str, Any]:
    return {k: v for k, v in record.__dict__.items() if k not in _STANDARD}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": dt.datetime.fromtimestamp(record.created, dt.UTC).isoformat(),
            "level": record.levelname.lower(),
            "logger": record.name,
            "event": record.getMessage(),
            **_fields(record),
        }
        ids = current_ids()
        if ids is not None:  # logged while running a traced attempt: join the two up
            entry.setdefault("trace_id", f"{ids[0]:032x}")
            entry.setdefault("span_id", f"{ids[1]:016x}")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str, ensure_ascii=False)


class TextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        when = dt.datetime.fromtimestamp(record.created).strftime("%H:%M:%S")
        fields = " ".join(f"{k}={v}" for k, v in _fields(record).items())
        line = f"{when} {record.levelname:<7} {record.getMessage()}" + (
            f" {fields}" if fields else ""
        )
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def configure_logging(fmt: LogFormat = "text", level: str = "INFO") -> None:
    """Send Orchestrion's logs to stderr in `fmt`; called once by each process's entry."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else TextFormatter())
    logger = logging.getLogger("orchestrion")
    logger.handlers[:] = [handler]
    logger.setLevel(level.upper())
    logger.propagate = False
