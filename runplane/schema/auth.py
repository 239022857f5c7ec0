"""Accounts on GraphQL: the twins of /api/auth/*."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

import strawberry

from runplane import models
from runplane.resolvers import auth as ops
from runplane.schema.common import Node
from runplane.schema.context import rctx
from runplane.schema.enums import TokenType
from runplane.schema.errors import (
    ConflictError,
    ForbiddenError,
    InputError,
    NotFoundError,
    RateLimitedError,
    typed_errors,
)
from runplane.schema.ids import from_global_id, to_global_id


@strawberry.type
class User(Node):
    email: str | None
    display_name: str
    is_admin: bool
    created_at: datetime

    @classmethod
    def from_row(cls, row: models.User) -> "User":
        return cls(
            id=to_global_id("User", row.id),
            email=row.email,
            display_name=row.display_name,
            is_admin=row.is_admin,
            created_at=row.created_at,
        )


@strawberry.type
class AuthSession(Node):
    abilities: list[str]
    user_agent: str
    ip_address: str
    created_at: datetime
    last_used_at: datetime
    expires_at: datetime
    current: bool

    @classmethod
    def from_row(cls, row: models.AuthSession, current_id: object) -> "AuthSession":
        return cls(
            id=to_global_id("AuthSession", row.id),
            abilities=list(row.abilities),
            user_agent=row.user_agent,
            ip_address=row.ip_address,
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            current=row.id == current_id,
        )


@strawberry.type
class AuthTokens:
    access_token: str
    refresh_token: str
    token_type: TokenType
    expires_in: int
    session_id: strawberry.ID

    @classmethod
    def from_pair(cls, pair: ops.TokenPair) -> "AuthTokens":
        return cls(
            access_token=pair.access_token,
            refresh_token=pair.refresh_token,
            token_type=TokenType(pair.token_type),
            expires_in=pair.expires_in,
            session_id=to_global_id("AuthSession", pair.session.id),
        )


@strawberry.type
class LogoutPayload:
    ok: bool


@strawberry.type
class RevokeSessionPayload:
    revoked_id: strawberry.ID


AuthResult = Annotated[
    AuthTokens | InputError | ConflictError | ForbiddenError | RateLimitedError, strawberry.union("AuthResult")
]
RevokeSessionResult = Annotated[RevokeSessionPayload | NotFoundError, strawberry.union("RevokeSessionResult")]


@strawberry.input
class RegisterInput:
    email: str
    password: str
    display_name: str | None = None
    abilities: list[str] | None = None


@strawberry.input
class LoginInput:
    email: str
    password: str
    abilities: list[str] | None = None


@strawberry.type
class AuthQueries:
    @strawberry.field(description="The authenticated user.")
    async def me(self, info: strawberry.Info) -> User:
        return User.from_row(await ops.me(rctx(info)))

    @strawberry.field(description="The caller's live sessions (logins), newest first.")
    async def sessions(self, info: strawberry.Info) -> list[AuthSession]:
        ctx = rctx(info)
        current = ctx.principal.session_id if ctx.principal else None
        return [AuthSession.from_row(row, current) for row in await ops.list_sessions(ctx)]


@strawberry.type
class AuthMutations:
    @strawberry.mutation
    @typed_errors
    async def register(self, info: strawberry.Info, input: RegisterInput) -> AuthResult:
        pair = await ops.register(
            rctx(info),
            email=input.email,
            password=input.password,
            display_name=input.display_name,
            abilities=input.abilities,
        )
        return AuthTokens.from_pair(pair)

    @strawberry.mutation(description="Exchange email and password for tokens (REST: POST /api/auth/token).")
    @typed_errors
    async def login(self, info: strawberry.Info, input: LoginInput) -> AuthResult:
        pair = await ops.login(rctx(info), email=input.email, password=input.password, abilities=input.abilities)
        return AuthTokens.from_pair(pair)

    @strawberry.mutation(description="Rotate a refresh token into a new token pair.")
    @typed_errors
    async def refresh_tokens(self, info: strawberry.Info, refresh_token: str) -> AuthResult:
        return AuthTokens.from_pair(await ops.refresh(rctx(info), refresh_token=refresh_token))

    @strawberry.mutation(description="Revoke the session of the calling token.")
    async def logout(self, info: strawberry.Info) -> LogoutPayload:
        await ops.logout(rctx(info))
        return LogoutPayload(ok=True)

    @strawberry.mutation
    @typed_errors
    async def revoke_session(self, info: strawberry.Info, id: strawberry.ID) -> RevokeSessionResult:
        row = await ops.revoke_session(rctx(info), session_id=from_global_id(id, "AuthSession"))
        return RevokeSessionPayload(revoked_id=to_global_id("AuthSession", row.id))
