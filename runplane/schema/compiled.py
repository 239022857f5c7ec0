"""Compiled execution of query operations, without graphql-core's per-field machinery.

graphql-core executes every field of a response through the same general steps (collect fields, build a
resolve info, coerce arguments, call the resolver through middleware, check awaitables, complete the value
by type, handle errors): ~9 us a field, and a nested read resolves thousands of fields. For a validated
query document, almost all of that depends on the document only. `CompiledExecutor` (graphql-core's
executor, as Strawberry configures it) works it out once per document (`OperationPlan`, cached by operation node in a
bounded LRU; ParserCache hands back the same node for the same query string) and then runs a loop that
per field only gets the value (an attribute read for Strawberry's basic fields, the Strawberry resolver
for the others), and completes it (scalar/enum coercion, lists, objects).

Correctness first: the fast path answers only when it gives exactly the `data` graphql-core would give.
Documents it does not compile (mutations, subscriptions, directives anywhere, interfaces or unions as a
field's type, introspection other than __typename, fragment arguments, middleware, abort signals) run
normally. At run time, anything unexpected (any exception, from a resolver or not, a null in a non-null
position, a value not of the expected shape, an awaitable where it is not expected) aborts the attempt and
the WHOLE operation is executed again by graphql-core, which then reports the errors with their usual
shape, codes and paths. Queries are reads, so running them again is safe; the per-operation loaders still
hold what the aborted attempt loaded, so the re-execution mostly reads from them.

Everything else around execution stays as it was: Strawberry's parse, validation and limits extensions
(refusals unchanged), the per-operation loaders and error shaping all run around `execute_operation`.
"""

from __future__ import annotations

import asyncio
import logging
import types
from collections import OrderedDict
from collections.abc import Callable
from typing import Any, overload

from graphql import (
    FieldNode,
    GraphQLBoolean,
    GraphQLEnumType,
    GraphQLField,
    GraphQLID,
    GraphQLInt,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLResolveInfo,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLString,
    OperationDefinitionNode,
    OperationType,
    Visitor,
    visit,
)
from graphql.execution.collect_fields import FieldDetails, collect_fields, collect_subfields
from graphql.execution.values import get_argument_values
from graphql.pyutils import Path, is_iterable
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.types.cast import TYPE_CAST_ATTRIBUTE
from strawberry.types.info import Info

from runplane.schema.connections import RowBacked

logger = logging.getLogger(__name__)

PLAN_CACHE_SIZE = 256
_INT_MIN, _INT_MAX = -(2**31), 2**31 - 1


class Abort(Exception):
    """The fast path cannot answer this execution: run it through graphql-core."""


class NotCompiled(Exception):
    """The document is outside what the fast path handles."""


# Paths are plain (previous, key, typename) tuples while executing (a tuple costs a fraction of graphql-core's
# NamedTuple `Path`); `to_path` makes the `Path` when something reads it (a resolve info).
TuplePath = tuple[Any, "str | int", "str | None"]
Completer = Callable[["Run", Any, "TuplePath | None"], Any]


@overload
def to_path(path: TuplePath | Path) -> Path: ...


@overload
def to_path(path: None) -> None: ...


def to_path(path: Any) -> Path | None:
    if path is None or type(path) is Path:
        return path
    previous, key, typename = path
    return Path(to_path(previous), key, typename)


