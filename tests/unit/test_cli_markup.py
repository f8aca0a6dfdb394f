"""External text reaches the terminal as text: never parsed as rich markup.

Every string below comes from outside vcops (a directory name, a waiver, an actor, a
finding a host produced, a window's title and package versions). With markup parsed,
``[/x]`` raises rich's MarkupError (exit 70, no output) and ``[smtp]`` silently
disappears; the CLI must print both verbatim.
"""

from __future__ import annotations

import json
import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vcops.cli import main
from vcops.findings import ControlResult, Drift, TargetOutcome
from vcops.findings_store import record_scan
from vcops.store import open_store
from vcops.window.model import HostPlan, PackageChange, Plan, Window, plan_hash
from vcops.window.store import save_window

HOSTILE = "[/x] [smtp] [bold red]loud[/] [link=file:///etc/shadow]x[/link]"


@pytest.fixture(autouse=True)
def _isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for var in ("VCOPS_INVENTORY", "VCOPS_CONFIG", "VCOPS_DATABASE_URL", "VCOPS_DEBUG"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("VCOPS_ACTOR", f"ops {HOSTILE}")


@pytest.fixture
def inventory(tmp_path: Path) -> Path:
    """The base fixture inventory in a directory whose name is markup."""
    root = tmp_path / "inv [" / "x] [smtp]"  # the path reads .../inv [/x] [smtp]
    root.mkdir(parents=True)
    shutil.copy(FIXTURES / "inventories" / "base" / "base.yml", root / "base.yml")
    (root / "secrets").mkdir()  # rtr-01's password_file: `inventory check` wants it there
    (root / "secrets" / "rtr-01").write_text("not-a-real-password\n")
    (root / "secrets" / "rtr-01").chmod(0o600)
    return root


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(list(args))
    out, err = capsys.readouterr()
    assert "internal error" not in err, err
    assert "Traceback" not in out + err
    return code, out, err


def flat(text: str) -> str:
    """Table cells wrap; compare without the box drawing and line breaks."""
    return " ".join("".join(c for c in text if c not in "│┃┏┓┗┛┡┩└┘─━╇┳┻┼╋").split())


def test_inventory_show_and_check_print_the_directory_name_verbatim(
    capsys: pytest.CaptureFixture[str], inventory: Path
) -> None:
    code, out, _ = run(capsys, "-i", str(inventory), "inventory", "show")
    assert code == 0 and "inv [/x] [smtp]" in flat(out)
    code, out, _ = run(capsys, "-i", str(inventory), "inventory", "check")
    assert code == 0 and f"{inventory} is valid" in out


def test_waiver_list_audit_log_and_findings_print_hostile_text(
    capsys: pytest.CaptureFixture[str], inventory: Path, tmp_path: Path
) -> None:
    expires = (datetime.now(UTC) + timedelta(days=30)).date().isoformat()
    code, _, err = run(
        capsys, "-i", str(inventory), "waiver", "add", "VC-SSH-004", "--hosts", "kam-01",
        "--reason", f"vendor asked {HOSTILE}", "--expires", expires,
        "--approved-by", "[bold]dana[/bold]",
    )  # fmt: skip
    assert code == 0, err
    code, out, _ = run(capsys, "-i", str(inventory), "waiver", "list")
    assert code == 0
    assert "[/x] [smtp]" in flat(out) and "[bold]dana[/bold]" in flat(out)

    code, out, _ = run(capsys, "audit", "log")
    assert code == 0 and "[/x]" in flat(out) and "[smtp]" in flat(out)

    store = open_store(f"sqlite:///{tmp_path / '.vcops' / 'vcops.db'}", tmp_path / ".vcops")
    result = ControlResult(
        target="kam-01", control_id="VC-SSH-004", clause="3.2.1", severity="medium",
        title="MaxAuthTries", status="fail", expected="3", actual=f"9 {HOSTILE}", detail="",
    )  # fmt: skip
    now = datetime.now(UTC)
    record_scan(
        store, started_at=now, finished_at=now, actor="t", selection="all",
        outcomes=[TargetOutcome(target="kam-01", kind="server", status="scanned",
                                results=[result])],
        drift=Drift(new=[result], resolved=[], persisting=[]),
        score=(0, 1, 0, 0.0), summary={},
    )  # fmt: skip
    code, out, _ = run(capsys, "-i", str(inventory), "findings")
    assert code == 0 and "9 [/x] [smtp]" in flat(out)


def test_window_list_and_show_print_titles_and_versions_verbatim(
    capsys: pytest.CaptureFixture[str], inventory: Path, tmp_path: Path
) -> None:
    store = open_store(f"sqlite:///{tmp_path / '.vcops' / 'vcops.db'}", tmp_path / ".vcops")
    plan = Plan(
        actions="all-updates",
        hosts=[
            HostPlan(
                target="kam-01",
                environment="production",
                redundancy_group="kam-pair",
                packages=[
                    PackageChange(
                        package="kamailio", current="[/x]", target="[smtp]", security=True
                    )
                ],
            )
        ],
    )
    start = datetime.now(UTC) + timedelta(days=1)
    save_window(
        store,
        Window(
            id="w-markup", title=f"title {HOSTILE}", change_id="[/chg]", requester="[/req]",
            targets="kam-01", start=start, duration_minutes=120, cutoff_minutes=30,
            max_concurrency="1", max_errors="1", actions="all-updates", reboot="never",
            plan=plan, plan_hash=plan_hash(plan), created_at=start - timedelta(days=1),
        ),
    )  # fmt: skip
    code, out, _ = run(capsys, "-i", str(inventory), "window", "list")
    assert code == 0 and "[/x] [smtp]" in flat(out) and "[/chg]" in flat(out)
    code, out, _ = run(capsys, "-i", str(inventory), "window", "show", "w-markup")
    assert code == 0
    assert "title [/x] [smtp]" in out and "[/req]" in out
    assert "kamailio [/x] -> [smtp]" in flat(out)
    code, out, _ = run(capsys, "-i", str(inventory), "--json", "window", "show", "w-markup")
    assert json.loads(out)["title"] == f"title {HOSTILE}"


def test_the_smtp_hint_keeps_its_brackets(
    capsys: pytest.CaptureFixture[str], inventory: Path, tmp_path: Path
) -> None:
    """``[smtp]`` in the "no mail" line was eaten as a markup tag."""
    from vcops.cli.app import App
    from vcops.cli.window_notify import send

    plan = Plan(actions="all-updates", hosts=[])
    start = datetime.now(UTC) + timedelta(days=1)
    window = Window(
        id="w-1", title="t", change_id="c", requester="r", targets="kam-01", start=start,
        duration_minutes=60, cutoff_minutes=10, max_concurrency="1", max_errors="1",
        actions="all-updates", reboot="never", plan=plan, plan_hash=plan_hash(plan),
        created_at=start,
    )  # fmt: skip
    send(App(inventory_dir=inventory, config_file=None), window, "started")
    assert "vcops.toml has no [smtp] section" in capsys.readouterr().err


def test_the_consoles_never_parse_markup_and_text_py_is_the_only_way_in(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    from vcops.cli.app import App
    from vcops.cli.text import styled

    app = App(inventory_dir=tmp_path, config_file=None)
    app.out.print("[/x] [smtp]")
    app.err.print(styled("[red]{}[/]", "[/y]"))
    out, err = capsys.readouterr()
    assert out == "[/x] [smtp]\n" and err == "[/y]\n"
    src = Path(__file__).resolve().parents[2] / "src" / "vcops"
    offenders = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if p.name != "text.py"
        and any(s in p.read_text() for s in ("from_markup", "rich.markup", "markup=True"))
    ]
    assert offenders == []
