"""Templates render for both engines, always keep the management path, and validate."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.enforce.apply import diff_masker, plan_host
from vcops.enforce.files import HostState, LiveFile, file_changed
from vcops.enforce.render import (
    BANNER_FILES,
    desired_files,
    edit_sip_profile,
    edit_vars_xml,
    render_template,
    supported_kex,
)
from vcops.enforce.vars import MANAGED_HEADER, secret_ref, vars_from_settings
from vcops.inventory.export import JsonValue
from vcops.paths import templates_dir
from vcops.snapshot.mask import marker_for

ROLES = ["kamailio", "asterisk", "freeswitch", "sbc", "rtpengine", "generic"]
LAB_FILES = Path(__file__).resolve().parents[2] / "src/vcops/lab/files"


def _vars(
    role: str, mgmt: list[str] | None = None, ctl: str | None = "10.213.0.1"
) -> dict[str, JsonValue]:
    nets = ["10.213.0.0/24"] if mgmt is None else mgmt
    return vars_from_settings(DEFAULT_SETTINGS, [role], nets, ctl, f"lab-{role}-01")


@pytest.mark.parametrize("role", ROLES)
def test_every_file_starts_with_the_managed_header(role: str) -> None:
    for f in desired_files(_vars(role), HostState()):
        if f.path in BANNER_FILES:  # shown verbatim at login: exactly the banner text
            assert f.content == DEFAULT_SETTINGS.banner_text + "\n", f.path
            continue
        assert MANAGED_HEADER in "\n".join(f.content.splitlines()[:3]), f.path


def test_every_template_is_used_and_plain_jinja() -> None:
    mine = [
        p.relative_to(templates_dir()).as_posix()
        for area in ("ssh", "firewall", "fail2ban", "kernel", "audit", "time", "updates",
                     "kamailio", "asterisk", "freeswitch")
        for p in (templates_dir() / area).glob("*.j2")
    ]  # fmt: skip
    assert len(mine) >= 15
    for name in mine:
        text = (templates_dir() / name).read_text()
        assert "host." not in " ".join(re.findall(r"{[{%](.*?)[}%]}", text)), (
            name
        )  # no engine globals


@pytest.mark.parametrize("role", ROLES)
@pytest.mark.parametrize("mgmt", [["10.213.0.0/24"], [], ["192.0.2.0/24", "2001:db8::/32"]])
def test_nftables_always_lets_the_management_path_in(role: str, mgmt: list[str]) -> None:
    text = render_template("firewall/nftables.conf.j2", _vars(role, mgmt))
    assert "policy drop" in text
    assert "ip saddr @mgmt_v4 tcp dport 22 accept" in text
    assert "10.213.0.1/32" in text or "10.213.0.0/24" in text  # the controller, always
    voip = role != "generic"
    assert ("dport { 5060, 5061 }" in text) is voip
    assert "5038" not in text and "8021" not in text  # management ports never opened


def test_sshd_config_carries_the_settings_and_only_supported_kex() -> None:
    v = _vars("generic")
    state = HostState(probes={"ssh_kex": "curve25519-sha256\nsntrup761x25519-sha512@openssh.com\n"})
    sshd = next(f for f in desired_files(v, state) if f.path == "/etc/ssh/sshd_config")
    assert "KexAlgorithms sntrup761x25519-sha512@openssh.com,curve25519-sha256\n" in sshd.content
    assert "PasswordAuthentication no" in sshd.content and "MaxAuthTries 3" in sshd.content
    assert sshd.mode == "0600" and sshd.validate == ("/usr/sbin/sshd", "-t", "-f", "%s")
    assert supported_kex(["a", "b"], "") == ["a", "b"]


def test_sshd_config_offers_ed25519_only_and_the_session_settings() -> None:
    v = _vars("generic")
    files = {f.path: f for f in desired_files(v, HostState())}
    sshd = files["/etc/ssh/sshd_config"].content
    assert re.findall(r"^HostKey (\S+)$", sshd, re.M) == ["/etc/ssh/ssh_host_ed25519_key"]
    for line in ("ClientAliveInterval 300", "ClientAliveCountMax 2", "MaxSessions 4",
                 "TCPKeepAlive no", "Banner /etc/issue.net"):  # fmt: skip
        assert f"\n{line}\n" in sshd, line
    kex = re.search(r"^KexAlgorithms (\S+)$", sshd, re.M)
    assert kex and kex[1].startswith("mlkem768x25519-sha256,") and "group-exchange" not in kex[1]
    settings = DEFAULT_SETTINGS.model_copy(
        update={"ssh_rsa_host_key": True, "banner_text": "Property of Example Telecom."}
    )
    v = vars_from_settings(settings, ["generic"], ["10.213.0.0/24"], None, "h")
    files = {f.path: f for f in desired_files(v, HostState())}
    assert "HostKey /etc/ssh/ssh_host_rsa_key\n" in files["/etc/ssh/sshd_config"].content
    assert "ecdsa" not in files["/etc/ssh/sshd_config"].content
    assert [files[p].content for p in BANNER_FILES] == ["Property of Example Telecom.\n"] * 2
    assert list(files).index("/etc/issue.net") < list(files).index("/etc/ssh/sshd_config")


def test_fail2ban_jails_follow_the_role() -> None:
    kam = render_template("fail2ban/vcops.conf.j2", _vars("kamailio"))
    gen = render_template("fail2ban/vcops.conf.j2", _vars("generic"))
    assert "backend = systemd" in kam and "[sshd]" in kam and "[kamailio]" in kam
    assert "filter = vcops-kamailio" in kam and "[kamailio]" not in gen
    assert "\nbantime.increment = true\n" in kam  # VC-F2B-002, in [DEFAULT] of the jail.d file
    paths = {f.path for f in desired_files(_vars("kamailio"), HostState())}
    assert "/etc/fail2ban/filter.d/vcops-kamailio.conf" in paths


def test_sysctl_and_audit_files_hold_every_setting() -> None:
    sysctl = render_template("kernel/sysctl.conf.j2", _vars("generic"))
    for key, value in {**DEFAULT_SETTINGS.net_sysctls, **DEFAULT_SETTINGS.kernel_sysctls}.items():
        assert f"{key} = {value}\n" in sysctl
    assert "net.ipv4.ip_forward = 0" in sysctl
    assert "ip_forward" not in render_template("kernel/sysctl.conf.j2", _vars("sbc"))
    rules = render_template("audit/vcops.rules.j2", _vars("generic"))
    for path in DEFAULT_SETTINGS.audit_watches:
        assert f"-w {path} -p wa -k " in rules


def test_voip_files_hold_references_not_secrets() -> None:
    ast = {f.path: f for f in desired_files(_vars("asterisk"), HostState())}
    manager = ast["/etc/asterisk/manager.conf"]
    assert f"secret = {secret_ref('asterisk_ami')}" in manager.content
    assert manager.secrets == {secret_ref("asterisk_ami"): "/etc/vcops/secrets/asterisk_ami"}
    assert "bindaddr = 127.0.0.1" in ast["/etc/asterisk/http.conf"].content
    assert "[anonymous]" not in ast["/etc/asterisk/pjsip.conf"].content
    kam = {
        f.path: f for f in desired_files(_vars("sbc"), HostState(groups=frozenset({"kamailio"})))
    }
    local = kam["/etc/kamailio/kamailio-local.cfg"]
    assert "#!define WITH_ANTIFLOOD\n" in local.content and "#!define WITH_TLS\n" in local.content
    assert local.group == "kamailio" and local.copy_dir == "/etc/kamailio"


def test_freeswitch_edits_keep_the_operators_files() -> None:
    vars_xml = (LAB_FILES / "freeswitch/etc/freeswitch/vars.xml").read_text()
    profile = (LAB_FILES / "freeswitch/etc/freeswitch/sip_profiles/internal.xml").read_text()
    ref = secret_ref("freeswitch_default_password")
    edited = edit_vars_xml(vars_xml, ref)
    assert f'data="default_password={ref}"' in edited and "default_password=1234" not in edited
    assert edit_vars_xml(edited, ref) == edited
    on = edit_sip_profile(profile)
    assert '<param name="log-auth-failures" value="true"/>' in on
    assert edit_sip_profile(on) == on and len(on.splitlines()) - len(profile.splitlines()) <= 1
    state = HostState(
        files={
            "/etc/freeswitch/vars.xml": LiveFile(True, vars_xml, "0640", "root", "root"),
            "/etc/freeswitch/sip_profiles/internal.xml": LiveFile(
                True, profile, "0640", "root", "root"
            ),
        }
    )
    paths = [f.path for f in desired_files(_vars("freeswitch"), state)]
    assert (
        "/etc/freeswitch/sip_profiles/internal.xml" in paths and "/etc/freeswitch/vars.xml" in paths
    )


def test_plan_is_empty_when_the_host_already_matches() -> None:
    v = _vars("kamailio")
    state = HostState(groups=frozenset({"kamailio"}), packages=frozenset(
        {"openssh-server", "nftables", "fail2ban", "python3-systemd", "procps", "auditd",
         "chrony", "unattended-upgrades", "kamailio-tls-modules", "openssl",
         "needrestart", "rsyslog", "rsyslog-gnutls", "aide", "debsums",
         "libpam-pwquality", "libpam-tmpdir", "cron"}))  # fmt: skip
    files = {
        f.path: LiveFile(True, f.content, f.mode, f.owner, f.group) for f in desired_files(v, state)
    }
    matching = HostState(groups=state.groups, packages=state.packages, files=files)
    mask = diff_masker(bytes(32))
    assert plan_host("k", dict(v), matching, mask).status == "unchanged"
    drifted = dict(files)
    live = "table inet filter {}\n# password = hunter2-live\n"
    drifted["/etc/nftables.conf"] = LiveFile(True, live, "0644", "root", "root")
    plan = plan_host(
        "k", dict(v), HostState(groups=state.groups, packages=state.packages, files=drifted), mask
    )
    assert plan.status == "changed" and [f.path for f in plan.files] == ["/etc/nftables.conf"]
    diff = plan.files[0].diff
    assert diff.startswith("--- /etc/nftables.conf (live)")
    # a secret in the live file is shown as its snapshot marker, never as itself
    assert "hunter2-live" not in diff
    assert f"-# password = {marker_for(bytes(32), 'hunter2-live')}\n" in diff
    assert file_changed(desired_files(v, state)[0], LiveFile(False))


def test_the_diff_masker_keeps_secret_references_and_masks_values() -> None:
    mask = diff_masker(bytes(32))
    xml = '<param name="password" value="ClueCon"/>\n'
    ref = '<param name="password" value="@@vcops-secret:freeswitch_event_socket@@"/>\n'
    path = "/etc/freeswitch/autoload_configs/event_socket.conf.xml"
    assert "ClueCon" not in mask(path, xml) and marker_for(bytes(32), "ClueCon") in mask(path, xml)
    assert mask(path, ref) == ref  # a reference the host resolves: no secret, kept


# --- validation on the controller ---------------------------------------------------


@pytest.fixture
def netns() -> Iterator[list[str]]:
    """A throwaway network namespace (root): `nft -c` never touches the controller's."""
    if os.geteuid() != 0 or not shutil.which("nft") or not shutil.which("ip"):
        pytest.skip("needs root, nft and ip")
    name = f"vcops-test-{uuid.uuid4().hex[:8]}"
    subprocess.run(["ip", "netns", "add", name], check=True)
    try:
        yield ["ip", "netns", "exec", name]
    finally:
        subprocess.run(["ip", "netns", "del", name], check=True)


