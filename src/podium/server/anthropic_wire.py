"""The Anthropic Messages API as podium serves it, over canonical types (so any provider can answer).

Requests decode in one msgspec pass and convert to a canonical ``ChatRequest``; answers and streams
are encoded from canonical responses and chunks with Anthropic's exact shapes and event sequence
(``message_start``, ``content_block_start``, ``ping``, ``content_block_delta``..., ``content_block_stop``,
``message_delta``, ``message_stop``).

Not representable in canonical form, so refused with 400 rather than silently dropped: server tools
(``web_search`` ...), ``document`` blocks. Thinking blocks sent back in assistant turns are dropped
(their signatures only mean something to Anthropic itself).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import msgspec
from msgspec import Meta

from podium.errors import RequestError
from podium.types import (
    ChatChunk,
    ChatRequest,
    ChatResponse,
    ContentPart,
    FunctionCall,
    FunctionDef,
    ImagePart,
    ImageURL,
    Message,
    NamedFunction,
    NamedToolChoice,
    TextPart,
    Tool,
    ToolCall,
    ToolChoice,
    Usage,
)


class Base64Source(msgspec.Struct, tag="base64", tag_field="type"):
    """An inline image."""

    media_type: str
    data: str


class URLSource(msgspec.Struct, tag="url", tag_field="type"):
    """An image by URL."""

    url: str


class TextBlock(msgspec.Struct, tag="text", tag_field="type"):
    """Text."""

    text: str


class ImageBlock(msgspec.Struct, tag="image", tag_field="type"):
    """An image."""

    source: Base64Source | URLSource


class ToolUseBlock(msgspec.Struct, tag="tool_use", tag_field="type"):
    """A tool call made by the assistant."""

    id: str
    name: str
    input: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolResultBlock(msgspec.Struct, tag="tool_result", tag_field="type"):
    """The result of a tool call, sent by the user."""

    tool_use_id: str
    content: str | list[TextBlock | ImageBlock] = ""
    is_error: bool | None = None


class ThinkingBlock(msgspec.Struct, tag="thinking", tag_field="type"):
    """The assistant's visible reasoning."""

    thinking: str
    signature: str | None = None


class RedactedThinkingBlock(msgspec.Struct, tag="redacted_thinking", tag_field="type"):
    """Encrypted reasoning."""

    data: str


Block = TextBlock | ImageBlock | ToolUseBlock | ToolResultBlock | ThinkingBlock | RedactedThinkingBlock


class InputMessage(msgspec.Struct):
    """One turn."""

    role: Literal["user", "assistant"]
    content: str | list[Block]


class ToolParam(msgspec.Struct, omit_defaults=True):
    """A client tool; server tools carry a ``type`` and are refused."""

    name: str
    input_schema: dict[str, Any] | None = None
    description: str | None = None
    type: str | None = None


class ToolChoiceParam(msgspec.Struct, omit_defaults=True):
    """How the model must use tools."""

    type: Literal["auto", "any", "tool", "none"]
    name: str | None = None
    disable_parallel_tool_use: bool | None = None


class Metadata(msgspec.Struct, omit_defaults=True):
    """Request metadata."""

    user_id: str | None = None


class MessagesBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/messages`` body."""

    model: str
    max_tokens: Annotated[int, Meta(ge=1)]
    messages: Annotated[list[InputMessage], Meta(min_length=1)]
    system: str | list[TextBlock] | None = None
    stop_sequences: list[str] | None = None
    temperature: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_p: Annotated[float, Meta(ge=0, le=1)] | None = None
    top_k: Annotated[int, Meta(ge=0)] | None = None
    metadata: Metadata | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoiceParam | None = None
    stream: bool = False
    thinking: dict[str, Any] | None = None
    service_tier: str | None = None


class CountTokensBody(msgspec.Struct, forbid_unknown_fields=True, omit_defaults=True):
    """``POST /v1/messages/count_tokens`` body."""

    model: str
    messages: Annotated[list[InputMessage], Meta(min_length=1)]
    system: str | list[TextBlock] | None = None
    tools: list[ToolParam] | None = None
    tool_choice: ToolChoiceParam | None = None
    thinking: dict[str, Any] | None = None


# --- requests ------------------------------------------------------------------------------------------


def _part(block: TextBlock | ImageBlock) -> ContentPart:
    if isinstance(block, TextBlock):
        return TextPart(text=block.text)
    src = block.source
    url = src.url if isinstance(src, URLSource) else f"data:{src.media_type};base64,{src.data}"
    return ImagePart(image_url=ImageURL(url=url))


def _user_turn(blocks: list[Block]) -> list[Message]:
    # Tool results answer the previous assistant turn, so they come first, as OpenAI-style tool messages.
    out: list[Message] = []
    parts: list[ContentPart] = []
    for block in blocks:
        if isinstance(block, ToolResultBlock):
            content = block.content
            result: str | list[ContentPart] = (
                content if isinstance(content, str) else [_part(b) for b in content]
            )
            out.append(Message(role="tool", content=result, tool_call_id=block.tool_use_id))
        elif isinstance(block, TextBlock | ImageBlock):
            parts.append(_part(block))
        else:
            raise RequestError(f"user messages cannot contain {type(block).__name__}", param="messages")
    if parts:
        first = parts[0]
        plain = len(parts) == 1 and isinstance(first, TextPart)
        out.append(
            Message(role="user", content=first.text if plain and isinstance(first, TextPart) else parts)
        )
    return out


def _assistant_turn(blocks: list[Block]) -> Message:
    texts: list[str] = []
    calls: list[ToolCall] = []
    for block in blocks:
        if isinstance(block, TextBlock):
            texts.append(block.text)
        elif isinstance(block, ToolUseBlock):
            calls.append(ToolCall(id=block.id, function=FunctionCall(block.name, _json(block.input))))
        elif isinstance(block, ImageBlock | ToolResultBlock):
            raise RequestError(f"assistant messages cannot contain {type(block).__name__}", param="messages")
    return Message(role="assistant", content="".join(texts) if texts else None, tool_calls=calls or None)


def _json(value: Any) -> str:
    return msgspec.json.encode(value).decode()


def messages(system: str | list[TextBlock] | None, turns: list[InputMessage]) -> list[Message]:
    """Canonical messages of an Anthropic conversation."""
    out: list[Message] = []
    if system:
        text = system if isinstance(system, str) else "\n\n".join(b.text for b in system)
        out.append(Message(role="system", content=text))
    for turn in turns:
        if isinstance(turn.content, str):
            out.append(Message(role=turn.role, content=turn.content))
        elif turn.role == "user":
            out.extend(_user_turn(turn.content))
        else:
            out.append(_assistant_turn(turn.content))
    return out


def tools(params: list[ToolParam] | None) -> list[Tool] | None:
    """Canonical tools; server tools are refused."""
    if not params:
        return None
    out = []
    for p in params:
        if p.type not in (None, "custom"):
            raise RequestError(
                f"tool {p.name!r} is an Anthropic server tool ({p.type}); podium serves client tools only",
                param="tools",
            )
        schema = p.input_schema or {"type": "object", "properties": {}}
        out.append(Tool(function=FunctionDef(name=p.name, description=p.description, parameters=schema)))
    return out


def tool_choice(choice: ToolChoiceParam | None) -> tuple[ToolChoice | None, bool | None]:
    """Canonical tool choice and ``parallel_tool_calls``."""
    if choice is None:
        return None, None
    parallel = False if choice.disable_parallel_tool_use else None
    if choice.type == "tool":
        if not choice.name:
            raise RequestError("tool_choice of type 'tool' needs the tool's name", param="tool_choice")
        return NamedToolChoice(function=NamedFunction(name=choice.name)), parallel
    mapped: dict[str, ToolChoice] = {"auto": "auto", "any": "required", "none": "none"}
    return mapped[choice.type], parallel


def chat_request(body: MessagesBody, model: str, unknown: dict[str, Any]) -> ChatRequest:
    """Canonical request from a decoded Messages body (``model`` already alias-resolved)."""
    choice, parallel = tool_choice(body.tool_choice)
    extra: dict[str, Any] = dict(unknown)
    for name in ("top_k", "thinking", "service_tier"):
        value = getattr(body, name)
        if value is not None:
            extra[name] = value
    return ChatRequest(
        messages=messages(body.system, body.messages),
        model=model,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=body.stop_sequences,
        user=body.metadata.user_id if body.metadata else None,
        tools=tools(body.tools),
        tool_choice=choice,
        parallel_tool_calls=parallel,
        extra=extra or None,
    )


# --- answers -------------------------------------------------------------------------------------------

_STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}


def usage_dict(usage: Usage) -> dict[str, Any]:
    """Anthropic's usage: ``input_tokens`` excludes the tokens read from the prompt cache."""
    return {
        "input_tokens": max(0, usage.prompt_tokens - usage.cached_tokens),
        "output_tokens": usage.completion_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": usage.cached_tokens,
    }


