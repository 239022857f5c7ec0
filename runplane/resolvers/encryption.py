"""Re-encrypting secrets at rest with the current key (`runplane rotate-encryption-key`).

Every encrypted column is listed in ENCRYPTED_COLUMNS with the associated data its values were sealed with.
Today that is users' own model keys (BYOK); runplane stores no git credentials or integration secrets of its own
(Composio holds those), so a new encrypted column registers here to be rotated with the rest.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from tortoise.models import Model

from runplane.billing.crypto import DecryptionFailed, SecretBox, secret_box
from runplane.billing.model_keys import associated_data
from runplane.models import UserModelKey
from runplane.resolvers.context import RequestContext

log = logging.getLogger("runplane.encryption")
BATCH = 200


M = TypeVar("M", bound=Model)


@dataclass(frozen=True)
class EncryptedColumn(Generic[M]):
    model: type[M]
    column: str
    associated: Callable[[M], str]  # the associated data the row's value is sealed with


def _model_key_owner(row: UserModelKey) -> str:
    return associated_data(row.user_id)


ENCRYPTED_COLUMNS: list[EncryptedColumn[Any]] = [EncryptedColumn(UserModelKey, "ciphertext", _model_key_owner)]


@dataclass
class RotationReport:
    reencrypted: int = 0
    current: int = 0  # already sealed with the current key
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
    last: object = None
    while True:
        query = column.model.all().order_by("id").limit(BATCH)
        rows = await (query.filter(id__gt=last) if last is not None else query)
        for row in rows:
            await _rotate_row(box, column, row, report)
        if len(rows) < BATCH:
            return
        last = rows[-1].pk


async def _rotate_row(box: SecretBox, column: EncryptedColumn[M], row: M, report: RotationReport) -> None:
    sealed: str = getattr(row, column.column)
    if box.is_current(sealed):
        report.current += 1
        return
    associated = column.associated(row)
    try:
        plaintext = box.decrypt(sealed, associated)
    except DecryptionFailed as error:
        log.warning("%s %s: %s", column.model.__name__, row.pk, error)
        report.failed += 1
        return
    resealed = box.encrypt(plaintext, associated)
    await column.model.filter(pk=row.pk, **{column.column: sealed}).update(**{column.column: resealed})
    report.reencrypted += 1
