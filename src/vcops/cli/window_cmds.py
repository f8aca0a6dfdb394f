"""``vcops window``: create, list, show, approve, reject, run and report patch windows."""

from __future__ import annotations

import getpass
import os
import secrets
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from vcops.cli.app import App, json_option
from vcops.cli.text import plain, styled
from vcops.cli.window_notify import send, tell
from vcops.cli.worker_cmds import window_sites
from vcops.decisions import issue_payload, mail_outcome, record_decision
from vcops.errors import ApprovalError, WindowError
from vcops.inventory.select import select_targets
from vcops.store import current_actor
from vcops.window.approval import member_for_key, payload, public_key_of, sign
from vcops.window.board import quorum_for, tally, verified
from vcops.window.model import Decision, Window, parse_amount, parse_duration, plan_hash
from vcops.window.plan import build_plan
from vcops.window.request import requester_for, sign_request
from vcops.window.rules import creation_problems, max_concurrency, max_errors, plan_batches
from vcops.window.store import (
    add_window,
    approvals_of,
    list_windows,
    load_window,
    progress_of,
)


def _now() -> datetime:
    return datetime.now(UTC)


def _iso(value: str, what: str) -> datetime:
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError as exc:
        raise click.BadParameter(f"not an ISO 8601 time: {value!r}", param_hint=what) from exc
    if parsed.tzinfo is None:
        raise click.BadParameter("give a timezone, e.g. 2026-12-01T22:00:00+00:00", param_hint=what)
    return parsed


@click.group()
def window() -> None:
    """Patch windows approved by the change board (Code of Practice 3.2.2 without breaking 3.1.2)."""


