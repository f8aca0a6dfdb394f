"""store.SCHEMA_HEAD (which lets vcops skip loading alembic) is the migrations' real head."""

from __future__ import annotations

from alembic.config import Config
from alembic.script import ScriptDirectory

from vcops.store import MIGRATIONS, SCHEMA_HEAD


def test_schema_head_matches_the_migrations() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_heads() == [SCHEMA_HEAD]
