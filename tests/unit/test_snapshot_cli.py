"""``vcops snapshot`` on a real temporary git store: list, show, diff, refusals, exit codes."""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from pathlib import Path

import pytest

from vcops.cli import main
from vcops.inventory.models import Inventory
from vcops.snapshot.gitstore import SnapshotRepo
from vcops.snapshot.mask import mask_text
from vcops.snapshot.models import HostSnapshot
from vcops.snapshot.take import SnapshotContext, record

KEY = b"vcops-test-mask-key-0123456789ab"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("VCOPS_INVENTORY", "VCOPS_CONFIG", "VCOPS_DATABASE_URL", "VCOPS_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VCOPS_ACTOR", "tester@ctl")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


@pytest.fixture
def repo(tmp_path: Path) -> SnapshotRepo:
    """Two snapshots of kam-01 (an Asterisk-style secret rotated), one of sw-01."""
    ctx = SnapshotContext(
        inventory=Inventory(root=tmp_path),
        repo=SnapshotRepo(tmp_path / ".vcops" / "snapshots"),
        key=KEY,
        actor="tester@ctl",
    )

    def server(secret: str, port: str) -> HostSnapshot:
        conf = mask_text(f"[admin]\nsecret = {secret}\nport = {port}\n", "asterisk", KEY).text
        return HostSnapshot(
            name="kam-01",
            kind="server",
            via="ssh",
            files={
                "files/etc/asterisk/manager.conf": conf,
                "file-list.txt": "0640\troot\tasterisk\tfile\t/etc/asterisk/manager.conf\n",
            },
        )

    sw = HostSnapshot(
        name="sw-01", kind="device", via="netmiko", files={"running-config.txt": "hostname sw-01\n"}
    )
    record(ctx, [server("canary-one", "5038"), sw], "first [bold]run[/bold]", "W-1", {})
    record(ctx, [server("canary-two", "5039"), sw], "rotated", None, {})
    return ctx.repo


def test_list_all_and_per_host(capsys: pytest.CaptureFixture[str], repo: SnapshotRepo) -> None:
    code, out, _ = run(capsys, "snapshot", "list", "--json")
    rows = json.loads(out)
    assert code == 0 and [r["reason"] for r in rows] == ["rotated", "first [bold]run[/bold]", ""]
    assert rows[1]["window"] == "W-1" and rows[1]["hosts_changed"] == ["kam-01", "sw-01"]
    code, out, _ = run(capsys, "snapshot", "list", "sw-01")
    assert code == 0 and "first [bold]run[/bold]" in out and "rotated" not in out


def test_diff_defaults_to_the_last_two_and_never_reveals_a_secret(
    capsys: pytest.CaptureFixture[str], repo: SnapshotRepo
) -> None:
    code, out, _ = run(capsys, "snapshot", "diff", "kam-01")
    assert code == 0
    minus = [line for line in out.splitlines() if line.startswith("-secret")]
    plus = [line for line in out.splitlines() if line.startswith("+secret")]
    assert len(minus) == len(plus) == 1 and minus[0][1:] != plus[0][1:]
    assert "<vcops:masked:hmac-sha256:" in plus[0]
    assert "-port = 5038" in out and "+port = 5039" in out
    assert "canary" not in out
    assert "\x1b[" not in out  # plain in a pipe
    code, out, _ = run(capsys, "snapshot", "diff", "kam-01", "--json")
    payload = json.loads(out)
    assert code == 0 and [f["path"] for f in payload["files"]] == [
        "files/etc/asterisk/manager.conf"
    ]
    assert payload["files"][0]["status"] == "modified" and "canary" not in out


def test_diff_of_a_host_with_one_snapshot_says_so(
    capsys: pytest.CaptureFixture[str], repo: SnapshotRepo
) -> None:
    code, out, _ = run(capsys, "snapshot", "diff", "sw-01")
    assert code == 0 and "one snapshot" in out