class FieldPlan:
    """One selected field of an object type: how to get its value and complete it."""

    __slots__ = (
        "args",
        "attr",
        "complete",
        "compute",
        "definition",
        "direct",
        "field_def",
        "info_class",
        "info_name",
        "key",
        "kind",
        "lazy_info",
        "leaf",
        "names",
        "node",
        "nodes",
        "origin",
        "parent_type",
        "pass_self",
        "resolve",
        "source_names",
        "typename",
    )

    ATTR, RESOLVE, TYPENAME, DIRECT, ROW = 0, 1, 2, 3, 4

    def __init__(self, key: str, parent_type: GraphQLObjectType) -> None:
        self.key = key
        self.parent_type = parent_type
        self.kind = FieldPlan.TYPENAME
        self.attr = ""
        # What planning has not set is `_unplanned`, not None: the loop calls them with no None check.
        self.resolve: Callable[..., Any] = _unplanned
        self.field_def: GraphQLField | None = None
        self.nodes: list[FieldNode] = []
        self.node: FieldNode | None = None
        self.args: dict[str, Any] | None = {}  # None: they depend on variables, coerced once per execution
        self.complete: Completer = _unplanned
        self.leaf = True  # the completed value needs no path (no resolver, no object below)
        self.typename = parent_type.name
        # DIRECT: the resolver function called as Strawberry would call it (see plan_direct)
        self.direct: Callable[..., Any] = _unplanned
        self.names: dict[str, str] = {}  # GraphQL argument name -> Python parameter name
        self.definition: Any = None
        self.info_class: Any = None
        self.info_name: str | None = None
        self.pass_self = False
        self.source_names: tuple[str, ...] = ()  # parameters that receive the parent (root/parent)
        self.lazy_info = False  # DIRECT: the resolver gets a LazyInfo (the info class is Strawberry's own)
        # ROW: a RowBacked field, computed from the row as RowBacked.__getattr__ would (see plan_value)
        self.origin: type | None = None
        self.compute: Callable[[Any], Any] = _unplanned


def _unplanned(*args: Any, **kwargs: Any) -> Any:
    raise Abort("a step of a field that was not planned")


class OperationPlan:
    __slots__ = ("fields", "root_type")

    def __init__(self, root_type: GraphQLObjectType, fields: list[FieldPlan]) -> None:
        self.root_type = root_type
        self.fields = fields


class Run:
    """The state of one compiled execution."""

    __slots__ = ("args", "executor", "pending")

    def __init__(self, executor: "CompiledExecutor") -> None:
        self.executor = executor
        # (awaitable, response dict, field, path): resolved together, level by level, as graphql-core
        # gathers sibling awaitables (DataLoaders batch what is loaded in the same tick).
        self.pending: list[tuple[Any, dict[str, Any], FieldPlan, Any]] = []  # path as a linked tuple
        self.args: dict[int, dict[str, Any]] = {}

    def arguments(self, field: FieldPlan) -> dict[str, Any]:
        args = self.args.get(id(field))
        if args is None:
            executor = self.executor
            assert field.field_def is not None and field.node is not None
            args = self.args[id(field)] = get_argument_values(
                field.field_def, field.node, executor.variable_values, None, executor.hide_suggestions
            )
        return args


def execute_object(run: Run, fields: list[FieldPlan], source: Any, path: TuplePath | None) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for field in fields:
        kind = field.kind
        if kind == 4:  # ROW: what RowBacked.__getattr__ does, without the failed lookup before it
            attr = field.attr
            if type(source) is field.origin:
                state = source.__dict__
                if attr in state:
                    value = state[attr]
                elif "_row" in state:
                    value = state[attr] = field.compute(state["_row"])
                else:
                    value = getattr(source, attr)
            else:
                value = getattr(source, attr)
            out[field.key] = field.complete(run, value, None if field.leaf else (path, field.key, field.typename))
        elif kind == 0:  # ATTR: Strawberry's basic field reads the attribute, nothing else
            value = getattr(source, field.attr)
            out[field.key] = field.complete(run, value, None if field.leaf else (path, field.key, field.typename))
        elif kind == 1 or kind == 3:  # RESOLVE, DIRECT
            field_path = (path, field.key, field.typename)
            args = field.args if field.args is not None else run.arguments(field)
            if kind == 1:
                value = field.resolve(source, resolve_info(run.executor, field, field_path), **args)
            else:
                value = call_direct(run, field, source, field_path, args)
            if not is_plain(value) and run.executor.is_awaitable(value):
                out[field.key] = None  # keeps the response's key order; filled when resolved
                run.pending.append((value, out, field, field_path))
            else:
                out[field.key] = field.complete(run, value, field_path)
        else:
            out[field.key] = field.typename
    return out


def resolve_info(executor: "CompiledExecutor", field: FieldPlan, path: TuplePath) -> GraphQLResolveInfo[Any]:
    """graphql-core's resolve info for a planned field (planning gave every field but __typename its definition)."""
    assert field.field_def is not None
    return executor.build_resolve_info(field.field_def, field.nodes, field.parent_type, to_path(path))