@window.command()
@click.option(
    "--targets", required=True, metavar="PATTERN", help="Servers to patch (a --limit pattern)."
)
@click.option(
    "--start", "start_text", required=True, metavar="ISO8601", help="Start, with a timezone."
)
@click.option("--duration", default="2h", show_default=True, help="Length: 2h, 90m, 1h30m.")
@click.option(
    "--cutoff", default="30m", show_default=True, help="No host starts this long before the end."
)
@click.option(
    "--max-concurrency",
    default="1",
    show_default=True,
    help="Hosts at once: a count or a percentage.",
)
@click.option(
    "--max-errors",
    default="1",
    show_default=True,
    help="Failed hosts that halt the window: count or %.",
)
@click.option(
    "--actions",
    type=click.Choice(["security-updates", "all-updates", "baseline"]),
    default="security-updates",
    show_default=True,
)
@click.option(
    "--reboot",
    type=click.Choice(["if-needed", "never", "always"]),
    default="if-needed",
    show_default=True,
)
@click.option("--change-id", required=True, help="The change ticket.")
@click.option("--title", required=True)
@click.option(
    "--requester",
    default=None,
    help="Who asks (default: the board member whose --key signs, else $VCOPS_ACTOR or the user).",
)
@click.option(
    "--key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=lambda: str(Path("~/.ssh/id_ed25519").expanduser()),
    help="Your SSH private key: it signs the window's terms and is who asks (the requester).",
)
@json_option
@click.pass_obj
def create(
    app: App,
    targets: str,
    start_text: str,
    duration: str,
    cutoff: str,
    max_concurrency: str,
    max_errors: str,
    actions: str,
    reboot: str,
    change_id: str,
    title: str,
    requester: str | None,
    key: Path,
) -> int:
    """Plan a window (packages per host, baseline changes), hash it, sign it, ask the board."""
    inv = app.inventory()
    start = _iso(start_text, "--start")
    who = requester_for(
        requester or "",
        public_key_of(key),
        list(inv.change_board.members),
        fallback=os.environ.get("VCOPS_ACTOR") or os.environ.get("SUDO_USER") or getpass.getuser(),
    )
    try:
        minutes, cut = parse_duration(duration), parse_duration(cutoff)
        concurrency, errors = (
            parse_amount(max_concurrency, what="max-concurrency"),
            parse_amount(max_errors, what="max-errors"),
        )
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from exc
    chosen = select_targets(inv, targets)
    now = _now()
    from vcops.inventory.models import Device
    from vcops.snapshot.keys import load_or_create_key

    mask_key = None
    if any(isinstance(t, Device) for t in chosen):
        mask_key = load_or_create_key(app.config().state_dir, app.config().snapshots_dir)
    plan = build_plan(
        inv,
        chosen,
        actions,  # type: ignore[arg-type]
        app.store(),
        max_parallel=app.config().run.max_parallel,
        mask_key=mask_key,
        sites=window_sites(app),
    )
    problems = creation_problems(
        start=start,
        duration_minutes=minutes,
        cutoff_minutes=cut,
        now=now,
        hosts=plan.hosts,
        freezes=inv.freezes,
    )
    if problems:
        raise WindowError("window refused: " + "; ".join(problems))
    w = Window(
        id=f"W-{start:%Y%m%d}-{secrets.token_hex(2)}",
        title=title,
        change_id=change_id,
        requester=who,
        targets=targets,
        start=start,
        duration_minutes=minutes,
        cutoff_minutes=cut,
        max_concurrency=concurrency,
        max_errors=errors,
        actions=actions,
        reboot=reboot,
        plan=plan,
        plan_hash=plan_hash(plan),
        created_at=now,
    )
    w = sign_request(w, key)
    add_window(app.store(), w)
    app.store().audit(
        "window.create",
        w.id,
        {
            "title": title,
            "change_id": change_id,
            "requester": who,
            "targets": [h.target for h in plan.hosts],
            "plan_hash": w.plan_hash,
            "start": w.start,
            "end": w.end,
            "requester_key": w.requester_key,
        },
    )
    quorum = quorum_for(inv, w)
    send(app, w, "approval-needed")

    def render(console: Console) -> None:
        packages = sum(len(h.packages) for h in plan.hosts)
        console.print(
            styled(
                "window [bold]{}[/] created: {} hosts, {} package upgrades, {} to {}; "
                "plan sha256 {}...",
                w.id,
                len(plan.hosts),
                packages,
                w.start.isoformat(),
                w.end.isoformat(),
                w.plan_hash[:16],
            )
        )
        console.print(
            f"needs {quorum} approval(s) from the change board: vcops window approve {w.id} --key ~/.ssh/id_ed25519"
        )

    app.emit(w.model_dump(mode="json") | {"quorum": quorum}, render)
    return 0


@window.command("list")
@json_option
@click.pass_obj
def list_(app: App) -> int:
    """Every window with its state and approvals."""
    inv = app.inventory()
    rows = []
    for w in list_windows(app.store()):
        ok, rejected, quorum = tally(inv, w, approvals_of(app.store(), w.id))
        rows.append(
            {
                "id": w.id,
                "title": w.title,
                "state": w.state,
                "start": w.start.isoformat(),
                "end": w.end.isoformat(),
                "hosts": len(w.plan.hosts),
                "approvals": ok,
                "rejections": rejected,
                "quorum": quorum,
                "change_id": w.change_id,
                "requester": w.requester,
            }
        )

    def render(console: Console) -> None:
        table = Table(title=f"{len(rows)} windows", title_justify="left")
        for col in ("id", "state", "start", "end", "hosts", "approvals", "change", "title"):
            table.add_column(col)
        for r in rows:
            table.add_row(
                str(r["id"]),
                str(r["state"]),
                str(r["start"])[:16],
                str(r["end"])[:16],
                str(r["hosts"]),
                f"{r['approvals']}/{r['quorum']}",
                str(r["change_id"]),
                str(r["title"]),
            )
        console.print(table)

    app.emit(rows, render)
    return 0


