"""Restore planning (pure) and the restore script, run for real with sh on temporary files."""

from __future__ import annotations

import grp
import os
import pwd
import subprocess
from pathlib import Path

import pytest

from vcops.connectors.hosttask import TaskOutput, compose, split
from vcops.snapshot.build import render_file_list
from vcops.snapshot.collect import paths_for_roles
from vcops.snapshot.mask import mask_text
from vcops.snapshot.models import FileEntry
from vcops.snapshot.restore_plan import (
    FileWrite,
    handling_for,
    plan_line_merge,
    plan_server_restore,
)
from vcops.snapshot.restore_script import RestoreTask, parse_restore_output

KEY = b"vcops-test-mask-key-0123456789ab"
ROOTS = paths_for_roles(["kamailio", "asterisk", "freeswitch", "rtpengine"])
NONCE = "0123456789abcdef"
KAMCTLRC = 'DBENGINE=MYSQL\nDBRWPW="canary-rw"\n'
CFG = "#!KAMAILIO\nlisten=udp:0.0.0.0:5060\n"


def _entry(
    path: str, mode: str = "0640", owner: str = "root", group: str = "kamailio"
) -> FileEntry:
    return FileEntry(path=path, mode=mode, owner=owner, group=group, type="file")


def _stored(files: dict[str, str], entries: list[FileEntry]) -> dict[str, bytes]:
    stored = {f"files{p}": mask_text(t, "kamailio", KEY).text.encode() for p, t in files.items()}
    stored["file-list.txt"] = render_file_list(entries).encode()
    return stored


def test_an_unchanged_host_needs_nothing() -> None:
    entries = [_entry("/etc/kamailio/kamctlrc"), _entry("/etc/kamailio/kamailio.cfg")]
    files = {"/etc/kamailio/kamctlrc": KAMCTLRC, "/etc/kamailio/kamailio.cfg": CFG}
    stored = _stored(files, entries)
    live = [(e, files[e.path]) for e in entries]
    plan = plan_server_restore(stored, live, KEY, roots=ROOTS)
    assert plan.writes == [] and {f.action for f in plan.files} == {"unchanged"}


def test_a_changed_file_is_written_back_with_its_secret_from_the_live_host() -> None:
    entries = [_entry("/etc/kamailio/kamctlrc"), _entry("/etc/kamailio/kamailio.cfg")]
    stored = _stored(
        {"/etc/kamailio/kamctlrc": KAMCTLRC, "/etc/kamailio/kamailio.cfg": CFG}, entries
    )
    live_cfg = CFG.replace("5060", "5070")
    live_rc = KAMCTLRC + "DBHOST=db2\n"
    plan = plan_server_restore(
        stored,
        [(entries[0], live_rc), (entries[1], live_cfg)],
        KEY,
        roots=ROOTS,
    )
    by_path = {w.path: w for w in plan.writes}
    assert by_path["/etc/kamailio/kamctlrc"].content == KAMCTLRC  # secret back from the live file
    assert by_path["/etc/kamailio/kamailio.cfg"].content == CFG
    assert by_path["/etc/kamailio/kamailio.cfg"].pre == "kamailio -c -f {file}"
    assert plan.post_checks == ["kamailio"] and plan.reloads == ["kamailio"]
    for item in plan.files:
        assert "canary" not in item.diff  # diffs are masked
    assert "-DBHOST=db2" in next(f.diff for f in plan.files if f.path.endswith("kamctlrc"))


def test_a_rotated_secret_is_refused_or_skipped_never_guessed() -> None:
    entries = [_entry("/etc/kamailio/kamctlrc")]
    stored = _stored({"/etc/kamailio/kamctlrc": KAMCTLRC}, entries)
    live = [(entries[0], KAMCTLRC.replace("canary-rw", "canary-rotated") + "X=1\n")]
    plan = plan_server_restore(stored, live, KEY, roots=ROOTS)
    [item] = plan.files
    assert item.action == "refused" and plan.writes == []
    assert "restore this file by hand" in item.reason and "--skip-masked" in item.reason
    assert "canary" not in item.diff and "canary" not in item.reason
    skipped = plan_server_restore(stored, live, KEY, roots=ROOTS, skip_masked=True)
    assert [f.action for f in skipped.files] == ["skipped"] and skipped.writes == []


