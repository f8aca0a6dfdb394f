"""Render reports with Jinja2 from ``templates/`` (the one loader, :mod:`vcops.templating`)."""

from __future__ import annotations

import json
from datetime import datetime
from email.message import EmailMessage

from vcops.report.chart import trend_png
from vcops.report.drift import DriftReport
from vcops.report.mail import Attachment, InlineImage, build_message
from vcops.templating import environment


def render_drift(report: DriftReport) -> tuple[str, str]:
    env = environment("report")
    text = env.get_template("email/drift.txt.j2").render(report=report)
    html = env.get_template("email/drift.html.j2").render(report=report)
    return text, html


def drift_json(report: DriftReport) -> bytes:
    payload = {
        "generated_at": report.generated_at,
        "since": report.since,
        "score": report.score,
        "unknown": [u.model_dump() for u in report.unknown],
        "new": [f.model_dump() for f in report.new],
        "resolved": [f.model_dump() for f in report.resolved],
        "open": [f.model_dump() for f in report.open],
        "open_by_control": [r.model_dump() for r in report.rollup()],
        "trend": [p.model_dump(mode="json") for p in report.history],
        "expiring_waivers": [w.model_dump(mode="json") for w in report.expiring_waivers],
    }
    return json.dumps(
        payload, indent=2, default=lambda o: o.isoformat() if isinstance(o, datetime) else str(o)
    ).encode()


def drift_message(report: DriftReport, *, sender: str, to: list[str]) -> EmailMessage:
    text, html = render_drift(report)
    return build_message(
        sender=sender,
        to=to,
        subject=report.subject,
        text=text,
        html=html,
        attachments=[Attachment("findings.json", drift_json(report), "application", "json")],
        images=[InlineImage("trend", trend_png(report.history))],
    )
