"""Per-parent "first N children" in one query, for DataLoaders: a ROW_NUMBER window, newest first.

SQLite (3.25+) and PostgreSQL both have window functions; only the placeholder style differs.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from typing import TypeVar

from tortoise.models import Model

M = TypeVar("M", bound=Model)


async def first_children(
    model: type[M], parent_column: str, parent_ids: Sequence[uuid.UUID], limit: int, *, owner_id: uuid.UUID | None,
    order: str = "created_at DESC, id DESC",
) -> dict[uuid.UUID, list[M]]:
    """Up to `limit` rows per parent in `order` (newest first by default); `owner_id` re-checks ownership
    in the same query. `order` is a constant of the caller, never user input."""
    if not parent_ids:
        return {}
    conn = model._meta.db
    mark = _placeholders(conn.capabilities.dialect)
    table = model._meta.db_table
    values: list[object] = [_db_value(conn.capabilities.dialect, pid) for pid in parent_ids]
    where = f"{parent_column} IN ({', '.join(mark(i + 1) for i in range(len(values)))})"
    if owner_id is not None:
        values.append(_db_value(conn.capabilities.dialect, owner_id))
        where += f" AND owner_id = {mark(len(values))}"
    values.append(limit)
    sql = (
        f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {parent_column} "
        f"ORDER BY {order}) AS rp_rank FROM {table} WHERE {where}) ranked "
        f"WHERE rp_rank <= {mark(len(values))} ORDER BY {order}"
    )
    _, rows = await conn.execute_query(sql, values)
    grouped: dict[uuid.UUID, list[M]] = defaultdict(list)
    for row in rows:
        record = dict(row)
        record.pop("rp_rank", None)
        instance = model._init_from_db(**record)
        grouped[uuid.UUID(str(record[parent_column]))].append(instance)
    return grouped


def _placeholders(dialect: str):  # type: ignore[no-untyped-def]
    if dialect == "postgres":
        return lambda n: f"${n}"
    return lambda n: "?"


def _db_value(dialect: str, value: uuid.UUID) -> object:
    return value if dialect == "postgres" else str(value)
