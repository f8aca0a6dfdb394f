"""The needrestart fingerprint: ``needrestart_check`` (the real function from
``gather.sh``, run by /bin/sh under the host-task framing, its paths moved into a
temporary root with fake processes, needrestart replaced by a counting stand-in), and
:func:`read_needrestart`, :func:`next_cache` and the age rule (pure).

needrestart runs on a first scan, after the boot, dpkg's status, its config or any
process's mapped files changed, and whenever its last answer named a service to
restart; never when nothing changed and the last answer was "no service".
"""

from __future__ import annotations

import os
import subprocess
from datetime import UTC, datetime, timedelta
from importlib import resources
from pathlib import Path

import pytest

from vcops.connectors.hosttask import Record, ScriptTask, TaskOutput, compose, new_nonce, split
from vcops.facts.patch import parse_needrestart
from vcops.facts.sections import Upgrade
from vcops.facts.server import FactsTask
from vcops.facts.upgrades import (
    NEEDRESTART_MAX_AGE,
    NeedrestartRead,
    UpgradeCache,
    next_cache,
    read_needrestart,
)

LIBC = "/usr/lib/x86_64-linux-gnu/libc.so.6"
SELF_SESSION = "4242"


def maps_line(path: str, inode: int = 1234) -> str:
    return f"7f0000000000-7f0000001000 r-xp 00000000 fe:01 {inode}                    {path}\n"


class Host:
    """A temporary root: boot id, dpkg status, needrestart's config, and processes
    (``proc/PID/maps`` and ``stat``); pid 1 is the script's own shell."""

    def __init__(self, root: Path) -> None:
        self.root = root
        (root / "etc/needrestart/conf.d").mkdir(parents=True)
        (root / "var/lib/dpkg").mkdir(parents=True)
        (root / "bin").mkdir()
        self.status = root / "var/lib/dpkg/status"
        self.status.write_text("Package: openssl\nStatus: install ok installed\n")
        (root / "etc/needrestart/needrestart.conf").write_text("$nrconf{restart} = 'l';\n")
        (root / "boot_id").write_text("0c7d3a9e-1111-2222-3333-444455556666\n")
        self.runs = root / "needrestart-runs"
        self.answer = root / "needrestart-out"
        self.answer.write_text("NEEDRESTART-VER: 3.6\nNEEDRESTART-KSTA: 0\n")
        self.stub = root / "bin/needrestart"
        self.stub.write_text(f"#!/bin/sh\necho run >>{self.runs}\ncat {self.answer}\n")
        self.stub.chmod(0o755)
        self.process(1, [LIBC, "/usr/bin/dash"], session=SELF_SESSION)
        self.process(300, [LIBC, "/usr/sbin/kamailio"])
        self.process(301, [LIBC, "/usr/sbin/kamailio", "/dev/zero (deleted)"])

    def process(self, pid: int, paths: list[str], session: str = "300") -> None:
        d = self.root / f"proc/{pid}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "maps").write_text("".join(maps_line(p) for p in paths) + "7f01-7f02 rw-p 0 00:00 0\n")
        (d / "stat").write_text(f"{pid} (a name) with) S 1 {session} {session} 0 -1\n")

    @property
    def needrestart_runs(self) -> int:
        return len(self.runs.read_text().splitlines()) if self.runs.exists() else 0

    def script(self, since: str, uid: int) -> str:
        text = resources.files("vcops.facts").joinpath("gather.sh").read_text()
        start = text.index("needrestart_list() (")
        end = text.index("\n}\n", text.index("needrestart_check() {")) + 3
        body = text[start:end]
        for old, new in (
            ("/proc/sys/kernel/random/boot_id", f"{self.root}/boot_id"),
            ("/proc/$$/stat", f"{self.root}/proc/1/stat"),
            ("/proc/[0-9]*/maps", f"{self.root}/proc/[0-9]*/maps"),
            ("/var/lib/dpkg/status", str(self.status)),
            ("/etc/needrestart", f"{self.root}/etc/needrestart"),
            ('"$(id -u)"', f'"{uid}"'),
            ("command -v needrestart", f"command -v {self.stub}"),  # the framing sets PATH
            ("needrestart -b -r l", f"{self.stub} -b -r l"),
        ):
            assert old in body, old
            body = body.replace(old, new)
        return f"{body}needrestart_check {since}\n"

    def scan(self, since: str, uid: int = 0) -> tuple[TaskOutput, NeedrestartRead]:
        nonce = new_nonce()
        script = compose([ScriptTask(name="facts", script=self.script(since or "''", uid))], nonce)
        done = subprocess.run(
            ["/bin/sh", "-c", script], capture_output=True, text=True, check=True, timeout=30
        )
        out = split(done.stdout, nonce).task("facts")
        section = out.get("needrestart")
        services = None
        if section is not None and section.rc == 0:
            services = parse_needrestart(section.text)
        return out, read_needrestart(out, since, services)


