"""Named locks between vcops processes: one window runner, one run of a schedule, one
audit append at a time.

One abstraction, two mechanisms, chosen by the store:

- **PostgreSQL**: a session-level advisory lock (``pg_try_advisory_lock`` /
  ``pg_advisory_lock``) held on a connection of its own. It works across machines (two
  controllers sharing one database), and the server releases it when the holder's
  connection dies, so a crashed controller never leaves a stale lock. The holder is
  named through the connection's ``application_name``, read back from ``pg_locks``.
- **SQLite**: ``fcntl.flock`` on ``<state dir>/locks/<name>.lock`` (the database is a
  local file, so its lockers are local processes); the holder is written into the file.

Example::

    with hold_lock(engine, lock_dir, "window-runner"):      # raises LockHeld when taken
        ...
    with hold_lock(engine, lock_dir, "audit", wait=True):   # queues behind the holder
        ...
"""

from __future__ import annotations

import fcntl
import os
import socket
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from vcops.errors import LockHeld, StoreError

#: First key of every vcops advisory lock (the second is a hash of the lock's name).
ADVISORY_NAMESPACE = 0x7C0B5


def holder_label() -> str:
    """Who holds a lock: ``pid 1234 on ctl1``."""
    return f"pid {os.getpid()} on {socket.gethostname()}"


def advisory_key(name: str) -> int:
    """The second advisory-lock key of ``name`` (a non-negative 31-bit CRC)."""
    return zlib.crc32(name.encode()) & 0x7FFFFFFF


@contextmanager
def hold_lock(
    engine: Engine, lock_dir: Path | None, name: str, *, wait: bool = False
) -> Iterator[None]:
    """Hold the lock ``name`` for the ``with`` block.

    Raises:
        LockHeld: ``wait`` is false and another process holds it (the holder is named).
        StoreError: the lock cannot be taken (database down, state dir not writable).
    """
    if engine.dialect.name == "postgresql":
        with _advisory(engine, name, wait=wait):
            yield
        return
    if lock_dir is None:
        raise StoreError(f"lock {name}: no state directory to keep lock files in")
    with _flock(lock_dir, name, wait=wait):
        yield


@contextmanager
def _flock(lock_dir: Path, name: str, *, wait: bool) -> Iterator[None]:
    try:
        lock_dir.mkdir(parents=True, exist_ok=True)
        handle = open(lock_dir / f"{name}.lock", "a+")  # noqa: SIM115 - closed below
    except OSError as exc:
        raise StoreError(f"{lock_dir}: cannot create the lock file for {name}: {exc}") from exc
    with handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            raise LockHeld(name, handle.read(200).strip() or "?") from None
        handle.seek(0)
        handle.truncate()
        handle.write(holder_label())
        handle.flush()
        yield


def _reason(exc: SQLAlchemyError) -> str:
    """The driver's message, first line only (psycopg's never holds the password)."""
    message = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    return f"{exc.__class__.__name__}: {message[0][:300] if message else ''}"


def _holder(conn: Connection, key: int) -> str:
    row = conn.execute(
        text(
            "SELECT a.application_name, a.client_addr FROM pg_locks l "
            "JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted "
            "AND l.classid = CAST(:ns AS oid) AND l.objid = CAST(:key AS oid) "
            "AND l.objsubid = 2 LIMIT 1"
        ),
        {"ns": ADVISORY_NAMESPACE, "key": key},
    ).first()
    if row is None:
        return "?"
    label = str(row[0] or "").removeprefix("vcops ")
    return label or f"a session from {row[1] or 'the local socket'}"


@contextmanager
def _advisory(engine: Engine, name: str, *, wait: bool) -> Iterator[None]:
    key = advisory_key(name)
    params = {"ns": ADVISORY_NAMESPACE, "key": key}
    try:
        conn = engine.connect().execution_options(isolation_level="AUTOCOMMIT")
    except SQLAlchemyError as exc:
        raise StoreError(f"lock {name}: cannot reach the database: {_reason(exc)}") from exc
    with conn:
        try:
            conn.execute(
                text("SELECT set_config('application_name', :label, false)"),
                {"label": f"vcops {holder_label()}"[:63]},
            )
            if wait:
                conn.execute(text("SELECT pg_advisory_lock(:ns, :key)"), params)
            elif not conn.execute(text("SELECT pg_try_advisory_lock(:ns, :key)"), params).scalar():
                raise LockHeld(name, _holder(conn, key))
        except SQLAlchemyError as exc:
            raise StoreError(f"lock {name}: {_reason(exc)}") from exc
        try:
            yield
        finally:
            try:
                conn.execute(text("SELECT pg_advisory_unlock(:ns, :key)"), params)
            except SQLAlchemyError:
                conn.invalidate()  # the server drops the lock with the connection
