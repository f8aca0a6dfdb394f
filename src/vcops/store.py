"""The state store: SQLAlchemy 2 over SQLite by default, PostgreSQL (psycopg 3) when
``[store] database_url`` or ``VCOPS_DATABASE_URL`` is ``postgresql+psycopg://...``.

Schema changes are alembic migrations (``vcops/migrations``), applied when the store
is opened. Write transactions are serialised (``BEGIN IMMEDIATE`` on SQLite, a
transaction-level advisory lock on PostgreSQL). The audit log is append-only and
hash-chained (see :mod:`vcops.audit`, and :mod:`vcops.audit_store` for its rows,
the append and the signed anchor). The PostgreSQL password
comes from libpq's own places (``$PGPASSWORD``, ``$PGPASSFILE`` or ``~/.pgpass``, or
``[store] pgpass_file``), never from vcops.toml, and a URL is printed only redacted.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path

from sqlalchemy import String, create_engine, event, select, text, type_coerce
from sqlalchemy.engine import URL, Connection, Engine
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from vcops.audit_store import AuditLog, AuditRow, AuditTimeTextRow, current_actor
from vcops.dbtime import UnreadableTime, parse_stored
from vcops.errors import StoreError
from vcops.locks import ADVISORY_NAMESPACE, advisory_key, hold_lock
from vcops.orm import Base
from vcops.paths import create_private_file, ensure_state_dir

__all__ = [
    "MIGRATIONS",
    "SCHEMA_HEAD",
    "AuditRow",
    "AuditTimeTextRow",
    "Base",
    "Store",
    "current_actor",
    "database_key",
    "migrate",
    "open_store",
    "redact_url",
]

MIGRATIONS = Path(__file__).parent / "migrations"
#: The newest alembic revision (a unit test keeps it equal to the migrations' head).
SCHEMA_HEAD = "0006"


def _redact_url(url: str) -> str:
    """A database URL safe to print: the password replaced."""
    from sqlalchemy.engine import make_url

    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparsable database URL>"


redact_url = _redact_url
"""A database URL with its password replaced (for display)."""


def database_key(database_url: str) -> tuple[str, str]:
    """(identity, short key) of a database: a SQLite file by its absolute path, a server
    database by its URL without the password. Names the database's anchor file."""
    from sqlalchemy.engine import make_url

    if database_url.startswith("sqlite:///"):
        identity = "sqlite:" + str(Path(database_url.removeprefix("sqlite:///")).resolve())
    else:
        try:
            identity = make_url(database_url).set(password=None).render_as_string()
        except Exception:
            identity = _redact_url(database_url)
    return identity, hashlib.sha256(identity.encode()).hexdigest()[:16]


class Store(AuditLog):
    """An open database, migrated to the newest schema (with the audit log's methods
    of :class:`~vcops.audit_store.AuditLog`)."""

    def __init__(
        self,
        engine: Engine,
        anchor_file: Path | None,
        lock_dir: Path | None = None,
        *,
        database: str = "",
        key_file: Path | None = None,
    ) -> None:
        self.engine = engine
        self.anchor_file = anchor_file
        self.lock_dir = lock_dir
        self.database = database
        self.key_file = key_file
        self._written_anchor: str | None = None

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
        except UnreadableTime as exc:
            raise StoreError(
                f"database {_redact_url(str(self.engine.url))}: {self._bad_time_rows(exc)}"
            ) from exc
        except SQLAlchemyError as exc:
            raise StoreError(
                f"database {_redact_url(str(self.engine.url))}: {exc.__class__.__name__}: "
                + _scrub(getattr(exc, "orig", None) or exc, self.engine.url)
            ) from exc

    def _bad_time_rows(self, exc: UnreadableTime) -> str:
        """Which rows of the column named in ``exc`` hold an unreadable time (the first
        three), and the fix."""
        table_name, _, column = exc.where.partition(".")
        table = Base.metadata.tables.get(table_name)
        bad: list[str] = []
        if table is not None and column in table.c:
            key = next(iter(table.primary_key.columns))
            query = select(key, type_coerce(table.c[column], String)).order_by(key)
            try:
                with self.engine.connect() as conn:
                    for pk, value in conn.execute(query):
                        try:
                            if value is not None:
                                parse_stored(value)
                        except ValueError:
                            bad.append(f"{pk} ({str(value)[:40]!r})")
                            if len(bad) == 3:
                                break
            except SQLAlchemyError:
                bad = []
        rows = f"row {', '.join(bad)} of {table_name}" if bad else "a row"
        return (
            f"{exc}: {rows} was edited by hand; set {column or 'it'} to an ISO 8601 time "
            "with an offset (2026-11-28T13:01:02+00:00) or delete that row"
        )


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
    sqlite = engine.dialect.name == "sqlite"
    with engine.connect() as connection:
        if sqlite:
            # A batch migration rebuilds a table (copy, drop, rename): with foreign keys
            # on, dropping `scans` would cascade-delete `scan_targets`. The pragma only
            # takes effect outside a transaction, so it goes to the driver directly;
            # the keys are checked after the upgrade and switched back on.
            _sqlite_pragma(connection, "PRAGMA foreign_keys=OFF")
        try:
            cfg.attributes["connection"] = connection
            command.upgrade(cfg, "head")
            if sqlite:
                broken = connection.exec_driver_sql("PRAGMA foreign_key_check").first()
                if broken is not None:
                    raise StoreError(
                        f"migration left a broken foreign key in table {broken[0]} "
                        f"(row {broken[1]}); nothing was changed"
                    )
            connection.commit()
        finally:
            if sqlite:
                connection.rollback()
                _sqlite_pragma(connection, "PRAGMA foreign_keys=ON")


def _sqlite_pragma(connection: Connection, pragma: str) -> None:
    """Run a pragma on the driver connection, outside any transaction."""
    driver = connection.connection.driver_connection
    assert driver is not None
    driver.execute(pragma)


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
            ensure_state_dir(db_path.parent)
            create_private_file(db_path)  # 0600 before SQLite creates it with the umask
        except OSError as exc:
            raise StoreError(
                f"{db_path}: cannot create the database: {exc.strerror or exc}; "
                "set [store] state_dir in vcops.toml or $VCOPS_STATE_DIR to a writable directory"
            ) from exc
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
    anchor = key_file = None
    identity, key = database_key(database_url)
    lock_dir = db_path.parent / "locks" if db_path is not None else None
    if state_dir is not None:
        try:
            ensure_state_dir(state_dir)
        except OSError as exc:
            raise StoreError(
                f"{state_dir}: cannot create the state directory: {exc.strerror or exc}; "
                "set [store] state_dir in vcops.toml or $VCOPS_STATE_DIR to a writable directory"
            ) from exc
        anchor = state_dir / f"audit-{key}.anchor"
        key_file = state_dir / "audit_key"
        lock_dir = state_dir / "locks"
    return Store(engine, anchor, lock_dir, database=identity, key_file=key_file)
