"""The host-task layer (framing, composition, parsing) and privilege (settings.ssh,
the sudo wrapper), run for real under this machine's /bin/sh where a shell is needed."""

from __future__ import annotations

import base64
import shlex
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from vcops.connectors.hosttask import ScriptTask, compose, split, tar_members
from vcops.connectors.ssh import become_command, become_error, become_input, go_line
from vcops.errors import InventoryError
from vcops.inventory import load_inventory, render_export
from vcops.inventory.models import SshAccess

NONCE = "0123456789abcdef"
SUDO = SshAccess(user="vcops", port=22, become="sudo")


def run_here(script: str) -> str:
    proc = subprocess.run(
        ["sh", "-s"], input=script, capture_output=True, text=True, timeout=60, check=False
    )
    assert proc.returncode == 0, proc.stderr
    return proc.stdout


# -- framing and composition ---------------------------------------------------------


def test_composed_tasks_each_get_their_records_and_exit_status() -> None:
    first = ScriptTask(name="one", script="say hello world\nsection who echo me\nexit 3\nsay never")
    second = ScriptTask(
        name="two", script='output ls ls -d /\nsay "$(pwd)"\ntarfiles t /etc/hostname /nonexistent'
    )
    framed = split(run_here(compose([first, second], NONCE)), NONCE)
    assert framed.started and framed.ended
    one, two = framed.task("one"), framed.task("two")
    assert one.rc == 3 and [r.text for r in one.all("say")] == [
        "hello world"
    ]  # exit ends only its task
    assert one.ok_text("who") == "me\n"
    assert two.rc == 0 and two.ok_text("ls") == "/\n" and two.get("ls-stderr") is not None
    assert [r.text for r in two.all("say")] == ["/"]  # every task runs from /
    record = two.get("t")
    assert record is not None and set(tar_members(record.data)) <= {"/etc/hostname"}


def test_sections_travel_as_one_batch_per_task_and_come_back_one_record_each() -> None:
    script = (
        "section first echo one\n"
        "section failing sh -c 'echo out; echo err >&2; exit 7'\n"
        "say between\n"
        # a section's output that looks like the batch index or a record stays data
        "section tricky printf '1 first 0\\n@@vcops-%s two say 0\\n' " + NONCE + "\n"
        "section first echo again\n"
    )
    text = run_here(compose([ScriptTask(name="one", script=script)], NONCE))
    assert text.count(f"@@vcops-{NONCE} one @batch 0") == 1  # one base64 run, not four
    one = split(text, NONCE).task("one")
    assert [(r.name, r.rc) for r in one.records] == [
        ("say", 0), ("first", 0), ("failing", 7), ("tricky", 0), ("first", 0),
    ]  # fmt: skip
    assert one.ok_text("first") == "again\n" and [r.text for r in one.all("first")] == [
        "one\n",
        "again\n",
    ]
    assert one.get("failing") is not None and one.get("failing").text == "out\nerr\n"  # type: ignore[union-attr]
    assert one.ok_text("tricky") == f"1 first 0\n@@vcops-{NONCE} two say 0\n"
    assert [r.text for r in one.all("say")] == ["between"]
    assert split(text, NONCE).task("two").records == []


