"""The CLI contract: exit codes, one readable line per user error, never a traceback."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import REPO
from vcops import __version__
from vcops.cli import main


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("VCOPS_INVENTORY", "VCOPS_CONFIG", "VCOPS_DATABASE_URL", "VCOPS_DEBUG"):
        monkeypatch.delenv(var, raising=False)


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_version_and_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "--version") == (0, f"vcops {__version__}\n", "")
    code, out, _ = run(capsys, "--help")
    assert code == 0
    for group in (
        "inventory",
        "lab",
        "baseline",
        "scan",
        "findings",
        "waiver",
        "apply",
        "snapshot",
        "window",
        "report",
        "schedule",
        "audit",
    ):
        assert f"  {group} " in out


def test_check_of_the_example_inventory(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "--inventory", str(REPO / "inventory"), "inventory", "check")
    assert code == 0 and "is valid: 12 servers, 4 devices, 2 sites" in out
    code, out, _ = run(capsys, "-i", str(REPO / "inventory"), "inventory", "check", "--json")
    assert code == 0 and json.loads(out)["valid"] is True


def test_check_reports_every_problem_and_exits_2(
    capsys: pytest.CaptureFixture[str], make_inventory: Callable[..., Path]
) -> None:
    root = make_inventory("typos", "unknown_role")
    code, out, err = run(capsys, "-i", str(root), "inventory", "check")
    assert code == 2 and out == ""
    lines = [line for line in err.splitlines() if line.startswith("  ")]
    assert len(lines) == 5
    assert all(".yml:" in line for line in lines)


def test_json_errors_are_json(
    capsys: pytest.CaptureFixture[str], make_inventory: Callable[..., Path]
) -> None:
    root = make_inventory("unknown_role")
    code, _, err = run(capsys, "--json", "-i", str(root), "inventory", "show")
    assert code == 2
    payload = json.loads(err)
    assert payload["type"] == "InventoryError"
    assert payload["problems"][0]["fix"].startswith("use one of: asterisk")


def test_show_with_a_bad_limit_is_one_line(
    capsys: pytest.CaptureFixture[str], make_inventory: Callable[..., Path]
) -> None:
    code, _out, err = run(
        capsys, "-i", str(make_inventory()), "inventory", "show", "--limit", "kamailo"
    )
    assert code == 2
    assert (
        err
        == "vcops: error: --limit: kamailo: matches no host or device; did you mean 'kamailio'?\n"
    )


def test_show_json_and_limit(
    capsys: pytest.CaptureFixture[str], make_inventory: Callable[..., Path]
) -> None:
    code, out, _ = run(
        capsys, "-i", str(make_inventory()), "inventory", "show", "--json", "-l", "role:kamailio"
    )
    assert code == 0
    assert [row["name"] for row in json.loads(out)] == ["kam-01", "kam-02"]


def test_export_writes_a_file(
    capsys: pytest.CaptureFixture[str], make_inventory: Callable[..., Path], tmp_path: Path
) -> None:
    target = tmp_path / "out" / "hosts.yml"
    code, _, _ = run(
        capsys,
        "-i",
        str(make_inventory()),
        "inventory",
        "export",
        "--format",
        "ansible",
        "-o",
        str(target),
    )
    assert code == 0 and "kam-01" in target.read_text()


def test_missing_inventory_names_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "-i", "nowhere", "inventory", "show")
    assert code == 2 and "nowhere: inventory directory not found; pass --inventory DIR" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "no-such-command")[0] == 2
    assert run(capsys, "inventory", "export", "--format", "chef")[0] == 2


def test_bad_config_names_the_file_and_key(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    (tmp_path / "vcops.toml").write_text("[run]\nmax_paralel = 3\n")
    code, _, err = run(capsys, "audit", "log")
    assert (
        code == 2
        and "vcops.toml: run.max_paralel: Extra inputs are not permitted; remove it" in err
    )
    (tmp_path / "vcops.toml").write_text("[run\n")
    code, _, err = run(capsys, "audit", "log")
    assert code == 2 and "vcops.toml: malformed TOML" in err
    code, _, err = run(capsys, "--config", "missing.toml", "audit", "log")
    assert code == 2 and "missing.toml: config file not found" in err


def test_window_run_needs_one_window_or_due(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(capsys, "window", "run")
    assert code == 2 and out == "" and "give a WINDOW_ID or --due" in err
    code, out, err = run(capsys, "window", "run", "W-1", "--due")
    assert code == 2 and "give a WINDOW_ID or --due" in err
    assert "Traceback" not in err
