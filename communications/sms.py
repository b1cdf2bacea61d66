"""Pluggable SMS backends, chosen by settings.CIM_SMS_BACKEND (a dotted path).

A backend has `send(*, to, body, message_id) -> None` and raises SmsError
when the message was not accepted. Production plugs in a provider's client;
locally messages go to files or the console, and tests use the in-memory
outbox.
"""

from __future__ import annotations

import json
import sys

from django.conf import settings
from django.utils import timezone
from django.utils.module_loading import import_string

outbox: list[dict] = []


class SmsError(Exception):
    pass


class LocmemBackend:
    def send(self, *, to: str, body: str, message_id: str) -> None:
        outbox.append({"to": to, "body": body, "message_id": message_id})


class ConsoleBackend:
    def send(self, *, to: str, body: str, message_id: str) -> None:
        sys.stdout.write(f"SMS to {to} ({message_id}):\n{body}\n")


class FileBackend:
    """One JSON line per SMS in CIM_SMS_FILE_PATH/<date>.jsonl."""

    def send(self, *, to: str, body: str, message_id: str) -> None:
        folder = settings.CIM_SMS_FILE_PATH
        folder.mkdir(parents=True, exist_ok=True)
        line = {"to": to, "body": body, "message_id": message_id, "at": timezone.now().isoformat()}
        with open(folder / f"{timezone.localdate():%Y-%m-%d}.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps(line) + "\n")


def get_backend():
    return import_string(settings.CIM_SMS_BACKEND)()
