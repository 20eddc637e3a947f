"""Locating and loading the shared recordings of real provider traffic.

The recordings live outside the repository (never copied in): ``$PODIUM_RECORDINGS`` or
``../shared/fixtures/recordings`` beside the checkout. Under CI (``CI=true``) they must be found;
elsewhere the conformance tests skip with a clear message.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

_ROOT = Path(__file__).resolve().parent.parent


def recordings_dir() -> Path | None:
    """The recordings folder, or None when it cannot be found."""
    env = os.environ.get("PODIUM_RECORDINGS")
    candidates = [Path(env)] if env else []
    candidates += [
        _ROOT.parent / "shared" / "fixtures" / "recordings",
        _ROOT / ".." / ".." / "shared" / "fixtures" / "recordings",
    ]
    for c in candidates:
        if (c / "INDEX.md").is_file():
            return c.resolve()
    return None


def recording_files(provider: str, prefix: str = "") -> list[Path]:
    """Every recording file of ``provider`` whose name starts with ``prefix`` (sorted).

    Returns an empty list outside this workplace; under CI a missing folder is an error.
    """
    folder = recordings_dir()
    if folder is None:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise RuntimeError(
                "recordings not found under CI: "
                "set PODIUM_RECORDINGS to the shared/fixtures/recordings folder"
            )
        return []
    return sorted(p for p in (folder / provider).glob(f"{prefix}*.json"))


def params(provider: str, prefix: str = "") -> list[Any]:
    """pytest parameters (one per recording file, id = file name) for ``@pytest.mark.parametrize``."""
    files = recording_files(provider, prefix)
    if not files:
        return [
            pytest.param(
                None, marks=pytest.mark.skip(reason="recordings folder not found; set PODIUM_RECORDINGS")
            )
        ]
    return [pytest.param(p, id=p.stem) for p in files]


def load(path: Path) -> dict[str, Any]:
    """Load one recording."""
    data: dict[str, Any] = json.loads(path.read_text())
    return data
