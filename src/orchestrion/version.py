"""The version of Orchestrion, as a constant: ``orchestrion --version`` prints it without
importing `importlib.metadata` (tens of milliseconds of start-up; issue 20). It is the
``version`` of pyproject.toml, and a test holds the two equal."""

from __future__ import annotations

__all__ = ["VERSION"]

VERSION = "0.1.0"
