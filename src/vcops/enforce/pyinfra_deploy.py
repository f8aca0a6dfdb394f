"""The pyinfra side of enforcement: one deploy per baseline area, and the baseline.

``deploys/<area>.py`` and ``deploys/baseline.py`` only call these. Each area reads the
host's ``vcops_*`` variables (exported by ``vcops apply`` from
:func:`vcops.enforce.vars.role_vars`), asks the host for its managed files in one
fact (:class:`VcopsHostState`, secrets masked on the host), and yields commands only
where the host differs: a second run changes nothing. Files are validated on the host
before they replace the live ones (:mod:`vcops.enforce.remote`), and services are
reloaded or restarted only when one of their files changed.
"""

from __future__ import annotations

import json
import shlex
import sys
import zlib
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import replace
from typing import Any

from pyinfra.api.command import StringCommand
from pyinfra.api.facts import FactBase
from pyinfra.api.operation import operation
from pyinfra.api.state import BaseStateCallback, State
from pyinfra.context import host
from pyinfra.context import state as pyinfra_state
from pyinfra.facts.server import Sysctl
from pyinfra.operations import apt, server, systemd
from pyinfra.operations.util import any_changed

from vcops.enforce.accounts import (
    PAM_AUTH_UPDATE,
    mode_fixes,
    pam_current,
    root_age_command,
    root_age_needed,
)
from vcops.enforce.files import HostState, LiveFile, ManagedFile, file_changed, parse_state
from vcops.enforce.helper import (
    PACKAGES,
    area_packages,
    areas,
    certificates,
    config_dirs,
    install_spec,
    remote_command,
    state_spec,
)
from vcops.enforce.pyinfra_progress import failed_line, op_line
from vcops.enforce.render import (
    AIDE_CHECK_UNIT,
    AIDE_UPDATE,
    JOURNALD_DROP_IN,
    PAM_CONFIGS,
    RSYSLOG_DROP_IN,
    SECURITY_SOURCES,
    area_files,
    desired_files,
    lists_stale,
    security_sources_file,
)
from vcops.enforce.sysctl import sysctl_argv, sysctl_drift


class VcopsHostState(FactBase[dict[str, Any]]):
    """Managed files (secrets masked), VoIP dirs, certificates and probes, as JSON."""

    def command(self, spec: str) -> str:
        return spec

    def process(self, output: list[str]) -> dict[str, Any]:
        data: dict[str, Any] = json.loads("\n".join(output))
        return data


def host_vars() -> dict[str, Any]:
    """The current host's data as a plain dict."""
    data: dict[str, Any] = dict(host.data.dict())  # type: ignore[no-untyped-call]
    data.setdefault("inventory_hostname", host.name)
    return data


def host_state(variables: dict[str, Any]) -> HostState:
    """One fact per host and run: every managed path of every area the host has."""
    paths = [f.path for f in desired_files(variables, HostState())]
    command = remote_command("state", state_spec(variables, paths))
    fact: dict[str, Any] = host.get_fact(VcopsHostState, spec=command)
    return parse_state(fact)


@contextmanager
def keyed(name: str) -> Iterator[None]:
    """Give an operation whose name varies between hosts an identity of its own.

    pyinfra identifies an operation by its call site (and loop position), not its
    name: without this, host A's second file and host B's second file would be one
    operation whose name is whichever host's pyinfra saw first, so the plan and the
    results would name the wrong file.
    """
    host.loop_position.append(zlib.crc32(name.encode()))
    try:
        yield
    finally:
        host.loop_position.pop()


@operation()
def managed_file(path: str, command: str, changed: bool) -> Any:
    """Install one validated file (the decision is made from the host-state fact)."""
    if changed:
        yield StringCommand(command)
    else:
        host.noop(f"{path} is up to date")


@operation()
def noop(reason: str) -> Any:
    """Say why nothing is done (pyinfra prints it with -v)."""
    host.noop(reason)
    yield from ()


def _packages(area: str, state: HostState, variables: dict[str, Any] | None = None) -> None:
    missing = [p for p in area_packages(area, variables or {}) if p not in state.packages]
    if missing:
        name = f"{area}: install {', '.join(missing)}"
        with keyed(name):
            apt.packages(name=name, packages=missing, update=True, no_recommends=True)


def _files(area: str, variables: dict[str, Any], state: HostState) -> list[Any]:
    ops = []
    for f in area_files(area, variables, state):
        if f.path != SECURITY_SOURCES:  # written first, by security_sources()
            ops.append(_file_op(f, state))
    return ops


