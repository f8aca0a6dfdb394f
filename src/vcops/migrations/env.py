"""Alembic environment: vcops passes an open connection in ``config.attributes``."""

from __future__ import annotations

from alembic import context

from vcops.orm import Base

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only when someone runs `alembic` by hand
    raise RuntimeError("run migrations through vcops (vcops.store.open_store)")
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
