"""The git store on a temporary repository with real git: commits, no-op runs, reading back."""

from __future__ import annotations

import subprocess
import threading
from pathlib import Path

import pytest

from vcops.errors import StoreError
from vcops.inventory.models import Inventory
from vcops.snapshot.gitstore import SnapshotRepo, check_rev
from vcops.snapshot.keys import key_path, load_or_create_key
from vcops.snapshot.models import HostSnapshot
from vcops.snapshot.take import SnapshotContext, commit_message, record

KEY = b"vcops-test-mask-key-0123456789ab"


def _ctx(tmp_path: Path, actor: str = "alice@ctl1") -> SnapshotContext:
    return SnapshotContext(
        inventory=Inventory(root=tmp_path),
        repo=SnapshotRepo(tmp_path / "snapshots"),
        key=KEY,
        actor=actor,
    )


def _server(name: str, sshd: str = "PermitRootLogin no\n", **extra: str) -> HostSnapshot:
    files = {
        "files/etc/ssh/sshd_config": sshd,
        "file-list.txt": "0644\troot\troot\tfile\t/etc/ssh/sshd_config\n",
        "state/packages.txt": "openssh-server\t1:9.2p1-2\n",
        **extra,
    }
    return HostSnapshot(name=name, kind="server", via="ssh", files=files)


def _device(name: str, running: str) -> HostSnapshot:
    return HostSnapshot(
        name=name, kind="device", via="netmiko", files={"running-config.txt": running}
    )


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    ).stdout


