"""The one column type for times in the database: timezone-aware UTC ``datetime`` in,
timezone-aware UTC ``datetime`` out, on SQLite and on PostgreSQL.

PostgreSQL stores ``timestamp with time zone`` and psycopg returns it in the session's
time zone; it is turned to UTC here. SQLite has no time type (SQLAlchemy's own
``DateTime`` drops the offset there), so on SQLite the value is stored as fixed-width
ISO 8601 text in UTC with its offset, ``2026-11-28T13:01:02.123456+00:00``: every value
has the same width and zone, so SQL comparisons and ``ORDER BY`` on the text are
comparisons of the instants.

A stored value that is not such a time (someone edited the database by hand; only
SQLite lets that happen) raises :class:`UnreadableTime`, which names the table and
column; :meth:`vcops.store.Store.session` turns it into a :class:`~vcops.errors.StoreError`
naming the bad rows. The audit log reads its time with :class:`AuditTime`, which hands
such a value back as text so that entry is reported as unreadable, the rest listed.

Example::

    class ScanRow(Base):
        started_at: Mapped[datetime] = mapped_column(UtcDateTime("scans.started_at"))
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import DateTime, String
from sqlalchemy.engine import Dialect
from sqlalchemy.types import TypeDecorator, TypeEngine

from vcops.errors import StoreError

#: Longest stored text parsed as a time (anything longer is not one).
MAX_TIME_TEXT = 64


class UnreadableTime(StoreError):
    """A stored time that is not a time with a timezone (the row was edited by hand)."""

    def __init__(self, where: str, value: object) -> None:
        self.where = where
        self.value = value
        super().__init__(
            f"{where or 'a time column'} holds {str(value)[:MAX_TIME_TEXT]!r}, "
            "which is not a time with a timezone"
        )


def stored_text(moment: datetime) -> str:
    """The SQLite text of an aware time: fixed-width ISO 8601 in UTC."""
    return moment.astimezone(UTC).isoformat(timespec="microseconds")


def parse_stored(value: object) -> datetime:
    """An aware UTC time from what the database returned (a ``datetime`` from
    PostgreSQL, text from SQLite).

    Raises:
        ValueError: not a time, or a time without a timezone.
    """
    if isinstance(value, str):
        if len(value) > MAX_TIME_TEXT:
            raise ValueError("too long for a time")
        value = datetime.fromisoformat(value)
    if not isinstance(value, datetime):
        raise ValueError(f"a {type(value).__name__}, not a time")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("a time without a timezone")
    return value.astimezone(UTC)


def _bind(value: datetime | None, dialect: Dialect) -> str | datetime | None:
    if value is None:
        return None
    if not isinstance(value, datetime) or value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"a time column needs an aware datetime, got {value!r}")
    return stored_text(value) if dialect.name == "sqlite" else value.astimezone(UTC)


def _impl(dialect: Dialect) -> TypeEngine[Any]:
    if dialect.name == "sqlite":
        return dialect.type_descriptor(String(40))
    return dialect.type_descriptor(DateTime(timezone=True))


class UtcDateTime(TypeDecorator[datetime]):
    """``DateTime(timezone=True)`` read and written as aware UTC ``datetime``.

    ``where`` (``table.column``) names the column when a stored value is unreadable.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    def __init__(self, where: str = "") -> None:
        super().__init__()
        self.where = where

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return _impl(dialect)

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> object:
        return _bind(value, dialect)

    def process_result_value(self, value: object | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        try:
            return parse_stored(value)
        except ValueError:
            raise UnreadableTime(self.where, value) from None


class AuditTime(TypeDecorator[datetime | str]):
    """The audit log's time: like :class:`UtcDateTime`, but an unreadable stored value
    comes back as its text (bounded), so the entry is reported, not the whole log."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> TypeEngine[Any]:
        return _impl(dialect)

    def process_bind_param(self, value: datetime | str | None, dialect: Dialect) -> object:
        if isinstance(value, str):
            raise ValueError("the audit log's time is written as an aware datetime")
        return _bind(value, dialect)

    def process_result_value(self, value: object | None, dialect: Dialect) -> datetime | str | None:
        if value is None:
            return None
        try:
            return parse_stored(value)
        except ValueError:
            return str(value)[:MAX_TIME_TEXT]
