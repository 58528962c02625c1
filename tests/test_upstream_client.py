"""The lean upstream client against scripted HTTP servers on loopback: keep-alive,
framing, interim answers, timeouts, broken answers, flow control, the pool's limit,
cancellation and TLS."""

from __future__ import annotations

import asyncio
import datetime
import ssl
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from spendgate.proxy.upstream import UpstreamClient, UpstreamError, UpstreamTimeout

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]


class Server:
    """A loopback server whose connections run ``handler``; counts connections."""

    def __init__(self) -> None:
        self.handler: Handler | None = None
        self.connections = 0
        self.open = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.port = 0

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open += 1
        self.most_open = max(self.most_open, self.open)
        assert self.handler is not None
        try:
            await self.handler(reader, writer)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open -= 1
            writer.close()


async def read_request(reader: asyncio.StreamReader, server: Server) -> bytes:
    """One request (head and a content-length body), remembered by the server."""
    head = await reader.readuntil(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    request = head + (await reader.readexactly(length) if length else b"")
    server.requests.append(request)
    return request


def json_answer(body: bytes, *extra: bytes) -> bytes:
    head = [b"HTTP/1.1 200 OK", b"content-type: application/json", b"request-id: req_1"]
    head += [*extra, b"content-length: %d" % len(body)]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


def answering(data: bytes, *, linger: float = 0.0) -> Callable[[Server], Handler]:
    """A scripted upstream: reads one request, writes ``data``, waits ``linger`` s, closes."""

    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader, server)
            writer.write(data)
            await writer.drain()
            await asyncio.sleep(linger)

        return handle

    return make


@asynccontextmanager
async def serving(
    handler: Callable[[Server], Handler], ssl_context: ssl.SSLContext | None = None
) -> AsyncIterator[Server]:
    server = Server()
    server.handler = handler(server)
    listener = await asyncio.start_server(server._serve, "127.0.0.1", 0, ssl=ssl_context)
    server.port = listener.sockets[0].getsockname()[1]
    try:
        yield server
    finally:
        listener.close()


def keep_alive_json(body: bytes = b'{"ok":true}') -> Callable[[Server], Handler]:
    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await read_request(reader, server)
                writer.write(json_answer(body))
                await writer.drain()

        return handle

    return make


def client_for(server: Server, **options: float) -> UpstreamClient:
    return UpstreamClient(f"http://127.0.0.1:{server.port}", **options)  # type: ignore[arg-type]


HEADERS = [(b"x-api-key", b"sk-ant-test"), (b"content-type", b"application/json")]


async def test_calls_reuse_one_connection_and_send_exactly_the_request() -> None:
    async with serving(keep_alive_json()) as server:
        client = client_for(server)
        for _ in range(5):
            resp = await client.request("POST", "/v1/messages?beta=true", HEADERS, b'{"a":1}')
            assert resp.status == 200 and await resp.read() == b'{"ok":true}'
            assert resp.headers.get("Request-ID") == "req_1" and resp.content_length == 11
            resp.release()
        await client.close()
    assert server.connections == 1
    assert server.requests[0] == (
        b"POST /v1/messages?beta=true HTTP/1.1\r\nhost: 127.0.0.1:%d\r\n"
        b"x-api-key: sk-ant-test\r\ncontent-type: application/json\r\n"
        b'content-length: 7\r\n\r\n{"a":1}' % server.port
    )


async def test_header_names_and_values_come_back_as_sent() -> None:
    make = answering(json_answer(b"{}", b"Anthropic-RateLimit-Requests-Remaining: 49"))

    async with serving(make) as server:
        client = client_for(server)
        resp = await client.request("GET", "/v1/models", [], None)
        assert (b"Anthropic-RateLimit-Requests-Remaining", b"49") in resp.raw_headers
        assert resp.headers.get("anthropic-ratelimit-requests-remaining") == "49"
        assert await resp.read() == b"{}"
        resp.release()
        await client.close()
    assert server.requests[0].startswith(b"GET /v1/models HTTP/1.1\r\n")
    assert b"content-length" not in server.requests[0]


