"""Server facts parsed from real gather output of lab hosts, and every server control on
stock and hardened hosts (fixtures under tests/fixtures/facts/gather)."""

from __future__ import annotations

import ipaddress
import json
from datetime import UTC, datetime

import pytest

from tests.conftest import FIXTURES
from tests.framing import frame
from vcops.baseline.context import ServerContext
from vcops.baseline.server_catalog import SERVER_CONTROLS
from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.baseline.voip_catalog import VOIP_CONTROLS
from vcops.connectors.hosttask import split
from vcops.facts.sections import Upgrade
from vcops.facts.server import FactsTask, ServerFacts, parse_facts

GATHER = FIXTURES / "facts" / "gather"
NONCE = "0123456789abcdef"
NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
MGMT = (ipaddress.ip_network("10.213.0.0/24"),)


def facts(name: str) -> ServerFacts:
    return parse_facts(split(frame((GATHER / f"{name}.txt").read_text()), NONCE).task("facts"))


def test_stock_kamailio_host_facts() -> None:
    f = facts("stock_kamailio")
    assert (f.os_id, f.os_version_id, f.virt) == ("debian", "12", "systemd-nspawn")
    assert f.in_container
    assert f.sshd is not None and f.sshd["passwordauthentication"] == ["yes"]
    assert f.openssh_version is not None and f.openssh_version.startswith("1:9.2p1")
    assert f.sysctl is not None and f.sysctl["net.ipv4.tcp_syncookies"] == "1"
    assert f.nft is not None and f.nft.input_chains() == []
    kam = f.service("kamailio")
    assert kam is not None and kam.running and kam.enabled
    assert (
        f.packages is not None and "openssh-server" in f.packages and "fail2ban" not in f.packages
    )
    assert f.upgradable == [] and f.reboot_required is False
    assert f.audit_active_rules is None and f.audit_active_error  # no auditctl in a stock host
    assert f.file_stats is not None and f.file_stats["/etc/shadow"].mode == 0o640
    assert "/etc/kamailio/kamailio.cfg" in f.kamailio_files
    assert f.listening is not None and any(listener.port == 5060 for listener in f.listening)


def test_public_view_drops_config_contents() -> None:
    public = json.dumps(facts("stock_asterisk").public())
    assert "mysecret" not in public and "[general]" not in public


def test_a_config_file_cannot_forge_sections() -> None:
    text = (GATHER / "stock_kamailio.txt").read_text()
    # a config file that prints marker lines: without this run's nonce, and with it
    forged = (
        "\n@@vcops sshd_t 0\npasswordauthentication no\n"
        "@@vcops-ffffffffffffffff facts sshd_t 0\ncGFzc3dvcmRhdXRoZW50aWNhdGlvbiBubwo=\n"
    )
    kamailio = text.replace("#!KAMAILIO", "#!KAMAILIO" + forged, 1)
    f = parse_facts(split(frame(kamailio), NONCE).task("facts"))
    assert f.sshd is not None and f.sshd["passwordauthentication"] == ["yes"]
    assert "@@vcops sshd_t 0" in f.kamailio_files["/etc/kamailio/kamailio.cfg"]
    # the same lines printed raw into the output stream (not inside a record) add nothing
    out = frame(text).replace(
        "\n@@vcops-0123456789abcdef facts now", forged + "@@vcops-0123456789abcdef facts now"
    )
    assert parse_facts(split(out, NONCE).task("facts")).sshd == f.sshd


def test_facts_task_body_is_gather_sh_plus_config_tars() -> None:
    body = FactsTask().body()
    assert "section sshd_t sshd -T" in body and "@@vcops" not in body
    assert "tarfiles kamailio_conf /etc/kamailio/kamailio.cfg" in body
    assert "/etc/freeswitch/sip_profiles/*.xml" in body  # the glob expands on the host
    shared = FactsTask(shared=frozenset({"kamailio", "sshd_t"})).body()
    assert "kamailio_conf" not in shared and "sshd -T" not in shared
    assert "asterisk_conf" in shared


