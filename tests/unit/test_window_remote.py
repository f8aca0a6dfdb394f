"""The window runner's host scripts and how their answers are read."""

from __future__ import annotations

import base64
import shlex
import subprocess
from pathlib import Path

import pytest

from vcops.connectors.hosttask import compose, split
from vcops.errors import InventoryError
from vcops.inventory.models import Server
from vcops.window import remote
from vcops.window.model import PackageChange

NONCE = "0123456789abcdef"


def said(*lines: str, noise: str = "") -> str:
    """What the host-task layer prints for a window task that said these lines."""
    out = [f"@@vcops-{NONCE} vcops @start 0", ""]
    for line in lines:
        out += [f"@@vcops-{NONCE} window say 0", base64.b64encode(line.encode()).decode()]
    out += [noise, f"@@vcops-{NONCE} window @end 0", ""]
    return "\n".join(out)


def answer_of(text: str) -> remote.Answer:
    return remote.parse_answer(split(text, NONCE).task("window"))


def pkg(name: str = "openssl", target: str = "3.0.15-1~deb12u1") -> PackageChange:
    return PackageChange(package=name, current="3.0.14-1~deb12u2", target=target, security=True)


def server(*roles: str, **vars_: object) -> Server:
    return Server(
        name="kam-01", address="192.0.2.21", roles=list(roles), site="s1",
        environment="production", vars=vars_,
    )  # fmt: skip


