"""Kernel-area controls (VC-KRN-004..006, VC-MOD-001, VC-CORE-001/002, VC-ACCT-001) on
compliant, non-compliant and missing-data facts, parsed from gather.sh-shaped text;
the role exceptions and settings that both engines and the scanner share."""

from __future__ import annotations

import ipaddress
import subprocess
from datetime import UTC, datetime
from importlib import resources

import pytest

from vcops.baseline.context import ServerContext
from vcops.baseline.kernel_settings import accounting_on, blacklist_for, sysctl_sets
from vcops.baseline.server_catalog import SERVER_CONTROLS
from vcops.baseline.settings import DEFAULT_SETTINGS, BaselineSettings
from vcops.connectors.hosttask import compose, split
from vcops.enforce.files import HostState
from vcops.enforce.render import area_files
from vcops.enforce.sysctl import wanted_sysctls
from vcops.enforce.vars import vars_from_settings
from vcops.facts.kernel import SECTIONS as KERNEL_SECTIONS
from vcops.facts.kernel import kernel_facts, parse_modprobe, parse_sysctl_files
from vcops.facts.sections import ServiceState
from vcops.facts.server import ServerFacts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MGMT = (ipaddress.ip_network("10.213.0.0/24"),)
IDS = ("VC-KRN-004", "VC-KRN-005", "VC-KRN-006", "VC-MOD-001", "VC-CORE-001", "VC-CORE-002")


def ctx(*roles: str, settings: BaselineSettings = DEFAULT_SETTINGS) -> ServerContext:
    return ServerContext(
        settings=settings, roles=frozenset(roles), management_networks=MGMT, now=NOW
    )


def check(control_id: str, facts: ServerFacts, context: ServerContext) -> tuple[str, str]:
    control = next(c for c in SERVER_CONTROLS if c.id == control_id)
    result = control.check(facts, context)
    return result.status, f"{result.actual} | {result.detail}"


def hardened(
    roles: tuple[str, ...] = ("generic",),
    virt: str = "none",
    settings: BaselineSettings = DEFAULT_SETTINGS,
) -> ServerFacts:
    """Facts of a host that both engines hardened: its files, as gather.sh prints them."""
    v = vars_from_settings(settings, list(roles), [], None, "h")
    files = {f.path: f.content for f in area_files("kernel", v, HostState())}

    def prefixed(*paths: str) -> str:
        return "".join(f"{p}:{line}\n" for p in paths for line in files[p].splitlines())

    # systemd's own file (Debian 12), in the name order gather.sh prints the files in
    vendor = "/usr/lib/sysctl.d/99-protect-links.conf:fs.protected_fifos = 1\n"
    sections = {
        "sysctl_files": vendor + prefixed("/etc/sysctl.d/99-vcops-hardening.conf"),
        "modprobe_files": prefixed("/etc/modprobe.d/vcops-blacklist.conf"),
        "modules": "nf_tables 1 0 - Live 0x0\n",
        "limits_files": prefixed("/etc/security/limits.d/90-vcops-coredump.conf"),
        "coredump_files": prefixed("/etc/systemd/coredump.conf.d/90-vcops.conf"),
        "sysstat_default": files.get("/etc/default/sysstat", 'ENABLED="false"\n'),
    }
    live = wanted_sysctls(v, in_container=False)
    up = ServiceState(load="loaded", active="active", sub="running", unit_file="enabled")
    return ServerFacts.model_validate(
        {
            **kernel_facts(sections),
            "virt": virt,
            "sysctl": {**live, "kernel.pid_max": "4194304"},
            "packages": {"acct": "6.6.4", "sysstat": "12.6.1"},
            "services": {"acct.service": up, "sysstat.service": up},
        }
    )


def test_a_hardened_host_passes_every_kernel_control() -> None:
    for control_id in (*IDS, "VC-KRN-001", "VC-KRN-003", "VC-ACCT-001"):
        assert check(control_id, hardened(), ctx("generic"))[0] == "pass", control_id


