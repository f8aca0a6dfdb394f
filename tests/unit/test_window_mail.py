"""Window mail and the customer maintenance notice: subjects per event, the approve and
reject commands, the plan, recipients, HTML escaping, the JSON attachment; the notice's
services, impact, time zones (DST), nothing internal in it; lead time; the config."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from pathlib import Path

import pytest

from tests.notify_data import START, inventory, make_window
from vcops.config import Config, CustomerNoticeConfig, RecipientsConfig, load_config
from vcops.errors import ConfigError, InventoryError
from vcops.report.window_mail import (
    IMPACT_INTERRUPTION,
    IMPACT_REDUNDANT,
    WINDOW_EVENTS,
    HostLine,
    Service,
    customer_notice_message,
    customer_services,
    notice_lead_problem,
    recipients_for,
    window_message,
)

HOSTS = [
    HostLine("kam-lon1-01", "done", "2 packages, no reboot"),
    HostLine("ast-man1-01", "rolled-back", "health gate: SIP OPTIONS unanswered"),
    HostLine("sbc-lon1-01", "skipped", "unhealthy peer"),
]


def parts(msg: EmailMessage) -> tuple[str, str]:
    text = msg.get_body(preferencelist=("plain",))
    html = msg.get_body(preferencelist=("html",))
    assert text is not None and html is not None
    return str(text.get_content()), str(html.get_content())


def message(event: str, **kw: object) -> EmailMessage:
    args: dict[str, object] = dict(
        sender="vcops@ops.example.net",
        to=["noc@example.net"],
        quorum=2,
        approvals=0,
    )
    window = kw.pop("window", None) or make_window()
    return window_message(event, window, **(args | kw))  # type: ignore[arg-type]


SUFFIX = " - December security updates [CHG-1042]"


@pytest.mark.parametrize(
    ("event", "kw", "subject"),
    [
        ("approval-needed", {}, "approval needed (0/2)"),
        ("approved", {"approvals": 2, "decided_by": "erik"}, "approved (2/2)"),
        (
            "rejected",
            {"decided_by": "erik", "reason": "clashes with a release"},
            "rejected by erik",
        ),
        ("started", {"hosts": HOSTS[:1]}, "started"),
        ("finished", {"hosts": [*HOSTS[:1]] * 4}, "finished: 4 done, 0 failed"),
        ("finished", {"hosts": HOSTS}, "finished: 1 done, 1 failed, 1 skipped"),
        ("halted", {"hosts": HOSTS[:2]}, "HALTED: 1 failed (max errors 1)"),
        (
            "halted",
            {"hosts": [HostLine("a", "failed", "x")], "window": make_window(max_errors="50%")},
            "HALTED: 1 failed (max errors 50% = 1)",
        ),
    ],
)
def test_subject_per_event(event: str, kw: dict[str, object], subject: str) -> None:
    msg = message(event, **kw)
    assert msg["Subject"] == f"vcops window W-20261201-ab12: {subject}{SUFFIX}"


def test_every_event_renders_both_parts_and_the_json_attachment() -> None:
    for event in WINDOW_EVENTS:
        msg = message(event, hosts=HOSTS, decided_by="erik", reason="no")
        text, html = parts(msg)
        assert "W-20261201-ab12" in text and "W-20261201-ab12" in html
        attachments = {p.get_filename(): p for p in msg.iter_attachments()}
        data = json.loads(attachments["window-W-20261201-ab12.json"].get_content())
        assert data["event"] == event
        assert data["window"]["plan_hash"] == make_window().plan_hash
        assert data["hosts"][1] == {
            "target": "ast-man1-01",
            "state": "rolled-back",
            "detail": "health gate: SIP OPTIONS unanswered",
        }
    with pytest.raises(ValueError, match="unknown window event"):
        message("exploded")


def test_approval_needed_has_the_commands_the_plan_its_hash_and_the_time_in_utc() -> None:
    window = make_window()
    text, html = parts(message("approval-needed", inventory_path="/srv/vcops/inventory"))
    for body in (text, html):
        assert (
            "vcops -i /srv/vcops/inventory window approve W-20261201-ab12 --key ~/.ssh/id_ed25519"
            in body
        )
        assert "2026-12-01 22:00 UTC to 2026-12-02 00:00 UTC" in body
        assert window.plan_hash in body
        assert "the requester (dana) cannot approve" in body
    assert 'vcops -i /srv/vcops/inventory window reject W-20261201-ab12 --reason "..."' in text
    assert (
        "vcops -i /srv/vcops/inventory window reject W-20261201-ab12 --reason &#34;...&#34;" in html
    )
    plan = text[text.index("PLAN (2 hosts)") :]
    assert "kam-lon1-01 (production, redundancy group kam-lon1): reboot only if" in plan
    assert "openssl 3.0.11-1~deb12u1 -> 3.0.15-1~deb12u1 (security)" in plan
    assert "kamailio 5.6.3-2 -> 5.6.3-2+deb12u1\n" in plan
    assert "ast-man1-01 (production): reboot (required now)" in plan
    assert "baseline: VC-SSH-001 PasswordAuthentication no" in plan
    assert "3.0.11-1~deb12u1 -&gt; 3.0.15-1~deb12u1" in html


def test_commands_without_an_inventory_path_and_with_paths_that_need_quoting() -> None:
    text, _ = parts(message("approval-needed"))
    assert "  vcops window approve W-20261201-ab12 --key ~/.ssh/id_ed25519\n" in text
    text, _ = parts(
        message("approval-needed", inventory_path="/srv/my inv", config_path="/etc/vcops.toml")
    )
    assert "vcops -c /etc/vcops.toml -i '/srv/my inv' window approve W-20261201-ab12 --key" in text


def test_events_after_approval_list_the_hosts_and_their_state() -> None:
    text, html = parts(message("halted", hosts=HOSTS))
    assert "ast-man1-01: rolled-back - health gate: SIP OPTIONS unanswered" in text
    assert "PLAN" not in text and "vcops window approve" not in text
    assert "<strong>rolled-back</strong>" in html
    text, _ = parts(message("rejected", decided_by="erik", reason="clashes with a release"))
    assert "REJECTED by erik: clashes with a release" in text


def test_html_escapes_the_title_and_the_subject_stays_one_line() -> None:
    window = make_window(title="<script>x</script>\nand more", change_id="CHG-1<b>")
    msg = message("approval-needed", window=window)
    text, html = parts(msg)
    assert msg["Subject"].endswith("- <script>x</script> and more [CHG-1<b>]")
    assert "<script>" not in html and "<b>" not in html
    assert "&lt;script&gt;x&lt;/script&gt;" in html and "CHG-1&lt;b&gt;" in html
    assert "<script>x</script>" in text  # text is not HTML


def test_an_unknown_host_state_is_shown_and_counted_nowhere() -> None:
    msg = message("finished", hosts=[*HOSTS[:1], HostLine("ast-man1-01", "draining", "")])
    assert msg["Subject"].startswith("vcops window W-20261201-ab12: finished: 1 done, 0 failed -")
    text, html = parts(msg)
    assert "ast-man1-01: draining\n" in text and "<strong>draining</strong>" in html


def config(**recipients: list[str]) -> Config:
    return Config(recipients=RecipientsConfig(**recipients))


@pytest.mark.parametrize(
    ("event", "requester", "recipients", "expected"),
    [
        ("approval-needed", "dana", {}, ["erik@example.net", "fatima@example.net"]),
        (
            "approval-needed",
            "ops",
            {},
            ["dana@example.net", "erik@example.net", "fatima@example.net"],
        ),
        (
            "approval-needed",
            "dana",
            {"board": ["cab@example.net", "CAB@example.net"], "ops": ["noc@example.net"]},
            ["cab@example.net"],
        ),
        (
            "approved",
            "dana",
            {"ops": ["noc@example.net", "dana@example.net"]},
            ["dana@example.net", "noc@example.net"],
        ),
        ("rejected", "ops", {"ops": ["noc@example.net"]}, ["noc@example.net"]),
        ("rejected", "erik", {}, ["erik@example.net"]),
        (
            "started",
            "dana",
            {"ops": ["noc@example.net"], "board": ["cab@example.net"]},
            ["noc@example.net"],
        ),
        (
            "finished",
            "dana",
            {"ops": ["noc@example.net", "sre@example.net"]},
            ["noc@example.net", "sre@example.net"],
        ),
        ("halted", "dana", {}, []),
    ],
)
def test_recipients(
    event: str, requester: str, recipients: dict[str, list[str]], expected: list[str]
) -> None:
    window = make_window(requester=requester)
    assert recipients_for(event, window, config(**recipients), inventory()) == expected  # type: ignore[arg-type]


# --- the customer notice -------------------------------------------------------------

NOTICE = CustomerNoticeConfig(
    operator="Example Voice Ltd", timezone="Europe/London", contact="support@example.net"
)


def notice(window: object, cfg: CustomerNoticeConfig = NOTICE) -> EmailMessage:
    msg = customer_notice_message(
        window,  # type: ignore[arg-type]
        inventory(),
        cfg,
        sender="noc@example.net",
        to=["customers@example.net"],
    )
    assert msg is not None
    return msg


@pytest.mark.parametrize(
    ("hosts", "expected"),
    [
        (
            ["sbc-lon1-01", "kam-lon1-01", "kam-lon1-02"],
            [
                Service("SIP signalling", ("London",), redundant=True),
                Service("SIP trunking / session border", ("London",), redundant=True),
            ],
        ),
        # one host of the service outside a redundancy group: interruption possible
        (
            ["ast-man1-01", "kam-lon1-01", "stg-kam-01"],
            [
                Service("SIP signalling", ("London",), redundant=True),
                Service("Hosted PBX", ("Manchester",), redundant=False),
            ],
        ),
        # a redundancy group of one is no redundancy
        (["fs-man1-01"], [Service("Conferencing and IVR", ("Manchester",), redundant=False)]),
        # customer_facing: false leaves rtpengine out, true takes a generic host in
        (
            ["rtp-man1-01", "mon-lon1-01", "portal-lon1-01"],
            [Service("Other customer-facing services", ("London",), redundant=False)],
        ),
        # gone from the inventory: announced rather than missed, without its name
        (["old-sbc-09"], [Service("Other customer-facing services", (), redundant=False)]),
        (["mon-lon1-01", "stg-kam-01", "rtp-man1-01"], []),
    ],
)
def test_customer_services(hosts: list[str], expected: list[Service]) -> None:
    assert customer_services(make_window(hosts), inventory()) == expected


def test_impact_follows_redundancy() -> None:
    assert Service("x", (), redundant=True).impact == IMPACT_REDUNDANT
    assert Service("x", (), redundant=False).impact == IMPACT_INTERRUPTION
    text, _ = parts(notice(make_window(["kam-lon1-01", "ast-man1-01"])))
    assert f"SIP signalling (London): {IMPACT_REDUNDANT}" in text
    assert f"Hosted PBX (Manchester): {IMPACT_INTERRUPTION}" in text


def test_no_notice_when_no_customer_facing_service_is_touched() -> None:
    for hosts in (["mon-lon1-01"], ["stg-kam-01"], ["rtp-man1-01"]):
        assert (
            customer_notice_message(
                make_window(hosts),
                inventory(),
                NOTICE,
                sender="n@example.net",
                to=["c@example.net"],
            )
            is None
        )


def test_a_customer_facing_var_that_is_not_a_boolean_is_an_inventory_error() -> None:
    inv = inventory()
    server = next(s for s in inv.servers if s.name == "mon-lon1-01")
    odd = inv.model_copy(
        update={
            "servers": [
                server.model_copy(update={"vars": {"customer_facing": "no"}}) if s is server else s
                for s in inv.servers
            ]
        }
    )
    with pytest.raises(InventoryError, match="server mon-lon1-01: customer_facing is 'no'"):
        customer_services(make_window(["mon-lon1-01"]), odd)


@pytest.mark.parametrize(
    ("start", "zone", "local_start", "local_end", "subject_times"),
    [
        # winter: GMT
        (
            datetime(2026, 12, 1, 22, 0, tzinfo=UTC),
            "Europe/London",
            "Tuesday 1 December 2026, 22:00 GMT (UTC+00:00)",
            "Wednesday 2 December 2026, 00:00 GMT (UTC+00:00)",
            "2026-12-01 22:00 GMT to 2026-12-02 00:00 GMT",
        ),
        # summer: BST, one hour ahead of UTC
        (
            datetime(2026, 7, 14, 22, 0, tzinfo=UTC),
            "Europe/London",
            "Tuesday 14 July 2026, 23:00 BST (UTC+01:00)",
            "Wednesday 15 July 2026, 01:00 BST (UTC+01:00)",
            "2026-07-14 23:00 BST to 2026-07-15 01:00 BST",
        ),
        # across the clocks going back (01:00 UTC, 25 October 2026): starts in BST, ends in GMT
        (
            datetime(2026, 10, 25, 0, 0, tzinfo=UTC),
            "Europe/London",
            "Sunday 25 October 2026, 01:00 BST (UTC+01:00)",
            "Sunday 25 October 2026, 02:00 GMT (UTC+00:00)",
            "2026-10-25 01:00 BST to 2026-10-25 02:00 GMT",
        ),
        # a start written with another offset; New York springs forward at 07:00 UTC
        (
            datetime.fromisoformat("2026-03-08T12:00:00+05:30"),
            "America/New_York",
            "Sunday 8 March 2026, 01:30 EST (UTC-05:00)",
            "Sunday 8 March 2026, 04:30 EDT (UTC-04:00)",
            "2026-03-08 01:30 EST to 2026-03-08 04:30 EDT",
        ),
    ],
)
def test_notice_times_in_the_customers_zone_and_in_utc(
    start: datetime, zone: str, local_start: str, local_end: str, subject_times: str
) -> None:
    cfg = NOTICE.model_copy(update={"timezone": zone})
    msg = notice(make_window(start=start), cfg)
    text, html = parts(msg)
    assert (
        msg["Subject"] == f"Example Voice Ltd: planned maintenance {subject_times} (ref CHG-1042)"
    )
    utc_start = start.astimezone(UTC)
    utc_end = utc_start + timedelta(hours=2)
    for body in (text, html):
        assert local_start in body and local_end in body
        assert f"{utc_start:%H:%M} UTC" in body and f"{utc_end:%H:%M} UTC" in body
        assert "Example Voice Ltd" in body and "CHG-1042" in body
        assert "support@example.net" in body
        assert "up to 2 hours" in body


def test_the_notice_shows_nothing_internal() -> None:
    inv = inventory()
    every_host = [s.name for s in inv.servers]
    window = make_window(every_host, title="patch kam-lon1-01 before the audit", requester="dana")
    msg = notice(window)
    whole = msg.as_string()
    text, html = parts(msg)
    forbidden = [
        *every_host,
        *(s.address for s in inv.servers),
        *(g.name for g in inv.redundancy_groups),
        "openssl",
        "3.0.11",
        "kamailio",  # the package; the role shows as "SIP signalling"
        "VC-SSH",
        window.plan_hash,
        window.title,
        "dana",
        "lon1",
        "man1",
    ]
    for body in (whole, text, html):
        leaked = [word for word in forbidden if word.lower() in body.lower()]
        assert leaked == []
    assert not list(msg.iter_attachments())
    assert "Other customer-facing services (London)" in text  # the portal, by kind only


def test_lead_time() -> None:
    cfg = CustomerNoticeConfig()
    assert cfg.min_notice_hours == 72
    window = make_window()
    assert notice_lead_problem(window, START - timedelta(hours=72), cfg) is None
    assert notice_lead_problem(window, START - timedelta(days=10), cfg) is None
    problem = notice_lead_problem(window, START - timedelta(hours=30), cfg)
    assert problem is not None
    assert "W-20261201-ab12 starts 2026-12-01 22:00 UTC (30.0 hours from now)" in problem
    assert "72 hours' notice" in problem and "min_notice_hours" in problem
    assert "move the start to 2026-12-03 16:00 UTC or later" in problem
    late = notice_lead_problem(window, START + timedelta(hours=1), cfg)
    assert late is not None and "(1.0 hours ago)" in late
    assert notice_lead_problem(window, START, CustomerNoticeConfig(min_notice_hours=0)) is None


def test_customer_notice_config(tmp_path: Path) -> None:
    path = tmp_path / "vcops.toml"
    path.write_text(
        '[customer_notice]\noperator = "Example Voice Ltd"\ntimezone = "Europe/London"\n'
        'contact = "+44 20 7946 0000"\nmin_notice_hours = 96\n'
    )
    cfg = load_config(path).customer_notice
    assert (cfg.operator, cfg.timezone, cfg.contact, cfg.min_notice_hours) == (
        "Example Voice Ltd",
        "Europe/London",
        "+44 20 7946 0000",
        96,
    )
    assert Config().customer_notice == CustomerNoticeConfig(
        operator="Your VoIP provider", timezone="UTC", contact="", min_notice_hours=72
    )
    for bad in ("Europe/Lundon", "", "../../etc/passwd"):
        path.write_text(f'[customer_notice]\ntimezone = "{bad}"\n')
        with pytest.raises(ConfigError) as err:
            load_config(path)
        assert str(err.value) == (
            f"{path}: customer_notice.timezone: unknown timezone {bad!r}; "
            "use an IANA name such as Europe/London or UTC"
        )
    path.write_text("[customer_notice]\nmin_notice_hours = -1\n")
    with pytest.raises(ConfigError, match=r"customer_notice\.min_notice_hours"):
        load_config(path)
