"""Forked worker processes that share a job with the process that starts them
(a duplicate scan's chunks, a bulk send's chunks, half of an import's file
check) when run from a command or a benchmark rather than from Celery workers."""

from __future__ import annotations

import json
import multiprocessing
import os
import signal
from concurrent.futures import ProcessPoolExecutor

from django.db import connections


def forget_inherited_connections() -> None:
    # A child must never talk over a socket it inherited: two processes reading
    # one connection's replies get each other's rows. Whatever the parent still
    # had open (another thread's connection, one kept by a test harness) is
    # dropped unclosed here; psycopg does not close a connection in a process
    # other than the one that opened it, so the parent's session lives on.
    for connection in connections.all(initialized_only=True):
        connection.connection = None
        connection.in_atomic_block = False
        connection.savepoint_ids = []
        connection.needs_rollback = False
        connection.closed_in_transaction = False


def fork_pool(workers: int) -> ProcessPoolExecutor:
    """A pool of `workers` forked processes, each opening its own database
    connections."""
    connections.close_all()
    return ProcessPoolExecutor(
        workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=forget_inherited_connections,
    )


def in_forked_process(function, *args):
    """Start function(*args) in a forked process; what it returns (JSON), once
    the returned callable is called, or None if the process failed. Called with
    cancel=True, the process is stopped instead.

    For work that needs no database (reading a file), where fork_pool would not
    do: fork_pool closes the caller's connections, even inside its transaction,
    and a pool cannot start in a Celery worker's daemonic process. The child
    touches no connection of the parent's, and leaves with os._exit, which
    closes none of them either."""
    readable, writable = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child's coverage is not collected
        status = 1
        try:
            os.close(readable)
            with os.fdopen(writable, "w") as out:
                json.dump(function(*args), out)
            status = 0
        finally:
            os._exit(status)
    os.close(writable)

    def outcome(*, cancel: bool = False):
        if cancel:
            os.kill(pid, signal.SIGKILL)
        with os.fdopen(readable) as received:
            text = "" if cancel else received.read()
        _, status = os.waitpid(pid, 0)
        if cancel or status != 0 or not text:
            return None
        return json.loads(text)

    return outcome
