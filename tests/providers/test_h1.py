"""The providers' HTTP/1.1 client against real sockets served by hand-written origins.

Each origin below writes exact bytes, so the client meets the framings and failures real servers
produce: keep-alive reuse, a body delimited by the connection's end, chunked and gzip bodies, an idle
connection the origin closed, a full pool, silence, refusal.
"""

from __future__ import annotations

import asyncio
import gzip
import socket
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import pytest
import uvloop

from podium.errors import ConfigError, MalformedResponse, ProviderTimeout, ProviderUnavailable
from podium.providers._http import HttpClient, SSEDecoder, line_batches

Handler = Callable[[asyncio.StreamReader, asyncio.StreamWriter, "Origin"], Awaitable[None]]


class Origin:
    """A loopback server running ``handler`` for each connection; counts connections and requests."""

    def __init__(self, handler: Handler) -> None:
        self.handler = handler
        self.connections = 0
        self.open_now = 0
        self.most_open = 0
        self.requests: list[bytes] = []
        self.url = ""

    async def read_request(self, reader: asyncio.StreamReader) -> bytes | None:
        """Read one request (head and body); None when the client closed the connection."""
        try:
            head = await reader.readuntil(b"\r\n\r\n")
        except (asyncio.IncompleteReadError, ConnectionError):
            return None
        length = 0
        for line in head.split(b"\r\n"):
            if line.lower().startswith(b"content-length:"):
                length = int(line.split(b":")[1])
        body = await reader.readexactly(length) if length else b""
        self.requests.append(head + body)
        return head + body

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.open_now += 1
        self.most_open = max(self.most_open, self.open_now)
        try:
            await self.handler(reader, writer, self)
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        finally:
            self.open_now -= 1
            writer.close()


@asynccontextmanager
async def serving(handler: Handler) -> AsyncIterator[Origin]:
    origin = Origin(handler)
    server = await asyncio.start_server(origin._serve, "127.0.0.1", 0)
    origin.url = f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}/v1"
    try:
        yield origin
    finally:
        server.close()


def client(url: str, *, timeout: float = 5.0, max_connections: int = 10) -> HttpClient:
    return HttpClient(
        "up",
        url,
        {"authorization": "Bearer sk-test"},
        timeout=timeout,
        connect_timeout=2.0,
        max_connections=max_connections,
    )


def response(body: bytes, *extra: bytes) -> bytes:
    head = b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n" + b"".join(x + b"\r\n" for x in extra)
    return head + b"content-length: %d\r\n\r\n" % len(body) + body


async def keep_alive(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin) -> None:
    while await origin.read_request(reader) is not None:
        writer.write(response(b'{"n": %d}' % len(origin.requests), b"X-Upstream: yes"))
        await writer.drain()


async def test_requests_share_one_keep_alive_connection_and_carry_the_request() -> None:
    async with serving(keep_alive) as origin:
        http = client(origin.url)
        answers = [await http.request("POST", "chat/completions", body={"q": i}) for i in range(3)]
        await http.aclose()
    assert [a.body for a in answers] == [b'{"n": 1}', b'{"n": 2}', b'{"n": 3}']
    assert answers[0].status == 200 and answers[0].headers["x-upstream"] == "yes"
    assert origin.connections == 1
    first = origin.requests[0]
    assert first.startswith(b"POST /v1/chat/completions HTTP/1.1\r\n")
    assert b"authorization: Bearer sk-test\r\n" in first and first.endswith(b'\r\n\r\n{"q":0}')
    assert f"host: {origin.url.split('/')[2]}".encode() in first


async def test_query_parameters_and_non_ascii_paths_are_encoded() -> None:
    async with serving(keep_alive) as origin:
        http = client(origin.url)
        await http.request("GET", "models/caf\u00e9 x", params={"key": "a b&c"})
    assert origin.requests[0].startswith(b"GET /v1/models/caf%C3%A9%20x?key=a+b%26c HTTP/1.1\r\n")


async def test_a_body_delimited_by_the_connection_end_chunked_and_gzip_bodies_are_read_whole() -> None:
    async def varied(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin) -> None:
        await origin.read_request(reader)
        kind = len(origin.requests) if origin.connections == 1 else 3
        if kind == 1:
            writer.write(
                b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n4\r\nabcd\r\n2\r\nef\r\n0\r\n\r\n"
            )
            await writer.drain()
            await varied(reader, writer, origin)
            return
        if kind == 2:
            packed = gzip.compress(b"zipped body")
            writer.write(response(packed, b"content-encoding: gzip"))
            await writer.drain()
            return  # closes: the next request needs a new connection
        writer.write(b"HTTP/1.0 200 OK\r\ncontent-type: text/plain\r\n\r\nuntil the end")
        await writer.drain()

    async with serving(varied) as origin:
        http = client(origin.url)
        got = [(await http.request("POST", "x", body={})).body for _ in range(3)]
    assert got == [b"abcdef", b"zipped body", b"until the end"]


async def test_a_body_arriving_with_its_head_after_it_or_empty_is_read_whole() -> None:
    async def split(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin) -> None:
        while await origin.read_request(reader) is not None:
            whole = response(b'{"answer": "in two parts"}')
            if len(origin.requests) == 1:  # the head, then the body a moment later
                head, _, body = whole.partition(b"\r\n\r\n")
                writer.write(head + b"\r\n\r\n")
                await writer.drain()
                await asyncio.sleep(0.05)
                writer.write(body)
            elif len(origin.requests) == 2:  # no body at all
                writer.write(response(b""))
            else:  # head and body in one write
                writer.write(whole)
            await writer.drain()

    async with serving(split) as origin:
        http = client(origin.url)
        got = [(await http.request("POST", "x", body={})).body for _ in range(3)]
        await http.aclose()
    assert got == [b'{"answer": "in two parts"}', b"", b'{"answer": "in two parts"}']
    assert origin.connections == 1  # each body was read to its end: the connection was reused


