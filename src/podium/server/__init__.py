"""The gateway server: OpenAI- and Anthropic-compatible endpoints and podium's ``/api/ai`` API."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from podium.server.app import create_app

__all__ = ["create_app"]


def __getattr__(name: str) -> Any:
    # Lazy, so that ``podium.settings`` can import ``podium.server.config`` without pulling in the
    # app (which needs the orchestrator, which needs the settings).
    if name == "create_app":
        from podium.server.app import create_app

        return create_app
    raise AttributeError(f"module 'podium.server' has no attribute {name!r}")
