"""Scans, per-target scan status, findings with history, waivers, package sightings.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "scans",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("started_at", sa.String(40), nullable=False),
        sa.Column("finished_at", sa.String(40), nullable=False, server_default=""),
        sa.Column("actor", sa.String(200), nullable=False),
        sa.Column("selection", sa.String(500), nullable=False, server_default="all"),
        sa.Column("targets", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unknown_targets", sa.Integer, nullable=False, server_default="0"),
        sa.Column("passed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("failed", sa.Integer, nullable=False, server_default="0"),
        sa.Column("unknown_checks", sa.Integer, nullable=False, server_default="0"),
        sa.Column("score", sa.Float, nullable=False, server_default="0"),
        sa.Column("summary", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_table(
        "scan_targets",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "scan_id", sa.Integer, sa.ForeignKey("scans.id", ondelete="CASCADE"), nullable=False
        ),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("error", sa.Text, nullable=False, server_default=""),
        sa.Column("seconds", sa.Float, nullable=False, server_default="0"),
    )
    op.create_index("ix_scan_targets_scan", "scan_targets", ["scan_id"])
    op.create_table(
        "findings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("control_id", sa.String(40), nullable=False),
        sa.Column("clause", sa.String(10), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("title", sa.String(300), nullable=False),
        sa.Column("expected", sa.Text, nullable=False),
        sa.Column("actual", sa.Text, nullable=False),
        sa.Column("first_seen", sa.String(40), nullable=False),
        sa.Column("last_seen", sa.String(40), nullable=False),
        sa.Column("resolved_at", sa.String(40), nullable=True),
        sa.Column("first_scan_id", sa.Integer, nullable=False),
        sa.Column("last_scan_id", sa.Integer, nullable=False),
    )
    op.create_index("ix_findings_open", "findings", ["target", "control_id", "resolved_at"])
    op.create_table(
        "waivers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("control_id", sa.String(40), nullable=False),
        sa.Column("hosts", sa.String(500), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
        sa.Column("approved_by", sa.String(200), nullable=False),
        sa.Column("expires_at", sa.String(40), nullable=False),
        sa.Column("created_at", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
    )
    op.create_table(
        "package_sightings",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("package", sa.String(200), nullable=False),
        sa.Column("version", sa.String(200), nullable=False),
        sa.Column("first_seen", sa.Integer, nullable=False),
        sa.Column("last_seen", sa.Integer, nullable=False),
    )
    op.create_index(
        "ix_package_sightings", "package_sightings", ["target", "package", "version"], unique=True
    )


def downgrade() -> None:
    for table in ("package_sightings", "waivers", "findings", "scan_targets", "scans"):
        op.drop_table(table)
