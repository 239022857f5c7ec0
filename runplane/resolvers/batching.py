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
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, ClassVar, TypeVar, cast

from tortoise.fields.data import DatetimeField
from tortoise.models import Model

M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class Keyset:
    """Rows strictly past (created_at, id): greater in ascending order, else smaller (a page's cursor)."""

    created_at: datetime.datetime
    id: uuid.UUID
    greater: bool


async def first_children(
    model: type[M],
    parent_column: str,
    parent_ids: Sequence[uuid.UUID],
    limit: int,
    *,
    owner_id: uuid.UUID | None,
    owner_parent: type[Model] | None = None,
    order: str = "created_at DESC, id DESC",
    keysets: Sequence[Keyset] = (),
) -> dict[uuid.UUID, list[M]]:
    """Up to `limit` rows per parent in `order` (newest first by default); `owner_id` re-checks ownership
    in the same query: on the rows' own owner_id column, or, for rows without one (a run's events, a thread's
    messages), on their parent's (`owner_parent`: the parent's model); `keysets` keep only the rows past page
    cursors. `order` is a constant of the caller,
    never user input. The rows read like `model` instances (attributes, `pk`) but are `LightRow`s: read them,
    never save them."""
    if not parent_ids:
        return {}
    conn = model._meta.db
    mark = _placeholders(conn.capabilities.dialect)
    table = model._meta.db_table
    values: list[object] = [_db_value(conn.capabilities.dialect, pid) for pid in parent_ids]
    # the driver's form -> the UUID asked for
    parents: dict[object, uuid.UUID] = dict(zip(values, parent_ids, strict=False))
    where = f"{parent_column} IN ({', '.join(mark(i + 1) for i in range(len(values)))})"
    if owner_id is not None:
        values.append(_db_value(conn.capabilities.dialect, owner_id))
        if owner_parent is None:
            where += f" AND owner_id = {mark(len(values))}"
        else:  # the parent row must be the owner's: one query still, the parents' primary keys
            parents_table = owner_parent._meta.db_table
            where += f" AND {parent_column} IN (SELECT id FROM {parents_table} WHERE owner_id = {mark(len(values))})"
    for keyset in keysets:
        op = ">" if keyset.greater else "<"
        values += [keyset.created_at, keyset.created_at, _db_value(conn.capabilities.dialect, keyset.id)]
        at, same, row_id = mark(len(values) - 2), mark(len(values) - 1), mark(len(values))
        where += f" AND (created_at {op} {at} OR (created_at = {same} AND id {op} {row_id}))"
    values.append(limit)
    sql = (
        f"SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY {parent_column} "
        f"ORDER BY {order}) AS rp_rank FROM {table} WHERE {where}) ranked "
        f"WHERE rp_rank <= {mark(len(values))} ORDER BY {order}"
    )
    _, rows = await conn.execute_query(sql, values)
    if not rows:
        return {}
    columns = tuple(rows[0].keys())  # once: sqlite3.Row finds a column by name with a linear scan
    row_class = light_row_class(model, columns)
    parent_at = columns.index(parent_column)
    by_driver_value: dict[object, list[M]] = defaultdict(list)  # keyed as the driver returns the parent column
    for row in rows:
        by_driver_value[row[parent_at]].append(cast(M, row_class(row)))
    return {parents.get(parent) or uuid.UUID(str(parent)): found for parent, found in by_driver_value.items()}


class LightRow(tuple[Any, ...]):
    """A fetched row (its values, in the query's column order) read like a model instance. Columns the
    model reads as they come (ints, strings) are properties reading the tuple (C all the way); the others
    (UUIDs, datetimes, JSON) are `_Converted` descriptors that convert with the model field's own conversion
    on first read, and only then. No `__getattr__`: a lookup that falls through to it first fails with an
    AttributeError, and that cost more than the read. Read-only, like the rows they stand for."""

    _model: ClassVar[type[Model]]
    pk: Any  # a property of each row class, as every column is (light_row_class)

    def __repr__(self) -> str:
        return f"<{self._model.__name__} row {self.pk}>"

    # Rows compare and hash as the objects they stand for, not as their values.
    __eq__ = object.__eq__
    __ne__ = object.__ne__
    __hash__ = object.__hash__


class _Converted:
    """A non-data descriptor: the first read converts the column and stores it in the instance's __dict__
    (which then answers every later read, without the descriptor)."""

    __slots__ = ("convert", "index", "name")

    def __init__(self, name: str, index: int, convert: Callable[[Any], Any] | None) -> None:
        self.name, self.index, self.convert = name, index, convert

    def __get__(self, instance: Any, owner: Any = None) -> Any:
        if instance is None:
            return self
        value = instance[self.index]
        if self.convert is not None and value is not None:
            value = self.convert(value)
        instance.__dict__[self.name] = value
        return value


_row_classes: dict[tuple[type[Model], tuple[str, ...]], type[LightRow]] = {}


def light_row_class(model: type[Model], columns: tuple[str, ...]) -> type[LightRow]:
    """The LightRow class of `model` rows fetched with these columns (cached: SELECT * keeps its order)."""
    if (found := _row_classes.get((model, columns))) is None:
        meta = model._meta
        index = {column: i for i, column in enumerate(columns)}
        attributes: dict[str, Any] = {"_model": model}
        for key, attribute, _field in meta.db_native_fields:
            if key in index:
                attributes[attribute] = property(itemgetter(index[key]))
        for key, attribute, field in meta.db_default_fields:
            if key in index:
                attributes[attribute] = _Converted(attribute, index[key], field.field_type)
        for key, attribute, field in meta.db_complex_fields:
            if key in index:
                convert = _fast_datetime(field) if isinstance(field, DatetimeField) else field.to_python_value
                attributes[attribute] = _Converted(attribute, index[key], convert)
        pk = attributes.get(meta.pk_attr)
        if isinstance(pk, _Converted):
            attributes["pk"] = _Converted("pk", pk.index, pk.convert)
        elif pk is not None:
            attributes["pk"] = pk
        found = type(f"{model.__name__}Row", (LightRow,), attributes)
        if len(_row_classes) < 256:
            _row_classes[(model, columns)] = found
    return found


def _fast_datetime(field: DatetimeField[Any]) -> Callable[[Any], Any]:
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


def _placeholders(dialect: str) -> Callable[[int], str]:
    if dialect == "postgres":
        return lambda n: f"${n}"
    return lambda n: "?"


def _db_value(dialect: str, value: uuid.UUID) -> object:
    return value if dialect == "postgres" else str(value)
