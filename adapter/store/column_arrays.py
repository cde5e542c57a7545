"""PostgreSQL: many rows in one INSERT whose parameters are column arrays (`INSERT ... SELECT FROM unnest`).

A multi-row `INSERT ... VALUES` (SQLAlchemy's "insertmanyvalues") has a different text for every row
count, so nothing about it is reused: SQLAlchemy writes the text, psycopg scans all of it for
placeholders (it caches only statements under 4 kB), and PostgreSQL parses and plans it anew. Measured
on a 20-resource pathway Bundle, psycopg's scan alone was more than a quarter of the worker's CPU and
PostgreSQL spent ~5 ms per Bundle. With one array per column the text never changes: psycopg converts it
once, prepares it after a few executions, and PostgreSQL plans it once.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import BigInteger, Boolean, Column, Float, Table, Text, bindparam, func, select
from sqlalchemy.dialects.postgresql import ARRAY, Insert, insert
from sqlalchemy.types import TypeEngine


def _element_type(column: Column) -> TypeEngine:
    # Strings go as text[]: a cast to varchar(n)[] would cut an over-long value where inserting it into
    # the varchar(n) column refuses it, as the row-by-row INSERT does.
    python_type = column.type.python_type
    if python_type is bool:
        return Boolean()
    if python_type is int:
        return BigInteger()  # an integer column takes a bigint by assignment, refusing one out of range
    if python_type is float:
        return Float()
    return Text()


class ColumnArrays:
    """One fixed INSERT for any number of rows of `table`, given as dicts keyed by column name.

    `skip_existing`: rows whose key is already there, or being inserted by a concurrent transaction, are
    left out (ON CONFLICT DO NOTHING) instead of failing the statement."""

    def __init__(
        self,
        table: Table,
        columns: Sequence[str],
        returning: Sequence[str] = (),
        *,
        skip_existing: bool = False,
    ):
        self.columns = tuple(columns)
        arrays = [bindparam(name, type_=ARRAY(_element_type(table.c[name]))) for name in self.columns]
        rows = func.unnest(*arrays).table_valued(*self.columns).render_derived()
        statement: Insert = insert(table).from_select(
            list(self.columns), select(*[rows.c[name] for name in self.columns])
        )
        if skip_existing:
            statement = statement.on_conflict_do_nothing()
        if returning:
            statement = statement.returning(*[table.c[name] for name in returning])
        self.statement = statement

    def parameters(self, rows: Sequence[dict]) -> dict[str, list]:
        return {name: [row[name] for row in rows] for name in self.columns}
