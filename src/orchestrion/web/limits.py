"""Request body size cap, enforced before a handler reads the body."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["BodyLimit", "OnRefuse"]

#: Told of each refused request (to audit it): its scope and the declared length, if any.
OnRefuse = Callable[[Scope, str | None], Awaitable[None]]


class BodyLimit:
    """Refuse bodies over `max_bytes` with 413, by Content-Length or while streaming.
    `larger` gives path prefixes a higher limit (a version's code is larger than a spec)."""

    def __init__(
        self,
        app: ASGIApp,
        max_bytes: int,
        on_refuse: OnRefuse | None = None,
        larger: Mapping[str, int] | None = None,
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self._on_refuse = on_refuse
        self.larger = dict(larger or {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on with its body read ahead, or answer 413 without calling the
        app when the declared or the streamed size is over the limit."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self._limit_for(str(scope.get("path", "")))
        if self._declared_too_big(scope, limit):
            await self._refuse(scope, send, limit)
            return
        # Read the whole body first (at most `limit` of it): an error raised from inside
        # `receive` would reach the handler's body parsing and come out as a 400.
        opening = await self._read_body(receive, limit)
        if opening is None:
            await self._refuse(scope, send, limit)
            return
        await self.app(scope, _replay(opening, receive), send)

    def _limit_for(self, path: str) -> int:
        for prefix, limit in self.larger.items():
            if path.startswith(prefix):
                return limit
        return self.max_bytes

    def _declared_too_big(self, scope: Scope, limit: int) -> bool:
        """A Content-Length over the limit, or one that is not a number."""
        for name, value in scope.get("headers", []):
            if name == b"content-length":
                try:
                    too_big = int(value) > limit
                except ValueError:
                    too_big = True
                if too_big:
                    return True
        return False

    async def _read_body(self, receive: Receive, limit: int) -> Message | None:
        """The first message the app will receive: the whole body in one message, or the
        disconnect that cut it short; None when the body grew over the limit."""
        chunks: list[bytes] = []
        seen = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away
                return message
            body = message.get("body", b"")
            seen += len(body)
            if seen > limit:
                return None
            chunks.append(body)
            if not message.get("more_body", False):
                break
        return {"type": "http.request", "body": b"".join(chunks), "more_body": False}

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        if self._on_refuse is not None:
            await self._on_refuse(scope, _declared_length(scope))
        body = json.dumps(
            {
                "error": {
                    "code": "too_large",
                    "message": f"request body is over the {limit}-byte limit",
                }
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _declared_length(scope: Scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            return str(value.decode("latin-1"))[:20]
    return None


def _replay(opening: Message, receive: Receive) -> Receive:
    """A `receive` that hands out `opening` once, then whatever the client sends next."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if not replayed:
            replayed = True
            return opening
        return await receive()

    return replay