async def test_an_idle_connection_closed_by_the_origin_is_retried_on_a_new_one() -> None:
    async def one_per_connection(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin
    ) -> None:
        await origin.read_request(reader)
        writer.write(response(b"{}"))  # keep-alive by HTTP/1.1 default, but the origin hangs up anyway
        await writer.drain()

    async with serving(one_per_connection) as origin:
        http = client(origin.url)
        for _ in range(3):
            assert (await http.request("POST", "x", body={})).status == 200
            await asyncio.sleep(0.05)  # the close reaches the client while the connection is idle
        assert origin.connections == 3


async def test_a_request_lost_on_a_reused_connection_before_any_answer_goes_again_once() -> None:
    # The keep-alive race: the origin hangs up on an idle connection just as the next request is sent.
    async def drops_second(
        reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin
    ) -> None:
        await origin.read_request(reader)
        writer.write(response(b'{"first": true}'))
        await writer.drain()
        if origin.connections == 1:
            await origin.read_request(reader)  # read the second request, then close without a byte

    async with serving(drops_second) as origin:
        http = client(origin.url)
        assert (await http.request("POST", "x", body={})).body == b'{"first": true}'
        assert (await http.request("POST", "x", body={})).status == 200
    assert origin.connections == 2 and len(origin.requests) == 3


async def test_the_pool_caps_open_connections_and_queues_the_rest() -> None:
    async def slow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin) -> None:
        while await origin.read_request(reader) is not None:
            await asyncio.sleep(0.05)
            writer.write(response(b"{}"))
            await writer.drain()

    async with serving(slow) as origin:
        http = client(origin.url, max_connections=2)
        answers = await asyncio.gather(*(http.request("POST", "x", body={}) for _ in range(6)))
    assert [a.status for a in answers] == [200] * 6
    assert origin.most_open == 2 and origin.connections == 2


async def test_silence_is_a_timeout_and_the_connection_is_not_reused() -> None:
    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin) -> None:
        await origin.read_request(reader)
        if len(origin.requests) == 1:
            await asyncio.sleep(5)
        writer.write(response(b"{}"))
        await writer.drain()

    async with serving(silent) as origin:
        http = client(origin.url, timeout=0.3)
        with pytest.raises(ProviderTimeout):
            await http.request("POST", "x", body={})
        assert (await http.request("POST", "x", body={})).status == 200
    assert origin.connections == 2


async def test_a_stream_that_goes_quiet_times_out_between_reads() -> None:
    async def stalls(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin) -> None:
        await origin.read_request(reader)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for _ in range(3):
            event = b"data: tick\n\n"
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            await asyncio.sleep(0.2)  # less than the timeout each time: the stream lives on
        await asyncio.sleep(5)

    async with serving(stalls) as origin:
        http = client(origin.url, timeout=0.5)
        resp = await http.open_stream("x", body={})
        got: list[str] = []

        async def read_all() -> None:
            sse = SSEDecoder()
            async for lines in line_batches(resp, "up"):
                got.extend(event.data for event in sse.events(lines))

        with pytest.raises(ProviderTimeout):
            await read_all()
        resp.release()
    assert got == ["tick", "tick", "tick"]


async def test_truncated_body_garbage_and_refusal_are_typed_errors() -> None:
    async def truncates(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin) -> None:
        await origin.read_request(reader)
        writer.write(b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial":')
        await writer.drain()

    async def garbage(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, origin: Origin) -> None:
        await origin.read_request(reader)
        writer.write(b"SSH-2.0-OpenSSH_9.2\r\n\r\n")
        await writer.drain()

    async with serving(truncates) as origin:
        with pytest.raises(MalformedResponse, match="truncated"):
            await client(origin.url).request("POST", "x", body={})
    async with serving(garbage) as origin:
        with pytest.raises(MalformedResponse, match="invalid HTTP"):
            await client(origin.url).request("POST", "x", body={})
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # bound, never listening: connections are refused
        with pytest.raises(ProviderUnavailable, match="cannot connect"):
            await client(f"http://127.0.0.1:{port}/v1").request("POST", "x", body={})


async def test_bad_urls_and_header_injection_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="invalid base URL"):
        await client("ftp://example.invalid/v1").request("GET", "models")
    with pytest.raises(ConfigError, match="line break"):
        await client("http://127.0.0.1:9/v1").request("GET", "models", headers={"x-a": "1\r\nx-b: 2"})


def test_the_client_works_under_uvloop() -> None:
    # podium serve runs on uvloop, whose create_connection may return before connection_made runs.
    async def main() -> list[int]:
        async with serving(keep_alive) as origin:
            http = client(origin.url)
            statuses = [(await http.request("POST", "x", body={})).status for _ in range(3)]
            resp = await http.open_stream("x", body={})
            body = await resp.read()
            resp.release()
            assert body.startswith(b'{"n": 4}')
            await http.aclose()
            assert origin.connections == 1
            return statuses

    assert uvloop.run(main()) == [200, 200, 200]
