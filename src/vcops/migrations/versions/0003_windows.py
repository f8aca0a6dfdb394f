"""Patch windows, signed change-board decisions, per-host window progress.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "windows",
        sa.Column("id", sa.String(40), primary_key=True),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("start", sa.String(40), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
    )
    op.create_table(
        "approvals",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("window_id", sa.String(40), sa.ForeignKey("windows.id"), nullable=False),
        sa.Column("member", sa.String(200), nullable=False),
        sa.Column("decision", sa.String(10), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("comment", sa.Text, nullable=False, server_default=""),
        sa.Column("signature", sa.Text, nullable=False),
        sa.Column("recorded_by", sa.String(200), nullable=False),
    )
    op.create_index("ix_approvals_window", "approvals", ["window_id"])
    op.create_table(
        "window_hosts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("window_id", sa.String(40), sa.ForeignKey("windows.id"), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("batch", sa.Integer, nullable=False),
        sa.Column("state", sa.String(20), nullable=False),
        sa.Column("started_at", sa.String(40), nullable=True),
        sa.Column("finished_at", sa.String(40), nullable=True),
        sa.Column("detail", sa.Text, nullable=False, server_default="{}"),
    )
    op.create_index("ix_window_hosts", "window_hosts", ["window_id", "target"], unique=True)


def downgrade() -> None:
    for table in ("window_hosts", "approvals", "windows"):
        op.drop_table(table)
