"""Celery on Redis: the plumbing between the controller and its site workers.

- one queue per site, ``vcops.site.<NAME>``; a worker consumes only its site's queue;
- JSON only (``accept_content=["json"]``): no pickle, and nothing secret is ever put on
  the broker (payloads are target names, a time, the inventory's fingerprint and
  package sightings; results are findings);
- ``acks_late`` with ``reject_on_worker_lost``: a task whose worker dies is redelivered
  (to another worker of the site) once the broker's visibility timeout passes;
- a per-host Redis lock (``redis-py``'s ``Lock``) so a redelivered task never runs on a
  host while the first attempt is still there;
- each worker writes a heartbeat (``vcops:worker:<site>:<node>``, expiring) that
  ``vcops worker status`` reads and the controller uses to tell a site has workers.

Celery and redis are the ``vcops[distributed]`` extra; they load only when used.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from pydantic import BaseModel

from vcops.errors import BrokerError

if TYPE_CHECKING:
    from celery import Celery
    from redis import Redis

QUEUE_PREFIX = "vcops.site."
HEARTBEAT_PREFIX = "vcops:worker:"
HEARTBEAT_EVERY = 5.0
HEARTBEAT_TTL = 20


def site_queue(site: str) -> str:
    return QUEUE_PREFIX + site


def redact(url: str) -> str:
    """A broker URL safe to print (password masked)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@")
        return urlunsplit(parts._replace(netloc=netloc))
    return url


def _redis(url: str, timeout: float = 3.0) -> Redis:
    try:
        from redis import Redis
    except ModuleNotFoundError as exc:
        raise BrokerError(
            "site workers need the redis client: pip install 'vcops[distributed]'"
        ) from exc
    return Redis.from_url(url, socket_connect_timeout=timeout, socket_timeout=timeout)


def check_broker(url: str) -> None:
    """Raise BrokerError (one line) unless the broker answers within a few seconds."""
    client = _redis(url)  # first: it says which extra to install when redis is missing
    from redis.exceptions import RedisError

    try:
        client.ping()
    except RedisError as exc:
        raise BrokerError(f"broker {redact(url)} is not answering: {exc}") from None


