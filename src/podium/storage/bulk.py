"""``BulkInsert``: many rows into one table, as the record writer writes them, with less per-row Python.

``conn.execute(insert(table), [dict, ...])`` builds, for every row, a parameter dict keyed by bind
name (``construct_params``) and then a list of values with each column type's bind processor applied.
On the request log and the audit trail, which the record writer fills with two rows per served
request, that generic per-row work was most of the writer's CPU (``benchmarks/writer_cost.py``).

Here the statement is compiled once per dialect, the rows come as tuples in the statement's column
order, and only the columns whose type has a bind processor on that dialect are converted: with the
very processors SQLAlchemy would apply (so the same text, dates and JSON are stored; tested against
``insert()`` on SQLite and PostgreSQL). The rows then go to the driver's ``executemany``, as an
``insert()`` without ``RETURNING`` does.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Table, insert
from sqlalchemy.engine import Dialect

from podium.storage.aio import AsyncConnection

_Processor = Callable[[Any], Any]


class _Compiled:
    __slots__ = ("convert", "sql")

    def __init__(self, sql: str, convert: tuple[tuple[int, _Processor], ...]) -> None:
        self.sql = sql
        self.convert = convert


class BulkInsert:
    """An ``INSERT`` of rows given as tuples of values for ``columns``, in that order.

    Args:
        table: The table.
        columns: The columns every row gives a value for (others take their server default).
    """

    def __init__(self, table: Table, columns: Sequence[str]) -> None:
        self.table = table
        self.columns = tuple(columns)
        missing = [c for c in self.columns if c not in table.c]
        if missing:
            raise ValueError(f"table {table.name} has no column {', '.join(missing)}")
        # Per engine's dialect: a JSON column's processor uses the engine's own serialiser.
        self._compiled: weakref.WeakKeyDictionary[Dialect, _Compiled] = weakref.WeakKeyDictionary()

    def _compile(self, dialect: Dialect) -> _Compiled:
        compiled = insert(self.table).compile(dialect=dialect, column_keys=list(self.columns))
        if compiled.positiontup is None or tuple(compiled.positiontup) != self.columns:
            # Positional binding in the columns' order is what rows are built for; a column left out
            # that has a Python-side default would be bound too (with its default), so name it.
            raise ValueError(
                f"{dialect.name}: the insert into {self.table.name} binds {compiled.positiontup}, "
                f"not the columns given {list(self.columns)}"
            )
        convert = []
        for i, name in enumerate(self.columns):
            processor = self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if processor is not None:
                convert.append((i, processor))
        return _Compiled(compiled.string, tuple(convert))

    async def run(self, conn: AsyncConnection, rows: Sequence[Sequence[Any]]) -> None:
        """Insert ``rows`` inside the caller's transaction (one ``executemany``)."""
        if not rows:
            return
        dialect = conn.dialect
        compiled = self._compiled.get(dialect)
        if compiled is None:
            compiled = self._compiled[dialect] = self._compile(dialect)
        width = len(self.columns)
        widths = set(map(len, rows))
        if widths != {width}:
            wrong = min(widths - {width})
            raise ValueError(f"a row for {self.table.name} has {wrong} values, not {width}")
        # Column by column: each processor is mapped over its column in C, instead of a Python loop
        # over every row and every converted column (most of this method's cost per row before).
        columns = list(zip(*rows, strict=True))
        for i, processor in compiled.convert:
            columns[i] = tuple(map(processor, columns[i]))
        # SQLAlchemy passes a list of tuples to executemany as it is.
        params: list[tuple[Any, ...]] = list(zip(*columns, strict=True))
        await conn.exec_driver_sql(compiled.sql, params)
