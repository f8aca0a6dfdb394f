"""``vcops report``: the drift report on screen or by email, and the mail outbox."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import click
from rich.console import Console

from vcops.cli.app import App, json_option
from vcops.cli.text import styled
from vcops.errors import ConfigError, VcopsError
from vcops.findings_store import last_scans, list_findings, list_waivers, score_history, view_of
from vcops.report.drift import DriftReport, UnknownTarget, build_report
from vcops.report.mail import Outbox
from vcops.report.notify import deliver_and_audit
from vcops.report.render import drift_message, render_drift
from vcops.scan import ScanReport, apply_waivers


def _now() -> datetime:
    return datetime.now(UTC)


def send_report(app: App, report: DriftReport) -> int:
    """Email the drift report through the outbox; 0 when delivered, 1 when it had to stay queued."""
    cfg = app.config()
    to = list(cfg.recipients.drift)
    if not to:
        raise ConfigError(
            f'{cfg.source or "vcops.toml"}: no drift recipients; set [recipients] drift = ["..."]'
        )
    msg = drift_message(report, sender=cfg.smtp.from_, to=to)
    sent, errors = deliver_and_audit(cfg, app.store(), msg, action="report.email", target="drift")
    if errors:
        for error in errors:
            app.err.print(styled("[yellow]mail not sent: {}[/]", error))
        app.err.print("the report is kept in the outbox; the next run sends it")
        return 1
    app.err.print(f"emailed the drift report to {', '.join(to)} ({sent} message(s) sent)")
    return 0


def report_from_scan(app: App, scan: ScanReport) -> DriftReport:
    now = datetime.fromisoformat(scan.finished_at)
    store = app.store()
    return build_report(
        now=now,
        since=None,
        new=[view_of(r, now) for r in scan.new],
        resolved=scan.resolved,
        open_=scan.open,
        unknown=[UnknownTarget(target=o.target, error=o.error) for o in scan.unknown_targets],
        waivers=list_waivers(store),
        history=score_history(store, 20),
        base_url=app.config().web.base_url,
        score=scan.score,
    )


@click.group()
def report() -> None:
    """Reports: the drift report, and mail waiting in the outbox."""


@report.command("drift")
@click.option(
    "--since",
    type=click.DateTime(["%Y-%m-%d", "%Y-%m-%dT%H:%M"]),
    default=None,
    help="Changes since this time (UTC); default: since the scan before the last one.",
)
@click.option("--email", is_flag=True, help="Email it to [recipients] drift.")
@json_option
@click.pass_obj
def drift(app: App, since: datetime | None, email: bool) -> int:
    """New, resolved and open findings by clause, severity and host; unknown hosts first."""
    store = app.store()
    now = _now()
    scans = last_scans(store, 2)
    if not scans:
        raise ConfigError("no scan recorded yet; run `vcops scan` first")
    start = (
        since.replace(tzinfo=UTC) if since else (scans[1].finished_at if len(scans) > 1 else None)
    )
    views = list_findings(store)
    new = (
        list_findings(store, first_seen_after=start)
        if start
        else [v for v in views if v.resolved_at is None]
    )
    resolved = (
        list_findings(store, resolved_after=start) if start else [v for v in views if v.resolved_at]
    )
    open_ = [v for v in views if v.resolved_at is None]
    try:
        open_ = apply_waivers(open_, app.inventory(), list_waivers(store), now)
    except VcopsError as exc:  # the report must still go out
        app.err.print(styled("[yellow]waivers not applied: {}[/]", exc))
    rep = build_report(
        now=now,
        since=start,
        new=new,
        resolved=resolved,
        open_=open_,
        unknown=[UnknownTarget(target=t, error=e) for t, e in scans[0].unknown],
        waivers=list_waivers(store),
        history=score_history(store, 20),
        base_url=app.config().web.base_url,
        score=scans[0].score,
    )

    def render(console: Console) -> None:
        console.print(render_drift(rep)[0], markup=False, highlight=False)

    app.emit(rep.model_dump(mode="json") | {"subject": rep.subject}, render)
    return send_report(app, rep) if email else 0


@report.command("outbox")
@click.option("--flush", is_flag=True, help="Try to send what is queued now.")
@json_option
@click.pass_obj
def outbox(app: App, flush: bool) -> int:
    """Mail waiting to be sent (kept when the SMTP server was down)."""
    cfg = app.config()
    box = Outbox(cfg.outbox_dir)
    sent, errors = box.flush(cfg.smtp) if flush else (0, [])
    pending = [p.name for p in box.pending()]
    app.emit(
        {"sent": sent, "pending": pending, "errors": errors},
        lambda c: c.print(
            f"sent {sent}; {len(pending)} waiting in {box.queued}"
            + "".join(f"\n  {e}" for e in errors)
        ),
    )
    return 1 if pending and flush else 0


@report.command("evidence")
@click.option(
    "--from", "start", required=True, type=click.DateTime(["%Y-%m-%d"]), help="First day (UTC)."
)
@click.option(
    "--to", "end", required=True, type=click.DateTime(["%Y-%m-%d"]), help="Last day (UTC)."
)
@click.option(
    "-o", "--output", required=True, type=click.Path(path_type=Path, file_okay=False),
    help="A new directory for the pack.",
)  # fmt: skip
@json_option
@click.pass_obj
def evidence(app: App, start: datetime, end: datetime, output: Path) -> int:
    """The signed compliance evidence pack: HTML, PDF, JSON and a signed MANIFEST."""
    from vcops.evidence import collect
    from vcops.report.evidence_pack import write_pack

    first = start.replace(tzinfo=UTC)
    last = end.replace(tzinfo=UTC) + timedelta(days=1) - timedelta(microseconds=1)
    if last < first:
        raise click.BadParameter("--to is before --from", param_hint="--to")
    store = app.store()
    if store.key_file is None:
        raise ConfigError(
            "the evidence pack is signed with the controller key: set a state directory"
        )
    data = collect(app.inventory(), store, first, last, now=_now())
    files = write_pack(data, output, key=store.key_file)
    store.audit(
        "report.evidence",
        str(output),
        {
            "from": first,
            "to": last,
            "files": [p.name for p in files],
            "audit_head": data.audit.head_hash,
        },
    )
    app.emit(
        {"directory": str(output), "files": [p.name for p in files]},
        lambda c: c.print(
            f"evidence pack in {output}: {', '.join(p.name for p in files)}; "
            f"check it with `vcops report verify-evidence {output}`",
            markup=False,
        ),
    )
    return 0


@report.command("verify-evidence")
@click.argument("directory", type=click.Path(path_type=Path, file_okay=False, exists=True))
@click.option(
    "--pubkey", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
    help="The controller's public key as you received it (default: this controller's key).",
)  # fmt: skip
@json_option
@click.pass_obj
def verify_evidence(app: App, directory: Path, pubkey: Path | None) -> int:
    """Check the MANIFEST signature and every file's sha256; exit 1 naming each problem."""
    from vcops import sshsig
    from vcops.report.evidence_pack import verify_pack

    key = pubkey.read_text() if pubkey else app.store().public_key()
    problems = verify_pack(directory, key)
    app.emit(
        {"directory": str(directory), "ok": not problems, "problems": problems,
         "key": sshsig.fingerprint(key)},
        lambda c: c.print(
            f"{directory}: evidence pack intact, signed by {sshsig.fingerprint(key)}"
            if not problems
            else f"{directory}: evidence pack NOT intact:\n  " + "\n  ".join(problems),
            markup=False,
        ),
    )  # fmt: skip
    return 0 if not problems else 1
