"""The HTTP runner against a real local server (stdlib ThreadingHTTPServer): no mocks."""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import msgspec
import pytest

from orchestrion.auth.secret_box import Secret
from orchestrion.auth.ssrf import AllowList
from orchestrion.errors import CancelRequested, TaskError, TaskTimeout, UnsafeURL
from orchestrion.spec.model import HttpAction
from orchestrion.worker.context import TaskContext
from orchestrion.worker.http import MAX_RESPONSE_BYTES, MAX_TEXT_CHARS, run_http

SECRET = "s3cr3t-token-value"
#: The test server listens on 127.0.0.1, which HTTP tasks refuse unless allow-listed.
LOOPBACK = AllowList.parse(["127.0.0.1/32"])


class Handler(BaseHTTPRequestHandler):
    """Routes by path; every request it saw is recorded on the server."""

    server: Server
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:
        return None

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def do_DELETE(self) -> None:
        self._route()

    def do_HEAD(self) -> None:
        self._route()

    def _route(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.seen.append(
            {"method": self.command, "path": self.path, "headers": dict(self.headers)}
        )
        path = self.path.split("?", 1)[0]
        parts = path.strip("/").split("/")
        route = ROUTES.get(parts[0])
        if route is None:
            self._send(404, "text/plain", b"no such route")
            return
        route(self, parts[1:], body)

    def _send(self, status: int, ctype: str, body: bytes, **headers: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers.items():
            self.send_header(name.replace("_", "-"), value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, value: Any) -> None:
        self._send(status, "application/json", json.dumps(value).encode())


def _json_route(h: Handler, args: list[str], body: bytes) -> None:
    h._json(200, {"hello": "world", "n": [1, 2, 3]})


def _echo(h: Handler, args: list[str], body: bytes) -> None:
    h._json(
        200,
        {
            "method": h.command,
            "headers": {k.lower(): v for k, v in h.headers.items()},
            "body": json.loads(body) if body else None,
            "raw_length": len(body),
        },
    )


def _status(h: Handler, args: list[str], body: bytes) -> None:
    h._send(int(args[0]), "text/plain", f"status body {args[0]}".encode())


def _text(h: Handler, args: list[str], body: bytes) -> None:
    h._send(200, "text/plain; charset=utf-8", "plain text ✓".encode())


def _bad_json(h: Handler, args: list[str], body: bytes) -> None:
    h._send(200, "application/json", b'{"unterminated": ')


def _problem(h: Handler, args: list[str], body: bytes) -> None:
    h._send(200, "application/problem+json", b'{"title": "ok"}')


def _error(h: Handler, args: list[str], body: bytes) -> None:
    h._send(500, "text/plain", b"boom: database down " + b"x" * 2000)


def _sleep(h: Handler, args: list[str], body: bytes) -> None:
    deadline = time.monotonic() + float(args[0])
    while time.monotonic() < deadline and not h.server.stopping.is_set():
        time.sleep(0.02)
    with contextlib.suppress(OSError):  # the client gave up, as intended
        h._json(200, {"slept": True})


def _redirect(h: Handler, args: list[str], body: bytes) -> None:
    h._send(302, "text/plain", b"", Location="/" + "/".join(args))


def _redirect_to(h: Handler, args: list[str], body: bytes) -> None:
    target = {
        "ftp": "ftp://127.0.0.1/file",
        "file": "file:///etc/passwd",
        "other-loopback": "http://127.0.0.2/",
        "metadata": "http://169.254.169.254/latest/meta-data/",
    }[args[0]]
    h._send(302, "text/plain", b"", Location=target)


def _loop(h: Handler, args: list[str], body: bytes) -> None:
    h._send(302, "text/plain", b"", Location="/loop")


def _big(h: Handler, args: list[str], body: bytes) -> None:
    h._send(200, "application/octet-stream", b"z" * (MAX_RESPONSE_BYTES + 10))


def _big_chunked(h: Handler, args: list[str], body: bytes) -> None:
    """A large body with no Content-Length, so only the streaming cap can catch it."""
    h.send_response(200)
    h.send_header("Content-Type", "text/plain")
    h.send_header("Transfer-Encoding", "chunked")
    h.end_headers()
    chunk = b"q" * 65536
    try:
        for _ in range(MAX_RESPONSE_BYTES // len(chunk) + 2):
            h.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        h.wfile.write(b"0\r\n\r\n")
    except OSError:
        pass  # the client stopped reading at the cap


def _empty_json(h: Handler, args: list[str], body: bytes) -> None:
    h._send(200, "application/json", b"")


def _secret_header(h: Handler, args: list[str], body: bytes) -> None:
    h._send(200, "text/plain", b"ok", X_Server_Secret=SECRET)


def _long_text(h: Handler, args: list[str], body: bytes) -> None:
    """A text body with the secret at character ``args[0]`` (the text result is cut)."""
    text = "." * int(args[0]) + SECRET + "." * 100
    h._send(200, "text/plain; charset=utf-8", text.encode())


ROUTES = {
    "long-text": _long_text,
    "json": _json_route,
    "echo": _echo,
    "status": _status,
    "text": _text,
    "bad-json": _bad_json,
    "problem": _problem,
    "error": _error,
    "sleep": _sleep,
    "redirect": _redirect,
    "redirect-to": _redirect_to,
    "loop": _loop,
    "big": _big,
    "big-chunked": _big_chunked,
    "empty-json": _empty_json,
    "secret-header": _secret_header,
}


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.seen: list[dict[str, Any]] = []
        self.stopping = threading.Event()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        return None  # clients that hang up early are part of the tests


@pytest.fixture
def server() -> Iterator[Server]:
    srv = Server()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield srv
    finally:
        srv.stopping.set()
        srv.shutdown()
        srv.server_close()
        thread.join()


class Sink:
    def __init__(self) -> None:
        self.lines: list[tuple[str, str]] = []
        self.lock = threading.Lock()

    def __call__(self, stream: str, line: str) -> None:
        with self.lock:
            self.lines.append((stream, line))

    @property
    def text(self) -> str:
        return "\n".join(line for _, line in self.lines)


def make_ctx(sink: Sink | None = None) -> TaskContext:
    return TaskContext(
        run_id="run-1",
        task_run_id=3,
        task_name="call",
        workflow="wf",
        attempt=1,
        idempotency_key="idem-key-42",
        log_sink=sink or Sink(),
    )


# --------------------------------------------------------------------------- success


def test_get_json(server: Server) -> None:
    result = run_http(HttpAction(url=f"{server.base}/json"), make_ctx(), allow=LOOPBACK)
    assert result == {"hello": "world", "n": [1, 2, 3]}


def test_post_json_body_is_echoed(server: Server) -> None:
    body = {"name": "x; $(id)", "items": [1, None, {"deep": True}], "text": "ünï ✓"}
    action = HttpAction(method="POST", url=f"{server.base}/echo", json_body=body)
    result = run_http(action, make_ctx(), allow=LOOPBACK)
    assert result["method"] == "POST"
    assert result["body"] == body
    assert result["headers"]["content-type"] == "application/json"


def test_no_json_body_sends_no_body(server: Server) -> None:
    result = run_http(
        HttpAction(method="POST", url=f"{server.base}/echo"), make_ctx(), allow=LOOPBACK
    )
    assert result["body"] is None
    assert result["raw_length"] == 0


def test_headers_and_idempotency_key_are_sent(server: Server) -> None:
    action = HttpAction(url=f"{server.base}/echo", headers={"X-Custom": "abc", "Accept": "*/*"})
    headers = run_http(action, make_ctx(), allow=LOOPBACK)["headers"]
    assert headers["x-custom"] == "abc"
    assert headers["idempotency-key"] == "idem-key-42"


def test_user_idempotency_key_wins_whatever_its_case(server: Server) -> None:
    action = HttpAction(url=f"{server.base}/echo", headers={"idempotency-KEY": "mine"})
    run_http(action, make_ctx(), allow=LOOPBACK)
    sent = [v for k, v in server.seen[-1]["headers"].items() if k.lower() == "idempotency-key"]
    assert sent == ["mine"]


def test_non_json_body(server: Server) -> None:
    result = run_http(HttpAction(url=f"{server.base}/text"), make_ctx(), allow=LOOPBACK)
    assert result == {"status": 200, "text": "plain text ✓"}


def test_plus_json_content_type_is_parsed(server: Server) -> None:
    assert run_http(HttpAction(url=f"{server.base}/problem"), make_ctx(), allow=LOOPBACK) == {
        "title": "ok"
    }


def test_empty_json_body_is_none(server: Server) -> None:
    assert run_http(HttpAction(url=f"{server.base}/empty-json"), make_ctx(), allow=LOOPBACK) is None


def test_head(server: Server) -> None:
    result = run_http(
        HttpAction(method="HEAD", url=f"{server.base}/json"), make_ctx(), allow=LOOPBACK
    )
    assert result["status"] == 200
    assert result["headers"]["content-type"] == "application/json"


def test_shared_client_is_used_and_left_open(server: Server) -> None:
    with httpx.Client() as client:
        for _ in range(2):
            result = run_http(
                HttpAction(url=f"{server.base}/json"), make_ctx(), client=client, allow=LOOPBACK
            )
            assert result["hello"] == "world"
        assert not client.is_closed


# --------------------------------------------------------------------------- status


def test_expect_status_match(server: Server) -> None:
    action = HttpAction(url=f"{server.base}/status/404", expect_status=(404, 410))
    assert run_http(action, make_ctx(), allow=LOOPBACK) == {
        "status": 404,
        "text": "status body 404",
    }


def test_expect_status_mismatch(server: Server) -> None:
    action = HttpAction(url=f"{server.base}/status/200", expect_status=(201,))
    with pytest.raises(TaskError, match=r"HTTP 200 from GET http://127\.0\.0\.1:\d+/status/200"):
        run_http(action, make_ctx(), allow=LOOPBACK)


def test_non_2xx_is_an_error_by_default(server: Server) -> None:
    with pytest.raises(TaskError, match=r"HTTP 404 .*: status body 404"):
        run_http(HttpAction(url=f"{server.base}/status/404"), make_ctx(), allow=LOOPBACK)


def test_500_error_message_shows_start_of_body(server: Server) -> None:
    with pytest.raises(TaskError) as info:
        run_http(
            HttpAction(method="DELETE", url=f"{server.base}/error"), make_ctx(), allow=LOOPBACK
        )
    message = info.value.message
    assert message.startswith(f"HTTP 500 from DELETE {server.base}/error: boom: database down")
    assert len(message) < 700  # body cut at 500 characters


def test_malformed_json(server: Server) -> None:
    with pytest.raises(TaskError, match="malformed JSON") as info:
        run_http(HttpAction(url=f"{server.base}/bad-json"), make_ctx(), allow=LOOPBACK)
    assert "unterminated" in info.value.message


# --------------------------------------------------------------------------- failures


def test_timeout(server: Server) -> None:
    action = HttpAction(url=f"{server.base}/sleep/5", timeout=0.3)
    started = time.monotonic()
    with pytest.raises(TaskTimeout, match=r"timed out after 0\.3s"):
        run_http(action, make_ctx(), allow=LOOPBACK)
    assert time.monotonic() - started < 2


def test_caller_timeout_is_used_when_smaller(server: Server) -> None:
    action = HttpAction(url=f"{server.base}/sleep/5", timeout=30)
    with pytest.raises(TaskTimeout, match=r"timed out after 0\.2s"):
        run_http(action, make_ctx(), timeout=0.2, allow=LOOPBACK)


def test_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    url = f"http://127.0.0.1:{port}/x"
    with pytest.raises(TaskError, match=rf"GET {url} failed: ConnectError") as info:
        run_http(HttpAction(url=url), make_ctx(), allow=LOOPBACK)
    assert not isinstance(info.value, TaskTimeout)


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://127.0.0.1/file", "gopher://x/", "javascript:alert(1)"]
)
def test_bad_scheme_is_refused(url: str) -> None:
    with pytest.raises(TaskError, match="refusing URL scheme"):
        run_http(HttpAction(url=url), make_ctx(), allow=LOOPBACK)


def test_response_too_large(server: Server) -> None:
    with pytest.raises(TaskError, match="response larger than"):
        run_http(HttpAction(url=f"{server.base}/big"), make_ctx(), allow=LOOPBACK)


def test_streamed_response_too_large(server: Server) -> None:
    with pytest.raises(TaskError, match="response larger than"):
        run_http(HttpAction(url=f"{server.base}/big-chunked"), make_ctx(), allow=LOOPBACK)


# --------------------------------------------------------------------------- redirects


def test_redirect_is_followed(server: Server) -> None:
    result = run_http(
        HttpAction(url=f"{server.base}/redirect/redirect/json"), make_ctx(), allow=LOOPBACK
    )
    assert result["hello"] == "world"
    assert [s["path"] for s in server.seen] == [
        "/redirect/redirect/json",
        "/redirect/json",
        "/json",
    ]


def test_expected_redirect_status_is_not_followed(server: Server) -> None:
    action = HttpAction(url=f"{server.base}/redirect/json", expect_status=(302,))
    assert run_http(action, make_ctx(), allow=LOOPBACK) == {"status": 302, "text": ""}
    assert len(server.seen) == 1


@pytest.mark.parametrize("target", ["ftp", "file"])
def test_redirect_to_bad_scheme_is_refused(server: Server, target: str) -> None:
    with pytest.raises(TaskError, match="refusing URL scheme"):
        run_http(HttpAction(url=f"{server.base}/redirect-to/{target}"), make_ctx(), allow=LOOPBACK)


def test_redirect_loop_stops(server: Server) -> None:
    with pytest.raises(TaskError, match="more than 5 redirects"):
        run_http(HttpAction(url=f"{server.base}/loop"), make_ctx(), allow=LOOPBACK)
    assert len(server.seen) == 6


# --------------------------------------------------------------------------- logging


def test_header_values_never_reach_the_log(server: Server) -> None:
    sink = Sink()
    action = HttpAction(
        method="POST",
        url=f"{server.base}/redirect/secret-header",
        headers={"Authorization": f"Bearer {SECRET}", "X-Api-Key": SECRET},
        json_body={"a": 1},
    )
    assert run_http(action, make_ctx(sink), allow=LOOPBACK) == {"status": 200, "text": "ok"}
    assert sink.lines and {stream for stream, _ in sink.lines} == {"log"}
    assert len(sink.lines) == 4  # request + response, twice (one redirect)
    assert SECRET not in sink.text
    assert "idem-key-42" not in sink.text
    assert "authorization" in sink.text.lower() and "x-api-key" in sink.text.lower()
    assert "x-server-secret" in sink.text.lower()


def test_password_in_url_is_redacted_in_logs_and_errors(server: Server) -> None:
    sink = Sink()
    url = f"http://user:{SECRET}@127.0.0.1:{server.server_address[1]}/status/500"
    with pytest.raises(TaskError) as info:
        run_http(HttpAction(url=url), make_ctx(sink), allow=LOOPBACK)
    assert SECRET not in info.value.message
    assert SECRET not in sink.text


def test_cancel_before_sending(server: Server) -> None:
    ctx = make_ctx()
    ctx.cancel_event.set()
    with pytest.raises(CancelRequested):
        run_http(HttpAction(url=f"{server.base}/json"), ctx, allow=LOOPBACK)
    assert server.seen == []


# --------------------------------------------------------------------------- SSRF


def test_loopback_is_refused_without_an_allow_list(server: Server) -> None:
    with pytest.raises(UnsafeURL, match="non-public address"):
        run_http(HttpAction(url=f"{server.base}/json"), make_ctx())
    assert server.seen == []


def test_redirect_to_a_refused_address_is_not_followed(server: Server) -> None:
    """The first hop is allowed (127.0.0.1), the redirect to 127.0.0.2 is not."""
    action = HttpAction(url=f"{server.base}/redirect-to/other-loopback")
    with pytest.raises(UnsafeURL, match="non-public"):
        run_http(action, make_ctx(), allow=LOOPBACK)
    assert len(server.seen) == 1


def test_connections_go_to_the_checked_address(server: Server) -> None:
    """A name is resolved once, by the check; the connection uses that answer (no rebinding)."""
    answers = iter([["127.0.0.1"], ["10.0.0.1"]])  # a rebinding resolver's 2nd answer is unused
    port = server.base.rsplit(":", 1)[1]
    result = run_http(
        HttpAction(url=f"http://rebind.test:{port}/json"),
        make_ctx(),
        allow=LOOPBACK,
        resolve=lambda host, port: next(answers),
    )
    assert result["hello"] == "world"
    assert server.seen[0]["headers"]["Host"] == f"rebind.test:{port}"


# ------------------------------------------------------------------- secrets at the cut


@pytest.mark.parametrize("offset", range(MAX_TEXT_CHARS - len(SECRET) - 1, MAX_TEXT_CHARS + 2))
def test_a_text_result_is_masked_before_it_is_cut(server: Server, offset: int) -> None:
    """Issue 12: a text body is cut to `MAX_TEXT_CHARS`; a secret across the cut leaves
    no piece behind (the result is masked whole first)."""
    ctx = msgspec.structs.replace(make_ctx(), secret_values={"s": Secret(SECRET)})
    result = run_http(HttpAction(url=f"{server.base}/long-text/{offset}"), ctx, allow=LOOPBACK)
    kept = result["text"]
    assert len(kept) <= MAX_TEXT_CHARS
    assert not any(SECRET[i : i + 3] in kept for i in range(len(SECRET) - 2)), offset
