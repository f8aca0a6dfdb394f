"""The drift report's subject, grouping and roll-up by control, its size at 30 hosts, and
the trend chart PNG (matplotlib: axes, labels, plotted values equal to the scores)."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta

from PIL import Image

from vcops.baseline.catalog import all_controls
from vcops.findings import Waiver
from vcops.findings_store import FindingView, ScorePoint
from vcops.report.chart import plotted, trend_figure, trend_png
from vcops.report.drift import UnknownTarget, build_report
from vcops.report.render import drift_json, drift_message, render_drift

NOW = datetime(2026, 11, 28, 6, 0, tzinfo=UTC)


def view(
    target: str, control: str, clause: str, severity: str, status: str = "open"
) -> FindingView:
    return FindingView(
        id=1,
        target=target,
        control_id=control,
        clause=clause,
        severity=severity,
        title="t",
        expected="e",
        actual="a",
        first_seen="2026-11-27",
        last_seen="2026-11-28",
        resolved_at=None,
        status=status,
    )


def test_subject_and_groups() -> None:
    open_ = [
        view("b", "VC-SSH-001", "3.2.1", "high"),
        view("a", "VC-PATCH-002", "3.2.2", "high"),
        view("a", "VC-SSH-006", "3.2.1", "medium"),
        view("a", "VC-SSH-001", "3.2.1", "high"),
        view("c", "VC-SSH-007", "3.2.1", "low", status="waived"),
    ]
    waivers = [
        Waiver(
            id=1,
            control_id="VC-SSH-007",
            hosts="c",
            reason="r",
            approved_by="dana",
            created_by="x",
            created_at=NOW - timedelta(days=60),
            expires_at=NOW + timedelta(days=days),
        )
        for days in (3, 40)
    ]
    rep = build_report(
        now=NOW,
        since=None,
        new=open_[:1],
        resolved=[],
        open_=open_,
        unknown=[UnknownTarget(target="z", error="timeout")],
        waivers=waivers,
        history=[point(0, 50.0, {}), point(1, 90.5, {"3.2.1": 88.0, "3.2.2": 100.0})],
        score=90.5,
    )
    assert rep.subject == "vcops drift: 1 new, 0 resolved, 4 open, 90.5% compliant, 1 unknown hosts"
    groups = rep.groups("open")
    assert [(g.clause, g.severity) for g in groups] == [
        ("3.2.1", "high"),
        ("3.2.1", "medium"),
        ("3.2.1", "low"),
        ("3.2.2", "high"),
    ]
    assert list(groups[0].hosts) == ["a", "b"] and groups[0].count == 2
    assert [w.expires_at for w in rep.expiring_waivers] == [NOW + timedelta(days=3)]


def point(day: int, score: float, clauses: dict[str, float]) -> ScorePoint:
    return ScorePoint(scan_id=day + 1, at=NOW + timedelta(days=day), score=score, clauses=clauses)


HISTORY = [
    point(0, 61.5, {"3.2.1": 58.0, "3.2.2": 70.0}),
    point(1, 74.0, {"3.2.1": 72.5, "3.2.2": 80.0}),
    point(3, 93.2, {"3.2.1": 95.0, "3.2.2": 87.5}),
]


def test_trend_chart_is_matplotlib_with_axes_labels_and_the_stored_scores() -> None:
    fig = trend_figure(HISTORY)
    [ax] = fig.axes
    assert ax.get_ylabel() == "compliant (%)" and ax.get_xlabel() == "scan date (UTC)"
    assert ax.get_ylim() == (0.0, 100.0)
    legend = ax.get_legend()
    assert legend is not None
    assert [t.get_text() for t in legend.get_texts()] == [
        "all controls",
        "3.2.1 security measures",
        "3.2.2 update and patch",
    ]
    assert plotted(fig) == {
        "all controls": [61.5, 74.0, 93.2],
        "3.2.1 security measures": [58.0, 72.5, 95.0],
        "3.2.2 update and patch": [70.0, 80.0, 87.5],
    }
    # dates on the x axis: the tick labels are days of November 2026, not indexes
    fig.canvas.draw()  # type: ignore[no-untyped-call]
    ticks = (
        " ".join(t.get_text() for t in ax.get_xticklabels()) + ax.xaxis.get_offset_text().get_text()
    )
    assert "Nov" in ticks or "2026" in ticks, ticks


def test_trend_png_carries_the_plotted_series_and_is_a_real_image() -> None:
    data = trend_png(HISTORY)
    image = Image.open(io.BytesIO(data))
    assert image.format == "PNG" and image.size == (640, 260)
    assert "Matplotlib" in image.info["Software"]
    assert json.loads(image.info["Description"]) == {
        "all controls": [61.5, 74.0, 93.2],
        "3.2.1 security measures": [58.0, 72.5, 95.0],
        "3.2.2 update and patch": [70.0, 80.0, 87.5],
    }
    colours = image.convert("RGB").getcolors(maxcolors=1 << 20) or []
    assert len(colours) > 50  # lines, text, antialiasing: not a blank image
    empty = Image.open(io.BytesIO(trend_png([])))
    assert json.loads(empty.info["Description"]) == {}


def fleet(hosts: int) -> list[FindingView]:
    """Every server control failing on every host: the worst drift mail there is."""
    out = []
    for h in range(hosts):
        for i, c in enumerate(
            c
            for c in all_controls()
            if c.id.startswith(
                ("VC-SSH", "VC-NFT", "VC-KRN", "VC-PATCH", "VC-FILE", "VC-AUD", "VC-TIME", "VC-F2B")
            )
        ):
            out.append(
                FindingView(
                    id=h * 100 + i,
                    target=f"kam-lon1-{h:02d}",
                    control_id=c.id,
                    clause=c.clause,
                    severity=c.severity,
                    title=c.title,
                    expected="the expected value of this control, as the baseline settings say",
                    actual="what the host has instead, quoted from its configuration",
                    first_seen=(NOW - timedelta(days=h)).isoformat(),
                    last_seen=NOW.isoformat(),
                    resolved_at=None,
                )
            )
    return out


def test_open_findings_roll_up_by_control_and_the_mail_stays_small_at_30_hosts() -> None:
    findings = fleet(30)
    rep = build_report(
        now=NOW,
        since=None,
        new=findings[:3],
        resolved=[],
        open_=findings,
        unknown=[],
        waivers=[],
        history=HISTORY,
        score=12.0,
        base_url="https://vcops.example.net",
    )
    rolled = rep.rollup()
    assert len(rolled) == len({f.control_id for f in findings})
    first = rolled[0]
    assert len(first.hosts) == 30 and first.shown == [f"kam-lon1-{h:02d}" for h in range(5)]
    assert first.more == 25 and first.since == (NOW - timedelta(days=29)).isoformat()
    text, html = render_drift(rep)
    size = len(html.encode())
    assert size < 100_000, size
    assert html.count("kam-lon1-29") == 0  # rolled up: only the first five names
    assert 'href="https://vcops.example.net/controls/VC-SSH-001"' in html
    assert 'href="https://vcops.example.net/hosts/kam-lon1-00"' in html
    assert "and 25 more" in text and "https://vcops.example.net/controls/VC-SSH-001" in text
    # the attachment keeps every finding, host by host
    data = json.loads(drift_json(rep))
    assert len(data["open"]) == len(findings) and len(data["open_by_control"]) == len(rolled)
    assert "Too many to list" not in html  # three new findings: listed one by one
    # A first scan: every one of the 780 findings is new. Still rolled up, still small.
    first = rep.model_copy(update={"new": findings})
    first_text, first_html = render_drift(first)
    assert len(first_html.encode()) < 100_000, len(first_html.encode())
    assert "Too many to list one by one" in first_html and "too many to list" in first_text
    assert first_html.count("kam-lon1-29") == 0
    msg = drift_message(rep, sender="vcops@example.net", to=["secops@example.net"])
    html_part = msg.get_body(preferencelist=("html",))
    assert html_part is not None and len(str(html_part.get_content()).encode()) == size


def test_clause_scores_follow_the_overall_rule_per_clause() -> None:
    from vcops.findings import ControlResult, TargetOutcome, clause_scores, compliance_score

    def r(clause: str, status: str) -> ControlResult:
        return ControlResult(
            target="h", control_id="C", clause=clause, severity="low", title="t",
            status=status, expected="e", actual="a",
        )  # type: ignore[arg-type]  # fmt: skip

    results = [r("3.2.1", "pass")] * 3 + [r("3.2.1", "fail"), r("3.2.1", "unknown")]
    results += [r("3.2.2", "fail"), r("3.2.2", "not_applicable")]
    outcomes = [TargetOutcome(target="h", kind="server", status="scanned", results=results)]
    assert clause_scores(outcomes) == {"3.2.1": 75.0, "3.2.2": 0.0}
    assert compliance_score(outcomes)[3] == 60.0