def test_one_commit_per_run_with_reason_operator_window_and_hosts(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    commit, statuses = record(
        ctx,
        [_server("kam-01"), _device("sw-01", "hostname sw-01\n")],
        "before patching",
        "W-2026-11-28",
        {"ast-01": "unreachable"},
    )
    assert commit is not None
    assert statuses == {"kam-01": "new", "sw-01": "new"}
    [info, created] = ctx.repo.log()
    assert created.subject == "vcops snapshot store created"
    assert info.commit == commit
    assert info.reason == "before patching"
    assert info.operator == "alice@ctl1" and info.author == "alice@ctl1"
    assert info.window == "W-2026-11-28"
    assert info.hosts_changed == ["kam-01", "sw-01"]
    # Plain git sees the same: trailers, one folder per host.
    body = _git(ctx.repo.path, "log", "-1", "--format=%B")
    assert "Hosts-failed: ast-01 (unreachable)" in body
    assert _git(ctx.repo.path, "ls-tree", "--name-only", "HEAD").split() == [
        ".gitattributes",
        "README.md",
        "kam-01",
        "sw-01",
    ]
    assert _git(ctx.repo.path, "status", "--porcelain") == ""


def test_an_unchanged_fleet_adds_no_commit_and_an_unchanged_host_adds_nothing(
    tmp_path: Path,
) -> None:
    ctx = _ctx(tmp_path)
    record(ctx, [_server("kam-01"), _device("sw-01", "hostname sw-01\n")], "first", None, {})
    head = _git(ctx.repo.path, "rev-parse", "HEAD")
    commit, statuses = record(
        ctx, [_server("kam-01"), _device("sw-01", "hostname sw-01\n")], "again", None, {}
    )
    assert (commit, statuses) == (None, {})
    assert _git(ctx.repo.path, "rev-parse", "HEAD") == head
    commit, statuses = record(
        ctx,
        [_server("kam-01"), _device("sw-01", "hostname sw-01\nntp server 192.0.2.1\n")],
        "ntp",
        None,
        {},
    )
    assert commit is not None and statuses == {"sw-01": "changed"}
    assert _git(ctx.repo.path, "show", "--name-only", "--format=", "HEAD").split() == [
        "sw-01/running-config.txt"
    ]
    assert ctx.repo.log("kam-01")[0].reason == "first"
    assert [c.reason for c in ctx.repo.log("sw-01")] == ["ntp", "first"]


def test_a_failed_host_keeps_its_last_snapshot(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    record(ctx, [_server("kam-01"), _server("ast-01")], "first", None, {})
    commit, _ = record(
        ctx, [_server("kam-01", "PermitRootLogin yes\n")], "second", None, {"ast-01": "failed"}
    )
    assert commit is not None
    assert "ast-01" in ctx.repo.hosts()
    assert ctx.repo.read_tree("ast-01", "HEAD")["files/etc/ssh/sshd_config"] == (
        b"PermitRootLogin no\n"
    )


def test_removed_files_are_removed_and_content_is_byte_exact(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    odd = "line with trailing blanks   \r\nno final newline\tand a tab"
    record(ctx, [_server("kam-01", **{"files/etc/kamailio/extra.cfg": odd})], "a", None, {})
    assert ctx.repo.read_tree("kam-01", "HEAD")["files/etc/kamailio/extra.cfg"] == odd.encode()
    record(ctx, [_server("kam-01")], "b", None, {})
    assert "files/etc/kamailio/extra.cfg" not in ctx.repo.read_tree("kam-01", "HEAD")
    [diff] = ctx.repo.diff("kam-01", "HEAD~1", "HEAD")
    assert diff.path == "files/etc/kamailio/extra.cfg" and diff.status == "deleted"


def test_diff_shows_the_change_per_file(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    record(ctx, [_server("kam-01")], "a", None, {})
    record(ctx, [_server("kam-01", "PermitRootLogin yes\n")], "b", None, {})
    old, new = ctx.repo.host_commits("kam-01")[1], ctx.repo.host_commits("kam-01")[0]
    [diff] = ctx.repo.diff("kam-01", old, new)
    assert diff.path == "files/etc/ssh/sshd_config" and diff.status == "modified"
    assert "-PermitRootLogin no\n+PermitRootLogin yes" in diff.diff


def test_a_hand_edited_tree_is_refused(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    record(ctx, [_server("kam-01")], "a", None, {})
    (ctx.repo.path / "kam-01" / "files" / "etc" / "ssh" / "sshd_config").write_text("edited\n")
    with pytest.raises(StoreError, match="uncommitted changes"):
        record(ctx, [_server("kam-02")], "b", None, {})


def test_concurrent_writers_take_turns(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    ctx.repo.ensure()
    errors: list[BaseException] = []

    def write(i: int) -> None:
        try:
            record(_ctx(tmp_path), [_server(f"host-{i:02d}")], f"run {i}", None, {})
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(i,)) for i in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert len(ctx.repo.log()) == 7
    assert len(ctx.repo.hosts()) == 6


@pytest.mark.parametrize("rev", ["--output=/tmp/x", "-p", "a b", "HEAD..HEAD~1", "$(id)", ""])
def test_revisions_that_could_be_options_are_refused(rev: str) -> None:
    with pytest.raises(StoreError):
        check_rev(rev)


def test_unknown_revision_is_one_clear_error(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path)
    record(ctx, [_server("kam-01")], "a", None, {})
    with pytest.raises(StoreError, match="no snapshot 'deadbeef'"):
        ctx.repo.resolve("deadbeef")


def test_commit_message_is_trailers_git_understands() -> None:
    message = commit_message("nightly", "bob@ctl", None, ["a", "b"], 3, {"c": "unreachable"})
    assert message.splitlines()[0] == "snapshot: nightly (2 of 6 hosts changed)"
    assert "Window:" not in message
    assert message.endswith("Hosts-unchanged: 3\nHosts-failed: c (unreachable)\n")


def test_mask_key_is_created_private_and_reused(tmp_path: Path) -> None:
    state = tmp_path / "state"
    key = load_or_create_key(state, tmp_path / "snapshots")
    assert len(key) == 32
    assert key_path(state).stat().st_mode & 0o777 == 0o600
    assert load_or_create_key(state, tmp_path / "snapshots") == key
    key_path(state).chmod(0o644)
    with pytest.raises(StoreError, match="readable by others"):
        load_or_create_key(state, tmp_path / "snapshots")


def test_mask_key_never_lives_inside_the_repository(tmp_path: Path) -> None:
    with pytest.raises(StoreError, match="inside the snapshot repository"):
        load_or_create_key(tmp_path / "repo", tmp_path / "repo")
