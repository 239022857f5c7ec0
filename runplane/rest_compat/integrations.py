"""Composio integrations and secure MCP endpoints, as Cheatcode's API documents them (README "REST compatibility
API")."""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from runplane.clock import iso
from runplane.models import IntegrationProfile
from runplane.resolvers import integrations as ops
from runplane.resolvers.context import RequestContext
from runplane.rest_compat.bodies import parse_body, parse_query
from runplane.rest_compat.common import ok
from runplane.rest_compat.integration_requests import (
    ActiveToggle,
    BulkDelete,
    NameQuery,
    ProfileCreate,
    ProfilesQuery,
    ProfileUpdate,
    ToolkitQuery,
    ToolsQuery,
    ToolsUpdate,
)
from runplane.rest_compat.registry import api
from runplane.rest_compat.schemas import (
    BOOL,
    NULLABLE_STR,
    STR,
    STR_LIST,
    TIME,
    UUID,
    obj,
)

TAG, SECURE = "composio", "composio-secure"
PROFILE = obj(
    ["profile_id", "profile_name", "toolkit_slug"],
    profile_id=UUID,
    profile_name=STR,
    display_name=STR,
    toolkit_slug=STR,
    toolkit_name=STR,
    mcp_url=NULLABLE_STR,
    redirect_url=NULLABLE_STR,
    connected_account_id=NULLABLE_STR,
    enabled_tools=STR_LIST,
    mcp_config={"type": "object"},
    is_default=BOOL,
    is_dashboard_default=BOOL,
    is_active=BOOL,
    created_at=TIME,
    updated_at=TIME,
)
PROFILE_LIST = obj(["profiles"], profiles={"type": "array", "items": PROFILE})
UPSTREAM = (502, 503)  # Composio answered badly or is unreachable; it is not configured


def profile_json(ctx: RequestContext, row: IntegrationProfile) -> dict[str, Any]:
    return {
        "profile_id": str(row.id),
        "profile_name": row.profile_name,
        "display_name": row.display_name,
        "toolkit_slug": row.toolkit_slug,
        "toolkit_name": row.toolkit_name,
        "mcp_url": ops.mcp_url(ctx, row),
        "redirect_url": row.redirect_url,
        "connected_account_id": row.connected_account_id,
        "enabled_tools": list(row.enabled_tools or []),
        "mcp_config": dict(row.config or {}),
        "is_default": row.is_default,
        "is_dashboard_default": row.is_dashboard_default,
        "is_active": row.is_active,
        # The original's names for the same facts (frontend/src/types/composio-profiles.ts ComposioProfile).
        "user_id": str(row.owner_id),
        "is_default_for_dashboard": row.is_dashboard_default,
        "is_connected": row.is_active,  # the original mirrored is_active: Composio holds the connection state
        "mcp_qualified_name": f"composio.{row.toolkit_slug}",
        "created_at": iso(row.created_at),
        "updated_at": iso(row.updated_at),
    }


def _pid(request: Request) -> str:
    return str(request.path_params["profile_id"])


# -- catalog ------------------------------------------------------------------------------------
@api.add(
    "GET",
    "/composio/health",
    "Composio health: configured and reachable (503 when not configured)",
    tag=TAG,
    errors=UPSTREAM,
)
async def health(request: Request, ctx: RequestContext) -> Response:
    return ok(await ops.health(ctx))


@api.add("GET", "/composio/categories", "Toolkit categories of the Composio catalog", tag=TAG, errors=UPSTREAM)
async def categories(request: Request, ctx: RequestContext) -> Response:
    return ok({"success": True, "categories": await ops.categories(ctx)})


@api.add(
    "GET",
    "/composio/toolkits",
    "Toolkits of the Composio catalog (?search=, ?category=)",
    tag=TAG,
    query=[ToolkitQuery],
    errors=UPSTREAM,
)
async def toolkits(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, ToolkitQuery)
    items = await ops.toolkits(ctx, search=query.search, category=query.category)
    return ok({"success": True, "toolkits": items[: query.limit], "total": len(items)})


@api.add("GET", "/composio/toolkits/{slug}/icon", "A toolkit's icon URL", tag=TAG, errors=UPSTREAM)
async def toolkit_icon(request: Request, ctx: RequestContext) -> Response:
    slug = request.path_params["slug"]
    return ok({"success": True, "toolkit_slug": slug, "icon_url": await ops.toolkit_icon(ctx, slug=slug)})


@api.add("GET", "/composio/toolkits/{slug}/details", "A toolkit's details", tag=TAG, errors=UPSTREAM)
async def toolkit_details(request: Request, ctx: RequestContext) -> Response:
    return ok({"success": True, "toolkit": await ops.toolkit_details(ctx, slug=request.path_params["slug"])})