def test_missing_data_is_unknown_never_pass() -> None:
    for control_id in (*IDS, "VC-ACCT-001"):
        assert check(control_id, ServerFacts(), ctx("generic"))[0] == "unknown", control_id
    # the files read but `sysctl -a` failed: still unknown on a real host
    no_live = hardened().model_copy(update={"sysctl": None})
    for control_id in ("VC-KRN-004", "VC-KRN-005", "VC-KRN-006", "VC-CORE-001"):
        assert check(control_id, no_live, ctx("generic"))[0] == "unknown", control_id


def test_a_stock_host_fails_every_kernel_control() -> None:
    stock = ServerFacts.model_validate(
        {
            **kernel_facts(
                {
                    "sysctl_files": "/usr/lib/sysctl.d/99-protect-links.conf:fs.protected_fifos = 1\n",
                    "modprobe_files": "",
                    "modules": "",
                    "limits_files": "/etc/security/limits.conf:#*  soft  core  0\n",
                    "coredump_files": "/etc/systemd/coredump.conf:[Coredump]\n",
                    "sysstat_default": "",
                }
            ),
            "virt": "none",
            "sysctl": {"net.ipv4.conf.all.arp_ignore": "0", "kernel.kexec_load_disabled": "0"},
            "packages": {},
            "services": {},
        }
    )
    for control_id in (*IDS, "VC-ACCT-001"):
        assert check(control_id, stock, ctx("generic"))[0] == "fail", control_id
    _, actual = check("VC-CORE-002", stock, ctx("generic"))
    assert "Storage=external (default)" in actual


def test_a_later_sysctl_file_overrides_ours() -> None:
    """Files apply by name and the last value wins: a vendor file sorting after ours
    (as 99-protect-links.conf did after a 90- file) is drift, though ours is right."""
    facts = hardened(virt="systemd-nspawn")
    assert facts.sysctl_files is not None
    later = kernel_facts(
        {"sysctl_files": "/usr/lib/sysctl.d/99-zz-vendor.conf:fs.protected_fifos = 1\n"}
    )["sysctl_files"]
    overridden = facts.model_copy(update={"sysctl_files": {**facts.sysctl_files, **later}})  # type: ignore[dict-item]
    status, actual = check("VC-KRN-006", overridden, ctx("generic"))
    assert status == "fail" and "file fs.protected_fifos=1" in actual


def test_live_drift_fails_even_when_the_file_is_right() -> None:
    facts = hardened()
    assert facts.sysctl is not None
    drifted = facts.model_copy(
        update={"sysctl": {**facts.sysctl, "kernel.perf_event_paranoid": "2"}}
    )
    status, actual = check("VC-KRN-006", drifted, ctx("generic"))
    assert status == "fail" and "kernel.perf_event_paranoid=2" in actual


def test_in_a_container_the_file_is_judged_and_live_kernel_values_are_not_applicable() -> None:
    good = hardened(virt="systemd-nspawn")
    status, detail = check("VC-KRN-006", good, ctx("generic"))
    assert status == "not_applicable" and "container" in detail
    bad = good.model_copy(update={"sysctl_files": {}})
    status, detail = check("VC-KRN-006", bad, ctx("generic"))
    assert status == "fail" and "file kernel.kexec_load_disabled=unset" in detail
    # net.* is per network namespace: judged live in a container too
    assert good.sysctl is not None
    live = good.model_copy(update={"sysctl": {**good.sysctl, "net.ipv6.conf.all.autoconf": "1"}})
    assert check("VC-KRN-005", live, ctx("generic"))[0] == "fail"
    # loaded modules are the container host's
    loaded = good.model_copy(update={"modules_loaded": ["sctp"]})
    assert check("VC-MOD-001", loaded, ctx("generic"))[0] == "pass"
    assert (
        check(
            "VC-MOD-001", hardened().model_copy(update={"modules_loaded": ["sctp"]}), ctx("generic")
        )[0]
        == "fail"
    )