@pytest.mark.parametrize(
    "index",
    [
        b"1 good 0\n2 missing 0\nx bad-index 0\n3 BAD-NAME 0\n4 rc x\n5 @batch 0\n6 a 1234567\nnoise\n",
        b"\xff\xfe garbage\n1 good 0\n",
    ],
)
def test_a_batch_index_that_does_not_parse_loses_only_its_own_lines(index: bytes) -> None:
    import io
    import tarfile

    from vcops.connectors.hosttask import unbatch

    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        for name, data in [(".idx", index), ("1", b"kept"), *((str(i), b"x") for i in range(3, 7))]:
            info = tarfile.TarInfo(f"./{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    assert [(r.name, r.text) for r in unbatch(buf.getvalue())] == [("good", "kept")]
    assert unbatch(b"not a tar") == [] and unbatch(b"") == []


def test_a_task_that_never_ends_is_incomplete() -> None:
    text = run_here(compose([ScriptTask(name="one", script="say a")], NONCE))
    cut = text.split(f"@@vcops-{NONCE} one @end")[0]
    framed = split(cut, NONCE)
    assert framed.started and not framed.ended
    assert not framed.task("one").complete and framed.task("one").all("say")


def test_nothing_without_this_runs_nonce_can_forge_a_record() -> None:
    payload = base64.b64encode(b"install 0 forged").decode()
    # the host prints raw text: another nonce, a marker inside a line, a bad name
    script = (
        f"printf '@@vcops-ffffffffffffffff one say 0\\n{payload}\\n'\n"
        f"printf 'x @@vcops-{NONCE} one say 0\\n{payload}\\n'\n"
        "say real\n"
    )
    framed = split(run_here(compose([ScriptTask(name="one", script=script)], NONCE)), NONCE)
    assert [r.text for r in framed.task("one").all("say")] == ["real"]
    # a file holding the real marker travels as base64 inside a record: it stays data
    inner = f"@@vcops-{NONCE} one say 0\n{payload}\n"
    script = f'printf \'%s\' {shlex.quote(inner)} >"$t/f"\nemit file 0 "$t/f"\n'
    framed = split(run_here(compose([ScriptTask(name="one", script=script)], NONCE)), NONCE)
    assert framed.task("one").all("say") == [] and framed.task("one").ok_text("file") == inner


@pytest.mark.parametrize("name", ["vcops", "Bad", "two words", "x;rm", ""])
def test_bad_task_names_and_nonces_are_refused(name: str) -> None:
    with pytest.raises(ValueError):
        compose([ScriptTask(name=name, script="true")], NONCE)
    with pytest.raises(ValueError):
        compose([ScriptTask(name="ok", script="true")], "not-a-nonce; reboot")


def test_repeated_task_names_are_refused() -> None:
    with pytest.raises(ValueError, match="repeat"):
        compose([ScriptTask(name="a", script="true"), ScriptTask(name="a", script="true")], NONCE)


# -- the sudo wrapper ---------------------------------------------------------------


def test_root_runs_the_shell_directly_and_sudo_never_prompts() -> None:
    assert become_command(None, NONCE) == ("/bin/sh -s", False)
    assert become_command(SshAccess(user="root", port=22, become="none"), NONCE)[0] == "/bin/sh -s"
    command, with_password = become_command(SUDO, NONCE)
    assert shlex.split(command) == ["sudo", "-n", "-u", "root", "--", "/bin/sh", "-s"]
    assert not with_password
    other = SshAccess(user="vcops", port=22, become="sudo", become_user="asterisk")
    assert shlex.split(become_command(other, NONCE)[0])[3] == "asterisk"


def test_a_password_from_the_environment_is_never_run_as_a_command(tmp_path: Path) -> None:
    access = SUDO.model_copy(update={"become_password_env": "VCOPS_SUDO_PW"})
    command, with_password = become_command(access, NONCE)
    argv = shlex.split(command)
    assert with_password and argv[:5] == ["sudo", "-S", "-p", "", "-u"]
    canary = tmp_path / "pwned"
    password = f"x'; touch {canary}; echo '$(touch {canary})"
    stdin, why = become_input(access, NONCE, "echo script-ran\n", {"VCOPS_SUDO_PW": password})
    assert stdin is not None and why == "" and stdin.startswith(password + "\n" + go_line(NONCE))
    wrapper = argv[argv.index("-c") + 1]  # what runs after sudo, as root
    # sudo did NOT read the password (NOPASSWD rule): the wrapper skips it
    proc = subprocess.run(
        ["sh", "-c", wrapper], input=stdin, capture_output=True, text=True, check=False
    )
    assert proc.stdout == "script-ran\n" and password not in proc.stdout + proc.stderr
    # sudo read the password line: the wrapper starts at the go-line
    rest = stdin.split("\n", 1)[1]
    proc = subprocess.run(
        ["sh", "-c", wrapper], input=rest, capture_output=True, text=True, check=False
    )
    assert proc.stdout == "script-ran\n"
    assert not canary.exists()


def test_a_missing_password_variable_is_named_never_a_hang() -> None:
    access = SUDO.model_copy(update={"become_password_env": "VCOPS_SUDO_PW"})
    stdin, why = become_input(access, NONCE, "true\n", {})
    assert stdin is None and "VCOPS_SUDO_PW" in why and "NOPASSWD" in why


@pytest.mark.parametrize(
    ("stderr", "exit_status", "expect"),
    [
        ("sudo: a password is required\n", 1, "refused (sudo: a password is required)"),
        ("vcops is not in the sudoers file.\n", 1, "refused"),
        ("sh: 1: sudo: not found\n", 127, "sudo is not installed"),
        ("Sorry, try again.\nsudo: 3 incorrect password attempts\n", 1, "refused the password"),
    ],
)
def test_a_refused_sudo_names_the_host_and_the_fix(
    stderr: str, exit_status: int, expect: str
) -> None:
    access = SUDO.model_copy(update={"become_password_env": "PW"})
    message = become_error("kam-01", access, stderr, exit_status)
    assert message.startswith("kam-01: ") and expect in message
    assert "vcops ALL=(root) NOPASSWD: ALL" in message and "/etc/sudoers.d/vcops" in message
    assert "become_password_env" in message


# -- settings.ssh ----------------------------------------------------------------------

SSH_INVENTORY = """
settings:
  ssh: {user: vcops, key_file: id, known_hosts_file: kh}
sites: [{name: s1}]
groups:
  - {name: legacy, ssh: {user: root}}
  - {name: pw, ssh: {become_password_env: SUDO_PW}}
servers:
  - {name: a, address: 192.0.2.1, roles: [generic], site: s1, environment: lab}
  - {name: b, address: 192.0.2.2, roles: [generic], site: s1, environment: lab, groups: [legacy]}
  - {name: c, address: 192.0.2.3, roles: [generic], site: s1, environment: lab, groups: [pw],
     ssh: {become_user: asterisk, port: 2222}}
  - {name: d, address: 192.0.2.4, roles: [generic], site: s1, environment: lab, groups: [legacy],
     ssh: {become: sudo}}
  - {name: e, address: 192.0.2.5, roles: [generic], site: s1, environment: lab, user: ops,
     ssh: {become: none}}
"""


def test_ssh_settings_resolve_per_group_and_host(make_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(make_inventory(base=False, files={"i.yml": SSH_INVENTORY}))
    access = {s.name: inv.ssh_access(s) for s in inv.servers}
    assert (access["a"].user, access["a"].become, access["a"].become_user) == (
        "vcops",
        "sudo",
        "root",
    )
    assert (access["b"].user, access["b"].become) == ("root", "none")  # root: no sudo by default
    assert access["c"].become_password_env == "SUDO_PW" and access["c"].become_user == "asterisk"
    assert access["c"].port == 2222 and access["c"].sudo
    assert (access["d"].user, access["d"].become) == ("root", "sudo")  # explicit wins
    assert (access["e"].user, access["e"].become) == ("ops", "none")


def test_engines_get_the_same_privilege(make_inventory: Callable[..., Path]) -> None:
    inv = load_inventory(make_inventory(base=False, files={"i.yml": SSH_INVENTORY}))
    hosts = yaml.safe_load(render_export(inv, "ansible"))["all"]["children"]["servers"]["hosts"]
    assert hosts["a"]["ansible_become"] is True and hosts["a"]["ansible_become_user"] == "root"
    assert hosts["b"]["ansible_become"] is False and "ansible_become_user" not in hosts["b"]
    assert hosts["c"]["ansible_become_password"] == "{{ lookup('ansible.builtin.env', 'SUDO_PW') }}"
    text = render_export(inv, "pyinfra")
    namespace: dict[str, object] = {}
    exec(compile(text, "inventory.py", "exec"), namespace)  # the module pyinfra imports
    servers = dict(namespace["servers"])  # type: ignore[call-overload]
    assert servers["a"]["_sudo"] is True and servers["a"]["_sudo_user"] == "root"
    assert "_sudo" not in servers["b"]
    assert "_os.environ.get('SUDO_PW')" in text and servers["c"]["_sudo_password"] is None


@pytest.mark.parametrize(
    ("ssh", "message"),
    [
        ("{become: maybe}", "become"),
        ("{become_user: 'root; reboot'}", "invalid user name"),
        ("{user: '$(id)'}", "invalid user name"),
        ("{become_password_env: 'A B'}", "invalid environment variable"),
        ("{become_password: hunter2}", "become_password"),
    ],
)
def test_bad_ssh_settings_are_inventory_errors(
    make_inventory: Callable[..., Path], ssh: str, message: str
) -> None:
    text = SSH_INVENTORY.replace("{user: vcops, key_file: id, known_hosts_file: kh}", ssh)
    with pytest.raises(InventoryError) as err:
        load_inventory(make_inventory(base=False, files={"i.yml": text}))
    assert message in str(err.value)
    assert "hunter2" not in str(err.value)


MARK = f"@@vcops-{NONCE} "
PIECES = st.sampled_from(
    [
        MARK, "vcops @start 0\n", "vcops @end 0\n", "t say 0\n", "t @end 1\n", "t x 99999999\n",
        "t x -1\n", "T X 0\n", "aGVsbG8=\n", "!!!\n", "\n", " ", "@@vcops-", "\r\n", "\x00",
    ]
)  # fmt: skip


@settings(max_examples=300, deadline=None, derandomize=True)
@given(st.lists(st.one_of(PIECES, st.text(max_size=12)), max_size=80).map("".join))
def test_any_output_splits_without_raising(text: str) -> None:
    framed = split(text, NONCE)
    for out in framed.tasks.values():
        assert all(abs(r.rc) < 10**6 for r in out.records)
        assert out.task != "vcops"


def test_pyinfra_itself_reads_sudo_and_the_password_reference(
    make_inventory: Callable[..., Path], tmp_path: Path
) -> None:
    """pyinfra's own inventory loader (``debug-inventory`` connects nowhere) takes the
    exported ``_sudo`` host data and reads the sudo password from the environment when
    it runs; the file itself holds only the variable's name."""
    import json
    import re
    import sys

    inv = load_inventory(make_inventory(base=False, files={"i.yml": SSH_INVENTORY}))
    module = tmp_path / "inventory.py"
    module.write_text(render_export(inv, "pyinfra"))
    assert "pw-canary" not in module.read_text()
    pyinfra = Path(sys.executable).parent / "pyinfra"
    proc = subprocess.run(
        [str(pyinfra), str(module), "debug-inventory"],
        capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path,
        env={"PATH": "/usr/bin:/bin", "SUDO_PW": "pw-canary", "HOME": str(tmp_path)},
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = re.sub(r"\x1b\[[0-9;]*m", "", proc.stdout + proc.stderr)  # colours, either stream
    hosts = {
        m.group(1): json.loads(m.group(2))
        for m in re.finditer(r"^\[(\S+)\] *\n.*?--> Data:\n(\{.*?\n\})$", text, re.M | re.S)
    }
    assert set(hosts) == {"a", "b", "c", "d", "e"}, text[-2000:]
    assert hosts["a"]["_sudo"] is True and hosts["a"]["_sudo_user"] == "root"
    assert "_sudo" not in hosts["b"]
    assert hosts["c"]["_sudo_password"] == "pw-canary" and hosts["c"]["_sudo_user"] == "asterisk"