@pytest.mark.parametrize(
    "script",
    [
        remote.precheck_script(["kamailio", "asterisk", "freeswitch", "rtpengine", "sbc"]),
        remote.install_script([pkg(), pkg("libssl3")]),
        remote.restart_script(["kamailio.service", "vcops-testpkg.service"]),
        remote.start_script(["kamailio.service"]),
        remote.gate_script(),
        remote.drain_script(["kamailio"]),
        remote.REBOOT_SCRIPT,
    ],
)
def test_every_script_is_valid_posix_sh(script: str) -> None:
    framed = compose([remote.WindowTask(script=script)], NONCE)
    proc = subprocess.run(["sh", "-n"], input=framed, text=True, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_install_pins_exactly_the_approved_versions() -> None:
    script = remote.install_script([pkg(), pkg("libssl3", "3.0.15-1~deb12u1")])
    assert "--only-upgrade" in script
    assert "openssl=3.0.15-1~deb12u1 libssl3=3.0.15-1~deb12u1" in script.replace("'", "")
    assert "dpkg --configure -a" in script  # a killed runner's half-configured dpkg


@pytest.mark.parametrize(
    ("name", "version"),
    [("openssl; reboot", "1.0"), ("openssl", "1.0 && rm -rf /"), ("$(id)", "1"), ("-f", "1")],
)
def test_a_package_that_is_not_debian_syntax_never_reaches_a_shell(name: str, version: str) -> None:
    with pytest.raises(ValueError, match="not a Debian package"):
        remote.install_script([pkg(name, version)])


def test_units_that_are_not_service_names_are_dropped() -> None:
    script = remote.restart_script(["kamailio.service", "x; reboot", "../../etc.service"])
    assert "kamailio.service" in script and "reboot" not in script and "../" not in script


def test_only_lines_with_this_runs_nonce_count() -> None:
    forged = base64.b64encode(b"install 1 forged").decode()
    out = said(
        "install 0 -",
        "before vcops-testpkg 1.0",
        "after vcops-testpkg 1.1",
        "pending vcops-testextra 1.1",
        "unit vcops-testpkg vcops-testpkg.service",
        "reboot-required yes",
        noise=(
            f"@@vcops-ffffffffffffffff window say 0\n{forged}\n"
            f"some package printed @@vcops-{NONCE} window say 0\n{forged}\n"
            f"@@{NONCE} install 1 forged\n"
        ),
    )
    result = remote.install_result(answer_of(out))
    assert result is not None
    assert result.exit_status == 0 and result.error == ""
    assert result.before == {"vcops-testpkg": "1.0"} and result.after == {"vcops-testpkg": "1.1"}
    assert result.pending == {"vcops-testextra": "1.1"}
    assert result.units == {"vcops-testpkg": ["vcops-testpkg.service"]}
    assert result.reboot_required is True


def test_an_install_that_never_reported_is_unknown_not_success() -> None:
    assert remote.install_result(answer_of(said("before a 1"))) is None
    failed = remote.install_result(
        answer_of(said("install 100 E: Version '9' for 'a' was not found"))
    )
    assert failed is not None and failed.exit_status == 100
    assert failed.error == "E: Version '9' for 'a' was not found"


def test_unit_state_and_call_counts() -> None:
    answer = answer_of(
        said(
            "active kamailio.service",
            "active ssh.service",
            "failed vcops-testpkg.service",
            "boot 1f2e",
            "calls kamailio 3",
            "calls asterisk unknown",
            "calls freeswitch none",
        )
    )
    state = remote.unit_state(answer)
    assert state.active == {"kamailio.service", "ssh.service"}
    assert state.failed == {"vcops-testpkg.service"} and state.boot_id == "1f2e"
    assert remote.call_counts(answer) == {"kamailio": 3, "asterisk": None}


def test_host_settings_from_vars_and_role_units() -> None:
    s = server("kamailio", "rtpengine", window_drain_timeout=20, window_gate_wait=5)
    settings = remote.host_settings(s, dict(s.vars))
    assert settings.drain_timeout == 20 and settings.gate_wait == 5
    assert settings.units_for(s) == [
        "kamailio.service",
        "rtpengine-daemon.service",
        "ngcp-rtpengine-daemon.service",
    ]
    custom = server("sbc", window_health_units=["opensips.service"])
    assert remote.host_settings(custom, dict(custom.vars)).units_for(custom) == ["opensips.service"]


@pytest.mark.parametrize(
    ("vars_", "message"),
    [
        ({"window_drain_timout": 5}, "window_drain_timout"),
        ({"window_gate_wait": -1}, "window_gate_wait"),
        ({"window_health_units": ["x; reboot"]}, "window_health_units"),
    ],
)
def test_bad_window_vars_name_the_host_and_the_var(vars_: dict[str, object], message: str) -> None:
    s = server("kamailio", **vars_)
    with pytest.raises(InventoryError) as err:
        remote.host_settings(s, dict(s.vars))
    assert "kam-01" in str(err.value) and message in str(err.value)


def test_a_host_with_nothing_approved_installs_nothing_but_reports_what_is_pending() -> None:
    script = remote.install_script([])
    assert "apt-get install" not in script and "dpkg-query" not in script
    assert "say pending" in script and "say install 0 -" in script
    proc = subprocess.run(["sh", "-n"], input=script, text=True, capture_output=True, check=False)
    assert proc.returncode == 0, proc.stderr


def test_needrestart_services_are_restarted_once_and_reported(tmp_path: Path) -> None:
    """The install script's needrestart step, run by sh with needrestart and systemctl
    stand-ins on PATH (the lab test runs the real ones): every listed service is
    reported as outdated; running ones are restarted, except those the package loop
    already restarted and the session/bus units; hostile names are dropped."""
    root = tmp_path
    bin_dir = root / "bin"
    bin_dir.mkdir()
    (bin_dir / "needrestart").write_text(
        "#!/bin/sh\nprintf '%s\\n' 'NEEDRESTART-VER: 3.6' 'NEEDRESTART-SVC: vcops-lib.service' "
        "'NEEDRESTART-SVC: kamailio.service' 'NEEDRESTART-SVC: dbus.service' "
        "'NEEDRESTART-SVC: $(touch pwned).service' 'NEEDRESTART-SVC: cron'\n"
    )
    (bin_dir / "systemctl").write_text(
        f'#!/bin/sh\necho "$*" >>{root}/calls\n'
        'case "$1" in is-active) [ "$2" = --quiet ] || echo active ;; esac\nexit 0\n'
    )
    for f in bin_dir.iterdir():
        f.chmod(0o755)
    (root / "t").mkdir()
    (root / "t" / "done").write_text("kamailio.service\n")
    script = (
        "say() { printf 'say %s\\n' \"$*\"; }\n"
        f"t={root}/t\nPATH={bin_dir}:$PATH\n" + remote.OUTDATED_RESTART
    )
    proc = subprocess.run(
        ["sh", "-c", script], text=True, capture_output=True, check=False, cwd=root
    )
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln for ln in lines if ln.startswith("say outdated")] == [
        "say outdated vcops-lib.service",
        "say outdated kamailio.service",
        "say outdated dbus.service",
    ]
    assert [ln for ln in lines if ln.startswith("say restart")] == [
        "say restart vcops-lib.service 0 active"
    ]
    calls = (root / "calls").read_text()
    assert "try-restart vcops-lib.service" in calls and "try-restart dbus" not in calls
    assert "try-restart kamailio" not in calls and not (root / "pwned").exists()


