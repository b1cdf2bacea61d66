"""Exports that are safe to open in a spreadsheet.

A cell starting with = + - @ or a tab/carriage return is run as a formula by
Excel and LibreOffice (CSV injection). Every export, ours and the admin's,
passes its cells through `neutralise`, which prefixes such text with a quote.
"""

from __future__ import annotations

import contextlib
import datetime
import os
import re
import secrets
import tempfile
import time
from collections.abc import Iterable
from pathlib import Path

from django.core.exceptions import SuspiciousOperation
from import_export.tmp_storages import TempFolderStorage

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise(values: Iterable) -> list:
    return [neutralise_cell(value) for value in values]


class ConfinedTempFolderStorage(TempFolderStorage):
    """django-import-export's temporary file between the admin's import check and
    its confirmation, confined to the files it wrote itself.

    The confirmation form sends the file's name back in a field, and the stock
    storage opens, imports and then deletes whatever file of the temporary
    folder that field names (another program's, another user's upload). Here
    a name is a random token of this storage; any other name is refused (a 400
    response)."""

    PREFIX = "cim-import-export-"
    # A check is confirmed within minutes; its file holds customers' data.
    ABANDONED_AFTER = datetime.timedelta(days=1)

    def _open(self, mode="r"):
        if self.name:
            return open(self.get_full_path(), mode, encoding=self.encoding)
        self.name = self.PREFIX + secrets.token_hex(16)
        # Written as bytes, as the stock storage's new file is (the upload's own).
        created = os.open(self.get_full_path(), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        return open(created, "wb")

    def get_full_path(self) -> str:
        if not re.fullmatch(rf"{self.PREFIX}[0-9a-f]{{32}}", self.name or ""):
            raise SuspiciousOperation("That is not a file of this import.")
        return os.path.join(tempfile.gettempdir(), self.name)

    @classmethod
    def abandoned_delete(cls, *, now: float | None = None) -> int:
        """Delete the files of checks never confirmed (a confirmed import deletes
        its own) once ABANDONED_AFTER old; the number deleted."""
        cutoff = (time.time() if now is None else now) - cls.ABANDONED_AFTER.total_seconds()
        deleted = 0
        for path in Path(tempfile.gettempdir()).glob(cls.PREFIX + "*"):
            with contextlib.suppress(FileNotFoundError):  # deleted meanwhile
                if path.stat().st_mtime < cutoff:
                    path.unlink()
                    deleted += 1
        return deleted
