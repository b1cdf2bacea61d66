"""Model fields shared by several apps."""

from __future__ import annotations

from django.db import models


class CodePointCharField(models.CharField):
    """A CharField that PostgreSQL compares and orders byte by byte (COLLATE "C").

    For values whose order is by code point anyway: the folded words of name
    search, normalised identifiers, and display names (the A-to-Z list). A
    locale's collation (even C.UTF-8, which PostgreSQL before 17 does not take
    for "C") compares every pair through strcoll, which is most of the cost of
    the random inserts into their B-tree indexes: measured on a million-row
    import, 7 us of PostgreSQL's time a row (55 to 48). Under "C" a word prefix
    "smi" is exactly the range ["smi", "smj"), whatever the database's default
    collation, and the order of a list does not depend on how the server was
    initialised. SQLite compares bytes already (BINARY), so nothing changes there.
    """

    def db_parameters(self, connection):
        parameters = super().db_parameters(connection)
        if connection.vendor == "postgresql" and not self.db_collation:
            parameters["collation"] = "C"
        return parameters
