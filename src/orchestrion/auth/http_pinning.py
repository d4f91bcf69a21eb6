"""Connect outbound HTTP (HTTP tasks, notifications) only to the addresses the SSRF check
approved (no DNS rebinding).

`orchestrion.auth.ssrf.check_url` resolves a host once and checks every address. If the
HTTP client then resolved the name again to connect, a rebinding DNS server could answer
with 127.0.0.1 the second time. So the client of an HTTP task gets a network backend that
connects to the checked addresses of ``(host, port)`` and to nothing else; TLS still
verifies the certificate against the host name. A host an admin allow-listed by name is
connected to by name (it was trusted, not resolved).
"""

from __future__ import annotations

import threading
from collections.abc import Iterable

import httpcore
import httpx

from orchestrion.auth.ssrf import CheckedURL

__all__ = ["Pins", "pinned_client"]


class Pins:
    """``(host, port) -> addresses`` approved for this task's exchange (every hop adds)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pins: dict[tuple[str, int], tuple[str, ...]] = {}

    def add(self, checked: CheckedURL) -> None:
        """Approve the addresses that `checked` resolved to, for its host and port."""
        with self._lock:
            self._pins[(_key(checked.host), checked.port)] = checked.addresses

    def lookup(self, host: str, port: int) -> tuple[str, ...] | None:
        """The approved addresses for `host` and `port` (empty: connect by name, allow-listed), or
        None when they were never checked and no connection may be made."""
        with self._lock:
            return self._pins.get((_key(host), port))


def _key(host: str) -> str:
    return host.strip("[]").lower().rstrip(".")


class _PinnedBackend(httpcore.SyncBackend):
    def __init__(self, pins: Pins) -> None:
        self._pins = pins

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.NetworkStream:
        addresses = self._pins.lookup(host, port)
        if addresses is None:
            raise httpcore.ConnectError(f"{host}:{port} was not checked; refusing to connect")
        if not addresses:  # allow-listed by name
            return super().connect_tcp(host, port, timeout, local_address, socket_options)
        error: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                error = exc
        assert error is not None
        raise error


class _PinnedTransport(httpx.HTTPTransport):
    def __init__(self, pins: Pins) -> None:
        super().__init__()
        # Same pool httpx builds, with our backend: the only seam httpx offers for it.
        self._pool = httpcore.ConnectionPool(
            ssl_context=httpx.create_ssl_context(),
            network_backend=_PinnedBackend(pins),
        )


def pinned_client(pins: Pins) -> httpx.Client:
    """A client that never reads proxy settings from the environment and connects only to
    pinned addresses."""
    return httpx.Client(transport=_PinnedTransport(pins), follow_redirects=False, trust_env=False)
