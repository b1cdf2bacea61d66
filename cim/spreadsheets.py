"""Exports that are safe to open in a spreadsheet.

A cell starting with = + - @ or a tab/carriage return is run as a formula by
Excel and LibreOffice (CSV injection). Every export, ours and the admin's,
passes its cells through `neutralise`, which prefixes such text with a quote.
"""

from __future__ import annotations

from collections.abc import Iterable

FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralise_cell(value):
    if isinstance(value, str) and value.startswith(FORMULA_STARTS):
        return "'" + value
    return value


def neutralise(values: Iterable) -> list:
    return [neutralise_cell(value) for value in values]
