"""``server``: settings of the gateway server (mounted as ``Settings.server``)."""

from __future__ import annotations

from pydantic import Field

from podium._settings_sections import Section

DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


class ServerSettings(Section):
    """How ``podium serve`` listens and what it accepts.

    Attributes:
        host: Interface to listen on.
        port: TCP port.
        workers: Worker processes (each with its own orchestrator; share state through Redis).
        max_body_bytes: Larger request bodies are refused with 413.
        aliases: Public model names mapped to a ``model`` or ``provider/model``, e.g.
            ``{"fast": "openai/gpt-4o-mini"}``.
        graceful_timeout: Seconds to let in-flight requests finish on shutdown.
    """

    host: str = "127.0.0.1"
    port: int = Field(default=8080, ge=0, le=65535)
    workers: int = Field(default=1, ge=1, le=64)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1)
    aliases: dict[str, str] = Field(default_factory=dict)
    graceful_timeout: float = Field(default=30.0, gt=0)
