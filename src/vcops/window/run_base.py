"""The window runner's shared state and bookkeeping: the run context, the hosts of a
batch, saving and auditing each step, asking hosts, snapshots (see
:mod:`vcops.window.runner` for the phases and their order)."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Literal

from pydantic import BaseModel

from vcops.connectors.hosttask import HostRun
from vcops.connectors.sip import sip_alive
from vcops.connectors.ssh import SshTarget
from vcops.inventory.models import Inventory, Server
from vcops.policy import WindowLease
from vcops.snapshot.take import Checksums, ExtraTasks, Since, SnapshotContext, take_with
from vcops.store import Store
from vcops.window import remote
from vcops.window.model import HostPlan, Window
from vcops.window.progress import HostRecord
from vcops.window.sites import Said, WindowSites, run_steps
from vcops.window.store import (
    progress_of,
    save_progress,
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
    #: Called with a host's name when it reaches its end state in this run (a progress
    #: bar's advance; from the batch's threads).
    host_done: Callable[[str], None] = lambda _name: None
    #: The servers whose steps, snapshots and baseline run on their site's workers
    #: (``[workers] sites``); None: every host is reached from here.
    sites: WindowSites | None = None


@dataclass
class BatchHost:
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
    #: The host-side checksums of the before-snapshot's collection (memory only): the
    #: after-snapshot sends only what changed since. None after a resume: a full one.
    checksums: Checksums | None = field(default=None, repr=False)
    #: The precheck's answer, whose call counts are the drain's first reading.
    precheck: remote.Answer | None = field(default=None, repr=False)
    #: Who reached the host for its last step: "" (the controller) or a site worker.
    via: str = ""


def iso_seconds(moment: datetime) -> str:
    return moment.isoformat(timespec="seconds")


class RunnerBase:
    """Bookkeeping every phase uses; the phases are mixins over it."""

    def __init__(self, ctx: RunContext, window: Window, lease: WindowLease | None) -> None:
        """``lease``: the policy gate's lease of this window (None when the run only
        closes a window past its cutoff: then no host may be changed)."""
        self.ctx = ctx
        self.window = window
        self.lease = lease
        self.inv = ctx.inventory
        #: The hosts of a batch run in threads; their saves, audit entries and output
        #: go through this one lock, in the order they happen.
        self.writes = threading.RLock()

    def say(self, message: str) -> None:
        """Tell the operator; a failure to print never stops a step (or a rollback)."""
        with self.writes:
            try:
                self.ctx.say(message)
            except Exception as exc:  # output is best effort; the work is not
                with contextlib.suppress(Exception):
                    self.audit("window.say.failed", self.window.id, {"error": repr(exc)[:200]})

    def audit(self, action: str, target: str, detail: dict[str, object]) -> None:
        with self.writes:
            self.ctx.store.audit(action, target, {"window": self.window.id, **detail})

    def save(self, host: BatchHost, step: str, **detail: object) -> None:
        """Save the host's record at ``step`` and audit it (one write at a time)."""
        with self.writes:
            host.record.step = step
            save_progress(self.ctx.store, self.window.id, host.record)
            where = {"via": host.via} if host.via else {}
            self.audit(f"window.host.{step}", host.record.target, {**detail, **where})

    def finish_host(self, host: BatchHost, state: str, summary: str) -> None:
        with self.writes:
            host.record.state = state  # type: ignore[assignment]
            host.record.summary = summary
            host.record.finished_at = iso_seconds(self.ctx.now())
            self.save(host, state, summary=summary)
            self.say(f"  {host.record.target}: {state}: {summary}")
        self.ctx.host_done(host.record.target)

    def records(self) -> list[HostRecord]:
        return progress_of(self.ctx.store, self.window)

    def server(self, name: str) -> Server | None:
        return next((s for s in self.inv.servers if s.name == name), None)

    def routed(self, server: Server) -> bool:
        """Whether the server's steps run on its site's workers."""
        return self.ctx.sites is not None and self.ctx.sites.routes(server)

    def run_steps(
        self, servers: list[Server], steps: dict[str, remote.Step], timeout: float
    ) -> dict[str, Said]:
        """Each server's step, all at once: from here, or on its site's workers."""
        return run_steps(
            self.inv,
            servers,
            steps,
            self.ctx.sites,
            max_parallel=self.ctx.max_parallel,
            timeout=timeout,
        )

    def ask(
        self, hosts: Sequence[BatchHost], step: Callable[[BatchHost], remote.Step]
    ) -> list[tuple[BatchHost, remote.Answer | None, str]]:
        """Run ``step(host)`` on every host at once; the answers (None when the host
        could not be reached or its sudo refused) and the error text."""
        said = self.run_steps(
            [h.server for h in hosts], {h.target.name: step(h) for h in hosts}, SSH_TIMEOUT
        )
        out: list[tuple[BatchHost, remote.Answer | None, str]] = []
        for host in hosts:
            one = said.get(host.target.name) or Said(None, "no answer")
            host.via = one.via
            out.append((host, one.answer, one.error))
        return out

    def sip_answers(self, host: BatchHost) -> bool:
        """SIP OPTIONS answered, probed from the side that reaches the host."""
        if not self.routed(host.server):
            return sip_alive(host.server.address, host.settings.sip_port) is not None
        step = remote.Step(kind="sip", sip_port=host.settings.sip_port)
        said = self.run_steps([host.server], {host.target.name: step}, 60.0)
        one = said.get(host.target.name)
        return one is not None and one.sip is True

    def snapshot(
        self,
        hosts: list[BatchHost],
        when: str,
        extra: ExtraTasks | None = None,
        *,
        checksums: bool = False,
        since: dict[str, Since] | None = None,
    ) -> tuple[list[tuple[BatchHost, str | None, str]], dict[str, HostRun]]:
        """One snapshot run (one commit) for the hosts, with ``extra`` tasks in the same
        script (``checksums``, ``since``: see :func:`~vcops.snapshot.take.take_with`):
        per host the revision holding its files, or None and why not; and each host's
        whole run. Hosts of sites with workers are collected and masked there, in full
        and without the ``extra`` tasks (no run of theirs comes back)."""
        report, runs = take_with(
            self.ctx.snapshots,
            [h.server for h in hosts],
            reason=f"window {self.window.id}: {when}",
            window=self.window.id,
            extra=extra,
            checksums=checksums,
            since=since,
            remote=self.ctx.sites.snapshot if self.ctx.sites is not None else None,
        )
        rows = {r.name: r for r in report.hosts}
        out: list[tuple[BatchHost, str | None, str]] = []
        for host in hosts:
            row = rows[host.record.target]
            if row.status in {"unreachable", "failed"}:
                out.append((host, None, f"{row.status}: {row.error}"))
            else:  # unchanged since the last snapshot: HEAD holds its current files
                out.append((host, report.commit or self.ctx.snapshots.repo.resolve("HEAD"), ""))
        return out, runs

    def since(self, hosts: list[BatchHost]) -> dict[str, Since]:
        """The before-snapshots to collect incrementally against (hosts whose
        before-snapshot's checksums are known: not after a resume)."""
        since: dict[str, Since] = {}
        for host in hosts:  # (a routed host's before-snapshot has no checksums here)
            if host.checksums is not None and host.record.before_rev is not None:
                since[host.record.target] = Since.of(
                    self.ctx.snapshots.repo,
                    host.record.target,
                    host.record.before_rev,
                    host.checksums,
                )
        return since

    def snapshot_after(self, hosts: list[BatchHost]) -> None:
        """The after-snapshot of hosts that have none yet (the gate's session took it
        unless the host passed only after settling): incremental where the
        before-snapshot's checksums are known (the host sends only the files that
        changed since; the rest is the before-snapshot's), a full collection otherwise."""
        todo = [h for h in hosts if h.record.after_rev is None]
        if not todo:
            return
        for host, rev, problem in self.snapshot(todo, "after", since=self.since(todo))[0]:
            if rev is None:
                # the gate just passed: a glitch worth recording, not a failed host
                host.record.gate.append(f"after-snapshot {problem}")
            host.record.after_rev = rev
            self.save(host, "snapshot", rev=rev, when="after", error=problem or None)

    def done_summary(self, host: BatchHost) -> str:
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
