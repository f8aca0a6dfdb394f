"""The host-side helper, run locally on files in a temporary directory (the same code
the hosts run), and reading pyinfra's results."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
from pathlib import Path

import pytest

from vcops.enforce.files import ManagedFile, parse_state
from vcops.enforce.helper import install_spec, remote_command
from vcops.enforce.pyinfra_run import parse_results

REF = "@@vcops-secret:test@@"


def _run(command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", "-c", command], capture_output=True, text=True, timeout=60, check=False
    )


def _me() -> tuple[str, str]:
    import grp
    import pwd

    return pwd.getpwuid(os.getuid()).pw_name, grp.getgrgid(os.getgid()).gr_name


def test_install_resolves_secrets_on_the_host_and_state_masks_them(tmp_path: Path) -> None:
    owner, group = _me()
    secret_file = tmp_path / "secrets" / "test"
    target = tmp_path / "etc" / "app.conf"
    f = ManagedFile("x", str(target), f"password = {REF}\n", "0640", owner, group,
                    secrets={REF: str(secret_file)})  # fmt: skip
    done = _run(remote_command("install", install_spec(f)))
    assert done.returncode == 0, done.stderr
    secret = secret_file.read_text().strip()
    assert len(secret) == 32 and oct(secret_file.stat().st_mode & 0o777) == "0o600"
    assert target.read_text() == f"password = {secret}\n"
    assert secret not in done.stdout + done.stderr
    spec = {"paths": [str(target)], "secrets": {REF: str(secret_file)}}
    out = _run(remote_command("state", spec))
    assert secret not in out.stdout
    state = parse_state(json.loads(out.stdout))
    live = state.files[str(target)]
    assert live.content == f.content and live.mode == "0640" and live.owner == owner
    # a second install keeps the same secret
    assert _run(remote_command("install", install_spec(f))).returncode == 0
    assert secret_file.read_text().strip() == secret


def test_a_file_failing_validation_is_not_installed(tmp_path: Path) -> None:
    owner, group = _me()
    target = tmp_path / "app.conf"
    target.write_text("good\n")
    check = (
        "sh",
        "-c",
        'grep -q "^good" "$1" || { echo "Error: bad line" >&2; exit 1; }',
        "-",
        "%s",
    )
    bad = ManagedFile("x", str(target), "broken\n", "0644", owner, group, validate=check)
    done = _run(remote_command("install", install_spec(bad)))
    assert done.returncode == 3
    assert "failed validation, not installed" in done.stderr and "Error: bad line" in done.stderr
    assert target.read_text() == "good\n"
    assert [p.name for p in tmp_path.iterdir()] == ["app.conf"]  # no candidate left behind
    good = ManagedFile("x", str(target), "good again\n", "0644", owner, group, validate=check)
    assert _run(remote_command("install", install_spec(good))).returncode == 0
    assert target.read_text() == "good again\n"


def test_copy_dir_validation_sees_the_candidate_in_place(tmp_path: Path) -> None:
    owner, group = _me()
    conf = tmp_path / "conf"
    conf.mkdir()
    (conf / "main.cfg").write_text("include local.cfg\n")
    check = ("sh", "-c", 'grep -q ok "$1/local.cfg"', "-", "%d")
    f = ManagedFile("x", str(conf / "local.cfg"), "ok\n", "0644", owner, group,
                    validate=check, copy_dir=str(conf))  # fmt: skip
    assert _run(remote_command("install", install_spec(f))).returncode == 0
    f2 = ManagedFile("x", str(conf / "local.cfg"), "nope\n", "0644", owner, group,
                     validate=check, copy_dir=str(conf))  # fmt: skip
    assert _run(remote_command("install", install_spec(f2))).returncode == 3
    assert (conf / "local.cfg").read_text() == "ok\n"


def test_the_command_is_one_quoted_shell_line() -> None:
    command = remote_command("state", {"paths": ["/etc/it's here"]})
    words = shlex.split(command)
    assert words[:2] == ["python3", "-c"] and words[3] == "state" and len(words) == 5


STDERR = """--> Connecting to hosts...
    [kam-01] Connected
    [gen-01] Connected
--> Starting operation: ssh: /etc/ssh/sshd_config
    [kam-01] vcops: /etc/ssh/sshd_config: new config failed validation, not installed: `sshd` exit 255: bad
    [kam-01] Error: executed 0 commands
    [gen-01] Success
--> Starting operation: ssh: reload sshd
    [gen-01] Success
"""


def test_pyinfra_results_name_the_failing_operation() -> None:
    payload = {
        "results": {
            "operations": [
                {"name": "ssh: /etc/ssh/sshd_config", "success": ["gen-01"], "error": ["kam-01"],
                 "no_change": []},
                {"name": "ssh: reload sshd", "success": ["gen-01"], "error": ["kam-01"],
                 "no_change": []},
            ]
        }
    }  # fmt: skip
    kam, gen, down = parse_results(payload, ["kam-01", "gen-01", "down-01"], STDERR)
    assert kam.failed == ["ssh: /etc/ssh/sshd_config"] and any(
        "validation" in e for e in kam.errors
    )
    assert gen.changed == ["ssh: /etc/ssh/sshd_config", "ssh: reload sshd"] and not gen.failed
    assert not down.reached


@pytest.mark.parametrize("payload", [None])
def test_pyinfra_results_without_json_come_from_the_log(payload: None) -> None:
    kam, gen = parse_results(payload, ["kam-01", "gen-01"], STDERR)
    assert kam.failed == ["ssh: /etc/ssh/sshd_config"]
    assert gen.changed == ["ssh: /etc/ssh/sshd_config", "ssh: reload sshd"]


def test_directories_the_install_creates_are_0755_whatever_the_login_umask(
    tmp_path: Path,
) -> None:
    """Under sudo's ``Defaults umask=0027`` (VC-SUDO-001) a created parent directory came
    out 0750 with pyinfra while Ansible's role asks for 0755: the engines disagreed on
    every run (found by test_sudo_fleet_lab on /etc/aide)."""
    owner, group = _me()
    target = tmp_path / "etc" / "aide" / "vcops.conf"
    f = ManagedFile("integrity", str(target), "x\n", "0600", owner, group)
    done = _run("umask 0027; " + remote_command("install", install_spec(f)))
    assert done.returncode == 0, done.stderr
    for directory in (tmp_path / "etc", tmp_path / "etc" / "aide"):
        assert oct(directory.stat().st_mode & 0o777) == "0o755", directory
    assert oct(target.stat().st_mode & 0o777) == "0o600"
