"""Window steps as data (pure), where the runner sends them, and what a site worker
refuses before it reaches any host (no SSH, no broker: the worker task runs in this
process with a closed loopback port as its broker)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from tests.notify_data import NOTIFY_INVENTORY, inventory, make_window
from vcops.inventory.models import Server
from vcops.snapshot.gitstore import SnapshotRepo
from vcops.snapshot.keys import key_id, load_or_create_key
from vcops.snapshot.take import Remote, SnapshotContext
from vcops.store import open_store
from vcops.window import remote, run_base
from vcops.window import sites as window_sites
from vcops.window.model import PackageChange
from vcops.window.progress import HostRecord
from vcops.window.run_base import BatchHost, RunContext, RunnerBase
from vcops.window.sites import Said, WindowSites
from vcops.workers import WorkerContext, _Serving, inventory_fingerprint
from vcops.workers_apply import _push
from vcops.workers_restore import _read as restore_read
from vcops.workers_restore import window_restore
from vcops.workers_seal import CLOCK_SKEW, once_ttl, seal
from vcops.workers_window import _read, window_steps

PKG = PackageChange(package="openssl", current="3.0.14-1", target="3.0.15-1", security=True)


def test_each_step_is_built_from_data_with_its_inputs_checked_again() -> None:
    assert remote.Step(kind="precheck").script(["kamailio"]) == remote.precheck_script(["kamailio"])
    assert remote.Step(kind="drain").script(["asterisk"]) == remote.drain_script(["asterisk"])
    assert remote.Step(kind="gate").script([]) == remote.gate_script()
    assert remote.Step(kind="reboot").script([]) == remote.REBOOT_SCRIPT
    install = remote.Step(kind="install", packages=[PKG]).script([])
    assert install is not None and "openssl=3.0.15-1" in install
    start = remote.Step(kind="start", units=["kamailio.service", "x;reboot.service"]).script([])
    assert start is not None and "kamailio.service" in start and "reboot" not in start
    assert remote.Step(kind="sip", sip_port=5080).script(["kamailio"]) is None
    bad = PackageChange(package="openssl", current="1", target="1;reboot", security=False)
    with pytest.raises(ValueError, match="not a Debian package"):
        remote.Step(kind="install", packages=[bad]).script([])
    for wrong in ({"kind": "shell"}, {"kind": "gate", "script": "reboot"}):
        with pytest.raises(ValidationError):
            remote.Step.model_validate(wrong)


def test_a_workers_answer_is_read_as_bounded_records() -> None:
    server = Server(
        name="h1", address="127.0.0.1", roles=["kamailio"], site="s1", environment="lab"
    )
    said = _read(server, {"lines": {"boot": [["b1"]], "active": [["a.service"]]}, "via": "w1"})
    assert said.answer is not None and remote.unit_state(said.answer).boot_id == "b1"
    assert said.via == "w1" and said.error == ""
    none = _read(server, {"lines": None, "error": "unreachable: no route"})
    assert none.answer is None and none.error == "unreachable: no route"
    huge = _read(server, {"lines": {"active": [["x" * 9000]] * 6000}, "sip": "yes"})
    assert huge.answer is not None and huge.sip is None
    assert len(huge.answer.all("active")) == 5000 and len(huge.answer.all("active")[0][0]) == 2000
    for junk in ({"lines": "say boot x"}, {"lines": {"boot": "b1"}}, {"lines": {"boot": [[1]]}}):
        with pytest.raises(ValueError):
            _read(server, junk)


@pytest.fixture
def worker(tmp_path: Path) -> tuple[WorkerContext, bytes]:
    state = tmp_path / "state"
    key = load_or_create_key(state, state / "snapshots")
    ctx = WorkerContext(
        site="lon1",
        inventory_root=NOTIFY_INVENTORY,
        broker_url="redis://127.0.0.1:1/0",
        node="lon1@w1",
        state_dir=state,
        snapshots_dir=state / "snapshots",
    )
    return ctx, key


def _task(key: bytes, steps: dict[str, object], **more: object) -> dict[str, object]:
    body = {
        "targets": list(steps),
        "inventory": inventory_fingerprint(NOTIFY_INVENTORY),
        "key": key_id(key),
        "steps": steps,
        "timeout": 60,
    }
    return seal(body | more, key, 600)


def _errors(ctx: WorkerContext, payload: dict[str, object]) -> dict[str, str]:
    _Serving.context = ctx
    try:
        answer = window_steps(payload)
    finally:
        _Serving.context = None
    results = answer["results"]
    assert isinstance(results, dict)
    return {n: r["lines"] is None and r["error"] for n, r in results.items()}


def test_a_worker_runs_only_sealed_steps_of_its_own_site(
    worker: tuple[WorkerContext, bytes],
) -> None:
    ctx, key = worker
    gate = {"kind": "gate"}
    forged = _task(key, {"kam-lon1-01": gate}) | {"steps": {"kam-lon1-01": {"kind": "reboot"}}}
    assert "seal does not verify" in _errors(ctx, forged)["kam-lon1-01"]
    expired = seal({k: v for k, v in _task(key, {"kam-lon1-01": gate}).items()}, key, -3600)
    assert "expired" in _errors(ctx, expired)["kam-lon1-01"]
    shell = _task(key, {"kam-lon1-01": {"kind": "shell", "script": "id"}})
    assert "unreadable window step" in _errors(ctx, shell)["kam-lon1-01"]
    other_site = _task(key, {"ast-man1-01": gate})
    assert "not a target of site lon1" in _errors(ctx, other_site)["ast-man1-01"]
    other_key = load_or_create_key(ctx.state_dir.parent / "x", ctx.state_dir.parent / "x" / "s")  # type: ignore[union-attr]
    assert (
        "masking key differs"
        in _errors(ctx, _task(other_key, {"kam-lon1-01": gate}))["kam-lon1-01"]
    )


def test_the_runner_sends_a_routed_hosts_steps_to_its_site_and_asks_the_rest_here(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    inv = inventory()
    sent: list[tuple[list[str], dict[str, remote.Step]]] = []
    here: list[list[str]] = []

    def on_site(servers: list[Server], steps: dict[str, remote.Step], _t: float) -> dict[str, Said]:
        sent.append(([s.name for s in servers], steps))
        return {s.name: Said(remote.Answer({"boot": [["b2"]]}), via="lon1@w1") for s in servers}

    def from_here(
        _inv: object, servers: list[Server], steps: dict[str, remote.Step], **_kw: object
    ) -> dict[str, Said]:
        here.append([s.name for s in servers])
        return {s.name: Said(remote.Answer({"boot": [["b1"]]})) for s in servers}

    monkeypatch.setattr(window_sites, "run_here", from_here)
    sites = WindowSites(
        routes=lambda s: s.site == "lon1",
        steps=on_site,
        snapshot=Remote(routes=lambda s: s.site == "lon1", take=lambda _s, _o: {}),
        apply=None,  # type: ignore[arg-type]  # not reached here
        restore=None,  # type: ignore[arg-type]
        push=None,  # type: ignore[arg-type]
    )
    ctx = RunContext(
        inventory=inv,
        store=open_store(f"sqlite:///{tmp_path / 'v.db'}", tmp_path),
        snapshots=SnapshotContext(inventory=inv, repo=SnapshotRepo(tmp_path / "s"), key=b"k"),
        state_dir=tmp_path,
        now=lambda: make_window().start,
        sites=sites,
    )
    runner = RunnerBase(ctx, make_window(["kam-lon1-01", "ast-man1-01"]), None)
    hosts = []
    for name in ("kam-lon1-01", "ast-man1-01"):
        server = next(s for s in inv.servers if s.name == name)
        hosts.append(
            BatchHost(
                server=server,
                plan=next(p for p in runner.window.plan.hosts if p.target == name),
                settings=remote.host_settings(server, {}),
                record=HostRecord(target=name),
                target=run_base.SshTarget.from_inventory(inv, server),
            )
        )
    answers = runner.ask(hosts, lambda _h: remote.Step(kind="gate"))
    assert sent == [(["kam-lon1-01"], {"kam-lon1-01": remote.Step(kind="gate")})]
    assert here == [["ast-man1-01"]]
    boots = {h.record.target: remote.unit_state(a).boot_id for h, a, _e in answers if a}
    assert boots == {"kam-lon1-01": "b2", "ast-man1-01": "b1"}
    assert [h.via for h in hosts] == ["lon1@w1", ""]
    assert runner.sip_answers(hosts[0]) is False  # the site's answer says no SIP reply
    assert sent[-1][1] == {"kam-lon1-01": remote.Step(kind="sip", sip_port=5060)}


def test_a_step_or_rollback_seal_ends_before_a_dead_workers_copy_is_redelivered() -> None:
    assert once_ttl(900, 1200) == 900  # the controller's wait
    assert once_ttl(900, 600) == 600 - CLOCK_SKEW - 5  # before redelivery, skew allowed
    assert once_ttl(60, 6) == 1


def test_a_workers_restore_answer_is_checked() -> None:
    server = Server(
        name="h1", address="127.0.0.1", roles=["kamailio"], site="s1", environment="lab"
    )
    report = {"host": "h1", "kind": "server", "rev": "ab", "check": False, "status": "restored"}
    snap = {"name": "h1", "kind": "server", "via": "ssh", "files": {"files/etc/x": "y\n"}}
    done = restore_read(
        server, {"report": report, "kept": {"before": {"snapshot": snap, "reason": "r"}}}
    )
    assert done.report is not None and done.report.status == "restored"
    assert done.kept["before"][0] is not None and done.kept["before"][1] == "r"
    stopped = restore_read(server, {"report": None, "kept": {}, "error": "unreachable"})
    assert stopped.report is None and stopped.error == "unreachable"
    for junk in (
        {"report": report | {"host": "h2"}},
        {"report": report, "kept": {"after": {"snapshot": snap | {"name": "h2"}}}},
        {"report": report, "kept": {"after": {"snapshot": snap | {"files": {"../h2/x": "y"}}}}},
    ):
        with pytest.raises(ValueError):
            restore_read(server, junk)


def test_a_worker_restores_only_for_a_sealed_task(worker: tuple[WorkerContext, bytes]) -> None:
    ctx, key = worker
    body = {
        "targets": ["kam-lon1-01"],
        "inventory": inventory_fingerprint(NOTIFY_INVENTORY),
        "key": key_id(key),
        "rev": "0" * 40,
        "files": {"files/etc/kamailio/kamailio.cfg": "bGlzdGVuPTEK"},
        "now": "2026-11-30T10:00:00+00:00",
    }
    _Serving.context = ctx
    try:
        forged = window_restore(body | {"seal": "0" * 64, "expires": 2_000_000_000})
        garbled = window_restore(seal(body | {"files": {"f": "not base64!"}}, key, 600))
    finally:
        _Serving.context = None
    for answer, why in ((forged, "seal does not verify"), (garbled, "unreadable restore task")):
        item = answer["results"]["kam-lon1-01"]  # type: ignore[index]
        assert item["report"] is None and why in item["error"], item


def test_a_plan_steps_records_give_back_apts_list_and_the_reboot_flag() -> None:
    line = "openssl/bookworm-security 3.0.15-1~deb12u1 amd64 [upgradable from: 3.0.14-1~deb12u2]"
    verb, *args = f"upgradable {line}".split(" ", 3)  # as parse_answer splits a record
    answer = remote.Answer({"listed": [["0"]], verb: [args], "reboot-required": [["yes"]]})
    text, reboot = remote.plan_answer(answer)
    assert text == line and reboot is True
    assert remote.plan_answer(remote.Answer({"listed": [["1"]]})) == (None, False)
    assert remote.plan_answer(remote.Answer({})) == (None, False)  # cut off before apt ran
    assert remote.Step(kind="plan").script([]) == remote.PLAN_SCRIPT


def test_a_workers_push_touches_only_devices_with_approved_lines() -> None:
    inv = inventory()
    server = next(s for s in inv.servers if s.name == "kam-lon1-01")
    done = _push(inv, [server], b"k", {"kam-lon1-01": ["ip ssh version 2"]})
    assert [(h.name, h.kind, h.status) for h in done] == [("kam-lon1-01", "server", "failed")]
    assert done[0].reason == "not touched: no approved lines for it in the task"
