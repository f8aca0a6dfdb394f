"""The pending-upgrades fingerprint: ``upgrades.sh`` (the real script, run by /bin/sh
under the host-task framing, its paths moved into a temporary root and ``apt list``
replaced by a counting stand-in) and :func:`read_upgrades` (pure).

apt runs on a first scan, after the lists or the dpkg status changed, and never when
nothing it reads changed; the fingerprint is the host's file metadata compared for
equality, so no clock decides (mtimes in the future of the controller, or moved back
by a host whose clock jumped, change nothing).
"""

from __future__ import annotations

import os
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from vcops.connectors.hosttask import Record, ScriptTask, TaskOutput, compose, new_nonce, split
from vcops.facts.sections import Upgrade
from vcops.facts.server import FactsTask
from vcops.facts.upgrades import UpgradeCache, UpgradesRead, read_upgrades

LIST = "deb.debian.org_debian_dists_bookworm_main_binary-amd64_Packages"
APT_OUT = (
    "Listing...\n"
    "openssl/bookworm-security 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.11-1~deb12u2]\n"
    "tzdata/bookworm-updates 2024b-0+deb12u1 all [upgradable from: 2024a-0+deb12u1]\n"
)


class Host:
    """A temporary root with the files ``apt list --upgradable`` reads."""

    def __init__(self, root: Path) -> None:
        self.root = root
        for d in ("var/lib/apt/lists", "var/lib/dpkg", "etc/apt/sources.list.d"):
            (root / d).mkdir(parents=True)
        self.lists = root / "var/lib/apt/lists"
        self.status = root / "var/lib/dpkg/status"
        (self.lists / LIST).write_text("Package: openssl\nVersion: 3.0.15-1~deb12u1\n")
        (self.lists / "deb.debian.org_debian_dists_bookworm_InRelease").write_text("Suite: x\n")
        self.status.write_text("Package: openssl\nStatus: install ok installed\n")
        (root / "etc/apt/sources.list.d/debian.sources").write_text("Types: deb\n")
        (root / "apt-out").write_text(APT_OUT)
        self.runs = root / "apt-runs"

    @property
    def apt_runs(self) -> int:
        return len(self.runs.read_text().splitlines()) if self.runs.exists() else 0

    def script(self, since: str) -> str:
        text = resources.files("vcops.facts").joinpath("upgrades.sh").read_text()
        for prefix in ("/var/lib/", "/etc/apt/"):
            text = text.replace(prefix, f"{self.root}{prefix}")
        stand_in = f"sh -c 'echo run >>{self.runs}; cat {self.root}/apt-out'"
        assert "apt list --upgradable" in text
        text = text.replace("apt list --upgradable", stand_in)
        return f'{text}\nupgrades_since={since}\nupgrades "$upgrades_since"\n'

    def scan(self, stored: UpgradeCache | None) -> UpgradesRead:
        nonce = new_nonce()
        since = stored.fingerprint if stored is not None else "''"
        script = compose([ScriptTask(name="facts", script=self.script(since))], nonce)
        done = subprocess.run(
            ["/bin/sh", "-c", script], capture_output=True, text=True, check=True, timeout=30
        )
        return read_upgrades(split(done.stdout, nonce).task("facts"), stored)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path / "host")


def _stored(read: UpgradesRead) -> UpgradeCache:
    assert read.cache is not None
    return read.cache


def test_first_scan_computes_and_an_unchanged_host_skips_apt(host: Host) -> None:
    first = host.scan(None)
    assert first.state == "computed" and host.apt_runs == 1
    assert [u.package for u in first.upgradable or []] == ["openssl", "tzdata"]
    assert first.upgradable is not None and first.upgradable[0].security
    again = host.scan(_stored(first))
    assert again.state == "cached" and host.apt_runs == 1
    assert again.upgradable == first.upgradable and again.cache is None