@pytest.fixture
def host(tmp_path: Path) -> Host:
    return Host(tmp_path / "host")


def first(host: Host) -> str:
    _out, read = host.scan("")
    assert read.state == "computed" and read.store is not None and len(read.store) == 64
    return read.store


def test_first_scan_runs_needrestart_and_an_unchanged_host_skips_it(host: Host) -> None:
    fp = first(host)
    assert host.needrestart_runs == 1
    out, read = host.scan(fp)
    assert read == NeedrestartRead(state="cached") and host.needrestart_runs == 1
    assert out.get("needrestart") is None  # no section: nothing ran
    # the same answer again without the fingerprint: it runs, and gives the same one
    _out, again = host.scan("")
    assert again.store == fp and host.needrestart_runs == 2


def test_this_scripts_own_session_is_left_out(host: Host) -> None:
    fp = first(host)
    host.process(1, [LIBC, "/usr/bin/dash", "/usr/bin/sort"], session=SELF_SESSION)
    host.process(7, ["/usr/bin/sha256sum"], session=SELF_SESSION)
    assert host.scan(fp)[1].state == "cached"


@pytest.mark.parametrize(
    "change",
    [
        "a library replaced under a running process",
        "a new process",
        "a process gone",
        "dpkg status rewritten, same size and mtime",
        "needrestart config",
        "a reboot",
    ],
)
def test_a_change_it_depends_on_runs_it_again(host: Host, change: str) -> None:
    fp = first(host)
    if change == "a library replaced under a running process":
        host.process(300, [f"{LIBC} (deleted)", "/usr/sbin/kamailio"])
    elif change == "a new process":
        host.process(400, [LIBC, "/usr/bin/python3.11"])
    elif change == "a process gone":
        host.process(301, [])
        (host.root / "proc/301/stat").unlink()
    elif change == "dpkg status rewritten, same size and mtime":
        st = host.status.stat()
        host.status.write_text(host.status.read_text().replace("openssl", "opensss"))
        os.utime(host.status, ns=(st.st_atime_ns, st.st_mtime_ns))
    elif change == "needrestart config":
        (host.root / "etc/needrestart/conf.d/vcops.conf").write_text("$nrconf{x} = 1;\n")
    else:
        (host.root / "boot_id").write_text("9f9f9f9f-1111-2222-3333-444455556666\n")
    _out, read = host.scan(fp)
    assert read.state == "computed" and host.needrestart_runs == 2
    assert read.store not in ("", fp)


def test_a_process_that_cannot_be_read_is_skipped_not_fatal(host: Host) -> None:
    """mawk stops at an argument it cannot open; the function opens each file itself."""
    fp = first(host)
    (host.root / "proc/2").mkdir()  # a process gone between the glob and the read
    (host.root / "proc/2/maps").mkdir()  # unreadable as a file
    assert host.scan(fp)[1].state == "cached"


def test_services_to_restart_are_never_skipped(host: Host) -> None:
    host.answer.write_text("NEEDRESTART-VER: 3.6\nNEEDRESTART-SVC: kamailio.service\n")
    out, read = host.scan("")
    assert read == NeedrestartRead(state="computed", store="")
    section = out.get("needrestart")
    assert section is not None and parse_needrestart(section.text) == ["kamailio.service"]


