"""``podium demo`` runs to completion on a bare machine and shows what really happened."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

EXE = Path(sys.executable).parent / "podium"


def run_demo(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    # A shell pointing at services that do not exist, and a broken config.yaml in the current
    # directory: the demo must use none of them.
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:1/nothing",
        "REDIS_URL": "redis://127.0.0.1:1/0",
        "PYTHONIOENCODING": "utf-8",
    }
    (cwd / "config.yaml").write_text("providers: this is not a list\n")
    return subprocess.run(
        [str(EXE), "demo", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )


def table(out: str, first_header: str) -> list[list[str]]:
    """The rows of the ASCII table whose header row starts with ``first_header`` (header excluded)."""
    rows: list[list[str]] = []
    inside = False
    for line in out.splitlines():
        if not line.startswith("|"):
            if inside and line.startswith("+"):
                if rows:
                    return rows
                continue
            continue
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if cells[0] == first_header:
            inside = True
        elif inside and not set(line) <= set("|-+ "):
            rows.append(cells)
    return rows


def section(out: str, title: str) -> str:
    """The text of one numbered section of the report."""
    found = re.search(rf"^\d+\. {re.escape(title)}\n(.*?)(?=^\d+\. |\Z)", out, re.MULTILINE | re.DOTALL)
    assert found is not None, f"no section {title!r}"
    return found.group(1)


@pytest.fixture(scope="module")
def plain(tmp_path_factory: pytest.TempPathFactory) -> str:
    cwd = tmp_path_factory.mktemp("fresh")
    run = run_demo(cwd, "--plain")
    assert run.returncode == 0, run.stdout + run.stderr
    assert sorted(p.name for p in cwd.iterdir()) == ["config.yaml"]  # nothing left in the directory
    data_dir = re.search(r"directory \(SQLite database, encrypted config directory\) is (\S+)\.", run.stdout)
    assert data_dir is not None
    assert not Path(data_dir.group(1)).exists()  # and the temporary data directory is gone
    return run.stdout


def test_chat_stream_and_embeddings_show_provider_usage_and_cost(plain: str) -> None:
    assert "[anthropic-sim] you said: Count to five: one two three four five" in plain  # streamed text
    rows = {r[0]: r for r in table(plain, "request")}
    chat, stream, emb = rows["chat"], rows["stream"], rows["embeddings"]
    assert chat[1] == "gpt / gpt-4o-mini" and chat[6] == "[openai-sim] you said: Hello"
    assert stream[1] == "claude / claude-3-5-haiku-latest"
    assert int(stream[2]) > 0 and int(stream[3]) > 0  # the stream ended with usage
    assert emb[6] == "2 vectors of 16 dimensions"
    for row in (chat, stream, emb):
        assert re.fullmatch(r"\$0\.\d+", row[4]) and float(row[4][1:]) > 0, row  # priced, not zero


def test_keys_are_masked_and_the_runtime_provider_is_sealed_on_disk(plain: str) -> None:
    assert "not-a-real-key" not in plain
    providers = {(r[0], r[1]): r for r in table(section(plain, "providers"), "tenant")}
    assert providers[("demo", "gpt")][7] == "config.yaml"
    assert providers[("acme", "gpt-acme")][7] == "API, stored encrypted"
    assert "its clear text appears nowhere in the file" in plain


def test_the_circuit_opens_during_the_outage_and_closes_after_recovery(plain: str) -> None:
    rows = table(section(plain, "failover, circuit breaker and recovery"), "#")
    states = [(r[1], r[2], r[3]) for r in rows]
    opened = next(i for i, (_, _, state) in enumerate(states) if state == "open")
    # Until it opened, every request tried gpt (one call each) and failed over to claude.
    for what, calls, _ in states[1 : opened + 1]:
        assert (what, calls) == ("answered by claude", "1")
    assert states[opened + 1] == ("answered by claude (gpt skipped without a call)", "0", "open")
    half_open = next(i for i, s in enumerate(states) if s[2] == "half_open")
    assert half_open > opened + 1
    assert states[half_open + 1] == ("answered by gpt (trial request)", "1", "closed")
    assert "gpt health while open: status unhealthy, circuit open (3 consecutive failures" in plain
    assert "gpt health now: status healthy, circuit closed" in plain


def test_the_rate_limit_refuses_with_retry_after_then_admits(plain: str) -> None:
    burst = re.search(r"admitted: (\d+) requests in a burst", plain)
    assert burst is not None and int(burst.group(1)) >= 2  # the bucket holds two (more if refilled meanwhile)
    assert (
        "then refused: LimitExceeded (HTTP 429): rate limit requests_per_second=2 of tenant 'demo'" in plain
    )
    headers = dict(table(plain, "response header"))
    assert headers["retry-after"] == "1" and headers["x-ratelimit-remaining-requests"] == "0"
    assert re.search(r"after waiting retry_after: 0\.\d+ s, admitted again, answered by gpt", plain)


def test_the_hard_budget_refuses_and_signed_alerts_reach_the_receiver(plain: str) -> None:
    text = section(plain, "hard budget and alerts")
    rows = table(text, "#")
    assert rows[-1][1] == "refused" and rows[-1][4] == "BudgetExceeded (HTTP 402)"
    admitted = rows[:-1]
    assert len(admitted) >= 2 and all(r[1] == "gpt-acme / gpt-4o" for r in admitted)
    spent = [float(r[3][1:]) for r in admitted]
    assert spent == sorted(spent) and spent[-1] <= 0.002  # spend grows, never past the hard limit
    alerts = table(text, "kind")
    assert alerts[-1][0] == "refused"
    assert ("threshold", "50%") in [(a[0], a[2]) for a in alerts]
    assert all(a[6] == "verified" for a in alerts)
    assert f"the webhook receiver got {len(alerts)} alert(s)" in text
    assert '"kind": "refused"' in text and '"hard": true' in text  # the JSON as received
    # The cost summary reads the same ledger the budget table did.
    costs = {r[0]: r for r in table(section(plain, "cost summary"), "tenant")}
    assert costs["acme"][1] == str(len(admitted)) and costs["acme"][3] == admitted[-1][3]


def test_the_request_log_and_the_audit_chain_are_read_back(plain: str) -> None:
    logged = re.search(r"request log: (\d+) requests: (\d+) ok, (\d+) failed \((.*)\)", plain)
    assert logged is not None
    total, ok, failed = (int(logged.group(i)) for i in (1, 2, 3))
    assert total == ok + failed and failed == 2
    assert logged.group(4) == "BudgetExceeded x1, LimitExceeded x1"
    audit = re.search(r"audit chain: OK: (\d+) events verified", plain)
    assert audit is not None and int(audit.group(1)) > total  # every request, plus config and budget events
    assert re.search(r"audit events: budget\.alert x\d+, budget\.exceeded x1, config\.created x1", plain)
    health = {r[0]: r for r in table(section(plain, "provider health"), "tenant/provider")}
    assert set(health) == {"acme/gpt-acme", "demo/claude", "demo/gpt"}
    assert health["demo/gpt"][4] == "3"  # the three failed attempts of the outage


def test_rich_output_runs_too(tmp_path: Path) -> None:
    run = run_demo(tmp_path)
    assert run.returncode == 0, run.stdout + run.stderr
    text = " ".join(run.stdout.split())
    assert "─" in run.stdout and "| --" not in run.stdout  # box drawing, not the plain ASCII tables
    assert "audit chain: OK" in text and "the webhook receiver got" in text
