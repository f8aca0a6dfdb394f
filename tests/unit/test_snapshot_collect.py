"""The collection script's output split and built into a masked snapshot (pure)."""

from __future__ import annotations

import base64
import io
import subprocess
import tarfile
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vcops.connectors.hosttask import compose, marker, new_nonce, split
from vcops.snapshot.build import (
    FILE_LIST,
    RUNNING,
    STARTUP,
    apply_delta,
    build_device_snapshot,
    build_server_snapshot,
    enabled_units,
    parse_file_list,
    render_file_list,
    safe_member_path,
)
from vcops.snapshot.collect import Section, SnapshotTask, paths_for_roles, snapshot_sections

KEY = b"vcops-test-mask-key-0123456789ab"
ROOTS = paths_for_roles(["asterisk"])


def _tar(members: list[tuple[str, bytes | str, int]]) -> bytes:
    """A tar of (name, content or '->target', mode)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, content, mode in members:
            info = tarfile.TarInfo(name)
            info.mode, info.uname, info.gname = mode, "root", "asterisk"
            if isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content.removeprefix("->")
                tar.addfile(info)
            else:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()


def _output(nonce: str, sections: dict[str, tuple[int, bytes]]) -> str:
    """What the host-task layer prints for a snapshot task with these records."""
    lines = [f"{marker(nonce)} vcops @start 0", ""]
    for name, (rc, data) in sections.items():
        lines += [f"{marker(nonce)} snapshot {name} {rc}", base64.b64encode(data).decode()]
    lines += [f"{marker(nonce)} snapshot @end 0", "", f"{marker(nonce)} vcops @end 0", ""]
    return "\n".join(lines)


def render_script(nonce: str, roots: list[str]) -> str:
    return compose([SnapshotTask(roots=roots)], nonce)


def split_output(text: str, nonce: str) -> dict[str, Section]:
    return snapshot_sections(split(text, nonce).task("snapshot"))


def test_script_is_rendered_with_this_runs_marker_and_quoted_paths() -> None:
    nonce = new_nonce()
    script = render_script(nonce, ["etc/ssh", "etc/it's here"])
    assert f"M=@@vcops-{nonce}" in script
    assert "set -- etc/ssh 'etc/it'\"'\"'s here'" in script
    assert "! -name 'ssh_host_*_key'" in script  # host private keys never leave the host
    with pytest.raises(ValueError):
        render_script("not-hex", ["etc/ssh"])


def test_roles_add_their_trees_once() -> None:
    paths = paths_for_roles(["kamailio", "sbc"])
    assert paths.count("etc/kamailio") == 1
    assert "etc/rtpengine" in paths and "etc/ssh" in paths
    assert "etc/asterisk" not in paths


def test_a_forged_marker_in_a_file_cannot_add_a_section() -> None:
    nonce = new_nonce()
    forged = "@@vcops-0000000000000000 snapshot files 0\nQUFB\n"
    text = forged + _output(nonce, {"nft": (0, b"table inet filter {}\n")})
    # A line that merely *contains* the right marker is not a marker line either.
    text = f"junk {marker(nonce)} snapshot files 0\nQUFB\n" + text
    sections = split_output(text, nonce)
    assert set(sections) == {"nft", "end"}
    assert sections["nft"].data == b"table inet filter {}\n"


def test_output_cut_short_has_no_end_section() -> None:
    nonce = new_nonce()
    text = _output(nonce, {"nft": (0, b"x")}).rsplit(marker(nonce) + " snapshot @end", 1)[0]
    assert "end" not in split_output(text, nonce)


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("etc/asterisk/pjsip.conf", "/etc/asterisk/pjsip.conf"),
        ("etc/ssh/sshd_config", "/etc/ssh/sshd_config"),
        ("etc/asterisk/../../root/.ssh/id_rsa", None),
        ("/etc/asterisk/pjsip.conf", None),
        ("etc/asterisk/.git/config", None),
        ("etc/shadow", None),
        ("etc/asterisk/new\nline.conf", None),
        ("etc/sshd/evil", None),
    ],
)
def test_only_safe_member_names_inside_the_roots_are_kept(name: str, expected: str | None) -> None:
    assert safe_member_path(name, ROOTS) == expected


def test_server_snapshot_masks_lists_and_keeps_state() -> None:
    pjsip = (FIXTURES / "snapshot/mask/asterisk/pjsip.conf.in").read_bytes()
    tar = _tar(
        [
            ("etc/asterisk/pjsip.conf", pjsip, 0o640),
            ("etc/asterisk/keys/tls.der", b"\x30\x82\x00canary\x00binary", 0o600),
            ("etc/asterisk/current.conf", "->pjsip.conf", 0o777),
            ("etc/../etc/passwd", b"root:x:0:0::/root:/bin/sh\n", 0o644),
        ]
    )
    nonce = new_nonce()
    text = _output(
        nonce,
        {
            "files": (0, tar),
            "tar_errors": (0, b""),
            "oversize": (0, b"a" * 64 + b"  etc/asterisk/huge.conf\0"),
            "nft": (
                0,
                b"table inet filter {\n\tset s { elements = { 192.0.2.1 expires 1m2s } }\n}\n",
            ),
            "sshd_t": (0, b"port 22\npasswordauthentication no\n"),
            "packages": (0, b"zlib1g\t1:1.2.13\tii \nasterisk\t1:20.1\tii \nold\t1.0\trc \n"),
            "units": (0, b"ssh.service enabled enabled\nasterisk.service enabled enabled\n"),
        },
    )
    snap = build_server_snapshot("ast-01", split_output(text, nonce), ROOTS, KEY)
    stored = snap.files["files/etc/asterisk/pjsip.conf"]
    assert "canary" not in stored and snap.masked == 4
    assert stored == (FIXTURES / "snapshot/mask/asterisk/pjsip.conf.masked").read_text()
    assert not any("canary" in t for t in snap.files.values())
    assert "files/etc/asterisk/keys/tls.der" not in snap.files  # binary: checksum only
    entries = parse_file_list(snap.files[FILE_LIST])
    assert entries["/etc/asterisk/pjsip.conf"].mode == "0640"
    assert entries["/etc/asterisk/pjsip.conf"].group == "asterisk"
    assert entries["/etc/asterisk/keys/tls.der"].type == "binary"
    assert entries["/etc/asterisk/current.conf"].detail == "-> pjsip.conf"
    assert entries["/etc/asterisk/huge.conf"].type == "oversize"
    assert "/etc/passwd" not in entries
    assert any("unsafe file name" in w for w in snap.warnings)
    assert snap.files["state/packages.txt"] == "asterisk\t1:20.1\nzlib1g\t1:1.2.13\n"
    assert snap.files["state/enabled-units.txt"] == (
        "asterisk.service enabled\nssh.service enabled\n"
    )
    assert "expires" not in snap.files["state/nftables.txt"]


def test_a_failed_state_command_is_recorded_not_hidden() -> None:
    nonce = new_nonce()
    text = _output(nonce, {"files": (0, b""), "nft": (127, b"sh: 1: nft: not found\n")})
    snap = build_server_snapshot("gen-01", split_output(text, nonce), ROOTS, KEY)
    assert snap.files["state/nftables.txt"].startswith(
        "# vcops: `nft -s list ruleset` failed (exit 127)"
    )
    assert "produced no output section" in snap.files["state/sshd-effective.txt"]


def test_file_list_round_trip() -> None:
    text = "0644\troot\troot\tfile\t/etc/a b.conf\n0777\troot\troot\tlink\t/etc/l\t-> a b.conf\n"
    assert render_file_list(parse_file_list(text).values()) == text


def test_device_snapshot_filters_noise_masks_and_drops_an_error_startup() -> None:
    running = (
        "Building configuration...\n\nCurrent configuration : 484 bytes\n"
        + (FIXTURES / "snapshot/mask/ios/fake_switches.in").read_text()
    )
    snap = build_device_snapshot(
        "sw-01", "ios", running, "No such command : show startup-config\n", "netmiko", KEY
    )
    assert set(snap.files) == {RUNNING}
    assert snap.files[RUNNING] == (FIXTURES / "snapshot/mask/ios/fake_switches.masked").read_text()
    again = build_device_snapshot("sw-01", "ios", running.replace("484", "485"), "", "napalm", KEY)
    assert again.files == snap.files  # the byte count is noise
    with_startup = build_device_snapshot("sw-01", "ios", running, running, "napalm", KEY)
    assert with_startup.files[STARTUP] == snap.files[RUNNING]


def test_the_script_runs_under_dash_and_its_output_splits(tmp_path: object) -> None:
    """The real script on this machine (read-only): every section arrives and decodes."""
    nonce = new_nonce()
    proc = subprocess.run(
        ["sh", "-s"],
        input=render_script(nonce, ["etc/ssh"]),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    sections = split_output(proc.stdout, nonce)
    assert {"files", "tar_errors", "oversize", "nft", "sshd_t", "packages", "units", "end"} <= set(
        sections
    )
    snap = build_server_snapshot("local", sections, ["etc/ssh"], KEY)
    listed = parse_file_list(snap.files[FILE_LIST])
    assert not any(p.startswith("/etc/ssh/ssh_host_") and p.endswith("_key") for p in listed)
    assert all(isinstance(s, Section) for s in sections.values())


def _run_task(task: SnapshotTask) -> dict[str, Section]:
    nonce = new_nonce()
    proc = subprocess.run(
        ["sh", "-s"],
        input=compose([task], nonce),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    return split_output(proc.stdout, nonce)


def test_an_incremental_collection_sends_only_what_changed_and_builds_the_full_snapshot(
    tmp_path: Path,
) -> None:
    """The real script under dash, twice over a tree: the second run, against the first
    one's checksums, tars only the files whose content, mode or owner changed, the new
    ones and the links; built on the first snapshot it equals a full collection."""
    etc = tmp_path / "etc"
    (etc / "app").mkdir(parents=True)
    (etc / "app" / "same.conf").write_text("port = 5060\n")
    (etc / "app" / "edited.conf").write_text("password = old-secret\n")
    (etc / "app" / "chmod.conf").write_text("x = 1\n")
    (etc / "app" / "gone.conf").write_text("bye\n")
    (etc / "app" / "link.conf").symlink_to("same.conf")
    (etc / "app" / "blob.bin").write_bytes(b"\x00\x01binary")
    roots = [str(etc).lstrip("/")]
    first = _run_task(SnapshotTask(roots=roots, checksums=True))
    assert {"sums", "meta"} <= set(first) and "delta" not in first
    before = build_server_snapshot("local", first, roots, KEY)

    (etc / "app" / "edited.conf").write_text("password = new-secret\n")
    (etc / "app" / "chmod.conf").chmod(0o600)
    (etc / "app" / "gone.conf").unlink()
    (etc / "app" / "new.conf").write_text("fresh = yes\n")
    second = _run_task(
        SnapshotTask(roots=roots, known_sums=first["sums"].data, known_meta=first["meta"].data)
    )
    assert "delta" in second
    with tarfile.open(fileobj=io.BytesIO(second["files"].data)) as tar:
        sent = sorted(m.name.rsplit("/", 1)[-1] for m in tar)
    assert sent == ["chmod.conf", "edited.conf", "link.conf", "new.conf"]

    after = apply_delta("local", before.files, second, roots, KEY)
    full = build_server_snapshot("local", _run_task(SnapshotTask(roots=roots)), roots, KEY)
    assert after.files == full.files
    assert after.masked == full.masked == 1
    listed = parse_file_list(after.files[FILE_LIST])
    assert f"/{roots[0]}/app/gone.conf" not in listed
    assert listed[f"/{roots[0]}/app/chmod.conf"].mode == "0600"
    assert listed[f"/{roots[0]}/app/blob.bin"].type == "binary"  # unchanged, kept
    assert "new-secret" not in after.files[f"files/{roots[0]}/app/edited.conf"]


def test_an_incremental_output_without_its_file_list_is_unreadable() -> None:
    sections = {"files": Section(rc=0, data=_tar([])), "delta": Section(rc=0, data=b"")}
    with pytest.raises(ValueError, match="list of current files"):
        apply_delta("h", {}, sections, ROOTS, KEY)


def test_enabled_units_keeps_what_state_enabled_listed() -> None:
    raw = (
        "ssh.service                 enabled  enabled\n"
        "getty@.service              static   -\n"
        "kamailio.service            enabled  enabled\n"
        "apt-daily.timer             disabled enabled\n"
        "fake.service                masked   enabled\n"
        "\n"
    )
    assert enabled_units(raw) == "kamailio.service enabled\nssh.service enabled\n"
    assert enabled_units("") == ""
