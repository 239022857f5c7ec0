"""Request bodies and query parameters as pydantic models: one declaration is the parser, its limits and the
OpenAPI schema (`api.add(body=Model, query=[Model, ...])`; runplane/rest_compat/openapi.py documents them).

Limits come from the resolvers' constants, which keep the checks GraphQL and REST share (trimming, NUL
characters, ids): the document and the parser cannot disagree with them. A value the model refuses is a 422
naming the field, like the resolvers' own InvalidInput.
"""

from __future__ import annotations

from typing import Annotated, Any, TypeVar

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, ValidationError
from starlette.requests import Request

from runplane.errors import InvalidInput
from runplane.numbers import ascii_int
from runplane.resolvers.pagination import MAX_PAGE
from runplane.rest_compat.common import json_body

M = TypeVar("M", bound=BaseModel)


class Body(BaseModel):
    """A JSON request body: JSON types exactly (no "5" for 5), fields it does not name ignored (clients send
    options of their own)."""

    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class Query(BaseModel):
    """Query parameters: text, integers in ASCII digits only (runplane/numbers.py)."""

    model_config = ConfigDict(extra="ignore", frozen=True)


def _ascii_integer(value: object) -> object:
    if isinstance(value, str):
        parsed = ascii_int(value, signed=True)
        if parsed is None:
            raise ValueError("must be an integer (ASCII digits)")
        return parsed
    return value


# After the bounds: `Annotated[int, Field(ge=1, le=100), ASCII_DIGITS]` (documented as minimum/maximum).
ASCII_DIGITS = BeforeValidator(_ascii_integer)


def text(max_length: int, *, min_length: int = 0, required: bool = False, description: str | None = None) -> Any:
    """A string field bounded as the resolver bounds it (absent: None, unless `required`)."""
    return Field(
        ... if required else None, min_length=min_length or None, max_length=max_length, description=description
    )


class TokenQuery(Query):
    """`?token=` of the routes a plain link or an EventSource calls (`api.add(query_token=True)` reads it)."""

    token: str | None = Field(None, description="An access token (instead of Authorization), for a plain link")


class PageQuery(Query):
    """`?limit=&cursor=` of a list (the handler picks the default limit: it may depend on the dialect)."""

    limit: Annotated[int, Field(ge=1, le=MAX_PAGE), ASCII_DIGITS] | None = None
    cursor: str | None = None


async def parse_body(request: Request, model: type[M], *, required: bool = True) -> M:
    return validated(model, await json_body(request, required=required))


def parse_query(request: Request, model: type[M]) -> M:
    # An empty value means absent (`?limit=`), as it always has.
    return validated(model, {name: value for name, value in request.query_params.items() if value != ""})


def validated(model: type[M], data: object, *, strict: bool | None = None) -> M:
    """`strict=False` for form fields, which are all text."""
    try:
        return model.model_validate(data, strict=strict)
    except ValidationError as error:
        problem = error.errors(include_url=False)[0]
        field = ".".join(str(part) for part in problem["loc"])
        raise InvalidInput(f"{field}: {problem['msg']}" if field else problem["msg"], field=field or None) from None
