"""How many tokens a request may use, before it is sent: what limits and budgets reserve.

The prompt is estimated from its characters (about four per token for English text and code, and the
reservation is reconciled with the real usage afterwards, so a rough estimate only shifts when
capacity frees up, never what is charged).
"""

from __future__ import annotations

import math

import msgspec

from podium.types import ChatRequest, CompletionRequest, EmbedRequest, TextPart

CHARS_PER_TOKEN = 4.0
_PER_MESSAGE = 4  # role and separators each message adds in chat formats


class RequestEstimate(msgspec.Struct, frozen=True):
    """What a request may use.

    Attributes:
        prompt_tokens: Estimated input tokens.
        max_tokens: The output cap the request asked for (None: the guard's default applies).
        model: The model asked for, when known (prices the budget reservation).
        max_cost: The most the request may cost in US dollars, when the caller knows better than the
            price table (overrides the computed reservation).
    """

    prompt_tokens: int
    max_tokens: int | None = None
    model: str | None = None
    max_cost: float | None = None


def count_tokens(text: str) -> int:
    """Estimated tokens of ``text``."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


def estimate(
    request: ChatRequest | CompletionRequest | EmbedRequest, model: str | None = None
) -> RequestEstimate:
    """The estimate of a chat, completion or embedding request (``model`` overrides the request's)."""
    chosen = model or request.model
    if isinstance(request, EmbedRequest):
        return RequestEstimate(sum(count_tokens(t) for t in request.input), 0, chosen)
    if isinstance(request, CompletionRequest):
        return RequestEstimate(count_tokens(request.prompt), request.max_tokens, chosen)
    tokens = 0
    for message in request.messages:
        tokens += _PER_MESSAGE
        if isinstance(message.content, str):
            tokens += count_tokens(message.content)
        elif message.content is not None:
            # Images are billed by size; 85 tokens is the low-detail floor most providers charge.
            tokens += sum(count_tokens(p.text) if isinstance(p, TextPart) else 85 for p in message.content)
        for call in message.tool_calls or ():
            tokens += count_tokens(call.function.name) + count_tokens(call.function.arguments)
    if request.tools:
        tokens += count_tokens(msgspec.json.encode(request.tools).decode())
    return RequestEstimate(tokens, request.max_tokens, chosen)
