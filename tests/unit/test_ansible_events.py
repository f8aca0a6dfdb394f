"""Ansible results as ansible-runner events: a real playbook on real (local and
unreachable loopback) hosts, and the pure reader on events shaped like the real ones."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from vcops.enforce.ansible_events import parse_events, render_diff, run_playbook
from vcops.enforce.apply import diff_masker
from vcops.errors import CommandError
from vcops.snapshot.mask import marker_for

PLAYBOOK = """
- name: Events
  hosts: all
  gather_facts: false
  tasks:
    - name: Write the config
      ansible.builtin.copy:
        dest: "{{ out }}/sshd.conf"
        content: "PasswordAuthentication no\\n"
        mode: "0600"
    - name: Fail on purpose
      ansible.builtin.command: /bin/sh -c 'echo boom >&2; exit 3'
      changed_when: false
      when: inventory_hostname == 'web-02'
    - name: A failure that is ignored
      ansible.builtin.command: /bin/false
      changed_when: false
      ignore_errors: true
"""


def _inventory(tmp_path: Path) -> dict[str, object]:
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable}
    hosts: dict[str, object] = {}
    for name in ("web-01", "web-02"):
        out = tmp_path / name
        out.mkdir()
        (out / "sshd.conf").write_text("PasswordAuthentication yes\n")
        hosts[name] = {**local, "out": str(out)}
    hosts["web-03"] = {  # nothing listens on loopback port 1: refused at once
        "ansible_host": "127.0.0.1",
        "ansible_port": 1,
        "ansible_ssh_common_args": "-o StrictHostKeyChecking=yes -o UserKnownHostsFile=/dev/null",
        "out": str(tmp_path),
    }
    return {"all": {"hosts": hosts}}


def _run(tmp_path: Path, check: bool) -> list[object]:
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAYBOOK)
    hosts, seconds = run_playbook(
        _inventory(tmp_path),  # type: ignore[arg-type]
        ["web-01", "web-02", "web-03"],
        playbook=playbook,
        check=check,
        forks=3,
        envvars={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "local")},
    )
    assert seconds > 0
    return hosts  # type: ignore[return-value]


def test_a_real_run_reads_changed_failed_and_unreachable_hosts(tmp_path: Path) -> None:
    web1, web2, web3 = _run(tmp_path, check=False)
    assert web1.reached and web1.changed == ["Write the config"] and web1.failed == []  # type: ignore[attr-defined]
    assert web1.recap["changed"] == 1 and web1.recap["ignored"] == 1  # type: ignore[attr-defined]
    assert web2.failed == ["Fail on purpose"] and "boom" in web2.errors[0]  # type: ignore[attr-defined]
    assert not web3.reached and "port 1" in web3.errors[0]  # type: ignore[attr-defined]
    assert (tmp_path / "web-01" / "sshd.conf").read_text() == "PasswordAuthentication no\n"


def test_check_mode_changes_nothing_and_gives_the_diff(tmp_path: Path) -> None:
    web1, _web2, _web3 = _run(tmp_path, check=True)
    assert web1.changed == ["Write the config"]  # type: ignore[attr-defined]
    diff = web1.diffs["Write the config"]  # type: ignore[attr-defined]
    assert "-PasswordAuthentication yes\n" in diff and "+PasswordAuthentication no\n" in diff
    assert (tmp_path / "web-01" / "sshd.conf").read_text() == "PasswordAuthentication yes\n"


def test_a_host_refused_after_controller_only_tasks_is_unreachable(tmp_path: Path) -> None:
    """The roles start with tasks Ansible runs on the controller alone (an include,
    argument validation, set_fact): their ``ok`` results must not make a host whose
    first connection then fails look reached and "lost during the run"."""
    playbook = tmp_path / "play.yml"
    playbook.write_text(
        "- hosts: all\n  gather_facts: false\n  tasks:\n"
        "    - name: Decide on the controller\n      ansible.builtin.set_fact: {x: 1}\n"
        "    - name: Say it\n      ansible.builtin.debug: {var: x}\n"
        "    - name: Touch the host\n      ansible.builtin.command: /bin/true\n"
        "      changed_when: false\n"
    )
    web1, web3 = run_playbook(
        {"all": {"hosts": {k: v for k, v in _inventory(tmp_path)["all"]["hosts"].items()  # type: ignore[index]
                           if k != "web-02"}}},
        ["web-01", "web-03"], playbook=playbook, check=False, forks=2,
        envvars={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "local")},
    )[0]  # fmt: skip
    assert web1.reached and web1.contacted and web1.failed == []
    assert web3.recap["ok"] == 2 and web3.recap["unreachable"] == 1  # the controller's two
    assert not web3.reached and not web3.contacted and web3.failed == [], web3
    assert "port 1" in web3.errors[0]


def test_a_playbook_that_cannot_run_is_one_clear_error(tmp_path: Path) -> None:
    playbook = tmp_path / "broken.yml"
    playbook.write_text("- hosts: all\n  tasks: [{name: x, no_such_module: {}}]\n")
    with pytest.raises(CommandError, match="without results"):
        run_playbook(
            {"all": {"hosts": {"web-01": {"ansible_connection": "local"}}}},
            ["web-01"],
            playbook=playbook,
            check=False,
            forks=1,
            envvars={"ANSIBLE_LOCAL_TEMP": str(tmp_path / "local")},
        )


def _event(kind: str, host: str, task: str, res: object, **extra: object) -> dict[str, object]:
    data = {"host": host, "role": "vcops_firewall", "task": task, "res": res, **extra}
    return {"event": kind, "event_data": data}


def test_a_host_lost_mid_run_is_failed_not_changed() -> None:
    events: list[object] = [
        _event("runner_on_ok", "web-01", "Install /etc/nftables.conf", {"changed": True}),
        _event("runner_on_unreachable", "web-01", "Load", {"msg": "Connection timed out"}),
        {"event": "playbook_on_stats", "event_data": {"ok": {"web-01": 5}, "dark": {"web-01": 1}}},
    ]
    (host,) = parse_events(events, ["web-01"])
    assert host.reached and host.failed == ["connection lost during the run"]
    assert "Connection timed out" in host.errors[0]


def test_hostile_events_are_skipped_or_bounded() -> None:
    events: list[object] = [
        "not a dict",
        {"event": "runner_on_ok", "event_data": "nope"},
        _event("runner_on_ok", "other-host", "x", {"changed": True}),
        _event("runner_on_ok", "web-01", "t" * 10_000, {"changed": True, "diff": "x"}),
        _event("runner_on_failed", "web-01", "y", {"msg": "m" * 100_000}),
        {"event": "playbook_on_stats", "event_data": {"ok": {"web-01": "many"}}},
    ]
    (host,) = parse_events(events, ["web-01"])
    assert host.reached and len(host.changed[0]) < 500 and len(host.errors[0]) <= 600
    assert host.recap == {}


def test_render_diff_of_each_shape() -> None:
    assert render_diff({"before": "a\n", "after": "b\n", "after_header": "f"}).splitlines() == [
        "--- before",
        "+++ after: f",
        "@@ -1 +1 @@",
        "-a",
        "+b",
    ]
    assert render_diff([{"prepared": "pkg: install x"}]) == "pkg: install x\n"
    assert render_diff({"before": "same", "after": "same"}) == ""
    assert render_diff(None) == ""


def test_a_template_diff_shows_the_live_secret_masked() -> None:
    """Ansible's --diff carries the live file whole: each side goes through the masker
    (the snapshot rules of the file's path) before the diff is rendered."""
    live = "ListenAddress 0.0.0.0\n"
    xml = '<param name="password" value="ClueCon"/>\n'
    ref = '<param name="password" value="@@vcops-secret:freeswitch_event_socket@@"/>\n'
    path = "/etc/freeswitch/autoload_configs/event_socket.conf.xml"
    diff = {"before": xml + live, "after": ref + live, "before_header": path}
    events: list[object] = [
        _event("runner_on_ok", "fs-01", "event socket", {"changed": True, "diff": diff}),
    ]
    (host,) = parse_events(events, ["fs-01"], diff_masker(bytes(32)))
    text = host.diffs["vcops_firewall : event socket"]
    assert "ClueCon" not in text and marker_for(bytes(32), "ClueCon") in text
    assert "+" + ref in text and f"--- before: {path}" in text
    (plain,) = parse_events(events, ["fs-01"])  # no masker: as Ansible printed it
    assert "ClueCon" in plain.diffs["vcops_firewall : event socket"]