@api.add(
    "GET",
    "/composio/tools/list",
    "The tools of a toolkit (?toolkit_slug=)",
    tag=TAG,
    query=[ToolsQuery],
    errors=UPSTREAM,
)
async def tools_list(request: Request, ctx: RequestContext) -> Response:
    query = parse_query(request, ToolsQuery)
    items = await ops.tools(ctx, toolkit_slug=query.toolkit_slug, limit=query.limit)
    return ok({"success": True, "tools": items, "total": len(items)})


# -- profiles -----------------------------------------------------------------------------------
@api.add(
    "GET",
    "/composio/profiles",
    "The caller's integration profiles (?toolkit_slug=)",
    tag=TAG,
    response=PROFILE_LIST,
    query=[ProfilesQuery],
)
async def list_profiles(request: Request, ctx: RequestContext) -> Response:
    rows = await ops.list_profiles(ctx, toolkit_slug=parse_query(request, ProfilesQuery).toolkit_slug)
    return ok({"success": True, "profiles": [profile_json(ctx, r) for r in rows], "count": len(rows)})


@api.add(
    "GET",
    "/composio/profiles/check-name-availability",
    "Whether a profile name is still free (?name=)",
    tag=TAG,
    query=[NameQuery],
)
async def check_name(request: Request, ctx: RequestContext) -> Response:
    name = parse_query(request, NameQuery).name
    return ok({"available": await ops.name_available(ctx, name=name), "name": name.strip()})


@api.add("GET", "/composio/profiles/{profile_id}", "One of the caller's profiles", tag=TAG, response=PROFILE)
async def get_profile(request: Request, ctx: RequestContext) -> Response:
    return ok(profile_json(ctx, await ops.owned_profile(ctx, _pid(request))))


@api.add(
    "POST",
    "/composio/profiles",
    "Create a profile: connects the toolkit and opens its MCP server",
    tag=TAG,
    body=ProfileCreate,
    response=PROFILE,
    status=201,
    errors=(409, *UPSTREAM),
)
async def create_profile(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, ProfileCreate)
    row = await ops.create_profile(ctx, data=body.model_dump(exclude_unset=True))
    return ok(profile_json(ctx, row), status=201)


@api.add(
    "PUT",
    "/composio/profiles/{profile_id}",
    "Update a profile",
    tag=TAG,
    body=ProfileUpdate,
    response=PROFILE,
    errors=(409,),
)
async def update_profile(request: Request, ctx: RequestContext) -> Response:
    changes = (await parse_body(request, ProfileUpdate)).model_dump(exclude_unset=True)
    return ok(profile_json(ctx, await ops.update_profile(ctx, profile_id=_pid(request), data=changes)))


@api.add("DELETE", "/composio/profiles/{profile_id}", "Delete a profile", tag=TAG)
async def delete_profile(request: Request, ctx: RequestContext) -> Response:
    return ok({"success": True, "deleted_id": str(await ops.delete_profile(ctx, profile_id=_pid(request)))})


@api.add("GET", "/composio/profiles/{profile_id}/mcp-config", "A profile's MCP client configuration", tag=TAG)
async def mcp_config(request: Request, ctx: RequestContext) -> Response:
    row = await ops.owned_profile(ctx, _pid(request))
    return ok({"success": True, "profile_id": str(row.id), "mcp_config": ops.mcp_config(ctx, row)})


@api.add(
    "POST",
    "/composio/discover-tools/{profile_id}",
    "The tools available to a profile's toolkit",
    tag=TAG,
    errors=UPSTREAM,
)
async def discover_tools(request: Request, ctx: RequestContext) -> Response:
    row, items = await ops.discover_tools(ctx, profile_id=_pid(request))
    return ok(
        {
            "success": True,
            "profile_id": str(row.id),
            "tools": items,
            "enabled_tools": list(row.enabled_tools or []),
            "total_tools": len(items),
        }
    )


@api.add(
    "PUT",
    "/composio/profiles/{profile_id}/tools",
    "Set a profile's enabled tools",
    tag=TAG,
    body=ToolsUpdate,
    response=PROFILE,
)
async def update_tools(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, ToolsUpdate)
    return ok(profile_json(ctx, await ops.set_tools(ctx, profile_id=_pid(request), enabled_tools=body.enabled_tools)))


# -- connections --------------------------------------------------------------------------------
@api.add(
    "GET",
    "/composio/connections/status/{connection_id}",
    "One of the caller's connected accounts",
    tag=TAG,
    errors=UPSTREAM,
)
async def connection_status(request: Request, ctx: RequestContext) -> Response:
    data = await ops.connection(ctx, connection_id=request.path_params["connection_id"])
    return ok({"success": True, "connection_id": data.get("id"), "status": data.get("status"), "connection": data})


@api.add("GET", "/composio/connections", "The caller's connected accounts", tag=TAG, errors=UPSTREAM)
async def list_connections(request: Request, ctx: RequestContext) -> Response:
    return ok({"success": True, "connections": await ops.connections(ctx)})