def _tool_input(arguments: str) -> Any:
    try:
        value = msgspec.json.decode(arguments or "{}")
    except msgspec.DecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def message(resp: ChatResponse, model: str, with_thinking: bool) -> dict[str, Any]:
    """A ``message`` object."""
    content: list[dict[str, Any]] = []
    if with_thinking and resp.reasoning:
        content.append({"type": "thinking", "thinking": resp.reasoning, "signature": ""})
    if resp.content:
        content.append({"type": "text", "text": resp.content})
    for call in resp.tool_calls:
        content.append(
            {
                "type": "tool_use",
                "id": call.id,
                "name": call.function.name,
                "input": _tool_input(call.function.arguments),
            }
        )
    return {
        "id": resp.id,
        "type": "message",
        "role": "assistant",
        "model": resp.model or model,
        "content": content,
        "stop_reason": _STOP.get(resp.finish_reason or "stop", "end_turn"),
        "stop_sequence": None,
        "usage": usage_dict(resp.usage),
    }


class EventEncoder:
    """Encodes one stream's canonical chunks as Anthropic SSE events."""

    def __init__(self, mid: str, model: str, with_thinking: bool) -> None:
        self.mid = mid
        self.model = model
        self.with_thinking = with_thinking
        self.usage = Usage()
        self.stop_reason = "end_turn"
        self._index = -1
        self._open: tuple[str, int] | None = None
        self._pinged = False
        self._encoder = msgspec.json.Encoder()

    def _event(self, name: str, payload: dict[str, Any]) -> bytes:
        return b"event: " + name.encode() + b"\ndata: " + self._encoder.encode(payload) + b"\n\n"

    def start(self) -> bytes:
        """``message_start``: usage is known only at the end, so it starts at zero."""
        return self._event(
            "message_start",
            {
                "type": "message_start",
                "message": {
                    "id": self.mid,
                    "type": "message",
                    "role": "assistant",
                    "model": self.model,
                    "content": [],
                    "stop_reason": None,
                    "stop_sequence": None,
                    "usage": {"input_tokens": 0, "output_tokens": 0},
                },
            },
        )

    def _close(self) -> list[bytes]:
        if self._open is None:
            return []
        self._open = None
        return [self._event("content_block_stop", {"type": "content_block_stop", "index": self._index})]

    def _switch(self, key: tuple[str, int], block: dict[str, Any]) -> list[bytes]:
        if self._open == key:
            return []
        events = self._close()
        self._index += 1
        self._open = key
        events.append(
            self._event(
                "content_block_start",
                {"type": "content_block_start", "index": self._index, "content_block": block},
            )
        )
        if not self._pinged:
            self._pinged = True
            events.append(self._event("ping", {"type": "ping"}))
        return events

    def _delta(self, delta: dict[str, Any]) -> bytes:
        return self._event(
            "content_block_delta", {"type": "content_block_delta", "index": self._index, "delta": delta}
        )

    def encode(self, chunk: ChatChunk) -> list[bytes]:
        """The events for one chunk."""
        events: list[bytes] = []
        if chunk.reasoning and self.with_thinking:
            events += self._switch(("thinking", 0), {"type": "thinking", "thinking": "", "signature": ""})
            events.append(self._delta({"type": "thinking_delta", "thinking": chunk.reasoning}))
        if chunk.delta:
            events += self._switch(("text", 0), {"type": "text", "text": ""})
            events.append(self._delta({"type": "text_delta", "text": chunk.delta}))
        for call in chunk.tool_calls or []:
            block = {"type": "tool_use", "id": call.id or "", "name": call.name or "", "input": {}}
            events += self._switch(("tool", call.index), block)
            if call.arguments:
                events.append(self._delta({"type": "input_json_delta", "partial_json": call.arguments}))
        if chunk.finish_reason is not None:
            self.stop_reason = _STOP.get(chunk.finish_reason, "end_turn")
        if chunk.usage is not None:
            self.usage = chunk.usage
        return events

    def finish(self) -> bytes:
        """Close the open block, then ``message_delta`` (stop reason, usage) and ``message_stop``."""
        events = self._close()
        events.append(
            self._event(
                "message_delta",
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": self.stop_reason, "stop_sequence": None},
                    "usage": usage_dict(self.usage),
                },
            )
        )
        events.append(self._event("message_stop", {"type": "message_stop"}))
        return b"".join(events)

    def error(self, body: bytes) -> bytes:
        """An error after the stream started: Anthropic's ``error`` event."""
        return b"event: error\ndata: " + body + b"\n\n"
