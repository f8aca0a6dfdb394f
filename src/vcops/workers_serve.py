"""``vcops worker``: one process serving a site's queue with every worker task (the
scan's :func:`vcops.workers.scan_chunk`, the snapshot's
:func:`vcops.workers_snapshot.snapshot_chunk`, the apply's
:func:`vcops.workers_apply.apply_chunk`, the window's
:func:`vcops.workers_window.window_steps` and its rollback's
:func:`vcops.workers_restore.window_restore`)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from vcops import workers_apply, workers_restore, workers_snapshot, workers_window
from vcops.connectors import broker
from vcops.errors import BrokerError
from vcops.workers import TASK, WorkerContext, _Serving, scan_chunk

if TYPE_CHECKING:
    from celery import Celery


def register(app: Celery) -> None:
    """Register the worker tasks on ``app``, acknowledged late (a task whose worker
    dies is redelivered): a redelivered chunk scans or collects again, read-only on
    the hosts, and the controller stores or commits the one answer it reads."""
    app.task(name=TASK, acks_late=True, reject_on_worker_lost=True)(scan_chunk)
    app.task(name=workers_snapshot.TASK, acks_late=True, reject_on_worker_lost=True)(
        workers_snapshot.snapshot_chunk
    )
    # an apply is convergent (the baseline applied again changes nothing more), and
    # the per-host lock, renewed while the engine runs, keeps two attempts off one host
    app.task(name=workers_apply.TASK, acks_late=True, reject_on_worker_lost=True)(
        workers_apply.apply_chunk
    )
    # a window step or rollback runs at most once: its seal expires before the broker
    # would hand a dead worker's copy to another worker (workers_seal.once_ttl), and it
    # waits for the host's lock, so it never overlaps another task on its host; the
    # runner's saved progress decides what runs next
    for name, task in (
        (workers_window.TASK, workers_window.window_steps),
        (workers_restore.TASK, workers_restore.window_restore),
    ):
        app.task(name=name, acks_late=True, reject_on_worker_lost=True)(task)


def serve(ctx: WorkerContext, concurrency: int, visibility_timeout: int) -> None:
    """Run a worker for ``ctx.site`` until it is stopped (the ``vcops worker`` command).

    Raises:
        BrokerError: the broker is down or the client libraries are missing.
    """
    broker.check_broker(ctx.broker_url)
    _Serving.context = ctx
    app = broker.make_app(ctx.broker_url, visibility_timeout=visibility_timeout)
    register(app)
    stop = broker.start_heartbeat(ctx.broker_url, ctx.site, ctx.node, concurrency)
    try:
        app.worker_main(
            [
                "worker",
                "--queues",
                broker.site_queue(ctx.site),
                "--concurrency",
                str(concurrency),
                "--pool",
                "threads",
                "--hostname",
                ctx.node,
                "--loglevel",
                "WARNING",
                "--without-gossip",
                "--without-mingle",
            ]
        )
    except Exception as exc:  # kombu/redis errors when the broker goes away at start
        raise BrokerError(
            f"worker {ctx.node}: broker {broker.redact(ctx.broker_url)}: {exc}"
        ) from None
    finally:
        stop.set()
        broker.end_heartbeat(ctx.broker_url, ctx.site, ctx.node)
