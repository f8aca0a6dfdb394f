"""The facts script's shell helpers (``gather.sh``) under the real dash, and the host-key
size read from a ``.pub`` line against the real ``ssh-keygen -l``.

fail2ban is not on the controller: a stub ``fail2ban-client`` stands in for it (the lab
tests run the real one on hardened hosts) and counts its runs, because one ``status``
per scan instead of three is the point of the helpers (it is a Python program).
"""

from __future__ import annotations

import shutil
import subprocess
from importlib import resources
from pathlib import Path

import pytest

from vcops.facts.access import parse_host_keys, parse_moduli, public_key_size
from vcops.facts.sections import parse_fail2ban

DASH = shutil.which("dash") or "/bin/sh"
HELPERS = resources.files("vcops.facts").joinpath("gather.sh").read_text()
# the function definitions only: everything before the first `section` line
HELPERS = HELPERS[: HELPERS.index("\nsection ")] + "\n"

STATUS = "Status\n|- Number of jail:\t3\n`- Jail list:\tkamailio, sshd,\trecidive\n"


def run_helpers(tmp_path: Path, body: str, stub: str | None) -> tuple[str, list[str]]:
    """Run the helpers then ``body`` in dash; with ``stub``, a fail2ban-client that
    prints ``stub`` for ``status``, answers ``True`` to each question of an interactive
    session, and logs its arguments and questions."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir(exist_ok=True)
    log = tmp_path / "calls"
    if stub is not None:
        client = bin_dir / "fail2ban-client"
        client.write_text(  # `-i`: a banner, then a prompt before each answer, as 1.0.2
            "#!/bin/sh\n"
            f'echo "$*" >>{log}\n'
            'if [ "$1" = status ]; then printf %s "$STUB"; exit 0; fi\n'
            'echo "Fail2Ban v1.0.2 reads log file"; echo\n'
            f'while IFS= read -r q; do echo "$q" >>{log}; printf "fail2ban> "; echo "True"; '
            'echo "(a second line)"; done\n'
            'printf "fail2ban> "\n'
        )
        client.chmod(0o755)
    done = subprocess.run(
        [DASH, "-c", HELPERS + body],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": f"{bin_dir}:/usr/bin:/bin", "STUB": stub or ""},
    )
    assert done.stderr == ""
    calls = log.read_text().splitlines() if log.exists() else []
    return done.stdout, calls


def test_fail2ban_status_runs_once_and_the_increments_reuse_its_jail_list(tmp_path: Path) -> None:
    out, calls = run_helpers(
        tmp_path, "fail2ban_status; echo rc=$?; echo ---; fail2ban_increment", STATUS
    )
    status, _, increments = out.partition("---\n")
    assert status.startswith(STATUS)
    assert "rc=0" in status
    assert parse_fail2ban(status) == ["kamailio", "sshd", "recidive"]
    assert increments.splitlines() == ["kamailio True", "sshd True", "recidive True"]
    assert calls == [  # two runs of the Python program in all: status, one session
        "status",
        "-i",
        "get kamailio bantime.increment",
        "get sshd bantime.increment",
        "get recidive bantime.increment",
    ]


def test_jail_names_are_never_globbed_or_run(tmp_path: Path) -> None:
    (tmp_path / "marker").write_text("")
    hostile = "Status\n`- Jail list:\t*, $(touch pwned), a;b\n"
    out, calls = run_helpers(tmp_path, "fail2ban_status; fail2ban_increment", hostile)
    assert parse_fail2ban(out) == ["*", "$(touch", "pwned)", "a;b"]
    assert "get * bantime.increment" in calls
    assert not (tmp_path / "pwned").exists()


def test_without_fail2ban_the_status_fails_and_no_increment_is_asked(tmp_path: Path) -> None:
    out, calls = run_helpers(
        tmp_path, "fail2ban_status; echo rc=$?; fail2ban_increment; echo end", None
    )
    assert out == "fail2ban-client: not found\nrc=127\nend\n"
    assert calls == []


def test_a_failing_status_is_its_exit_code_and_asks_no_increment(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    (bin_dir / "fail2ban-client").write_text(
        "#!/bin/sh\necho 'ERROR  Failed to access socket'\nexit 255\n"
    )
    (bin_dir / "fail2ban-client").chmod(0o755)
    out, _ = run_helpers(tmp_path, "fail2ban_status; echo rc=$?; fail2ban_increment", None)
    assert out == "ERROR  Failed to access socket\nrc=255\n"


def test_a_subshell_helper_exit_ends_only_its_section(tmp_path: Path) -> None:
    out, _ = run_helpers(tmp_path, "needrestart_list; echo rc=$?; echo still here", None)
    assert out == "needrestart is not installed\nrc=127\nstill here\n"


@pytest.mark.skipif(shutil.which("ssh-keygen") is None, reason="needs ssh-keygen")
@pytest.mark.parametrize(
    "kind",
    [
        ["-t", "ed25519"],
        ["-t", "rsa", "-b", "2048"],
        ["-t", "rsa", "-b", "3072"],
        ["-t", "rsa", "-b", "4096"],
        ["-t", "ecdsa", "-b", "256"],
        ["-t", "ecdsa", "-b", "384"],
        ["-t", "ecdsa", "-b", "521"],
    ],
    ids=lambda k: "-".join(k[1::2]),
)
def test_the_size_of_a_pub_line_is_what_ssh_keygen_reports(tmp_path: Path, kind: list[str]) -> None:
    key = tmp_path / "ssh_host_test_key"
    subprocess.run(
        ["ssh-keygen", "-q", "-N", "", "-C", "root@lab", "-f", str(key), *kind], check=True
    )
    listed = subprocess.run(
        ["ssh-keygen", "-l", "-f", str(key)], capture_output=True, text=True, check=True
    ).stdout
    bits, kind_name = int(listed.split()[0]), listed.rsplit("(", 1)[1].rstrip(")\n")
    line = (tmp_path / "ssh_host_test_key.pub").read_text().strip()
    assert public_key_size(line) == (kind_name, bits)
    # the section line the shell helper prints, and the one ssh-keygen prints: equal keys
    assert parse_host_keys(f"{key} pub {line}\n") == parse_host_keys(f"{key} {listed}")


def test_the_host_key_helper_reads_pub_files_and_falls_back_to_ssh_keygen(tmp_path: Path) -> None:
    etc = tmp_path / "ssh"
    etc.mkdir()
    for name in ("ed25519", "ecdsa"):
        subprocess.run(
            ["ssh-keygen", "-q", "-N", "", "-t", name, "-f", str(etc / f"ssh_host_{name}_key")],
            check=True,
        )
    (etc / "ssh_host_ecdsa_key.pub").unlink()  # sshd needs only the private key
    helper = HELPERS.replace("/etc/ssh/ssh_host_*_key", f"{etc}/ssh_host_*_key")
    done = subprocess.run(
        [DASH, "-c", helper + "host_key_lengths"], capture_output=True, text=True, check=True
    )
    keys = parse_host_keys(done.stdout)
    lines = {
        Path(p).name: rest for p, _, rest in (ln.partition(" ") for ln in done.stdout.splitlines())
    }
    assert lines["ssh_host_ed25519_key"].startswith("pub ssh-ed25519 ")
    assert not lines["ssh_host_ecdsa_key"].startswith("pub ")
    assert {(k.kind, k.bits) for k in keys.values()} == {("ED25519", 256), ("ECDSA", 256)}


@pytest.mark.parametrize(
    "line",
    [
        "ssh-ed25519",
        "ssh-ed25519 !!notbase64!!",
        "ssh-rsa AAAAC3NzaC1lZDI1NTE5AAAAIDsW",  # the blob says ed25519
        "ssh-rsa AAAAB3NzaC1yc2EAAAAD",  # truncated after the exponent's length
        "ssh-foo AAAAB3NzaC1yc2E=",
    ],
)
def test_a_pub_line_that_is_not_a_key_gives_no_size(line: str) -> None:
    assert public_key_size(line) is None
    assert parse_host_keys(f"/etc/ssh/k pub {line}\n")["/etc/ssh/k"].kind is None


def test_the_moduli_helper_counts_groups_by_size(tmp_path: Path) -> None:
    moduli = tmp_path / "moduli"
    group = "20230101000000 2 6 100 {size} 2 F00D"
    lines = ["# Time Type Tests Tries Size Generator Modulus", "short line"]
    lines += [group.format(size=2047)] * 3 + [group.format(size=3071)] * 2
    lines += [group.format(size=8191)]
    moduli.write_text("\n".join(lines) + "\n")
    helper = HELPERS.replace("/etc/ssh/moduli", str(moduli))
    done = subprocess.run(
        [DASH, "-c", helper + "moduli_sizes"], capture_output=True, text=True, check=True
    )
    assert parse_moduli(done.stdout) == {2048: 3, 3072: 2, 8192: 1}
    moduli.unlink()
    done = subprocess.run(
        [DASH, "-c", helper + "moduli_sizes"], capture_output=True, text=True, check=True
    )
    assert done.stdout == "missing\n"
