"""SSH connections kept open between host scripts, for the length of a ``with
keep_connections():`` block.

A window run talks to each host several times (the peers' health before every batch,
then the host's snapshot and precheck, drain, install, gate and after-snapshot). Each
of those is a separate host script; without this module each one opens its own SSH
connection (TCP, key exchange, authentication, host key check). Inside the block a
host's first script connects and the later ones open a new session on the same
connection, as Ansible's ControlPersist does.

Connections are bound to an event loop, so the block runs one loop in its own thread
and every host script of the process goes through it (:func:`run_sync`); outside a
block each call runs in a fresh loop, as before. The connection is verified once,
when it is made (the same pinned ``known_hosts`` check). A connection that is gone (the
host rebooted, the server dropped it) is replaced, but only when the session could not
even be opened: a script that started is never sent twice. Kept connections send SSH
keepalives, so a host that vanished without closing its end is noticed (and the next
script connects again) instead of waiting on TCP. A script that fails or runs too long
closes its connection, as it did before.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Coroutine, Hashable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import asyncssh

T = TypeVar("T")

#: asyncssh raises this (and only this) when the session never opened: the connection
#: was closed already, closed before the server confirmed the channel, or the server
#: refused it. Nothing ran: safe to retry on a new connection. A connection lost after
#: the channel opened may have started the script, so it is never retried.
NOT_OPENED = asyncssh.ChannelOpenError


async def start_process(
    conn: asyncssh.SSHClientConnection, command: str, stdin: str
) -> asyncssh.SSHClientProcess[Any]:
    """``command`` in a new session, with ``stdin`` written and closed.

    A command may exit without reading its stdin (``sudo -n`` refusing at once), and
    the server may close the session before the script is written (seen on a busy
    machine: asyncssh's ``create_process(input=...)`` then raises BrokenPipeError,
    "Channel not open for sending"). That exit status and stderr are the answer, not
    a lost connection, so the write is given up and the process is waited for.

    Raises:
        asyncssh.ChannelOpenError: the session never opened (nothing ran).
    """
    process = await conn.create_process(command)
    try:
        process.stdin.write(stdin)
        process.stdin.write_eof()
    except BrokenPipeError:
        pass  # the command is done with its stdin: its exit status says the rest
    return process


async def run_process(
    conn: asyncssh.SSHClientConnection, command: str, stdin: str
) -> asyncssh.SSHCompletedProcess:
    """:func:`start_process`, then its exit status and output (``conn.run`` with
    ``input=``, minus the BrokenPipeError)."""
    process = await start_process(conn, command, stdin)
    return await process.wait(check=False)


class KeptConnections:
    """One connection per key, on an event loop of its own (a daemon thread)."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="vcops-ssh-kept", daemon=True
        )
        self.thread.start()
        self.connections: dict[Hashable, asyncssh.SSHClientConnection] = {}
        self.locks: dict[Hashable, asyncio.Lock] = {}
        self.opened = 0  # connections made, for the tests and the bench

    def run(self, work: Coroutine[Any, Any, T]) -> T:
        if threading.current_thread() is self.thread:
            work.close()
            raise RuntimeError("a host script cannot wait for another from inside the loop")
        return asyncio.run_coroutine_threadsafe(work, self.loop).result()

    async def _connection(
        self, key: Hashable, connect: Callable[[], Awaitable[asyncssh.SSHClientConnection]]
    ) -> asyncssh.SSHClientConnection:
        lock = self.locks.setdefault(key, asyncio.Lock())
        async with lock:
            conn = self.connections.get(key)
            if conn is None or conn.is_closed():
                conn = await connect()
                self.connections[key] = conn
                self.opened += 1
            return conn

    def _drop(self, key: Hashable, conn: asyncssh.SSHClientConnection) -> None:
        if self.connections.get(key) is conn:
            del self.connections[key]
        conn.close()

    async def run_command(
        self,
        key: Hashable,
        connect: Callable[[], Awaitable[asyncssh.SSHClientConnection]],
        command: str,
        stdin: str,
        timeout: float,
    ) -> asyncssh.SSHCompletedProcess:
        """``command`` with ``stdin`` in a new session on ``key``'s connection (made by
        ``connect`` when there is none, or again once when the kept one is gone)."""
        for attempt in (1, 2):
            conn = await self._connection(key, connect)
            try:
                process = await start_process(conn, command, stdin)
            except NOT_OPENED:
                self._drop(key, conn)
                if attempt == 2:
                    raise
                continue
            try:
                return await asyncio.wait_for(process.wait(check=False), timeout=timeout)
            except BaseException:
                self._drop(key, conn)  # the remote side sees the session end, as before
                raise
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        async def shut() -> None:
            for conn in list(self.connections.values()):
                conn.close()
            for conn in list(self.connections.values()):
                await asyncio.wait_for(conn.wait_closed(), timeout=5)
            self.connections.clear()

        try:
            self.run(shut())
        except (TimeoutError, asyncssh.Error, OSError):
            pass
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
            self.loop.close()


class _Block:
    """The process's one :func:`keep_connections` block, when one is open."""

    lock = threading.Lock()
    kept: KeptConnections | None = None


def current() -> KeptConnections | None:
    """The kept connections of the enclosing :func:`keep_connections` block, if any."""
    return _Block.kept


@contextmanager
def keep_connections() -> Iterator[KeptConnections]:
    """Keep each host's SSH connection open for the block (the outer block's, when
    nested); every connection is closed when the outermost block ends."""
    with _Block.lock:
        outer = _Block.kept
        kept = outer or KeptConnections()
        _Block.kept = kept
    if outer is not None:
        yield outer
        return
    try:
        yield kept
    finally:
        with _Block.lock:
            _Block.kept = None
        kept.close()


def run_sync(work: Coroutine[Any, Any, T]) -> T:
    """Run host-script coroutine ``work`` to its end: on the kept connections' loop
    inside a :func:`keep_connections` block, else in a fresh event loop."""
    kept = _Block.kept
    return kept.run(work) if kept is not None else asyncio.run(work)
