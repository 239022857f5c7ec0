"""The registered GraphQL operations: a JSON file `{"version": 1, "operations": {sha256: document}}`.

`runplane register-operations` writes it (atomically) from a frontend's persisted-query manifests and .graphql
files; servers read it at start-up and again when it changes (checked at most every RELOAD_SECONDS). In a
deployment of several hosts the file ships with the release, like the frontend whose operations it lists.

An operation's canonical form is the operation printed by graphql-core (graphql-js's `print`, so whitespace,
commas and comments do not matter) followed by the fragments it uses, transitively, sorted by name: a client
may send the same operation with its fragments in any order, or in a document with other operations.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from graphql import (
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    GraphQLSchema,
    OperationDefinitionNode,
    Visitor,
    parse,
    print_ast,
    validate,
    visit,
)

log = logging.getLogger("runplane.operations_file")
RELOAD_SECONDS = 2.0
GRAPHQL_SUFFIXES = (".graphql", ".gql")


def _sha256(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


class _Spreads(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_fragment_spread(self, node: FragmentSpreadNode, *_: Any) -> None:
        self.names.add(node.name.value)


def _spread_names(node: Any) -> set[str]:
    spreads = _Spreads()
    visit(node, spreads)
    return spreads.names


def canonical_operation(document: DocumentNode, operation_name: str | None) -> str | None:
    """The canonical form of the operation a request with `operation_name` runs (None: no such operation)."""
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name is not None:
        operations = [d for d in operations if d.name is not None and d.name.value == operation_name]
    if len(operations) != 1:
        return None
    return _canonical(operations[0], document)


def _canonical(operation: OperationDefinitionNode, document: DocumentNode) -> str | None:
    fragments = {d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)}
    used: dict[str, FragmentDefinitionNode] = {}
    pending = _spread_names(operation)
    while pending:
        name = pending.pop()
        if name in used:
            continue
        if name not in fragments:
            return None
        used[name] = fragments[name]
        pending |= _spread_names(fragments[name]) - used.keys()
    parts = [print_ast(operation), *(print_ast(used[name]) for name in sorted(used))]
    return "\n\n".join(parts)


def canonical_operations(document: DocumentNode) -> list[str]:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    return [key for op in operations if (key := _canonical(op, document)) is not None]


class OperationsFile:
    """The registered operations of a server: by hash, and as canonical operations for full-text requests."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._documents: dict[str, str] = {}
        self._canonical: set[str] = set()
        self._stamp: tuple[int, int] | None = None
        self._checked = float("-inf")

    def document(self, sha256: str) -> str | None:
        self._refresh()
        return self._documents.get(sha256)

    def lists(self, canonical: str) -> bool:
        self._refresh()
        return canonical in self._canonical

    def _refresh(self) -> None:
        now = time.monotonic()
        if now - self._checked < RELOAD_SECONDS:
            return
        self._checked = now
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            self._documents, self._canonical, self._stamp = {}, set(), None
            return
        stamp = (stat.st_mtime_ns, stat.st_size)
        if stamp != self._stamp:
            self._load(stamp)

    def _load(self, stamp: tuple[int, int]) -> None:
        try:
            documents = read_operations(self.path)
            canonical = {key for text in documents.values() for key in canonical_operations(parse(text))}
        except (OSError, ValueError, GraphQLError) as exc:  # keep what was loaded; a broken file opens nothing
            log.error("cannot read %s: %s", self.path, exc)
            return
        self._documents, self._canonical, self._stamp = documents, canonical, stamp


def read_operations(path: Path) -> dict[str, str]:
    data = json.loads(path.read_text())
    operations = data.get("operations") if isinstance(data, dict) else None
    if not isinstance(operations, dict) or not all(isinstance(v, str) for v in operations.values()):
        raise ValueError(f'{path}: expected {{"version": 1, "operations": {{sha256: document}}}}')
    return {str(k).lower(): v for k, v in operations.items()}


def write_operations(path: Path, operations: dict[str, str]) -> None:
    """Atomically: a server reading the file sees the old or the new list, never half of it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(path.name + f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps({"version": 1, "operations": dict(sorted(operations.items()))}, indent=1))
    os.replace(temporary, path)


def collect_sources(paths: Iterable[Path]) -> dict[str, str]:
    """{sha256: document} from persisted-query manifests (JSON) and .graphql/.gql files, directories walked.

    Manifests: Apollo's (`{"format": "apollo-persisted-query-manifest", "operations": [{"id", "body"}]}`) or a
    plain `{sha256: document}` map (GraphQL Code Generator's persisted documents, Relay's). A .graphql file is
    one document, registered under the sha256 of its printed form (what Apollo's and urql's APQ send)."""
    found: dict[str, str] = {}
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            if file.suffix == ".json":
                found.update(_manifest(file))
            elif file.suffix in GRAPHQL_SUFFIXES:
                printed = print_ast(parse(file.read_text()))
                found[_sha256(printed)] = printed
    return found


def _manifest(file: Path) -> dict[str, str]:
    data = json.loads(file.read_text())
    if isinstance(data, dict) and isinstance(data.get("operations"), list):
        entries = {str(op.get("id")): op.get("body") for op in data["operations"] if isinstance(op, dict)}
    elif isinstance(data, dict):
        entries = data
    else:
        raise ValueError(f"{file}: not a persisted-query manifest")
    bodies = [body for body in entries.values() if isinstance(body, str)]
    if len(bodies) != len(entries):
        raise ValueError(f"{file}: every operation needs its document as a string")
    # Keyed by the sha256 of the document as shipped (what APQ sends), whatever id the manifest chose (sha1...).
    return {_sha256(body): body for body in bodies}


def schema_errors(schema: GraphQLSchema, operations: dict[str, str]) -> list[str]:
    """The operations that would not run against `schema`, one message each (register only valid ones)."""
    errors: list[str] = []
    for sha256, document in operations.items():
        try:
            problems: list[GraphQLError] = validate(schema, parse(document))
        except GraphQLError as exc:
            problems = [exc]
        errors.extend(f"{sha256[:12]}: {problem.message}" for problem in problems)
    return errors
