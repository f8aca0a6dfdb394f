"""Run a playbook through ansible-runner and read its per-host results as events.

ansible-runner streams each result as a dict (``runner_on_ok``, ``runner_on_failed``,
``runner_on_unreachable``, ``playbook_on_stats``...), with the module's own result
(``res``: ``changed``, ``msg``, ``diff``) as data: nothing here reads Ansible's text
output. Example event (trimmed)::

    {"event": "runner_on_ok",
     "event_data": {"host": "kam-01", "role": "vcops_ssh", "task": "Install sshd_config",
                    "res": {"changed": true, "diff": [{"before": "...", "after": "..."}]}}}

Every field comes from a playbook run on hosts we do not trust: each is type-checked
and bounded before use, and a malformed event is skipped, never raised.
"""

from __future__ import annotations

import difflib
import os
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vcops.enforce.apply_models import QUIET, Progress
from vcops.errors import CommandError
from vcops.inventory.export import JsonValue

RUN_TIMEOUT = 1800
MESSAGE_LIMIT = 400
DIFF_LIMIT = 200_000
RESULT_EVENTS = frozenset(
    {"runner_on_ok", "runner_on_failed", "runner_on_unreachable", "runner_on_skipped"}
)
STATS_KEYS = {
    "ok": "ok",
    "changed": "changed",
    "dark": "unreachable",
    "failures": "failed",
    "skipped": "skipped",
    "rescued": "rescued",
    "ignored": "ignored",
}
"""``playbook_on_stats`` keys and the recap names the default callback prints."""
CONTROLLER_ACTIONS = frozenset(
    {
        "set_fact", "debug", "assert", "fail", "meta", "include_role", "include_tasks",
        "import_role", "import_tasks", "include_vars", "validate_argument_spec",
        "add_host", "group_by", "set_stats", "pause",
    }
)  # fmt: skip
"""Actions Ansible runs on the controller alone: their results say nothing of whether
the host itself was ever reached."""


@dataclass
class AnsibleHost:
    """What ansible-playbook did (or would do, in check mode) on one host."""

    name: str
    reached: bool = False
    contacted: bool = False  # a task ran on the host itself (not only on the controller)
    changed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    recap: dict[str, int] = field(default_factory=dict)


def _text(value: object, limit: int = MESSAGE_LIMIT) -> str:
    return value[:limit] if isinstance(value, str) else ""


def task_label(data: Mapping[str, object]) -> str:
    """``role : task`` as Ansible's own output names a role's task (pure)."""
    task = _text(data.get("task"), 300).strip() or "?"
    role = _text(data.get("role"), 100).strip()
    return f"{role} : {task}" if role else task


def result_message(res: object) -> str:
    """The readable part of a failed or unreachable result: msg, then the last line of
    stderr and stdout (pure, bounded)."""
    if not isinstance(res, Mapping):
        return "no result"
    parts = [_text(res.get("msg")).strip()]
    for key in ("stderr", "stdout"):
        text = _text(res.get(key), 20_000).strip()
        if text:
            parts.append(text.splitlines()[-1])
    results = res.get("results")
    if not any(parts) and isinstance(results, list):  # a loop: the first failed item
        failed = [r for r in results if isinstance(r, Mapping) and r.get("failed")]
        return result_message(failed[0]) if failed else "failed"
    return "; ".join(p for p in parts if p)[:MESSAGE_LIMIT] or "failed"


Masker = Callable[[str, str], str]
"""``(path, text) -> text`` with the secrets of a file at ``path`` masked ("" when the
path is not known); see :func:`vcops.enforce.apply.diff_masker`."""


def keep_text(_path: str, text: str) -> str:
    """The masker that masks nothing (diffs of files that hold no secrets, tests)."""
    return text


