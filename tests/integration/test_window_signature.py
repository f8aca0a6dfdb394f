"""Deciding without the controller's shell: `vcops window payload` prints the bytes, the
member signs them with `ssh-keygen -Y sign` (here a subprocess, as on their laptop), and
`vcops window approve|reject --signature FILE --member NAME` records it. Every rule of
the --key flow holds, each refusal checked through the CLI; the approval-needed mail
carries the payloads, and one signed from the mail is recorded."""

from __future__ import annotations

import json
import sqlite3
import subprocess
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.integration import test_window_approval as base
from tests.integration.smtp_helpers import PASSWORD, free_port, make_cert, smtp_toml, start_server
from vcops.config import load_config
from vcops.decisions import mail_event
from vcops.inventory import load_inventory
from vcops.store import open_store
from vcops.window.store import load_window

env = base.env  # the fixture: a board of three, windows W-A (erik asks), W-B, W-PAST
show, vcops = base.show, base.vcops


def payload(
    root: Path, wid: str, member: str, decision: str = "approve", comment: str = ""
) -> Path:
    out = root / f"{wid}-{decision}-{member}.txt"
    args = ["window", "payload", wid, "--decision", decision, "--member", member, "-o", str(out)]
    proc = vcops(root, *args, *(["--comment", comment] if comment else []))
    assert proc.returncode == 0, proc.stderr
    assert "ssh-keygen -Y sign -n vcops-window" in proc.stderr
    return out


def sign(root: Path, key: str, file: Path, namespace: str = "vcops-window") -> Path:
    """What the member runs on their own machine."""
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-Y",
            "sign",
            "-n",
            namespace,
            "-f",
            str(root / "keys" / key),
            str(file),
        ],
        check=True,
        capture_output=True,
    )
    return file.with_name(file.name + ".sig")


def record(
    root: Path, wid: str, sig: Path, member: str, *extra: str
) -> subprocess.CompletedProcess[str]:
    decision = "reject" if "--reason" in extra else "approve"
    return vcops(root, "window", decision, wid, "--signature", str(sig), "--member", member, *extra)


def test_payload_is_the_exact_bytes_and_stdout_matches_the_file(env: Path) -> None:
    proc = vcops(env, "window", "payload", "W-B", "--decision", "approve", "--member", "dana")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0] == "vcops-window-decision-v2"
    assert "window: W-B" in lines and "decision: approve" in lines and "member: dana" in lines
    assert any(line.startswith("terms-sha256: ") for line in lines)
    unknown = vcops(env, "window", "payload", "W-B", "--decision", "approve", "--member", "zed")
    assert unknown.returncode == 1 and "'zed' is not on the change board" in unknown.stderr
    assert "Traceback" not in unknown.stderr


def test_two_members_sign_elsewhere_and_reach_quorum(env: Path) -> None:
    first = record(env, "W-B", sign(env, "dana", payload(env, "W-B", "dana")), "dana")
    assert first.returncode == 0, first.stderr
    assert "approvals 1/2; state pending" in first.stdout
    with_comment = payload(env, "W-B", "fatima", comment="checked the plan")
    second = record(
        env, "W-B", sign(env, "fatima", with_comment), "fatima", "--comment", "checked the plan"
    )
    assert second.returncode == 0, second.stderr
    data = show(env, "W-B")
    assert data["state"] == "approved"
    assert [(a["member"], a["valid"]) for a in data["approvals"]] == [
        ("dana", True),
        ("fatima", True),
    ]  # type: ignore[index, union-attr]


def test_a_key_not_on_the_board_is_refused(env: Path) -> None:
    proc = record(env, "W-B", sign(env, "mallory", payload(env, "W-B", "dana")), "dana")
    assert proc.returncode == 1
    assert "made by a key that is not on the change board (SHA256:" in proc.stderr
    assert show(env, "W-B")["approvals"] == []


def test_another_members_key_is_refused(env: Path) -> None:
    proc = record(env, "W-B", sign(env, "fatima", payload(env, "W-B", "dana")), "dana")
    assert proc.returncode == 1 and "made with fatima's key, not dana's" in proc.stderr


def test_the_requester_cannot_approve_their_own_window(env: Path) -> None:
    proc = record(env, "W-A", sign(env, "erik", payload(env, "W-A", "erik")), "erik")
    assert proc.returncode == 1 and "erik requested window W-A and cannot approve" in proc.stderr


def test_no_decision_after_the_start(env: Path) -> None:
    proc = record(env, "W-PAST", sign(env, "dana", payload(env, "W-PAST", "dana")), "dana")
    assert proc.returncode == 1 and "decisions must come before the start" in proc.stderr


def test_once_per_member(env: Path) -> None:
    assert (
        record(env, "W-B", sign(env, "dana", payload(env, "W-B", "dana")), "dana").returncode == 0
    )
    again_file = payload(env, "W-B", "dana")
    again_file.with_name(again_file.name + ".sig").unlink()
    again = record(env, "W-B", sign(env, "dana", again_file), "dana")
    assert again.returncode == 1 and "dana already recorded approve on W-B" in again.stderr


