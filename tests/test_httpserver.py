"""spendgate.httpserver: the gateway's HTTP/1.1 protocol under uvicorn, on raw sockets.

The whole proxy and API suite runs on this protocol (spendgate.serving.uvicorn_options);
these tests pin what that suite does not reach: framing, pipelining, Expect, HEAD,
bad requests, app failures, idle connections, slow readers, shutdown.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn

from spendgate.httpserver import GatewayProtocol
from spendgate.proxy.forward import read_body
from spendgate.testing.gateway import free_port

App = Callable[..., Any]


class Served:
    """An ASGI app served by uvicorn with GatewayProtocol in a thread of its own."""

    def __init__(self, app: App, **config: Any) -> None:
        self.port = free_port()
        options = {"timeout_keep_alive": 5, "timeout_graceful_shutdown": 5, **config}
        self.server = uvicorn.Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=self.port,
                loop="uvloop",
                http=GatewayProtocol,
                lifespan="off",
                log_config=None,
                proxy_headers=False,
                server_header=False,  # as the gateway runs it (spendgate.serving)
                date_header=False,
                **options,
            )
        )
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Served:
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.01)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.should_exit = True
        self.thread.join(15)

    def connect(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=5)
        return sock


def read_until(sock: socket.socket, end: bytes, limit: int = 1 << 20) -> bytes:
    data = b""
    while end not in data:
        chunk = sock.recv(65536)
        if not chunk:
            break
        data += chunk
        assert len(data) < limit
    return data


def read_all(sock: socket.socket) -> bytes:
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


async def answer(send: Any, status: int, body: bytes, headers: list[Any]) -> None:
    """A whole answer in two sends."""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with the method, path, query and body it got (known length)."""
    body = await read_body(receive)
    out = b"%s %s %s %s" % (
        scope["method"].encode(),
        scope["path"].encode(),
        scope["query_string"],
        body,
    )
    headers = [(b"content-type", b"text/plain"), (b"content-length", b"%d" % len(out))]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": out})


@pytest.fixture
def served_echo() -> Iterator[Served]:
    with Served(echo) as served:
        yield served


def test_an_answer_keeps_the_apps_headers_in_order_and_adds_none(served_echo: Served) -> None:
    with served_echo.connect() as sock:
        sock.sendall(b"POST /v1/x?a=1 HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\n\r\nhello")
        data = read_until(sock, b"hello")
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.split(b"\r\n") == [
        b"HTTP/1.1 200 OK",
        b"content-type: text/plain",
        b"content-length: 20",
    ]
    assert body == b"POST /v1/x a=1 hello"


def test_keep_alive_and_pipelined_requests_answer_in_order(served_echo: Served) -> None:
    with served_echo.connect() as sock:
        sock.sendall(
            b"POST /one HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\na"
            b"POST /two HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nb"
            b"GET /three HTTP/1.1\r\nHost: t\r\n\r\n"
        )
        data = read_until(sock, b"GET /three  ")
        assert data.index(b"POST /one  a") < data.index(b"POST /two  b") < data.index(b"/three")
        # The connection is still usable.
        sock.sendall(b"GET /four HTTP/1.1\r\nHost: t\r\n\r\n")
        assert b"GET /four  " in read_until(sock, b"GET /four  ")


