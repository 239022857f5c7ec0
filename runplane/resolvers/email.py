"""Emails through SMTP (stdlib smtplib in a thread). The welcome email is sent once per user unless forced."""

from __future__ import annotations

import asyncio
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formataddr, make_msgid

from tortoise.exceptions import IntegrityError

from runplane.clock import now
from runplane.config import Settings
from runplane.errors import DomainError, ErrorCode, InvalidInput, ServiceUnavailable
from runplane.models import EmailDelivery, User
from runplane.models.choices import EmailStatus
from runplane.resolvers.context import RequestContext
from runplane.resolvers.validation import clean_text

MAX_NAME = 100  # the name the welcome email greets

WELCOME = "welcome"
# Another request is sending it right now: treated as sent once this old (that request died).
STALE_SENDING_SECONDS = 120


class EmailDeliveryFailed(DomainError):
    code = ErrorCode.EMAIL_DELIVERY_FAILED
    status = 502


async def send_welcome_email(
    ctx: RequestContext, *, name: str | None = None, force: bool = False
) -> tuple[EmailDelivery, bool]:
    """(delivery, sent now). Without force, a second call sends nothing and returns the first delivery."""
    settings = ctx.settings
    if not settings.smtp_host or not settings.smtp_from:
        raise ServiceUnavailable("Email is not configured (RUNPLANE_SMTP_HOST and RUNPLANE_SMTP_FROM)")
    if not isinstance(force, bool):
        raise InvalidInput("force must be a boolean", field="force")
    display = clean_text(name, "name", max_length=MAX_NAME, required=False)
    user = await User.get(id=ctx.user_id)
    if not user.email:
        raise InvalidInput("Your account has no email address", field="email")
    delivery, claimed = await _claim(user, force=force)
    if not claimed:
        return delivery, False
    message = welcome_message(settings, user.email, display or user.display_name or "")
    try:
        await asyncio.to_thread(deliver, settings, message)
    except (OSError, smtplib.SMTPException) as exc:
        await _release(delivery)
        raise EmailDeliveryFailed(f"The SMTP server did not take the email: {type(exc).__name__}") from None
    delivery.status, delivery.sent_at, delivery.send_count = "sent", now(), delivery.send_count + 1
    await delivery.save()
    return delivery, True


async def _claim(user: User, *, force: bool) -> tuple[EmailDelivery, bool]:
    """The row is the lock: whoever creates it (or, forced, re-marks it) sends; concurrent callers do not."""
    try:
        row = await EmailDelivery.create(
            user_id=user.id, kind=WELCOME, recipient=user.email, status=EmailStatus.SENDING
        )
        return row, True
    except IntegrityError:
        pass
    row = await EmailDelivery.get(user_id=user.id, kind=WELCOME)
    if not force:
        return row, False
    updated = await EmailDelivery.filter(id=row.id, status=EmailStatus.SENT).update(
        status=EmailStatus.SENDING, recipient=user.email
    )
    await row.refresh_from_db()
    return row, updated == 1


async def _release(delivery: EmailDelivery) -> None:
    if delivery.send_count == 0:
        await delivery.delete()
    else:
        await EmailDelivery.filter(id=delivery.id).update(status=EmailStatus.SENT)


def welcome_message(settings: Settings, recipient: str, name: str) -> EmailMessage:
    message = EmailMessage()
    message["From"] = settings.smtp_from
    message["To"] = formataddr((name, recipient)) if name else recipient
    message["Subject"] = "Welcome to runplane"
    message["Message-ID"] = make_msgid(domain="runplane")
    greeting = f"Hi {name}," if name else "Hi,"
    message.set_content(
        f"{greeting}\n\nwelcome to runplane: create a project, talk to the agent, and deploy what it builds.\n"
    )
    return message


def deliver(settings: Settings, message: EmailMessage) -> None:
    """Blocking: run in a thread."""
    assert settings.smtp_host
    timeout = settings.smtp_timeout_seconds
    if settings.smtp_security == "ssl":
        client: smtplib.SMTP = smtplib.SMTP_SSL(
            settings.smtp_host, settings.smtp_port, timeout=timeout, context=ssl.create_default_context()
        )
    else:
        client = smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=timeout)
    with client:
        client.ehlo()
        if settings.smtp_security == "starttls":
            client.starttls(context=ssl.create_default_context())
            client.ehlo()
        if settings.smtp_username:
            client.login(settings.smtp_username, settings.smtp_password or "")
        client.send_message(message)
