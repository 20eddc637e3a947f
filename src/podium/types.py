"""Canonical request and response types shared by every layer.

Messages follow the OpenAI Chat Completions shape (the lingua franca most callers already hold as
dicts), so ``[{"role": "user", "content": "Hi"}]`` converts without ceremony. Provider adapters translate
these to and from their own wire formats at the boundary.

The types are ``msgspec.Struct`` classes: cheap to build, validated on conversion from dicts or JSON.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal, TypeAlias

import msgspec

from podium.errors import RequestError

Role: TypeAlias = Literal["system", "developer", "user", "assistant", "tool"]
FinishReason: TypeAlias = Literal["stop", "length", "tool_calls", "content_filter"]


class ImageURL(msgspec.Struct, omit_defaults=True):
    """An image by URL or ``data:<media type>;base64,<data>`` URI."""

    url: str
    detail: Literal["auto", "low", "high"] | None = None


class TextPart(msgspec.Struct, tag="text", tag_field="type"):
    """A text part of a multi-part message."""

    text: str


class ImagePart(msgspec.Struct, tag="image_url", tag_field="type"):
    """An image part of a multi-part message."""

    image_url: ImageURL


ContentPart: TypeAlias = TextPart | ImagePart


class FunctionCall(msgspec.Struct):
    """The function a tool call invokes; ``arguments`` is JSON text."""

    name: str
    arguments: str = "{}"


class ToolCall(msgspec.Struct):
    """A tool call made by the assistant."""

    id: str
    function: FunctionCall
    type: Literal["function"] = "function"

    def parsed_arguments(self) -> Any:
        """Return the arguments decoded from JSON."""
        return msgspec.json.decode(self.function.arguments or "{}")


class Message(msgspec.Struct, omit_defaults=True):
    """One chat message.

    ``content`` is text or a list of parts; assistant messages may carry ``tool_calls``; ``tool``
    messages answer one tool call and name it in ``tool_call_id``.
    """

    role: Role
    content: str | list[ContentPart] | None = None
    name: str | None = None
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None

    def text(self) -> str:
        """Return the message's text, joining text parts."""
        if self.content is None:
            return ""
        if isinstance(self.content, str):
            return self.content
        return "".join(p.text for p in self.content if isinstance(p, TextPart))


class FunctionDef(msgspec.Struct, omit_defaults=True):
    """A function the model may call."""

    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class Tool(msgspec.Struct):
    """A tool offered to the model."""

    function: FunctionDef
    type: Literal["function"] = "function"


class NamedFunction(msgspec.Struct):
    """Names the function a forced tool choice must call."""

    name: str


class NamedToolChoice(msgspec.Struct):
    """Force the model to call one named function."""

    function: NamedFunction
    type: Literal["function"] = "function"


ToolChoice: TypeAlias = Literal["auto", "none", "required"] | NamedToolChoice


class JsonSchema(msgspec.Struct, omit_defaults=True):
    """A named JSON schema the answer must follow."""

    name: str
    schema_: dict[str, Any] = msgspec.field(name="schema", default_factory=dict)
    description: str | None = None
    strict: bool | None = None


class ResponseFormat(msgspec.Struct, omit_defaults=True):
    """Plain text, any JSON object, or JSON following a schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JsonSchema | None = None


class ChatRequest(msgspec.Struct, omit_defaults=True):
    """A chat request in canonical form.

    ``model`` None means the provider's default model. ``extra`` carries provider-specific parameters
    passed through verbatim into the upstream body.
    """

    messages: list[Message]
    model: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: list[str] | None = None
    seed: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    response_format: ResponseFormat | None = None
    extra: dict[str, Any] | None = None

    def system_text(self) -> str | None:
        """Return system and developer messages joined, or None when there are none."""
        parts = [m.text() for m in self.messages if m.role in ("system", "developer")]
        return "\n\n".join(parts) if parts else None


class Usage(msgspec.Struct):
    """Token usage of one response.

    ``cached_tokens`` is the part of ``prompt_tokens`` served from the provider's prompt cache, and
    ``reasoning_tokens`` the part of ``completion_tokens`` spent thinking.
    """

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class ChatResponse(msgspec.Struct, kw_only=True):
    """One complete answer, with where it came from and what it cost in tokens."""

    id: str
    content: str | None
    tool_calls: list[ToolCall] = msgspec.field(default_factory=list)
    finish_reason: FinishReason | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    provider: str = ""
    model: str = ""
    latency_ms: float = 0.0
    raw_id: str | None = None
    reasoning: str | None = None
    cost: float | None = None
    metadata: dict[str, Any] = msgspec.field(default_factory=dict)


class ToolCallDelta(msgspec.Struct, omit_defaults=True):
    """A fragment of a streamed tool call; ``id`` and ``name`` come with the first fragment."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class ChatChunk(msgspec.Struct, kw_only=True, omit_defaults=True):
    """One piece of a streamed answer; the last chunk of a stream carries ``usage`` (and ``cost``, USD)."""

    delta: str = ""
    tool_calls: list[ToolCallDelta] | None = None
    reasoning: str | None = None
    finish_reason: FinishReason | None = None
    usage: Usage | None = None
    id: str = ""
    provider: str = ""
    model: str = ""
    cost: float | None = None


class CompletionRequest(msgspec.Struct, omit_defaults=True):
    """A legacy text-completion request."""

    prompt: str
    model: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    seed: int | None = None
    user: str | None = None
    extra: dict[str, Any] | None = None


class CompletionResponse(msgspec.Struct, kw_only=True):
    """A text completion."""

    id: str
    text: str
    finish_reason: FinishReason | None = None
    usage: Usage = msgspec.field(default_factory=Usage)
    provider: str = ""
    model: str = ""
    latency_ms: float = 0.0
    raw_id: str | None = None
    cost: float | None = None


class EmbedRequest(msgspec.Struct, omit_defaults=True):
    """Texts to embed."""

    input: list[str]
    model: str | None = None
    dimensions: int | None = None
    user: str | None = None
    extra: dict[str, Any] | None = None


class EmbedResponse(msgspec.Struct, kw_only=True):
    """One embedding per input text, in input order."""

    embeddings: list[list[float]]
    model: str = ""
    provider: str = ""
    usage: Usage = msgspec.field(default_factory=Usage)
    latency_ms: float = 0.0
    cost: float | None = None

    @property
    def dimensions(self) -> int:
        """Length of each embedding vector (0 when there are none)."""
        return len(self.embeddings[0]) if self.embeddings else 0


MessageLike: TypeAlias = Message | Mapping[str, Any]


def to_messages(messages: str | Iterable[MessageLike]) -> list[Message]:
    """Convert a prompt, dicts or Messages to validated Messages.

    Raises:
        RequestError: a message is not a valid chat message.
    """
    if isinstance(messages, str):
        return [Message(role="user", content=messages)]
    out: list[Message] = []
    for i, m in enumerate(messages):
        if isinstance(m, Message):
            out.append(m)
            continue
        try:
            out.append(msgspec.convert(m, Message))
        except msgspec.ValidationError as exc:
            raise RequestError(f"messages[{i}] is not a valid chat message: {exc}", param="messages") from exc
    if not out:
        raise RequestError("messages must contain at least one message", param="messages")
    return out


def convert(value: Any, into: Any, param: str) -> Any:
    """Convert a dict (or list) into a canonical type, raising RequestError naming ``param``."""
    try:
        return msgspec.convert(value, into)
    except msgspec.ValidationError as exc:
        raise RequestError(f"{param} is invalid: {exc}", param=param) from exc
