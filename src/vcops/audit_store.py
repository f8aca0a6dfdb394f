"""The audit log's persistence: its rows, the append that checks the database's head
against this controller's signed anchor, and the anchor itself.

The audit anchor of a database lives in the state directory
(``audit-<database key>.anchor``), signed with the controller's key
``<state dir>/audit_key`` (created on first use, mode 0600, never in the database).
An append holds the ``audit`` lock of :mod:`vcops.locks` so two controllers never fork
the chain, checks the database's head against the anchor first and refuses, on stderr
(the raised :class:`~vcops.errors.AuditTampered`) and to syslog/journald, when they
differ; every new head also goes to syslog/journald (``$VCOPS_SYSLOG_SOCKET``,
default ``/dev/log``) so a copy exists outside this machine's files. The chain itself
is pure (:mod:`vcops.audit`); :class:`AuditLog` is mixed into
:class:`vcops.store.Store`.
"""

from __future__ import annotations

import getpass
import json
import os
import socket
import tempfile
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import Integer, String, Text, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from vcops import sshsig
from vcops.audit import (
    ANCHOR_NAMESPACE,
    GENESIS,
    Anchor,
    AuditEntry,
    anchor_payload,
    entry_hash,
    head_problem,
    row_problem,
    time_text,
    verify_chain,
)
from vcops.dbtime import AuditTime, parse_stored
from vcops.errors import AuditTampered, StoreError
from vcops.orm import Base


class AuditRow(Base):
    __tablename__ = "audit_log"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    #: NULL only for an entry migrated (0005) with a time that could not be read; its
    #: text is then in ``audit_time_text``.
    ts: Mapped[datetime | str | None] = mapped_column(AuditTime(), nullable=True)
    actor: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    target: Mapped[str] = mapped_column(String(500), default="")
    detail: Mapped[str] = mapped_column(Text, default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64), unique=True)

    def to_entry(self, hashed_text: str | None = None) -> AuditEntry:
        """The entry; a row whose data cannot be read carries ``problem`` instead of raising.

        ``hashed_text``: the time text the entry was hashed with, when migration 0005
        kept it (written before 0005 in another form than :func:`~vcops.audit.time_text`).
        """
        detail: object = None
        problem = ""
        try:
            detail = json.loads(self.detail) if isinstance(self.detail, str | bytes) else None
        except ValueError:
            problem = "its detail is not valid JSON"
        if detail is None and not problem:
            problem = "its detail is not valid JSON"
        ts, time_problem = _entry_time(self.ts, hashed_text)
        problem = problem or time_problem or row_problem(ts, detail)
        return AuditEntry(
            id=self.id if isinstance(self.id, int) else -1,
            ts=ts,
            actor=str(self.actor),
            action=str(self.action),
            target=str(self.target),
            detail=detail if isinstance(detail, dict) and not problem else {},
            prev_hash=str(self.prev_hash),
            hash=str(self.hash),
            problem=problem,
        )


class AuditTimeTextRow(Base):
    """The original time text of an entry migrated by 0005 whose text was not the one
    form :func:`~vcops.audit.time_text` gives (another offset, or unreadable): the hash
    covers that text, so the chain keeps verifying."""

    __tablename__ = "audit_time_text"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    text: Mapped[str] = mapped_column(String(64))


def _entry_time(stored: datetime | str | None, hashed_text: str | None) -> tuple[str, str]:
    """(the time text an entry's hash covers, why it cannot be trusted or "")."""
    if isinstance(stored, datetime):
        if hashed_text is None:
            return time_text(stored), ""
        try:
            same = parse_stored(hashed_text) == stored
        except ValueError:
            same = False
        if not same:
            return hashed_text, (
                f"its time {time_text(stored)} is not its recorded original {hashed_text[:40]!r}"
            )
        return hashed_text, ""
    if stored is None:
        return (hashed_text, "") if hashed_text is not None else ("", "it has no time")
    return stored, ""


def _hashed_texts(session: Session) -> dict[int, str]:
    """Entry id -> the time text it was hashed with, kept by migration 0005 (usually none)."""
    rows = session.execute(select(AuditTimeTextRow.id, AuditTimeTextRow.text)).all()
    return {int(i): str(t) for i, t in rows}


def current_actor() -> str:
    """Who is acting: ``$VCOPS_ACTOR``, else the (sudo) user at this host."""
    env = os.environ.get("VCOPS_ACTOR")
    if env:
        return env
    user = os.environ.get("SUDO_USER") or getpass.getuser()
    return f"{user}@{socket.gethostname()}"


