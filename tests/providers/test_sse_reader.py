"""The SSE and NDJSON readers over a real socket, with bodies cut at awkward places."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager

from aiohttp import web

from podium.providers._http import HttpClient, SSEDecoder, line_batches, ndjson_batches


@asynccontextmanager
async def _serving(pieces: list[bytes]) -> AsyncIterator[str]:
    """A server answering every request with ``pieces``, each written and flushed separately."""

    async def handler(request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"content-type": "text/event-stream"})
        await resp.prepare(request)
        for piece in pieces:
            await resp.write(piece)
            await asyncio.sleep(0.01)  # separate network reads on the client
        await resp.write_eof()
        return resp

    app = web.Application()
    app.router.add_post("/", handler)
    runner = web.AppRunner(app)
    await runner.setup()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    site = web.SockSite(runner, sock)
    await site.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/"
    finally:
        await runner.cleanup()


def _client(url: str) -> HttpClient:
    return HttpClient("up", url, {}, timeout=5.0, connect_timeout=5.0, max_connections=1)


async def test_events_split_across_reads_with_every_line_end_and_unicode_separators() -> None:
    pieces = [
        b'data: {"a": "line\xe2\x80\xa8sep\\u2028"}\r',  # raw U+2028 in a JSON string; CRLF cut in two
        b"\n\r\nevent: ping\n: a comment\ndata: one\ndata: two\r\rdata:tail",
        b"\xc3",  # a UTF-8 character cut between reads
        b"\xa9\n\n",
        b"data: unterminated",
    ]
    async with _serving(pieces) as url:
        resp = await _client(url).open_stream("", body={})
        sse = SSEDecoder()
        reads = [[(e.event, e.data) for e in sse.events(lines)] async for lines in line_batches(resp, "up")]
        resp.release()
    # The events each read completes (the first and third reads complete none); "data:" without a
    # space is the same field.
    assert [read for read in reads if read] == [
        [("message", '{"a": "line\u2028sep\\u2028"}'), ("ping", "one\ntwo")],
        [("message", "tail\u00e9")],
    ]
    assert [(e.event, e.data) for e in sse.end()] == [("message", "unterminated")]
    assert sse.end() == []


def test_an_event_is_yielded_before_the_rest_of_its_read_is_decoded() -> None:
    # A fast upstream sends a whole answer in one read: its first event must not wait for the rest.
    read: list[str] = []

    def lines() -> Iterator[str]:
        for line in ["data: first", "", "id: 7", "data: second", "", "data: third", ""]:
            read.append(line)
            yield line

    events = SSEDecoder().events(lines())
    assert next(events).data == "first"
    assert read == ["data: first", ""]
    assert [e.data for e in events] == ["second", "third"]


async def test_ndjson_lines_skip_blanks_and_keep_the_last_unterminated_one() -> None:
    pieces = [b'{"n": 1}\n\n{"n"', b': 2}\r\n   \n{"n": 3}']
    async with _serving(pieces) as url:
        resp = await _client(url).open_stream("", body={})
        batches = [lines async for lines in ndjson_batches(resp, "up")]
        resp.release()
    assert batches == [['{"n": 1}'], ['{"n": 2}'], ['{"n": 3}']]
