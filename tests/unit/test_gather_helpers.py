"""The facts script's shell helpers (``gather.sh``) under the real dash, and the host-key
size read from a ``.pub`` line against the real ``ssh-keygen -l``.

fail2ban is not on the controller: a stub ``fail2ban-client`` stands in for it (the lab
tests run the real one on hardened hosts) and counts its runs, because fewer runs are the
point of the helpers (it is a Python program): one run of fail2ban's own client classes
over its socket when that is sure to ask the same server, else one ``status`` and one
interactive session.
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
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


# --- fail2ban over its socket: one run of fail2ban's own client classes -------------


class FastHost:
    """A fail2ban whose ``fail2ban-client`` names a stand-in ``python3`` (``shebang``).
    Run with ``-I -c CODE SOCK OUT`` (the fast path) it logs ``fast``, prints ``STUB``
    and writes ``INCS`` to OUT, exiting ``FAST_RC``; run as fail2ban-client's
    interpreter it runs that file with sh, which logs ``client ARGS`` and answers like
    the stub above. ``F2B_SOCK`` is a real socket file; ``F2B_ETC`` a config tree."""

    def __init__(self, tmp_path: Path, sockdir: Path, shebang: str = "") -> None:
        self.tmp, self.bin, self.log = tmp_path, tmp_path / "bin", tmp_path / "calls"
        self.bin.mkdir()
        self.etc = tmp_path / "etc/fail2ban"
        (self.etc / "fail2ban.d").mkdir(parents=True)
        self.sock = sockdir / "f2b.sock"
        with socket.socket(socket.AF_UNIX) as s:
            s.bind(str(self.sock))  # the file stays after the close: `[ -S ]` is true
        (self.etc / "fail2ban.conf").write_text(f"[Definition]\nsocket = {self.sock}\n")
        python = self.bin / "python3"
        python.write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = -I ]; then echo fast >>{self.log}; printf "%s\\n" "$INCS" >"$5"; '
            'printf %s "$STUB"; exit "${FAST_RC:-0}"; fi\n'
            'exec /bin/sh "$@"\n'
        )
        python.chmod(0o755)
        client = self.bin / "fail2ban-client"
        client.write_text(
            f"#!{shebang or python}\n"
            f'echo "client $*" >>{self.log}\n'
            'if [ "$1" = status ]; then printf %s "$STUB"; exit 0; fi\n'
            'while IFS= read -r q; do printf "fail2ban> "; echo "False"; done\n'
            'printf "fail2ban> "\n'
        )
        client.chmod(0o755)

    def run(self, fast_rc: int = 0) -> tuple[str, str, list[str]]:
        work = self.tmp / "t"
        work.mkdir(exist_ok=True)
        done = subprocess.run(
            [
                DASH,
                "-c",
                HELPERS + f"F2B_SOCK={self.sock}; F2B_ETC={self.etc}; t={work}\n"
                "fail2ban_status; echo rc=$?; echo ---; fail2ban_increment",
            ],
            capture_output=True,
            text=True,
            check=False,
            env={
                "PATH": f"{self.bin}:/usr/bin:/bin",
                "STUB": STATUS,
                "INCS": "kamailio True\nsshd True\nrecidive True",
                "FAST_RC": str(fast_rc),
            },
        )
        assert done.stderr == ""
        status, _, increments = done.stdout.partition("---\n")
        return status, increments, self.log.read_text().splitlines()


@pytest.fixture
def sockdir() -> Iterator[Path]:
    """A short directory for a socket file (a socket path is at most 107 bytes)."""
    path = Path(tempfile.mkdtemp(prefix="f2b-"))
    yield path
    shutil.rmtree(path)


def test_fail2ban_is_asked_over_its_socket_in_one_run(tmp_path: Path, sockdir: Path) -> None:
    status, increments, calls = FastHost(tmp_path, sockdir).run()
    assert status == STATUS + "jail kamailio\njail sshd\njail recidive\nvia socket\nrc=0\n"
    assert parse_fail2ban(status) == ["kamailio", "sshd", "recidive"]
    assert increments.splitlines() == ["kamailio True", "sshd True", "recidive True"]
    assert calls == ["fast"]  # fail2ban-client never ran


@pytest.mark.parametrize(
    ("case", "ran_fast"),
    [
        ("another socket in fail2ban.d", False),
        ("another socket in fail2ban.local", False),
        ("no socket file", False),
        ("the fast run fails", True),
        ("fail2ban-client runs through env", False),
    ],
)
def test_fail2ban_client_answers_whenever_the_socket_run_is_not_sure(
    tmp_path: Path, sockdir: Path, case: str, ran_fast: bool
) -> None:
    host = FastHost(tmp_path, sockdir, "/usr/bin/env python3" if case.endswith("env") else "")
    if case == "another socket in fail2ban.d":
        (host.etc / "fail2ban.d/site.local").write_text("[Definition]\nsocket = /run/x.sock\n")
    if case == "another socket in fail2ban.local":
        (host.etc / "fail2ban.local").write_text("[Definition]\n  socket=/run/x.sock\n")
    if case == "no socket file":
        host.sock.unlink()
    status, increments, calls = host.run(fast_rc=1 if case == "the fast run fails" else 0)
    assert status == STATUS + "jail kamailio\njail sshd\njail recidive\nvia fail2ban-client\nrc=0\n"
    # fail2ban-client's answers (the stand-in says False), never the fast run's file
    assert increments.splitlines() == ["kamailio False", "sshd False", "recidive False"]
    assert calls == ["fast"] * ran_fast + ["client status", "client -i"]


FAKE_CLIENT = """
import json
LOG = []
class CSocket:
    def __init__(self, path, timeout=-1):
        assert timeout == 5
        self.path, self.answers = path, json.load(open(path))
    def send(self, cmd):
        with open(self.path + ".log", "a") as log:
            log.write(" ".join(cmd) + "\\n")
        return self.answers[" ".join(cmd)]
    def close(self):
        with open(self.path + ".log", "a") as log:
            log.write("close\\n")
