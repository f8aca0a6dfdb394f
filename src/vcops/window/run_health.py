"""Window runner phases before any change: redundancy peers' health, snapshot and
precheck, drain."""

from __future__ import annotations

import time

from vcops.roles import answers_sip
from vcops.snapshot.take import Checksums
from vcops.window import remote
from vcops.window.progress import HealthBefore, HostRecord
from vcops.window.run_base import BatchHost, RunnerBase
from vcops.window.sites import Said


class HealthPhases(RunnerBase):
    """Peers, snapshot + precheck, drain."""

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
        gate = remote.Step(kind="gate")
        said = self.run_steps(members, {s.name: gate for s in members}, 60.0)
        bad: set[str] = set()
        for server in members:
            one = said.get(server.name) or Said(None, "no answer")
            why = None
            if one.answer is None:
                why = one.error or "no answer"
            else:
                down = sorted(
                    set(settings[server.name].units_for(server))
                    & remote.unit_state(one.answer).failed
                )
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

    def snapshot_and_precheck(self, hosts: list[BatchHost]) -> None:
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
                checksums=True,
            )
            for host, rev, problem in revisions:
                run = runs.get(host.record.target)
                host.checksums = Checksums.of(run) if run is not None else None
                said = run.output("window") if run is not None else None
                if run is not None or not self.routed(host.server):
                    answers[host.record.target] = (
                        remote.parse_answer(said) if said is not None and said.complete else None,
                        (run.error if run is not None else None) or problem,
                    )
                # else: collected on its site's worker, which ran no precheck: asked below
                if rev is None:
                    self.finish_host(host, "failed", f"no snapshot before any change ({problem})")
                    continue
                host.record.before_rev = rev
                self.save(host, "snapshot", rev=rev, when="before")
        rest = [h for h in hosts if h.record.state == "running" and h.record.target not in answers]
        for host, answer, error in (
            self.ask(rest, lambda _h: remote.Step(kind="precheck")) if rest else []
        ):
            answers[host.record.target] = (answer, error)
        for host in hosts:
            if host.record.state != "running":
                continue
            answer, error = answers[host.record.target]
            self.precheck(host, answer, error)

    def precheck(self, host: BatchHost, answer: remote.Answer | None, error: str) -> None:
        if answer is None:
            self.finish_host(host, "failed", f"unreachable before any change: {error}")
            return
        state = remote.unit_state(answer)
        host.boot_before = state.boot_id
        host.precheck = answer
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
        host.sip_before = sip and self.sip_answers(host)
        host.record.health_before = HealthBefore(
            active=sorted(state.active), failed=sorted(state.failed), sip=host.sip_before
        )
        self.save(host, "precheck", sip=host.sip_before, failed=sorted(state.failed))

    def drain(self, hosts: list[BatchHost]) -> None:
        """Wait for calls to end; skip a host that still carries calls at its limit."""
        started = time.monotonic()
        waiting = list(hosts)
        # the first reading is the precheck's (same counter commands, just taken)
        first = [(h, h.precheck, "") for h in waiting if h.precheck is not None]
        while waiting:
            still: list[BatchHost] = []
            asked = [h for h in waiting if all(h is not f[0] for f in first)]
            answers = first + (
                self.ask(asked, lambda _h: remote.Step(kind="drain")) if asked else []
            )
            first = []
            for host, answer, error in answers:
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