@pytest.mark.parametrize("role", ["kamailio", "generic", "sbc"])
def test_rendered_nftables_passes_nft_check(role: str, netns: list[str], tmp_path: Path) -> None:
    conf = tmp_path / "nftables.conf"
    conf.write_text(
        render_template("firewall/nftables.conf.j2", _vars(role, ["10.0.0.0/8", "2001:db8::/32"]))
    )
    done = subprocess.run(
        [*netns, "nft", "-c", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


def test_a_broken_value_fails_nft_check(netns: list[str], tmp_path: Path) -> None:
    v = _vars("kamailio")
    v["vcops_firewall_rtp_port_range"] = "20000-10000"
    conf = tmp_path / "nftables.conf"
    conf.write_text(render_template("firewall/nftables.conf.j2", v))
    done = subprocess.run(
        [*netns, "nft", "-c", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    assert done.returncode != 0


def test_rendered_sshd_config_passes_sshd_t(tmp_path: Path) -> None:
    sshd = shutil.which("sshd") or "/usr/sbin/sshd"
    if not Path(sshd).exists() or os.geteuid() != 0 or not Path("/run/sshd").is_dir():
        pytest.skip("needs root and a configured openssh-server on the controller")
    offered = subprocess.run(
        ["ssh", "-Q", "kex"], capture_output=True, text=True, check=False
    ).stdout
    f = next(x for x in desired_files(_vars("generic"), HostState(probes={"ssh_kex": offered}))
             if x.path == "/etc/ssh/sshd_config")  # fmt: skip
    conf = tmp_path / "sshd_config"
    conf.write_text(f.content)
    done = subprocess.run(
        [sshd, "-t", "-f", str(conf)], capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr


MODULI_SAMPLE = """#    $OpenBSD: moduli,v 1.33 2023/03/28 $
# Time Type Tests Tries Size Generator Modulus
20230111 2 6 100 2047 5 DE2E6B
20230111 2 6 100 3071 2 F5A1C3
20230111 2 6 100 4095 5 C0FFEE
garbage line
20230111 2 6 100 20x47 5 BAD
"""


def test_moduli_pruned_only_with_group_exchange_and_like_the_roles_awk(tmp_path: Path) -> None:
    assert not any(
        f.path == "/etc/ssh/moduli" for f in desired_files(_vars("generic"), HostState())
    )
    settings = DEFAULT_SETTINGS.model_copy(
        update={"ssh_kex_algorithms": ["curve25519-sha256", "diffie-hellman-group-exchange-sha256"]}
    )
    v = vars_from_settings(settings, ["generic"], ["10.213.0.0/24"], None, "h")
    listed = [f.path for f in desired_files(v, HostState())]  # first pass: read it
    assert "/etc/ssh/moduli" in listed
    live = HostState(
        files={"/etc/ssh/moduli": LiveFile(True, MODULI_SAMPLE, "0644", "root", "root")}
    )
    [moduli] = [f for f in desired_files(v, live) if f.path == "/etc/ssh/moduli"]
    assert "2047" not in moduli.content and "3071" in moduli.content and "# Time" in moduli.content
    source = tmp_path / "moduli"
    source.write_text(MODULI_SAMPLE)
    awk = subprocess.run(
        ["awk", "-v", "min=3072", "$0 ~ /^#/ || NF < 7 || $5 + 1 >= min", str(source)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    assert moduli.content == awk.stdout  # both engines write the same bytes
    gone = HostState(files={"/etc/ssh/moduli": LiveFile(False)})
    assert not any(f.path == "/etc/ssh/moduli" for f in desired_files(v, gone))
