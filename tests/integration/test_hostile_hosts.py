"""Hosts we do not control answering vcops with hostile output, over real SSH on loopback
(:mod:`tests.fakessh`): one host can never take the fleet down.

No lab needed: the fake hosts are asyncssh servers on 127.0.0.x with pinned host keys.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from tests.fakessh import FakeFleet, nonce_of
from tests.framing import Record, frame, framed, said, task_names
from vcops.cli import main

GATHER = (FIXTURES / "facts" / "gather" / "stock_kamailio.txt").read_text()
FIXTURE_NONCE = "0123456789abcdef"


def gather_answer(extra: str = "") -> object:
    """A host answering the fact script like the stock Kamailio fixture, plus ``extra``
    sections (which win over the fixture's)."""

    def answer(script: str) -> tuple[str, int]:
        nonce = nonce_of(script, "@@vcops-")
        return frame(GATHER + extra, nonce), 0

    return answer


def section(name: str, body: str) -> str:
    return f"@@vcops-{FIXTURE_NONCE} {name} 0\n{body}\n"


@pytest.fixture
def cli_env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    for var in ("VCOPS_INVENTORY", "VCOPS_CONFIG", "VCOPS_DATABASE_URL", "VCOPS_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VCOPS_ACTOR", "tester")
    return tmp_path


def test_one_hosts_malformed_facts_never_stop_the_scan(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Today: exit 70 and no result for any host. Now every host has its outcome."""
    with FakeFleet(cli_env / "fleet") as fleet:
        fleet.add("good-01", gather_answer())  # type: ignore[arg-type]
        fleet.add("huge-01", gather_answer(section("now", "9" * 5000)))  # type: ignore[arg-type]
        nested = section("nft", "[" * 100_000 + "]" * 100_000)
        fleet.add("nested-01", gather_answer(nested))  # type: ignore[arg-type]
        words = section("sshd_t", "maxauthtries " + "9" * 5000 + "\npermitrootlogin 0")
        fleet.add("digits-01", gather_answer(words))  # type: ignore[arg-type]
        fleet.add("markup-01", gather_answer(section("os_release", "ID=[/x]\nPRETTY_NAME=[/x]")))  # type: ignore[arg-type]
        root = fleet.write_inventory(
            cli_env / "inventory", roles={n: ["kamailio"] for n in fleet.hosts}
        )
        code = main(["-i", str(root), "--json", "scan"])
        out, err = capsys.readouterr()
        assert code in {1, 3}, err
        report = json.loads(out)
        outcomes = {o["target"]: o for o in report["outcomes"]}
        assert set(outcomes) == {"good-01", "huge-01", "nested-01", "digits-01", "markup-01"}
        good = outcomes["good-01"]
        assert good["status"] == "scanned" and len(good["results"]) > 20
        for name in ("huge-01", "nested-01", "digits-01", "markup-01"):
            o = outcomes[name]
            assert o["status"] == "scanned" or o["error"], o
        nft = [r for r in outcomes["nested-01"]["results"] if r["control_id"] == "VC-NFT-001"]
        assert nft and nft[0]["status"] == "unknown"  # never "pass" on what it could not read
        # and the human output of the same scan prints, brackets and all
        code = main(["-i", str(root), "scan", "--no-store"])
        out, err = capsys.readouterr()
        assert code in {1, 3} and "internal error" not in err and "good-01" in out


def snapshot_records(files: dict[str, str]) -> list[Record]:
    """The snapshot task's records for a host holding ``files``."""
    import io
    import tarfile

    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uname, info.gname = len(data), 0o644, "root", "root"
            tar.addfile(info, io.BytesIO(data))
    return [
        ("files", 0, buffer.getvalue()),
        ("tar_errors", 0, b""),
        ("oversize", 0, b""),
        ("nft", 0, b"table inet filter {\n}\n"),
        ("sshd_t", 0, b"permitrootlogin no\n"),
        ("packages", 0, b"openssh-server\t1:9.2p1-2\tii \n"),
        ("units", 0, b"ssh.service enabled enabled\n"),
    ]


def snapshot_answer(files: dict[str, str]) -> object:
    """A host answering the snapshot task with a tar of ``files``."""

    def answer(script: str) -> tuple[str, int]:
        assert task_names(script) == ["snapshot"], task_names(script)
        return framed(nonce_of(script, "@@vcops-"), {"snapshot": snapshot_records(files)}), 0

    return answer


def test_hostile_trees_never_break_snapshot_take_for_the_fleet(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Today the planted .gitattributes makes git add fail and leaves the tree dirty: this
    take and every later one (and so every window) fail for every host."""
    planted = {
        "etc/asterisk/.gitattributes": "* working-tree-encoding=NOPE-ENC\n",
        "etc/asterisk/.gitignore": "*\n",
        "etc/asterisk/manager.conf": "[admin]\nsecret = canary-ami\n",
        "etc/asterisk/pjsip.conf": "[global]\ntype=global\n",
        "etc/asterisk/pjsip.conf/x.conf": "a file and a directory at once\n",
    }
    honest = {"etc/asterisk/manager.conf": "[general]\nenabled = no\n"}
    with FakeFleet(cli_env / "fleet") as fleet:
        fleet.add("ast-hostile", snapshot_answer(planted))  # type: ignore[arg-type]
        fleet.add("ast-honest", snapshot_answer(honest))  # type: ignore[arg-type]
        root = fleet.write_inventory(
            cli_env / "inventory", roles={n: ["asterisk"] for n in fleet.hosts}
        )
        for attempt in ("first", "second"):
            code = main(["-i", str(root), "--json", "snapshot", "take", "--reason", attempt])
            out, err = capsys.readouterr()
            assert code == 0, err
            report = json.loads(out)
            assert {h["name"]: h["status"] for h in report["hosts"]}.keys() == {
                "ast-hostile",
                "ast-honest",
            }
        code = main(["-i", str(root), "snapshot", "show", "ast-hostile", "HEAD",
                     "files/etc/asterisk/.gitignore"])  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0 and out == "*\n", err
        code = main(["-i", str(root), "snapshot", "show", "ast-hostile"])
        out, _ = capsys.readouterr()
        assert "/etc/asterisk/.gitattributes" in out and "canary" not in out


HOSTILE_APT = "E: [/x] dpkg: error processing [smtp] [bold]half-configured"


def window_host(files: dict[str, str]) -> object:
    """A host that plans one upgrade, answers every window step sanely, and fails its
    install with a line of markup."""

    def answer(script: str) -> tuple[str, int]:
        tasks: dict[str, list[Record]] = {}
        for task in task_names(script):
            if task == "snapshot":
                tasks[task] = snapshot_records(files)
            elif task == "window" and "apt-get install -y" in script:
                tasks[task] = said(
                    "before vcops-testpkg 1.0",
                    f"install 100 {HOSTILE_APT}",
                    "after vcops-testpkg 1.0",
                )
            elif task == "window" and "say listed" in script:  # the plan
                tasks[task] = said(
                    "listed 0",
                    "upgradable vcops-testpkg/bookworm-security 1.1 all [upgradable from: 1.0]",
                    "reboot-required no",
                )
            elif task == "window":  # precheck, drain, gate, start
                tasks[task] = said("active ssh.service", "boot 6f1c0c3e-boot")
            else:
                raise AssertionError(f"unexpected task {task}")
        return framed(nonce_of(script, "@@vcops-"), tasks), 0

    return answer


def test_a_host_answering_markup_fails_and_rolls_back_without_crashing_the_runner(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Today: rich raises MarkupError on the "rolling back" line (exit 70) before the
    rollback runs, and the resumed run crashes the same way."""
    import subprocess
    import time
    from datetime import UTC, datetime, timedelta

    keys = cli_env / "board"
    keys.mkdir()
    for name in ("alice", "ops"):  # a board member, and the requester (not on the board)
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", name, "-f", str(keys / name)],
            check=True,
        )
    alice = (keys / "alice.pub").read_text().strip()
    board = (
        "change_board:\n  quorum: {production: 1, staging: 1, lab: 1}\n  members:\n"
        f'    - {{name: alice, email: alice@example.net, ssh_public_key: "{alice}"}}\n'
    )
    with FakeFleet(cli_env / "fleet") as fleet:
        fleet.add("gen-01", window_host({"etc/ssh/sshd_config": "PermitRootLogin no\n"}))  # type: ignore[arg-type]
        root = fleet.write_inventory(
            cli_env / "inventory", roles={"gen-01": ["generic"]}, extra=board
        )
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=3)
        code = main(
            ["-i", str(root), "--json", "window", "create", "--targets", "gen-01",
             "--start", start.isoformat(), "--duration", "1h", "--cutoff", "30m",
             "--max-concurrency", "1", "--max-errors", "1", "--actions", "all-updates",
             "--reboot", "never", "--change-id", "CHG-[/x]", "--title", "markup [/x]",
             "--key", str(keys / "ops")]
        )  # fmt: skip
        out, err = capsys.readouterr()
        assert code == 0, err
        window_id = json.loads(out)["id"]
        code = main(["-i", str(root), "window", "approve", window_id, "--key", str(keys / "alice")])
        _, err = capsys.readouterr()
        assert code == 0, err
        time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.3))

        code = main(["-i", str(root), "window", "run", window_id])
        out, err = capsys.readouterr()
        assert "internal error" not in err, err
        assert code == 1
        assert HOSTILE_APT in err  # printed as it is, brackets and all
        code = main(["-i", str(root), "--json", "window", "report", window_id])
        out, err = capsys.readouterr()
        assert code == 0, err
        host = {h["target"]: h for h in json.loads(out)["hosts"]}["gen-01"]
        assert host["state"] == "failed" and HOSTILE_APT in host["summary"]
        assert host["rollback"] and "configs restored" in host["rollback"]
        # a second run (a resume after today's crash) is refused in one line, no crash
        code = main(["-i", str(root), "window", "run", window_id])
        _, err = capsys.readouterr()
        assert code != 0 and "internal error" not in err and "halted" in err
        for cmd in (["window", "show", window_id], ["window", "list"], ["audit", "log"]):
            code = main(["-i", str(root), *cmd])
            out, err = capsys.readouterr()
            assert code == 0 and "internal error" not in err, (cmd, err)


