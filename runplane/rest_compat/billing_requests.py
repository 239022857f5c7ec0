"""Request models of the billing routes (runplane/rest_compat/billing.py), with the original's field names as
aliases (`plan_id`/`tier`, `key`, `country`, `method`) and the resolvers' limits."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AliasChoices, Field
from pydantic.config import JsonDict

from runplane.resolvers import billing, billing_admin, byok
from runplane.rest_compat.bodies import ASCII_DIGITS, Body, Query

UUID_TEXT: JsonDict = {"format": "uuid"}
DATE_TEXT: JsonDict = {"format": "date"}


def either(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class CheckoutCreate(Body):
    plan: str = Field(validation_alias=either("plan", "plan_id", "tier"))
    provider: Literal["polar", "stripe"] | None = None
    success_url: str | None = Field(None, json_schema_extra={"format": "uri"})
    cancel_url: str | None = Field(None, json_schema_extra={"format": "uri"})


class KeyStore(Body):
    api_key: str = Field(min_length=byok.MIN_KEY, max_length=byok.MAX_KEY, validation_alias=either("api_key", "key"))
    account_id: str | None = None  # checked against the token, never trusted


class AccountQuery(Query):
    """Cheatcode's server-side BYOK proxy names the account: checked against the token, never trusted."""

    account_id: str | None = Field(None, json_schema_extra=UUID_TEXT)


class KeyTest(Body):
    api_key: str | None = Field(None, max_length=byok.MAX_KEY, validation_alias=either("api_key", "key"))


class MethodValidation(Body):
    country_code: str = Field(validation_alias=either("country_code", "country"))
    payment_method: str = Field(validation_alias=either("payment_method", "method"))
    currency: str | None = None
    recurring: bool = True


class QuotaReset(Body):
    user_id: str | None = Field(None, json_schema_extra=UUID_TEXT)
    all: bool = False


class UsageQuery(Query):
    start_date: str | None = Field(None, json_schema_extra=DATE_TEXT)
    end_date: str | None = Field(None, json_schema_extra=DATE_TEXT)
    days: Annotated[int, Field(ge=1, le=billing.MAX_HISTORY_DAYS), ASCII_DIGITS] | None = None


class QuotaQuery(Query):
    user_id: str | None = Field(None, json_schema_extra=UUID_TEXT)
    limit: Annotated[int, Field(ge=1, le=billing_admin.MAX_QUOTA_TOP), ASCII_DIGITS] = billing_admin.QUOTA_TOP