def test_media_roles_keep_gratuitous_arp_and_loose_rp_filter_documented() -> None:
    sets = sysctl_sets(DEFAULT_SETTINGS, {"sbc"})
    assert sets["arp"]["net.ipv4.conf.all.drop_gratuitous_arp"] == "0"
    assert sets["net"]["net.ipv4.conf.all.rp_filter"] == "2"
    assert sysctl_sets(DEFAULT_SETTINGS, {"kamailio"})["net"]["net.ipv4.conf.all.rp_filter"] == "1"
    sbc = hardened(("sbc",))
    status, detail = check("VC-KRN-004", sbc, ctx("sbc"))
    assert status == "pass" and "drop_gratuitous_arp=0 (sbc)" in detail
    # a generic host's values on an SBC are drift the other way: the exception is enforced
    assert check("VC-KRN-004", hardened(), ctx("sbc"))[0] == "fail"


def test_sctp_blacklisted_unless_sip_over_sctp_is_declared() -> None:
    assert "sctp" in blacklist_for(DEFAULT_SETTINGS, {"kamailio"})
    declared = DEFAULT_SETTINGS.model_copy(update={"sctp_signalling": True})
    assert "sctp" not in blacklist_for(declared, {"kamailio"})
    by_role = DEFAULT_SETTINGS.model_copy(update={"sctp_roles": ["sbc"]})
    assert "sctp" not in blacklist_for(by_role, {"sbc"}) and "sctp" in blacklist_for(
        by_role, {"generic"}
    )
    # a host declaring SCTP whose files still block it fails: SIP over SCTP would break
    status, actual = check("VC-MOD-001", hardened(), ctx("kamailio", settings=declared))
    assert status == "fail" and "sctp blocked" in actual
    v = vars_from_settings(declared, ["kamailio"], [], None, "h")
    blacklist = next(f for f in area_files("kernel", v, HostState()) if "modprobe" in f.path)
    assert "sctp" not in blacklist.content and "install dccp /bin/false" in blacklist.content


def test_module_config_is_read_as_kmod_reads_it() -> None:
    text = (
        "/etc/modprobe.d/a.conf:install usb-storage /bin/false\n"
        "/etc/modprobe.d/b.conf:install usb_storage /sbin/modprobe --ignore-install usb_storage\n"
        "/etc/modprobe.d/b.conf:blacklist   usb-storage\n"
        "/etc/modprobe.d/b.conf:# blacklist dccp\n"
    )
    parsed = parse_modprobe(text)
    assert parsed.install == {"usb_storage": "/bin/false"}  # the first install wins
    assert parsed.blacklist == ["usb_storage"]
    assert parse_sysctl_files("/a:kernel/sysrq=1\n/b:-kernel.sysrq = 0\n/c: ; x=1\n") == {
        "kernel.sysrq": "0"
    }


def test_core_limits_need_root_named_and_no_larger_entry() -> None:
    facts = hardened()
    assert facts.core_limits is not None
    no_root = facts.model_copy(
        update={"core_limits": [e for e in facts.core_limits if e.domain != "root"]}
    )
    status, actual = check("VC-CORE-001", no_root, ctx("generic"))
    assert status == "fail" and "no hard core 0 for root" in actual
    extra = kernel_facts({"limits_files": "/etc/security/limits.d/z.conf:* soft core unlimited\n"})
    more = facts.model_copy(update={"core_limits": [*facts.core_limits, *extra["core_limits"]]})  # type: ignore[misc]
    assert check("VC-CORE-001", more, ctx("generic"))[0] == "fail"


@pytest.mark.parametrize(
    ("roles", "setting", "on"),
    [
        (("generic",), None, True),
        (("rtpengine",), None, False),
        (("sbc",), True, True),
        (("kamailio",), False, False),
    ],
)
def test_process_accounting_follows_the_setting_and_media_roles(
    roles: tuple[str, ...], setting: bool | None, on: bool
) -> None:
    settings = DEFAULT_SETTINGS.model_copy(update={"process_accounting": setting})
    assert accounting_on(settings, set(roles)) is on
    v = vars_from_settings(settings, list(roles), [], None, "h")
    paths = {f.path for f in area_files("kernel", v, HostState())}
    assert ("/etc/default/sysstat" in paths) is on
    status, _ = check(
        "VC-ACCT-001", hardened(roles, settings=settings), ctx(*roles, settings=settings)
    )
    assert status == ("pass" if on else "not_applicable")