"""
FAKE_BEAUTIFIER = """
class Beautifier:
    def __init__(self, cmd):
        self.cmd = cmd
    def beautify(self, answer):
        if self.cmd == ["status"]:
            return "Status\\n`- Jail list:\\t" + dict(answer)["Jail list"]
        return str(answer) + "\\n(a second line)"
"""


@pytest.mark.parametrize("status_code", [0, 1])
def test_the_socket_program_asks_status_then_each_jail(tmp_path: Path, status_code: int) -> None:
    """The real program text from gather.sh, under this Python, against stand-ins for
    fail2ban's CSocket and Beautifier (the lab test runs it against the real fail2ban)."""
    code = subprocess.run(
        [DASH, "-c", HELPERS + 'printf %s "$F2B_PY"'], capture_output=True, text=True, check=True
    ).stdout
    client = tmp_path / "fake/fail2ban/client"
    client.mkdir(parents=True)
    for init in (client.parent / "__init__.py", client / "__init__.py"):
        init.write_text("")
    (client / "csocket.py").write_text(FAKE_CLIENT)
    (client / "beautifier.py").write_text(FAKE_BEAUTIFIER)
    answers = tmp_path / "answers.json"
    answers.write_text(
        json.dumps(
            {
                "status": [status_code, [["Number of jail", 3], ["Jail list", "a1, b2,\tc3"]]],
                "get a1 bantime.increment": [0, True],
                "get b2 bantime.increment": [1, "NOK: no such option"],
                "get c3 bantime.increment": [0, False],
            }
        )
    )
    out = tmp_path / "increments"
    done = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(client.parent.parent)!r})\n" + code,
            str(answers),
            str(out),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    asked = (tmp_path / "answers.json.log").read_text().splitlines()
    if status_code:
        assert (done.returncode, done.stdout, asked) == (3, "", ["status"])
        assert not out.exists()
        return
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Status\n`- Jail list:\ta1, b2,\tc3\n"
    # the first line of each answer; a refused question is an empty value
    assert out.read_text() == "a1 True\nb2 \nc3 False\n"
    assert asked == [
        "status",
        "get a1 bantime.increment",
        "get b2 bantime.increment",
        "get c3 bantime.increment",
        "close",
    ]
