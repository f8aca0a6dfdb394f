"""``vcops window run``: run an approved window batch by batch (the I/O around
:func:`vcops.window.progress.next_step`).

Per batch, every phase runs on all of its hosts in parallel, and each host's record is
saved after every phase, so a runner killed at any point resumes where it stopped:

1. **snapshot** before the first change (kept across a resume: a rollback returns the
   host to what it was before the window touched it) and, in the same script over the
   same SSH session, the
2. **precheck**: running and failed units, the boot id, active calls; then SIP
   OPTIONS from the controller;
3. **drain**: wait, up to ``window_drain_timeout``, for calls in progress to end or
   move; a host still carrying calls is skipped (left unpatched), never cut off;
4. **change**: install exactly the approved versions (``apt-get install pkg=version``;
   anything else pending is reported, not installed), or apply the baseline;
5. **restart** the running units of the upgraded packages;
6. **reboot** when the policy says so (``always``, or ``if-needed`` and required);
7. **gate**: SSH answers, the role's units that ran before run again, no unit newly
   failed, SIP OPTIONS answered again if they were before (retried ``window_gate_wait``);
8. a failed gate **rolls back** the host's configs from its snapshot, restarts what ran
   before, checks again and counts the host as an error;
9. **snapshot** after, and the host is done.

Before each batch the other members of each redundancy group are checked: a group
with a member unreachable or with a failed unit does not start another member.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from vcops.connectors.hosttask import HostRun, Unreadable, read_host, run_tasks
from vcops.connectors.sip import sip_alive
from vcops.connectors.ssh import SshTarget
from vcops.enforce.pyinfra_run import run_pyinfra
from vcops.errors import ApprovalError, LockHeld, VcopsError, WindowError
from vcops.inventory.models import Inventory, Server
from vcops.policy import WindowLease, authorize, lease_window
from vcops.roles import answers_sip
from vcops.snapshot.restore import restore_target
from vcops.snapshot.take import ExtraTasks, SnapshotContext, take_with
from vcops.store import Store
from vcops.window import remote
from vcops.window.board import tally
from vcops.window.model import HostPlan, Window, plan_hash
from vcops.window.progress import HealthBefore, HostRecord, next_step
from vcops.window.rules import window_terms
from vcops.window.store import (
    approvals_of,
    list_windows,
    load_progress,
    load_window,
    progress_of,
    save_progress,
    set_state,
)

SSH_TIMEOUT = 900.0
#: ``notify(event, window, hosts, reason)`` with event started, finished or halted.
Notify = Callable[[Literal["started", "finished", "halted"], Window, list[HostRecord], str], None]


class RunReport(BaseModel):
    window: str
    state: str
    reason: str
    hosts: list[HostRecord]

    @property
    def exit_code(self) -> int:
        """0 when every host is done; 1 when the window halted or a host failed or was
        skipped."""
        ok = self.state == "finished" and all(h.state == "done" for h in self.hosts)
        return 0 if ok else 1


@dataclass
class RunContext:
    inventory: Inventory
    store: Store
    snapshots: SnapshotContext
    state_dir: Path
    now: Callable[[], datetime]
    say: Callable[[str], None] = lambda _m: None
    notify: Notify | None = None
    max_parallel: int = 50
    actor: str = ""


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


@dataclass
class _Host:
    """A host in the batch being run: its plan, settings and what we learned so far."""

    server: Server
    plan: HostPlan
    settings: remote.HostSettings
    record: HostRecord
    target: SshTarget
    units_before: frozenset[str] = frozenset()
    failed_before: frozenset[str] = frozenset()
    boot_before: str = ""
    sip_before: bool = False
    upgraded_units: list[str] = field(default_factory=list)
    reboot_required: bool = False


def _iso(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class WindowRunner:
    """Runs one window to its end (finished or halted), resuming from saved progress."""

    def __init__(self, ctx: RunContext, window: Window, lease: WindowLease | None) -> None:
        """``lease``: the policy gate's lease of this window (None when the run only
        closes a window past its cutoff: then no host may be changed)."""
        self.ctx = ctx
        self.window = window
        self.lease = lease
        self.inv = ctx.inventory

    def say(self, message: str) -> None:
        """Tell the operator; a failure to print never stops a step (or a rollback)."""
        try:
            self.ctx.say(message)
        except Exception as exc:  # output is best effort; the work is not
            with contextlib.suppress(Exception):
                self.audit("window.say.failed", self.window.id, {"error": repr(exc)[:200]})

    # -- bookkeeping ------------------------------------------------------------------

    def audit(self, action: str, target: str, detail: dict[str, object]) -> None:
        self.ctx.store.audit(action, target, {"window": self.window.id, **detail})

    def save(self, host: _Host, step: str, **detail: object) -> None:
        host.record.step = step
        save_progress(self.ctx.store, self.window.id, host.record)
        self.audit(f"window.host.{step}", host.record.target, detail)

    def finish_host(self, host: _Host, state: str, summary: str) -> None:
        host.record.state = state  # type: ignore[assignment]
        host.record.summary = summary
        host.record.finished_at = _iso(self.ctx.now())
        self.save(host, state, summary=summary)
        self.say(f"  {host.record.target}: {state}: {summary}")

    def records(self) -> list[HostRecord]:
        return progress_of(self.ctx.store, self.window)

    # -- the loop ---------------------------------------------------------------------

    def run(self) -> RunReport:
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
            progress = load_progress(self.ctx.store, self.window.id)
            unhealthy = self.unhealthy_groups(progress)
            step = next_step(self.window, progress, self.ctx.now(), frozenset(unhealthy))
            if step.action == "start":
                batch = max((r.batch for r in progress.values()), default=0) + 1
                self.run_batch(batch, step.hosts)
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
            record.finished_at = _iso(self.ctx.now())
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

    def server(self, name: str) -> Server | None:
        return next((s for s in self.inv.servers if s.name == name), None)

    def unhealthy_groups(self, progress: dict[str, HostRecord]) -> set[str]:
        """Redundancy groups of the remaining hosts with a member that is down now."""
        pending = [
            h
            for h in self.window.plan.hosts
            if progress.get(h.target, HostRecord(target=h.target)).state in {"pending", "running"}
        ]
        groups = {h.redundancy_group for h in pending if h.redundancy_group}
        members = [s for s in self.inv.servers if s.redundancy_group in groups]
        if not members:
            return set()
        settings = {s.name: remote.host_settings(s, dict(self.inv.host_vars(s))) for s in members}
        results = run_tasks(
            [SshTarget.from_inventory(self.inv, s) for s in members],
            [remote.WindowTask(script=remote.gate_script())],
            max_parallel=self.ctx.max_parallel,
            timeout=60,
        )
        bad: set[str] = set()
        for server, result in zip(members, results, strict=True):
            why = None
            if not result.framed.started:
                why = f"{result.status}: {result.error}"
            else:
                state = remote.unit_state(remote.parse_answer(result.output("window")))
                down = sorted(set(settings[server.name].units_for(server)) & state.failed)
                if down:
                    why = f"{', '.join(down)} failed"
            if why and server.redundancy_group:
                bad.add(server.redundancy_group)
                self.audit(
                    "window.peer.unhealthy",
                    server.name,
                    {"group": server.redundancy_group, "why": why},
                )
                self.say(f"  {server.name} ({server.redundancy_group}) is unhealthy: {why}")
        return bad

    # -- one batch --------------------------------------------------------------------

    def run_batch(self, batch: int, targets: list[str]) -> None:
        self.say(f"batch {batch}: {', '.join(targets)}")
        self.audit("window.batch.start", self.window.id, {"batch": batch, "hosts": targets})
        progress = load_progress(self.ctx.store, self.window.id)
        plans = {h.target: h for h in self.window.plan.hosts}
        hosts: list[_Host] = []
        for name in targets:
            record = progress.get(name, HostRecord(target=name))
            record.state, record.batch = "running", batch
            record.attempts += 1
            record.started_at = record.started_at or _iso(self.ctx.now())
            server = self.server(name)
            if server is None:
                record.state = "failed"
                record.summary = "no longer in the inventory: not touched"
                save_progress(self.ctx.store, self.window.id, record)
                self.audit("window.host.failed", name, {"summary": record.summary})
                continue
            host = _Host(
                server=server,
                plan=plans[name],
                settings=remote.host_settings(server, dict(self.inv.host_vars(server))),
                record=record,
                target=SshTarget.from_inventory(self.inv, server),
            )
            self.save(host, "start", attempt=record.attempts, batch=batch)
            hosts.append(host)
        for phase in (
            self.snapshot_and_precheck,
            self.drain,
            self.change,
            self.restart,
            self.reboot,
            self.gate_and_rollback,
            self.snapshot_after,
        ):
            hosts = [h for h in hosts if h.record.state == "running"]
            if not hosts:
                break
            phase(hosts)
        for host in hosts:
            if host.record.state == "running":
                self.finish_host(host, "done", self.done_summary(host))

    def ask(
        self, hosts: Sequence[_Host], script: Callable[[_Host], str]
    ) -> list[tuple[_Host, remote.Answer | None, str]]:
        """Run the step ``script(host)`` on every host at once (a ``window`` host task);
        the answers (None when the host could not be reached or its sudo refused) and the
        error text."""
        by_name = {h.target.name: h for h in hosts}
        results = run_tasks(
            [h.target for h in hosts],
            lambda t: [remote.WindowTask(script=script(by_name[t.name]))],
            max_parallel=self.ctx.max_parallel,
            timeout=SSH_TIMEOUT,
        )
        out: list[tuple[_Host, remote.Answer | None, str]] = []
        for host, r in zip(hosts, results, strict=True):
            if not r.framed.started:
                out.append((host, None, r.error or ""))
                continue
            answer = read_host(partial(remote.parse_answer, r.output("window")))
            if isinstance(answer, Unreadable):
                out.append((host, None, answer.error))
            else:
                out.append((host, answer, r.error or ""))
        return out

    def snapshot(
        self, hosts: list[_Host], when: str, extra: ExtraTasks | None = None
    ) -> tuple[list[tuple[_Host, str | None, str]], dict[str, HostRun]]:
        """One snapshot run (one commit) for the hosts, with ``extra`` tasks in the same
        script: per host the revision holding its files, or None and why not; and each
        host's whole run."""
        report, runs = take_with(
            self.ctx.snapshots,
            [h.server for h in hosts],
            reason=f"window {self.window.id}: {when}",
            window=self.window.id,
            extra=extra,
        )
        rows = {r.name: r for r in report.hosts}
        out: list[tuple[_Host, str | None, str]] = []
        for host in hosts:
            row = rows[host.record.target]
            if row.status in {"unreachable", "failed"}:
                out.append((host, None, f"{row.status}: {row.error}"))
            else:  # unchanged since the last snapshot: HEAD holds its current files
                out.append((host, report.commit or self.ctx.snapshots.repo.resolve("HEAD"), ""))
        return out, runs

    def snapshot_and_precheck(self, hosts: list[_Host]) -> None:
        """The before-snapshot (hosts without one yet) and the precheck in ONE script
        per host: one SSH session and one pass over the files; a resumed host that
        already has its snapshot gets the precheck alone."""
        need = [h for h in hosts if h.record.before_rev is None]
        answers: dict[str, tuple[remote.Answer | None, str]] = {}
        if need:
            revisions, runs = self.snapshot(
                need,
                "before",
                extra=lambda s: [remote.WindowTask(script=remote.precheck_script(s.roles))],
            )
            for host, rev, problem in revisions:
                run = runs.get(host.record.target)
                said = run.output("window") if run is not None else None
                answers[host.record.target] = (
                    remote.parse_answer(said) if said is not None and said.complete else None,
                    (run.error if run is not None else None) or problem,
                )
                if rev is None:
                    self.finish_host(host, "failed", f"no snapshot before any change ({problem})")
                    continue
                host.record.before_rev = rev
                self.save(host, "snapshot", rev=rev, when="before")
        rest = [h for h in hosts if h.record.state == "running" and h.record.target not in answers]
        for host, answer, error in (
            self.ask(rest, lambda h: remote.precheck_script(h.server.roles)) if rest else []
        ):
            answers[host.record.target] = (answer, error)
        for host in hosts:
            if host.record.state != "running":
                continue
            answer, error = answers[host.record.target]
            self.precheck(host, answer, error)

    def precheck(self, host: _Host, answer: remote.Answer | None, error: str) -> None:
        if answer is None:
            self.finish_host(host, "failed", f"unreachable before any change: {error}")
            return
        state = remote.unit_state(answer)
        host.boot_before = state.boot_id
        saved = host.record.health_before
        if saved is not None:
            # a resumed host: judge it against how it was before the window touched
            # it, not against what the interrupted run left behind
            host.units_before = frozenset(saved.active)
            host.failed_before = frozenset(saved.failed)
            host.sip_before = saved.sip
            return
        host.units_before = state.active
        host.failed_before = state.failed
        sip = answers_sip(host.server.roles)
        host.sip_before = sip and sip_alive(host.server.address, host.settings.sip_port) is not None
        host.record.health_before = HealthBefore(
            active=sorted(state.active), failed=sorted(state.failed), sip=host.sip_before
        )
        self.save(host, "precheck", sip=host.sip_before, failed=sorted(state.failed))

    def drain(self, hosts: list[_Host]) -> None:
        """Wait for calls to end; skip a host that still carries calls at its limit."""
        started = time.monotonic()
        waiting = list(hosts)
        while waiting:
            still: list[_Host] = []
            for host, answer, error in self.ask(
                waiting, lambda h: remote.drain_script(h.server.roles)
            ):
                if answer is None:
                    self.finish_host(host, "failed", f"unreachable while draining: {error}")
                    continue
                counts = remote.call_counts(answer)
                busy = {r: n for r, n in counts.items() if n}
                unknown = sorted(r for r, n in counts.items() if n is None)
                waited = round(time.monotonic() - started)
                if not busy:
                    host.record.drain = (
                        f"no calls in progress after {waited} s"
                        + (f" (could not count for {', '.join(unknown)})" if unknown else "")
                        if counts
                        else "no call-carrying service on this host"
                    )
                    self.save(host, "drain", result=host.record.drain)
                elif waited >= host.settings.drain_timeout:
                    calls = ", ".join(f"{n} {r}" for r, n in busy.items())
                    self.finish_host(
                        host,
                        "skipped",
                        f"still {calls} call(s) after the {host.settings.drain_timeout} s drain "
                        "limit: left unpatched, nothing changed",
                    )
                else:
                    still.append(host)
            if still:
                time.sleep(min(h.settings.drain_poll for h in still))
            waiting = still

    def change(self, hosts: list[_Host]) -> None:
        try:
            authorize(
                [h.server for h in hosts],
                self.lease,
                action=f"window.{self.window.actions}",
                audit=self.ctx.store,
            )
        except ApprovalError as exc:
            for host in hosts:
                self.finish_host(host, "failed", f"refused by the policy gate, not touched: {exc}")
            return
        if self.window.actions == "baseline":
            self.apply_baseline(hosts)
        else:
            self.install(hosts)

    def install(self, hosts: list[_Host]) -> None:
        ready = []
        for host in hosts:
            try:
                for change in host.plan.packages:
                    remote.check_package(change)
            except ValueError as exc:  # nothing apt prints; refuse it before any change
                self.finish_host(host, "failed", f"refused the plan: {exc}")
                continue
            ready.append(host)
        for host, said, error in self.ask(ready, lambda h: remote.install_script(h.plan.packages)):
            answer = remote.install_result(said) if said is not None else None
            if answer is None:
                self.fail_and_roll_back(host, f"the install did not finish: {error or 'no answer'}")
                continue
            planned = {p.package: p.target for p in host.plan.packages}
            host.record.installed = {
                p: v for p, v in answer.after.items() if answer.before.get(p) != v
            }
            host.record.not_approved = {p: v for p, v in answer.pending.items() if p not in planned}
            host.reboot_required = answer.reboot_required
            host.upgraded_units = sorted(
                {u for p in host.record.installed for u in answer.units.get(p, [])}
            )
            self.save(
                host,
                "install",
                installed=host.record.installed,
                not_approved=host.record.not_approved,
                exit=answer.exit_status,
                notes=answer.notes,
            )
            if answer.exit_status != 0:
                self.fail_and_roll_back(host, f"apt-get failed: {answer.error}")
                continue
            wrong = {p: v for p, v in planned.items() if answer.after.get(p) != v}
            if wrong:
                self.fail_and_roll_back(
                    host,
                    "not at the approved version: "
                    + ", ".join(
                        f"{p} {answer.after.get(p, 'missing')} != {v}" for p, v in wrong.items()
                    ),
                )

    def apply_baseline(self, hosts: list[_Host]) -> None:
        try:
            results, _seconds = run_pyinfra(self.inv, [h.server for h in hosts])
        except VcopsError as exc:
            for host in hosts:
                self.fail_and_roll_back(host, f"the baseline could not run: {exc}")
            return
        by_name = {r.name: r for r in results}
        for host in hosts:
            result = by_name.get(host.record.target)
            if result is None or not result.reached or result.failed:
                why = "; ".join(result.errors[-2:]) if result else "no result"
                self.fail_and_roll_back(host, f"the baseline failed: {why}")
                continue
            host.record.baseline = list(result.changed)
            self.save(host, "baseline", changed=result.changed)

    def restart(self, hosts: list[_Host]) -> None:
        todo = [h for h in hosts if h.upgraded_units]
        if not todo:
            return
        for host, answer, _error in self.ask(
            todo, lambda h: remote.restart_script(h.upgraded_units)
        ):
            said = answer.all("restart") if answer else []
            host.record.restarted = [a[0] for a in said if a]
            self.save(host, "restart", units=host.record.restarted)

    def reboot(self, hosts: list[_Host]) -> None:
        policy = self.window.reboot
        todo = []
        for host in hosts:
            required = host.reboot_required or host.plan.reboot_required
            if policy == "always" or (policy == "if-needed" and required):
                todo.append(host)
            elif required:
                host.record.gate.append("reboot required but the window's policy is never")
        if not todo:
            return
        self.ask(todo, lambda _h: remote.REBOOT_SCRIPT)
        for host in todo:
            self.save(host, "reboot", policy=policy)
        deadline = time.monotonic() + max(h.settings.reboot_timeout for h in todo)
        waiting = list(todo)
        while waiting and time.monotonic() < deadline:
            time.sleep(3)
            still = []
            for host, answer, _error in self.ask(waiting, lambda _h: remote.gate_script()):
                boot = remote.unit_state(answer).boot_id if answer else ""
                if boot and boot != host.boot_before:
                    host.record.rebooted = True
                else:
                    still.append(host)
            waiting = still
        for host in waiting:
            self.fail_and_roll_back(host, "did not come back from its reboot in time")

    # -- the gate -----------------------------------------------------------------------

    def gate_problems(self, hosts: list[_Host]) -> dict[str, list[str]]:
        """Per host what is wrong now; retried while the host is settling."""
        deadline = time.monotonic() + max(h.settings.gate_wait for h in hosts)
        problems: dict[str, list[str]] = {}
        while True:
            problems = {}
            for host, answer, error in self.ask(hosts, lambda _h: remote.gate_script()):
                found: list[str] = []
                if answer is None:
                    found.append(f"SSH does not answer: {error}")
                else:
                    state = remote.unit_state(answer)
                    for unit in host.settings.units_for(host.server):
                        if unit in host.units_before and unit not in state.active:
                            found.append(f"{unit} is not running (it was before)")
                    found += [f"{u} failed" for u in sorted(state.failed - host.failed_before)]
                if (
                    host.sip_before
                    and sip_alive(host.server.address, host.settings.sip_port) is None
                ):
                    found.append(
                        f"no answer to SIP OPTIONS on {host.server.address}:{host.settings.sip_port}"
                        " (it answered before)"
                    )
                if found:
                    problems[host.record.target] = found
            if not problems or time.monotonic() >= deadline:
                return problems
            time.sleep(2)

    def gate_and_rollback(self, hosts: list[_Host]) -> None:
        problems = self.gate_problems(hosts)
        for host in hosts:
            found = problems.get(host.record.target, [])
            watched = [u for u in host.settings.units_for(host.server) if u in host.units_before]
            checks = [
                "SSH answers",
                f"{', '.join(watched)} running" if watched else "no role unit ran before",
                "no unit newly failed",
            ]
            if host.sip_before:
                checks.append("SIP OPTIONS answered")
            host.record.gate += found or [f"passed: {', '.join(checks)}"]
            self.save(host, "gate", passed=not found, problems=found)
            if found:
                self.fail_and_roll_back(host, "health gate failed: " + "; ".join(found))

    def fail_and_roll_back(self, host: _Host, why: str) -> None:
        """Restore the host's configs from its snapshot, restart what ran before, check
        again, and count it as failed."""
        self.say(f"  {host.record.target}: {why}; rolling back")
        outcome: list[str] = []
        if host.record.before_rev is None:
            outcome.append("no snapshot to roll back to")
        else:
            try:
                report = restore_target(
                    self.ctx.snapshots,
                    host.server,
                    host.record.before_rev,
                    lease=self.lease,
                    now=self.ctx.now(),
                )
                changed = [f.path for f in report.files if f.action != "unchanged"]
                outcome.append(
                    f"configs restored from {host.record.before_rev[:12]} ({report.status}"
                    + (f": {', '.join(changed)}" if changed else "")
                    + ")"
                )
            except VcopsError as exc:
                outcome.append(f"config restore failed: {exc}")
        wanted = [u for u in host.settings.units_for(host.server) if u in host.units_before]
        if wanted:
            _host, answer, error = self.ask([host], lambda _h: remote.start_script(wanted))[0]
            started = answer.all("start") if answer else []
            outcome.append(
                "restarted " + ", ".join(f"{a[0]} (exit {a[1]})" for a in started if len(a) > 1)
                if started
                else f"could not restart {', '.join(wanted)}: {error or 'no answer'}"
            )
        left = self.gate_problems([host]).get(host.record.target, [])
        outcome.append("healthy again" if not left else "STILL UNHEALTHY: " + "; ".join(left))
        if host.record.installed:
            back = " ".join(
                f"{p.package}={p.current}"
                for p in host.plan.packages
                if p.package in host.record.installed
            )
            outcome.append(
                f"packages stay upgraded (downgrade by hand if needed: apt-get install {back})"
            )
        host.record.rollback = "; ".join(outcome)
        self.save(host, "rollback", outcome=host.record.rollback)
        self.finish_host(host, "failed", f"{why}; rollback: {host.record.rollback}")

    def snapshot_after(self, hosts: list[_Host]) -> None:
        for host, rev, problem in self.snapshot(hosts, "after")[0]:
            if rev is None:
                # the gate just passed: a glitch worth recording, not a failed host
                host.record.gate.append(f"after-snapshot {problem}")
            host.record.after_rev = rev
            self.save(host, "snapshot", rev=rev, when="after", error=problem or None)

    def done_summary(self, host: _Host) -> str:
        parts = []
        if host.record.installed:
            before = {p.package: p.current for p in host.plan.packages}
            parts.append(
                "upgraded "
                + ", ".join(
                    f"{p} {before.get(p, '?')} -> {v}" for p, v in host.record.installed.items()
                )
            )
        elif self.window.actions == "baseline":
            parts.append(
                f"baseline applied: {len(host.record.baseline)} operation(s) changed"
                if host.record.baseline
                else "baseline applied: already compliant"
            )
        else:
            parts.append("nothing to upgrade (already at the approved versions)")
        if host.record.restarted:
            parts.append(f"restarted {', '.join(host.record.restarted)}")
        if host.record.rebooted:
            parts.append("rebooted")
        if host.record.not_approved:
            parts.append(
                f"{len(host.record.not_approved)} more pending, not approved: "
                + ", ".join(f"{p} {v}" for p, v in sorted(host.record.not_approved.items()))
            )
        parts.append("gate passed")
        return "; ".join(parts)


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
        ok, _rejected, quorum = tally(ctx.inventory, window, approvals_of(ctx.store, window.id))
        terms = window_terms(
            window, approvals_ok=ok, quorum=quorum, current_hash=plan_hash(window.plan)
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