def test_restore_refuses_a_forged_file_list_before_touching_the_host(
    cli_env: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Someone who can write the snapshot store adds /root/.ssh/authorized_keys to a
    host's file list: restore refuses the whole snapshot and sends the host nothing."""
    import subprocess

    with FakeFleet(cli_env / "fleet") as fleet:
        fleet.add("ast-01", snapshot_answer({"etc/asterisk/manager.conf": "[general]\n"}))  # type: ignore[arg-type]
        root = fleet.write_inventory(cli_env / "inventory", roles={"ast-01": ["asterisk"]})
        assert main(["-i", str(root), "snapshot", "take"]) == 0
        repo = cli_env / ".vcops" / "snapshots"
        host = repo / "ast-01"
        with (host / "file-list.txt").open("a") as handle:
            handle.write("0600\troot\troot\tfile\t/root/.ssh/authorized_keys\n")
        keys = host / "files" / "root" / ".ssh"
        keys.mkdir(parents=True)
        (keys / "authorized_keys").write_text("ssh-ed25519 AAAA attacker\n")
        git = ["git", "-C", str(repo), "-c", "user.name=x", "-c", "user.email=x@x"]
        subprocess.run([*git, "add", "-A"], check=True)
        subprocess.run([*git, "commit", "-qm", "forged"], check=True)
        capsys.readouterr()
        before = len(fleet.scripts["ast-01"])
        code = main(["-i", str(root), "snapshot", "restore", "ast-01", "HEAD"])
        _, err = capsys.readouterr()
        assert code != 0 and "internal error" not in err
        assert "/root/.ssh/authorized_keys" in err and "outside the trees" in err
        # only the live collection ran on the host: no restore script was ever sent
        sent = fleet.scripts["ast-01"][before:]
        assert sent and all(task_names(s) == ["snapshot"] for s in sent)