@window.command()
@click.argument("window_id")
@json_option
@click.pass_obj
def show(app: App, window_id: str) -> int:
    """The plan, the approvals with their verification, the batches and the state."""
    inv = app.inventory()
    w = load_window(app.store(), window_id)
    checked = verified(inv, w, approvals_of(app.store(), w.id))
    current = plan_hash(w.plan)
    batches = plan_batches(w.plan.hosts, max_concurrency(w))
    progress = [r for r in progress_of(app.store(), w) if r.started_at or r.summary]
    data = w.model_dump(mode="json") | {
        "plan_intact": current == w.plan_hash,
        "approvals": [
            a.model_dump(mode="json", exclude={"signature"}) | {"valid": p is None, "problem": p}
            for a, p in checked
        ],
        "quorum": quorum_for(inv, w),
        "batches": batches,
        "max_errors_resolved": max_errors(w),
        "progress": [r.model_dump(mode="json") for r in progress],
    }

    def render(console: Console) -> None:
        console.print(
            styled(
                "[bold]{}[/] {} ({}), requested by {}: [bold]{}[/]",
                w.id,
                w.title,
                w.change_id,
                w.requester,
                w.state,
            )
        )
        console.print(
            f"{w.start.isoformat()} to {w.end.isoformat()} (no new host after {w.last_start.isoformat()}); "
            f"actions {w.actions}, reboot {w.reboot}, max concurrency {w.max_concurrency}, max errors {w.max_errors}"
        )
        intact = "[green]intact[/]" if data["plan_intact"] else "[red]CHANGED since creation[/]"
        console.print(styled(f"plan sha256 {{}} ({intact})", w.plan_hash))
        table = Table(title="plan", title_justify="left")
        for col in ("host", "env", "redundancy", "packages", "baseline changes", "reboot"):
            table.add_column(col)
        for h in w.plan.hosts:
            pk = ", ".join(f"{p.package} {p.current} -> {p.target}" for p in h.packages[:4]) + (
                " ..." if len(h.packages) > 4 else ""
            )
            table.add_row(
                h.target,
                h.environment,
                h.redundancy_group or "-",
                pk or "-",
                str(len(h.baseline_changes)),
                "required" if h.reboot_required else "-",
            )
        console.print(table)
        console.print("batches: " + " | ".join(", ".join(b) for b in batches))
        for a, p in checked:
            mark = styled("[green]valid[/]") if p is None else styled("[red]INVALID: {}[/]", p)
            console.print(
                plain(f"{a.decision} by {a.member} at {a.at.isoformat()}: "),
                mark,
                plain(f" ({a.comment})" if a.comment else ""),
                sep="",
            )
        console.print(
            f"approvals: {sum(1 for a, p in checked if p is None and a.decision == 'approve')}/{data['quorum']}"
        )
        for r in progress:
            if r.state != "pending" or r.summary:
                console.print(f"batch {r.batch} {r.target}: {r.state} {r.summary}")

    app.emit(data, render)
    return 0


def _decide(
    app: App,
    window_id: str,
    decision: Decision,
    comment: str,
    *,
    key: Path | None,
    signature: Path | None,
    member: str | None,
) -> int:
    inv, store, now = app.inventory(), app.store(), _now()
    if signature is not None:
        if key is not None:
            raise click.UsageError(
                "give --key (sign here) or --signature (signed elsewhere), not both"
            )
        if member is None:
            raise click.UsageError("--signature needs --member NAME (the board member who signed)")
        try:
            text = signature.read_text(encoding="utf-8", errors="replace")
        except OSError as exc:
            raise ApprovalError(f"{signature}: cannot read the signature: {exc.strerror}") from exc
        outcome = record_decision(
            inv, store, window_id,
            member=member, decision=decision, comment=comment, signature=text,
            now=now, recorded_by=current_actor(),
        )  # fmt: skip
    else:
        key = key or Path("~/.ssh/id_ed25519").expanduser()
        if not key.is_file():
            raise ApprovalError(f"{key}: no such key file; give --key PATH or --signature FILE")
        signer = member_for_key(key, list(inv.change_board.members))
        if member is not None and member != signer.name:
            raise ApprovalError(f"{key}: this is {signer.name}'s key, not {member}'s")
        w = load_window(store, window_id)
        outcome = record_decision(
            inv, store, window_id,
            member=signer.name, decision=decision, comment=comment,
            signature=sign(key, payload(w, decision, signer.name, now, comment)),
            now=now, recorded_by=current_actor(), at=now,
        )  # fmt: skip
    for delivery in mail_outcome(app.config(), inv, store, outcome, comment, now=now):
        tell(app, delivery)
    o = outcome
    app.emit(
        {
            "window": o.window_id,
            "member": o.member,
            "decision": o.decision,
            "state": o.state,
            "approvals": o.approvals,
            "quorum": o.quorum,
        },
        lambda c: c.print(
            f"{o.member}: {o.decision} recorded on {o.window_id} (signed); "
            f"approvals {o.approvals}/{o.quorum}; state {o.state}"
        ),
    )
    return 0