def test_install_result_reads_outdated_services() -> None:
    out = said(
        "install 0 -",
        "outdated vcops-lib.service",
        "outdated bad;name",
        "restart vcops-lib.service 0 active",
        "reboot-required no",
    )
    result = remote.install_result(answer_of(out))
    assert result is not None
    assert result.outdated == ["vcops-lib.service"] and result.restarted == ["vcops-lib.service"]


@pytest.mark.parametrize(
    ("prints", "status", "note"),
    [
        ("rebuilt: /usr/lib/x86_64-linux-gnu/libssl.so.3 changed", 0, "aide-database-rebuilt"),
        ("up to date", 0, None),
        ("aide: cannot open database", 17, "aide-database-not-rebuilt"),
    ],
)
def test_an_approved_upgrade_rebuilds_the_aide_database(
    tmp_path: Path, prints: str, status: int, note: str | None
) -> None:
    """The install step runs the integrity area's rebuild script when the host has it
    (a stand-in here) and says what happened; a host without it skips the step."""
    update = tmp_path / "vcops-aide-update"
    update.write_text(f"#!/bin/sh\necho {shlex.quote(prints)}\nexit {status}\n")
    update.chmod(0o755)
    say = "say() { printf 'say %s\\n' \"$*\"; }\n"
    run = subprocess.run(
        ["sh", "-c", say + remote.aide_rebuild(str(update))],
        text=True, capture_output=True, check=False,
    )  # fmt: skip
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines() == ([f"say note {note}"] if note else [])
    missing = subprocess.run(
        ["sh", "-c", say + remote.aide_rebuild(str(tmp_path / "absent"))],
        text=True, capture_output=True, check=False,
    )  # fmt: skip
    assert (missing.returncode, missing.stdout) == (0, "")  # no integrity area: skipped
    assert remote.aide_rebuild() in remote.install_script(
        [PackageChange(package="openssl", current="3.0.11", target="3.0.15", security=True)]
    )


def test_unit_lists_come_back_as_one_section_each_and_read_as_active_and_failed() -> None:
    """The gate runs where `systemctl` is faked: its lines, as the host sends them."""
    fake = (
        'systemctl() { case "$*" in\n'
        "  *--state=active*) printf 'kamailio.service loaded active running Kamailio\\n"
        "ssh.service loaded active running OpenSSH\\n' ;;\n"
        "  *--state=failed*) printf 'rtpengine.service loaded failed failed RTP\\n' ;;\n"
        "esac; }\n"
    )
    framed = compose([remote.WindowTask(script=fake + remote.gate_script())], NONCE)
    out = subprocess.run(["sh", "-s"], input=framed, text=True, capture_output=True, check=True)
    assert out.stdout.count(f"@@vcops-{NONCE} window say 0") == 1  # the boot id only
    got = remote.parse_answer(split(out.stdout, NONCE).task("window"))
    assert got.all("active") == [["kamailio.service"], ["ssh.service"]]
    assert got.all("failed") == [["rtpengine.service"]]
    assert remote.unit_state(got).failed == {"rtpengine.service"}
    assert got.first("boot") is not None
