"""Patch sources (3.2.2): the apt sources parser (both formats, bounded), and
VC-PATCH-001/002/005..008 on compliant, non-compliant and missing-data facts."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from vcops.baseline.context import ServerContext
from vcops.baseline.server_catalog import SERVER_CONTROLS
from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.facts.aptsources import (
    MAX_ENTRIES,
    MAX_FILE_BYTES,
    AptSource,
    codename_of,
    missing_security,
    parse_deb822,
    parse_files,
    parse_list,
)
from vcops.facts.patch import parse_lists_mtime, parse_needrestart
from vcops.facts.server import ServerFacts

NOW = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)
HOST_NOW = 1_795_871_669
MGMT = (ipaddress.ip_network("10.213.0.0/24"),)
MIRROR = "http://10.213.0.1:8642/"
DEBIAN = (
    "Types: deb deb-src\n"
    "URIs: http://deb.debian.org/debian\n"
    "Suites: bookworm bookworm-updates\n"
    "Components: main\n"
    "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg\n"
    "\n"
    "# the security suite\n"
    "Types: deb\n"
    "URIs: http://deb.debian.org/debian-security\n"
    "Suites: bookworm-security\n"
    "Components: main\n"
)


def control(id_: str):  # type: ignore[no-untyped-def]
    return next(c for c in SERVER_CONTROLS if c.id == id_).check


def ctx(**settings: object) -> ServerContext:
    return ServerContext(
        settings=DEFAULT_SETTINGS.model_copy(update=settings),
        roles=frozenset({"generic"}),
        management_networks=MGMT,
        now=NOW,
    )


def good(**update: object) -> ServerFacts:
    entries, _ = parse_files({"/etc/apt/sources.list.d/debian.sources": DEBIAN})
    facts = ServerFacts(
        now=HOST_NOW,
        os_codename="bookworm",
        apt_sources=entries,
        apt_lists_mtime=HOST_NOW - 3600,
        packages={"unattended-upgrades": "2.9.1", "needrestart": "3.6"},
        apt_config={
            "APT::Periodic::Unattended-Upgrade": "1",
            "APT::Periodic::Update-Package-Lists": "1",
            "Unattended-Upgrade::Origins-Pattern::": "origin=Debian,label=Debian-Security",
        },
        upgradable=[],
        needrestart_services=[],
        needrestart_conf=["$nrconf{restart} = 'l';"],
    )
    return facts.model_copy(update=update)


# --- parser -------------------------------------------------------------------


def test_one_line_format_with_options_and_comments() -> None:
    text = (
        "# deb http://deb.debian.org/debian-security bookworm-security main\n"
        "deb [arch=amd64 signed-by=/usr/share/keyrings/x.gpg] http://m/debian bookworm main contrib\n"
        "deb-src http://m/debian bookworm main  # trailing comment\n"
        "deb [trusted=yes] http://10.213.0.1:8642/ ./\n"
        "deb [broken http://m/debian bookworm-security main\n"  # unterminated options: dropped
        "rpm http://m/ x\n"
    )
    got = parse_list(text, "/etc/apt/sources.list")
    assert [(e.types, e.uris, e.suites, e.components) for e in got] == [
        (("deb",), ("http://m/debian",), ("bookworm",), ("main", "contrib")),
        (("deb-src",), ("http://m/debian",), ("bookworm",), ("main",)),
        (("deb",), ("http://10.213.0.1:8642/",), ("./",), ()),
    ]


def test_deb822_stanzas_continuations_and_enabled_no() -> None:
    text = DEBIAN + "\nTypes: deb\nURIs: http://x/\nSuites:\n bookworm-backports\nEnabled: no\n"
    got = parse_deb822(text, "/etc/apt/sources.list.d/debian.sources")
    assert [e.suites for e in got] == [
        ("bookworm", "bookworm-updates"),
        ("bookworm-security",),
        ("bookworm-backports",),
    ]
    assert got[0].types == ("deb", "deb-src") and got[2].enabled is False


def test_parse_files_is_bounded_and_ignores_other_names() -> None:
    huge = "deb http://m/debian bookworm-security main\n" * (MAX_FILE_BYTES // 10)
    files = {
        "/etc/apt/sources.list.d/a.list": huge,
        "/etc/apt/sources.list.d/readme.txt": "deb http://m/ bookworm-security main\n",
    }
    entries, notes = parse_files(files)
    assert len(entries) == MAX_ENTRIES and all(e.file.endswith("a.list") for e in entries)
    assert any("first" in n for n in notes) and any("beyond" in n for n in notes)


def test_hostile_words_drop_the_entry_never_shift_it() -> None:
    text = (
        "deb http://m/\x1b[31m bookworm-security main\n"  # escape bytes in the URI
        "deb http://m/" + "a" * 600 + " bookworm-security main\n"  # an over-long word
        "deb http://m/debian " + "b" * 100_000 + "\n"  # an over-long line
    )
    entries, _ = parse_files({"/etc/apt/sources.list": text})
    assert entries == []


def test_missing_security_and_the_mirror() -> None:
    entries, _ = parse_files({"/etc/apt/sources.list.d/debian.sources": DEBIAN})
    assert missing_security(entries, "bookworm", "") == []
    only_main = [AptSource("f", ("deb",), ("http://m/debian",), ("bookworm",))]
    assert missing_security(only_main, "bookworm", "") == ["bookworm-security", "bookworm-updates"]
    lab = parse_list("deb [trusted=yes] http://10.213.0.1:8642/ ./\n", "f")
    assert missing_security(lab, "bookworm", MIRROR) == []
    assert missing_security(lab, "bookworm", "http://other/") != []
    disabled = [AptSource("f", ("deb",), ("http://s/",), ("bookworm-security",), enabled=False)]
    assert "bookworm-security" in missing_security(disabled, "bookworm", "")
    src_only = [AptSource("f", ("deb-src",), ("http://s/",), ("bookworm-security",))]
    assert "bookworm-security" in missing_security(src_only, "bookworm", "")


def test_codename_needrestart_and_lists_parsers() -> None:
    assert codename_of('ID=debian\nVERSION_CODENAME="bookworm"\n') == "bookworm"
    assert codename_of("VERSION_CODENAME=$(id)\n") == ""
    text = (
        "NEEDRESTART-VER: 3.6\nNEEDRESTART-KSTA: 1\nNEEDRESTART-SVC: kamailio.service\n"
        "NEEDRESTART-SVC: bad unit;rm\nNEEDRESTART-SVC: kamailio.service\n"
    )
    assert parse_needrestart(text) == ["kamailio.service"]
    assert parse_lists_mtime("0 1795000000.5\n1 1795871669.123\n1 nonsense\n") == 1795871669
    assert parse_lists_mtime("0 1795871669.0\n") == 0  # an empty directory: no lists
    assert parse_lists_mtime("") == 0


# --- controls -----------------------------------------------------------------

NO_SECURITY = parse_list(
    "deb http://deb.debian.org/debian bookworm main\n", "/etc/apt/sources.list"
)


@pytest.mark.parametrize("id_", ["VC-PATCH-001", "VC-PATCH-002"])
def test_patch_001_002_fail_with_the_reason_when_updates_cannot_arrive(id_: str) -> None:
    check = control(id_)
    assert check(good(), ctx()).status == "pass"
    result = check(good(apt_sources=NO_SECURITY), ctx())
    assert result.status == "fail" and "bookworm-security" in result.actual
    assert "cannot arrive" in result.actual
    stale = check(good(apt_lists_mtime=HOST_NOW - 9 * 86400), ctx())
    assert stale.status == "fail" and "9 days old" in stale.actual
    never = check(good(apt_lists_mtime=0), ctx())
    assert never.status == "fail" and "never" in never.actual
    for missing in ({"apt_sources": None}, {"os_codename": None}, {"apt_lists_mtime": None}):
        assert check(good(**missing), ctx()).status == "unknown", missing


def test_patch_005_sources() -> None:
    check = control("VC-PATCH-005")
    assert check(good(), ctx()).status == "pass"
    result = check(good(apt_sources=NO_SECURITY), ctx())
    assert result.status == "fail"
    assert "bookworm-security, bookworm-updates" in result.actual
    lab = parse_list("deb [trusted=yes] http://10.213.0.1:8642/ ./\n", "f")
    assert check(good(apt_sources=lab), ctx()).status == "fail"
    on_mirror = check(good(apt_sources=lab), ctx(apt_security_mirror=MIRROR))
    assert on_mirror.status == "pass" and MIRROR in on_mirror.actual
    assert check(good(apt_sources=None), ctx()).status == "unknown"
    assert check(good(os_codename=None), ctx()).status == "unknown"


def test_patch_006_lists_age_by_the_host_clock() -> None:
    check = control("VC-PATCH-006")
    assert check(good(), ctx()).status == "pass"
    assert check(good(apt_lists_mtime=HOST_NOW - 3 * 86400), ctx()).status == "fail"
    assert (
        check(good(apt_lists_mtime=HOST_NOW - 3 * 86400), ctx(apt_lists_max_age_days=5)).status
        == "pass"
    )
    assert check(good(apt_lists_mtime=0), ctx()).status == "fail"
    assert check(good(now=None), ctx()).status == "unknown"
    assert check(good(apt_lists_mtime=None), ctx()).status == "unknown"


def test_patch_007_needrestart_list_mode() -> None:
    check = control("VC-PATCH-007")
    assert check(good(), ctx()).status == "pass"
    assert check(good(packages={"unattended-upgrades": "1"}), ctx()).status == "fail"
    result = check(good(needrestart_conf=["$nrconf{restart} = 'a';"]), ctx())
    assert result.status == "fail" and "list" in result.actual
    assert check(good(needrestart_conf=None), ctx()).status == "unknown"
    assert check(good(packages=None), ctx()).status == "unknown"


def test_patch_008_outdated_services() -> None:
    check = control("VC-PATCH-008")
    assert check(good(), ctx()).status == "pass"
    result = check(good(needrestart_services=["kamailio.service", "ssh.service"]), ctx())
    assert result.status == "fail" and "kamailio.service" in result.actual
    missing = check(good(needrestart_services=None, needrestart_error="not installed"), ctx())
    assert missing.status == "unknown" and "not installed" in missing.detail
