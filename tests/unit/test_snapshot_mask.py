"""Masking catalog per platform and file type, from fixture files; markers; noise filters.

Fixtures: ``tests/fixtures/snapshot/mask/<kind>/<case>.in`` is the input,
``<case>.secrets`` lists every value that must disappear (one a line) and
``<case>.masked`` is the expected output under the fixed test key. Every secret in
the fixtures contains the word "canary", so a leak is also caught by a plain search.
Regenerate the expected files after a deliberate catalog change with
``VCOPS_UPDATE_GOLDEN=1 pytest tests/unit/test_snapshot_mask.py`` and review the diff.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vcops.snapshot.catalog import CATALOG, FILE_KINDS, classify_path
from vcops.snapshot.mask import (
    MARKER_RE,
    collect_secrets,
    has_marker,
    marker_for,
    mask_text,
    unmask,
)
from vcops.snapshot.noise import is_error_output, normalize_config, normalize_nft

KEY = b"vcops-test-mask-key-0123456789ab"
MASK = FIXTURES / "snapshot" / "mask"
NOISE = FIXTURES / "snapshot" / "noise"
CASES = sorted(MASK.glob("*/*.in"))


def _secrets(case: Path) -> list[str]:
    return [line for line in case.with_suffix(".secrets").read_text().splitlines() if line]


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_catalog_masks_every_secret_and_nothing_else(case: Path) -> None:
    kind = case.parent.name
    text = case.read_text()
    result = mask_text(text, kind, KEY)
    for secret in _secrets(case):
        assert secret in text, f"fixture {case.name} does not contain {secret!r}"
        assert secret not in result.text, f"{secret!r} leaked"
    assert "canary" not in result.text.lower()
    assert result.masked == len(MARKER_RE.findall(result.text))
    expected = case.with_suffix(".masked")
    if os.environ.get("VCOPS_UPDATE_GOLDEN"):
        expected.write_text(result.text)
    assert result.text == expected.read_text()


@pytest.mark.parametrize("case", CASES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_masking_is_idempotent_and_keeps_the_line_count(case: Path) -> None:
    once = mask_text(case.read_text(), case.parent.name, KEY)
    twice = mask_text(once.text, case.parent.name, KEY)
    assert twice.text == once.text and twice.masked == 0
    if case.stem != "keys":  # private key bodies collapse to one marker line
        assert once.text.count("\n") == case.read_text().count("\n")


def test_every_file_kind_has_a_fixture() -> None:
    assert {p.parent.name for p in CASES} == set(FILE_KINDS)
    assert set(CATALOG) == set(FILE_KINDS)


def test_lines_that_only_look_like_secrets_are_kept() -> None:
    ios = (MASK / "ios" / "full.in").read_text()
    masked = mask_text(ios, "ios", KEY).text
    for line in (
        "service password-encryption",
        "password encryption aes",
        " key 1",
        " standby 3 authentication md5 key-chain HSRP-CHAIN",
        " area 0 authentication message-digest",
    ):
        assert line in masked.splitlines()
    junos = mask_text((MASK / "junos" / "curly.in").read_text(), "junos", KEY).text
    assert "    community CUSTOMERS members 65000:100;" in junos
    ari = mask_text((MASK / "asterisk" / "ari.conf.in").read_text(), "asterisk", KEY).text
    assert "password_format = plain ;" in ari
    fs = mask_text((MASK / "freeswitch" / "1000.xml.in").read_text(), "freeswitch", KEY).text
    assert 'value="$${default_password}"' in fs  # a variable reference, not a secret
    sshd = (MASK / "ssh" / "sshd_config.in").read_text()
    assert mask_text(sshd, "ssh", KEY).text == sshd


@pytest.mark.parametrize(
    ("path", "kind"),
    [
        ("/etc/asterisk/pjsip.conf", "asterisk"),
        ("/etc/freeswitch/autoload_configs/event_socket.conf.xml", "freeswitch"),
        ("/etc/kamailio/kamctlrc", "kamailio"),
        ("/etc/ssh/sshd_config", "ssh"),
        ("/etc/apt/auth.conf.d/private.conf", "apt"),
        ("/etc/chrony/chrony.keys", "chrony-keys"),
        ("/etc/fail2ban/jail.local", "generic"),
        ("/etc/sysctl.d/99-vcops.conf", "generic"),
    ],
)
def test_server_files_are_classified_by_path(path: str, kind: str) -> None:
    assert classify_path(path) == kind


def test_marker_format_and_hmac_stability() -> None:
    marker = marker_for(KEY, "s3cret")
    assert re.fullmatch(r"<vcops:masked:hmac-sha256:[0-9a-f]{16}>", marker)
    assert marker == marker_for(KEY, "s3cret")  # stable across runs
    assert marker == "<vcops:masked:hmac-sha256:" + _hmac16(KEY, "s3cret") + ">"
    assert marker_for(KEY, "s3cret2") != marker  # a rotated secret shows as a change
    assert marker_for(b"another-key-0123456789abcdef0000", "s3cret") != marker  # keyed
    assert has_marker(f"secret = {marker}") and not has_marker("secret = <vcops:masked:>")


def _hmac16(key: bytes, value: str) -> str:
    import hashlib
    import hmac

    return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:16]


def test_rotating_a_secret_changes_only_its_marker() -> None:
    before = mask_text("[admin]\nsecret = canary-one\nread = all\n", "asterisk", KEY).text
    after = mask_text("[admin]\nsecret = canary-two\nread = all\n", "asterisk", KEY).text
    changed = [
        (a, b) for a, b in zip(before.splitlines(), after.splitlines(), strict=True) if a != b
    ]
    assert len(changed) == 1
    assert all("canary" not in line for pair in changed for line in pair)


def test_collect_secrets_and_unmask_round_trip() -> None:
    text = (MASK / "kamailio" / "kamailio.cfg.in").read_text()
    live = collect_secrets(text, "kamailio", KEY)
    assert "canary-kam-dburl" in live.secrets.values()
    assert "canary" not in repr(live)  # values never show in a repr
    restored, unresolved = unmask(live.text, live.secrets)
    assert restored == text and unresolved == []
    partial = {k: v for k, v in live.secrets.items() if v != "canary-kam-auth-secret"}
    restored, unresolved = unmask(live.text, partial)
    assert unresolved == [marker_for(KEY, "canary-kam-auth-secret")]
    assert "canary-kam-auth-secret" not in restored


@pytest.mark.parametrize(
    ("a", "b", "platform"),
    [
        ("ios-monday.cfg", "ios-tuesday.cfg", "ios"),
        ("ios-monday.cfg", "ios-crlf.cfg", "ios"),
        ("nxos-a.cfg", "nxos-b.cfg", "nxos_ssh"),
        ("eos-a.cfg", "eos-b.cfg", "eos"),
        ("junos-a.conf", "junos-b.conf", "junos"),
    ],
)
def test_noise_lines_make_no_change(a: str, b: str, platform: str) -> None:
    first = normalize_config((NOISE / a).read_text(), platform)
    second = normalize_config((NOISE / b).read_bytes().decode(), platform)
    assert first == second
    assert first.endswith("\n") and not first.endswith("\n\n") and "\r" not in first
    assert "hostname" in first or "host-name" in first


def test_a_real_change_survives_the_noise_filter() -> None:
    base = (NOISE / "ios-monday.cfg").read_text()
    changed = base.replace("ntp server 192.0.2.123", "ntp server 192.0.2.124")
    assert normalize_config(base, "ios") != normalize_config(changed, "ios")


def test_nft_timeouts_counting_down_are_noise() -> None:
    a = normalize_nft((NOISE / "nft-a.txt").read_text())
    assert a == normalize_nft((NOISE / "nft-b.txt").read_text())
    assert "192.0.2.66" in a and "expires" not in a


def test_error_answers_are_not_configs() -> None:
    assert is_error_output("No such command : show startup-config\n")
    assert is_error_output("               ^\n% Invalid input detected at '^' marker.\n")
    assert not is_error_output((NOISE / "ios-monday.cfg").read_text())
