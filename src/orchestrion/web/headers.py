"""Headers every response carries, whichever layer answered: a route, an error handler, a
refusal of the guard or of the body limit, or a static file."""

from __future__ import annotations

from typing import Final

from starlette.types import ASGIApp, Message, Receive, Scope, Send

__all__ = ["ALWAYS", "AlwaysHeaders"]

#: Name (lower-case) and value. ``nosniff``: a browser never reads a JSON error, a log
#: line or a task's output as HTML or script, whatever the text inside looks like.
ALWAYS: Final = ((b"x-content-type-options", b"nosniff"),)


class AlwaysHeaders:
    """Add `ALWAYS` to every HTTP response that does not set those headers itself."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Pass the request on; add the headers to the response's start message."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [(name, value) for name, value in ALWAYS if name not in present]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
