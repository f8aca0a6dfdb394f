"""The scan cache also keeps, per host, the needrestart fingerprint under which
needrestart last found no service to restart, and when that was computed.

Both columns are new and empty for existing rows (no fingerprint: the host runs
needrestart at its next scan, as before).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("upgrade_cache") as batch:
        batch.add_column(sa.Column("needrestart", sa.String(64), nullable=False, server_default=""))
        batch.add_column(sa.Column("needrestart_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("upgrade_cache") as batch:
        batch.drop_column("needrestart_at")
        batch.drop_column("needrestart")
