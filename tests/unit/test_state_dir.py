"""Where state lives (resolved once: config, $VCOPS_STATE_DIR, per-user default), its
modes, `vcops info` / `--version --json`, and the starter directory of `vcops init`."""

from __future__ import annotations

import json
import os
import sqlite3
import stat
from pathlib import Path

import pytest

from vcops.cli import main
from vcops.config import ROOT_STATE_DIR, default_state_dir, load_config
from vcops.store import open_store


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("VCOPS_INVENTORY", "VCOPS_CONFIG", "VCOPS_DATABASE_URL", "VCOPS_TEMPLATES"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VCOPS_ACTOR", "tester@ctl")


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_config_state_dir_is_relative_to_the_config_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc").mkdir()
    cfg_file = tmp_path / "etc" / "vcops.toml"
    cfg_file.write_text('[store]\nstate_dir = "state"\n')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    monkeypatch.setenv("VCOPS_STATE_DIR", str(tmp_path / "env-state"))  # config wins
    cfg = load_config(Path("../etc/vcops.toml"))
    assert cfg.state_origin == (tmp_path / "etc" / "state", "config")
    assert cfg.database_url == f"sqlite:///{tmp_path / 'etc' / 'state' / 'vcops.db'}"


def test_env_then_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VCOPS_STATE_DIR", ".vcops")  # an older vcops's .vcops/ keeps working
    assert load_config(None).state_origin == (tmp_path / ".vcops", "$VCOPS_STATE_DIR")
    monkeypatch.delenv("VCOPS_STATE_DIR")
    expected = ROOT_STATE_DIR if os.geteuid() == 0 else default_state_dir()
    assert load_config(None).state_origin == (expected, "default")


def test_per_user_default(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert default_state_dir(uid=0) == Path("/var/lib/vcops")
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert default_state_dir(uid=1000) == tmp_path / "xdg" / "vcops"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/ignored")  # the spec: absolute only
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_state_dir(uid=1000) == tmp_path / "home" / ".local" / "state" / "vcops"


def test_state_dir_is_created_0700_and_the_database_0600(tmp_path: Path) -> None:
    state = tmp_path / "new" / "state"
    store = open_store(f"sqlite:///{state / 'vcops.db'}", state)
    store.audit("test", "x", {})
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert stat.S_IMODE((state / "vcops.db").stat().st_mode) == 0o600


def _closed_port_inventory(root: Path) -> Path:
    inv = root / "inventory"
    inv.mkdir(parents=True)
    (inv / "known_hosts").write_text("")
    (inv / "inv.yml").write_text(
        "settings: {ssh: {known_hosts_file: known_hosts, connect_timeout: 3},"
        " management_networks: [127.0.0.0/8]}\n"
        "sites: [{name: s1}]\n"
        "servers:\n"
        "  - {name: gone-01, address: 127.0.0.1, port: 1, roles: [generic], site: s1,"
        " environment: lab}\n"
    )
    return inv


def test_two_directories_with_the_same_config_share_one_audit_chain(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    ops = tmp_path / "ops"
    _closed_port_inventory(ops)
    (ops / "vcops.toml").write_text('[paths]\ninventory = "inventory"\n[store]\nstate_dir = "s"\n')
    monkeypatch.delenv("VCOPS_STATE_DIR")
    for place in ("a", "b"):
        (tmp_path / place).mkdir()
        monkeypatch.chdir(tmp_path / place)
        code, _, _ = run(capsys, "-c", str(ops / "vcops.toml"), "scan")
        assert code == 3  # the host on a closed port is unknown, and the scan is audited
        assert not (tmp_path / place / ".vcops").exists()
    code, out, _ = run(capsys, "-c", str(ops / "vcops.toml"), "audit", "log", "--json")
    assert code == 0
    scans = [e for e in json.loads(out) if e["action"].startswith("scan")]
    assert len(scans) == 2
    assert run(capsys, "-c", str(ops / "vcops.toml"), "audit", "verify")[0] == 0
    rows = sqlite3.connect(ops / "s" / "vcops.db").execute("select count(*) from audit_log")
    assert rows.fetchone()[0] >= 2


def test_info_and_version_json_say_where_everything_is(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "vcops.toml").write_text('[store]\nstate_dir = "st"\n')
    code, out, _ = run(capsys, "info", "--json")
    assert code == 0
    info = json.loads(out)
    assert info["config"] == {"path": str(tmp_path / "vcops.toml"), "origin": "default"}
    assert info["state"] == {"path": str(tmp_path / "st"), "origin": "config", "exists": False}
    assert info["inventory"]["origin"] == "default"
    assert info["templates"]["origin"] == "package" and info["templates"]["exists"]
    assert Path(info["templates"]["path"], "ssh", "sshd_config.j2").is_file()
    monkeypatch.setenv("VCOPS_TEMPLATES", str(tmp_path / "mine"))
    monkeypatch.setenv("VCOPS_INVENTORY", str(tmp_path / "inv"))
    code, out, _ = run(capsys, "--version", "--json")
    info = json.loads(out)
    assert code == 0 and info["state"]["origin"] == "config"
    assert info["templates"] == {
        "path": str(tmp_path / "mine"),
        "origin": "$VCOPS_TEMPLATES",
        "exists": False,
    }
    assert info["inventory"]["origin"] == "$VCOPS_INVENTORY"
    code, out, _ = run(capsys, "info")
    assert code == 0 and f"state      {tmp_path / 'st'}  (config)" in out


def test_init_writes_a_starter_that_passes_inventory_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, "init", "ops")
    assert code == 0
    ops = tmp_path / "ops"
    for name in ("settings", "servers", "devices", "groups", "board", "calendar"):
        assert (ops / "inventory" / f"{name}.yml").is_file()
    assert "ssh-keyscan" in out and "compare every fingerprint" in out
    assert f"vcops -c {ops / 'vcops.toml'} inventory check" in out
    assert f"vcops -c {ops / 'vcops.toml'} inventory ping" in out
    # from another directory, through the config alone
    monkeypatch.chdir("/")
    code, out, err = run(capsys, "-c", str(ops / "vcops.toml"), "inventory", "check", "--json")
    assert code == 0, err
    summary = json.loads(out)
    assert summary["servers"] == 1 and summary["devices"] == 1 and summary["board_members"] == 1
    text = "".join(p.read_text() for p in (ops / "inventory").glob("*.yml"))
    for section in (
        "management_networks",
        "sites:",
        "redundancy_groups:",
        "groups:",
        "password_env",
        "change_board:",
        "freezes:",
    ):
        assert section in text
    config = (ops / "vcops.toml").read_text()
    for section in ("[store]", "[smtp]", "[recipients]"):
        assert section in config
    # never overwrites an operator's edits
    assert run(capsys, "init", str(ops))[0] == 2
