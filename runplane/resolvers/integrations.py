"""Composio integrations: the toolkit catalog (from the Composio API, cached with a TTL) and users'
integration profiles (toolkit, connected account, enabled tools, MCP server URL), stored per user.

Composio's user id for a runplane user is the user's id. Another user's profile or connection is NotFound."""

from __future__ import annotations

import asyncio
import re
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx
from cachetools import TTLCache
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from runplane.auth.abilities import PROJECTS_READ, PROJECTS_WRITE
from runplane.errors import (
    Conflict,
    DomainError,
    ErrorCode,
    InvalidInput,
    NotFound,
    ServiceUnavailable,
)
from runplane.models import IntegrationProfile
from runplane.resolvers.context import RequestContext
from runplane.resolvers.mcp_urls import open_mcp_url, seal_mcp_url
from runplane.resolvers.validation import RawId, clean_text, parse_uuid
from runplane.services import Services

MAX_PROFILE_NAME, MAX_DISPLAY_NAME = 100, 200

SLUG = re.compile(r"^[a-z0-9][a-z0-9_-]{0,99}$")
TOOL_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,200}$")
CONNECTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,200}$")
MAX_TOOLS, MAX_BULK, MAX_CONFIG_BYTES = 500, 100, 16 * 1024
CATALOG_SIZE = 1000  # toolkits asked of Composio at once: its whole catalog
TOOLS_PAGE, MAX_TOOLS_PAGE = 100, 500  # a toolkit's tools asked of Composio, by default and at most
NOT_CONFIGURED = "Composio is not configured (RUNPLANE_COMPOSIO_BASE_URL and RUNPLANE_COMPOSIO_API_KEY)"


class ComposioError(DomainError):
    code = ErrorCode.COMPOSIO_ERROR
    status = 502


CACHE_ENTRIES = 1024


# -- the Composio API ---------------------------------------------------------------------------
class ComposioClient:
    """v3 REST API with an x-api-key; GETs are cached for `ttl` seconds (the catalog changes rarely), at most
    CACHE_ENTRIES of them: the keys hold user-chosen slugs and limits, so the least recently used make room."""

    def __init__(self, base_url: str, api_key: str, ttl: float, *, max_entries: int = CACHE_ENTRIES) -> None:
        self.ttl = ttl
        self._cache: TTLCache[str, Any] = TTLCache(maxsize=max_entries, ttl=ttl)
        self.http = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers={"x-api-key": api_key},
            timeout=httpx.Timeout(30, connect=10),
            trust_env=False,
        )

    async def request(self, method: str, path: str, *, params: dict[str, Any] | None = None, json: Any = None) -> Any:
        try:
            response = await self.http.request(method, path, params=params, json=json)
        except httpx.HTTPError as exc:
            raise ComposioError(f"Composio is unreachable: {type(exc).__name__}") from None
        if response.status_code == 404:
            raise NotFound("Not found at Composio")
        if response.status_code >= 400:
            raise ComposioError(f"Composio answered {response.status_code}")
        try:
            return response.json() if response.content else {}
        except ValueError:
            raise ComposioError("Composio answered with something other than JSON") from None

    async def cached(self, path: str, params: dict[str, Any] | None = None) -> Any:
        key = path + "?" + "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
        if key in self._cache:
            return self._cache[key]
        data = await self.request("GET", path, params=params)
        self._cache[key] = data
        return data

    async def aclose(self) -> None:
        await self.http.aclose()


def composio(ctx: RequestContext) -> ComposioClient:
    settings = ctx.settings
    if not settings.composio_base_url or not settings.composio_api_key:
        raise ServiceUnavailable(NOT_CONFIGURED)
    client = ctx.services.extras.get("composio")
    if client is None:
        client = ctx.services.extras["composio"] = ComposioClient(
            settings.composio_base_url, settings.composio_api_key, settings.composio_cache_seconds
        )
    return client


