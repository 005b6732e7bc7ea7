"""Tables that keep their most important columns whole at any terminal width.

Each :class:`Column` has a priority; when the cells do not fit the width the
console offers, the least important columns are left out, one at a time,
until the rest fit at their full width. A kept cell is never cut or wrapped:
a symbol or a price is shown whole or, with its column, not at all.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from rich.cells import cell_len
from rich.console import Console, ConsoleOptions, RenderResult
from rich.table import Table
from rich.text import Text

Cell = Text | str
PADDING = 2  # rich's default cell padding: one space each side
EDGE = 1  # one vertical line per column, plus the one closing the row


@dataclass(frozen=True)
class Column:
    """A column's header, its priority (0 is kept longest) and its alignment."""

    name: str
    priority: int
    justify: Literal["left", "right"] = "right"


def _cell_width(cell: Cell) -> int:
    return cell.cell_len if isinstance(cell, Text) else cell_len(cell)


def content_widths(columns: Sequence[Column], rows: Sequence[Sequence[Cell]]) -> list[int]:
    """Each column's width without padding: its widest cell or its header."""
    return [max([cell_len(c.name), *(_cell_width(row[i]) for row in rows)])
            for i, c in enumerate(columns)]


def fitting_columns(columns: Sequence[Column], widths: Sequence[int], width: int) -> list[int]:
    """Indexes of the columns kept so every cell fits ``width`` whole, in display order.

    The most important column is kept even when it alone is wider.
    """
    kept = sorted(range(len(columns)), key=lambda i: (columns[i].priority, i))
    while len(kept) > 1 and EDGE + sum(widths[i] + PADDING + EDGE for i in kept) > width:
        kept.pop()
    return sorted(kept)


class PriorityTable:
    """A rich renderable: the table of the columns that fit the width it is drawn at.

    ``empty`` is shown under the headers while there is no row.
    """

    def __init__(self, title: str, columns: Sequence[Column],
                 rows: Sequence[Sequence[Cell]], empty: str = "") -> None:
        self.title = title
        self.columns = list(columns)
        self.rows = [list(row) for row in rows]
        self.empty = empty

    def table(self, width: int) -> Table:
        """The table as drawn ``width`` cells wide."""
        widths = content_widths(self.columns, self.rows)
        kept = fitting_columns(self.columns, widths, width)
        table = Table(title=self.title, title_justify="left",
                      header_style="bold cyan",
                      caption=None if self.rows else self.empty, caption_justify="left")
        for i in kept:
            table.add_column(self.columns[i].name, justify=self.columns[i].justify,
                             no_wrap=True, min_width=widths[i])
        for row in self.rows:
            table.add_row(*(row[i] for i in kept))
        return table

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield self.table(options.max_width)


class Phrases:
    """A rich renderable: short texts on one line, wrapped between texts, never inside one."""

    def __init__(self, phrases: Sequence[Text], separator: str = "   ") -> None:
        self.phrases = list(phrases)
        self.separator = separator

    def lines(self, width: int) -> list[Text]:
        """The phrases packed greedily into lines of at most ``width`` cells."""
        lines: list[Text] = []
        for phrase in self.phrases:
            line = lines[-1] if lines else None
            if line is not None and (line.cell_len + len(self.separator) + phrase.cell_len
                                     <= width):
                line.append(self.separator)
                line.append_text(phrase)
            else:
                lines.append(phrase.copy())
        return lines

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        yield from self.lines(options.max_width)