def _file_op(f: ManagedFile, state: HostState) -> Any:
    name = f"{f.area}: {f.path}"
    with keyed(name):
        return managed_file(
            name=name,
            path=f.path,
            command=remote_command("install", install_spec(f)),
            changed=file_changed(f, state.files.get(f.path)),
        )


def ssh(variables: dict[str, Any], state: HostState) -> None:
    _packages("ssh", state)
    changed = _files("ssh", variables, state)
    systemd.service(
        name="ssh: reload sshd", service="ssh", running=True, reloaded=True,
        _if=any_changed(*changed),
    )  # fmt: skip


def firewall(variables: dict[str, Any], state: HostState) -> None:
    _packages("firewall", state)
    changed = _files("firewall", variables, state)
    loaded = "table inet vcops" in state.probes.get("nft_tables", "")
    server.shell(
        name="firewall: apply /etc/nftables.conf atomically",
        commands=["nft -f /etc/nftables.conf"],
        _if=any_changed(*changed) if loaded else None,
    )
    systemd.service(
        name="firewall: enable nftables", service="nftables", running=None, enabled=True
    )


def fail2ban(variables: dict[str, Any], state: HostState) -> None:
    _packages("fail2ban", state)
    changed = _files("fail2ban", variables, state)
    systemd.service(name="fail2ban: running", service="fail2ban", running=True, enabled=True)
    systemd.service(
        name="fail2ban: restart", service="fail2ban", running=True, restarted=True,
        _if=any_changed(*changed),
    )  # fmt: skip


def kernel(variables: dict[str, Any], state: HostState) -> None:
    _packages("kernel", state, variables)
    changed = _files("kernel", variables, state)
    wanted = sysctl_argv(variables, state.in_container)
    live = host.get_fact(Sysctl)
    drift = sysctl_drift(variables, live, state.in_container)
    server.shell(
        name="kernel: apply sysctls",
        commands=[wanted],
        _if=None if drift else any_changed(changed[0]),
    )
    if not variables.get("vcops_kernel_process_accounting"):
        noop(name="kernel: process accounting", reason="process accounting is off here")
        return
    # accton needs CAP_SYS_PACCT, which a container lacks: enabled there, not started
    running = None if state.in_container else True
    systemd.service(name="kernel: acct", service="acct", running=running, enabled=True)
    systemd.service(name="kernel: sysstat", service="sysstat", running=True, enabled=True)


def audit(variables: dict[str, Any], state: HostState) -> None:
    _packages("audit", state)
    changed = _files("audit", variables, state)
    if state.in_container:
        systemd.service(name="audit: enable auditd", service="auditd", running=None, enabled=True)
        noop(
            name="audit: load rules", reason="auditd cannot run in a container: rules on disk only"
        )
        return
    systemd.service(name="audit: auditd running", service="auditd", running=True, enabled=True)
    if audit_immutable(state.probes.get("audit_status", "")):
        noop(
            name="audit: load rules",
            reason="the loaded audit rules are immutable (-e 2): the new rules load at the next reboot",
        )
        return
    server.shell(
        name="audit: load rules", commands=["augenrules --load"], _if=any_changed(*changed)
    )


def audit_immutable(status: str) -> bool:
    """Whether ``auditctl -s`` says the loaded rules are locked until reboot (pure).

    >>> audit_immutable("enabled 2\\nfailure 1\\n")
    True
    """
    return any(line.split() == ["enabled", "2"] for line in status.splitlines())


def logging(variables: dict[str, Any], state: HostState) -> None:
    _packages("logging", state)
    files = {f.path: _file_op(f, state) for f in area_files("logging", variables, state)}
    systemd.service(name="logging: rsyslog running", service="rsyslog", running=True, enabled=True)
    systemd.service(
        name="logging: restart rsyslog", service="rsyslog", running=True, restarted=True,
        _if=any_changed(files[RSYSLOG_DROP_IN]),
    )  # fmt: skip
    systemd.service(
        name="logging: restart journald", service="systemd-journald", running=True,
        restarted=True, _if=any_changed(files[JOURNALD_DROP_IN]),
    )  # fmt: skip