def _items(data: Any) -> list[dict[str, Any]]:
    items = data.get("items") if isinstance(data, dict) else data
    return [i for i in items if isinstance(i, dict)] if isinstance(items, list) else []


def clean_slug(value: object, field: str = "toolkit_slug") -> str:
    if not isinstance(value, str) or not SLUG.match(value.strip().lower()):
        raise InvalidInput(f"{field} must be a toolkit slug (lowercase letters, digits, '_' or '-')", field=field)
    return value.strip().lower()


# -- catalog ------------------------------------------------------------------------------------
async def health(ctx: RequestContext) -> dict[str, Any]:
    ctx.require(PROJECTS_READ)
    started = time.monotonic()
    await composio(ctx).cached("/api/v3/toolkits", {"limit": CATALOG_SIZE})
    return {"status": "healthy", "configured": True, "latency_ms": round((time.monotonic() - started) * 1000, 1)}


async def toolkits(
    ctx: RequestContext, *, search: str | None = None, category: str | None = None
) -> list[dict[str, Any]]:
    ctx.require(PROJECTS_READ)
    items = _items(await composio(ctx).cached("/api/v3/toolkits", {"limit": CATALOG_SIZE}))
    if search:
        needle = search.lower()[:100]
        items = [
            t
            for t in items
            if needle in str(t.get("name", "")).lower()
            or needle in str(t.get("slug", "")).lower()
            or needle in str((t.get("meta") or {}).get("description", "")).lower()
        ]
    if category:
        items = [t for t in items if category.lower() in {c["id"] for c in _categories_of(t)}]
    return items


def _categories_of(toolkit: dict[str, Any]) -> list[dict[str, str]]:
    raw = (toolkit.get("meta") or {}).get("categories") or []
    return [
        {"id": str(c.get("id") or c.get("slug") or c.get("name")).lower(), "name": str(c.get("name") or c.get("id"))}
        for c in raw
        if isinstance(c, dict)
    ]


async def categories(ctx: RequestContext) -> list[dict[str, Any]]:
    counts: dict[str, dict[str, Any]] = {}
    for toolkit in await toolkits(ctx):
        for cat in _categories_of(toolkit):
            counts.setdefault(cat["id"], {**cat, "toolkit_count": 0})["toolkit_count"] += 1
    return sorted(counts.values(), key=lambda c: c["name"].lower())


async def toolkit_details(ctx: RequestContext, *, slug: str) -> dict[str, Any]:
    ctx.require(PROJECTS_READ)
    data = await composio(ctx).cached(f"/api/v3/toolkits/{clean_slug(slug, 'slug')}")
    if not isinstance(data, dict):
        raise ComposioError("Composio answered with an unexpected toolkit")
    return data


async def toolkit_icon(ctx: RequestContext, *, slug: str) -> str | None:
    details = await toolkit_details(ctx, slug=slug)
    logo = (details.get("meta") or {}).get("logo")
    return logo if isinstance(logo, str) else None


async def tools(ctx: RequestContext, *, toolkit_slug: str, limit: int = TOOLS_PAGE) -> list[dict[str, Any]]:
    ctx.require(PROJECTS_READ)
    slug = clean_slug(toolkit_slug)
    return _items(await composio(ctx).cached("/api/v3/tools", {"toolkit_slug": slug, "limit": limit}))


# -- connections --------------------------------------------------------------------------------
async def connections(ctx: RequestContext) -> list[dict[str, Any]]:
    user_id = ctx.require(PROJECTS_READ)
    return _items(await composio(ctx).request("GET", "/api/v3/connected_accounts", params={"user_ids": str(user_id)}))


async def connection(ctx: RequestContext, *, connection_id: RawId) -> dict[str, Any]:
    """The caller's connected account; one of another user is NotFound."""
    user_id = ctx.require(PROJECTS_READ)
    if not isinstance(connection_id, str) or not CONNECTION_ID.match(connection_id):
        raise NotFound("Connection not found")
    data = await composio(ctx).request("GET", f"/api/v3/connected_accounts/{connection_id}")
    if not isinstance(data, dict) or str(data.get("user_id")) != str(user_id):
        raise NotFound("Connection not found")
    return data