def render_diff(diff: object, mask: Masker = keep_text) -> str:
    """A unified diff of one result's ``diff`` (a dict, a list of them, or ``prepared``
    text), as ``--diff`` prints it, each side through ``mask`` first (pure, bounded)."""
    if isinstance(diff, list):
        return "".join(render_diff(d, mask) for d in diff[:50])[:DIFF_LIMIT]
    if not isinstance(diff, Mapping):
        return ""
    prepared = diff.get("prepared")
    if isinstance(prepared, str):
        text = mask("", prepared[:DIFF_LIMIT])
        return text + ("" if text.endswith("\n") else "\n")
    before, after = diff.get("before"), diff.get("after")
    if not isinstance(before, str) or not isinstance(after, str) or before == after:
        return ""
    path = _text(diff.get("before_header"), 300)  # the file's path, for its masking rules
    lines = difflib.unified_diff(
        mask(path, before[:DIFF_LIMIT]).splitlines(keepends=True),
        mask(path, after[:DIFF_LIMIT]).splitlines(keepends=True),
        fromfile=f"before: {_text(diff.get('before_header'), 300)}".rstrip(": "),
        tofile=f"after: {_text(diff.get('after_header'), 300)}".rstrip(": "),
    )
    return "".join(line if line.endswith("\n") else line + "\n" for line in lines)[:DIFF_LIMIT]


def _result_diff(res: Mapping[str, object], mask: Masker) -> str:
    text = render_diff(res.get("diff"), mask)
    results = res.get("results")
    if isinstance(results, list):  # a loop: each item's own diff
        text += "".join(
            render_diff(r.get("diff"), mask) for r in results[:200] if isinstance(r, Mapping)
        )
    return text


def parse_events(
    events: list[object], names: list[str], mask: Masker = keep_text
) -> list[AnsibleHost]:
    """Per-host outcome from ansible-runner's events (pure); diffs through ``mask``.

    A host with no result event never got connected: unreachable, as is a host whose
    only results came from actions the controller runs alone (``set_fact``, an
    ``include_role``, argument validation) before its first connection failed, e.g. on
    a host key that does not match. A host that answered and was then lost (``dark``
    after a task ran on it, e.g. a firewall change) has failed.
    """
    hosts = {n: AnsibleHost(n) for n in names}
    for event in events:
        if not isinstance(event, Mapping):
            continue
        kind, data = event.get("event"), event.get("event_data")
        if not isinstance(data, Mapping):
            continue
        if kind == "playbook_on_stats":
            _read_stats(data, hosts)
            continue
        name = data.get("host")
        if kind not in RESULT_EVENTS or not isinstance(name, str) or name not in hosts:
            continue
        host, task = hosts[name], task_label(data)
        res = data.get("res")
        res = res if isinstance(res, Mapping) else {}
        if kind == "runner_on_unreachable":
            host.errors.append(f"{task}: {result_message(res)}")
            continue
        host.reached = True
        if kind != "runner_on_skipped" and not _controller_action(data.get("task_action")):
            host.contacted = True
        if kind == "runner_on_failed":
            if not data.get("ignore_errors") and task not in host.failed:
                host.failed.append(task)
                host.errors.append(f"{task}: {result_message(res)}")
        elif kind == "runner_on_ok" and res.get("changed") is True:
            if task not in host.changed:
                host.changed.append(task)
            diff = _result_diff(res, mask)
            if diff:
                host.diffs[task] = host.diffs.get(task, "") + diff
    return [hosts[n] for n in names]


class EventProgress:
    """Feeds a :class:`Progress` from the events as ansible-runner hands them over: each
    task as it starts, a host done when it is unreachable or fails (Ansible runs nothing
    more on it) and every other host at the play recap."""

    def __init__(self, names: list[str], progress: Progress) -> None:
        self.running = list(dict.fromkeys(names))
        self.progress = progress
        self.tasks = 0

    def feed(self, event: object) -> None:
        if not isinstance(event, Mapping) or not isinstance(event.get("event_data"), Mapping):
            return
        kind, data = event.get("event"), event["event_data"]
        if kind == "playbook_on_task_start":
            self.tasks += 1
            self.progress.doing(f"task {self.tasks}: {task_label(data)}")
        elif kind == "playbook_on_stats":
            self.finish()
        elif (
            kind == "runner_on_unreachable"
            or (kind == "runner_on_failed" and not data.get("ignore_errors"))
        ) and data.get("host") in self.running:
            self.running.remove(str(data["host"]))
            self.progress.done(str(data["host"]))

    def finish(self) -> None:
        for name in self.running:
            self.progress.done(name)
        self.running = []


