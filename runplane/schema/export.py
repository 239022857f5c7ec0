"""What `runplane export-schema` writes: the SDL (schema.graphql) and, beside it, possibleTypes.json, the
map from each union and interface to its object types that Apollo Client's InMemoryCache needs
(`new InMemoryCache({ possibleTypes })`) to match fragments on abstract types."""

from __future__ import annotations

import json
from pathlib import Path

import strawberry
from graphql import GraphQLInterfaceType, GraphQLUnionType

POSSIBLE_TYPES_FILE = "possibleTypes.json"


def sdl(schema: strawberry.Schema) -> str:
    return schema.as_str() + "\n"


def possible_types(schema: strawberry.Schema) -> dict[str, list[str]]:
    graphql = schema._schema
    found: dict[str, list[str]] = {}
    for name, type_ in sorted(graphql.type_map.items()):
        if isinstance(type_, (GraphQLUnionType, GraphQLInterfaceType)) and not name.startswith("__"):
            found[name] = sorted(member.name for member in graphql.get_possible_types(type_))
    return found


def possible_types_json(schema: strawberry.Schema) -> str:
    return json.dumps(possible_types(schema), indent=2) + "\n"


def write_exports(schema: strawberry.Schema, path: Path) -> list[Path]:
    """The SDL at `path` and possibleTypes.json in the same directory; the paths written."""
    beside = path.with_name(POSSIBLE_TYPES_FILE)
    path.write_text(sdl(schema))
    beside.write_text(possible_types_json(schema))
    return [path, beside]
