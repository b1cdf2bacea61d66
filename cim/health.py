"""Is the database answering, and is the broker?"""

from __future__ import annotations

from django.db import connection

from .celery import app


def database_status() -> str:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "ok"


def broker_status(timeout: float = 2.0) -> str:
    try:
        with app.connection_for_write() as conn:
            conn.ensure_connection(max_retries=1, timeout=timeout)
            # A Redis connection is lazy; a round trip proves the server answers.
            conn.default_channel  # noqa: B018
    except Exception as error:
        return f"error: {type(error).__name__}"
    return "ok"
