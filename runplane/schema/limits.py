"""Cheap limits on GraphQL documents and variables, checked before graphql-core's validation.

graphql-core validates with every rule in one pass over the document, and some rules are costly on
hostile documents: OverlappingFieldsCanBeMerged compares every pair of fields sharing a response key
(`{ me { id id id ... } }` is quadratic), and Strawberry's depth and alias limiters expand every fragment
spread afresh (ten fragments each spreading the previous one ten times take seconds). One walk here,
each fragment summed up once, refuses such documents first; only documents within every limit reach the
full validation, whose answers are cached. Refusals carry the same `extensions.code` as graphql-core's.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from graphql import (
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
)
from strawberry.extensions import ValidationCache

from runplane.config import Settings

VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
PARSE_FAILED = "GRAPHQL_PARSE_FAILED"


@dataclass(frozen=True)
class Limits:
    max_document_chars: int
    max_operations: int
    max_depth: int
    max_aliases: int
    max_directives: int
    max_selections: int
    max_field_duplicates: int
    max_variable_values: int

    @classmethod
    def from_settings(cls, settings: Settings) -> "Limits":
        return cls(
            max_document_chars=settings.graphql_max_document_chars,
            max_operations=settings.graphql_max_operations,
            max_depth=settings.graphql_max_depth,
            max_aliases=settings.graphql_max_aliases,
            max_directives=settings.graphql_max_directives,
            max_selections=settings.graphql_max_selections,
            max_field_duplicates=settings.graphql_max_field_duplicates,
            max_variable_values=settings.graphql_max_variable_values,
        )


class Refused(Exception):
    def __init__(self, message: str, node: Node | None = None, code: str = VALIDATION_FAILED) -> None:
        super().__init__(message)
        self.error = GraphQLError(message, nodes=[node] if node is not None else None, extensions={"code": code})


@dataclass
class Shape:
    """A selection set with its fragments expanded: what the limits need to know of it."""

    fields: int = 0  # fields, counting a fragment's once per selection set that spreads it
    depth: int = -1  # of its deepest field below its own fields (which are at 0); -1 when it has none
    aliases: int = 0


class DocumentWalk:
    """One walk over the operations; each fragment is summed up once, the first time it is spread.

    The walk stops at the first limit crossed, so its cost is bounded by the limits, not by the document:
    fields deeper than max_depth or more than max_selections are never visited.
    """

    def __init__(self, document: DocumentNode, limits: Limits) -> None:
        self.limits = limits
        self.operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        self.definitions = [d for d in document.definitions if isinstance(d, FragmentDefinitionNode)]
        self.fragments = {d.name.value: d for d in self.definitions}
        self.shapes: dict[str, Shape] = {}
        self.spreading: list[str] = []  # fragments being summed up, outermost first (cycle detection)
        self.directives = 0
        self.operation = "anonymous"

    def check(self) -> None:
        if len(self.operations) > self.limits.max_operations:
            raise Refused(f"The document has {len(self.operations)} operations. Allowed: {self.limits.max_operations}")
        for operation in self.operations:
            self.operation = operation.name.value if operation.name else "anonymous"
            self.count_directives(operation.directives)
            for variable in operation.variable_definitions or ():
                self.count_directives(variable.directives)
            shape = self.selection_set(operation.selection_set, 0)
            if shape.aliases > self.limits.max_aliases:
                raise Refused(f"{shape.aliases} aliases found. Allowed: {self.limits.max_aliases}", operation)
        # Every selection set graphql-core will visit must have been walked here: no fragment left aside.
        if unused := [name for name in self.fragments if name not in self.shapes]:
            raise Refused(f"Fragment '{unused[0]}' is never used.", self.fragments[unused[0]])
        if len(self.fragments) < len(self.definitions):
            twice = next(d for d in self.definitions if self.fragments[d.name.value] is not d)
            raise Refused(f"There can be only one fragment named '{twice.name.value}'.", twice)
        for operation in self.operations:
            self.operation = operation.name.value if operation.name else "anonymous"
            self.check_duplicates([operation.selection_set])

    def count_directives(self, directives: Sequence[DirectiveNode] | None) -> None:
        if directives:
            self.directives += len(directives)
            if self.directives > self.limits.max_directives:
                raise Refused(f"The document has more than {self.limits.max_directives} directives.", directives[-1])

    def selection_set(
        self, selection_set: SelectionSetNode | None, depth: int | None, spreads: Counter[str] | None = None
    ) -> Shape:
        """The shape of a selection set whose fields sit at `depth` (None: under introspection, not counted)."""
        shape, spreads = Shape(), Counter() if spreads is None else spreads
        for selection in selection_set.selections if selection_set else ():
            self.count_directives(selection.directives)
            if isinstance(selection, FieldNode):
                self.field(selection, depth, shape)
            elif isinstance(selection, InlineFragmentNode):
                merge(shape, self.selection_set(selection.selection_set, depth, spreads))
            elif isinstance(selection, FragmentSpreadNode):
                self.spread(selection, depth, shape, spreads)
            if shape.fields > self.limits.max_selections:
                raise Refused(
                    f"'{self.operation}' selects more than {self.limits.max_selections} fields (fragments expanded).",
                    selection,
                )
        return shape

    def field(self, field: FieldNode, depth: int | None, shape: Shape) -> None:
        if depth is not None and depth > self.limits.max_depth:
            raise Refused(f"'{self.operation}' exceeds maximum operation depth of {self.limits.max_depth}", field)
        shape.fields += 1
        shape.aliases += field.alias is not None
        shape.depth = max(shape.depth, 0)
        if field.selection_set is None:
            return
        # Introspection is bounded by graphql-core's MaxIntrospectionDepthRule, and Strawberry's depth limit
        # ignores it: GraphiQL's introspection query nests ofType deeper than our limit.
        introspection = field.name.value.startswith("__")
        below = self.selection_set(field.selection_set, None if depth is None or introspection else depth + 1)
        shape.fields += below.fields
        shape.aliases += below.aliases
        if not introspection:
            shape.depth = max(shape.depth, below.depth + 1)

    def spread(self, spread: FragmentSpreadNode, depth: int | None, shape: Shape, spreads: Counter[str]) -> None:
        """A fragment spread again in one selection set adds no field (execution collects it once), but
        graphql-core's validation still visits every copy: copies count like duplicated fields."""
        name = spread.name.value
        spreads[name] += 1
        if spreads[name] > self.limits.max_field_duplicates:
            raise Refused(
                f"Fragment '{name}' is spread more than {self.limits.max_field_duplicates} times in one selection set.",
                spread,
            )
        if spreads[name] == 1:
            merge(shape, self.fragment(spread, depth))

    def fragment(self, spread: FragmentSpreadNode, depth: int | None) -> Shape:
        name = spread.name.value
        if name in self.spreading:
            via = self.spreading[self.spreading.index(name) + 1 :]
            raise Refused(
                f"Cannot spread fragment '{name}' within itself"
                + (" via " + ", ".join(f"'{v}'" for v in via) if via else "")
                + ".",
                spread,
            )
        definition = self.fragments.get(name)
        if definition is None:  # graphql-core's KnownFragmentNamesRule reports it
            return Shape()
        if name not in self.shapes:
            self.spreading.append(name)
            self.count_directives(definition.directives)
            self.shapes[name] = self.selection_set(definition.selection_set, depth)
            self.spreading.pop()
        shape = self.shapes[name]
        if depth is not None and depth + shape.depth > self.limits.max_depth:
            raise Refused(f"'{self.operation}' exceeds maximum operation depth of {self.limits.max_depth}", spread)
        return shape

    def check_duplicates(self, selection_sets: list[SelectionSetNode]) -> None:
        """Fields sharing a response key are merged (their sub-selections too) as execution merges them:
        none may appear more than max_field_duplicates times. Runs after the selection limit passed, so it
        visits at most max_selections fields."""
        counts: Counter[str] = Counter()
        merged: dict[str, list[SelectionSetNode]] = {}
        for field in self.collect(selection_sets, set()):
            key = field.alias.value if field.alias else field.name.value
            counts[key] += 1
            if counts[key] > self.limits.max_field_duplicates:
                raise Refused(
                    f"Field '{key}' is selected more than {self.limits.max_field_duplicates} times"
                    " in one selection set.",
                    field,
                )
            if field.selection_set:
                merged.setdefault(key, []).append(field.selection_set)
        for sets in merged.values():
            self.check_duplicates(sets)

    def collect(self, selection_sets: list[SelectionSetNode], spread: set[str]) -> Iterator[FieldNode]:
        for selection_set in selection_sets:
            for selection in selection_set.selections:
                if isinstance(selection, FieldNode):
                    yield selection
                elif isinstance(selection, InlineFragmentNode):
                    yield from self.collect([selection.selection_set], spread)
                elif isinstance(selection, FragmentSpreadNode) and selection.name.value not in spread:
                    spread.add(selection.name.value)
                    if definition := self.fragments.get(selection.name.value):
                        yield from self.collect([definition.selection_set], spread)


