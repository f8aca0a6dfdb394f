"""Tables for scans, findings, waivers, package sightings (migration 0002), windows
(0003) and the pending-upgrades cache (0004, 0006). Every time is a timezone-aware
``DateTime`` column (0005), read and written as aware UTC ``datetime`` through
:class:`vcops.dbtime.UtcDateTime`."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from vcops.dbtime import UtcDateTime
from vcops.orm import Base


class ScanRow(Base):
    """One scan run."""

    __tablename__ = "scans"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime("scans.started_at"))
    finished_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime("scans.finished_at"), nullable=True
    )
    actor: Mapped[str] = mapped_column(String(200))
    selection: Mapped[str] = mapped_column(String(500), default="all")
    targets: Mapped[int] = mapped_column(Integer, default=0)
    unknown_targets: Mapped[int] = mapped_column(Integer, default=0)
    passed: Mapped[int] = mapped_column(Integer, default=0)
    failed: Mapped[int] = mapped_column(Integer, default=0)
    unknown_checks: Mapped[int] = mapped_column(Integer, default=0)
    score: Mapped[float] = mapped_column(Float, default=0.0)
    summary: Mapped[str] = mapped_column(Text, default="{}")


class ScanTargetRow(Base):
    """How each target fared in a scan: scanned, or unknown with the reason."""

    __tablename__ = "scan_targets"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    scan_id: Mapped[int] = mapped_column(ForeignKey("scans.id", ondelete="CASCADE"))
    target: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    error: Mapped[str] = mapped_column(Text, default="")
    seconds: Mapped[float] = mapped_column(Float, default=0.0)


class FindingRow(Base):
    """A control failing on a target, from first seen to resolved."""

    __tablename__ = "findings"
    __table_args__ = (Index("ix_findings_open", "target", "control_id", "resolved_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(200))
    control_id: Mapped[str] = mapped_column(String(40))
    clause: Mapped[str] = mapped_column(String(10))
    severity: Mapped[str] = mapped_column(String(10))
    title: Mapped[str] = mapped_column(String(300))
    expected: Mapped[str] = mapped_column(Text)
    actual: Mapped[str] = mapped_column(Text)
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime("findings.first_seen"))
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime("findings.last_seen"))
    resolved_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime("findings.resolved_at"), nullable=True
    )
    first_scan_id: Mapped[int] = mapped_column(Integer)
    last_scan_id: Mapped[int] = mapped_column(Integer)


class WaiverRow(Base):
    """An accepted deviation: control, hosts, justification, approver, expiry."""

    __tablename__ = "waivers"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    control_id: Mapped[str] = mapped_column(String(40))
    hosts: Mapped[str] = mapped_column(String(500))
    reason: Mapped[str] = mapped_column(Text)
    approved_by: Mapped[str] = mapped_column(String(200))
    expires_at: Mapped[datetime] = mapped_column(UtcDateTime("waivers.expires_at"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime("waivers.created_at"))
    created_by: Mapped[str] = mapped_column(String(200))


class PackageSightingRow(Base):
    """When a pending security update was first seen on a host (for its age)."""

    __tablename__ = "package_sightings"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(200))
    package: Mapped[str] = mapped_column(String(200))
    version: Mapped[str] = mapped_column(String(200))
    first_seen: Mapped[datetime] = mapped_column(UtcDateTime("package_sightings.first_seen"))
    last_seen: Mapped[datetime] = mapped_column(UtcDateTime("package_sightings.last_seen"))


class WindowRow(Base):
    """A patch window; ``data`` is the window model as JSON."""

    __tablename__ = "windows"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    state: Mapped[str] = mapped_column(String(20))
    start: Mapped[datetime] = mapped_column(UtcDateTime("windows.start"))
    data: Mapped[str] = mapped_column(Text)


class ApprovalRow(Base):
    """A signed change-board decision on a window."""

    __tablename__ = "approvals"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    member: Mapped[str] = mapped_column(String(200))
    decision: Mapped[str] = mapped_column(String(10))
    at: Mapped[datetime] = mapped_column(UtcDateTime("approvals.at"))
    comment: Mapped[str] = mapped_column(Text, default="")
    signature: Mapped[str] = mapped_column(Text)
    recorded_by: Mapped[str] = mapped_column(String(200))


class WindowHostRow(Base):
    """Per-host progress of a running window (saved as it goes, so a runner can resume)."""

    __tablename__ = "window_hosts"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    window_id: Mapped[str] = mapped_column(ForeignKey("windows.id"))
    target: Mapped[str] = mapped_column(String(200))
    batch: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(20))
    started_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime("window_hosts.started_at"), nullable=True
    )
    finished_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime("window_hosts.finished_at"), nullable=True
    )
    detail: Mapped[str] = mapped_column(Text, default="{}")


class UpgradeCacheRow(Base):
    """A host's pending upgrades and the fingerprint of what they were computed from
    (migration 0004): the next scan skips ``apt list`` while the fingerprint holds. And
    (0006) the needrestart fingerprint under which needrestart last found no service to
    restart ("" for none), with when that was computed: the next scan skips
    needrestart while it holds and is younger than a day."""

    __tablename__ = "upgrade_cache"

    target: Mapped[str] = mapped_column(String(200), primary_key=True)
    fingerprint: Mapped[str] = mapped_column(String(64))
    upgradable: Mapped[str] = mapped_column(Text)
    computed_at: Mapped[datetime] = mapped_column(UtcDateTime("upgrade_cache.computed_at"))
    needrestart: Mapped[str] = mapped_column(String(64), default="", server_default="")
    needrestart_at: Mapped[datetime | None] = mapped_column(
        UtcDateTime("upgrade_cache.needrestart_at"), nullable=True
    )
