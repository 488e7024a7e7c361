"""Numbering rows in commit order: the positions the audit log's and the event outbox's sequencers give."""

from __future__ import annotations

from sqlalchemy import Connection, Table, bindparam, text, update


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
