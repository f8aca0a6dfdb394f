"""Times become real timezone-aware DateTime columns (they were ISO 8601 text).

Every time column of 0001-0004 (String(40), and the epoch seconds of
``package_sightings``) becomes ``DateTime(timezone=True)``:
PostgreSQL ``ALTER ... TYPE timestamp with time zone USING``, SQLite a batch rebuild of
the table (SQLite keeps the value as fixed-width UTC text, see :mod:`vcops.dbtime`).
Each value is parsed in Python first and written back in UTC; no value is lost:

- ``scans.finished_at`` of a scan that never finished was ``''``: it becomes NULL (the
  column is nullable now).
- ``audit_log.ts``: the hash of an entry covers its time *text*. When the stored text is
  not exactly the one form new entries use (:func:`vcops.audit.time_text`, e.g. an
  offset other than ``+00:00``), the original text is kept in the new table
  ``audit_time_text`` and the entry keeps verifying. An entry whose time cannot be read
  keeps its row: ``ts`` becomes NULL and its text goes to ``audit_time_text``, so
  ``vcops audit verify`` names that entry as unreadable exactly as before.
- Any other row whose time cannot be read (not ISO 8601, or without a timezone: only
  a hand edit makes one) stops the migration before anything changes, naming the
  table, row and value; correct or delete the row and open the database again.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from vcops.audit import time_text
from vcops.dbtime import MAX_TIME_TEXT, stored_text
from vcops.errors import StoreError

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

#: table -> (its key, [(time column, nullable afterwards)])
COLUMNS: dict[str, tuple[str, list[tuple[str, bool]]]] = {
    "scans": ("id", [("started_at", False), ("finished_at", True)]),
    "findings": ("id", [("first_seen", False), ("last_seen", False), ("resolved_at", True)]),
    "waivers": ("id", [("expires_at", False), ("created_at", False)]),
    "windows": ("id", [("start", False)]),
    "approvals": ("id", [("at", False)]),
    "window_hosts": ("id", [("started_at", True), ("finished_at", True)]),
    "upgrade_cache": ("target", [("computed_at", False)]),
    "package_sightings": ("id", [("first_seen", False), ("last_seen", False)]),
    "audit_log": ("id", [("ts", True)]),
}
#: Columns that held epoch seconds (Integer), not text.
EPOCH = {("package_sightings", "first_seen"), ("package_sightings", "last_seen")}


def _parse(value: object, epoch: bool = False) -> datetime:
    """An aware UTC time from an old value (text, or epoch seconds); ValueError when it
    is none."""
    if epoch:
        try:
            return datetime.fromtimestamp(int(str(value)), UTC)
        except (OverflowError, OSError) as exc:
            raise ValueError(value) from exc
    if not isinstance(value, str) or len(value) > MAX_TIME_TEXT:
        raise ValueError(value)
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(value)
    return moment.astimezone(UTC)


def _convert(
    bind: sa.engine.Connection,
) -> tuple[dict[tuple[str, str], list[dict[str, object]]], list[dict[str, object]]]:
    """Every converted value, by (table, column), and the audit texts to keep.

    Raises:
        StoreError: a row (outside the audit log) holds a time that cannot be read.
    """
    values: dict[tuple[str, str], list[dict[str, object]]] = {}
    keep: list[dict[str, object]] = []
    bad: list[str] = []
    for table, (key, columns) in COLUMNS.items():
        for column, nullable in columns:
            t = sa.table(table, sa.column(key), sa.column(column))
            rows = bind.execute(sa.select(t.c[key], t.c[column]).order_by(t.c[key])).all()
            out = values.setdefault((table, column), [])
            for pk, old in rows:
                if old is None or (old == "" and nullable):
                    out.append({"_pk": pk, "_value": None})
                    continue
                try:
                    moment = _parse(old, (table, column) in EPOCH)
                except ValueError:
                    if table != "audit_log":
                        bad.append(f"{table} row {pk}: {column} {str(old)[:40]!r}")
                        continue
                    out.append({"_pk": pk, "_value": None})
                    keep.append({"id": pk, "text": str(old)[:MAX_TIME_TEXT]})
                    continue
                if table == "audit_log" and time_text(moment) != old:
                    keep.append({"id": pk, "text": old})
                out.append({"_pk": pk, "_value": moment})
    if bad:
        more = f" (and {len(bad) - 5} more)" if len(bad) > 5 else ""
        raise StoreError(
            "migration 0005 (times become real DateTime columns) refused, nothing changed: "
            f"{'; '.join(bad[:5])}{more} is not a time with a timezone; correct it "
            "(ISO 8601 with an offset, e.g. 2026-11-28T13:01:02+00:00) or delete the row"
        )
    return values, keep


def upgrade() -> None:
    bind = op.get_bind()
    sqlite = bind.dialect.name == "sqlite"
    values, keep = _convert(bind)
    # 1. the columns may hold NULL where they will (a scan not finished, a lost audit time)
    for table, (_key, columns) in COLUMNS.items():
        if sqlite:
            # The rebuild copies the old text as it is (the declared type is already
            # DATETIME in reflect_args, so alembic adds no CAST, which would turn
            # '2026-...' into the number 2026); step 2 rewrites every value.
            with op.batch_alter_table(
                table,
                recreate="always",
                reflect_args=tuple(
                    sa.Column(column, sa.DateTime(timezone=True), nullable=nullable)
                    for column, nullable in columns
                ),
            ):
                pass
        else:
            for column, nullable in columns:
                if nullable:
                    op.alter_column(
                        table,
                        column,
                        existing_type=sa.String(40),
                        nullable=True,
                        server_default=None,
                    )
    # 2. every value in one form (UTC), read back by vcops.dbtime on both backends
    for (table, column), rows in values.items():
        if not rows or (not sqlite and (table, column) in EPOCH):
            continue  # PostgreSQL converts epoch seconds itself (to_timestamp, step 3)
        key = COLUMNS[table][0]
        t = sa.table(table, sa.column(key), sa.column(column))
        for row in rows:
            moment = row["_value"]
            row["_value"] = stored_text(moment) if isinstance(moment, datetime) else None
        bind.execute(
            t.update()
            .where(t.c[key] == sa.bindparam("_pk"))
            .values({column: sa.bindparam("_value")}),
            rows,
        )
    # 3. PostgreSQL: the text becomes timestamp with time zone
    if not sqlite:
        for table, (_key, columns) in COLUMNS.items():
            for column, nullable in columns:
                epoch = (table, column) in EPOCH
                op.alter_column(
                    table,
                    column,
                    type_=sa.DateTime(timezone=True),
                    existing_type=sa.Integer() if epoch else sa.String(40),
                    existing_nullable=nullable,
                    postgresql_using=(
                        f'to_timestamp("{column}")'
                        if epoch
                        else f'"{column}"::timestamp with time zone'
                    ),
                )
    # 4. the audit texts the chain's hashes cover, where they are not time_text(ts)
    text_table = op.create_table(
        "audit_time_text",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        sa.Column("text", sa.String(MAX_TIME_TEXT), nullable=False),
    )
    if keep:
        op.bulk_insert(text_table, keep)


def downgrade() -> None:
    raise RuntimeError(
        "migration 0005 is not reversible in place: restore the database from a backup "
        "taken before it"
    )