def merge(into: Shape, other: Shape) -> None:
    into.fields += other.fields
    into.aliases += other.aliases
    into.depth = max(into.depth, other.depth)


def document_errors(document: DocumentNode, limits: Limits) -> list[GraphQLError]:
    try:
        DocumentWalk(document, limits).check()
    except Refused as refused:
        return [refused.error]
    except RecursionError:  # fragments nested deeper than the interpreter's stack: no legitimate document does that
        return [GraphQLError("The document nests fragments too deeply.", extensions={"code": VALIDATION_FAILED})]
    return []


def variable_errors(variables: dict[str, Any] | None, limits: Limits) -> list[GraphQLError]:
    """Lists and objects in variables count one value per item: a 200 000-item list is refused before
    graphql-core coerces it item by item (and before a resolver sees it). Iterative: nesting costs no stack."""
    budget = limits.max_variable_values
    for name, value in (variables or {}).items():
        pending = [value]
        while pending:
            item = pending.pop()
            if isinstance(item, (list, dict)):
                budget -= len(item)
                if budget < 0:
                    message = (
                        f"Variable '${name}' takes the variables over {limits.max_variable_values} values"
                        " (list items and object fields)."
                    )
                    return [GraphQLError(message, extensions={"code": VALIDATION_FAILED})]
                pending.extend(item.values() if isinstance(item, dict) else item)
    return []


class LimitedValidation(ValidationCache):
    """The cheap limits, then graphql-core's validation (cached) for documents within them.

    Listed before ParserCache: a document over max_document_chars is refused before it is lexed.
    """

    def __init__(self, limits: Limits, maxsize: int = 512) -> None:
        super().__init__(maxsize=maxsize)
        self.limits = limits

    def on_parse(self) -> Iterator[None]:
        query = self.execution_context.query
        if query is not None and len(query) > self.limits.max_document_chars:
            message = f"The document is {len(query)} characters long. Allowed: {self.limits.max_document_chars}"
            raise Refused(message, code=PARSE_FAILED).error
        yield

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        assert context.graphql_document is not None
        errors = document_errors(context.graphql_document, self.limits) or variable_errors(
            context.variables, self.limits
        )
        context.pre_execution_errors = errors or self.cached_validate_document(
            context.schema._schema, context.graphql_document, context.validation_rules
        )
        yield
