"""Kernel-area controls beyond the first three sysctl sets: the full network and kernel
sysctl sets, module blacklists, core dumps, process accounting (pure checks).

Sysctls are judged twice: the sysctl files must set every key (what the host gets at
boot), and the live value must match where the kernel lets the host see it. Inside a
container ``kernel.*``, ``fs.*``, ``vm.*`` and ``net.core.bpf_*`` belong to the
container host: the files are still judged, the live values are *not applicable*
with the reason. The modprobe, limits and coredump files are judged by content
(readable in a container as anywhere).
"""

from __future__ import annotations

from vcops.baseline.context import ServerContext
from vcops.baseline.kernel_settings import (
    SCTP,
    accounting_on,
    blacklist_for,
    exceptions_applied,
    sctp_kept,
    sysctl_sets,
)
from vcops.baseline.model import CheckResult, failed, not_applicable, passed, unknown
from vcops.baseline.server import Check
from vcops.facts.kernel import module_name
from vcops.facts.server import ServerFacts

NO_FILES = "the sysctl files were not read"
NO_SYSCTL = "sysctl -a did not run"
CONTAINER_LIVE = (
    "live values not applicable in a container: kernel.*, fs.*, vm.* and net.core.bpf_* "
    "are read-only and belong to the container host"
)
REFUSING = ("/bin/false", "/bin/true", "/usr/bin/false", "/usr/bin/true")


def _file_diff(facts: ServerFacts, wanted: dict[str, str]) -> list[str]:
    assert facts.sysctl_files is not None
    return [
        f"file {k}={facts.sysctl_files.get(k, 'unset')}"
        for k, v in wanted.items()
        if facts.sysctl_files.get(k) != v
    ]


def _live_diff(facts: ServerFacts, wanted: dict[str, str]) -> list[str]:
    assert facts.sysctl is not None
    return [f"{k}={facts.sysctl[k]}" for k, v in wanted.items() if facts.sysctl.get(k, v) != v]


def _sysctl_check(name: str, what: str, *, host_owned: bool) -> Check:
    """A sysctl set judged in the files and live (``host_owned``: not live in a container)."""

    def check(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
        wanted = sysctl_sets(ctx.settings, ctx.roles)[name]
        expected = f"{len(wanted)} {what} set in the sysctl files and live"
        if facts.sysctl_files is None:
            return unknown(expected, NO_FILES)
        bad = _file_diff(facts, wanted)
        kept = [e for e in exceptions_applied(ctx.settings, ctx.roles) if e.split("=")[0] in wanted]
        detail = f"documented VoIP exceptions: {', '.join(kept)}" if kept else ""
        if host_owned and facts.in_container:
            if bad:
                return failed(expected, ", ".join(bad), CONTAINER_LIVE)
            return not_applicable(expected, f"the files set all {len(wanted)}; {CONTAINER_LIVE}")
        if facts.sysctl is None:
            return unknown(expected, NO_SYSCTL)
        bad += _live_diff(facts, wanted)
        return (failed if bad else passed)(
            expected, ", ".join(bad) if bad else "as expected", detail
        )

    return check


check_net_arp_sysctls = _sysctl_check("arp", "IPv4 ARP and local-routing sysctls", host_owned=False)
check_net_ipv6_sysctls = _sysctl_check(
    "ipv6", "IPv6 router-advertisement sysctls", host_owned=False
)
check_kernel_protect_sysctls = _sysctl_check(
    "protect", "kernel self-protection sysctls", host_owned=True
)


def check_module_blacklist(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    modules = blacklist_for(ctx.settings, ctx.roles)
    expected = f"{len(modules)} modules: install /bin/false and blacklist"
    if facts.modprobe is None:
        return unknown(expected, "the modprobe.d files were not read")
    bad = []
    for module in modules:
        name = module_name(module)
        install = facts.modprobe.install.get(name)
        if install not in REFUSING:
            bad.append(f"{module} install {install or 'unset'}")
        if name not in facts.modprobe.blacklist:
            bad.append(f"{module} not blacklisted")
    notes = []
    if sctp_kept(ctx.settings, ctx.roles):
        notes.append("sctp kept: SIP signalling over SCTP is declared")
        if SCTP in facts.modprobe.blacklist or SCTP in facts.modprobe.install:
            bad.append("sctp blocked although SIP signalling over SCTP is declared")
    if facts.in_container:
        notes.append("loaded modules not judged in a container (they are the container host's)")
    elif facts.modules_loaded is not None:
        loaded = sorted({module_name(m) for m in modules} & set(facts.modules_loaded))
        bad += [f"{m} loaded now" for m in loaded]
    return (failed if bad else passed)(
        expected, ", ".join(bad) if bad else "all blocked", "; ".join(notes)
    )


def check_core_limits(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "hard core 0 for * and root (limits.d); fs.suid_dumpable=0"
    if facts.core_limits is None:
        return unknown(expected, "the limits files were not read")
    if facts.sysctl_files is None:
        return unknown(expected, NO_FILES)
    bad = []
    for domain in ("*", "root"):
        entries = [e for e in facts.core_limits if e.domain == domain]
        if not any(e.type in ("hard", "-") and e.value == "0" for e in entries):
            bad.append(f"no hard core 0 for {domain}")
        bad += [f"{e.path}: {domain} {e.type} core {e.value}" for e in entries if e.value != "0"]
    bad += _file_diff(facts, {"fs.suid_dumpable": "0"})
    if facts.in_container:
        return (failed if bad else passed)(
            expected, ", ".join(bad) if bad else "limits and file as expected", CONTAINER_LIVE
        )
    if facts.sysctl is None:
        return unknown(expected, NO_SYSCTL)
    bad += _live_diff(facts, {"fs.suid_dumpable": "0"})
    return (failed if bad else passed)(expected, ", ".join(bad) if bad else "as expected")


def check_coredump_storage(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "systemd-coredump Storage=none, ProcessSizeMax=0"
    if facts.coredump_conf is None:
        return unknown(expected, "the coredump.conf files were not read")
    storage = facts.coredump_conf.get("storage", "external (default)")
    size = facts.coredump_conf.get("processsizemax", "default")
    ok = storage == "none" and size == "0"
    return (passed if ok else failed)(expected, f"Storage={storage}, ProcessSizeMax={size}")


def check_accounting(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "acct and sysstat installed and enabled"
    if not accounting_on(ctx.settings, ctx.roles):
        why = (
            "off by the process_accounting setting"
            if ctx.settings.process_accounting is False
            else "off by default on media roles (process_accounting_off_roles)"
        )
        return not_applicable(expected, why)
    if facts.packages is None or facts.services is None or facts.sysstat_default is None:
        return unknown(expected, "packages, services or /etc/default/sysstat not read")
    bad = [f"{p} not installed" for p in ("acct", "sysstat") if p not in facts.packages]
    for unit in ("acct", "sysstat"):
        state = facts.service(unit)
        if state is None or not state.enabled:
            bad.append(f"{unit}.service not enabled")
        elif not state.running and not (unit == "acct" and facts.in_container):
            bad.append(f"{unit}.service not active")
    if facts.sysstat_default.get("ENABLED") != "true":
        bad.append("sysstat ENABLED is not true")
    detail = "accton needs CAP_SYS_PACCT, which a container lacks" if facts.in_container else ""
    return (failed if bad else passed)(expected, ", ".join(bad) if bad else "on", detail)