def test_a_chunked_upload_is_handed_over_as_it_arrives_and_expect_is_answered() -> None:
    got: list[tuple[bytes, bool]] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        while True:
            message = await receive()
            got.append((message["body"], message["more_body"]))
            if not message["more_body"]:
                break
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with Served(app) as served, served.connect() as sock:
        sock.sendall(
            b"POST /up HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        assert read_until(sock, b"\r\n\r\n") == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"3\r\nabc\r\n")
        time.sleep(0.2)
        sock.sendall(b"2\r\nde\r\n0\r\n\r\n")
        head = read_until(sock, b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 204 No Content\r\n")
    assert b"transfer-encoding" not in head and b"content-length" not in head
    assert b"".join(body for body, _ in got) == b"abcde"
    assert got[0] == (b"abc", True) and got[-1][1] is False


def test_a_big_upload_pauses_reading_until_the_app_takes_it() -> None:
    seen: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await asyncio.sleep(0.5)  # 4 MiB arrive meanwhile: reading must pause
        total = 0
        while True:
            message = await receive()
            seen.append(len(message["body"]))
            total += len(message["body"])
            if not message["more_body"]:
                break
        body = str(total).encode()
        headers = [(b"content-length", b"%d" % len(body))]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    size = 4 * 1024 * 1024
    with Served(app) as served:
        answer = httpx.post(f"http://127.0.0.1:{served.port}/", content=b"x" * size, timeout=20)
    assert answer.text == str(size)
    assert max(seen) <= 512 * 1024  # never the whole upload in memory at once


def test_streamed_answers_are_chunked_and_head_and_304_carry_no_body() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        status = 304 if scope["path"] == "/cached" else 200
        await send({"type": "http.response.start", "status": status, "headers": []})
        for part in (b"one ", b"two"):
            await send({"type": "http.response.body", "body": part, "more_body": True})
        await send({"type": "http.response.body", "body": b""})

    with Served(app) as served:
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            data = read_until(sock, b"0\r\n\r\n")
            assert data.endswith(b"\r\n\r\n4\r\none \r\n3\r\ntwo\r\n0\r\n\r\n")
            assert b"transfer-encoding: chunked" in data
            sock.sendall(
                b"HEAD / HTTP/1.1\r\nHost: t\r\n\r\nGET /cached HTTP/1.1\r\nHost: t\r\n\r\n"
            )
            time.sleep(0.3)
            data = sock.recv(65536)
        heads = data.split(b"\r\n\r\n")
        assert heads[0].startswith(b"HTTP/1.1 200 OK") and heads[1].startswith(b"HTTP/1.1 304")
        assert heads[2] == b""  # nothing after the two heads


def test_http_1_0_and_connection_close_end_the_connection_after_the_answer(
    served_echo: Served,
) -> None:
    for request in (
        b"GET /a HTTP/1.0\r\n\r\n",
        b"GET /b HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n",
    ):
        with served_echo.connect() as sock:
            sock.sendall(request)
            data = read_all(sock)  # returns once the server has closed
        assert data.startswith(b"HTTP/1.1 200 OK") and b"connection: close" in data


def test_a_bad_request_gets_400_and_the_connection_closes(served_echo: Served) -> None:
    with served_echo.connect() as sock:
        sock.sendall(b"NOT HTTP AT ALL\r\n\r\n")
        data = read_all(sock)
    assert data.startswith(b"HTTP/1.1 400 Bad Request") and b"connection: close" in data


def test_an_upgrade_is_answered_as_plain_http_then_closed(served_echo: Served) -> None:
    with served_echo.connect() as sock:
        sock.sendall(b"GET /u HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n")
        data = read_all(sock)
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"GET /u  ")


def test_an_app_failure_is_a_500_before_the_answer_and_a_cut_after(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/late":
            await send({"type": "http.response.start", "status": 200, "headers": []})
            await send({"type": "http.response.body", "body": b"part", "more_body": True})
        raise ValueError("boom")

    with Served(app) as served, caplog.at_level(logging.ERROR, "uvicorn.error"):
        with served.connect() as sock:
            sock.sendall(b"GET /early HTTP/1.1\r\nHost: t\r\n\r\n")
            early = read_all(sock)
        with served.connect() as sock:
            sock.sendall(b"GET /late HTTP/1.1\r\nHost: t\r\n\r\n")
            late = read_all(sock)
    assert early.startswith(b"HTTP/1.1 500 Internal Server Error")
    assert late.startswith(b"HTTP/1.1 200 OK") and not late.endswith(b"0\r\n\r\n")
    assert "Exception in ASGI application" in caplog.text


def test_a_line_break_in_a_header_is_refused_not_sent() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await answer(send, 200, b"x", [(b"x-evil", b"a\r\nset-cookie: stolen=1")])

    with Served(app) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_all(sock)
    assert b"stolen" not in data and data.startswith(b"HTTP/1.1 500")


def test_an_idle_connection_closes_after_the_keep_alive_timeout() -> None:
    with Served(echo, timeout_keep_alive=0.3) as served, served.connect() as sock:
        sock.sendall(b"GET /a HTTP/1.1\r\nHost: t\r\n\r\n")
        read_until(sock, b"GET /a  ")
        started = time.monotonic()
        assert read_all(sock) == b""  # closed by the server
        assert 0.2 < time.monotonic() - started < 3


def test_a_disconnect_reaches_every_receive_and_later_sends_raise() -> None:
    events: list[str] = []
    gone = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["asgi"]["spec_version"] == "2.4"
        await receive()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"a", "more_body": True})
        both = await asyncio.gather(receive(), receive())  # they wait for the client to go
        events.extend(message["type"] for message in both)
        try:
            await send({"type": "http.response.body", "body": b"b", "more_body": True})
        except OSError:  # ASGI 2.4: the app learns the client has gone at its next send
            events.append("send raised")
        gone.set()

    with Served(app) as served:
        with served.connect() as sock:
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            read_until(sock, b"1\r\na\r\n")
        assert gone.wait(5)
    assert events == ["http.disconnect", "http.disconnect", "send raised"]