_KEY = click.option(
    "--key",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="Your SSH private key (on the board); default ~/.ssh/id_ed25519.",
)
_SIGNATURE = click.option(
    "--signature",
    type=click.Path(path_type=Path, exists=True, dir_okay=False),
    default=None,
    help="A signature made elsewhere (ssh-keygen -Y sign) on `vcops window payload` output.",
)
_MEMBER = click.option("--member", default=None, help="The board member who signed (--signature).")


@window.command()
@click.argument("window_id")
@_KEY
@_SIGNATURE
@_MEMBER
@click.option("--comment", default="", help="Recorded and signed with the decision.")
@json_option
@click.pass_obj
def approve(
    app: App,
    window_id: str,
    key: Path | None,
    signature: Path | None,
    member: str | None,
    comment: str,
) -> int:
    """Approve: sign (window id, the hash of all its terms, decision, time, member) with your SSH key."""
    return _decide(app, window_id, "approve", comment, key=key, signature=signature, member=member)


@window.command()
@click.argument("window_id")
@_KEY
@_SIGNATURE
@_MEMBER
@click.option("--reason", "--comment", "reason", required=True, help="Why (recorded and signed).")
@json_option
@click.pass_obj
def reject(
    app: App,
    window_id: str,
    key: Path | None,
    signature: Path | None,
    member: str | None,
    reason: str,
) -> int:
    """Reject: a rejected window can never run."""
    return _decide(app, window_id, "reject", reason, key=key, signature=signature, member=member)


@window.command("payload")
@click.argument("window_id")
@click.option("--decision", type=click.Choice(["approve", "reject"]), required=True)
@click.option("--member", required=True, help="The board member who will sign.")
@click.option("--comment", default="", help="Signed with the decision (a reject needs its reason).")
@click.option(
    "-o", "--output", type=click.Path(path_type=Path, dir_okay=False), default=None,
    help="Write the payload here instead of standard output.",
)  # fmt: skip
@click.pass_obj
def payload_(
    app: App, window_id: str, decision: Decision, member: str, comment: str, output: Path | None
) -> int:
    """The exact bytes a member signs elsewhere (ssh-keygen -Y sign -n vcops-window)."""
    issued = issue_payload(
        app.store(), app.inventory(), window_id,
        member=member, decision=decision, comment=comment, now=_now(),
    )  # fmt: skip
    if output is None:
        click.echo(issued.data.decode(), nl=False)
        return 0
    output.write_bytes(issued.data)
    app.err.print(
        f"wrote {output}; sign it where your key lives:\n"
        f"  ssh-keygen -Y sign -n vcops-window -f ~/.ssh/id_ed25519 {output}\n"
        f"then: vcops window {decision} {window_id} --signature {output}.sig --member {member}"
        + (f" --comment {comment!r}" if comment else ""),
        markup=False,
    )
    return 0


from vcops.cli.window_run import report, run  # noqa: E402 - the group is defined above

window.add_command(run)
window.add_command(report)
