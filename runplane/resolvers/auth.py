"""Accounts and credentials: register, login, refresh, logout, sessions, and turning a token into a Principal."""

from __future__ import annotations

import hmac
import re
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import timedelta

import jwt
from cachetools import TTLCache
from tortoise.exceptions import IntegrityError
from tortoise.transactions import in_transaction

from runplane.auth import abilities as ab
from runplane.auth.jwks import decode_external_token
from runplane.auth.passwords import hash_password, verify_password
from runplane.auth.principal import Principal
from runplane.auth.tokens import (
    AccessClaims,
    decode_access_token,
    hash_refresh_token,
    issue_access_token,
    new_refresh_token,
    refresh_token_session_id,
)
from runplane.clock import now
from runplane.errors import Conflict, Forbidden, InvalidInput, NotFound, RateLimited, Unauthenticated
from runplane.models import AuthSession, User
from runplane.resolvers import rate_limits
from runplane.resolvers.context import RequestContext
from runplane.resolvers.validation import RawId, clean_text, parse_uuid
from runplane.services import Services

EMAIL_PATTERN = re.compile(r"^[^@\s]{1,64}@[^@\s]{1,255}\.[^@\s]{1,63}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
MAX_EMAIL, MAX_DISPLAY_NAME = 320, 200
ACCOUNT_WINDOW_MINUTES = 15  # RUNPLANE_LOGIN_ACCOUNT_FAILURES counts in windows of this many minutes
# A session confirmed live is trusted for this long before the next lookup; revocation takes at most this
# long to reach other processes (this process forgets at once). Bounded: the oldest entries make room.
SESSION_CHECK_TTL_SECONDS = 5.0
_live_sessions: TTLCache[uuid.UUID, bool] = TTLCache(maxsize=100_000, ttl=SESSION_CHECK_TTL_SECONDS)


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session: AuthSession
    token_type: str = "bearer"


def _clean_email(value: object) -> str:
    email = clean_text(value, "email", max_length=MAX_EMAIL).lower()
    if not EMAIL_PATTERN.match(email):
        raise InvalidInput("email is not a valid address", field="email")
    return email


def _stored_email(value: str) -> str | None:
    """`value` as registration would store it, or None when no account can have it (then nothing is queried:
    PostgreSQL refuses NUL characters in text, which would be a 500)."""
    email = value.lower()
    return email if len(email) <= 320 and "\x00" not in email and EMAIL_PATTERN.fullmatch(email) else None


def _clean_password(value: object) -> str:
    if not isinstance(value, str):
        raise InvalidInput("password must be a string", field="password")
    if not MIN_PASSWORD <= len(value) <= MAX_PASSWORD:
        raise InvalidInput(f"password must be {MIN_PASSWORD} to {MAX_PASSWORD} characters", field="password")
    return value


def _requested_abilities(value: object) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise InvalidInput("abilities must be a list of strings", field="abilities")
    unknown = sorted(set(value) - ab.ALL_ABILITIES)
    if unknown:
        raise InvalidInput(f"unknown abilities: {', '.join(unknown)}", field="abilities")
    return value


async def register(
    ctx: RequestContext,
    *,
    email: str,
    password: str,
    display_name: str | None = None,
    abilities: Sequence[str] | None = None,
) -> TokenPair:
    if not ctx.settings.allow_registration:
        raise Forbidden("Registration is disabled on this server")
    clean_email, clean_password = _clean_email(email), _clean_password(password)
    name = clean_text(display_name, "display_name", max_length=MAX_DISPLAY_NAME, required=False)
    requested = _requested_abilities(abilities)
    if ctx.settings.registrations_per_hour > 0:  # before the argon2 hash (64 MiB and tens of ms each)
        item = rate_limits.per_hour(ctx.settings.registrations_per_hour)
        await rate_limits.take(
            ctx, item, "register-ip", ctx.client_ip, message="Too many registrations from this address"
        )
    password_hash = await hash_password(clean_password)
    try:
        async with in_transaction():
            user = await User.create(email=clean_email, password_hash=password_hash, display_name=name)
            return await _open_session(ctx, user, requested)
    except IntegrityError:
        raise Conflict("An account with this email already exists") from None


async def login(ctx: RequestContext, *, email: str, password: str, abilities: Sequence[str] | None = None) -> TokenPair:
    if not isinstance(email, str) or not isinstance(password, str) or len(password) > MAX_PASSWORD:
        raise InvalidInput("email and password are required strings")
    requested = _requested_abilities(abilities)
    key = _stored_email(email.strip())
    user = await User.get_or_none(email=key) if key else None
    account = f"email:{key}"
    await _take_login_attempt(ctx, account, user)
    # verify_password runs even for an unknown email so timing does not reveal which accounts exist.
    if not await verify_password(user.password_hash if user else None, password) or user is None:
        raise Unauthenticated("Incorrect email or password")
    await _login_succeeded(ctx, account)
    return await _open_session(ctx, user, requested)


async def _take_login_attempt(ctx: RequestContext, account: str, user: User | None) -> None:
    """Each attempt takes its hits before the password is verified (atomically: concurrent guesses cannot all slip
    through), per client address (spraying many accounts), per account and address (guessing one), and per
    account from addresses the account has no session from (guessing spread over many addresses). A stranger
    elsewhere can thus never lock the owner out of the addresses the owner has logged in from."""
    settings, address = ctx.settings, ctx.client_ip
    if settings.login_address_failures_per_minute > 0:
        await rate_limits.take(
            ctx, rate_limits.per_minutes(settings.login_address_failures_per_minute), "login-ip", address
        )
    if settings.login_failures_per_minute > 0:
        item = rate_limits.per_minutes(settings.login_failures_per_minute)
        await rate_limits.take(ctx, item, "login-account-ip", f"{account}|{address}")
    if settings.login_account_failures > 0:
        item = rate_limits.per_minutes(settings.login_account_failures, ACCOUNT_WINDOW_MINUTES)
        try:
            await rate_limits.take(ctx, item, "login-account", account)
        except RateLimited:
            if user is None or not await _known_address(ctx, user, address):
                raise


async def _login_succeeded(ctx: RequestContext, account: str) -> None:
    """Successful logins cost nothing: the address gets its hit back, the account's windows start afresh."""
    settings, address = ctx.settings, ctx.client_ip
    if settings.login_address_failures_per_minute > 0:
        item = rate_limits.per_minutes(settings.login_address_failures_per_minute)
        await rate_limits.refund(ctx, item, "login-ip", address)
    if settings.login_failures_per_minute > 0:
        item = rate_limits.per_minutes(settings.login_failures_per_minute)
        await rate_limits.clear(ctx, item, "login-account-ip", f"{account}|{address}")
    if settings.login_account_failures > 0:
        item = rate_limits.per_minutes(settings.login_account_failures, ACCOUNT_WINDOW_MINUTES)
        await rate_limits.clear(ctx, item, "login-account", account)


async def _known_address(ctx: RequestContext, user: User, address: str) -> bool:
    """The account opened a session from this address (a device of the owner's) within a refresh token's life."""
    since = now() - timedelta(seconds=ctx.settings.refresh_token_ttl_seconds)
    return await AuthSession.filter(user_id=user.id, ip_address=address[:64], created_at__gte=since).exists()


async def _open_session(ctx: RequestContext, user: User, requested: list[str] | None) -> TokenPair:
    session_id = uuid.uuid4()
    refresh_token = new_refresh_token(ctx.settings, session_id)
    granted = sorted(ab.grantable(requested, is_admin=user.is_admin))
    session = await AuthSession.create(
        id=session_id,
        user=user,
        refresh_token_hash=hash_refresh_token(refresh_token),
        abilities=granted,
        user_agent=ctx.user_agent[:512],
        ip_address=ctx.client_ip[:64],
        expires_at=now() + timedelta(seconds=ctx.settings.refresh_token_ttl_seconds),
    )
    return _token_pair(ctx, session, refresh_token)


def _token_pair(ctx: RequestContext, session: AuthSession, refresh_token: str) -> TokenPair:
    claims = AccessClaims(user_id=session.user_id, session_id=session.id, abilities=list(session.abilities))
    access = issue_access_token(ctx.settings, claims)
    return TokenPair(access, refresh_token, ctx.settings.access_token_ttl_seconds, session)


async def refresh(ctx: RequestContext, *, refresh_token: str) -> TokenPair:
    """Rotate: the old refresh token stops working. Presenting a rotated one again revokes the session
    (it means the token was copied), so a stolen refresh token is good for one use at most."""
    if not isinstance(refresh_token, str):
        raise InvalidInput("refresh_token must be a string", field="refresh_token")
    session_id = refresh_token_session_id(ctx.settings, refresh_token)
    session = await AuthSession.get_or_none(id=session_id) if session_id else None
    if session is None or session.revoked_at is not None or session.expires_at <= now():
        raise Unauthenticated("Invalid or expired refresh token")
    if not hmac.compare_digest(session.refresh_token_hash, hash_refresh_token(refresh_token)):
        await _revoke(ctx, session)
        raise Unauthenticated("Refresh token was already used; the session has been revoked")
    new_token = new_refresh_token(ctx.settings, session.id)
    updated = await AuthSession.filter(id=session.id, refresh_token_hash=session.refresh_token_hash).update(
        refresh_token_hash=hash_refresh_token(new_token), last_used_at=now()
    )
    if not updated:  # a concurrent refresh won the race with the same token
        raise Unauthenticated("Refresh token was already used")
    return _token_pair(ctx, session, new_token)


async def logout(ctx: RequestContext) -> None:
    user_id = ctx.user_id  # 401 carrying the credential's own error (expired, revoked...) when there is no user
    session_id = ctx.principal.session_id if ctx.principal else None
    if session_id is not None:  # external tokens have no session of ours: nothing to revoke
        await AuthSession.filter(id=session_id, user_id=user_id, revoked_at=None).update(revoked_at=now())
        _forget_session(ctx, session_id)


async def me(ctx: RequestContext) -> User:
    user = await User.get_or_none(id=ctx.user_id)
    if user is None:
        raise Unauthenticated("This account no longer exists")
    return user


async def list_sessions(ctx: RequestContext) -> list[AuthSession]:
    return await AuthSession.filter(user_id=ctx.user_id, revoked_at=None, expires_at__gt=now()).order_by("-created_at")


async def revoke_session(ctx: RequestContext, *, session_id: RawId) -> AuthSession:
    sid = parse_uuid(session_id, "Session")
    session = await AuthSession.get_or_none(id=sid, user_id=ctx.user_id)
    if session is None:
        raise NotFound("Session not found")
    await _revoke(ctx, session)
    return session


async def _revoke(ctx: RequestContext, session: AuthSession) -> None:
    if session.revoked_at is None:
        session.revoked_at = now()
        await session.save(update_fields=["revoked_at"])
    _forget_session(ctx, session.id)


def _forget_session(ctx: RequestContext, session_id: uuid.UUID) -> None:
    """This process stops trusting the session at once: its cached liveness, and every socket and stream it keeps
    open here (other processes find out from the database within RUNPLANE_SESSION_RECHECK_SECONDS)."""
    _live_sessions.pop(session_id, None)
    ctx.services.credentials.revoked(session_id)


# --- credentials -> Principal -------------------------------------------------------------------------


async def authenticate_bearer(services: Services, token: str) -> Principal:
    """Built-in tokens by `iss`, external issuers through JWKS; anything else is 401."""
    if not token or len(token) > 8192:
        raise Unauthenticated("Invalid token")
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        raise Unauthenticated("Invalid token") from None
    if issuer == services.settings.jwt_issuer:
        return await _builtin_principal(services, token)
    if services.jwks is not None and issuer == services.settings.external_issuer:
        return await _external_principal(services, token)
    raise Unauthenticated("Invalid token")


async def _builtin_principal(services: Services, token: str) -> Principal:
    try:
        claims = decode_access_token(services.settings, token)
        user_id, session_id = uuid.UUID(claims["sub"]), uuid.UUID(claims["sid"])
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise Unauthenticated("Invalid or expired token") from None
    if not await _session_is_live(session_id, user_id):
        raise Unauthenticated("Session has been revoked")
    return Principal(user_id, ab.parse_abilities(claims.get("abilities")), session_id, "token", _expiry(claims))


async def _session_is_live(session_id: uuid.UUID, user_id: uuid.UUID) -> bool:
    if session_id in _live_sessions:
        return True
    live = await AuthSession.exists(id=session_id, user_id=user_id, revoked_at=None)
    if live:
        _live_sessions[session_id] = True
    return live


async def _external_principal(services: Services, token: str) -> Principal:
    settings = services.settings
    assert services.jwks is not None and settings.external_issuer is not None
    try:
        claims = await decode_external_token(
            services.jwks, token, issuer=settings.external_issuer, audience=settings.external_audience
        )
    except (jwt.PyJWTError, ValueError, TypeError, KeyError):
        raise Unauthenticated("Invalid or expired token") from None
    user = await _provision_external_user(settings.external_issuer, claims)
    granted = _external_abilities(claims, settings.external_default_abilities)
    return Principal(user.id, granted & ab.grantable(None, is_admin=user.is_admin), None, "external", _expiry(claims))


def _expiry(claims: dict[str, object]) -> float | None:
    """The token's `exp` (verified by the decoder), after which sockets and streams it opened end."""
    exp = claims.get("exp")
    return float(exp) if isinstance(exp, (int, float)) and not isinstance(exp, bool) else None


def _external_abilities(claims: dict[str, object], defaults: tuple[str, ...]) -> frozenset[str]:
    for key in ("abilities", "scope", "scp"):
        if key in claims:
            return ab.parse_abilities(claims[key])
    return frozenset(defaults) if defaults else ab.USER_ABILITIES


async def _provision_external_user(issuer: str, claims: dict[str, object]) -> User:
    """Users of an external issuer are created on first sight, keyed by issuer and `sub`."""
    subject = f"{issuer}|{claims['sub']}"
    if len(subject) > 512 or "\x00" in subject:  # truncating would merge distinct subjects into one user
        raise Unauthenticated("Invalid or expired token")
    user = await User.get_or_none(external_subject=subject)
    if user is not None:
        return user
    email = claims.get("email")
    try:
        return await User.create(external_subject=subject, email=_unclaimed_email(email))
    except IntegrityError:  # two first requests raced, or the email belongs to another account
        existing = await User.get_or_none(external_subject=subject)
        return existing or await User.create(external_subject=subject, email=None)


def _unclaimed_email(email: object) -> str | None:
    return _stored_email(email) if isinstance(email, str) else None


async def authenticate_api_key(ctx: RequestContext, key: str) -> Principal:
    """The admin key, compared in constant time; wrong keys are throttled per client address (each attempt takes
    its hit first, a right key gets it back)."""
    limit = ctx.settings.admin_key_failures_per_minute
    item = rate_limits.per_minutes(max(limit, 1))
    if limit > 0:
        await rate_limits.take(ctx, item, "admin-key-ip", ctx.client_ip, message="Too many wrong API keys: wait")
    expected = ctx.settings.admin_api_key
    if not expected or not hmac.compare_digest(key.encode(), expected.encode()):
        raise Unauthenticated("Invalid API key")
    if limit > 0:
        await rate_limits.refund(ctx, item, "admin-key-ip", ctx.client_ip)
    return Principal(None, frozenset({ab.ADMIN}), None, "api_key")


# --- operator tools (CLI) -----------------------------------------------------------------------------


async def create_user(ctx: RequestContext, *, email: str, password: str, is_admin: bool = False) -> User:
    password_hash = await hash_password(_clean_password(password))
    try:
        return await User.create(email=_clean_email(email), password_hash=password_hash, is_admin=is_admin)
    except IntegrityError:
        raise Conflict("An account with this email already exists") from None


async def issue_token_for(ctx: RequestContext, *, email: str, abilities: list[str] | None, ttl_seconds: int) -> str:
    """A long-lived access token for scripts, backed by a session that can be listed and revoked."""
    user = await User.get_or_none(email=email.strip().lower())
    if user is None:
        raise NotFound("User not found")
    pair = await _open_session(ctx, user, _requested_abilities(abilities))
    claims = AccessClaims(user.id, pair.session.id, list(pair.session.abilities))
    return issue_access_token(ctx.settings, claims, ttl_seconds=ttl_seconds)
