"""What ``ls``, ``show``, ``best`` and ``compare`` print: a table for people, TSV or strict
JSON for scripts, and tables that a pipe receives whole.

On a terminal a table fits the window: long cells fold onto more lines, but key columns
(trial ids, experiment names) are never cut, so two ids never read the same; when even the
words of the table cannot fit, it is printed wider and the terminal wraps its lines. Outside
a terminal (a pipe, a file, a test) nothing wraps or is shortened: every row is one line
(``raytuner ls | grep NAME`` finds it).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping, Sequence
from enum import Enum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from rich.console import Console
    from rich.table import Table

WIDE = 1_000_000  # a console's width outside a terminal: no line is ever wrapped


class OutputFormat(str, Enum):
    """``--format``: ``table`` for people, ``tsv`` and ``json`` for scripts."""

    TABLE = "table"
    TSV = "tsv"
    JSON = "json"


def chosen_format(format_: OutputFormat | None, json_: bool) -> OutputFormat:
    """``--format``, with ``--json`` kept as the older spelling of ``--format json``."""
    from raytuner.errors import UsageError

    if json_ and format_ is not None and format_ is not OutputFormat.JSON:
        raise UsageError(f"--json and --format {format_.value} ask for two formats: give one of them")
    return OutputFormat.JSON if json_ else format_ or OutputFormat.TABLE


def json_text(value: Any, indent: int | None = 2) -> str:
    """Strict JSON (``json.loads`` and every other parser read it back): NaN and infinities
    are null; values JSON has no type for (timestamps) are their text."""
    from raytuner.cli import strict_json

    return strict_json.dumps(value, indent=indent)


def rows_text(format_: OutputFormat, columns: Sequence[str], rows: Sequence[Mapping[str, Any]]) -> str:
    """``rows`` as JSON (a list of objects) or TSV (``columns``, in this order)."""
    if format_ is OutputFormat.JSON:
        return json_text(list(rows))
    return tsv_text(columns, ([row.get(column) for column in columns] for row in rows))


def tsv_text(columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A header line, then one line per row, cells separated by tabs, nothing else.

    An empty cell is null; numbers are written in full (``nan``, ``inf`` as such); true and
    false; timestamps in ISO 8601; lists and mappings (configs) as compact JSON. A backslash,
    tab, newline or carriage return inside a cell is written ``\\\\``, ``\\t``, ``\\n``, ``\\r``,
    so every row stays one line.
    """
    lines = ["\t".join(tsv_cell(column) for column in columns)]
    lines.extend("\t".join(tsv_cell(value) for value in row) for row in rows)
    return "\n".join(lines)


_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def tsv_cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, str):
        return value.translate(_ESCAPES)
    return json_text(value, indent=None).translate(_ESCAPES)


def add_key_column(table: Table, header: str) -> None:
    """A column of identifiers (trial ids, experiment names): never folded nor cut to fit."""
    table.add_column(header, no_wrap=True, overflow="fold")


def print_table(table: Table, console: Console) -> None:
    """Print ``table`` whole: outside a terminal at its own width, its title included (nothing
    wraps); on a terminal at the terminal's width, other columns folding, unless its key
    columns alone need more (the terminal then wraps the lines, ids stay whole)."""
    from rich.console import Console
    from rich.measure import Measurement
    from rich.text import Text

    options = console.options.update_width(WIDE)
    naturals = []
    for column in table.columns:
        cells = [column.header, *column.cells]
        natural = max(Measurement.get(console, options, cell).maximum for cell in cells)
        if column.max_width is not None:
            natural = min(natural, column.max_width)
        naturals.append(natural)
        if column.no_wrap:  # a key column: Rich only cuts it when nothing else can give way
            column.min_width = natural
    if not console.is_terminal and table.title:
        title = table.title if isinstance(table.title, Text) else Text.from_markup(str(table.title))
        table.min_width = max(table.min_width or 0, title.cell_len)  # a wider title would wrap
    whole = console.measure(table, options=options).maximum
    if console.is_terminal:  # the key columns whole, the others folding down to one character
        keys = sum(n if column.no_wrap else 1 for n, column in zip(naturals, table.columns, strict=True))
        width = max(console.width, min(whole, whole - sum(naturals) + keys))
    else:
        width = whole
    if width <= console.width:
        console.print(table)
        return
    wider = Console(
        file=console.file,
        width=width,
        force_terminal=console.is_terminal,
        color_system=console.color_system,  # type: ignore[arg-type]  # the name it reports
        highlight=False,
    )
    wider.print(table)
