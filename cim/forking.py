"""Forked worker processes that share a job with the process that starts them
(a duplicate scan's chunks, a bulk send's chunks) when run from a command or a
benchmark rather than from Celery workers."""

from __future__ import annotations

import multiprocessing
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