def test_show_lists_files_and_prints_one(
    capsys: pytest.CaptureFixture[str], repo: SnapshotRepo
) -> None:
    code, out, _ = run(capsys, "snapshot", "show", "kam-01", "--json")
    files = json.loads(out)["files"]
    assert code == 0
    assert {f["path"] for f in files} == {"/etc/asterisk/manager.conf", "file-list.txt"}
    assert next(f for f in files if f["path"].startswith("/"))["owner"] == "root:asterisk"
    first = repo.host_commits("kam-01")[-1][:10]
    code, out, _ = run(capsys, "snapshot", "show", "kam-01", first, "/etc/asterisk/manager.conf")
    assert code == 0 and out.startswith("[admin]\nsecret = <vcops:masked:") and "5038" in out
    code, out, _ = run(capsys, "snapshot", "show", "sw-01", "HEAD", "running-config.txt")
    assert (code, out) == (0, "hostname sw-01\n")


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["show", "kam-01", "HEAD", "/etc/shadow"], "kam-01: no file /etc/shadow in the snapshot"),
        (["show", "nobody"], "nobody: no snapshot in"),
        (["diff", "kam-01", "--", "--output=/tmp/x"], "not a commit name"),
        (["diff", "kam-01", "feedface"], "no snapshot 'feedface'"),
        (["show", "../etc"], "not a host name"),
    ],
)
def test_store_errors_are_one_line(
    capsys: pytest.CaptureFixture[str], repo: SnapshotRepo, args: list[str], message: str
) -> None:
    code, out, err = run(capsys, "snapshot", *args)
    assert code in {1, 2} and out == ""
    assert err.count("\n") == 1 and message in err


def test_no_repository_yet_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "snapshot", "list")
    assert code == 1 and "run `vcops snapshot take` first" in err


def test_production_restore_is_refused_without_an_emergency_and_audited(
    capsys: pytest.CaptureFixture[str], make_inventory: Callable[..., Path], tmp_path: Path
) -> None:
    root = make_inventory()
    code, out, err = run(capsys, "-i", str(root), "snapshot", "restore", "kam-01", "HEAD")
    assert code == 1 and out == ""
    assert "kam-01: production is changed only by an approved patch window" in err
    assert "--emergency REASON" in err and "--check" in err
    db = sqlite3.connect(tmp_path / ".vcops" / "vcops.db")
    [(action, target)] = db.execute("select action, target from audit_log").fetchall()
    assert (action, target) == ("snapshot.restore.refused", "kam-01")


def test_unreachable_targets_exit_3_and_commit_nothing(
    capsys: pytest.CaptureFixture[str],
    make_inventory: Callable[..., Path],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("VCOPS_TEST_UNSET_PASSWORD", raising=False)
    (tmp_path / "known_hosts").write_text("")
    root = make_inventory(
        base=False,
        files={
            "inv.yml": (
                "settings: {ssh: {known_hosts_file: "
                + str(tmp_path / "known_hosts")
                + ", connect_timeout: 3}}\n"
                "sites: [{name: s1}]\n"
                "servers:\n"
                "  - {name: gone-01, address: 127.0.0.1, port: 1, roles: [generic], site: s1,"
                " environment: lab}\n"
                "devices:\n"
                "  - {name: nopw-sw, address: 192.0.2.1, platform: ios, transport: netmiko,"
                " site: s1, environment: lab,"
                " credentials: {username: a, password_env: VCOPS_TEST_UNSET_PASSWORD}}\n"
            )
        },
    )
    code, out, err = run(capsys, "-i", str(root), "snapshot", "take", "--json", "--reason", "t")
    report = json.loads(out)
    assert code == 3, err
    assert report["commit"] is None
    rows = {h["name"]: h for h in report["hosts"]}
    assert rows["gone-01"]["status"] == "unreachable"
    assert "127.0.0.1:1" in rows["gone-01"]["error"]
    # The password reference is resolved before any connection: a failure, named.
    assert rows["nopw-sw"]["status"] == "failed"
    assert "$VCOPS_TEST_UNSET_PASSWORD is not set" in rows["nopw-sw"]["error"]
    repo = SnapshotRepo(tmp_path / ".vcops" / "snapshots")
    assert repo.exists() is False or [c.subject for c in repo.log()] == [
        "vcops snapshot store created"
    ]
    assert (tmp_path / ".vcops" / "snapshot-mask.key").stat().st_mode & 0o777 == 0o600


def test_diffs_are_coloured_on_a_terminal() -> None:
    import io

    from rich.console import Console

    from vcops.cli.snapshot_cmds import render_diff
    from vcops.snapshot.models import FileDiff

    buffer = io.StringIO()
    console = Console(file=buffer, force_terminal=True, color_system="standard", width=120)
    render_diff(console, [FileDiff(path="x", status="modified", diff="@@ -1 +1 @@\n-a [b]\n+c\n")])
    out = buffer.getvalue()
    assert "\x1b[31m-a [b]" in out and "\x1b[32m+c" in out  # markup-like text printed as is