class LazyInfo(Info):
    """Strawberry's Info whose graphql-core resolve info (and its Path) is built on first use: the relation
    fields of a nested read take `info` and mostly never read it (their loaders live in a ContextVar).
    Everything reads as it does on the Info Strawberry would pass."""

    def __init__(self, executor: "CompiledExecutor", field: FieldPlan, path: TuplePath) -> None:
        self._executor, self._plan, self._tuple_path, self._field = executor, field, path, field.definition

    # Strawberry's Info declares `_raw_info` a dataclass field; a property in its place is what makes it lazy.
    @property
    def _raw_info(self) -> Any:  # type: ignore[override]
        raw = self.__dict__.get("_built")
        if raw is None:
            field = self.__dict__["_plan"]
            raw = self.__dict__["_built"] = self.__dict__["_executor"].build_resolve_info(
                field.field_def, field.nodes, field.parent_type, to_path(self.__dict__["_tuple_path"])
            )
        return raw

    @property
    def context(self) -> Any:
        return self.__dict__["_executor"].context_value


def call_direct(run: Run, field: FieldPlan, source: Any, path: TuplePath, args: dict[str, Any]) -> Any:
    """What Strawberry's resolver wrapper does for a field without extensions or exception handlers whose
    arguments are plain int/str/bool/float (no conversion): rename the arguments, add info/self/parent."""
    names = field.names
    kwargs = {names[name]: value for name, value in args.items()} if args else {}
    if field.info_name is not None:
        executor = run.executor
        if field.lazy_info:
            kwargs[field.info_name] = LazyInfo(executor, field, path)
        else:
            info = resolve_info(executor, field, path)
            kwargs[field.info_name] = field.info_class(_raw_info=info, _field=field.definition)
    for name in field.source_names:
        kwargs[name] = source
    direct = field.direct
    return direct(source, **kwargs) if field.pass_self else direct(**kwargs)


async def drain(run: Run) -> None:
    while run.pending:
        batch, run.pending = run.pending, []
        if len(batch) == 1:
            results: list[Any] = [await batch[0][0]]
        else:
            results = await asyncio.gather(*(item[0] for item in batch), return_exceptions=True)
        for result, (_, out, field, path) in zip(results, batch, strict=False):
            if isinstance(result, BaseException):
                raise Abort(f"{field.typename}.{field.key} raised") from result
            out[field.key] = field.complete(run, result, path)


def close_pending(run: Run) -> None:
    for awaitable, *_ in run.pending:
        close = getattr(awaitable, "close", None)
        if close is not None:  # a coroutine never awaited: close it quietly
            close()
        elif isinstance(awaitable, asyncio.Future):
            awaitable.add_done_callback(_consume)  # shared DataLoader futures: nothing to do but not to warn
    run.pending = []


