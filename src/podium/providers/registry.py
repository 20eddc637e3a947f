"""Built-in provider types. One line per adapter; plugins add theirs with ``PROVIDERS.register``."""

from __future__ import annotations

from podium._registry import Registry
from podium.providers.base import Provider

PROVIDERS: Registry[Provider] = Registry(
    "provider type",
    {
        "openai": "podium.providers.openai:OpenAIProvider",
        "anthropic": "podium.providers.anthropic:AnthropicProvider",
        "google": "podium.providers.google:GoogleProvider",
        "ollama": "podium.providers.ollama:OllamaProvider",
        "custom": "podium.providers.custom:CustomProvider",
        "mock": "podium.testing:MockProvider",
    },
)

# The seed's ``type: "local"`` names the server in ``serverType``; each maps to an adapter and the
# server's usual local address.
LOCAL_SERVERS: dict[str, tuple[str, str]] = {
    "ollama": ("ollama", "http://localhost:11434"),
    "lmstudio": ("openai", "http://localhost:1234/v1"),
    "vllm": ("openai", "http://localhost:8000/v1"),
    "llamacpp": ("openai", "http://localhost:8080/v1"),
    "openai": ("openai", "http://localhost:8000/v1"),
}
