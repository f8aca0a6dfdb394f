"""`vcops apply`'s live progress: what the engines report while they run (pyinfra's
marker lines, ansible-runner's events), the bar that shows it, and the reporter inside a
real pyinfra run."""

from __future__ import annotations

import io
import sys
from pathlib import Path

import pytest
from rich.console import Console
from rich.progress import Progress as RichProgress

from vcops.cli.apply_cmds import once_per_target
from vcops.cli.progress import Bar
from vcops.enforce.ansible_events import EventProgress
from vcops.enforce.apply_models import Progress
from vcops.enforce.pyinfra_progress import MARK, ProgressReader, failed_line, op_line
from vcops.enforce.pyinfra_run import _run_streaming
from vcops.errors import CommandError


class Heard:
    """A Progress that records what it hears."""

    def __init__(self) -> None:
        self.done: list[str] = []
        self.at: list[float] = []
        self.doing: list[str] = []

    def progress(self) -> Progress:
        return Progress(done=self.done.append, at=self.at.append, doing=self.doing.append)


def test_pyinfra_markers_move_the_running_hosts_and_end_failed_hosts_at_once() -> None:
    heard = Heard()
    reader = ProgressReader(["a", "b", "c"], heard.progress())
    for line in [
        "--> Starting operation: ssh: /etc/issue\n",
        op_line(1, 4, "updates: security suite") + "\n",
        "    [a]   Success\n",
        op_line(2, 4, "ssh:  /etc/ssh/sshd_config\n(evil)") + "\n",
        failed_line("b") + "\n",
        f"    [a]   {MARK} failed c\n",  # a host's output behind pyinfra's prefix
        op_line(3, 4, "firewall") + "\n",
    ]:
        reader.feed(line)
    assert heard.done == ["b"]
    assert heard.at == [0.0, 0.25, 0.5]
    assert heard.doing == [
        "operation 1/4 updates: security suite",
        "operation 2/4 ssh: /etc/ssh/sshd_config (evil)",
        "operation 3/4 firewall",
    ]
    reader.finish()
    assert heard.done == ["b", "a", "c"]
    reader.feed(op_line(4, 4, "install " + "x" * 500))  # a long name is cut, not wrapped
    assert heard.doing[-1] == "operation 4/4 install " + "x" * 112


@pytest.mark.parametrize(
    "line",
    [
        f"{MARK} op x 4 name",
        f"{MARK} op 5 4 name",
        f"{MARK} op 0 4 name",
        f"{MARK} op 1",
        f"{MARK} failed someone-else",
        f"{MARK} failed a b",
        f"{MARK}op 1 2",
        f"{MARK} retire a",
        "",
    ],
)
def test_a_malformed_or_foreign_marker_moves_nothing(line: str) -> None:
    heard = Heard()
    ProgressReader(["a"], heard.progress()).feed(line)
    assert (heard.done, heard.at, heard.doing) == ([], [], [])


def _event(kind: str, **data: object) -> dict[str, object]:
    return {"event": kind, "event_data": data}


def test_ansible_events_name_each_task_and_end_lost_hosts_then_the_rest_at_the_recap() -> None:
    heard = Heard()
    live = EventProgress(["kam-01", "kam-02", "ast-01"], heard.progress())
    for event in [
        "not an event",
        {"event": "playbook_on_task_start", "event_data": "no mapping"},
        _event("playbook_on_task_start", role="vcops_ssh", task="Install sshd_config"),
        _event("runner_on_failed", host="kam-02", task="probe", ignore_errors=True),
        _event("runner_on_unreachable", host="ast-01", task="Install sshd_config"),
        _event("runner_on_unreachable", host="ast-01", task="again"),
        _event("runner_on_failed", host="stranger", task="x"),
        _event("playbook_on_task_start", role="vcops_firewall", task="nftables"),
        _event("runner_on_failed", host="kam-02", task="nftables"),
    ]:
        live.feed(event)
    assert heard.done == ["ast-01", "kam-02"]
    assert heard.doing == [
        "task 1: vcops_ssh : Install sshd_config",
        "task 2: vcops_firewall : nftables",
    ]
    live.feed(_event("playbook_on_stats"))
    live.finish()  # the run's end after the recap: nobody twice
    assert heard.done == ["ast-01", "kam-02", "kam-01"]