def _read_stats(data: Mapping[str, object], hosts: dict[str, AnsibleHost]) -> None:
    for key, label in STATS_KEYS.items():
        counts = data.get(key)
        if not isinstance(counts, Mapping):
            continue
        for name, count in counts.items():
            if name in hosts and isinstance(count, int):
                hosts[name].recap[label] = count
    for host in hosts.values():
        if not host.recap.get("unreachable"):
            continue
        if host.contacted:
            lost = "connection lost during the run"
            host.failed.append(lost)
            host.errors.append(lost)
        else:
            host.reached = False


def _controller_action(action: object) -> bool:
    if not isinstance(action, str):
        return False
    return action.rsplit(".", 1)[-1] in CONTROLLER_ACTIONS


def _path_with_this_python() -> str:
    """$PATH with this Python's bin directory first: the ansible-playbook installed with
    vcops is the one ansible-runner starts."""
    here = str(Path(sys.executable).parent)
    return os.pathsep.join([here, *(p for p in os.environ.get("PATH", "").split(os.pathsep) if p)])


def run_playbook(
    document: dict[str, JsonValue],
    names: list[str],
    *,
    playbook: Path,
    check: bool,
    forks: int,
    envvars: dict[str, str],
    mask: Masker = keep_text,
    progress: Progress = QUIET,
) -> tuple[list[AnsibleHost], float]:
    """Run ``playbook`` on the hosts of the inventory ``document`` with ansible-runner
    (``progress`` hears of each task and each host's end as they come).

    ``envvars`` is added to this process's environment for the run; nothing is left
    behind (the runner's private directory is a temporary one). Each diff is rendered
    from its sides after ``mask``.

    Raises:
        CommandError: ansible-playbook could not start or ended without results.
    """
    import ansible_runner

    events: list[object] = []
    live = EventProgress(names, progress)

    def keep(event: dict[str, object]) -> bool:
        events.append(event)
        live.feed(event)
        return False  # nothing written to the artifacts directory

    with tempfile.TemporaryDirectory(prefix="vcops-ansible-") as tmp:
        inv_file = Path(tmp) / "inventory.yml"
        inv_file.write_text(
            "# Ansible inventory written by vcops for one run; do not edit.\n"
            + yaml.safe_dump(document, sort_keys=False, width=200)
        )
        started = time.monotonic()
        try:
            runner = ansible_runner.run(
                private_data_dir=tmp,
                playbook=str(playbook),
                inventory=str(inv_file),
                cmdline="--check --diff" if check else None,
                forks=max(1, forks),
                envvars={**envvars, "PATH": _path_with_this_python()},
                event_handler=keep,
                quiet=True,
                suppress_env_files=True,
                suppress_output_file=True,
                timeout=RUN_TIMEOUT,
            )
        except Exception as exc:  # ansible-runner raises its own and OS errors
            raise CommandError(f"ansible-playbook could not run ({exc}); reinstall vcops") from exc
        seconds = time.monotonic() - started
        live.finish()
    if not any(isinstance(e, Mapping) and e.get("event") == "playbook_on_stats" for e in events):
        last = [
            _text(e.get("stdout"), 300).strip()
            for e in events
            if isinstance(e, Mapping) and _text(e.get("stdout"), 300).strip()
        ][-1:] or [f"status {runner.status}"]
        raise CommandError(
            f"ansible-playbook exited {runner.rc} without results: {last[0]}; "
            f"run `ansible-playbook --syntax-check {playbook}`"
        )
    return parse_events(events, names, mask), seconds
