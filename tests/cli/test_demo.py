from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_podium_demo_shows_each_feature() -> None:
    exe = Path(sys.executable).parent / "podium"
    run = subprocess.run([str(exe), "demo", "--plain"], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    out = run.stdout
    assert "[openai-sim] you said: Hello" in out  # chat answered by the priority-1 provider
    assert "[anthropic-sim] you said: Count to 5: one two three four five" in out  # streamed text
    assert "stream ended with usage:" in out and "? prompt" not in out
    assert "2 vectors of 16 dimensions" in out
    assert "gpt: ProviderUnavailable" in out  # failover shown with the failed attempt
    assert "answered by gpt" in out  # recovery
    assert "requests: 5, failed: 0, upstream attempts: 6" in out
    assert "sk-demo-not-a-real-key" not in out  # keys are masked