def integrity(variables: dict[str, Any], state: HostState) -> None:
    """AIDE, last: its database is rebuilt when it is missing or anything else in this
    run changed the host (the script also skips the build when nothing it watches is
    newer than the database), so a daily check after the apply is clean."""
    earlier = [data.operation_meta for data in host.state.ops[host].values()]
    _packages("integrity", state)
    changed = _files("integrity", variables, state)
    systemd.daemon_reload(name="integrity: reload the units", _if=any_changed(*changed))
    systemd.service(
        name="integrity: daily AIDE check timer", service=f"{AIDE_CHECK_UNIT}.timer",
        running=True, enabled=True,
    )  # fmt: skip
    missing = not state.probes.get("aide_db", "").strip()
    ops = [*earlier, *changed]
    server.shell(
        name="integrity: build the AIDE database",
        commands=[AIDE_UPDATE],
        _if=lambda: missing or any(op.did_change() for op in ops),
    )


def time(variables: dict[str, Any], state: HostState) -> None:
    _packages("time", state)
    changed = _files("time", variables, state)
    if state.in_container:
        systemd.service(name="time: enable chrony", service="chrony", running=None, enabled=True)
        noop(
            name="time: restart chrony", reason="chrony is skipped in a container (no CAP_SYS_TIME)"
        )
        return
    systemd.service(name="time: chrony running", service="chrony", running=True, enabled=True)
    systemd.service(
        name="time: restart chrony", service="chrony", running=True, restarted=True,
        _if=any_changed(*changed),
    )  # fmt: skip


def security_sources(variables: dict[str, Any], state: HostState) -> tuple[HostState, bool]:
    """Write the updates area's sources file first (when the host lacks the security
    suite), so every install of the run already sees security fixes; the returned state
    holds it as live, so the area itself does not write it again."""
    f = security_sources_file(variables, state)
    if f is None:
        noop(name="updates: security suite", reason="the host's apt sources carry it")
        return state, False
    changed = file_changed(f, state.files.get(f.path))
    _file_op(f, state)
    live = LiveFile(True, f.content, f.mode, f.owner, f.group)
    return replace(state, files={**state.files, f.path: live}), changed


def updates(variables: dict[str, Any], state: HostState) -> None:
    state, changed = security_sources(variables, state)
    missing = [p for p in PACKAGES["updates"] if p not in state.packages]
    if missing:
        name = f"updates: install {', '.join(missing)}"
        with keyed(name):
            apt.packages(name=name, packages=missing, update=True, no_recommends=True)
    elif changed or lists_stale(variables, state):
        apt.update(name="updates: apt-get update (new sources, or stale lists)")
    _files("updates", variables, state)


def accounts(variables: dict[str, Any], state: HostState) -> None:
    _packages("accounts", state)
    changed = _files("accounts", variables, state)
    profiles = [op for f, op in zip(area_files("accounts", variables, state), changed, strict=True)
                if f.path.startswith(PAM_CONFIGS)]  # fmt: skip
    current = pam_current(variables, state.probes.get("acc_pam", ""))
    server.shell(
        name="accounts: pam-auth-update (vcops profiles)",
        commands=[PAM_AUTH_UPDATE],
        _if=any_changed(*profiles) if current else None,
    )
    fixes = mode_fixes(state.probes.get("acc_stat", ""))
    if fixes:
        server.shell(name="accounts: sudoers.d and cron modes, no deny files", commands=fixes)
    else:
        noop(name="accounts: sudoers.d and cron modes, no deny files", reason="modes are right")
    if root_age_needed(variables, state.probes.get("acc_root", "")):
        server.shell(name="accounts: root password max age", commands=[root_age_command(variables)])
    else:
        noop(name="accounts: root password max age", reason="root's max age is set")
    systemd.service(name="accounts: cron running", service="cron", running=True, enabled=True)


def _voip_common(area: str, variables: dict[str, Any], state: HostState) -> list[Any]:
    _packages(area, state)
    cert = certificates(variables).get(area)
    ops = []
    if cert and not all(state.exists.get(cert[k], False) for k in ("cert", "key")):
        ops.append(
            server.shell(
                name=f"{area}: create TLS certificate", commands=[remote_command("cert", cert)]
            )
        )
    ops += _files(area, variables, state)
    for directory, group in config_dirs(variables).items():
        if area not in directory:
            continue
        info = state.dirs.get(directory, {})
        if not info.get("exists"):
            continue
        fix_group = group in state.groups and bool(info.get("wrong_group"))
        if info.get("world") or fix_group:
            steps = []
            if group in state.groups:
                steps.append(f"chgrp -R {shlex.quote(group)} {shlex.quote(directory)}")
            steps.append(f"chmod -R g+rX,g-w,o-rwx {shlex.quote(directory)}")
            name = f"{area}: lock down {directory}"
            with keyed(name):
                server.shell(name=name, commands=steps)
    return ops


