"""Windows, approvals and per-host window progress in the database (times are
DateTime columns, see :mod:`vcops.dbtime`)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select

from vcops.errors import WindowError
from vcops.store import Store
from vcops.tables import ApprovalRow, WindowHostRow, WindowRow
from vcops.window.approval import Approval
from vcops.window.model import State, Window
from vcops.window.progress import HostRecord


def add_window(store: Store, window: Window) -> None:
    """Store a new window.

    Raises:
        WindowError: a window with this id exists (it is never overwritten).
    """
    with store.session(write=True) as s:
        if s.get(WindowRow, window.id) is not None:
            raise WindowError(
                f"window {window.id} already exists; a new window never replaces one "
                "(create it again for a fresh id)"
            )
        s.add(
            WindowRow(
                id=window.id,
                state=window.state,
                start=window.start,
                data=window.model_dump_json(),
            )
        )


def save_window(store: Store, window: Window) -> None:
    with store.session(write=True) as s:
        row = s.get(WindowRow, window.id)
        if row is None:
            s.add(
                WindowRow(
                    id=window.id,
                    state=window.state,
                    start=window.start,
                    data=window.model_dump_json(),
                )
            )
        else:
            row.state, row.data = window.state, window.model_dump_json()


def set_state(store: Store, window: Window, state: State) -> Window:
    updated = window.model_copy(update={"state": state})
    save_window(store, updated)
    return updated


def load_window(store: Store, window_id: str) -> Window:
    with store.session() as s:
        row = s.get(WindowRow, window_id)
        if row is None:
            raise WindowError(f"no window {window_id!r}; see `vcops window list`")
        return Window.model_validate_json(row.data)


def list_windows(store: Store) -> list[Window]:
    with store.session() as s:
        return [
            Window.model_validate_json(r.data)
            for r in s.execute(select(WindowRow).order_by(WindowRow.start)).scalars()
        ]


def add_approval(store: Store, approval: Approval, recorded_by: str) -> None:
    with store.session(write=True) as s:
        s.add(
            ApprovalRow(
                window_id=approval.window_id,
                member=approval.member,
                decision=approval.decision,
                at=approval.at,
                comment=approval.comment,
                signature=approval.signature,
                recorded_by=recorded_by,
            )
        )


def approvals_of(store: Store, window_id: str) -> list[Approval]:
    with store.session() as s:
        rows = s.execute(
            select(ApprovalRow).where(ApprovalRow.window_id == window_id).order_by(ApprovalRow.id)
        ).scalars()
        return [
            Approval(
                window_id=r.window_id,
                member=r.member,
                decision=r.decision,
                at=r.at,
                comment=r.comment,
                signature=r.signature,
            )
            for r in rows
        ]


def load_progress(store: Store, window_id: str) -> dict[str, HostRecord]:
    """Saved per-host progress of a window (empty before its first run)."""
    with store.session() as s:
        rows = s.execute(
            select(WindowHostRow).where(WindowHostRow.window_id == window_id)
        ).scalars()
        return {r.target: HostRecord.model_validate_json(r.detail) for r in rows}


def save_progress(store: Store, window_id: str, record: HostRecord) -> None:
    """Save one host's progress in its own transaction (a kill loses at most this step)."""
    with store.session(write=True) as s:
        row = s.execute(
            select(WindowHostRow).where(
                WindowHostRow.window_id == window_id, WindowHostRow.target == record.target
            )
        ).scalar_one_or_none()
        if row is None:
            row = WindowHostRow(window_id=window_id, target=record.target, batch=record.batch)
            s.add(row)
        row.batch = record.batch
        row.state = record.state
        row.started_at = _moment(record.started_at)
        row.finished_at = _moment(record.finished_at)
        row.detail = record.model_dump_json()


def _moment(text: str | None) -> datetime | None:
    """A host record's time (ISO 8601 text with an offset, written by the runner) for
    its DateTime column."""
    return datetime.fromisoformat(text) if text else None


def progress_of(store: Store, window: Window) -> list[HostRecord]:
    """Every planned host's record in plan order (pending for hosts not started)."""
    saved = load_progress(store, window.id)
    return [saved.get(h.target, HostRecord(target=h.target)) for h in window.plan.hosts]
