"""Window runner phases after a change: the health gate, and rollback of a host that
fails it."""

from __future__ import annotations

import time

from vcops.errors import VcopsError
from vcops.snapshot.restore import restore_target
from vcops.window import remote
from vcops.window.run_base import BatchHost, RunnerBase


class GatePhases(RunnerBase):
    """The gate and the rollback."""

    def gate_problems(
        self,
        hosts: list[BatchHost],
        first: dict[str, tuple[remote.Answer | None, str]] | None = None,
        at_once: set[str] | None = None,
    ) -> dict[str, list[str]]:
        """Per host what is wrong now; retried while the host is settling. ``first``:
        answers to the gate script already read (the first round asks no host);
        ``at_once`` receives the hosts that passed the first round."""
        rounds = 0
        deadline = time.monotonic() + max(h.settings.gate_wait for h in hosts)
        problems: dict[str, list[str]] = {}
        while True:
            problems = {}
            read = first or {}
            first = None  # (a host with no first reading is asked at once)
            answers = [(h, *read[h.record.target]) for h in hosts if h.record.target in read]
            asked = [h for h in hosts if h.record.target not in read]
            if asked:
                answers += self.ask(asked, lambda _h: remote.Step(kind="gate"))
            for host, answer, error in answers:
                found = self.judge(host, answer, error)
                if found:
                    problems[host.record.target] = found
                elif rounds == 0 and at_once is not None:
                    at_once.add(host.record.target)
            rounds += 1
            if not problems or time.monotonic() >= deadline:
                return problems
            time.sleep(2)

    def judge(self, host: BatchHost, answer: remote.Answer | None, error: str) -> list[str]:
        """What the gate finds wrong with a host from its answer (and SIP OPTIONS)."""
        found: list[str] = []
        if answer is None:
            found.append(f"SSH does not answer: {error}")
        else:
            state = remote.unit_state(answer)
            restarted = [
                u for u in host.record.restarted if u not in host.settings.units_for(host.server)
            ]
            for unit in [*host.settings.units_for(host.server), *restarted]:
                if unit in host.units_before and unit not in state.active:
                    found.append(f"{unit} is not running (it was before)")
            found += [f"{u} failed" for u in sorted(state.failed - host.failed_before)]
        if host.sip_before and not self.sip_answers(host):
            found.append(
                f"no answer to SIP OPTIONS on {host.server.address}:{host.settings.sip_port}"
                " (it answered before)"
            )
        return found

    def gate_and_rollback(self, hosts: list[BatchHost]) -> None:
        """The gate; its first reading comes from the session of the after-snapshot
        (one session for both). A host that passes at once keeps that snapshot as its
        after-snapshot; one that passes only after settling gets a new one
        (:meth:`snapshot_after`); one that fails is rolled back."""
        first: dict[str, tuple[remote.Answer | None, str]] = {}
        taken: dict[str, str | None] = {}
        revisions, runs = self.snapshot(
            hosts,
            "after",
            extra=lambda _s: [remote.WindowTask(script=remote.gate_script())],
            since=self.since(hosts),
        )
        for host, rev, problem in revisions:
            run = runs.get(host.record.target)
            said = run.output("window") if run is not None else None
            answer = remote.parse_answer(said) if said is not None and said.complete else None
            if run is not None or not self.routed(host.server):  # a worker's: asked in the gate
                first[host.record.target] = (answer, (run.error if run else None) or problem)
            taken[host.record.target] = rev
        at_once: set[str] = set()
        problems = self.gate_problems(hosts, first, at_once)
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
            rev = taken.get(host.record.target)
            # settled only after the snapshot was taken: snapshot_after takes another
            host.record.after_rev = rev if host.record.target in at_once else None
            self.save(host, "gate", passed=not found, problems=found)
            if found:
                self.fail_and_roll_back(host, "health gate failed: " + "; ".join(found))
            elif host.record.after_rev is not None:
                self.save(host, "snapshot", rev=rev, when="after")

    def fail_and_roll_back(self, host: BatchHost, why: str) -> None:
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
                    remote=self.ctx.sites.restore if self.ctx.sites is not None else None,
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
            _host, answer, error = self.ask(
                [host], lambda _h: remote.Step(kind="start", units=wanted)
            )[0]
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