def _bar(total: int) -> tuple[Bar, RichProgress]:
    rich = RichProgress(console=Console(file=io.StringIO()), auto_refresh=False)
    return Bar(rich, rich.add_task("apply", total=total, last="", done=0), total), rich


def test_the_bar_counts_done_targets_and_moves_the_others_by_their_share() -> None:
    bar, rich = _bar(4)
    bar.at(0.5)
    assert rich.tasks[0].completed == 2.0
    bar("a")
    task = rich.tasks[0]
    assert (task.completed, task.fields["done"], task.fields["last"]) == (2.5, 1, "a")
    bar.doing("operation 3/4 firewall")
    assert rich.tasks[0].fields["last"] == "operation 3/4 firewall"
    bar.at(7.0)  # clamped
    assert rich.tasks[0].completed == 4.0
    Bar()("nobody watching")  # a no-op bar takes every call


def test_each_target_is_counted_once_whoever_reports_it() -> None:
    bar, rich = _bar(3)
    progress = once_per_target(bar)
    for name in ["a", "a", "b", "a"]:
        progress.done(name)
    assert rich.tasks[0].fields["done"] == 2


def test_streamed_stderr_reaches_the_reader_and_markers_stay_out_of_the_kept_text() -> None:
    script = (
        "import sys\n"
        f"print({op_line(1, 2, 'one')!r}, file=sys.stderr, flush=True)\n"
        "print('--> Results:', file=sys.stderr)\n"
        "print('{\"ok\": true}')\n"
    )
    lines: list[str] = []
    done = _run_streaming([sys.executable, "-c", script], env={}, cwd="/", on_stderr=lines.append)
    assert done.returncode == 0 and done.stdout.strip() == '{"ok": true}'
    assert lines == [op_line(1, 2, "one") + "\n", "--> Results:\n"]
    assert done.stderr == "--> Results:\n"


def test_a_run_past_its_timeout_is_stopped_with_a_clear_error() -> None:
    argv = [sys.executable, "-c", "import time; time.sleep(30)"]
    with pytest.raises(CommandError, match="ran longer than 0 s and was stopped"):
        _run_streaming(argv, env={}, cwd="/", on_stderr=lambda _l: None, timeout=0.2)


DEPLOY = """
from pyinfra.operations import server

from vcops.enforce.pyinfra_deploy import report_progress

report_progress()
report_progress()  # registered once however many hosts load the deploy
server.shell(name="first", commands=["true"])
server.shell(name="second", commands=["false"])
server.shell(name="third", commands=["true"])
"""


def test_the_reporter_inside_a_real_pyinfra_run_prints_what_the_reader_needs(
    tmp_path: Path,
) -> None:
    """Contract with pyinfra itself (its @local connector runs `true` and `false` here):
    every operation is announced with its place, and the failing host is named."""
    deploy = tmp_path / "deploy.py"
    deploy.write_text(DEPLOY)
    pyinfra = Path(sys.executable).parent / "pyinfra"
    heard = Heard()
    reader = ProgressReader(["@local"], heard.progress())
    env = {"PATH": str(Path(sys.executable).parent) + ":/usr/bin:/bin", "PYINFRA_PROGRESS": "off"}
    done = _run_streaming(
        [str(pyinfra), "@local", str(deploy), "-y"],
        env=env,
        cwd=str(tmp_path),
        on_stderr=reader.feed,
    )
    assert done.returncode != 0  # `false` failed the host
    assert heard.doing == ["operation 1/3 first", "operation 2/3 second"]
    assert heard.at == [0.0, 1 / 3]
    assert heard.done == ["@local"]
    assert MARK not in done.stderr
