"""`vcops schedule` takes only safe names and calendars: a run NAME is a plain word (it
names a lock file), and --scan-at cannot add lines to a systemd unit."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.conftest import REPO
from vcops.cli import main


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("VCOPS_INVENTORY", "VCOPS_CONFIG", "VCOPS_DATABASE_URL", "VCOPS_DEBUG"):
        monkeypatch.delenv(var, raising=False)


def files_under(root: Path) -> set[Path]:
    return {p for p in root.rglob("*") if p.is_file()}


@pytest.mark.parametrize("name", ["../../x", "../escape", "a/b", "/tmp/abs", ".hidden", "a b", ""])
def test_a_run_name_is_a_plain_word(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "deep" / "er").mkdir(parents=True)
    config = tmp_path / "deep" / "er" / "vcops.toml"
    config.write_text('[store]\nstate_dir = "state"\n')
    code = main(["--config", str(config), "schedule", "run", name, "--", "--version"])
    err = capsys.readouterr().err
    assert code == 2 and "plain word" in err, err
    outside = {p for p in files_under(tmp_path) if "state" not in p.parts and p != config}
    assert outside == set()
    assert not (tmp_path / "x.lock").exists() and not (tmp_path / "deep" / "x.lock").exists()


def test_a_plain_name_still_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["schedule", "run", "drift-scan_2", "--", "--version"]) == 0
    assert "vcops" in capsys.readouterr().out


@pytest.mark.parametrize(
    "calendar",
    ["daily\nExecStartPre=/bin/sh -c id", "daily\rx", "*-*-* 06:00:00\n[Service]", "daily;id"],
)
def test_scan_at_cannot_inject_lines(
    calendar: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    units = tmp_path / "units"
    code = main(
        [
            "-i",
            str(REPO / "inventory"),
            "schedule",
            "install",
            "--dir",
            str(units),
            "--scan-at",
            calendar,
        ]
    )
    err = capsys.readouterr().err
    assert code == 2 and "--scan-at" in err, err
    assert not units.exists()


def test_an_ordinary_calendar_is_written(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    units = tmp_path / "units"
    code = main(
        [
            "-i",
            str(REPO / "inventory"),
            "schedule",
            "install",
            "--dir",
            str(units),
            "--scan-at",
            "Mon..Fri *-*-* 06:30:00 Europe/London",
        ]
    )
    assert code == 0, capsys.readouterr().err
    timer = (units / "vcops-scan.timer").read_text()
    assert "OnCalendar=Mon..Fri *-*-* 06:30:00 Europe/London\n" in timer