async def test_a_connection_the_server_closed_while_idle_is_not_reused() -> None:
    make = answering(json_answer(b"{}"))  # then closes: an idle keep-alive connection timed out

    async with serving(make) as server:
        client = client_for(server)
        for _ in range(3):
            resp = await client.request("POST", "/v1/messages", HEADERS, b"{}")
            assert await resp.read() == b"{}"
            resp.release()
            await asyncio.sleep(0.05)  # the close arrives while the connection idles
        await client.close()
    assert server.connections == 3


async def test_a_kept_alive_connection_closed_unanswered_repeats_only_idempotent_calls() -> None:
    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader, server)
            writer.write(json_answer(b"{}"))
            await writer.drain()
            await read_request(reader, server)  # the next one on this connection: dropped

        return handle

    async with serving(make) as server:
        client = client_for(server)
        for method, body in (("GET", None), ("GET", None)):
            resp = await client.request(method, "/v1/models", [], body)
            assert await resp.read() == b"{}"
            resp.release()
        # The second GET found the first connection closed unanswered and went again on
        # a new one: three requests seen, two connections.
        assert (len(server.requests), server.connections) == (3, 2)
        with pytest.raises(UpstreamError) as caught:  # a POST is never sent twice
            await client.request("POST", "/v1/messages", HEADERS, b"{}")
        assert len(server.requests) == 4 and server.connections == 2
        assert not isinstance(caught.value, UpstreamTimeout)
        await client.close()


async def test_connection_close_and_read_until_close_bodies_are_not_reused() -> None:
    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader, server)
            # No length, no chunks: the body is everything until the server closes.
            writer.write(b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\npart one, ")
            await writer.drain()
            await asyncio.sleep(0.02)
            writer.write(b"part two")
            await writer.drain()

        return handle

    async with serving(make) as server:
        client = client_for(server)
        for _ in range(2):
            resp = await client.request("GET", "/v1/models", [], None)
            assert resp.content_length is None
            assert await resp.read() == b"part one, part two"
            resp.release()
        await client.close()
    assert server.connections == 2


async def test_chunked_stream_arrives_as_it_is_sent_and_interim_answers_are_skipped() -> None:
    events = [b"event: ping\ndata: {}\n\n", b"event: message_stop\ndata: {}\n\n"]
    gate = asyncio.Event()

    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader, server)
            writer.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\n")
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\n")
            writer.write(b"transfer-encoding: chunked\r\n\r\n")
            first, last = events
            writer.write(b"%x\r\n%s\r\n" % (len(first), first))
            await writer.drain()
            await gate.wait()
            # The last event and the end of the body in one write: the reader sees both.
            writer.write(b"%x\r\n%s\r\n0\r\n\r\n" % (len(last), last))
            await writer.drain()
            await read_request(reader, server)  # kept alive for the next call

        return handle

    async with serving(make) as server:
        client = client_for(server)
        resp = await client.request("POST", "/v1/messages", HEADERS, b"{}")
        assert resp.status == 200 and resp.headers.get("content-type") == "text/event-stream"
        assert resp.headers.get("link") is None  # the 103's header is not the answer's
        chunks, ends = [], []
        async for chunk in resp.iter_any():
            chunks.append(chunk)
            ends.append(resp.at_end())
            gate.set()  # the first event came before the server sent the second
        assert b"".join(chunks) == b"".join(events) and len(chunks) == 2
        assert ends == [False, True]  # the last chunk is known to be the last
        resp.release()
        await client.close()


async def test_silence_longer_than_the_read_timeout_fails_but_slow_steady_bytes_do_not() -> None:
    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                request = await read_request(reader, server)
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                await writer.drain()
                if b"/stall" in request:
                    await asyncio.sleep(5)
                for _ in range(6):  # 0.6 s in all, never 0.3 s apart
                    writer.write(b"1\r\nx\r\n")
                    await writer.drain()
                    await asyncio.sleep(0.1)
                writer.write(b"0\r\n\r\n")
                await writer.drain()

        return handle

    async with serving(make) as server:
        client = client_for(server, read_timeout=0.3)
        resp = await client.request("GET", "/steady", [], None)
        assert await resp.read() == b"x" * 6
        resp.release()
        resp = await client.request("GET", "/stall", [], None)
        started = asyncio.get_running_loop().time()
        with pytest.raises(UpstreamTimeout):
            await resp.read()
        assert asyncio.get_running_loop().time() - started < 2
        resp.release()
        await client.close()