def test_facts_beside_a_snapshot_read_its_files_and_sections() -> None:
    """One pass over the files: what the snapshot in the same script read (the config
    trees, the audit and chrony files, sshd -T, the package list) stands in for the
    facts task's own sections, and the facts come out the same."""
    from vcops.connectors.hosttask import tar_members
    from vcops.facts.sections import Section

    whole = facts("hardened_kamailio")  # audit rules and chrony sources present
    framed = split(frame((GATHER / "hardened_kamailio.txt").read_text()), NONCE)
    out = framed.task("facts")
    got = {n: out.get(n) for n in ("sshd_t", "kamailio_conf", "packages", "audit_rules")}
    got["chrony_conf"] = out.get("chrony_conf")
    assert all(r is not None for r in got.values()), got
    text = {n: r.text for n, r in got.items() if r is not None}
    out.records = [r for r in out.records if r.name not in got]
    members = tar_members(got["kamailio_conf"].data)  # type: ignore[union-attr]
    half = len(text["audit_rules"].splitlines(keepends=True)) // 2
    lines = text["audit_rules"].splitlines(keepends=True)
    members["/etc/audit/rules.d/10-first.rules"] = "".join(lines[:half]).encode()
    members["/etc/audit/audit.rules"] = "".join(lines[half:]).encode()
    members["/etc/audit/rules.d/notes.txt"] = b"-w /etc/not-a-rule -p wa\n"
    members["/etc/chrony/chrony.conf"] = text["chrony_conf"].encode()
    arch = "\n".join(
        ln.replace("\t", ":amd64\t", 1) if ln.startswith("libc6\t") else ln
        for ln in text["packages"].splitlines()
    )
    shared = parse_facts(
        out,
        members,
        {"sshd_t": Section(rc=0, text=text["sshd_t"]), "packages": Section(rc=0, text=arch)},
    )
    assert shared == whole and whole.audit_rule_files and whole.chrony_conf
    assert whole.packages is not None and "libc6" in whole.packages


def test_missing_sections_are_unknown_never_pass() -> None:
    ctx = ServerContext(
        settings=DEFAULT_SETTINGS, roles=frozenset({"generic"}), management_networks=MGMT, now=NOW
    )
    for control in SERVER_CONTROLS:
        if control.applies(ctx.roles):
            assert control.check(ServerFacts(), ctx).status == "unknown", control.id


@pytest.mark.parametrize("case", ["stock_kamailio", "hardened_kamailio"])
def test_server_controls_on_real_hosts(case: str) -> None:
    expected = json.loads((GATHER / f"{case}.expected.json").read_text())
    ctx = ServerContext(
        settings=DEFAULT_SETTINGS, roles=frozenset({"kamailio"}), management_networks=MGMT, now=NOW
    )
    f = facts(case)
    got = {
        c.id: c.check(f, ctx).status
        for c in [*SERVER_CONTROLS, *VOIP_CONTROLS]
        if c.applies(ctx.roles)
    }
    assert got == expected


def test_overdue_security_updates_use_first_seen_history() -> None:
    upgrades = [
        Upgrade(
            package="openssl",
            version="3.0.15-1~deb12u1",
            current="3.0.11-1~deb12u2",
            suites=["bookworm-security"],
        ),
        Upgrade(package="tzdata", version="2025a", current="2024b", suites=["bookworm-updates"]),
    ]
    f = facts("hardened_kamailio").model_copy(update={"upgradable": upgrades})
    ctx = ServerContext(
        settings=DEFAULT_SETTINGS, roles=frozenset({"generic"}), management_networks=MGMT, now=NOW
    )
    check = next(c for c in SERVER_CONTROLS if c.id == "VC-PATCH-002").check
    assert check(f, ctx).status == "pass"  # first seen now: not overdue yet
    old = int(NOW.timestamp()) - 8 * 86400
    result = check(
        f.model_copy(update={"security_first_seen": {"openssl=3.0.15-1~deb12u1": old}}), ctx
    )
    assert result.status == "fail" and "openssl" in result.actual and "tzdata" not in result.actual
