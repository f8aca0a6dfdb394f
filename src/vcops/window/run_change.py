"""Window runner phases that change a host: install or baseline (under the policy
gate's lease), restart, reboot."""

from __future__ import annotations

import time

from vcops.enforce.ansible_events import keep_text
from vcops.enforce.apply import DeviceKey, run_targets
from vcops.errors import ApprovalError, VcopsError
from vcops.policy import authorize
from vcops.window import remote
from vcops.window.run_base import BatchHost
from vcops.window.run_gate import GatePhases


class ChangePhases(GatePhases):
    """Install or baseline, restart, reboot (a failure rolls back)."""

    def change(self, hosts: list[BatchHost]) -> None:
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

    def install(self, hosts: list[BatchHost]) -> None:
        ready = []
        for host in hosts:
            try:
                for change in host.plan.packages:
                    remote.check_package(change)
            except ValueError as exc:  # nothing apt prints; refuse it before any change
                self.finish_host(host, "failed", f"refused the plan: {exc}")
                continue
            ready.append(host)
        for host, said, error in self.ask(
            ready, lambda h: remote.Step(kind="install", packages=list(h.plan.packages))
        ):
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
                | set(answer.restarted)  # with those needrestart named (outdated libraries)
            )
            host.record.restarted = answer.restarted
            self.save(
                host,
                "install",
                installed=host.record.installed,
                not_approved=host.record.not_approved,
                exit=answer.exit_status,
                notes=answer.notes,
                outdated=answer.outdated,
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

    def apply_baseline(self, hosts: list[BatchHost]) -> None:
        """The pyinfra baseline (a site's servers through its workers, as ``vcops apply``
        sends them)."""
        sites = self.ctx.sites
        try:
            results = run_targets(
                self.inv,
                [h.server for h in hosts],
                "pyinfra",
                False,
                keep_text,  # no check diffs in a real run
                sites.apply if sites is not None else None,
                DeviceKey(self.ctx.snapshots.key),  # (devices run in run_device)
            )
        except VcopsError as exc:
            for host in hosts:
                self.fail_and_roll_back(host, f"the baseline could not run: {exc}")
            return
        by_name = {r.name: r for r in results}
        for host in hosts:
            result = by_name.get(host.record.target)
            if result is None or result.status not in {"changed", "unchanged"}:
                why = result.reason if result else "no result"
                self.fail_and_roll_back(host, f"the baseline failed: {why}")
                continue
            host.record.baseline = list(result.changes)
            self.save(host, "baseline", changed=result.changes)

    def restart(self, hosts: list[BatchHost]) -> None:
        """Record the restarts: the install script restarted the running units of the
        upgraded packages, and those needrestart named, in its own session."""
        for host in hosts:
            if host.upgraded_units:
                self.save(host, "restart", units=host.record.restarted)

    def reboot(self, hosts: list[BatchHost]) -> None:
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
        self.ask(todo, lambda _h: remote.Step(kind="reboot"))
        for host in todo:
            self.save(host, "reboot", policy=policy)
        deadline = time.monotonic() + max(h.settings.reboot_timeout for h in todo)
        waiting = list(todo)
        while waiting and time.monotonic() < deadline:
            time.sleep(3)
            still = []
            for host, answer, _error in self.ask(waiting, lambda _h: remote.Step(kind="gate")):
                boot = remote.unit_state(answer).boot_id if answer else ""
                if boot and boot != host.boot_before:
                    host.record.rebooted = True
                else:
                    still.append(host)
            waiting = still
        for host in waiting:
            self.fail_and_roll_back(host, "did not come back from its reboot in time")