async def delete_connection(ctx: RequestContext, *, connection_id: RawId) -> str:
    ctx.require(PROJECTS_WRITE)
    data = await connection(ctx, connection_id=connection_id)
    await composio(ctx).request("DELETE", f"/api/v3/connected_accounts/{data['id']}")
    await IntegrationProfile.filter(owner_id=ctx.user_id, connected_account_id=data["id"]).update(
        connected_account_id=None, is_active=False
    )
    return str(data["id"])


# -- profiles -----------------------------------------------------------------------------------
async def owned_profile(ctx: RequestContext, profile_id: RawId, *, ability: str = PROJECTS_READ) -> IntegrationProfile:
    user_id = ctx.require(ability)
    row = await IntegrationProfile.get_or_none(id=parse_uuid(profile_id, "Profile"), owner_id=user_id)
    if row is None:
        raise NotFound("Profile not found")
    return row


async def list_profiles(
    ctx: RequestContext, *, toolkit_slug: str | None = None, active_only: bool = False
) -> list[IntegrationProfile]:
    query = IntegrationProfile.filter(owner_id=ctx.require(PROJECTS_READ))
    if toolkit_slug:
        query = query.filter(toolkit_slug=clean_slug(toolkit_slug))
    if active_only:
        query = query.filter(is_active=True)
    return await query.order_by("toolkit_slug", "created_at")


async def name_available(ctx: RequestContext, *, name: str) -> bool:
    user_id = ctx.require(PROJECTS_READ)
    text = clean_text(name, "name", max_length=MAX_PROFILE_NAME)
    return not await IntegrationProfile.exists(owner_id=user_id, profile_name=text)


def _clean_tools(value: object) -> list[str]:
    if not isinstance(value, list) or len(value) > MAX_TOOLS:
        raise InvalidInput(f"enabled_tools must be a list of at most {MAX_TOOLS} tool names", field="enabled_tools")
    if not all(isinstance(v, str) and TOOL_NAME.match(v) for v in value):
        raise InvalidInput("enabled_tools must hold tool names (letters, digits, '_', '.', '-')", field="enabled_tools")
    return list(dict.fromkeys(value))


def _clean_config(value: object) -> dict[str, Any]:
    import json

    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidInput("mcp_config must be a JSON object", field="mcp_config")
    if len(json.dumps(value)) > MAX_CONFIG_BYTES:
        raise InvalidInput(f"mcp_config must be at most {MAX_CONFIG_BYTES} bytes of JSON", field="mcp_config")
    return value


def _clean_bool(value: object, field: str) -> bool:
    if not isinstance(value, bool):
        raise InvalidInput(f"{field} must be a boolean", field=field)
    return value


