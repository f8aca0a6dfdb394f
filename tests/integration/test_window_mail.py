"""Window notifications and the customer notice against a real SMTP server (aiosmtpd on
127.0.0.1, STARTTLS with a self-signed certificate, AUTH): what arrives (subject, text and
HTML, the JSON attachment), what is audited; the outbox keeps mail while the server is
down and delivers it exactly once; no recipients is a skip, not an error."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.integration.smtp_helpers import (
    PASSWORD,
    free_port,
    make_cert,
    smtp_toml,
    start_server,
)
from tests.notify_data import START, inventory, make_window
from vcops.config import Config, load_config
from vcops.report.notify import notify_customers, notify_window
from vcops.report.window_mail import HostLine
from vcops.store import Store, open_store

PASSWORD_ENV = "VCOPS_TEST_NOTIFY_SMTP_PASSWORD"
EARLY = START - timedelta(days=5)


@pytest.fixture(scope="module")
def cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_cert(tmp_path_factory.mktemp("tls"))


class Setup:
    def __init__(self, root: Path, port: int, cert: tuple[Path, Path]) -> None:
        self.root, self.port, self.cert = root, port, cert
        self.store: Store = open_store(f"sqlite:///{root / '.vcops' / 'vcops.db'}", root / ".vcops")

    def config(self, extra: str = "") -> Config:
        path = self.root / "vcops.toml"
        store = '[store]\nstate_dir = ".vcops"\n'  # the state this Setup opened
        path.write_text(store + smtp_toml(self.port, self.cert[0], PASSWORD_ENV) + extra)
        return load_config(path)

    def queued(self) -> list[Path]:
        return sorted((self.root / ".vcops" / "outbox" / "queued").glob("*.eml"))

    def audit(self, action: str) -> list[dict[str, object]]:
        return [e.detail for e in self.store.audit_entries(action=action)]


RECIPIENTS = (
    '[recipients]\nops = ["noc@example.net"]\ncustomers = ["notices@customers.example.net"]\n'
    '[customer_notice]\noperator = "Example Voice Ltd"\ntimezone = "Europe/London"\n'
    'contact = "support@example.net"\n'
)


@pytest.fixture
def setup(
    tmp_path: Path, cert: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Setup]:
    monkeypatch.setenv(PASSWORD_ENV, PASSWORD)
    yield Setup(tmp_path, free_port(), cert)


def body(msg: EmailMessage, kind: str) -> str:
    part = msg.get_body(preferencelist=(kind,))
    assert part is not None
    return str(part.get_content())


def test_approval_needed_reaches_the_board_over_starttls(setup: Setup) -> None:
    cfg = setup.config(RECIPIENTS)
    window = make_window()
    controller, handler = start_server(setup.port, setup.cert)
    try:
        d = notify_window(
            cfg,
            inventory(),
            setup.store,
            window,
            "approval-needed",
            quorum=2,
            approvals=0,
            now=EARLY,
        )
    finally:
        controller.stop()
    subject = (
        "vcops window W-20261201-ab12: approval needed (0/2) - December security updates [CHG-1042]"
    )
    assert (d.event, d.to, d.subject, d.sent, d.errors, d.skipped_reason) == (
        "approval-needed",
        ("erik@example.net", "fatima@example.net"),  # not dana: she asked for it
        subject,
        1,
        (),
        "",
    )
    assert d.ok
    [msg] = handler.messages
    assert msg["Subject"] == subject
    assert msg["To"] == "erik@example.net, fatima@example.net"
    assert msg["From"] == "vcops@ops.example.net"
    text, html = body(msg, "plain"), body(msg, "html")
    command = (
        f"vcops -c {setup.root / 'vcops.toml'} -i {inventory().root} "
        "window approve W-20261201-ab12 --key ~/.ssh/id_ed25519"
    )
    assert command in text and command in html
    assert window.plan_hash in text and window.plan_hash in html
    assert "openssl 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1 (security)" in text
    attachments = {p.get_filename(): p for p in msg.iter_attachments()}
    data = json.loads(attachments["window-W-20261201-ab12.json"].get_content())
    assert data["window"]["plan"]["hosts"][0]["target"] == "kam-lon1-01"
    assert data["approvals"] == 0 and data["quorum"] == 2
    assert PASSWORD not in msg.as_string()
    [entry] = setup.audit("notify.window")
    assert entry == {
        "event": "approval-needed",
        "to": ["erik@example.net", "fatima@example.net"],
        "subject": subject,
        "sent": 1,
        "errors": [],
    }
    assert setup.queued() == []


def test_customer_notice_reaches_customers_and_records_short_notice(setup: Setup) -> None:
    cfg = setup.config(RECIPIENTS)
    window = make_window(["kam-lon1-01", "ast-man1-01", "mon-lon1-01"])
    controller, handler = start_server(setup.port, setup.cert)
    try:
        early = notify_customers(cfg, inventory(), setup.store, window, now=EARLY)
        late = notify_customers(
            cfg, inventory(), setup.store, window, now=START - timedelta(hours=24)
        )
    finally:
        controller.stop()
    assert early is not None and late is not None
    assert (early.sent, early.errors, early.warnings) == (1, (), ())
    assert early.to == ("notices@customers.example.net",)
    assert late.sent == 1 and len(late.warnings) == 1
    assert "customers need 72 hours' notice" in late.warnings[0]
    assert len(handler.messages) == 2
    msg = handler.messages[0]
    assert msg["Subject"] == (
        "Example Voice Ltd: planned maintenance 2026-12-01 22:00 GMT to 2026-12-02 00:00 GMT"
        " (ref CHG-1042)"
    )
    text, html = body(msg, "plain"), body(msg, "html")
    for part in (text, html):
        assert "Tuesday 1 December 2026, 22:00 GMT (UTC+00:00)" in part
        assert "SIP signalling" in part and "Hosted PBX" in part
        for internal in ("kam-lon1-01", "ast-man1-01", "mon-lon1-01", "192.0.2.", "openssl"):
            assert internal not in part
    assert not list(msg.iter_attachments())
    first, second = setup.audit("notify.customers")
    assert first["lead_time_problem"] is None and first["sent"] == 1
    assert second["lead_time_problem"] == late.warnings[0]
    assert second["to"] == ["notices@customers.example.net"]


def test_server_down_keeps_the_mail_queued_then_delivers_it_exactly_once(setup: Setup) -> None:
    cfg = setup.config(RECIPIENTS)
    window = make_window()
    hosts = [HostLine("kam-lon1-01", "done", "2 packages"), HostLine("ast-man1-01", "failed", "x")]
    down = notify_window(
        cfg,
        inventory(),
        setup.store,
        window,
        "halted",
        quorum=2,
        approvals=2,
        hosts=hosts,
        now=EARLY,
    )
    assert down.sent == 0 and not down.ok
    assert "unreachable" in down.errors[0] and "kept in" in down.errors[0]
    assert len(setup.queued()) == 1
    assert setup.audit("notify.window")[0]["errors"] == list(down.errors)
    controller, handler = start_server(setup.port, setup.cert)
    try:
        up = notify_window(
            cfg, inventory(), setup.store, window, "started", quorum=2, approvals=2, now=EARLY
        )
        again = notify_window(
            cfg,
            inventory(),
            setup.store,
            window,
            "finished",
            quorum=2,
            approvals=2,
            hosts=hosts,
            now=EARLY,
        )
    finally:
        controller.stop()
    assert (up.sent, up.errors) == (2, ())  # the halted mail kept from before, then this one
    assert (again.sent, again.errors) == (1, ())
    subjects = [str(m["Subject"]) for m in handler.messages]
    assert len(subjects) == 3 and len(set(subjects)) == 3
    assert subjects[0].startswith("vcops window W-20261201-ab12: HALTED: 1 failed (max errors 1)")
    halted = handler.messages[0]
    assert "ast-man1-01: failed - x" in body(halted, "plain")
    assert setup.queued() == []


def test_smtp_login_trouble_is_an_error_not_an_exception(
    setup: Setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    cfg = setup.config(RECIPIENTS)
    monkeypatch.delenv(PASSWORD_ENV)
    controller, handler = start_server(setup.port, setup.cert)
    try:
        d = notify_window(
            cfg,
            inventory(),
            setup.store,
            make_window(),
            "started",
            quorum=2,
            approvals=2,
            now=EARLY,
        )
    finally:
        controller.stop()
    assert d.sent == 0 and handler.messages == []
    assert f"${PASSWORD_ENV} is not" in d.errors[0] and "kept in" in d.errors[0]
    assert len(setup.queued()) == 1


def test_no_recipients_is_a_skip_with_a_reason(setup: Setup) -> None:
    cfg = setup.config()  # no [recipients] ops, no customers
    window = make_window(requester="ops")
    started = notify_window(
        cfg, inventory(), setup.store, window, "started", quorum=2, approvals=2, now=EARLY
    )
    assert started.skipped_reason == "no recipients for started: set [recipients] ops"
    assert (started.to, started.sent, started.errors, started.ok) == ((), 0, (), False)
    customers = notify_customers(cfg, inventory(), setup.store, window, now=EARLY)
    assert customers is not None
    assert customers.skipped_reason.startswith("no customer recipients")
    assert (
        notify_customers(cfg, inventory(), setup.store, make_window(["mon-lon1-01"]), now=EARLY)
        is None
    )
    assert setup.queued() == []
    assert setup.audit("notify.window")[0]["skipped"] == started.skipped_reason
    assert setup.audit("notify.customers")[0]["skipped"] == customers.skipped_reason
