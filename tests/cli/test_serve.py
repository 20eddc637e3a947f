"""``podium serve``'s app: what start-up leaves for the collector while serving."""

from __future__ import annotations

import gc
import json
from pathlib import Path

from podium.cli.serve import build_app


async def test_the_start_up_heap_is_frozen_while_serving_and_released_after(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text(json.dumps({"framework": {"data_dir": str(tmp_path)}, "auth": {"enabled": False}}))
    app = build_app(str(config))
    assert gc.get_freeze_count() == 0
    async with app.router.lifespan_context(app):
        # Full collections skip what start-up built (they set the p99 latency before).
        assert gc.get_freeze_count() > 10_000
    assert gc.get_freeze_count() == 0