def _syslog(message: str, *, severity: int) -> bool:
    """Send one line to syslog/journald (facility authpriv); False when nobody listens."""
    configured = os.environ.get("VCOPS_SYSLOG_SOCKET")
    paths = [configured] if configured else ["/dev/log", "/run/systemd/journal/dev-log"]
    line = f"<{10 * 8 + severity}>vcops-audit[{os.getpid()}]: {message}".encode(errors="replace")
    for path in paths:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
                sock.settimeout(2)
                sock.connect(path)
                sock.send(line[:4000])
        except OSError:
            continue
        return True
    return False


class AuditLog:
    """The audit methods of :class:`vcops.store.Store` (which provides the session, the
    locks and where the anchor and key live)."""

    anchor_file: Path | None
    key_file: Path | None
    database: str
    _written_anchor: str | None

    def session(self, *, write: bool = False) -> AbstractContextManager[Session]:
        raise NotImplementedError

    def lock(self, name: str, *, wait: bool = False) -> AbstractContextManager[None]:
        raise NotImplementedError

    def audit(
        self,
        action: str,
        target: str = "",
        detail: dict[str, object] | None = None,
        *,
        actor: str | None = None,
        now: datetime | None = None,
    ) -> AuditEntry:
        """Append one entry to the audit log and move this controller's anchor.

        Raises:
            AuditTampered: the database's head is not the entry this controller anchored
                (rewritten, rolled back, appended behind its back, or the anchor is gone).
        """
        return self._append(action, target, detail, actor=actor, now=now, reanchor=False)

    def reanchor(self, reason: str, *, actor: str | None = None) -> AuditEntry:
        """Accept the log's current head as this controller's, with a recorded reason.

        The chain itself must be intact; the entry ``audit.reanchor`` records the reason,
        the anchor it replaces and the head it accepts.

        Raises:
            StoreError: no reason, no state directory, or the chain is broken.
        """
        if not reason.strip():
            raise StoreError("audit reanchor: give --reason TEXT (it is recorded)")
        if self.anchor_file is None:
            raise StoreError("audit reanchor: this store has no state directory for an anchor")
        return self._append(
            "audit.reanchor", self.database, {"reason": reason}, actor=actor, reanchor=True
        )

    def _append_lock(self) -> AbstractContextManager[None]:
        """The one lock every audit append holds (``audit`` in :mod:`vcops.locks`: an
        advisory lock on PostgreSQL, a lock file in the state directory on SQLite)."""
        return self.lock("audit", wait=True)

    def _append(
        self,
        action: str,
        target: str,
        detail: dict[str, object] | None,
        *,
        actor: str | None,
        now: datetime | None = None,
        reanchor: bool,
    ) -> AuditEntry:
        detail = json.loads(json.dumps(detail or {}, default=str))
        moment = now or datetime.now(UTC)
        if moment.utcoffset() is None:
            raise StoreError(f"audit {action}: the time {moment} has no timezone")
        ts = time_text(moment)
        who = actor or current_actor()
        with self._append_lock():
            anchor, untrusted = (
                self._checked_anchor(cached=True) if self.anchor_file else (None, None)
            )
            if untrusted is not None and not reanchor:
                self._refuse(action, untrusted)
            with self.session(write=True) as session:
                last = session.execute(
                    select(AuditRow).order_by(AuditRow.id.desc()).limit(1)
                ).scalar_one_or_none()
                head = (last.id, last.hash) if last else None
                if reanchor:
                    texts = _hashed_texts(session)
                    entries = [
                        r.to_entry(texts.get(r.id))
                        for r in session.execute(select(AuditRow)).scalars()
                    ]
                    chain = verify_chain(entries)
                    if not chain.ok:
                        raise StoreError(
                            f"audit reanchor refused: {chain.reason}; a broken chain cannot be "
                            "accepted (restore the database from a copy that verifies)"
                        )
                    detail["previous_anchor"] = (
                        {"id": anchor.id, "hash": anchor.hash, "trusted": untrusted is None}
                        if anchor
                        else None
                    )
                    detail["head"] = {"id": head[0], "hash": head[1]} if head else None
                elif self.anchor_file is not None:
                    problem = head_problem(head, anchor)
                    if problem is not None:
                        self._refuse(action, problem)
                new_id = (last.id + 1) if last else 1
                prev = last.hash if last else GENESIS
                digest = entry_hash(new_id, ts, who, action, target, detail, prev)
                row = AuditRow(
                    id=new_id,
                    ts=moment,
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
                if self.anchor_file is not None:
                    # before the commit: the old head (0 for none), the new one as pending
                    old_id, old_hash = head or (0, GENESIS)
                    self._write_anchor(
                        Anchor(id=old_id, hash=old_hash, pending_id=entry.id, pending_hash=digest)
                    )
            if self.anchor_file is not None:
                self._write_anchor(Anchor(id=entry.id, hash=entry.hash))
                _syslog(
                    f"head database={self.database} id={entry.id} sha256={entry.hash} "
                    f"action={action}",
                    severity=6,
                )
        return entry

    def _refuse(self, action: str, problem: str) -> None:
        message = f"audit append refused ({action}): {problem}"
        _syslog(f"REFUSED database={self.database}: {message}", severity=2)
        raise AuditTampered(message + "; nothing was changed")

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
            texts = _hashed_texts(session)
            return [r.to_entry(texts.get(r.id)) for r in reversed(rows)]

    # -- the controller key and the signed anchor -------------------------------------

    def public_key(self) -> str:
        """The controller's audit public key (the key pair is created on first use).

        Raises:
            StoreError: no state directory, or ssh-keygen failed.
        """
        if self.key_file is None:
            raise StoreError("the audit key lives in the state directory; this store has none")
        try:
            if not self.key_file.exists():
                sshsig.generate_key(self.key_file, f"vcops-audit@{socket.gethostname()}")
            return sshsig.public_key_of(self.key_file)
        except (sshsig.SignatureError, OSError) as exc:
            raise StoreError(f"audit key: {exc}") from exc

    def read_anchor(self) -> Anchor | None:
        """The anchor as stored (unverified); None when there is none.

        Raises:
            StoreError: the file is unreadable.
        """
        if self.anchor_file is None or not self.anchor_file.exists():
            return None
        try:
            return Anchor.model_validate_json(self.anchor_file.read_text())
        except (ValueError, OSError) as exc:
            raise StoreError(
                f"{self.anchor_file}: unreadable audit anchor ({exc}); "
                "it was tampered with or truncated"
            ) from exc

    def anchor_problem(self, anchor: Anchor, public_key: str | None = None) -> str | None:
        """Why ``anchor``'s signature does not verify (against ``public_key`` when given,
        else this controller's key)."""
        key = public_key or self.public_key()
        if sshsig.verify(
            key,
            ANCHOR_NAMESPACE,
            anchor_payload(anchor, self.database),
            anchor.signature,
            ANCHOR_NAMESPACE,
        ):
            return None
        return (
            f"{self.anchor_file}: the anchor's signature does not verify with the controller "
            f"key {sshsig.fingerprint(key)}: it was forged, or copied from another database"
        )

    def _checked_anchor(self, *, cached: bool = False) -> tuple[Anchor | None, str | None]:
        """(the anchor, why it cannot be trusted); the signature check is skipped when the
        file is what this process last wrote."""
        assert self.anchor_file is not None
        try:
            raw = self.anchor_file.read_text() if self.anchor_file.exists() else None
        except OSError as exc:
            raise StoreError(f"{self.anchor_file}: cannot read the audit anchor: {exc}") from exc
        if raw is None:
            return None, None
        try:
            anchor = Anchor.model_validate_json(raw)
        except ValueError:
            return None, f"{self.anchor_file} is unreadable (tampered with or truncated)"
        if cached and raw == self._written_anchor:
            return anchor, None
        return anchor, self.anchor_problem(anchor)

    def _write_anchor(self, anchor: Anchor) -> None:
        """Sign and write the anchor atomically (the caller holds the append lock)."""
        assert self.anchor_file is not None and self.key_file is not None
        self.public_key()  # creates the key on first use
        try:
            signature = sshsig.sign(
                self.key_file, anchor_payload(anchor, self.database), ANCHOR_NAMESPACE
            )
        except sshsig.SignatureError as exc:
            raise StoreError(f"audit anchor: {exc}") from exc
        raw = anchor.model_copy(update={"signature": signature}).model_dump_json()
        fd, tmp = tempfile.mkstemp(prefix=".anchor-", dir=self.anchor_file.parent)
        with os.fdopen(fd, "w") as out:
            out.write(raw)
        os.replace(tmp, self.anchor_file)
        self._written_anchor = raw
