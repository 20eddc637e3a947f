"""Redis going away mid-request: refusals are typed, and an answer already paid for still arrives."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import pytest

from podium import StateStoreUnavailable
from podium.backend import CallContext
from podium.limits import Guarded
from podium.limits.governance import Governance
from podium.state import RedisStateStore
from podium.testing import MockProvider
from podium.types import ChatRequest, ChatResponse, Message
from tests.state.stores import drop_prefix, require_redis, unique_prefix


class RedisProxy:
    """A TCP proxy to the real Redis that can be cut, as a network partition would."""

    def __init__(self) -> None:
        self.server: asyncio.Server | None = None
        self.writers: list[asyncio.StreamWriter] = []

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def _serve(self, client_r: asyncio.StreamReader, client_w: asyncio.StreamWriter) -> None:
        redis_r, redis_w = await asyncio.open_connection("127.0.0.1", 6379)
        self.writers += [client_w, redis_w]

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
            dst.close()

        await asyncio.gather(pump(client_r, redis_w), pump(redis_r, client_w))

    async def cut(self) -> None:
        assert self.server is not None
        self.server.close()
        for writer in self.writers:
            writer.close()
        await asyncio.sleep(0.05)


@pytest.fixture
async def proxied() -> AsyncIterator[tuple[RedisProxy, Governance]]:
    require_redis()
    proxy = RedisProxy()
    prefix = unique_prefix()
    store = RedisStateStore.from_url(await proxy.start(), prefix)
    try:
        yield proxy, Governance(store)
    finally:
        await store.aclose()
        await proxy.cut()
        await drop_prefix(prefix)


class CutsRedisWhileAnswering(MockProvider):
    """An upstream that answers while the gateway loses Redis."""

    def __init__(self, proxy: RedisProxy) -> None:
        super().__init__("gpt", reply="four words of answer", default_model="gpt-4o")
        self.proxy = proxy

    async def chat(self, request: ChatRequest, ctx: CallContext) -> ChatResponse:
        await self.proxy.cut()
        return await super().chat(request, ctx)


def _request() -> ChatRequest:
    return ChatRequest(messages=[Message(role="user", content="hello there")], model="gpt-4o")


async def test_the_answer_arrives_when_redis_is_lost_during_the_upstream_call(
    proxied: tuple[RedisProxy, Governance], caplog: pytest.LogCaptureFixture
) -> None:
    proxy, gov = proxied
    gov.pricing.set_provider("gpt", kind="openai")
    gov.set_budget("acme", daily=5.0)
    guarded = Guarded(CutsRedisWhileAnswering(proxy), gov.guard, provider_name="gpt", default_model="gpt-4o")
    with caplog.at_level(logging.ERROR, logger="podium.limits.guard"):
        response = await guarded.chat(_request(), CallContext(tenant="acme"))
    assert response.content == "four words of answer"
    assert response.cost is not None and response.cost > 0  # priced locally, returned to the caller
    assert any("was not recorded in the state store" in r.getMessage() for r in caplog.records)


async def test_a_request_while_redis_is_gone_is_refused_with_a_typed_503(
    proxied: tuple[RedisProxy, Governance],
) -> None:
    proxy, gov = proxied
    gov.set_rate_limit("acme", {"requestsPerMinute": 100}, "tenant")
    guarded = Guarded(
        MockProvider("gpt", reply="never sent"), gov.guard, provider_name="gpt", default_model="gpt-4o"
    )
    await proxy.cut()
    with pytest.raises(StateStoreUnavailable) as caught:
        await guarded.chat(_request(), CallContext(tenant="acme"))
    assert caught.value.status == 503
