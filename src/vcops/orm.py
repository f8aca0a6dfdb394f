"""The declarative base of every vcops table (below the repositories that map them)."""

from __future__ import annotations

from sqlalchemy.orm import DeclarativeBase


class Base(DeclarativeBase):
    """Declarative base of every vcops table."""