def kamailio(variables: dict[str, Any], state: HostState) -> None:
    changed = _voip_common("kamailio", variables, state)
    server.shell(
        name="kamailio: restart (when enabled)",
        commands=[
            "if systemctl is-enabled --quiet kamailio; then systemctl restart kamailio && "
            "sleep 1 && systemctl is-active --quiet kamailio; fi"
        ],
        _if=any_changed(*changed),
    )


def asterisk(variables: dict[str, Any], state: HostState) -> None:
    changed = _voip_common("asterisk", variables, state)
    if "asterisk" not in state.packages:
        noop(
            name="asterisk: reload",
            reason="asterisk is not installed here: config written, nothing to validate or reload",
        )
        return
    server.shell(
        name="asterisk: reload",
        commands=["if systemctl is-active --quiet asterisk; then asterisk -rx 'core reload'; fi"],
        _if=any_changed(*changed),
    )


def freeswitch(variables: dict[str, Any], state: HostState) -> None:
    changed = _voip_common("freeswitch", variables, state)
    if "freeswitch" not in state.packages:
        noop(
            name="freeswitch: reloadxml",
            reason="freeswitch is not installed here: config written, nothing to reload",
        )
        return
    server.shell(
        name="freeswitch: reloadxml",
        commands=["if systemctl is-active --quiet freeswitch; then fs_cli -x reloadxml; fi"],
        _if=any_changed(*changed),
    )


AREA_DEPLOYS = {
    "ssh": ssh,
    "firewall": firewall,
    "fail2ban": fail2ban,
    "kernel": kernel,
    "audit": audit,
    "time": time,
    "updates": updates,
    "accounts": accounts,
    "kamailio": kamailio,
    "asterisk": asterisk,
    "freeswitch": freeswitch,
    "logging": logging,
    "integrity": integrity,
}


def run_area(area: str) -> None:
    """Run one area's deploy on the current host, if the host has that area."""
    variables = host_vars()
    if area not in areas(variables):
        return
    AREA_DEPLOYS[area](variables, host_state(variables))


APT_CACHE_SECONDS = 3600
"""The baseline's one ``apt-get update`` is skipped when the lists are younger."""


class ProgressReporter(BaseStateCallback):
    """Prints the marker lines :class:`vcops.enforce.pyinfra_progress.ProgressReader`
    reads: each operation as it starts (its place in the run), each host that fails."""

    def __init__(self) -> None:
        self.order: dict[str, int] = {}

    def operation_start(self, state: State, op_hash: str) -> None:  # type: ignore[override]
        if op_hash not in self.order:  # the order is fixed once operations run
            order = state.get_op_order()  # type: ignore[no-untyped-call]
            self.order = {h: i for i, h in enumerate(order, start=1)}
        names = state.get_op_meta(op_hash).names
        line = op_line(self.order.get(op_hash, 0), len(self.order), ", ".join(sorted(names)))
        print(line, file=sys.stderr, flush=True)

    def operation_host_error(self, state: State, host: Any, *_args: object) -> None:  # type: ignore[override]
        print(failed_line(host.name), file=sys.stderr, flush=True)


def report_progress() -> None:
    """Register the :class:`ProgressReporter` once per pyinfra run."""
    if not any(isinstance(h, ProgressReporter) for h in pyinfra_state.callback_handlers):
        pyinfra_state.add_callback_handler(ProgressReporter())  # type: ignore[no-untyped-call]


def run_baseline() -> None:
    """Every area the current host's roles call for, in order, after ONE apt transaction
    for every package they need (one ``apt-get update`` at most, not one per area)."""
    report_progress()
    variables = host_vars()
    state = host_state(variables)
    refresh = False  # new security sources, or lists older than the limit (VC-PATCH-006)
    if "updates" in areas(variables):
        state, refresh = security_sources(variables, state)
        refresh = refresh or lists_stale(variables, state)
    wanted = list(
        dict.fromkeys(
            p
            for a in areas(variables)
            for p in area_packages(a, variables)
            if p not in state.packages
        )
    )
    if wanted:
        name = f"baseline: install {', '.join(wanted)}"
        with keyed(name):
            apt.packages(
                name=name,
                packages=wanted,
                update=True,
                cache_time=None if refresh else APT_CACHE_SECONDS,
                no_recommends=True,
            )
        state = replace(state, packages=state.packages | frozenset(wanted))
    elif refresh:
        apt.update(name="baseline: apt-get update (new sources, or stale lists)")
    for area in areas(variables):
        if area == "updates":
            _files("updates", variables, state)
            continue
        AREA_DEPLOYS[area](variables, state)