async def create_profile(ctx: RequestContext, *, data: dict[str, Any]) -> IntegrationProfile:
    """Checks the toolkit, opens the connection (Composio-managed auth) and the MCP server, then stores the profile."""
    user_id = ctx.require(PROJECTS_WRITE)
    slug = clean_slug(data.get("toolkit_slug"))
    name = clean_text(data.get("profile_name"), "profile_name", max_length=MAX_PROFILE_NAME)
    display = clean_text(data.get("display_name"), "display_name", max_length=MAX_DISPLAY_NAME, required=False) or name
    tools_ = _clean_tools(data.get("enabled_tools", []))
    config = _clean_config(data.get("mcp_config"))
    is_default = _clean_bool(data.get("is_default", False), "is_default")
    if await IntegrationProfile.exists(owner_id=user_id, profile_name=name):
        raise Conflict(f"A profile named '{name}' already exists", field="profile_name")
    client = composio(ctx)
    toolkit = await toolkit_details(ctx, slug=slug)
    auth = await client.request(
        "POST",
        "/api/v3/auth_configs",
        json={"toolkit": {"slug": slug}, "auth_config": {"type": "use_composio_managed_auth"}},
    )
    auth_id = str(((auth or {}).get("auth_config") or {}).get("id") or "")
    account = await client.request(
        "POST",
        "/api/v3/connected_accounts",
        json={"auth_config": {"id": auth_id}, "connection": {"user_id": str(user_id)}},
    )
    server = await client.request(
        "POST",
        "/api/v3/mcp/servers",
        json={"name": f"runplane-{slug}-{uuid.uuid4().hex[:8]}", "auth_config_ids": [auth_id], "allowed_tools": tools_},
    )
    mcp_url = _user_mcp_url(server.get("mcp_url") if isinstance(server, dict) else None, user_id)
    try:
        async with in_transaction():
            if is_default:
                await IntegrationProfile.filter(owner_id=user_id, toolkit_slug=slug).update(is_default=False)
            return await IntegrationProfile.create(
                owner_id=user_id,
                profile_name=name,
                display_name=display,
                toolkit_slug=slug,
                toolkit_name=str(toolkit.get("name") or slug)[:200],
                auth_config_id=auth_id or None,
                connected_account_id=str(account.get("id") or "") or None,
                redirect_url=account.get("redirect_url"),
                mcp_server_id=str(server.get("id") or "") or None,
                mcp_url=seal_mcp_url(ctx.settings, user_id, mcp_url),
                config=config,
                enabled_tools=tools_,
                is_default=is_default,
            )
    except IntegrityError:
        raise Conflict(f"A profile named '{name}' already exists", field="profile_name") from None


def _user_mcp_url(url: object, user_id: uuid.UUID) -> str | None:
    if not isinstance(url, str) or not url.startswith(("https://", "http://")):
        return None
    return f"{url}{'&' if '?' in url else '?'}user_id={user_id}"


async def update_profile(ctx: RequestContext, *, profile_id: RawId, data: dict[str, Any]) -> IntegrationProfile:
    row = await owned_profile(ctx, profile_id, ability=PROJECTS_WRITE)
    if "profile_name" in data:
        name = clean_text(data["profile_name"], "profile_name", max_length=MAX_PROFILE_NAME)
        if name != row.profile_name and await IntegrationProfile.exists(owner_id=row.owner_id, profile_name=name):
            raise Conflict(f"A profile named '{name}' already exists", field="profile_name")
        row.profile_name = name
    if "display_name" in data:
        row.display_name = clean_text(data["display_name"], "display_name", max_length=MAX_DISPLAY_NAME)
    if "mcp_config" in data:
        row.config = _clean_config(data["mcp_config"])
    if "enabled_tools" in data:
        row.enabled_tools = _clean_tools(data["enabled_tools"])
    if "is_active" in data:
        row.is_active = _clean_bool(data["is_active"], "is_active")
    try:
        await row.save()
    except IntegrityError:
        raise Conflict("A profile with that name already exists", field="profile_name") from None
    return row


async def set_tools(ctx: RequestContext, *, profile_id: RawId, enabled_tools: Sequence[str]) -> IntegrationProfile:
    return await update_profile(ctx, profile_id=profile_id, data={"enabled_tools": enabled_tools})


async def discover_tools(ctx: RequestContext, *, profile_id: RawId) -> tuple[IntegrationProfile, list[dict[str, Any]]]:
    row = await owned_profile(ctx, profile_id)
    return row, await tools(ctx, toolkit_slug=row.toolkit_slug)


async def delete_profile(ctx: RequestContext, *, profile_id: RawId) -> uuid.UUID:
    row = await owned_profile(ctx, profile_id, ability=PROJECTS_WRITE)
    await row.delete()
    return row.id