def test_a_replayed_signature_is_refused(env: Path) -> None:
    sig = sign(env, "dana", payload(env, "W-A", "dana"))
    assert record(env, "W-A", sig, "dana").returncode == 0
    payload(env, "W-B", "dana")  # a payload for W-B exists, but this signature is W-A's
    proc = record(env, "W-B", sig, "dana")
    assert proc.returncode == 1
    assert "this signature was already recorded (dana on window W-A)" in proc.stderr
    assert show(env, "W-B")["approvals"] == []


def test_a_signature_for_another_window_never_verifies(env: Path) -> None:
    signed_for_a = sign(env, "dana", payload(env, "W-A", "dana"))
    payload(env, "W-B", "dana")
    proc = record(env, "W-B", signed_for_a, "dana")
    assert proc.returncode == 1 and "does not verify for window W-B" in proc.stderr


def test_bound_to_every_term_moving_the_start_voids_the_signature(env: Path) -> None:
    sig = sign(env, "dana", payload(env, "W-B", "dana"))
    with sqlite3.connect(env / ".vcops" / "vcops.db") as conn:
        data = json.loads(conn.execute("SELECT data FROM windows WHERE id='W-B'").fetchone()[0])
        data["start"] = (datetime.fromisoformat(data["start"]) + timedelta(hours=1)).isoformat()
        conn.execute("UPDATE windows SET data=? WHERE id='W-B'", (json.dumps(data),))
    proc = record(env, "W-B", sig, "dana")
    assert proc.returncode == 1 and "a term changed since the payload was issued" in proc.stderr


def test_bound_to_the_comment_and_the_decision(env: Path) -> None:
    sig = sign(env, "dana", payload(env, "W-B", "dana", comment="fine"))
    other = record(env, "W-B", sig, "dana", "--comment", "something else")
    assert (
        other.returncode == 1
        and "no payload was issued for dana to approve W-B with this comment" in other.stderr
    )
    as_reject = record(env, "W-B", sig, "dana", "--reason", "fine")
    assert (
        as_reject.returncode == 1 and "no payload was issued for dana to reject" in as_reject.stderr
    )


def test_a_signature_in_another_namespace_is_refused(env: Path) -> None:
    proc = record(
        env, "W-B", sign(env, "dana", payload(env, "W-B", "dana"), namespace="git"), "dana"
    )
    assert proc.returncode == 1 and "namespace 'git'; sign with -n vcops-window" in proc.stderr


def test_garbage_is_one_readable_line(env: Path) -> None:
    bad = env / "bad.sig"
    bad.write_text("hello")
    proc = record(env, "W-B", bad, "dana")
    assert proc.returncode == 1 and "not an SSH signature" in proc.stderr
    assert "Traceback" not in proc.stderr
    neither = vcops(env, "window", "approve", "W-B", "--signature", str(bad))
    assert neither.returncode == 2 and "--signature needs --member" in neither.stderr


def test_a_signed_rejection_rejects_for_good(env: Path) -> None:
    sig = sign(
        env, "fatima", payload(env, "W-B", "fatima", "reject", comment="not before the audit")
    )
    proc = record(env, "W-B", sig, "fatima", "--reason", "not before the audit")
    assert proc.returncode == 0, proc.stderr
    assert show(env, "W-B")["state"] == "rejected"


def test_the_approval_mail_carries_payloads_that_sign_and_record(
    env: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("VCOPS_TEST_SIG_SMTP_PASSWORD", PASSWORD)
    cert = make_cert(tmp_path)
    port = free_port()
    (env / "vcops.toml").write_text(
        smtp_toml(port, cert[0], "VCOPS_TEST_SIG_SMTP_PASSWORD")
        + '[web]\nbase_url = "https://vcops.example.net"\n'
    )
    cfg = load_config(env / "vcops.toml")
    inv = load_inventory(env / "inventory")
    store = open_store(f"sqlite:///{env / '.vcops' / 'vcops.db'}", env / ".vcops")
    controller, handler = start_server(port, cert)
    try:
        [delivery] = mail_event(
            cfg, inv, store, load_window(store, "W-A"), "approval-needed", now=datetime.now(UTC)
        )
    finally:
        controller.stop()
    assert delivery.ok, delivery
    [msg] = handler.messages
    assert isinstance(msg, EmailMessage)
    files = {p.get_filename(): p.get_content() for p in msg.iter_attachments()}
    # erik asked for W-A: payloads for dana and fatima only, one per decision.
    assert sorted(f for f in files if f and f.endswith(".txt")) == [
        "W-A-approve-dana.txt", "W-A-approve-fatima.txt", "W-A-reject-dana.txt", "W-A-reject-fatima.txt",
    ]  # fmt: skip
    text = msg.get_body(preferencelist=("plain",)).get_content()  # type: ignore[union-attr]
    assert "ssh-keygen -Y sign -n vcops-window -f ~/.ssh/id_ed25519 PAYLOAD.txt" in text
    assert "window approve W-A --signature PAYLOAD.txt.sig --member NAME" in text
    assert "https://vcops.example.net/windows/W-A" in text  # the window page, with [web] base_url
    laptop = tmp_path / "laptop"
    laptop.mkdir()
    attached = laptop / "W-A-approve-dana.txt"
    attached.write_text(files["W-A-approve-dana.txt"])
    proc = record(env, "W-A", sign(env, "dana", attached), "dana")
    assert proc.returncode == 0, proc.stderr
    assert [a["valid"] for a in show(env, "W-A")["approvals"]] == [True]  # type: ignore[union-attr, index]
