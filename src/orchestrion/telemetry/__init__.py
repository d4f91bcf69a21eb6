"""Logging and tracing: off unless a process configures them (metrics are the
server's, `orchestrion.web.metrics`)."""
