"""Server controls (all roles): SSH, firewall, fail2ban, kernel, audit, time, updates, files.

Every check is pure: :class:`~vcops.facts.server.ServerFacts` and a
:class:`~vcops.baseline.context.ServerContext` in, a
:class:`~vcops.baseline.model.CheckResult` out.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from datetime import date

from vcops.baseline.context import ServerContext
from vcops.baseline.kernel_settings import sysctl_sets
from vcops.baseline.model import (
    CheckResult,
    Control,
    failed,
    not_applicable,
    passed,
    unknown,
)
from vcops.baseline.server_patch import patch_gate
from vcops.facts import nft
from vcops.facts.sections import to_int
from vcops.facts.server import ServerFacts
from vcops.roles import VOIP_ROLES

ServerControl = Control[ServerFacts, ServerContext]
Check = Callable[[ServerFacts, ServerContext], CheckResult]
VOIP = frozenset(VOIP_ROLES)
NO_SSHD = "sshd -T did not run (sshd missing or its config is invalid)"


def _sshd(facts: ServerFacts, key: str) -> str | None:
    if facts.sshd is None:
        return None
    values = facts.sshd.get(key)
    return values[0] if values else None


# --- SSH -----------------------------------------------------------------------


def _ssh_equals(key: str, want: str) -> Check:
    def check(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
        expected = f"{key} {want}"
        value = _sshd(facts, key)
        if facts.sshd is None:
            return unknown(expected, NO_SSHD)
        if value is None:
            return unknown(expected, f"sshd -T printed no {key}")
        return (passed if value.lower() == want.lower() else failed)(expected, f"{key} {value}")

    return check


def check_root_login(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    want = ctx.settings.ssh_permit_root_login
    expected = "permitrootlogin no" if want == "no" else "permitrootlogin no or prohibit-password"
    value = _sshd(facts, "permitrootlogin")
    if facts.sshd is None or value is None:
        return unknown(expected, NO_SSHD)
    allowed = {"no"} if want == "no" else {"no", "prohibit-password", "without-password"}
    return (passed if value in allowed else failed)(expected, f"permitrootlogin {value}")


def check_key_only(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = (
        "passwordauthentication no, kbdinteractiveauthentication no, pubkeyauthentication yes"
    )
    if facts.sshd is None:
        return unknown(expected, NO_SSHD)
    actual = {
        k: _sshd(facts, k)
        for k in ("passwordauthentication", "kbdinteractiveauthentication", "pubkeyauthentication")
    }
    bad = [
        f"{k} {v}"
        for k, v in actual.items()
        if v is not None and v != ("yes" if k == "pubkeyauthentication" else "no")
    ]
    if bad:
        return failed(expected, ", ".join(bad))
    if missing := [k for k, v in actual.items() if v is None]:
        return unknown(expected, f"sshd -T printed no {', '.join(missing)}")
    return passed(expected, ", ".join(f"{k} {v}" for k, v in actual.items() if v))


def check_max_auth_tries(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    limit = ctx.settings.ssh_max_auth_tries
    expected = f"maxauthtries <= {limit}"
    value = _sshd(facts, "maxauthtries")
    tries = to_int(value) if value is not None else None
    if facts.sshd is None or tries is None:
        return unknown(expected, NO_SSHD)
    return (passed if tries <= limit else failed)(expected, f"maxauthtries {value}")


def _algorithms(key: str, setting: str) -> Check:
    def check(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
        allowed: list[str] = getattr(ctx.settings, setting)
        expected = f"{key} only from the modern set ({len(allowed)} algorithms)"
        value = _sshd(facts, key)
        if facts.sshd is None or value is None:
            return unknown(expected, NO_SSHD)
        offered = [a for a in value.split(",") if a]
        weak = [
            a
            for a in offered
            if a not in allowed and not a.startswith("ext-info") and not a.startswith("kex-strict")
        ]
        if weak:
            return failed(expected, f"also offers {', '.join(weak)}")
        return passed(expected, f"{len(offered)} modern algorithms")

    return check


def check_no_forwarding(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "allowtcpforwarding no, allowagentforwarding no, x11forwarding no, permittunnel no"
    if facts.sshd is None:
        return unknown(expected, NO_SSHD)
    values = {
        k: _sshd(facts, k)
        for k in ("allowtcpforwarding", "allowagentforwarding", "x11forwarding", "permittunnel")
    }
    bad = [f"{k} {v}" for k, v in values.items() if v is not None and v != "no"]
    if bad:
        return failed(expected, ", ".join(bad))
    if missing := [k for k, v in values.items() if v is None]:
        return unknown(expected, f"sshd -T printed no {', '.join(missing)}")
    return passed(expected, "all off")


# --- firewall ------------------------------------------------------------------


def _ruleset(facts: ServerFacts, expected: str) -> nft.Ruleset | CheckResult:
    if facts.nft is not None:
        return facts.nft
    if facts.packages is not None and "nftables" not in facts.packages:
        return failed(expected, "nftables is not installed: no host firewall")
    return unknown(expected, facts.nft_error or "nft did not run")


def check_default_drop(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "an input chain with policy drop"
    rs = _ruleset(facts, expected)
    if isinstance(rs, CheckResult):
        return rs
    if not rs.input_chains():
        return failed(expected, "no input chain: every port is open")
    if nft.default_drop(rs):
        return passed(expected, "input policy drop")
    return failed(expected, "input policy accept")


def _fmt(nets: list[nft.Network]) -> str:
    if any(n.prefixlen == 0 for n in nets):
        return "anywhere"
    return ", ".join(str(n) for n in nets[:4]) + (" ..." if len(nets) > 4 else "")


def check_ssh_from_management(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    mgmt = list(ctx.management_networks)
    expected = (
        f"tcp/{ctx.settings.ssh_port} only from {_fmt(mgmt) if mgmt else 'management networks'}"
    )
    if not mgmt:
        return unknown(expected, "no management_networks in the inventory for this site")
    rs = _ruleset(facts, expected)
    if isinstance(rs, CheckResult):
        return rs
    reach = nft.exposure(rs, "tcp", ctx.settings.ssh_port)
    extra = nft.outside(reach, mgmt)
    if extra:
        return failed(expected, f"tcp/{ctx.settings.ssh_port} open from {_fmt(extra)}")
    if not reach:
        return failed(
            expected, f"tcp/{ctx.settings.ssh_port} closed to the management networks too"
        )
    return passed(expected, f"tcp/{ctx.settings.ssh_port} from {_fmt(reach)}")


def _voip_ports(ctx: ServerContext) -> list[tuple[str, int, str]]:
    lo, _, hi = ctx.settings.rtp_port_range.partition("-")
    ports = [
        (proto, p, f"SIP {proto}/{p}") for p in ctx.settings.sip_ports for proto in ("udp", "tcp")
    ]
    ports += [("udp", int(lo), f"RTP udp/{lo}"), ("udp", int(hi), f"RTP udp/{hi}")]
    return ports


def check_voip_ports_only_on_voip_roles(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "SIP and RTP ports closed (no VoIP role)"
    if ctx.roles & VOIP:
        return not_applicable(
            "SIP and RTP open only on VoIP roles",
            f"the host has VoIP role(s) {', '.join(sorted(ctx.roles & VOIP))}",
        )
    rs = _ruleset(facts, expected)
    if isinstance(rs, CheckResult):
        return rs
    open_ports = [
        label
        for proto, port, label in _voip_ports(ctx)
        if nft.outside(nft.exposure(rs, proto, port), list(ctx.management_networks))
    ]
    return (failed if open_ports else passed)(
        expected, f"open: {', '.join(open_ports)}" if open_ports else "closed"
    )


def check_management_ports(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    ports = ctx.settings.management_ports
    mgmt = list(ctx.management_networks)
    expected = (
        "management ports ("
        + ", ".join(f"{p}" for p in sorted(set(ports.values())))
        + ") only from management networks"
    )
    rs = _ruleset(facts, expected)
    if isinstance(rs, CheckResult):
        return rs
    exposed = []
    for name, port in sorted(ports.items(), key=lambda kv: kv[1]):
        reach: dict[str, list[nft.Network]] = {}
        for proto in ("tcp", "udp"):
            extra = nft.outside(nft.exposure(rs, proto, port), mgmt)
            if extra:
                reach[proto] = extra
        if reach:
            where = _fmt(next(iter(reach.values())))
            exposed.append(f"{name} {port}/{'+'.join(reach)} from {where}")
    return (failed if exposed else passed)(
        expected, "; ".join(exposed) if exposed else "not reachable beyond management networks"
    )


def _required_jails(ctx: ServerContext) -> list[str]:
    jails = list(ctx.settings.fail2ban_jails)
    for role in sorted(ctx.roles):
        for jail in ctx.settings.fail2ban_role_jails.get(role, []):
            if jail not in jails:
                jails.append(jail)
    return jails


def check_fail2ban(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    jails = _required_jails(ctx)
    expected = f"fail2ban running with jails {', '.join(jails)}"
    if facts.fail2ban_jails is None:
        if facts.packages is not None and "fail2ban" not in facts.packages:
            return failed(expected, "fail2ban is not installed")
        service = facts.service("fail2ban")
        if service is not None and service.exists and not service.running:
            return failed(expected, f"fail2ban is {service.active}")
        return unknown(expected, facts.fail2ban_error or "fail2ban-client did not answer")
    missing = [j for j in jails if j not in facts.fail2ban_jails]
    return (failed if missing else passed)(
        expected,
        f"missing jails: {', '.join(missing)}"
        if missing
        else f"jails: {', '.join(facts.fail2ban_jails)}",
    )


# --- kernel --------------------------------------------------------------------


def _sysctl_diff(facts: ServerFacts, wanted: dict[str, str]) -> list[str]:
    assert facts.sysctl is not None
    return [
        f"{k}={facts.sysctl.get(k, 'missing')}"
        for k, v in wanted.items()
        if facts.sysctl.get(k) != v and k in facts.sysctl
    ]


def check_net_sysctls(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    wanted = sysctl_sets(ctx.settings, ctx.roles)["net"]  # with the roles' VoIP exceptions
    expected = f"{len(wanted)} network sysctls hardened"
    if facts.sysctl is None:
        return unknown(expected, "sysctl -a did not run")
    bad = _sysctl_diff(facts, wanted)
    return (failed if bad else passed)(expected, ", ".join(bad) if bad else "as expected")


def check_forwarding(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    allowed = bool(ctx.roles & set(ctx.settings.forwarding_roles))
    keys = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
    if allowed:
        return not_applicable(
            "forwarding off",
            "documented VoIP exception: "
            + ", ".join(sorted(ctx.roles & set(ctx.settings.forwarding_roles)))
            + " hosts forward media",
        )
    expected = "net.ipv4.ip_forward=0, net.ipv6.conf.all.forwarding=0"
    if facts.sysctl is None:
        return unknown(expected, "sysctl -a did not run")
    bad = [f"{k}={facts.sysctl[k]}" for k in keys if facts.sysctl.get(k, "0") != "0"]
    return (failed if bad else passed)(expected, ", ".join(bad) if bad else "off")


def check_kernel_sysctls(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    wanted = ctx.settings.kernel_sysctls
    expected = f"{len(wanted)} kernel and fs sysctls hardened"
    if facts.sysctl is None:
        return unknown(expected, "sysctl -a did not run")
    if facts.in_container:
        return not_applicable(
            expected,
            "not applicable in a container: kernel.* and fs.* are read-only and belong to the container host",
        )
    bad = _sysctl_diff(facts, wanted)
    return (failed if bad else passed)(expected, ", ".join(bad) if bad else "as expected")


# --- audit ---------------------------------------------------------------------


def service_running(facts: ServerFacts, name: str, *, in_container: str = "") -> CheckResult:
    """``name`` (package and unit) installed, enabled and running. With ``in_container``
    (why it cannot run there), a container only needs it installed and enabled."""
    expected = f"{name} installed, enabled and running"
    if facts.packages is not None and name not in facts.packages:
        return failed(expected, f"{name} is not installed")
    service = facts.service(name)
    if service is None:
        return unknown(expected, "systemctl did not answer")
    if in_container and facts.in_container:
        if service.enabled:
            return not_applicable(expected, f"not applicable in a container: {in_container}")
        return failed(expected, f"{name} is {service.unit_file or 'not enabled'}")
    if service.running and service.enabled:
        return passed(expected, "running, enabled")
    return failed(expected, f"{name} {service.active}, {service.unit_file or 'not installed'}")


def check_auditd_running(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    return service_running(
        facts,
        "auditd",
        in_container="the kernel has no audit support here (auditd is installed and enabled)",
    )


def check_audit_rules(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    watches = ctx.settings.audit_watches
    expected = f"audit watches on {len(watches)} identity and SSH config paths"
    rules = facts.audit_active_rules if facts.audit_active_rules else facts.audit_rule_files
    if rules is None:
        return unknown(expected, "no audit rules could be read")
    missing = []
    for path in watches:
        if not any(
            ("-w " + path + " ") in f"{r} "
            and "w" in r.split("-p ")[-1][:4]
            and "a" in r.split("-p ")[-1][:4]
            for r in rules
        ):
            missing.append(path)
    source = "loaded" if facts.audit_active_rules else "in /etc/audit/rules.d"
    return (failed if missing else passed)(
        expected,
        f"missing: {', '.join(missing)}" if missing else f"all {len(watches)} watches {source}",
    )


# --- time ----------------------------------------------------------------------


def check_chrony(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "chrony installed and enabled with NTP sources"
    if facts.packages is None:
        return unknown(expected, "dpkg-query did not run")
    if "chrony" not in facts.packages:
        others = [
            p for p in ("systemd-timesyncd", "ntp", "ntpsec", "openntpd") if p in facts.packages
        ]
        return failed(
            expected,
            f"chrony not installed{' (found ' + ', '.join(others) + ')' if others else ''}",
        )
    service = facts.service("chrony")
    sources = [ln for ln in facts.chrony_conf or [] if ln.split()[0] in {"server", "pool", "peer"}]
    if service is None or not service.enabled:
        return failed(expected, "chrony is not enabled")
    if not sources:
        return failed(expected, "no server or pool lines")
    return passed(expected, f"{len(sources)} NTP sources")


def check_time_synchronised(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "clock synchronised (chrony leap status Normal)"
    if facts.in_container:
        return not_applicable(
            expected,
            "not applicable in a container: chronyd cannot steer a container's clock (it is the container host's)",
        )
    if facts.chrony_tracking is None:
        if facts.ntp_synchronized is not None:
            return (passed if facts.ntp_synchronized else failed)(
                expected, f"NTPSynchronized={'yes' if facts.ntp_synchronized else 'no'}"
            )
        return unknown(expected, "chronyc tracking did not answer")
    leap = facts.chrony_tracking.get("Leap status", "?")
    return (passed if leap == "Normal" else failed)(expected, f"leap status {leap}")


# --- updates (3.2.2) -------------------------------------------------------------


def check_unattended_upgrades(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "unattended-upgrades installed, APT::Periodic::Unattended-Upgrade 1, security origin"
    if facts.packages is None or facts.apt_config is None:
        return unknown(expected, "dpkg-query or apt-config did not run")
    if "unattended-upgrades" not in facts.packages:
        return failed(expected, "unattended-upgrades is not installed")
    if (gate := patch_gate(facts, ctx, expected)) is not None:
        return gate
    cfg = facts.apt_config
    bad = []
    if cfg.get("APT::Periodic::Unattended-Upgrade", "0") == "0":
        bad.append("APT::Periodic::Unattended-Upgrade is 0")
    if cfg.get("APT::Periodic::Update-Package-Lists", "0") == "0":
        bad.append("APT::Periodic::Update-Package-Lists is 0")
    origins = cfg.get("Unattended-Upgrade::Origins-Pattern::", "") + cfg.get(
        "Unattended-Upgrade::Allowed-Origins::", ""
    )
    if "security" not in origins.lower():
        bad.append("no security origin")
    return (failed if bad else passed)(expected, "; ".join(bad) if bad else "on, security origin")


def check_security_updates(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    days = ctx.settings.security_update_max_age_days
    expected = f"no security update pending longer than {days} days"
    if facts.upgradable is None:
        return unknown(expected, "apt list --upgradable did not run")
    if (gate := patch_gate(facts, ctx, expected)) is not None:
        return gate
    now = int(ctx.now.timestamp())
    pending = [u for u in facts.upgradable if u.security]
    overdue = [
        u
        for u in pending
        if now - facts.security_first_seen.get(f"{u.package}={u.version}", now) > days * 86400
    ]
    if overdue:
        names = ", ".join(f"{u.package} {u.version}" for u in overdue[:5])
        return failed(
            expected, f"{len(overdue)} overdue: {names}{' ...' if len(overdue) > 5 else ''}"
        )
    if pending:
        return passed(expected, f"{len(pending)} pending, none overdue")
    return passed(expected, "none pending")


def check_reboot_required(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    days = ctx.settings.reboot_required_max_days
    expected = f"no reboot required for longer than {days} days"
    if facts.reboot_required is None:
        return unknown(expected, "could not read /var/run/reboot-required")
    if not facts.reboot_required:
        return passed(expected, "no reboot required")
    since = facts.reboot_required_since or int(ctx.now.timestamp())
    age = (int(ctx.now.timestamp()) - since) // 86400
    return (failed if age > days else passed)(expected, f"reboot required for {age} days")


def check_release_supported(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "a release still in security support"
    if facts.os_id is None or facts.os_version_id is None:
        return unknown(expected, "no /etc/os-release")
    key = f"{facts.os_id} {facts.os_version_id}"
    end = ctx.settings.supported_releases.get(key)
    if end is None:
        return failed(expected, f"{key} is not a supported release")
    if date.fromisoformat(end) < ctx.now.date():
        return failed(expected, f"{key} support ended {end}")
    return passed(expected, f"{key}, supported until {end}")


# --- files ---------------------------------------------------------------------


def check_file_modes(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    rules = ctx.settings.file_modes
    expected = ", ".join(f"{p} at most {m}" for p, m in rules.items())
    if facts.file_stats is None:
        return unknown(expected, "stat did not run")
    bad = []
    for pattern, mode in rules.items():
        limit = int(mode, 8)
        for path, st in facts.file_stats.items():
            if (fnmatch.fnmatch(path, pattern) and (st.mode & ~limit)) or (
                fnmatch.fnmatch(path, pattern) and st.owner != "root"
            ):
                bad.append(f"{path} {st.mode:04o} {st.owner}:{st.group}")
    return (failed if bad else passed)(expected, ", ".join(bad) if bad else "as expected")


def check_voip_config_dirs(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    dirs = sorted({d for role, d in ctx.settings.voip_config_dirs.items() if role in ctx.roles})
    expected = f"{', '.join(dirs)} not world-readable"
    if facts.file_stats is None or facts.world_accessible is None:
        return unknown(expected, "stat did not run")
    present = [d for d in dirs if d in facts.file_stats]
    if not present:
        return unknown(expected, f"{', '.join(dirs)} not found")
    bad = [
        p for p in facts.world_accessible if any(p == d or p.startswith(d + "/") for d in present)
    ]
    return (failed if bad else passed)(
        expected,
        f"{len(bad)} world-accessible: {', '.join(bad[:4])}{' ...' if len(bad) > 4 else ''}"
        if bad
        else "no world access",
    )