def test_new_files_are_deleted_missing_ones_created_and_modes_restored() -> None:
    entries = [_entry("/etc/kamailio/kamailio.cfg", mode="0640")]
    stored = _stored({"/etc/kamailio/kamailio.cfg": CFG}, entries)
    extra = _entry("/etc/kamailio/evil.cfg")
    live = [(_entry("/etc/kamailio/kamailio.cfg", mode="0666"), CFG), (extra, "x\n")]
    plan = plan_server_restore(stored, live, KEY, roots=ROOTS)
    actions = {f.path: f.action for f in plan.files}
    assert actions == {"/etc/kamailio/evil.cfg": "delete", "/etc/kamailio/kamailio.cfg": "write"}
    mode_only = next(f for f in plan.files if f.path.endswith("kamailio.cfg"))
    assert mode_only.diff.startswith("mode/owner: 0666 root:kamailio -> 0640 root:kamailio")
    created = plan_server_restore(stored, [], KEY, roots=ROOTS)
    assert [(f.path, f.action) for f in created.files] == [("/etc/kamailio/kamailio.cfg", "create")]
    only = plan_server_restore(stored, live, KEY, roots=ROOTS, paths=["/etc/kamailio/evil.cfg"])
    assert [f.path for f in only.files] == ["/etc/kamailio/evil.cfg"]


def test_rtpengine_is_never_restarted_by_itself() -> None:
    entries = [_entry("/etc/rtpengine/rtpengine.conf")]
    stored = _stored({"/etc/rtpengine/rtpengine.conf": "[rtpengine]\nport-min=30000\n"}, entries)
    plan = plan_server_restore(stored, [], KEY, roots=ROOTS)
    assert plan.reloads == [] and "maintenance window" in plan.notes[0]


@pytest.mark.parametrize(
    ("path", "pre", "reload"),
    [
        ("/etc/ssh/sshd_config", "sshd -t -f {file}", "ssh"),
        ("/etc/ssh/sshd_config.d/50-vcops.conf", None, "ssh"),
        ("/etc/ssh/ssh_host_ed25519_key.pub", None, None),
        ("/etc/nftables.conf", "nft -c -f {file}", "nftables"),
        ("/etc/fail2ban/jail.local", None, "fail2ban"),
        ("/etc/apt/apt.conf.d/50unattended-upgrades", "apt-config -c {file} dump", None),
        ("/etc/asterisk/pjsip.conf", None, "asterisk"),
        ("/etc/sysctl.d/99-vcops.conf", None, "sysctl"),
    ],
)
def test_validators_and_reloads_per_path(path: str, pre: str | None, reload: str | None) -> None:
    rule = handling_for(path)
    assert (rule.pre, rule.reload) == (pre, reload)


# -- the Netmiko line plan ------------------------------------------------------------

SWITCH = """version 12.1
!
hostname lab-sw-01
!
vlan 1
!
interface FastEthernet0/1
!
interface FastEthernet0/2
 description uplink
!
end
"""


def test_line_merge_removes_a_block_and_restores_children() -> None:
    current = SWITCH.replace(" description uplink\n", " description changed\n").replace(
        "end\n", "interface Vlan213\n description test\n standby 1 authentication x\n!\nend\n"
    )
    assert plan_line_merge(current, SWITCH, "ios") == [
        "no interface Vlan213",
        "interface FastEthernet0/2",
        " no description changed",
        " description uplink",
    ]
    assert plan_line_merge(SWITCH, SWITCH, "ios") == []


def test_line_merge_replaces_single_value_commands_in_the_right_order() -> None:
    current = SWITCH.replace("hostname lab-sw-01", "hostname other")
    assert plan_line_merge(current, SWITCH, "ios") == ["no hostname other", "hostname lab-sw-01"]
    undo = plan_line_merge(
        SWITCH.replace("vlan 1\n", "vlan 1\nno ip domain-lookup\n"), SWITCH, "ios"
    )
    assert undo == ["ip domain-lookup"]


def test_junos_has_no_line_merge() -> None:
    with pytest.raises(ValueError, match="NAPALM"):
        plan_line_merge("set system host-name a\n", "set system host-name b\n", "junos")