def test_a_slow_reader_holds_the_app_back_instead_of_memory() -> None:
    progress: list[int] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        block = b"x" * 65536
        for i in range(256):  # 16 MiB
            await send({"type": "http.response.body", "body": block, "more_body": True})
            progress.append(i)
        await send({"type": "http.response.body", "body": b""})

    with Served(app) as served, served.connect() as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        time.sleep(0.5)
        assert len(progress) < 128  # the app waits for the client, not for memory
        tail, total = b"", 0
        while not tail.endswith(b"0\r\n\r\n"):
            chunk = sock.recv(1 << 20)
            assert chunk, "closed before the end"
            total += len(chunk)
            tail = (tail + chunk)[-16:]
    assert len(progress) == 256 and total > 256 * 65536


def test_shutdown_lets_the_answer_in_flight_finish_then_stops() -> None:
    release = threading.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"start ", "more_body": True})
        while not release.is_set():
            await asyncio.sleep(0.01)
        await send({"type": "http.response.body", "body": b"end"})

    served = Served(app)
    with served:
        idle = served.connect()
        busy = served.connect()
        busy.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        read_until(busy, b"start ")
        served.server.should_exit = True
        assert read_all(idle) == b""  # an idle connection is closed at once
        release.set()
        rest = read_all(busy)  # the answer finishes, then the connection closes
        assert rest.endswith(b"3\r\nend\r\n0\r\n\r\n")
        idle.close()
        busy.close()


def test_an_answer_before_a_big_body_is_read_keeps_the_connection_usable() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/early":
            await asyncio.sleep(0.3)  # the upload fills the buffer: reading pauses
            headers = [(b"content-length", b"2")]
            await send({"type": "http.response.start", "status": 413, "headers": headers})
            await send({"type": "http.response.body", "body": b"no"})
            return
        await echo(scope, receive, send)

    size = 2 * 1024 * 1024
    with Served(app) as served, served.connect() as sock:
        sock.sendall(b"POST /early HTTP/1.1\r\nHost: t\r\nContent-Length: %d\r\n\r\n" % size)
        sender = threading.Thread(target=sock.sendall, args=(b"x" * size,))
        sender.start()
        assert read_until(sock, b"no").startswith(b"HTTP/1.1 413")
        sender.join(10)
        assert not sender.is_alive()  # the rest of the body was read (and dropped)
        sock.sendall(b"GET /next HTTP/1.1\r\nHost: t\r\n\r\n")
        assert b"GET /next  " in read_until(sock, b"GET /next  ")


def test_an_early_answer_to_an_expect_request_closes_the_connection() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await answer(send, 401, b"no", [(b"content-length", b"2")])

    with Served(app) as served, served.connect() as sock:
        sock.sendall(
            b"POST /up HTTP/1.1\r\nHost: t\r\nContent-Length: 100000\r\n"
            b"Expect: 100-continue\r\n\r\n"
        )
        data = read_all(sock)  # the body never comes: answered, then closed
    assert data.startswith(b"HTTP/1.1 401") and b"100 Continue" not in data


def test_a_request_trickling_in_is_not_cut_by_the_idle_timeout() -> None:
    with Served(echo, timeout_keep_alive=0.5) as served, served.connect() as sock:
        for part in (
            b"POST /slow HTTP/1.1\r\n",
            b"Host: t\r\n",
            b"Content-Length: 2\r\n\r\n",
            b"ok",
        ):
            sock.sendall(part)
            time.sleep(0.3)  # 1.2 s in all, each gap under the timeout
        assert b"POST /slow  ok" in read_until(sock, b"POST /slow  ok")


def test_a_pipelined_upgrade_request_is_answered_after_the_one_before() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["path"] == "/first":
            await asyncio.sleep(0.2)
        await echo(scope, receive, send)

    with Served(app) as served, served.connect() as sock:
        sock.sendall(
            b"GET /first HTTP/1.1\r\nHost: t\r\n\r\n"
            b"GET /second HTTP/1.1\r\nHost: t\r\nConnection: Upgrade\r\nUpgrade: h2c\r\n\r\n"
        )
        data = read_all(sock)
    assert data.index(b"GET /first  ") < data.index(b"GET /second  ")


def test_bytes_after_a_connection_close_request_do_not_lose_its_answer(
    served_echo: Served,
) -> None:
    with served_echo.connect() as sock:
        sock.sendall(b"GET /last HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\nGARBAGE")
        data = read_all(sock)
    assert data.startswith(b"HTTP/1.1 200 OK") and data.endswith(b"GET /last  ")


