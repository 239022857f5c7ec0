"""Sites and previews on an origin of their own (runplane/origins.py).

A security review found that a deployed page read `localStorage['graphiql:headers']` (GraphiQL kept the
Authorization header there) because sites ran on the API's origin. Now the API and the untrusted pages listen on
different ports: the API origin only redirects to them, their listener serves nothing else, every answer carries
nosniff, a CSP and no-referrer. In headless Chromium a page of a published site tries every way to the API
origin's storage.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from runplane.config import DEFAULT_UNTRUSTED_CSP, Settings
from runplane.origins import SiteHosts, UntrustedOriginMiddleware, public_site_url
from tests.spawned import base_env, runplane_command, spawn, spawn_server, wait_healthy
from tests.support import LiveServer, free_port

ROOT = Path(__file__).resolve().parents[2]
ORIGIN_JS = ROOT / "tests" / "js" / "untrusted_origin.mjs"
SITE_STORAGE_JS = ROOT / "tests" / "js" / "site_storage.mjs"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")

ATTACK_PAGE = b"""<!doctype html><html><body><h1>a tenant's site</h1><script>
const api = new URLSearchParams(location.search).get('api');
const out = { own: JSON.stringify(Object.entries(localStorage)) };
const frame = document.createElement('iframe');
frame.src = api + '/graphql';
frame.onload = async () => {
  try { out.frame = String(frame.contentWindow.localStorage.getItem('app-token')); }
  catch (e) { out.frame = 'blocked: ' + e.name; }
  try { out.fetch = (await (await fetch(api + '/api/health/live')).text()).slice(0, 100); }
  catch (e) { out.fetch = 'blocked: ' + e.name; }
  window.__result = out;
};
document.body.appendChild(frame);
</script></body></html>"""


async def run_node(script: Path, *args: str) -> dict[str, Any]:
    """A tests/js script driving headless Chromium (playwright-core); its last output line is JSON."""
    assert shutil.which("node"), "node is needed for playwright-core"
    proc = await asyncio.create_subprocess_exec(
        "node",
        str(script),
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env={**os.environ, "CHROMIUM": CHROMIUM},
        cwd=str(ROOT),
    )
    out, err = await asyncio.wait_for(proc.communicate(), 180)
    assert proc.returncode == 0, err.decode()[-3000:]
    result: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    return result


def publish(server: LiveServer, files: dict[str, bytes]) -> str:
    """A published copy as the local provider leaves it (the deploy path itself: tests/deployments)."""
    site_id = str(uuid.uuid4())
    root = server.settings.data_dir / "sites" / site_id
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    return site_id


async def test_sites_answer_only_on_their_own_origin_with_security_headers(server: LiveServer) -> None:
    site_id = publish(server, {"index.html": b"<h1>hi</h1>", "app.js": b"1"})
    assert server.untrusted_url != server.base_url
    async with httpx.AsyncClient(timeout=30) as http:
        page = await http.get(f"{server.untrusted_url}/sites/{site_id}/")
        assert page.status_code == 200 and page.text == "<h1>hi</h1>"
        assert page.headers["x-content-type-options"] == "nosniff"
        assert page.headers["content-security-policy"] == DEFAULT_UNTRUSTED_CSP
        assert page.headers["referrer-policy"] == "no-referrer"
        missing = await http.get(f"{server.untrusted_url}/sites/{site_id}/nothing.js")
        assert missing.status_code == 404 and missing.headers["x-content-type-options"] == "nosniff"
        # The API origin sends the browser over; it serves no tenant page itself.
        moved = await http.get(f"{server.base_url}/sites/{site_id}/app.js?v=2")
        assert moved.status_code == 308
        assert moved.headers["location"] == f"{server.untrusted_url}/sites/{site_id}/app.js?v=2"
        preview = await http.get(f"{server.base_url}/preview/some-token/x")
        assert preview.status_code == 308 and preview.headers["location"].startswith(server.untrusted_url)
        # The untrusted listener serves nothing of the API.
        for path in ("/graphql", "/api/health/live", "/api/projects", "/static/graphiql.html", "/"):
            answer = await http.get(server.untrusted_url + path)
            assert answer.status_code == 404, path
        assert (await http.post(f"{server.untrusted_url}/graphql", json={"query": "{__typename}"})).status_code == 404


async def test_websockets_cross_neither_way(server: LiveServer) -> None:
    """GraphQL's socket is not on the untrusted listener; a preview socket is not on the API's."""
    untrusted_ws = server.untrusted_url.replace("http", "ws", 1)
    api_ws = server.base_url.replace("http", "ws", 1)
    for url in (f"{untrusted_ws}/graphql", f"{api_ws}/preview/some-token/hmr"):
        with pytest.raises(websockets.InvalidStatus) as refused:
            async with websockets.connect(url, subprotocols=[websockets.Subprotocol("graphql-transport-ws")]):
                pass
        assert refused.value.response.status_code in (403, 404), url


@pytest.mark.skipif(
    not Path(CHROMIUM).exists() and os.environ.get("CI") != "true",
    reason="needs Chromium (apt-get install chromium); CI installs it",
)
async def test_a_published_page_cannot_read_the_api_origins_storage_in_chromium(server: LiveServer) -> None:
    site_id = publish(server, {"index.html": ATTACK_PAGE})
    result = await run_node(ORIGIN_JS, server.base_url, f"{server.untrusted_url}/sites/{site_id}/")
    assert "error" not in result, result
    # GraphiQL held the typed token (the pane shows it) but wrote it nowhere.
    assert "TYPED-TOKEN-3b7" in result["headersPane"]
    # GraphiQL's own shouldPersistHeaders=false still wrote it into its history (graphiql:queries): the page's
    # storage filter keeps the history, without headers.
    assert "TYPED-TOKEN-3b7" not in result["apiStorage"] and "API-ORIGIN-SECRET-91c" in result["apiStorage"]
    assert "graphiql:queries" in result["apiStorage"] and "__typename" in result["apiStorage"]
    # The page lives on the other origin and reaches none of the API origin's storage.
    assert result["siteOrigin"] == server.untrusted_url
    assert result["siteHeaders"]["content-security-policy"] == DEFAULT_UNTRUSTED_CSP
    assert "API-ORIGIN-SECRET" not in json.dumps(result["site"]), result["site"]
    assert result["site"]["frame"].startswith("blocked: SecurityError"), result["site"]
    assert result["site"]["fetch"].startswith("blocked"), result["site"]  # CSP connect-src and CORS both refuse it
    assert result["movedTo"] == server.untrusted_url


def two_free_ports() -> int:
    """A port P with P + 1 free too (`runplane serve`'s default untrusted port)."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.create_server(("127.0.0.1", port + 1)):
                return port
        except OSError:
            continue
    raise AssertionError("no two free neighbouring ports")


async def test_runplane_serve_listens_for_untrusted_pages_on_the_next_port_by_default(tmp_path: Path) -> None:
    env = base_env(tmp_path, DATABASE_URL=f"sqlite://{tmp_path / 'db.sqlite3'}")
    assert "RUNPLANE_UNTRUSTED_PORT" not in env
    port = two_free_ports()
    proc = spawn("serve", runplane_command("serve", "--port", str(port)), env, tmp_path / "logs", port)
    try:
        await wait_healthy(proc, "live")
        site = f"/sites/{uuid.uuid4()}/index.html"
        async with httpx.AsyncClient(timeout=10) as http:
            moved = await http.get(f"http://127.0.0.1:{port}{site}")
            assert moved.status_code == 308 and moved.headers["location"] == f"http://127.0.0.1:{port + 1}{site}"
            there = await http.get(f"http://127.0.0.1:{port + 1}{site}")
            assert there.status_code == 404 and there.headers["x-content-type-options"] == "nosniff"
            assert (await http.get(f"http://127.0.0.1:{port + 1}/api/health/live")).status_code == 404
    finally:
        await proc.stop()


async def test_opting_out_serves_them_on_the_api_origin_with_the_same_headers() -> None:
    """RUNPLANE_UNTRUSTED_PORT=0: one listener; sites still get nosniff, the CSP and no-referrer (the middleware
    alone, on a bare app: a second runplane app cannot share this process)."""

    async def page(request: Request) -> Response:
        return PlainTextResponse("page")

    bare = Starlette(routes=[Route("/sites/{path:path}", page), Route("/api/x", page)])
    app = UntrustedOriginMiddleware(bare, Settings(untrusted_port=0))
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        site = await http.get("/sites/a/index.html")
        assert site.text == "page" and site.headers["x-content-type-options"] == "nosniff"
        assert site.headers["content-security-policy"] == DEFAULT_UNTRUSTED_CSP
        assert "content-security-policy" not in (await http.get("/api/x")).headers


def publish_in(sites: Path, files: dict[str, bytes]) -> str:
    site_id = str(uuid.uuid4())
    for name, data in files.items():
        (sites / site_id / name).parent.mkdir(parents=True, exist_ok=True)
        (sites / site_id / name).write_bytes(data)
    return site_id


def test_site_urls_follow_the_host_template() -> None:
    site_id = str(uuid.uuid4())
    stored = f"/sites/{site_id}/"
    hosts = Settings(sites_base_url="https://{id}.sites.example.com", untrusted_port=8001)
    assert public_site_url(hosts, stored, "http://api.example.com") == f"https://{site_id}.sites.example.com/"
    shared = Settings(untrusted_port=8001)
    assert public_site_url(shared, stored, "http://api.example.com:8000") == f"http://api.example.com:8001{stored}"
    fixed = Settings(sites_base_url="https://usercontent.example.com/", untrusted_port=8001)
    assert public_site_url(fixed, stored, None) == f"https://usercontent.example.com{stored}"
    path_template = Settings(sites_base_url="https://example.com/{id}")  # {id} outside the host name: not a template
    assert SiteHosts(path_template.sites_base_url).template is None


async def test_each_site_on_a_host_of_its_own(tmp_path: Path) -> None:
    """RUNPLANE_SITES_BASE_URL=http://{id}.localhost:<port>: every site its own origin; absolute paths work."""
    port = free_port()
    settings = {"UNTRUSTED_PORT": port, "SITES_BASE_URL": f"http://{{id}}.localhost:{port}"}
    async with spawn_server(tmp_path, settings, health="live") as proc:
        a = publish_in(tmp_path / "sites", {"index.html": b"<p>site A</p>", "assets/app.js": b"a()"})
        b = publish_in(tmp_path / "sites", {"index.html": b"<p>site B</p>"})
        untrusted = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(timeout=10) as http:
            host_a = {"host": f"{a}.localhost:{port}"}
            page = await http.get(f"{untrusted}/", headers=host_a)
            assert page.text == "<p>site A</p>" and page.headers["content-security-policy"] == DEFAULT_UNTRUSTED_CSP
            assert (await http.get(f"{untrusted}/assets/app.js", headers=host_a)).text == "a()"  # absolute path
            # From A's host, nothing of another site (nor the API) is reachable.
            assert (await http.get(f"{untrusted}/sites/{b}/index.html", headers=host_a)).status_code == 404
            assert (await http.get(f"{untrusted}/api/health/live", headers=host_a)).status_code == 404
            # Path-based URLs, on the shared untrusted origin or the API's, send the browser to the site's host.
            for base in (untrusted, proc.base_url):
                moved = await http.get(f"{base}/sites/{a}/assets/app.js?v=1")
                assert moved.status_code == 308
                assert moved.headers["location"] == f"http://{a}.localhost:{port}/assets/app.js?v=1"
        if not Path(CHROMIUM).exists() and os.environ.get("CI") != "true":
            return  # the rest needs Chromium (CI installs it)
        result = await run_node(SITE_STORAGE_JS, f"http://{a}.localhost:{port}/", f"http://{b}.localhost:{port}/")
        assert "error" not in result, result
        assert result["aText"] == "site A" and result["bText"] == "site B"
        assert "A-SECRET-5e2" in result["aStorage"] and "A-COOKIE-5e2" in result["aStorage"]  # storage works on A
        assert "A-SECRET" not in result["bStorage"] and "A-COOKIE" not in result["bStorage"], result
        assert result["aOrigin"] != result["bOrigin"]