# -- the restore script, for real on temporary files ----------------------------------


def _run(script: str) -> tuple[int, TaskOutput]:
    """Run the framed restore script here; the task's exit status and its records."""
    proc = subprocess.run(
        ["sh", "-s"], input=script, capture_output=True, text=True, timeout=60, check=False
    )
    out = split(proc.stdout, NONCE).task("restore")
    assert proc.returncode == 0 and out.rc is not None, proc.stderr
    return out.rc, out


@pytest.fixture
def me() -> tuple[str, str]:
    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def _script(writes: list[FileWrite], tmp_path: Path, post: list[str] | None = None) -> str:
    task = RestoreTask(writes=writes, post_checks=post or [], run_id="unit-test")
    script = compose([task], NONCE)
    return script.replace("/var/backups/vcops/unit-test", str(tmp_path / "backup"))


def test_files_are_written_atomically_with_mode_owner_and_backup(
    tmp_path: Path, me: tuple[str, str]
) -> None:
    live = tmp_path / "etc" / "app.conf"
    live.parent.mkdir()
    live.write_text("old\n")
    gone = tmp_path / "etc" / "new.conf"
    gone.write_text("added later\n")
    content = "secret = canary-x\nline with 'quotes' and $(dollars) `ticks`\n"
    writes = [
        FileWrite(path=str(live), content=content, mode="0640", owner=me[0], group=me[1]),
        FileWrite(
            path=str(tmp_path / "etc" / "sub dir" / "made.conf"),
            content="x\n",
            existed=False,
            owner=me[0],
            group=me[1],
        ),
        FileWrite(path=str(gone), content=None),
    ]
    code, out = _run(_script(writes, tmp_path))
    result = parse_restore_output(out, writes)
    assert code == 0 and result.done, out
    assert live.read_text() == content
    assert live.stat().st_mode & 0o777 == 0o640
    assert (tmp_path / "etc" / "sub dir" / "made.conf").read_text() == "x\n"
    assert (tmp_path / "etc" / "sub dir").stat().st_mode & 0o777 == 0o755  # not the script's umask
    assert not gone.exists()
    assert (tmp_path / "backup" / str(live).lstrip("/")).read_text() == "old\n"
    assert (tmp_path / "backup" / str(gone).lstrip("/")).read_text() == "added later\n"
    assert result.written == [str(live), str(tmp_path / "etc" / "sub dir" / "made.conf")]
    assert result.deleted == [str(gone)]
    assert not list((tmp_path / "etc").glob(".vcops-restore.*"))


def test_a_file_failing_its_validator_replaces_nothing(tmp_path: Path, me: tuple[str, str]) -> None:
    first, second = tmp_path / "a.conf", tmp_path / "b.conf"
    first.write_text("old a\n")
    second.write_text("old b\n")
    writes = [
        FileWrite(path=str(first), content="new a\n", owner=me[0], group=me[1]),
        FileWrite(
            path=str(second),
            content="broken\n",
            owner=me[0],
            group=me[1],
            pre="grep -q valid {file}",
        ),
    ]
    code, out = _run(_script(writes, tmp_path))
    result = parse_restore_output(out, writes)
    assert code == 1 and not result.done
    assert list(result.invalid) == [str(second)]
    assert first.read_text() == "old a\n" and second.read_text() == "old b\n"
    assert not list(tmp_path.glob(".vcops-restore.*"))


def test_a_failing_whole_config_check_rolls_every_file_back(
    tmp_path: Path, me: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    from vcops.snapshot import restore_plan

    monkeypatch.setitem(restore_plan.POST_CHECKS, "sshd", ("sh", f"grep -q good {tmp_path}/a.conf"))
    target, created = tmp_path / "a.conf", tmp_path / "c.conf"
    target.write_text("good\n")
    writes = [
        FileWrite(path=str(target), content="bad\n", owner=me[0], group=me[1]),
        FileWrite(path=str(created), content="new\n", existed=False, owner=me[0], group=me[1]),
    ]
    code, out = _run(_script(writes, tmp_path, post=["sshd"]))
    result = parse_restore_output(out, writes)
    assert code == 1 and result.rolled_back and "sshd" in result.post_failed
    assert target.read_text() == "good\n"
    assert not created.exists()
