"""``vcops baseline``, ``vcops scan``, ``vcops findings``, ``vcops waiver``."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, time
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from vcops.baseline.catalog import all_controls, get_control
from vcops.baseline.context import DeviceContext, ServerContext
from vcops.baseline.model import Control
from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.cli.app import App, json_option, limit_option
from vcops.cli.progress import progress_for
from vcops.cli.text import plain, styled
from vcops.cli.worker_cmds import site_plan
from vcops.errors import VcopsError
from vcops.findings import Waiver
from vcops.findings_store import add_waiver, list_findings, list_waivers
from vcops.inventory.select import select_targets
from vcops.report.drift import rollup
from vcops.scan import RemoteScan, RemoteScanSnapshot, ScanReport, apply_waivers, run_scan
from vcops.snapshot.take import SnapshotContext
from vcops.store import Store, current_actor

SEV_COLOUR = {"critical": "bold red", "high": "red", "medium": "yellow", "low": "cyan"}
SEV_ORDER = {"critical": 0, "high": 1, "medium": 2, "low": 3}


AnyControl = Control[Any, Any]


def _now() -> datetime:
    return datetime.now(UTC)


def _expected(control: AnyControl) -> str:
    if control.kind == "server":
        ctx = ServerContext(
            settings=DEFAULT_SETTINGS, roles=frozenset(), management_networks=(), now=_now()
        )
        return str(control.expected(ctx))
    return str(control.expected(DeviceContext(DEFAULT_SETTINGS)))


def _control_row(c: AnyControl) -> dict[str, object]:
    """What ``baseline list`` shows of a control (``show`` adds the rest)."""
    return {
        "id": c.id,
        "clause": c.clause,
        "severity": c.severity,
        "kind": c.kind,
        "applies_to": sorted(c.applies_to),
        "title": c.title,
    }


@click.group()
def baseline() -> None:
    """The section 3.2 control catalog."""


@baseline.command("list")
@json_option
@click.pass_obj
def baseline_list(app: App) -> int:
    """Every control: id, clause, severity, what it applies to, title."""
    controls = all_controls()
    rows = [_control_row(c) for c in controls]

    def render(console: Console) -> None:
        table = Table(title=f"{len(rows)} controls (Code of Practice 3.2)", title_justify="left")
        for col in ("id", "clause", "severity", "applies to", "title"):
            table.add_column(col)
        for c in controls:
            targets = sorted(c.applies_to)
            applies = (
                "all servers" if targets == ["*"] and c.kind == "server" else ",".join(targets)
            )
            table.add_row(
                c.id,
                c.clause,
                styled(f"[{SEV_COLOUR[c.severity]}]{{}}[/]", c.severity),
                applies,
                c.title,
            )
        console.print(table)

    app.emit(rows, render)
    return 0


@baseline.command("show")
@click.argument("control_id")
@json_option
@click.pass_obj
def baseline_show(app: App, control_id: str) -> int:
    """One control in full, with its expected value under the default settings."""
    c = get_control(control_id)
    data = _control_row(c) | {
        "rationale": c.rationale,
        "expected": _expected(c),
    }

    def render(console: Console) -> None:
        for key, value in data.items():
            console.print(
                styled(
                    "[bold]{}[/]: {}",
                    f"{key:>10}",
                    ", ".join(value) if isinstance(value, list) else value,
                )
            )

    app.emit(data, render)
    return 0


@baseline.command("settings")
@json_option
@click.pass_obj
def baseline_settings(app: App) -> int:
    """The default baseline settings (override with baseline_<name> vars in the inventory)."""
    data = DEFAULT_SETTINGS.model_dump()

    def render(console: Console) -> None:
        for key, value in data.items():
            console.print(f"baseline_{key}: {value}")

    app.emit(data, render)
    return 0


def _render_findings(console: Console, report: ScanReport) -> None:
    """``scan --details``: every open finding of every host."""
    ft = Table(title="open findings", title_justify="left")
    for col in ("clause", "severity", "target", "control", "title", "actual", "since"):
        ft.add_column(col)
    for f in sorted(
        report.open,
        key=lambda f: (f.clause, SEV_ORDER.get(f.severity, 9), f.target, f.control_id),
    ):
        sev = (
            styled(f"[{SEV_COLOUR.get(f.severity, '')}]{{}}[/]", f.severity)
            if f.status != "waived"
            else styled("[dim]{} (waived)[/]", f.severity)
        )
        actual = plain(f.actual) if not f.waiver else styled("{} [dim]({})[/]", f.actual, f.waiver)
        ft.add_row(
            plain(f.clause),
            sev,
            plain(f.target),
            plain(f.control_id),
            plain(f.title),
            actual,
            plain(f.first_seen[:10]),
        )
    console.print(ft)


def _render_rollup(console: Console, report: ScanReport) -> None:
    """Open findings by control: one row per control, however many hosts it fails on."""
    rows = rollup(report.open)
    ft = Table(
        title=f"open findings: {len(report.open)} on {len({f.target for f in report.open})}"
        f" targets, {len(rows)} controls (scan --details or vcops findings lists them all)",
        title_justify="left",
    )
    for col in ("clause", "severity", "control", "title", "hosts", "first hosts"):
        ft.add_column(col, justify="right" if col == "hosts" else "left")
    for r in rows:
        sev = styled(f"[{SEV_COLOUR.get(r.severity, '')}]{{}}[/]", r.severity)
        if r.waived:
            sev = styled(
                f"[{SEV_COLOUR.get(r.severity, '')}]{{}}[/] [dim]({{}} waived)[/]",
                r.severity,
                r.waived,
            )
        names = ", ".join(r.shown) + (f" +{r.more}" if r.more else "")
        ft.add_row(
            plain(r.clause),
            sev,
            plain(r.control_id),
            plain(r.title),
            str(len(r.hosts)),
            plain(names),
        )
    console.print(ft)


def render_scan(console: Console, report: ScanReport, *, details: bool = False) -> None:
    """The scan summary: unknown targets, open findings rolled up by control (every
    finding with ``details``), the per-target counts, then the totals and the score."""
    for o in report.unknown_targets:
        console.print(styled("[bold yellow]UNKNOWN[/] {}: {}", o.target, o.error))
    if report.open:
        if details:
            _render_findings(console, report)
        else:
            _render_rollup(console, report)
    by_host: dict[str, Counter[str]] = {}
    for o in report.outcomes:
        by_host[o.target] = Counter(r.status for r in o.results)
    table = Table(
        title=f"scan {report.scan_id or '(not stored)'}: {len(report.outcomes)} targets",
        title_justify="left",
    )
    for col in ("target", "status", "pass", "fail", "unknown", "n/a", "seconds"):
        table.add_column(col, justify="right" if col not in {"target", "status"} else "left")
    for o in report.outcomes:
        c = by_host[o.target]
        status = (
            styled("[yellow]unknown[/]")
            if o.status == "unknown"
            else (styled("[red]drift[/]") if c["fail"] else styled("[green]clean[/]"))
        )
        table.add_row(
            plain(o.target),
            status,
            str(c["pass"]),
            str(c["fail"]),
            str(c["unknown"]),
            str(c["not_applicable"]),
            f"{o.seconds:.2f}",
        )
    console.print(table)
    by_clause = Counter(f.clause for f in report.drift)
    by_sev = Counter(f.severity for f in report.drift)
    console.print(
        f"{len(report.new)} new, {len(report.resolved)} resolved, {len(report.drift)} open"
        f" ({', '.join(f'{k}: {v}' for k, v in sorted(by_clause.items())) or 'none'};"
        f" {', '.join(f'{k} {by_sev[k]}' for k in SEV_ORDER if by_sev[k]) or 'no severities'}),"
        f" {sum(f.status == 'waived' for f in report.open)} waived;"
        f" {report.score}% compliant ({report.passed} pass, {report.failed} fail, {report.unknown_checks} unknown checks);"
        f" {len(report.unknown_targets)} unknown targets"
    )
    if report.snapshot is not None:
        snap = report.snapshot
        problems = [h for h in snap.hosts if h.status in {"failed", "unreachable"}]
        console.print(
            f"snapshot: {snap.commit[:12] if snap.commit else 'no change (no new commit)'};"
            f" {len(snap.changed)} changed, {len(problems)} not taken"
        )
        for h in problems:
            console.print(styled("  [yellow]{}[/] {}: {}", h.status, h.name, h.error or ""))


def _remote(app: App, store: Store | None) -> RemoteScan | None:
    """The site-worker hook when vcops.toml names a broker and sites (else None)."""
    plan = site_plan(app)
    if plan is None:
        return None
    from vcops.workers import remote_scan

    return remote_scan(plan, store)


def _remote_snapshot(
    app: App, snapshots: SnapshotContext | None, store: Store | None
) -> RemoteScanSnapshot | None:
    """``scan --snapshot`` through the site workers (facts and snapshot in one worker
    session per host), when vcops.toml names a broker and sites."""
    plan = site_plan(app)
    if plan is None or snapshots is None:
        return None
    from vcops.workers_snapshot import remote_scan_snapshot

    return remote_scan_snapshot(plan, snapshots.key, store)


@click.command()
@limit_option
@click.option("--no-store", is_flag=True, help="Do not record the scan or its findings.")
@click.option("--email", is_flag=True, help="Email the drift report to [recipients] drift.")
@click.option(
    "--snapshot",
    "with_snapshot",
    is_flag=True,
    help="Also take a config snapshot, in the same SSH session as the facts (one commit).",
)
@click.option(
    "--details",
    is_flag=True,
    help="List every open finding of every host instead of one row per control.",
)
@json_option
@click.pass_obj
def scan(
    app: App, limit: str | None, no_store: bool, email: bool, with_snapshot: bool, details: bool
) -> int:
    """Scan for drift from the baseline. Exit 0 clean, 1 drift, 3 targets unknown."""
    inv = app.inventory()
    total = len(select_targets(inv, limit))
    store = app.store()
    snapshots = SnapshotContext.open(inv, app.config(), store=store) if with_snapshot else None
    with progress_for(app, "scan", total) as advance:
        report = run_scan(
            inv,
            limit,
            store=store,
            record=not no_store,
            now=_now,
            max_parallel=app.config().run.max_parallel,
            advance=advance,
            remote=_remote(app, store if not no_store else None),
            snapshot=snapshots,
            remote_snapshot=_remote_snapshot(app, snapshots, store if not no_store else None),
        )
    app.emit(report.model_dump(mode="json"), lambda c: render_scan(c, report, details=details))
    code: int = report.exit_code()
    if email:
        from vcops.cli.report_cmds import report_from_scan, send_report

        if send_report(app, report_from_scan(app, report)) and code == 0:
            code = 1
    return code


@click.command()
@click.option("--status", type=click.Choice(["open", "resolved", "waived"]), default=None)
@click.option("--host", default=None, help="Only this target.")
@click.option("--control", default=None, help="Only this control id.")
@json_option
@click.pass_obj
def findings(app: App, status: str | None, host: str | None, control: str | None) -> int:
    """Findings with their history (first seen, last seen, resolved at)."""
    store = app.store()
    views = list_findings(store, status=status, target=host, control=control)
    try:
        inv = app.inventory()
        views = apply_waivers(views, inv, list_waivers(store), _now())
    except VcopsError as exc:  # findings stay readable without a valid inventory
        app.err.print(styled("[yellow]waivers not applied: {}[/]", exc))
    if status == "waived":
        views = [v for v in views if v.status == "waived"]
    elif status == "open":
        views = [v for v in views if v.status == "open"]

    def render(console: Console) -> None:
        table = Table(title=f"{len(views)} findings", title_justify="left")
        for col in (
            "id",
            "status",
            "severity",
            "target",
            "control",
            "actual",
            "first seen",
            "last seen",
            "resolved",
        ):
            table.add_column(col)
        for v in views:
            table.add_row(
                str(v.id),
                v.status,
                v.severity,
                v.target,
                v.control_id,
                v.actual + (f" ({v.waiver})" if v.waiver else ""),
                v.first_seen[:16],
                v.last_seen[:16],
                (v.resolved_at or "-")[:16],
            )
        console.print(table)

    app.emit([v.model_dump() for v in views], render)
    return 0


@click.group()
def waiver() -> None:
    """Accepted deviations: justified, approved, expiring."""


@waiver.command("add")
@click.argument("control_id")
@click.option(
    "--hosts", required=True, metavar="PATTERN", help="Targets it covers (a --limit pattern)."
)
@click.option("--reason", required=True, help="The justification.")
@click.option(
    "--expires",
    required=True,
    type=click.DateTime(["%Y-%m-%d"]),
    help="Expiry date (YYYY-MM-DD, UTC).",
)
@click.option("--approved-by", required=True, help="Who accepted the risk.")
@json_option
@click.pass_obj
def waiver_add(
    app: App, control_id: str, hosts: str, reason: str, expires: datetime, approved_by: str
) -> int:
    """Record a waiver (it shows findings as waived, never hides them)."""
    control = get_control(control_id)
    inv = app.inventory()
    covered = select_targets(inv, hosts)
    now = _now()
    expires_at = datetime.combine(expires.date(), time(23, 59, 59), tzinfo=UTC)
    if expires_at <= now:
        raise click.BadParameter("the expiry is in the past", param_hint="--expires")
    if len(reason.strip()) < 10:
        raise click.BadParameter(
            "give a real justification (10 characters at least)", param_hint="--reason"
        )
    w = add_waiver(
        app.store(),
        Waiver(
            id=0,
            control_id=control.id,
            hosts=hosts,
            reason=reason.strip(),
            approved_by=approved_by,
            expires_at=expires_at,
            created_at=now,
            created_by=current_actor(),
        ),
    )
    app.store().audit(
        "waiver.add",
        control.id,
        {
            "waiver": w.id,
            "hosts": hosts,
            "covers": [t.name for t in covered],
            "reason": w.reason,
            "approved_by": approved_by,
            "expires": w.expires_at,
        },
    )
    app.emit(
        w.model_dump(mode="json"),
        lambda c: c.print(
            f"waiver #{w.id}: {control.id} on {len(covered)} targets until {expires_at.date()}"
        ),
    )
    return 0


@waiver.command("list")
@json_option
@click.pass_obj
def waiver_list(app: App) -> int:
    """Every waiver, active or expired."""
    now = _now()
    ws = list_waivers(app.store())

    def render(console: Console) -> None:
        table = Table(title=f"{len(ws)} waivers", title_justify="left")
        for col in ("id", "control", "hosts", "state", "expires", "approved by", "reason"):
            table.add_column(col)
        for w in ws:
            table.add_row(
                str(w.id),
                w.control_id,
                w.hosts,
                "active" if w.active(now) else styled("[red]expired[/]"),
                str(w.expires_at.date()),
                w.approved_by,
                w.reason,
            )
        console.print(table)

    app.emit([dict(w.model_dump(mode="json"), active=w.active(now)) for w in ws], render)
    return 0