def test_a_changed_list_recomputes(host: Host) -> None:
    stored = _stored(host.scan(None))
    with (host.lists / LIST).open("a") as f:
        f.write("Package: tzdata\n")
    changed = host.scan(stored)
    assert changed.state == "computed" and host.apt_runs == 2
    assert _stored(changed).fingerprint != stored.fingerprint
    assert host.scan(_stored(changed)).state == "cached" and host.apt_runs == 2


def test_a_new_list_file_recomputes(host: Host) -> None:
    stored = _stored(host.scan(None))
    (
        host.lists / "security.debian.org_dists_bookworm-security_main_binary-amd64_Packages"
    ).write_text("x")
    assert host.scan(stored).state == "computed" and host.apt_runs == 2


def test_a_changed_dpkg_status_recomputes_even_with_the_same_size_and_mtime(host: Host) -> None:
    stored = _stored(host.scan(None))
    before = host.status.stat()
    replacement = host.status.with_name("status-new")  # dpkg writes status-new, renames
    replacement.write_text(host.status.read_text().replace("openssl", "opensxl"))
    os.utime(replacement, ns=(before.st_atime_ns, before.st_mtime_ns))
    replacement.replace(host.status)
    assert host.status.stat().st_size == before.st_size
    assert host.status.stat().st_mtime_ns == before.st_mtime_ns
    assert host.scan(stored).state == "computed" and host.apt_runs == 2


def test_clock_skew_no_clock_decides(host: Host) -> None:
    future = 4_102_444_800 * 10**9  # 2100-01-01: the host's clock far ahead of ours
    for path in (host.lists / LIST, host.status):
        os.utime(path, ns=(future, future))
    stored = _stored(host.scan(None))
    assert host.scan(stored).state == "cached" and host.apt_runs == 1
    # the host's clock jumps back: `apt update` writes a list with an OLDER mtime
    (host.lists / LIST).write_text("Package: openssl\nVersion: 3.0.16-1~deb12u1\n")
    past = 946_684_800 * 10**9  # 2000-01-01
    os.utime(host.lists / LIST, ns=(past, past))
    assert host.scan(stored).state == "computed" and host.apt_runs == 2


def _out(*records: tuple[str, int, str]) -> TaskOutput:
    return TaskOutput(
        task="facts", rc=0, records=[Record(name=n, rc=rc, data=t.encode()) for n, rc, t in records]
    )


FP = "ab" * 32
CACHED = UpgradeCache(
    fingerprint=FP,
    upgradable=[Upgrade(package="x", version="2", current="1", suites=["bookworm-security"])],
)


def test_an_unchanged_answer_for_a_fingerprint_we_do_not_hold_is_unknown() -> None:
    assert read_upgrades(_out(("upgrades", 0, f"unchanged {FP}")), None) == UpgradesRead()
    other = CACHED.model_copy(update={"fingerprint": "cd" * 32})
    assert read_upgrades(_out(("upgrades", 0, f"unchanged {FP}")), other).upgradable is None
    assert read_upgrades(_out(("upgrades", 0, f"unchanged {FP}")), CACHED).state == "cached"


def test_a_failed_apt_or_a_bad_fingerprint_stores_nothing() -> None:
    failed = read_upgrades(
        _out(("upgradable", 100, "E: oops"), ("upgrades", 0, f"computed {FP}")), CACHED
    )
    assert failed.upgradable is None and failed.cache is None
    odd = read_upgrades(
        _out(("upgradable", 0, APT_OUT), ("upgrades", 0, "computed $(reboot)")), None
    )
    assert odd.state == "computed" and odd.cache is None and len(odd.upgradable or []) == 2
    # an older script (no `upgrades` record): the section as before, nothing cached
    old = read_upgrades(_out(("upgradable", 0, APT_OUT)), CACHED)
    assert old.cache is None and len(old.upgradable or []) == 2


def test_only_a_hex_fingerprint_reaches_the_script() -> None:
    assert "upgrades_since=''" in FactsTask(upgrades_since="x'; reboot; '").body()
    assert f"upgrades_since={FP}\n" in FactsTask(upgrades_since=FP).body()
