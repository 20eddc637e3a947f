"""How the demo prints: rich tables and headings, or plain ASCII (``--plain``) for logs and CI."""

from __future__ import annotations

import shutil
from collections.abc import Iterable, Sequence

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

_PLAIN_WIDTH = 160  # wide enough that tables are not wrapped in a log


class Report:
    """Writes the demo's sections.

    Args:
        plain: No colours, ASCII borders, a fixed width: for logs, CI and copy-paste.
    """

    def __init__(self, plain: bool = False) -> None:
        self.plain = plain
        if plain:
            width = max(_PLAIN_WIDTH, shutil.get_terminal_size((_PLAIN_WIDTH, 24)).columns)
            self.console = Console(
                no_color=True, highlight=False, force_terminal=False, width=width, emoji=False
            )
        else:
            self.console = Console(highlight=False)
        self._section = 0

    def section(self, title: str, intro: str = "") -> None:
        """Start a numbered section."""
        self._section += 1
        self.console.print()
        heading = f"{self._section}. {title}"
        if self.plain:
            self.console.print(heading, markup=False)
            self.console.print("=" * len(heading), markup=False)
        else:
            self.console.rule(f"[bold]{escape(heading)}[/bold]", align="left")
        if intro:
            self.line(intro)

    def line(self, text: str) -> None:
        """One line of text, printed as is (no markup); never wrapped in plain mode, so it greps whole."""
        self.console.print(text, markup=False, soft_wrap=self.plain)

    def fact(self, label: str, value: str) -> None:
        """``label: value``, the label emphasised."""
        if self.plain:
            self.line(f"{label}: {value}")
        else:
            self.console.print(f"[bold]{escape(label)}:[/bold] {escape(value)}")

    def table(
        self,
        columns: Sequence[str],
        rows: Iterable[Sequence[object]],
        *,
        title: str | None = None,
    ) -> None:
        """A table; every cell is shown as text, never interpreted as markup."""
        table = Table(
            title=title,
            title_justify="left",
            box=box.ASCII if self.plain else box.SIMPLE_HEAD,
            header_style="" if self.plain else "bold",
            # Compact in a terminal, so an 80-column window still shows every figure whole.
            pad_edge=self.plain,
            collapse_padding=not self.plain,
        )
        for column in columns:
            table.add_column(column, overflow="fold")  # wrap at spaces; fold only words too long
        for row in rows:
            table.add_row(*(escape(str(cell)) for cell in row))
        self.console.print(table)

    def stream_text(self, text: str) -> None:
        """Part of a streamed answer, as it arrives (no newline)."""
        self.console.print(text, end="", markup=False, soft_wrap=True)


def usd(amount: float | None) -> str:
    """A dollar amount with enough digits for per-request costs (fractions of a cent)."""
    if amount is None:
        return "-"
    if 0 < amount < 0.000001:
        return f"${amount:.8f}"  # embeddings cost cents per million tokens: keep them visible
    return f"${amount:.6f}"


def ms(value: float | None) -> str:
    """Milliseconds, one decimal."""
    return "-" if value is None else f"{value:.1f} ms"
