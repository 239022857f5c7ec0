"""Re-encrypting secrets at rest with the current key (`runplane rotate-encryption-key`).

Every encrypted column is listed in ENCRYPTED_COLUMNS with the associated data its values were sealed with:
users' own model keys (BYOK) and integration profiles' MCP URLs (runplane/resolvers/mcp_urls.py: a credential to
the user's connected tools). The integrations' own credentials (OAuth tokens, connected accounts) stay with
Composio, and runplane stores no git credentials: projects' files live in their sandboxes. A new encrypted column
registers here to be rotated with the rest.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.models import Model

from runplane.billing.crypto import DecryptionFailed, SecretBox, is_sealed, secret_box
from runplane.billing.model_keys import associated_data
from runplane.models import IntegrationProfile, UserModelKey
from runplane.resolvers import mcp_urls
from runplane.resolvers.context import RequestContext

log = logging.getLogger("runplane.encryption")
BATCH = 200


M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class EncryptedColumn(Generic[M]):
    model: type[M]
    column: str
    associated: Callable[[M], str]  # the associated data the row's value is sealed with
    # Values stored before the column was sealed: rotation seals them (null values are left alone).
    plaintext_before: bool = False


def _model_key_owner(row: UserModelKey) -> str:
    return associated_data(row.user_id)


def _mcp_url_owner(row: IntegrationProfile) -> str:
    return mcp_urls.associated_data(row.owner_id)


ENCRYPTED_COLUMNS: list[EncryptedColumn[Any]] = [
    EncryptedColumn(UserModelKey, "ciphertext", _model_key_owner),
    EncryptedColumn(IntegrationProfile, "mcp_url", _mcp_url_owner, plaintext_before=True),
]


@dataclass
class RotationReport:
    reencrypted: int = 0
    current: int = 0  # already sealed with the current key
    sealed: int = 0  # stored in plain text before their column was sealed: sealed now
    failed: int = 0  # no key of the ring opens them: they stay as they are (and are logged)


async def rotate_encryption_key(ctx: RequestContext) -> RotationReport:
    """Seal every stored secret with the current key. Safe to run again, and beside running servers: a row
    changed meanwhile is left to its writer (the update only applies while the old ciphertext is still there)."""
    box = secret_box(ctx.settings)
    report = RotationReport()
    for column in ENCRYPTED_COLUMNS:
        await _rotate_column(box, column, report)
    return report


async def _rotate_column(box: SecretBox, column: EncryptedColumn[M], report: RotationReport) -> None:
    last: uuid.UUID | None = None
    while True:
        query = column.model.filter(**{f"{column.column}__isnull": False}).order_by("id").limit(BATCH)
        rows = await (query.filter(id__gt=last) if last is not None else query)
        for row in rows:
            await _rotate_row(box, column, row, report)
        if len(rows) < BATCH:
            return
        last = rows[-1].pk


async def _rotate_row(box: SecretBox, column: EncryptedColumn[M], row: M, report: RotationReport) -> None:
    stored: str = getattr(row, column.column)
    if box.is_current(stored):
        report.current += 1
        return
    associated = column.associated(row)
    if column.plaintext_before and not is_sealed(stored):
        await _replace(column, row, stored, box.encrypt(stored, associated))
        report.sealed += 1
        return
    try:
        plaintext = box.decrypt(stored, associated)
    except DecryptionFailed as error:
        log.warning("%s %s: %s", column.model.__name__, row.pk, error)
        report.failed += 1
        return
    await _replace(column, row, stored, box.encrypt(plaintext, associated))
    report.reencrypted += 1


async def _replace(column: EncryptedColumn[M], row: M, stored: str, sealed: str) -> None:
    """Only while the row still holds what was read: a value its writer changed meanwhile is the writer's."""
    await column.model.filter(pk=row.pk, **{column.column: stored}).update(**{column.column: sealed})
