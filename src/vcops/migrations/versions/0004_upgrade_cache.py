"""Per-host pending upgrades and the fingerprint they were computed under.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "upgrade_cache",
        sa.Column("target", sa.String(200), primary_key=True),
        sa.Column("fingerprint", sa.String(64), nullable=False),
        sa.Column("upgradable", sa.Text, nullable=False),
        sa.Column("computed_at", sa.String(40), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("upgrade_cache")
