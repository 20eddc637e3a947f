"""The ``podium`` command: every sub-command is there though each is imported only when asked for."""

from __future__ import annotations

import subprocess
import sys

from typer.testing import CliRunner

from podium import __version__
from podium.cli.main import app

COMMANDS = ["demo", "serve", "bench", "version", "audit", "data", "keys", "providers"]


def test_help_lists_every_command_in_order_with_its_summary() -> None:
    result = CliRunner().invoke(app, ["--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output
    listed = [line.strip("│ ").split()[0] for line in result.output.splitlines() if line.startswith("│ ")]
    assert [name for name in listed if name in COMMANDS] == COMMANDS
    assert "Run the gateway server (OpenAI/Anthropic-compatible /v1 and /api/ai)." in result.output
    assert "Create, list and revoke API keys for the gateway." in result.output


def test_each_command_runs_with_its_own_options_and_sub_commands() -> None:
    runner = CliRunner()
    serve = runner.invoke(app, ["serve", "--help"], env={"COLUMNS": "200"})
    assert serve.exit_code == 0, serve.output
    assert "Usage: podium serve [OPTIONS]" in serve.output
    assert "--workers" in serve.output
    keys = runner.invoke(app, ["keys", "--help"], env={"COLUMNS": "200"})
    assert "Usage: podium keys [OPTIONS] COMMAND [ARGS]..." in keys.output
    assert all(name in keys.output for name in ("create", "list", "revoke"))
    version = runner.invoke(app, ["version"])
    assert (version.exit_code, version.output.strip()) == (0, __version__)


def test_a_mistyped_command_gets_a_suggestion_among_commands_not_yet_loaded() -> None:
    result = CliRunner().invoke(app, ["sreve"])
    assert result.exit_code == 2
    assert "No such command 'sreve'" in result.output
    assert "Did you mean 'serve'?" in result.output


def test_running_one_command_imports_none_of_the_others() -> None:
    script = (
        "import sys\n"
        "from podium.cli.main import app\n"
        "try:\n"
        "    app(['version'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(m for m in sys.modules if m.startswith(('podium.cli.', 'rich'))))\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.splitlines() == [__version__, "['podium.cli.main']"]