def test_the_access_log_line_is_uvicorns(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "uvicorn.access")
    handler = logging.NullHandler()
    access = logging.getLogger("uvicorn.access")
    access.addHandler(handler)  # the log is on when its logger has handlers, as in uvicorn
    try:
        with Served(echo) as served, served.connect() as sock:
            sock.sendall(b'GET /a%2Fb?x="1" HTTP/1.1\r\nHost: t\r\n\r\n')
            read_until(sock, b"GET /a/b")
            port = sock.getsockname()[1]
    finally:
        access.removeHandler(handler)
    assert f'127.0.0.1:{port} - "GET /a%2Fb?x=%221%22 HTTP/1.1" 200' in caplog.text


def test_headers_configured_in_uvicorn_come_first() -> None:
    with Served(echo, headers=[("x-served-by", "here")]) as served, served.connect() as sock:
        sock.sendall(b"GET /h HTTP/1.1\r\nHost: t\r\n\r\n")
        head = read_until(sock, b"GET /h  ").split(b"\r\n")
    assert head[1] == b"x-served-by: here" and head[2] == b"content-type: text/plain"


@pytest.mark.parametrize(
    "bad",
    [
        b"POST /cut HTTP/1.1\r\nHost: t\r\nContent-Length: zz\r\n\r\n",
        b"POST /cut HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
        b"3\r\nabc\r\nNOT A CHUNK SIZE\r\n",
    ],
    ids=["in-its-head", "queued-then-in-its-body"],
)
def test_bytes_that_are_not_http_after_pipelined_requests_get_400_after_their_answers(
    bad: bytes,
) -> None:
    ran: list[str] = []

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        ran.append(scope["path"])
        if scope["path"] == "/slow":
            await asyncio.sleep(0.2)  # still answering when the bad bytes arrive
        await echo(scope, receive, send)

    with Served(app) as served, served.connect() as sock:
        sock.sendall(
            b"GET /slow HTTP/1.1\r\nHost: t\r\n\r\n"
            b"POST /next HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\nn" + bad
        )
        data = read_all(sock)
    # Both answers whole and in order, then the 400, then the connection closes; the
    # broken request never runs (queued, its head was read: it is dropped).
    slow, nxt, bad_at = (
        data.index(b"GET /slow  "),
        data.index(b"POST /next  n"),
        data.index(b" 400 "),
    )
    assert slow < nxt < bad_at
    assert data.endswith(b"Invalid HTTP request received.") and b"/cut" not in data
    assert ran == ["/slow", "/next"]


def test_a_request_cut_short_by_bytes_that_are_not_http_closes_the_connection() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await echo(scope, receive, send)  # waits for the body, which never comes

    with Served(app) as served, served.connect() as sock:
        sock.sendall(
            b"POST /chunked HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"3\r\nabc\r\nNOT A CHUNK SIZE\r\n"
        )
        assert read_all(sock) == b""


@pytest.mark.parametrize(
    "lengths",
    [[b"2", b"3"], [b"-1"], [b"1_0"], [b"0x2"]],
    ids=["conflicting", "negative", "underscore", "hex"],
)
def test_a_content_length_that_does_not_frame_the_answer_is_refused(lengths: list[bytes]) -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await answer(send, 200, b"ab", [(b"content-length", n) for n in lengths])

    with Served(app) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 500")


def test_a_repeated_equal_content_length_passes_with_its_whitespace() -> None:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        await answer(send, 200, b"ab", [(b"content-length", b"2"), (b"Content-Length", b" 2 ")])

    with Served(app) as served, served.connect() as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
        data = read_until(sock, b"\r\n\r\nab")
    assert data.startswith(b"HTTP/1.1 200") and data.endswith(b"\r\n\r\nab")


def test_a_refused_head_leaves_the_answer_to_the_app_whole() -> None:
    """A head the server refuses changes nothing: the app's own answer that follows (as
    spendgate's 500 after a fault) goes out as if it were the first, framed by its
    length, on a connection that stays usable."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        with contextlib.suppress(RuntimeError):  # no length: it would have been chunked
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [(b"connection", b"close"), (b"x-evil", b"a\r\nb: c")],
                }
            )
        await answer(send, 500, b"spendgate's own", [(b"content-length", b"15")])

    with Served(app) as served, served.connect() as sock:
        for _ in range(2):  # kept alive: the refused head's "connection: close" is gone
            sock.sendall(b"GET / HTTP/1.1\r\nHost: t\r\n\r\n")
            data = read_until(sock, b"spendgate's own")
            assert data.startswith(b"HTTP/1.1 500")
            assert b"transfer-encoding" not in data.lower() and b"connection: close" not in data