async def test_no_answer_at_all_times_out_and_refused_connections_fail() -> None:
    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            await read_request(reader, server)
            await asyncio.sleep(5)

        return handle

    async with serving(make) as server:
        client = client_for(server, read_timeout=0.2)
        with pytest.raises(UpstreamTimeout):
            await client.request("POST", "/v1/messages", HEADERS, b"{}")
        await client.close()
        port = server.port
    refused = UpstreamClient(f"http://127.0.0.1:{port}")
    with pytest.raises(UpstreamError) as caught:
        await refused.request("GET", "/v1/models", [], None)
    assert not isinstance(caught.value, UpstreamTimeout)
    await refused.close()


async def test_an_answer_cut_short_is_an_error_not_a_shorter_body() -> None:
    make = answering(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\nonly this")

    async with serving(make) as server:
        client = client_for(server)
        resp = await client.request("GET", "/v1/models", [], None)
        with pytest.raises((UpstreamError, asyncio.IncompleteReadError)):
            await resp.read()
        resp.release()
        await client.close()


async def test_garbage_instead_of_http_is_an_error() -> None:
    make = answering(b"SSH-2.0-OpenSSH_9.6\r\n\r\n", linger=1)

    async with serving(make) as server:
        client = client_for(server)
        with pytest.raises(UpstreamError, match="not valid HTTP"):
            await client.request("GET", "/v1/models", [], None)
        await client.close()


async def test_a_slow_reader_pauses_the_upstream_instead_of_buffering_it_all() -> None:
    size = 16 * 1024 * 1024
    sent = 0

    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            nonlocal sent
            await read_request(reader, server)
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % size)
            block = b"x" * 65536
            while sent < size:
                writer.write(block)
                await writer.drain()
                sent += len(block)

        return handle

    async with serving(make) as server:
        client = client_for(server)
        resp = await client.request("GET", "/v1/files/f/content", [], None)
        received = most = 0
        async for chunk in resp.iter_any():
            received += len(chunk)
            if received < 2 * 1024 * 1024:
                await asyncio.sleep(0.02)  # a slow client at first
                most = max(most, resp.buffered)
        assert received == size
        # What waited in memory stayed near the high-water mark (one read past it at
        # most), while the kernel's buffers held the rest back from the server.
        assert 0 < most <= 512 * 1024
        resp.release()
        await client.close()


async def test_the_pool_limit_holds_and_cancelled_calls_give_their_slot_back() -> None:
    release = asyncio.Event()

    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                request = await read_request(reader, server)
                if b"/slow" in request:
                    await release.wait()
                writer.write(json_answer(b"{}"))
                await writer.drain()

        return handle

    async with serving(make) as server:
        client = client_for(server, limit=2)

        async def call(path: str) -> bytes:
            resp = await client.request("GET", path, [], None)
            try:
                return await resp.read()
            finally:
                resp.release()

        # A call cancelled while it waits for its answer frees its slot.
        waiting = asyncio.ensure_future(call("/slow"))
        await asyncio.sleep(0.1)
        waiting.cancel()
        calls = [asyncio.ensure_future(call("/slow")) for _ in range(5)]
        await asyncio.sleep(0.2)
        assert server.open <= 2 + 1  # two in use, and the cancelled one's, closed
        release.set()
        assert await asyncio.gather(*calls) == [b"{}"] * 5
        assert await call("/fast") == b"{}"
        await client.close()
    # The cancelled call's connection was closed, not put back: at most two at once after it.
    assert server.most_open <= 3


async def test_a_line_break_in_a_header_value_is_refused() -> None:
    async with serving(keep_alive_json()) as server:
        client = client_for(server)
        with pytest.raises(UpstreamError, match="line break"):
            await client.request("GET", "/v1/models", [(b"x-api-key", b"k\r\nx-evil: 1")], None)
        await client.close()
    assert server.requests == []


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = directory / "cert.pem", directory / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


