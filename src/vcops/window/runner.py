"""``vcops window run``: run an approved window batch by batch (the I/O around
:func:`vcops.window.progress.next_step`).

Per batch, each host runs its phases in its own thread, all hosts of the batch at
once (none waits for the slowest at each phase); each host's record is saved after
every phase, through one lock (:attr:`~vcops.window.run_base.RunnerBase.writes`), so a
runner killed at any point resumes where it stopped:

1. **snapshot** before the first change (kept across a resume: a rollback returns the
   host to what it was before the window touched it) and, in the same script over the
   same SSH session, the
2. **precheck**: running and failed units, the boot id, active calls; then SIP
   OPTIONS from the controller;
3. **drain**: wait, up to ``window_drain_timeout``, for calls in progress to end or
   move (the precheck's count is the first reading); a host still carrying calls is
   skipped (left unpatched), never cut off;
4. **change**: install exactly the approved versions (``apt-get install pkg=version``;
   anything else pending is reported, not installed), or apply the baseline;
5. **restart** the running units of the upgraded packages (in the install's session);
6. **reboot** when the policy says so (``always``, or ``if-needed`` and required);
7. **gate**: SSH answers, the role's units that ran before run again, no unit newly
   failed, SIP OPTIONS answered again if they were before (retried ``window_gate_wait``);
   its first reading comes from the session that takes the
8. **snapshot** after, incremental (the host compares its files with the checksums of
   the before-snapshot's collection and sends only those that changed; a host that
   passed the gate only after settling gets a fresh one), and the host is done;
9. a failed gate **rolls back** the host's configs from its snapshot, restarts what ran
   before, checks again and counts the host as an error.

Before each batch the other members of each redundancy group are checked: a group
with a member unreachable or with a failed unit does not start another member.

A server of a site listed in ``[workers] sites`` has its host steps, snapshots,
baseline and rollback run by that site's workers (:mod:`vcops.window.sites`); the
runner, its saved progress and its bookkeeping stay here either way.

The loop and the batch are here; the phases live in their own modules, mixed into
:class:`WindowRunner`: :mod:`~vcops.window.run_health` (peers, snapshot + precheck,
drain), :mod:`~vcops.window.run_change` (install or baseline, restart, reboot),
:mod:`~vcops.window.run_gate` (gate, rollback), over the bookkeeping of
:mod:`~vcops.window.run_base`.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime
from typing import Literal

from vcops.connectors.kept import keep_connections
from vcops.connectors.ssh import SshTarget
from vcops.errors import ApprovalError, LockHeld, WindowError
from vcops.policy import lease_window
from vcops.store import Store
from vcops.window import remote
from vcops.window.board import tally
from vcops.window.devices import run_device
from vcops.window.model import Window, plan_hash
from vcops.window.progress import HostRecord, next_step
from vcops.window.rules import window_terms
from vcops.window.run_base import (
    BatchHost,
    Notify,
    RunContext,
    RunReport,
    iso_seconds,
)
from vcops.window.run_change import ChangePhases
from vcops.window.run_health import HealthPhases
from vcops.window.store import (
    approvals_of,
    list_windows,
    load_progress,
    load_window,
    save_progress,
    set_state,
)

__all__ = [
    "Notify",
    "RunContext",
    "RunReport",
    "WindowRunner",
    "due_windows",
    "run_window",
    "runner_lock",
]


@contextlib.contextmanager
def runner_lock(store: Store) -> Iterator[None]:
    """One window runner at a time per database (an advisory lock on PostgreSQL, so two
    controllers sharing one database never run a window twice).

    Raises:
        WindowError: another runner holds the lock (its pid and machine are named).
    """
    try:
        with store.lock("window-runner"):
            yield
    except LockHeld as exc:
        raise WindowError(
            f"another window runner is running ({exc.holder}); it finishes its window "
            "first, then run this again"
        ) from None


class WindowRunner(HealthPhases, ChangePhases):
    """Runs one window to its end (finished or halted), resuming from saved progress."""

    def run(self) -> RunReport:
        """Run the window to its end (or its halt); each host's SSH connection is made
        once and kept for the run (:mod:`vcops.connectors.kept`)."""
        with keep_connections():
            return self._run()

    def _run(self) -> RunReport:
        first = self.window.state != "running"
        self.window = set_state(self.ctx.store, self.window, "running")
        self.audit(
            "window.run.start" if first else "window.run.resume",
            self.window.id,
            {"plan_hash": self.window.plan_hash, "pid": os.getpid()},
        )
        if first and self.ctx.notify is not None:
            self.ctx.notify("started", self.window, self.records(), "")
        while True:
            started = time.monotonic()
            progress = load_progress(self.ctx.store, self.window.id)
            unhealthy = self.unhealthy_groups(progress)
            step = next_step(self.window, progress, self.ctx.now(), frozenset(unhealthy))
            if step.action == "start":
                batch = max((r.batch for r in progress.values()), default=0) + 1
                self.run_batch(batch, step.hosts, peers=time.monotonic() - started)
                continue
            return self.close(step.action, step.reason, step.hosts)

    def close(self, action: str, reason: str, remaining: list[str]) -> RunReport:
        progress = load_progress(self.ctx.store, self.window.id)
        for target in remaining:
            record = progress.get(target, HostRecord(target=target))
            was_running = record.state == "running"
            record.state = "skipped"
            record.summary = (
                f"{reason}; it was interrupted mid-change at step {record.step!r}: check it "
                f"(vcops snapshot diff {target})"
                if was_running
                else reason
            )
            record.finished_at = iso_seconds(self.ctx.now())
            save_progress(self.ctx.store, self.window.id, record)
        state: Literal["finished", "halted"] = (
            "finished" if action in {"finish", "cutoff"} else "halted"
        )
        self.window = set_state(self.ctx.store, self.window, state)
        records = self.records()
        counts = {s: sum(r.state == s for r in records) for s in sorted({r.state for r in records})}
        self.audit(
            f"window.run.{'finish' if state == 'finished' else 'halt'}",
            self.window.id,
            {"reason": reason, "action": action, "counts": counts},
        )
        if self.ctx.notify is not None:
            self.ctx.notify(state, self.window, records, reason)
        return RunReport(window=self.window.id, state=state, reason=reason, hosts=records)

    def run_batch(self, batch: int, targets: list[str], peers: float = 0.0) -> None:
        """Run one batch: its hosts at once, each through its phases (:meth:`run_host`).
        The seconds spent are audited as ``window.batch.done``: ``peers`` (the redundancy
        check before the batch), ``start``, ``hosts`` (the batch's hosts, start to end)
        and per phase the slowest host's."""
        seconds = {"peers": round(peers, 3)}
        started = time.monotonic()
        self.say(f"batch {batch}: {', '.join(targets)}")
        self.audit("window.batch.start", self.window.id, {"batch": batch, "hosts": targets})
        progress = load_progress(self.ctx.store, self.window.id)
        plans = {h.target: h for h in self.window.plan.hosts}
        hosts: list[BatchHost] = []
        for name in targets:
            record = progress.get(name, HostRecord(target=name))
            record.state, record.batch = "running", batch
            record.attempts += 1
            record.started_at = record.started_at or iso_seconds(self.ctx.now())
            device = next((d for d in self.inv.devices if d.name == name), None)
            if device is not None:
                self.say(f"  {name}: device: snapshot, push with its safety net, verify")
                run_device(
                    self.inv,
                    self.ctx.snapshots,
                    self.window.id,
                    device,
                    plans[name],
                    record,
                    self.ctx.sites,
                )
                record.finished_at = iso_seconds(self.ctx.now())
                save_progress(self.ctx.store, self.window.id, record)
                self.audit(f"window.host.{record.state}", name, {"summary": record.summary})
                self.say(f"  {name}: {record.state}: {record.summary}")
                self.ctx.host_done(name)
                continue
            server = self.server(name)
            if server is None:
                record.state = "failed"
                record.summary = "no longer in the inventory: not touched"
                save_progress(self.ctx.store, self.window.id, record)
                self.audit("window.host.failed", name, {"summary": record.summary})
                self.ctx.host_done(name)
                continue
            host = BatchHost(
                server=server,
                plan=plans[name],
                settings=remote.host_settings(server, dict(self.inv.host_vars(server))),
                record=record,
                target=SshTarget.from_inventory(self.inv, server),
            )
            self.save(host, "start", attempt=record.attempts, batch=batch)
            hosts.append(host)
        seconds["start"] = round(time.monotonic() - started, 3)
        if hosts:
            started = time.monotonic()
            workers = max(1, min(len(hosts), self.ctx.max_parallel))
            with ThreadPoolExecutor(max_workers=workers) as pool:
                timings = list(pool.map(self.run_host, hosts))
            seconds["hosts"] = round(time.monotonic() - started, 3)
            for timing in timings:  # the slowest host of the batch, phase by phase
                for name, spent in timing.items():
                    seconds[name] = max(seconds.get(name, 0.0), spent)
        self.audit("window.batch.done", self.window.id, {"batch": batch, "seconds": seconds})

    def run_host(self, host: BatchHost) -> dict[str, float]:
        """One host's phases in order, in its own thread (the other hosts of the batch
        run theirs at the same time): the seconds each phase took."""
        seconds: dict[str, float] = {}
        for phase in (
            self.snapshot_and_precheck,
            self.drain,
            self.change,
            self.restart,
            self.reboot,
            self.gate_and_rollback,
            self.snapshot_after,
        ):
            if host.record.state != "running":
                break
            started = time.monotonic()
            phase([host])
            seconds[phase.__name__] = round(time.monotonic() - started, 3)
        started = time.monotonic()
        if host.record.state == "running":
            self.finish_host(host, "done", self.done_summary(host))
        seconds["finish"] = round(time.monotonic() - started, 3)
        return seconds


def run_window(ctx: RunContext, window_id: str, *, lock: bool = True) -> RunReport:
    """Run (or resume) one window.

    Raises:
        WindowError: the window may not run now (the reason is audited), or another
            runner holds the lock.
    """
    with runner_lock(ctx.store) if lock else contextlib.nullcontext():
        window = load_window(ctx.store, window_id)
        now = ctx.now()
        if window.state == "running" and now >= window.last_start:
            # resumed past its cutoff: close it out honestly
            return WindowRunner(ctx, window, None).run()
        ok, rejected, quorum = tally(ctx.inventory, window, approvals_of(ctx.store, window.id))
        if not rejected:  # a rejection row deleted from the database is still in the log
            rejected = sum(
                e.target == window.id for e in ctx.store.audit_entries(action="window.reject")
            )
        terms = window_terms(
            window,
            approvals_ok=ok,
            quorum=quorum,
            current_hash=plan_hash(window.plan),
            rejections=rejected,
            freezes=ctx.inventory.freezes,
        )
        try:
            lease = lease_window(terms, now=now)
        except ApprovalError as exc:
            ctx.store.audit("window.run.refused", window.id, {"reason": str(exc)})
            raise WindowError(str(exc)) from None
        return WindowRunner(ctx, window, lease).run()


def due_windows(store: Store, now: datetime) -> tuple[list[Window], list[Window]]:
    """(windows to run now, approved windows whose last start passed without a run)."""
    due, missed = [], []
    for w in list_windows(store):
        if w.state == "running" or (w.state == "approved" and w.start <= now < w.last_start):
            due.append(w)
        elif w.state in {"approved", "pending"} and now >= w.last_start:
            missed.append(w)
    return due, missed
