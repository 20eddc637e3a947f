"""Helpers shared by the configuration tests (plain functions: fixtures live in each module)."""

from __future__ import annotations

from pathlib import Path

from podium.config.store import ProviderRecord

SECRET = "sk-test-PLAINTEXT-0123456789abcdef"
OTHER_SECRET = "sk-test-ROTATED-fedcba9876543210"


def record(
    name: str = "gpt", tenant: str = "acme", secret: str = SECRET, **settings: object
) -> ProviderRecord:
    """An OpenAI provider record with an API key."""
    return ProviderRecord(
        tenant=tenant,
        name=name,
        type="openai",
        settings={"default_model": "gpt-4o-mini", **settings},
        secrets={"api_key": secret},
    )


def directory_bytes(directory: Path) -> dict[str, bytes]:
    """Every file under ``directory`` (hidden ones too), by relative path."""
    return {
        str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()
    }