def test_accounting_off_in_sysstat_fails() -> None:
    facts = hardened().model_copy(update={"sysstat_default": {"ENABLED": "false"}})
    status, actual = check("VC-ACCT-001", facts, ctx("generic"))
    assert status == "fail" and "sysstat ENABLED is not true" in actual


class _KernelSections:
    """The kernel lines of gather.sh as a host task (what the facts task runs)."""

    name = "facts"

    def body(self) -> str:
        text = resources.files("vcops.facts").joinpath("gather.sh").read_text()
        return text[text.index("# kernel area") :]


def test_gather_kernel_sections_run_under_sh_with_the_real_framing() -> None:
    """Run locally (read-only: cat, ls, grep) under /bin/sh with hosttask's prelude: each
    section keeps its own name (the helpers must not clobber `section`'s variables)."""
    nonce = "0123456789abcdef"
    script = compose([_KernelSections()], nonce)
    done = subprocess.run(
        ["/bin/sh"], input=script, capture_output=True, text=True, timeout=60, check=False
    )
    out = split(done.stdout, nonce).task("facts")
    names = {r.name for r in out.records}
    assert set(KERNEL_SECTIONS) <= names, names
    for name in ("sysctl_files", "modprobe_files", "limits_files", "coredump_files"):
        record = out.get(name)
        assert record is not None and record.rc == 0, name


def test_the_files_each_reader_applies_are_kept_in_its_order() -> None:
    from vcops.facts.kernel import reader_order

    grep = (
        "/lib/sysctl.d/50-default.conf:net.ipv4.conf.all.rp_filter = 2\n"
        "/usr/lib/sysctl.d/50-default.conf:net.ipv4.conf.all.rp_filter = 1\n"
        "/etc/sysctl.conf:kernel.sysrq = 0\n"
        "/etc/sysctl.d/99-vcops.conf:net.ipv4.conf.all.rp_filter = 1\n"
        "/run/sysctl.d/50-default.conf:net.ipv4.conf.all.rp_filter = 0\n"
        "/etc/sysctl.d/notes.txt:kernel.sysrq = 1\n"
        "/etc/sysctl.d/sub/x.conf:kernel.sysrq = 1\n"
        "grep: /usr/local/lib/sysctl.d/*.conf: No such file or directory\n"
    )
    assert reader_order(grep, "sysctl_files").splitlines() == [
        "/run/sysctl.d/50-default.conf:net.ipv4.conf.all.rp_filter = 0",  # /run before /usr/lib
        "/etc/sysctl.d/99-vcops.conf:net.ipv4.conf.all.rp_filter = 1",
        "/etc/sysctl.conf:kernel.sysrq = 0",  # read last
    ]
    limits = (
        "/etc/security/limits.d/b.conf:* hard core 0\n"
        "/etc/security/limits.conf:root hard core 0\n"
        "/etc/security/limits.d/a.conf:* hard core 10\n"
    )
    assert [line.split(":")[0] for line in reader_order(limits, "limits_files").splitlines()] == [
        "/etc/security/limits.conf",  # read first
        "/etc/security/limits.d/a.conf",
        "/etc/security/limits.d/b.conf",
    ]
    assert reader_order("", "coredump_files") == ""


def test_gather_greps_exactly_the_files_the_readers_apply() -> None:
    import shlex

    from vcops.facts.kernel import READERS

    text = resources.files("vcops.facts").joinpath("gather.sh").read_text()
    for section, (first, dirs, last) in READERS.items():
        line = next(x for x in text.splitlines() if x.startswith(f"section {section} "))
        words = shlex.split(line)  # section NAME quiet grep -H '' PATH...
        assert words[2:6] == ["quiet", "grep", "-H", ""], section
        paths = words[6:]
        assert paths == [*first, *(f"{d}/*.conf" for d in dirs), *last], section