@api.add(
    "DELETE",
    "/composio/connections/{connection_id}",
    "Delete one of the caller's connected accounts",
    tag=TAG,
    errors=UPSTREAM,
)
async def delete_connection(request: Request, ctx: RequestContext) -> Response:
    return ok(
        {
            "success": True,
            "deleted_id": await ops.delete_connection(ctx, connection_id=request.path_params["connection_id"]),
        }
    )


# -- secure MCP ---------------------------------------------------------------------------------
def _grouped(ctx: RequestContext, rows: list[IntegrationProfile]) -> list[dict[str, Any]]:
    groups: dict[str, dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(
            row.toolkit_slug, {"toolkit_slug": row.toolkit_slug, "toolkit_name": row.toolkit_name, "profiles": []}
        )
        group["profiles"].append(profile_json(ctx, row))
    return [{**group, "profile_count": len(group["profiles"])} for group in groups.values()]


@api.add("GET", "/composio-secure/composio-profiles", "The caller's profiles grouped by toolkit", tag=SECURE)
async def secure_profiles(request: Request, ctx: RequestContext) -> Response:
    rows = await ops.list_profiles(ctx)
    return ok({"success": True, "toolkits": _grouped(ctx, rows), "total_profiles": len(rows)})


@api.add("GET", "/composio-secure/composio-profiles/{profile_id}/mcp-url", "A profile's MCP URL", tag=SECURE)
async def secure_mcp_url(request: Request, ctx: RequestContext) -> Response:
    row = await ops.owned_profile(ctx, _pid(request))
    return ok(
        {
            "success": True,
            "profile_id": str(row.id),
            "profile_name": row.profile_name,
            "toolkit_slug": row.toolkit_slug,
            "mcp_url": ops.mcp_url(ctx, row),
        }
    )


@api.add("DELETE", "/composio-secure/credential-profiles/{profile_id}", "Delete a credential profile", tag=SECURE)
async def secure_delete(request: Request, ctx: RequestContext) -> Response:
    return ok({"success": True, "deleted_id": str(await ops.delete_profile(ctx, profile_id=_pid(request)))})


@api.add(
    "POST",
    "/composio-secure/credential-profiles/bulk-delete",
    "Delete several credential profiles",
    tag=SECURE,
    body=BulkDelete,
)
async def secure_bulk_delete(request: Request, ctx: RequestContext) -> Response:
    deleted, missing = await ops.bulk_delete(ctx, profile_ids=(await parse_body(request, BulkDelete)).profile_ids)
    return ok({"success": True, "deleted_count": len(deleted), "deleted_ids": deleted, "not_found_ids": missing})


@api.add(
    "PUT",
    "/composio-secure/credential-profiles/{profile_id}/set-default",
    "Make a profile its toolkit's default",
    tag=SECURE,
    response=PROFILE,
)
async def secure_set_default(request: Request, ctx: RequestContext) -> Response:
    return ok(profile_json(ctx, await ops.set_flag(ctx, profile_id=_pid(request), flag="is_default")))


@api.add(
    "PUT",
    "/composio-secure/credential-profiles/{profile_id}/set-dashboard-default",
    "Make a profile its toolkit's dashboard default",
    tag=SECURE,
    response=PROFILE,
)
async def secure_set_dashboard_default(request: Request, ctx: RequestContext) -> Response:
    return ok(profile_json(ctx, await ops.set_flag(ctx, profile_id=_pid(request), flag="is_dashboard_default")))


@api.add(
    "PUT",
    "/composio-secure/credential-profiles/{profile_id}/toggle-active",
    "Flip (or set, with is_active) a profile's active state",
    tag=SECURE,
    body=ActiveToggle,
    response=PROFILE,
)
async def secure_toggle_active(request: Request, ctx: RequestContext) -> Response:
    body = await parse_body(request, ActiveToggle, required=False)
    return ok(profile_json(ctx, await ops.toggle_active(ctx, profile_id=_pid(request), is_active=body.is_active)))


@api.add("GET", "/composio-secure/dashboard-profiles", "Active profiles, dashboard defaults first", tag=SECURE)
async def secure_dashboard_profiles(request: Request, ctx: RequestContext) -> Response:
    rows = await ops.dashboard_profiles(ctx)
    return ok({"success": True, "profiles": [profile_json(ctx, r) for r in rows], "count": len(rows)})


@api.add("GET", "/composio-secure/dashboard-mcp-urls", "One MCP URL per toolkit for the dashboard", tag=SECURE)
async def secure_dashboard_urls(request: Request, ctx: RequestContext) -> Response:
    rows = await ops.dashboard_mcp_urls(ctx)
    urls = [
        {
            "profile_id": str(r.id),
            "profile_name": r.profile_name,
            "toolkit_slug": r.toolkit_slug,
            "mcp_url": ops.mcp_url(ctx, r),
            "enabled_tools": list(r.enabled_tools or []),
        }
        for r in rows
    ]
    # `mcp_configs` is the original's name for the list (hooks/react-query/composio/utils.ts getDashboardMCPUrls).
    return ok({"success": True, "mcp_urls": urls, "mcp_configs": urls, "count": len(urls)})
