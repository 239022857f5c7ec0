"""Integers spelled with non-ASCII digits, in every integer query parameter of the OpenAPI document and in
Last-Event-ID: always a 4xx, never a 500 (`"²".isdigit()` is true and `int("²")` raises) and never accepted
as a number (`int("٣")` is 3).

`?after=%C2%B2` once reproduced a 500. Each route is called with the signed-in user's real ids in its path,
so the parameter reaches the handler instead of a 404 on the lookup.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from runplane.numbers import ascii_int
from runplane.rest_compat import api
from runplane.rest_compat.openapi import build_openapi
from tests.fuzz.conftest import FuzzTarget

# Superscripts (isdigit, int() raises), Arabic-Indic and fullwidth (int() accepts), and ASCII look-alikes.
SPELLINGS = ["²", "¹²", "٣", "１２", "𝟕", "߁", " 7", "7 ", "+7", "1_0", "0x1", "7\n", "٣" * 40, "1e3", "-"]


def integer_parameters() -> Iterator[tuple[str, str, str]]:
    for path, operations in build_openapi(api)["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                if parameter["in"] == "query" and parameter.get("schema", {}).get("type") == "integer":
                    yield method.upper(), path, parameter["name"]


def event_streams() -> Iterator[str]:
    for path, operations in build_openapi(api)["paths"].items():
        responses = operations.get("get", {}).get("responses", {})
        if any("text/event-stream" in str(answer.get("content", {})) for answer in responses.values()):
            yield path


INTEGERS = sorted(set(integer_parameters()))
STREAMS = sorted(set(event_streams()))


def test_the_document_has_integer_parameters_and_streams() -> None:
    names = {name for _, _, name in INTEGERS}
    assert {"after", "limit", "from_offset"} <= names, names
    assert len(STREAMS) >= 2, STREAMS


@pytest.mark.parametrize("raw", [*SPELLINGS, "²".encode().decode("latin-1")])
def test_ascii_int_refuses_every_other_spelling(raw: str) -> None:
    assert ascii_int(raw) is None and ascii_int(raw, signed=True) is None


def test_ascii_int_reads_ascii_digits_within_its_bound() -> None:
    assert ascii_int("0") == 0 and ascii_int("0042") == 42 and ascii_int("-3", signed=True) == -3
    assert ascii_int("-3") is None and ascii_int(b"512") == 512
    assert ascii_int("9" * 12, max_digits=12) == 10**12 - 1 and ascii_int("9" * 13, max_digits=12) is None


@pytest.fixture
async def client(fuzz_target: FuzzTarget) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fuzz_target.base_url, headers=fuzz_target.user_headers, timeout=30) as http:
        yield http


def concrete(path: str, objects: dict[str, str]) -> str:
    def value(match: re.Match[str]) -> str:
        name = match.group(1)
        return objects.get(name) or (str(uuid.uuid4()) if name.endswith("id") else "x")

    return re.sub(r"{(\w+)(?::\w+)?}", value, path)


async def status_of(client: httpx.AsyncClient, method: str, url: str, **options: Any) -> int:
    request = client.build_request(method, url, **options)
    response = await client.send(request, stream=True)  # an accepted stream would never end: read the status only
    await response.aclose()
    return response.status_code


async def test_integer_query_parameters_refuse_non_ascii_digits(
    client: httpx.AsyncClient, fuzz_target: FuzzTarget
) -> None:
    failures = []
    for method, path, name in INTEGERS:
        url = concrete(path, fuzz_target.objects)
        body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        for raw in SPELLINGS:
            status = await status_of(client, method, url, params={name: raw}, **body)
            if not 400 <= status < 500:
                failures.append((method, path, name, raw, status))
    assert not failures, failures


async def test_last_event_id_refuses_non_ascii_digits(client: httpx.AsyncClient, fuzz_target: FuzzTarget) -> None:
    # Header bytes are Latin-1 to the server: b"\xb2" arrives as "²"; UTF-8 spellings arrive as other letters.
    spellings = [b"\xb2", b"\xb9\xb2", "٣".encode(), "１２".encode(), b"1_0", b"+7", b"0x1"]
    failures = []
    for path in STREAMS:
        url = concrete(path, fuzz_target.objects)
        for raw in spellings:
            headers = {"Last-Event-ID": raw}
            status = await status_of(client, "GET", url, headers=headers)  # type: ignore[arg-type]
            if not 400 <= status < 500:
                failures.append((path, raw, status))
    assert not failures, failures


def integer_bounds() -> Iterator[tuple[str, str, str, dict[str, Any]]]:
    for path, operations in build_openapi(api)["paths"].items():
        for method, operation in operations.items():
            for parameter in operation.get("parameters", []):
                schema = parameter.get("schema", {})
                if parameter["in"] == "query" and schema.get("type") == "integer":
                    yield method.upper(), path, parameter["name"], schema


def other_required(method: str, path: str, name: str) -> dict[str, str]:
    """The operation's other required query parameters (any text), so that only `name` is out of shape."""
    parameters = build_openapi(api)["paths"][path][method.lower()].get("parameters", [])
    return {p["name"]: "x" for p in parameters if p["in"] == "query" and p.get("required") and p["name"] != name}


def as_its_caller(request: httpx.Request, fuzz_target: FuzzTarget) -> httpx.Request:
    """Admin routes with the admin key alone (the user's token would be refused before the query is read)."""
    path = request.url.path
    routes = [r for r in api.routes if r.method == request.method and r.auth == "admin"]
    if any(re.fullmatch(re.sub(r"{\w+}", "[^/]+", "/api" + r.path), path) for r in routes):
        del request.headers["authorization"]
        request.headers.update(fuzz_target.admin_headers)
    return request


def test_every_integer_query_parameter_is_bounded_in_the_document() -> None:
    unbounded = [
        (method, path, name)
        for method, path, name, schema in integer_bounds()
        if "minimum" not in schema or not {"maximum", "exclusiveMaximum"} & set(schema)
    ]
    assert not unbounded, unbounded


def past_the_bounds(schema: dict[str, Any]) -> list[int]:
    above = schema["exclusiveMaximum"] if "exclusiveMaximum" in schema else schema["maximum"] + 1
    return [schema["minimum"] - 1, above, above * 10]


async def test_integer_query_parameters_refuse_values_past_their_bounds(
    client: httpx.AsyncClient, fuzz_target: FuzzTarget
) -> None:
    """The document's bounds are the parser's: one past either end is a 422 naming the parameter."""
    failures = []
    for method, path, name, schema in integer_bounds():
        url = concrete(path, fuzz_target.objects)
        body = {"json": {}} if method in ("POST", "PUT", "PATCH") else {}
        params = other_required(method, path, name)
        for value in past_the_bounds(schema):
            request = client.build_request(method, url, params={**params, name: str(value)}, **body)
            response = await client.send(as_its_caller(request, fuzz_target))
            if response.status_code != 422 or response.json().get("field") != name:
                failures.append((method, path, name, value, response.status_code, response.text[:200]))
    assert not failures, failures


async def test_last_event_id_past_its_bound_is_refused(client: httpx.AsyncClient, fuzz_target: FuzzTarget) -> None:
    """A resume cursor of 13 digits is no sequence number or output offset runplane hands out."""
    failures = []
    for path in STREAMS:
        url = concrete(path, fuzz_target.objects)
        status = await status_of(client, "GET", url, headers={"Last-Event-ID": "9" * 13})
        if status != 422:
            failures.append((path, status))
    assert not failures, failures
