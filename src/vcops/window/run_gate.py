"""Window runner phases after a change: the health gate, and rollback of a host that
fails it."""

from __future__ import annotations

import time

from vcops.connectors.sip import sip_alive
from vcops.errors import VcopsError
from vcops.snapshot.restore import restore_target
from vcops.window import remote
from vcops.window.run_base import BatchHost, RunnerBase


class GatePhases(RunnerBase):
    """The gate and the rollback."""

    def gate_problems(self, hosts: list[BatchHost]) -> dict[str, list[str]]:
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

    def gate_and_rollback(self, hosts: list[BatchHost]) -> None:
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