async def bulk_delete(ctx: RequestContext, *, profile_ids: Sequence[str]) -> tuple[list[str], list[str]]:
    """(deleted, not found): unknown ids and other users' are reported as not found, nothing else fails."""
    user_id = ctx.require(PROJECTS_WRITE)
    if not isinstance(profile_ids, list) or not 1 <= len(profile_ids) <= MAX_BULK:
        raise InvalidInput(f"profile_ids must be a list of 1 to {MAX_BULK} ids", field="profile_ids")
    if not all(isinstance(i, str) for i in profile_ids):
        raise InvalidInput("profile_ids must hold strings", field="profile_ids")
    wanted: dict[str, uuid.UUID | None] = {}
    for raw in profile_ids:
        try:
            wanted[raw] = uuid.UUID(raw) if len(raw) <= 64 else None
        except ValueError:
            wanted[raw] = None
    ids = {u for u in wanted.values() if u is not None}
    found = (
        set(await IntegrationProfile.filter(owner_id=user_id, id__in=ids).values_list("id", flat=True))
        if ids
        else set()
    )
    if found:
        await IntegrationProfile.filter(owner_id=user_id, id__in=found).delete()
    deleted = [raw for raw, u in wanted.items() if u in found]
    return deleted, [raw for raw in wanted if raw not in deleted]


async def set_flag(ctx: RequestContext, *, profile_id: RawId, flag: str) -> IntegrationProfile:
    """is_default / is_dashboard_default: one profile per user and toolkit holds each."""
    row = await owned_profile(ctx, profile_id, ability=PROJECTS_WRITE)
    async with in_transaction():
        await (
            IntegrationProfile.filter(owner_id=row.owner_id, toolkit_slug=row.toolkit_slug)
            .exclude(id=row.id)
            .update(**{flag: False})
        )
        await IntegrationProfile.filter(id=row.id).update(**{flag: True})
    await row.refresh_from_db()
    return row


async def toggle_active(ctx: RequestContext, *, profile_id: RawId, is_active: bool | None = None) -> IntegrationProfile:
    row = await owned_profile(ctx, profile_id, ability=PROJECTS_WRITE)
    row.is_active = (not row.is_active) if is_active is None else _clean_bool(is_active, "is_active")
    await row.save(update_fields=["is_active", "updated_at"])
    return row


async def dashboard_profiles(ctx: RequestContext) -> list[IntegrationProfile]:
    """Active profiles, the dashboard default of each toolkit first."""
    rows = await list_profiles(ctx, active_only=True)
    return sorted(rows, key=lambda r: (r.toolkit_slug, not r.is_dashboard_default, r.created_at))


async def dashboard_mcp_urls(ctx: RequestContext) -> list[IntegrationProfile]:
    """One active profile with an MCP URL per toolkit: the dashboard default, else the default, else the oldest."""
    chosen: dict[str, IntegrationProfile] = {}
    for row in await list_profiles(ctx, active_only=True):
        if not row.mcp_url:
            continue
        best = chosen.get(row.toolkit_slug)
        if best is None or (row.is_dashboard_default, row.is_default) > (best.is_dashboard_default, best.is_default):
            chosen[row.toolkit_slug] = row
    return list(chosen.values())


def mcp_url(ctx: RequestContext, row: IntegrationProfile) -> str | None:
    """The profile's MCP URL, opened (runplane/resolvers/mcp_urls.py: it is stored sealed)."""
    return open_mcp_url(ctx.settings, row)


def mcp_config(ctx: RequestContext, row: IntegrationProfile) -> dict[str, Any]:
    """What an MCP client needs: the streamable-HTTP URL, the profile's tools, and its extra config."""
    return {
        "name": row.profile_name,
        "type": "composio",
        "transport": "http",
        "url": mcp_url(ctx, row),
        "enabled_tools": list(row.enabled_tools or []),
        "toolkit_slug": row.toolkit_slug,
        "config": dict(row.config or {}),
    }


async def close(services: Services) -> None:
    client = services.extras.pop("composio", None)
    if client is not None:
        await asyncio.shield(client.aclose())
