"""Logging (and, later, metrics and tracing): off unless a process configures it."""
