"""Numbering rows in commit order: the positions the audit log's and the event outbox's sequencers give."""

from __future__ import annotations

from sqlalchemy import Connection, Select, Table, bindparam, text, update


def number_rows(connection: Connection, table: Table, ids: list[int], first: int) -> None:
    """Positions first, first + 1, ... to the rows `ids` of `table`, in that order; all of them or none."""
    if connection.dialect.name == "postgresql":
        # One statement over an array. As an executemany, each UPDATE got a generic plan that could walk
        # every pending row (position IS NULL, unique index) to find its own: quadratic.
        numbering = text(
            f"UPDATE {table.name} AS r SET position = :first + v.n - 1 "  # noqa: S608 (a table of ours)
            "FROM unnest(CAST(:ids AS bigint[])) WITH ORDINALITY AS v(id, n) "
            "WHERE r.id = v.id AND r.position IS NULL"
        )
        numbered = connection.execute(numbering, {"ids": ids, "first": first}).rowcount
    else:
        numbered = connection.execute(
            update(table)
            .where(table.c.id == bindparam("row_id"), table.c.position.is_(None))
            .values(position=bindparam("new_position")),
            [{"row_id": row_id, "new_position": first + offset} for offset, row_id in enumerate(ids)],
        ).rowcount
    if numbered != len(ids):
        # Only a second sequencer could have numbered them: the caller's transaction must roll back.
        raise RuntimeError(f"numbered {numbered} of {len(ids)} pending rows of {table.name}")


def unnumbered_in_order(query: Select, table: Table) -> Select:
    """`query` restricted to the rows of `table` without a position, in insertion order. Ordered by
    (position, id), NULL for all of them, an order only the (position, id) index gives: with statistics
    taken while most rows were pending (after a burst, until autovacuum analyzes again), PostgreSQL otherwise
    walked the primary key from the smallest id and filtered out every row already numbered, hundreds of
    milliseconds a pass at 100,000 rows, five passes a second (docs/benchmarks.md)."""
    return query.where(table.c.position.is_(None)).order_by(table.c.position, table.c.id)
