"""Per-parent "first N children" in one query, for DataLoaders: a ROW_NUMBER window, newest first.

SQLite (3.25+) and PostgreSQL both have window functions; only the placeholder style differs.
Rows come back as read-only `LightRow`s, not model instances: a nested selection reads a few columns of
hundreds of rows, and building full models (every datetime and UUID parsed up front) was most of its cost.
"""

from __future__ import annotations

import datetime
import uuid
from collections import defaultdict
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar, cast

from tortoise.fields.data import DatetimeField
from tortoise.models import Model

M = TypeVar("M", bound=Model)


async def first_children(
    model: type[M], parent_column: str, parent_ids: Sequence[uuid.UUID], limit: int, *, owner_id: uuid.UUID | None,
    order: str = "created_at DESC, id DESC",
) -> dict[uuid.UUID, list[M]]:
    """Up to `limit` rows per parent in `order` (newest first by default); `owner_id` re-checks ownership
    in the same query. `order` is a constant of the caller, never user input. The rows read like `model`
    instances (attributes, `pk`) but are `LightRow`s: read them, never save them."""
    if not parent_ids:
        return {}
    conn = model._meta.db
    mark = _placeholders(conn.capabilities.dialect)
    table = model._meta.db_table
    values: list[object] = [_db_value(conn.capabilities.dialect, pid) for pid in parent_ids]
    parents: dict[object, uuid.UUID] = dict(zip(values, parent_ids))  # the driver's form -> the UUID asked for
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
    row_class = light_row_class(model)
    grouped: dict[uuid.UUID, list[M]] = defaultdict(list)
    columns = list(rows[0].keys()) if rows else []  # once: sqlite3.Row finds a column by name with a linear scan
    for row in rows:
        record = dict(zip(columns, row))
        parent = record[parent_column]
        key = parents.get(parent) or uuid.UUID(str(parent))
        grouped[key].append(cast(M, row_class(record)))
    return grouped


class LightRow:
    """A fetched row read like a model instance: each column becomes its Python value (with the model
    field's own conversion) on first read, and only then."""

    _columns: ClassVar[dict[str, tuple[str, Callable[[Any], Any] | None]]] = {}  # attribute -> (column, convert)
    _model: ClassVar[type[Model]]

    def __init__(self, record: dict[str, Any]) -> None:
        self._record = record

    def __getattr__(self, name: str) -> Any:  # called only before the first read of `name`
        try:
            column, convert = self._columns[name]
        except KeyError:
            raise AttributeError(f"{self._model.__name__} row has no attribute {name!r}") from None
        value = self._record[column]
        if convert is not None and value is not None:
            value = convert(value)
        self.__dict__[name] = value
        return value

    def __repr__(self) -> str:
        return f"<{self._model.__name__} row {self._record.get(self._model._meta.db_pk_column)}>"


_row_classes: dict[type[Model], type[LightRow]] = {}


def light_row_class(model: type[Model]) -> type[LightRow]:
    if (found := _row_classes.get(model)) is None:
        meta = model._meta
        columns: dict[str, tuple[str, Callable[[Any], Any] | None]] = {}
        for key, attribute, _field in meta.db_native_fields:
            columns[attribute] = (key, None)
        for key, attribute, field in meta.db_default_fields:
            columns[attribute] = (key, field.field_type)
        for key, attribute, field in meta.db_complex_fields:
            columns[attribute] = (key, _fast_datetime(field) if isinstance(field, DatetimeField) else field.to_python_value)
        columns["pk"] = columns[meta.pk_attr]
        found = _row_classes[model] = type(f"{model.__name__}Row", (LightRow,), {"_columns": columns, "_model": model})
    return found


def _fast_datetime(field: DatetimeField) -> Callable[[Any], Any]:
    """SQLite hands back ISO strings, which tortoise parses with the (slow, pure Python) iso8601 package:
    parse the ones it wrote with the C `fromisoformat`, then let the field apply its timezone rules."""

    def convert(value: Any) -> Any:
        if isinstance(value, str):
            try:
                value = datetime.datetime.fromisoformat(value)
            except ValueError:
                pass
        return field.to_python_value(value)

    return convert


def _placeholders(dialect: str):  # type: ignore[no-untyped-def]
    if dialect == "postgres":
        return lambda n: f"${n}"
    return lambda n: "?"


def _db_value(dialect: str, value: uuid.UUID) -> object:
    return value if dialect == "postgres" else str(value)
