"""Request models of the Composio routes (runplane/rest_compat/integrations.py). Updates pass only the fields a
client sent (`model_dump(exclude_unset=True)`): the resolver tells "not sent" from null."""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import AliasChoices, Field

from runplane.resolvers import integrations as ops
from runplane.rest_compat.bodies import ASCII_DIGITS, Body, Query, text


class ProfileCreate(Body):
    toolkit_slug: str
    profile_name: str = text(ops.MAX_PROFILE_NAME, required=True)
    display_name: str | None = text(ops.MAX_DISPLAY_NAME)
    enabled_tools: list[str] | None = Field(None, max_length=ops.MAX_TOOLS)
    mcp_config: dict[str, Any] | None = None
    is_default: bool = False


class ProfileUpdate(Body):
    profile_name: str | None = text(ops.MAX_PROFILE_NAME)
    display_name: str | None = text(ops.MAX_DISPLAY_NAME)
    enabled_tools: list[str] | None = Field(None, max_length=ops.MAX_TOOLS)
    mcp_config: dict[str, Any] | None = None
    is_active: bool | None = None


class ToolsUpdate(Body):
    enabled_tools: list[str] = Field(max_length=ops.MAX_TOOLS)


class BulkDelete(Body):
    profile_ids: list[str] = Field(
        min_length=1, max_length=ops.MAX_BULK, json_schema_extra={"items": {"format": "uuid"}}
    )


class ActiveToggle(Body):
    is_active: bool | None = None


class ProfilesQuery(Query):
    toolkit_slug: str | None = None


class NameQuery(Query):
    # `profile_name`: the original's name for it.
    name: str = Field(max_length=ops.MAX_PROFILE_NAME, validation_alias=AliasChoices("name", "profile_name"))


class ToolkitQuery(Query):
    search: str | None = None
    category: str | None = None
    limit: Annotated[int, Field(ge=1, le=ops.CATALOG_SIZE), ASCII_DIGITS] = 500  # the original's page


class ToolsQuery(Query):
    toolkit_slug: str
    limit: Annotated[int, Field(ge=1, le=ops.MAX_TOOLS_PAGE), ASCII_DIGITS] = ops.TOOLS_PAGE
