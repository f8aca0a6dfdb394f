"""`inventory check` catches what ping, scan and apply would trip over later: missing or
unreadable key, known_hosts and password files, secrets readable by others, targets
without a management network, bad window_* and baseline_* variables."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from vcops.cli import main
from vcops.inventory import load_inventory
from vcops.preflight import preflight

SETTINGS = (
    "settings:\n  ssh: {key_file: keys/id, known_hosts_file: known_hosts}\n"
    "  management_networks: [192.0.2.0/24]\n"
    "sites: [{name: s1}]\n"
)


def _inventory(root: Path, body: str, settings: str = SETTINGS) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "inv.yml").write_text(settings + body)
    return root


def _files(root: Path) -> None:
    (root / "keys").mkdir(exist_ok=True)
    (root / "keys" / "id").write_text("key\n")
    os.chmod(root / "keys" / "id", 0o600)
    (root / "known_hosts").write_text("")
    (root / "pw").write_text("secret\n")
    os.chmod(root / "pw", 0o600)


SERVER = (
    "servers:\n  - {name: a-01, address: 192.0.2.1, roles: generic, site: s1, environment: lab}\n"
)
DEVICE = (
    "devices:\n  - {name: sw-01, address: 192.0.2.2, platform: ios, site: s1, environment: lab,"
    " credentials: {username: u, password_file: pw}}\n"
)


def _messages(problems: list[object]) -> str:
    return "\n".join(str(p) for p in problems)


def test_a_complete_inventory_passes_and_one_role_may_be_a_string(tmp_path: Path) -> None:
    root = _inventory(tmp_path / "inv", SERVER + DEVICE)
    _files(root)
    inv = load_inventory(root)
    assert inv.servers[0].roles == ["generic"]
    assert preflight(inv) == ([], [])


def test_missing_files_name_the_file_and_the_entry(tmp_path: Path) -> None:
    root = _inventory(tmp_path / "inv", SERVER + DEVICE)
    problems, _ = preflight(load_inventory(root))
    text = _messages(problems)
    assert "settings.ssh.key_file: keys/id" in text and "does not exist" in text
    assert "settings.ssh.known_hosts_file: known_hosts" in text
    assert "device sw-01: credentials.password_file: pw" in text
    assert "relative paths start at the inventory directory" in text
    assert str(root / "keys" / "id") in text  # resolved against the inventory, not the CWD


def test_secrets_readable_by_others_are_warnings(tmp_path: Path) -> None:
    root = _inventory(tmp_path / "inv", SERVER + DEVICE)
    _files(root)
    os.chmod(root / "keys" / "id", 0o644)
    os.chmod(root / "pw", 0o640)
    problems, warnings = preflight(load_inventory(root))
    assert problems == []
    text = _messages(warnings)
    assert "keys/id" in text and "mode 0644" in text and f"chmod 600 {root / 'keys' / 'id'}" in text
    assert "sw-01" in text and "mode 0640" in text


@pytest.mark.skipif(os.geteuid() == 0, reason="root reads any file")
def test_an_unreadable_file_is_a_problem(tmp_path: Path) -> None:
    root = _inventory(tmp_path / "inv", SERVER)
    _files(root)
    os.chmod(root / "known_hosts", 0)
    problems, _ = preflight(load_inventory(root))
    assert "is not a readable file" in _messages(problems)


def test_no_management_network_is_a_warning(tmp_path: Path) -> None:
    root = _inventory(
        tmp_path / "inv",
        SERVER,
        settings="settings:\n  ssh: {known_hosts_file: known_hosts}\nsites: [{name: s1}]\n",
    )
    (root / "known_hosts").write_text("")
    problems, warnings = preflight(load_inventory(root))
    assert problems == []
    assert "server a-01: no management network declared" in _messages(warnings)


@pytest.mark.parametrize(
    ("var", "value", "expected"),
    [
        ("window_sip_port", "70000", "window_sip_port"),
        ("window_drain_timeout", "soon", "window_drain_timeout"),
        ("window_health_units", "['ssh.service; rm -rf /']", "window_health_units"),
        ("window_bogus", "1", "window_bogus"),
        ("baseline_ssh_max_auth_tries", "many", "ssh_max_auth_tries"),
        ("baseline_no_such_setting", "1", "no_such_setting"),
    ],
)
def test_window_and_baseline_vars_are_validated_at_check_time(
    tmp_path: Path, var: str, value: str, expected: str
) -> None:
    server = (
        "servers:\n  - {name: a-01, address: 192.0.2.1, roles: [generic], site: s1,"
        f" environment: lab, vars: {{{var}: {value}}}}}\n"
    )
    root = _inventory(tmp_path / "inv", server)
    _files(root)
    problems, _ = preflight(load_inventory(root))
    assert len(problems) >= 1, var
    assert all("server a-01" in p.entry for p in problems)
    assert expected in _messages(problems)


def test_the_cli_exits_2_on_problems_and_0_with_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = _inventory(tmp_path / "inv", SERVER + DEVICE)
    assert main(["-i", str(root), "inventory", "check"]) == 2
    err = capsys.readouterr().err
    assert "3 problem(s)" in err and "sw-01" in err and "Traceback" not in err
    assert main(["-i", str(root), "inventory", "check", "--json"]) == 2
    payload = json.loads(capsys.readouterr().err)
    assert {p["entry"] for p in payload["problems"]} >= {"settings.ssh.key_file"}
    _files(root)
    os.chmod(root / "pw", 0o644)
    assert main(["-i", str(root), "inventory", "check"]) == 0
    captured = capsys.readouterr()
    assert "is valid" in captured.out and "warning:" in captured.err and "chmod 600" in captured.err
    assert main(["-i", str(root), "inventory", "check", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["warnings"]
