"""The state store: SQLAlchemy 2 over SQLite by default, PostgreSQL (psycopg 3) when
``[store] database_url`` or ``VCOPS_DATABASE_URL`` is ``postgresql+psycopg://...``.

Schema changes are alembic migrations (``vcops/migrations``), applied when the store
is opened. Write transactions are serialised (``BEGIN IMMEDIATE`` on SQLite, a
transaction-level advisory lock on PostgreSQL). The audit log is append-only and
hash-chained (see :mod:`vcops.audit`); an append holds the ``audit`` lock of
:mod:`vcops.locks` so two controllers never fork the chain. The PostgreSQL password
comes from libpq's own places (``$PGPASSWORD``, ``$PGPASSFILE`` or ``~/.pgpass``, or
``[store] pgpass_file``), never from vcops.toml, and a URL is printed only redacted.
"""

from __future__ import annotations

import fcntl
import getpass
import json
import os
import socket
import tempfile
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Integer, String, Text, create_engine, event, select, text
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import DeclarativeBase, Mapped, Session, mapped_column

from vcops.audit import GENESIS, Anchor, AuditEntry, entry_hash
from vcops.errors import StoreError
from vcops.locks import ADVISORY_NAMESPACE, advisory_key, hold_lock

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest alembic revision (a unit test keeps it equal to the migrations' head).
SCHEMA_HEAD = "0003"


class Base(DeclarativeBase):
    """Declarative base of every vcops table."""


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    ts: Mapped[str] = mapped_column(String(40))
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    def to_entry(self) -> AuditEntry:
        return AuditEntry(
            id=self.id,
            ts=self.ts,
            actor=self.actor,
            action=self.action,
            target=self.target,
            detail=json.loads(self.detail),
            prev_hash=self.prev_hash,
            hash=self.hash,
        )


def current_actor() -> str:
    """Who is acting: ``$VCOPS_ACTOR``, else the (sudo) user at this host."""
    env = os.environ.get("VCOPS_ACTOR")
    if env:
        return env
    user = os.environ.get("SUDO_USER") or getpass.getuser()
    return f"{user}@{socket.gethostname()}"


def _redact_url(url: str) -> str:
    """A database URL safe to print: the password replaced."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


class Store:
    """An open database, migrated to the newest schema."""

    def __init__(
        self, engine: Engine, anchor_file: Path | None, lock_dir: Path | None = None
    ) -> None:
        self.engine = engine
        self.anchor_file = anchor_file
        self.lock_dir = lock_dir

    @property
    def dialect(self) -> str:
        """``sqlite`` or ``postgresql``."""
        return self.engine.dialect.name

    def lock(self, name: str, *, wait: bool = False) -> AbstractContextManager[None]:
        """The named cross-process lock (advisory on PostgreSQL, flock on SQLite).

        Raises:
            LockHeld: ``wait`` is false and another process holds it.
        """
        return hold_lock(self.engine, self.lock_dir, name, wait=wait)

    @contextmanager
    def session(self, *, write: bool = False) -> Iterator[Session]:
        """A session in one transaction; ``write`` takes the write lock up front."""
        try:
            with Session(self.engine) as session, session.begin():
                if write:
                    if self.engine.dialect.name == "sqlite":
                        session.execute(text("SELECT 1"))  # BEGIN IMMEDIATE is issued on connect
                    elif self.engine.dialect.name == "postgresql":
                        session.execute(
                            text("SELECT pg_advisory_xact_lock(:ns, :key)"),
                            {"ns": ADVISORY_NAMESPACE, "key": advisory_key("store-write")},
                        )
                yield session
        except SQLAlchemyError as exc:
            raise StoreError(
                f"database {_redact_url(str(self.engine.url))}: {exc.__class__.__name__}: "
                + _scrub(getattr(exc, "orig", None) or exc, self.engine.url)
            ) from exc

    def audit(
        self,
        action: str,
        target: str = "",
        detail: dict[str, object] | None = None,
        *,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry to the audit log and move this controller's anchor."""
        detail = json.loads(json.dumps(detail or {}, default=str))
        ts = (now or datetime.now(UTC)).isoformat()
        who = actor or current_actor()
        with self.lock("audit", wait=True):  # the one append lock (see vcops.locks)
            with self.session(write=True) as session:
                last = session.execute(
                    select(AuditRow).order_by(AuditRow.id.desc()).limit(1)
                ).scalar_one_or_none()
                new_id = (last.id + 1) if last else 1
                prev = last.hash if last else GENESIS
                digest = entry_hash(new_id, ts, who, action, target, detail, prev)
                row = AuditRow(
                    id=new_id,
                    ts=ts,
                    actor=who,
                    action=action,
                    target=target,
                    detail=json.dumps(detail, sort_keys=True),
                    prev_hash=prev,
                    hash=digest,
                )
                session.add(row)
                session.flush()
                entry = row.to_entry()
            self._write_anchor(Anchor(id=entry.id, hash=entry.hash))
        return entry

    def audit_entries(
        self, *, limit: int | None = None, action: str | None = None
    ) -> list[AuditEntry]:
        """Entries oldest first (the newest ``limit`` of them when given)."""
        with self.session() as session:
            query = select(AuditRow).order_by(AuditRow.id.desc())
            if action:
                query = query.where(AuditRow.action.like(action.replace("*", "%")))
            if limit:
                query = query.limit(limit)
            rows = list(session.execute(query).scalars())
            return [r.to_entry() for r in reversed(rows)]

    def read_anchor(self) -> Anchor | None:
        if self.anchor_file is None or not self.anchor_file.exists():
            return None
        try:
            return Anchor.model_validate_json(self.anchor_file.read_text())
        except ValueError as exc:
            raise StoreError(
                f"{self.anchor_file}: unreadable audit anchor ({exc}); "
                "it was tampered with or truncated"
            ) from exc

    def _write_anchor(self, anchor: Anchor) -> None:
        """Move the anchor forward (never back), atomically, one writer at a time: several
        vcops processes (a scheduled scan, a window runner, an operator) append at once."""
        if self.anchor_file is None:
            return
        lock_path = self.anchor_file.with_name(self.anchor_file.name + ".lock")
        with open(lock_path, "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            current = self.read_anchor()
            if current is not None and current.id > anchor.id:
                return
            fd, tmp = tempfile.mkstemp(prefix=".anchor-", dir=self.anchor_file.parent)
            with os.fdopen(fd, "w") as out:
                out.write(anchor.model_dump_json())
            os.replace(tmp, self.anchor_file)


def _sqlite_immediate(engine: Engine) -> None:
    """Make SQLite transactions take the write lock at BEGIN: no lock upgrades, no deadlocks."""

    @event.listens_for(engine, "connect")
    def _connect(dbapi_connection: object, _record: object) -> None:
        dbapi_connection.isolation_level = None  # type: ignore[attr-defined]
        cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE")


def _current_revision(engine: Engine) -> str | None:
    with engine.connect() as connection:
        try:
            row = connection.execute(text("SELECT version_num FROM alembic_version")).first()
        except SQLAlchemyError:
            return None
        return str(row[0]) if row else None


def migrate(engine: Engine) -> None:
    """Bring the schema to the newest alembic revision (alembic loads only when needed)."""
    if _current_revision(engine) == SCHEMA_HEAD:
        return
    from alembic import command
    from alembic.config import Config as AlembicConfig

    cfg = AlembicConfig()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    with engine.connect() as connection:
        cfg.attributes["connection"] = connection
        command.upgrade(cfg, "head")
        connection.commit()


def _scrub(message: object, url: str | URL) -> str:
    """An error message with the URL's password (if any) cut out, bounded."""
    from sqlalchemy.engine import make_url

    text_ = str(message)
    try:
        password = make_url(url).password
    except Exception:
        password = None
    if password:
        text_ = text_.replace(str(password), "***")
    return text_[:500]


def open_store(
    database_url: str, state_dir: Path | None = None, *, pgpass_file: Path | None = None
) -> Store:
    """Open (creating and migrating if needed) the database.

    Args:
        database_url: ``sqlite:///PATH`` or ``postgresql+psycopg://USER@HOST/DB``.
        state_dir: where the audit anchor and (for SQLite) the lock files live.
        pgpass_file: a ``.pgpass``-format file for the PostgreSQL password (libpq's
            ``passfile``); without it libpq reads ``$PGPASSWORD``, ``$PGPASSFILE`` or
            ``~/.pgpass``.

    Raises:
        StoreError: the database cannot be opened or migrated.
    """
    db_path: Path | None = None
    if database_url.startswith("sqlite:///"):
        db_path = Path(database_url.removeprefix("sqlite:///"))
        try:
            db_path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"{db_path.parent}: cannot create the state directory: {exc}") from exc
    where = f"database {_redact_url(database_url)}"
    try:
        if database_url.startswith("postgresql"):
            args = {"passfile": str(pgpass_file)} if pgpass_file else {}
            engine = create_engine(database_url, pool_pre_ping=True, connect_args=args)
            with hold_lock(engine, None, "migrate", wait=True):
                migrate(engine)
        else:
            engine = create_engine(database_url)
            if engine.dialect.name == "sqlite":
                _sqlite_immediate(engine)
            migrate(engine)
    except SQLAlchemyError as exc:
        reason = getattr(exc, "orig", None) or exc
        raise StoreError(f"{where}: {_scrub(reason, database_url)}") from exc
    except StoreError as exc:
        raise StoreError(f"{where}: {_scrub(exc, database_url)}") from exc
    except ModuleNotFoundError as exc:
        extra = " (pip install 'vcops[postgres]')" if "psycopg" in str(exc.name) else ""
        raise StoreError(f"{where}: driver missing ({exc.name}); install it{extra}") from exc
    anchor = None
    lock_dir = db_path.parent / "locks" if db_path is not None else None
    if state_dir is not None:
        state_dir.mkdir(parents=True, exist_ok=True)
        anchor = state_dir / "audit.anchor"
        lock_dir = state_dir / "locks"
    return Store(engine, anchor, lock_dir)