def make_app(url: str, *, visibility_timeout: int = 600) -> Celery:
    """The Celery app both sides use (the task is registered by :mod:`vcops.workers`)."""
    try:
        from celery import Celery
    except ModuleNotFoundError as exc:
        raise BrokerError("site workers need Celery: pip install 'vcops[distributed]'") from exc
    app = Celery("vcops", broker=url, backend=url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        result_accept_content=["json"],
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        worker_prefetch_multiplier=1,
        task_track_started=True,
        result_expires=3600,
        broker_connection_retry_on_startup=False,
        broker_connection_timeout=3,
        broker_transport_options={
            "visibility_timeout": visibility_timeout,
            # look for a dead worker's unacknowledged tasks every few seconds (kombu's
            # default scan runs only every 10th tick of 10 s)
            "unacked_restore_interval": max(1, min(10, visibility_timeout // 3)),
            "unacked_restore_throttle": 1,
        },
        result_backend_transport_options={"visibility_timeout": visibility_timeout},
        task_publish_retry=False,
        worker_hijack_root_logger=False,
        worker_send_task_events=False,
        task_default_queue=site_queue("default"),
    )
    return app


_APPS: dict[tuple[str, int], Celery] = {}
_APPS_LOCK = threading.Lock()


def shared_app(url: str, *, visibility_timeout: int = 600) -> Celery:
    """One sending app per broker for the whole process: a controller sends many tasks
    (a window run one per host step, a schedule daemon a scan after another), and an
    app per call left its connections open (about one file descriptor per task)."""
    with _APPS_LOCK:
        app = _APPS.get((url, visibility_timeout))
        if app is None:
            app = make_app(url, visibility_timeout=visibility_timeout)
            _APPS[(url, visibility_timeout)] = app
        return app


@contextmanager
def host_locks(
    url: str, names: list[str], ttl: int, *, renew: bool = False, wait: float = 0.0
) -> Iterator[tuple[list[str], list[str]]]:
    """Take a per-host lock for each name; yield (held, busy).

    ``wait``: seconds to wait for a lock another task holds (0: busy at once; a window
    step waits out the step an interrupted runner left running on its host).
    ``renew``: keep the locks while the block runs, however long (an apply may outlast
    ``ttl``), by resetting their expiry every ``ttl / 3`` seconds; a worker that dies
    stops renewing, so its locks still expire ``ttl`` seconds later."""
    client = _redis(url)
    held, busy, locks = [], [], []
    deadline = time.monotonic() + wait
    for name in names:
        # not thread-local: the renewing thread must see the token this thread took
        lock = client.lock(f"vcops:host:{name}", timeout=ttl, blocking=False, thread_local=False)
        left = deadline - time.monotonic()
        if lock.acquire(blocking=left > 0, blocking_timeout=max(left, 0.01)):
            held.append(name)
            locks.append(lock)
        else:
            busy.append(name)
    stop = threading.Event()
    if renew and locks:

        def keep() -> None:
            while not stop.wait(max(1.0, ttl / 3)):
                for lock in locks:
                    with contextlib.suppress(Exception):  # the broker is down: retry later
                        lock.reacquire()

        threading.Thread(target=keep, name="vcops-host-locks", daemon=True).start()
    try:
        yield held, busy
    finally:
        stop.set()
        for lock in locks:
            with contextlib.suppress(Exception):  # expired: someone else may hold it now
                lock.release()


class WorkerBeat(BaseModel):
    """One worker's last heartbeat."""

    site: str
    node: str
    pid: int
    concurrency: int
    queue: str
    started: float
    last: float
    alive: bool = True


def start_heartbeat(url: str, site: str, node: str, concurrency: int) -> threading.Event:
    """Write this worker's heartbeat every few seconds until the returned event is set."""
    stop = threading.Event()
    client = _redis(url)
    started = time.time()

    def beat() -> None:
        while not stop.is_set():
            now = time.time()
            beat = WorkerBeat(
                site=site,
                node=node,
                pid=os.getpid(),
                concurrency=concurrency,
                queue=site_queue(site),
                started=started,
                last=now,
            )
            try:
                client.set(
                    f"{HEARTBEAT_PREFIX}{site}:{node}", beat.model_dump_json(), ex=HEARTBEAT_TTL
                )
                client.hset("vcops:workers", f"{site}:{node}", beat.model_dump_json())
            except Exception:  # noqa: S110 - the broker is down: the next beat retries
                pass
            stop.wait(HEARTBEAT_EVERY)

    threading.Thread(target=beat, name="vcops-heartbeat", daemon=True).start()
    return stop


def end_heartbeat(url: str, site: str, node: str) -> None:
    """A worker that stops cleanly is gone at once, not after its heartbeat expires (so
    no task is sent to a queue nobody reads any more)."""
    with contextlib.suppress(Exception):  # the broker is down: the key expires anyway
        _redis(url).delete(f"{HEARTBEAT_PREFIX}{site}:{node}")


def worker_beats(url: str) -> list[WorkerBeat]:
    """Every worker that ever beat, with ``alive`` false once its heartbeat expired."""
    client = _redis(url)
    from redis.exceptions import RedisError

    try:
        live = {k.decode() for k in client.scan_iter(f"{HEARTBEAT_PREFIX}*", count=1000)}
        seen: dict[bytes, bytes] = client.hgetall("vcops:workers")  # type: ignore[assignment]
    except RedisError as exc:
        raise BrokerError(f"broker {redact(url)} is not answering: {exc}") from None
    beats = []
    for key, raw in seen.items():
        try:
            beat = WorkerBeat.model_validate(json.loads(raw))
        except ValueError:
            continue
        beat.alive = f"{HEARTBEAT_PREFIX}{key.decode()}" in live
        beats.append(beat)
    return sorted(beats, key=lambda b: (b.site, b.node))


def node_name(site: str) -> str:
    return f"{site}@{socket.gethostname()}-{os.getpid()}"