def _consume(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()


# --- completers: graphql-core's complete_value, specialized by type once per plan -------------------------

_plain_types: dict[type, bool] = {}
_NOT_PLAIN = (BaseException, asyncio.Future, types.CoroutineType, types.GeneratorType)


def is_plain(value: Any) -> bool:
    """Neither an exception nor awaitable nor an async iterable, judged by the value's class once.

    graphql-core asks `hasattr(value, "__await__")` of every value; on a RowBacked object that goes through
    its `__getattr__` and an AttributeError each time. `await` looks `__await__` up on the class, so does this.
    """
    cls = type(value)
    plain = _plain_types.get(cls)
    if plain is None:
        plain = not (issubclass(cls, _NOT_PLAIN) or hasattr(cls, "__await__") or hasattr(cls, "__aiter__"))
        if len(_plain_types) < 10_000:
            _plain_types[cls] = plain
    return plain


def _abort_on_unexpected(value: Any, run: Run) -> None:
    if not is_plain(value):
        raise Abort("unexpected value")


def leaf_completer(type_: GraphQLScalarType | GraphQLEnumType) -> Completer:
    coerce = type_.coerce_output_value
    fast: type | None = None
    if type_ is GraphQLString or type_ is GraphQLID:
        fast = str  # serialize_string / serialize_id return a str as it is
    elif type_ is GraphQLBoolean:
        fast = bool

    def complete_leaf(run: Run, value: Any, _path: TuplePath | None) -> Any:
        if value is None:
            return None
        if type(value) is fast:
            return value
        if type_ is GraphQLInt and type(value) is int and _INT_MIN <= value <= _INT_MAX:
            return value
        _abort_on_unexpected(value, run)
        coerced = coerce(value)  # raises like graphql-core would: the attempt aborts
        if coerced is None:
            raise Abort("leaf coerced to null")
        return coerced

    return complete_leaf


def non_null_completer(inner: Completer) -> Completer:
    def complete_non_null(run: Run, value: Any, path: TuplePath | None) -> Any:
        if value is None:
            raise Abort("null in a non-null position")
        completed = inner(run, value, path)
        if completed is None:
            raise Abort("null in a non-null position")
        return completed

    return complete_non_null


def list_completer(inner: Completer, inner_leaf: bool) -> Completer:
    def complete_list(run: Run, value: Any, path: TuplePath | None) -> Any:
        if value is None:
            return None
        if type(value) is not list:
            _abort_on_unexpected(value, run)
            if hasattr(value, "__aiter__") or not is_iterable(value):
                raise Abort("not a list")
        if inner_leaf:  # leaf completers check what is not a plain scalar themselves
            return [inner(run, item, None) for item in value]
        completed = []
        for index, item in enumerate(value):
            if not is_plain(item):
                raise Abort("awaitable or exception list item")
            completed.append(inner(run, item, (path, index, None)))
        return completed

    return complete_list


def object_completer(type_: GraphQLObjectType, fields: list[FieldPlan], field: FieldPlan) -> Completer:
    is_type_of = type_.is_type_of
    # Strawberry's own is_type_of (types implementing an interface) ignores the info: no info built for it.
    info_free = is_type_of is not None and getattr(is_type_of, "__module__", "") == "strawberry.schema.schema_converter"
    # Classes whose instances Strawberry's is_type_of accepts by class alone (see `_accepted_by_class`).
    accepted: set[type] = set()

    def complete_object(run: Run, value: Any, path: TuplePath | None) -> Any:
        if value is None:
            return None
        if not is_plain(value):
            raise Abort("awaitable or exception object")
        if is_type_of is not None and not (type(value) in accepted and TYPE_CAST_ATTRIBUTE not in value.__dict__):
            if info_free:
                # Strawberry's is_type_of never reads its info (see above), and graphql-core types it as required.
                matches = is_type_of(value, None)  # type: ignore[arg-type]
            else:
                assert path is not None  # an object below the root always has its path
                matches = is_type_of(value, resolve_info(run.executor, field, path))
            if matches is not True:
                if matches is not False:
                    _abort_on_unexpected(matches, run)
                if not matches:
                    raise Abort("is_type_of refused the value")
            elif info_free and len(accepted) < 64 and _accepted_by_class(value):
                accepted.add(type(value))
        return execute_object(run, fields, value, path)

    return complete_object


def _accepted_by_class(value: Any) -> bool:
    """Strawberry's is_type_of answers from the object's class, unless the object was `strawberry.cast`
    (an instance attribute). That holds for classes where that attribute can only be an instance's own
    (in `__dict__`): not on the class, no `__getattr__` that could answer it (RowBacked's answers only row fields)."""
    cls = type(value)
    getattr_hook = getattr(cls, "__getattr__", None)
    return (
        hasattr(value, "__dict__")
        and not hasattr(cls, TYPE_CAST_ATTRIBUTE)
        and (getattr_hook is None or getattr_hook is RowBacked.__getattr__)
        and TYPE_CAST_ATTRIBUTE not in getattr(cls, "_row_fields", {})
    )


# --- planning ----------------------------------------------------------------------------------------------


class _Refuse(Visitor):
    def enter_directive(self, *_: Any) -> None:
        raise NotCompiled("directive")


def check_document(executor: "CompiledExecutor") -> None:
    operation = executor.operation
    if operation.operation is not OperationType.QUERY:
        raise NotCompiled("not a query")
    visit(operation, _Refuse())
    for details in executor.fragments.values():
        if details.variable_signatures:
            raise NotCompiled("fragment arguments")
        visit(details.definition, _Refuse())


def build_plan(executor: "CompiledExecutor") -> OperationPlan:
    check_document(executor)
    schema = executor.schema
    root_type = schema.get_root_type(OperationType.QUERY)
    if root_type is None:
        raise NotCompiled("no query type")
    grouped, defers, _ = collect_fields(
        schema, executor.fragments, executor.variable_values, root_type, executor.operation
    )
    if defers:
        raise NotCompiled("defer")
    return OperationPlan(root_type, plan_fields(executor, root_type, grouped, 0))


def plan_fields(
    executor: "CompiledExecutor", parent_type: GraphQLObjectType, grouped: dict[str, list[FieldDetails]], depth: int
) -> list[FieldPlan]:
    if depth > 64:
        raise NotCompiled("too deep")
    plans = []
    for key, details in grouped.items():
        if any(d.fragment_variable_values is not None or d.defer_usage is not None for d in details):
            raise NotCompiled("fragment variables or defer")
        node = details[0].node
        name = node.name.value
        field = FieldPlan(key, parent_type)
        if name == "__typename":
            plans.append(field)
            continue
        if name.startswith("__"):
            raise NotCompiled("introspection")
        field_def = parent_type.fields.get(name)
        if field_def is None:
            raise NotCompiled("unknown field")
        field.field_def, field.nodes, field.node = field_def, [d.node for d in details], node
        plan_value(executor, field, field_def)
        if field_def.args or node.arguments:
            field.args = (
                None
                if _uses_variables(node)
                else get_argument_values(field_def, node, None, None, executor.hide_suggestions)
            )
        field.complete = plan_completer(executor, field, field_def.type, details, depth)
        plans.append(field)
    return plans


def plan_value(executor: "CompiledExecutor", field: FieldPlan, field_def: GraphQLField) -> None:
    resolve = field_def.resolve
    definition = (field_def.extensions or {}).get("strawberry-definition")
    if (
        resolve is not None
        and getattr(resolve, "_is_default", False)
        and definition is not None
        and definition.is_basic_field
        and definition.default_resolver is getattr
        and not field_def.args
    ):
        field.kind, field.attr = FieldPlan.ATTR, definition.python_name
        origin = getattr((field.parent_type.extensions or {}).get("strawberry-definition"), "origin", None)
        compute = (
            getattr(origin, "_row_fields", {}).get(field.attr)
            if isinstance(origin, type) and issubclass(origin, RowBacked)
            else None
        )
        if compute is not None and getattr(origin, "__getattr__", None) is RowBacked.__getattr__:
            field.kind, field.origin, field.compute = FieldPlan.ROW, origin, compute
        return
    if resolve is None:  # not a Strawberry field: graphql-core's default resolver (dicts, attributes)
        raise NotCompiled("no resolver")
    field.kind, field.resolve, field.leaf = FieldPlan.RESOLVE, resolve, False
    plan_direct(executor, field, field_def, definition, resolve)


_PLAIN_ARGUMENT_TYPES = (int, str, bool, float)


def plan_direct(
    executor: "CompiledExecutor", field: FieldPlan, field_def: GraphQLField, definition: Any, resolve: Any
) -> None:
    """Call a synchronous resolver directly, skipping Strawberry's per-call argument conversion, when that
    conversion is the identity: no field extensions (permissions are extensions), no exception handlers,
    every argument a plain int/str/bool/float. Anything else keeps Strawberry's wrapper (`field.resolve`)."""
    strawberry_schema = getattr(executor.schema, "_strawberry_schema", None)
    resolver = getattr(definition, "base_resolver", None)
    if strawberry_schema is None or resolver is None or definition.extensions or definition.is_async:
        return
    cells = (c.cell_contents for c in resolve.__closure__ or ())
    closure = dict(zip(resolve.__code__.co_freevars, cells, strict=False))
    if closure.get("field_exception_handlers", None) != [] and closure.get("field_exception_handlers", None) != ():
        return
    names = {}
    for name, argument in field_def.args.items():
        strawberry_argument = (argument.extensions or {}).get("strawberry-definition")
        if strawberry_argument is None or strawberry_argument.type not in _PLAIN_ARGUMENT_TYPES:
            return
        names[name] = strawberry_argument.python_name
    if len(names) != len(definition.arguments) or not callable(resolver.wrapped_func):
        return
    field.names, field.definition, field.direct = names, definition, resolver.wrapped_func
    field.info_class = strawberry_schema.config.info_class
    field.lazy_info = field.info_class is Info
    field.info_name = resolver.info_parameter.name if resolver.info_parameter else None
    field.pass_self = resolver.self_parameter is not None
    field.source_names = tuple(p.name for p in (resolver.parent_parameter, resolver.root_parameter) if p is not None)
    field.kind = FieldPlan.DIRECT


def plan_completer(
    executor: "CompiledExecutor", field: FieldPlan, type_: Any, details: list[FieldDetails], depth: int
) -> Completer:
    if isinstance(type_, GraphQLNonNull):
        return non_null_completer(plan_completer(executor, field, type_.of_type, details, depth))
    if isinstance(type_, GraphQLList):
        item = plan_completer(executor, field, type_.of_type, details, depth)
        return list_completer(item, _is_leaf(type_.of_type))
    if isinstance(type_, (GraphQLScalarType, GraphQLEnumType)):
        return leaf_completer(type_)
    if isinstance(type_, GraphQLObjectType):
        field.leaf = False
        grouped, defers, _ = collect_subfields(
            executor.schema, executor.fragments, executor.variable_values, executor.operation, type_, details
        )
        if defers:
            raise NotCompiled("defer")
        return object_completer(type_, plan_fields(executor, type_, grouped, depth + 1), field)
    raise NotCompiled(f"abstract or unknown type {type_}")


def _is_leaf(type_: Any) -> bool:
    while isinstance(type_, (GraphQLNonNull, GraphQLList)):
        if isinstance(type_, GraphQLList):
            return False
        type_ = type_.of_type
    return isinstance(type_, (GraphQLScalarType, GraphQLEnumType))


class _UsesVariables(Visitor):
    found = False

    def enter_variable(self, *_: Any) -> None:
        self.found = True


def _uses_variables(node: FieldNode) -> bool:
    finder = _UsesVariables()
    for argument in node.arguments or ():
        visit(argument, finder)
    return finder.found


# --- the cache and the executor --------------------------------------------------------------------------------

CachedPlan = tuple[GraphQLSchema, OperationDefinitionNode, OperationPlan | None]
_plans: OrderedDict[tuple[int, int], CachedPlan] = OrderedDict()
stats = {"compiled": 0, "aborted": 0, "not_compiled": 0}  # counters, for tests and for curiosity


def plan_for(executor: "CompiledExecutor") -> OperationPlan | None:
    """The plan of the executor's operation, or None when it is not compiled (cached both ways)."""
    key = (id(executor.schema), id(executor.operation))
    cached = _plans.get(key)
    if cached is not None and cached[0] is executor.schema and cached[1] is executor.operation:
        _plans.move_to_end(key)
        return cached[2]
    try:
        plan: OperationPlan | None = build_plan(executor)
    except NotCompiled as reason:
        logger.debug("GraphQL operation not compiled: %s", reason)
        plan = None
    except Exception:  # planning must never break an operation: graphql-core runs it and reports
        logger.debug("GraphQL operation not compiled", exc_info=True)
        plan = None
    # The entry keeps the schema and operation alive, so their ids cannot be reused while it is cached.
    _plans[key] = (executor.schema, executor.operation, plan)
    if len(_plans) > PLAN_CACHE_SIZE:
        _plans.popitem(last=False)
    return plan


class CompiledExecutor(StrawberryGraphQLCoreExecutionContext):
    """graphql-core's executor (Strawberry's flavour) whose queries try the compiled plan first."""

    def execute_operation(self, serially: bool | None = None) -> Any:
        if (
            serially
            or self.operation.operation is not OperationType.QUERY
            or self.abort_signal is not None
            or self.hooks is not None
            or (self.middleware_manager is not None and self.middleware_manager.middlewares)
            or not self.error_propagation
        ):
            return super().execute_operation(serially)
        plan = plan_for(self)
        if plan is None:
            stats["not_compiled"] += 1
            return super().execute_operation(serially)
        return self._execute_compiled(plan, serially)

    async def _execute_compiled(self, plan: OperationPlan, serially: bool | None) -> Any:
        run = Run(self)
        try:
            data = execute_object(run, plan.fields, self.root_value, None)
            await drain(run)
        except Exception as error:
            close_pending(run)
            stats["aborted"] += 1
            logger.debug("compiled GraphQL execution aborted, executing normally: %r", error)
            result = super().execute_operation(serially)
            return await result if self.is_awaitable(result) else result
        stats["compiled"] += 1
        return self.finish(self.build_response(data))