def test_not_root_or_no_needrestart_always_runs_and_stores_nothing(host: Host) -> None:
    fp = first(host)
    _out, read = host.scan(fp, uid=1000)
    assert read == NeedrestartRead(state="computed", store="") and host.needrestart_runs == 2
    host.stub.unlink()
    out, read = host.scan(fp)
    missing = out.get("needrestart")
    assert missing is not None and missing.rc == 127 and read.store == ""


def _out(*records: tuple[str, int, str]) -> TaskOutput:
    return TaskOutput(
        task="facts", rc=0, records=[Record(name=n, rc=rc, data=t.encode()) for n, rc, t in records]
    )


FP = "ab" * 32
NOW = datetime(2026, 12, 1, 12, tzinfo=UTC)
UP = Upgrade(package="x", version="2", current="1", suites=["bookworm-security"])


def test_an_answer_to_a_question_not_asked_is_not_used() -> None:
    unasked = _out(("needrestart_state", 0, f"unchanged {FP}"))
    assert read_needrestart(unasked, "", None) == NeedrestartRead(store="")
    assert read_needrestart(unasked, "cd" * 32, None) == NeedrestartRead(store="")
    assert read_needrestart(unasked, FP, None).state == "cached"
    odd = _out(("needrestart_state", 0, "computed $(reboot)"))
    assert read_needrestart(odd, FP, []) == NeedrestartRead(state="computed", store="")
    assert read_needrestart(_out(), FP, []) == NeedrestartRead()  # an older script


def test_next_cache_keeps_each_part_and_writes_only_on_a_change() -> None:
    cached = UpgradeCache(
        fingerprint="01" * 32, upgradable=[UP], needrestart=FP, needrestart_at=NOW
    )
    assert next_cache(cached, None, NeedrestartRead(state="cached"), NOW) is None
    assert next_cache(None, None, NeedrestartRead(state="computed", store=""), NOW) is None
    dropped = next_cache(cached, None, NeedrestartRead(state="computed", store=""), NOW)
    assert dropped == cached.model_copy(update={"needrestart": "", "needrestart_at": None})
    later = NOW + timedelta(hours=30)
    renewed = next_cache(cached, None, NeedrestartRead(state="computed", store=FP), later)
    assert renewed is not None and (renewed.needrestart_at, renewed.upgradable) == (later, [UP])
    computed = UpgradeCache(fingerprint="02" * 32, upgradable=[])
    kept = next_cache(cached, computed, NeedrestartRead(state="cached"), later)
    assert kept == computed.model_copy(update={"needrestart": FP, "needrestart_at": NOW})
    first = next_cache(None, None, NeedrestartRead(state="computed", store=FP), NOW)
    assert first == UpgradeCache(fingerprint="", upgradable=[], needrestart=FP, needrestart_at=NOW)


@pytest.mark.parametrize(
    ("age", "sent"),
    [
        (timedelta(0), FP),
        (NEEDRESTART_MAX_AGE, FP),
        (NEEDRESTART_MAX_AGE + timedelta(seconds=1), ""),
        (-timedelta(minutes=5), ""),  # computed "in the future": the clock was set back
    ],
)
def test_a_fingerprint_is_sent_for_a_day_at_most(age: timedelta, sent: str) -> None:
    entry = UpgradeCache(fingerprint="", upgradable=[], needrestart=FP, needrestart_at=NOW)
    assert entry.needrestart_since(NOW + age) == sent
    assert UpgradeCache(fingerprint="", upgradable=[], needrestart=FP).needrestart_since(NOW) == ""


def test_only_a_hex_fingerprint_reaches_the_script() -> None:
    assert "needrestart_since=''" in FactsTask(needrestart_since="x'; reboot; '").body()
    assert f"needrestart_since={FP}\n" in FactsTask(needrestart_since=FP).body()
    assert 'needrestart_check "$needrestart_since"' in FactsTask().body()
