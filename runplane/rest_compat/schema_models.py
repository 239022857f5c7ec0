"""JSON Schema of request models for the OpenAPI document (runplane/rest_compat/registry.py, bodies.py)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel


def body_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema: dict[str, Any] = _untitled(model.model_json_schema())
    return schema


def query_parameters(model: type[BaseModel]) -> list[dict[str, Any]]:
    schema = body_schema(model)
    required = set(schema.get("required", []))
    parameters = []
    for name, prop in schema["properties"].items():
        description = prop.pop("description", None)
        prop.pop("default", None)
        parameter = {"name": name, "in": "query", "schema": _not_null(prop)}
        if description:
            parameter["description"] = description
        if name in required:
            parameter["required"] = True
        parameters.append(parameter)
    return parameters


def _not_null(schema: dict[str, Any]) -> dict[str, Any]:
    """A query parameter is absent or text: `X | None` is documented as X."""
    options = [option for option in schema.get("anyOf", []) if option.get("type") != "null"]
    if len(options) != 1:
        return schema
    return {**{k: v for k, v in schema.items() if k != "anyOf"}, **options[0]}


def _untitled(schema: Any, *, names: bool = False) -> Any:
    """pydantic titles every model and field; the document names them by path already. (`names`: the keys of a
    `properties` object are field names, one of which may well be "title".)"""
    if isinstance(schema, dict):
        return {
            key: _untitled(value, names=key == "properties" and not names)
            for key, value in schema.items()
            if names or not (key == "title" and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [_untitled(item) for item in schema]
    return schema