async def test_https_verifies_the_certificate_and_the_name(tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    server_context.load_cert_chain(cert, key)
    async with serving(keep_alive_json(), server_context) as server:
        trusting = UpstreamClient(f"https://localhost:{server.port}")
        assert trusting.ssl is not None
        trusting.ssl.load_verify_locations(cert)
        for _ in range(2):
            resp = await trusting.request("POST", "/v1/messages", HEADERS, b"{}")
            assert resp.status == 200 and await resp.read() == b'{"ok":true}'
            resp.release()
        await trusting.close()
        assert server.connections == 1
        # The system's trust store does not know this certificate: refused.
        stranger = UpstreamClient(f"https://localhost:{server.port}")
        with pytest.raises(UpstreamError, match="CERTIFICATE_VERIFY_FAILED"):
            await stranger.request("GET", "/v1/models", [], None)
        await stranger.close()
        assert server.requests[-1].startswith(b"POST")  # nothing reached the server


def test_what_the_lean_client_leaves_to_aiohttp() -> None:
    handles = UpstreamClient.handles
    assert handles("POST", b"{}", HEADERS) and handles("GET", None, [])
    assert handles("DELETE", None, []) and handles("POST", b"", [])
    assert not handles("POST", None, HEADERS)  # an upload streamed from the client
    assert not handles("HEAD", None, [])
    assert not handles("POST", b"{}", [(b"expect", b"100-continue")])
    assert not handles("GET", None, [(b"upgrade", b"websocket")])


async def test_trailers_and_bytes_after_the_answer_never_become_its_headers() -> None:
    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            request = await read_request(reader, server)
            if b"/trailer" in request:  # one segment: headers, a chunk, a trailer
                writer.write(
                    b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n"
                    b"2\r\nhi\r\n0\r\nx-trailer: leaked\r\n\r\n"
                )
            else:  # an answer, and a second one nobody asked for, in one segment
                writer.write(
                    b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nhi"
                    b"HTTP/1.1 500 X\r\nx-evil: 1\r\ncontent-length: 3\r\n\r\nbad"
                )
            await writer.drain()
            await read_request(reader, server)

        return handle

    async with serving(make) as server:
        client = client_for(server)
        for path in ("/trailer", "/extra"):
            resp = await client.request("GET", path, [], None)
            assert resp.status == 200 and await resp.read() == b"hi"
            names = [name.lower() for name, _ in resp.raw_headers]
            assert b"x-trailer" not in names and b"x-evil" not in names
            assert names.count(b"content-length") <= 1
            resp.release()
        await client.close()
    # The connection that carried the unasked-for answer was not used again.
    assert server.connections == 2


async def test_waiting_for_a_free_connection_counts_against_the_connect_timeout() -> None:
    release = asyncio.Event()

    def make(server: Server) -> Handler:
        async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
            while True:
                await read_request(reader, server)
                await release.wait()
                writer.write(json_answer(b"{}"))
                await writer.drain()

        return handle

    async with serving(make) as server:
        client = client_for(server, limit=1, connect_timeout=0.3)
        busy = asyncio.ensure_future(client.request("GET", "/slow", [], None))
        await asyncio.sleep(0.05)
        with pytest.raises(UpstreamTimeout, match="1 per process in use"):
            await client.request("GET", "/next", [], None)
        release.set()
        resp = await busy
        assert await resp.read() == b"{}"
        resp.release()
        resp = await client.request("GET", "/next", [], None)  # the slot is free again
        assert await resp.read() == b"{}"
        resp.release()
        await client.close()


async def test_codings_after_chunked_mean_the_body_runs_until_close() -> None:
    make = answering(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked, gzip\r\n\r\nraw bytes")

    async with serving(make) as server:
        client = client_for(server)
        resp = await client.request("GET", "/v1/models", [], None)
        assert await resp.read() == b"raw bytes"
        resp.release()
        await client.close()


async def test_closing_the_client_breaks_a_body_in_progress_instead_of_ending_it() -> None:
    make = answering(b"HTTP/1.1 200 OK\r\n\r\nthe start of a body that runs until close", linger=5)

    async with serving(make) as server:
        client = client_for(server)
        resp = await client.request("GET", "/v1/models", [], None)
        assert await resp._next()  # the first bytes
        await client.close()
        with pytest.raises(UpstreamError, match="shutting down"):
            await resp.read()
        resp.release()


async def test_a_request_target_with_a_space_or_control_is_refused() -> None:
    async with serving(keep_alive_json()) as server:
        client = client_for(server)
        for target in ("/v1/models HTTP/1.1\r\nx: y", "/v1/a b", "/v1/\x00"):
            with pytest.raises(UpstreamError, match="space or control"):
                await client.request("GET", target, [], None)
        await client.close()
    assert server.requests == []
