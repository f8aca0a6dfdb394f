"""Shared fixtures: paths to fixture files, a throwaway PostgreSQL, a database URL per
engine, and the state directory of every test."""

from __future__ import annotations

import itertools
import os
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.pg_server import PgCluster, pg_bindir, start_cluster

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


def pytest_configure(config: pytest.Config) -> None:
    """``VCOPS_STATE_DIR=.vcops`` for the whole session (subprocesses inherit it): a test
    that gives no ``[store] state_dir`` keeps its state in ``.vcops/`` of its own working
    directory, as before the state directory moved to /var/lib/vcops or
    ~/.local/state/vcops, and never writes the machine's own state."""
    os.environ["VCOPS_STATE_DIR"] = ".vcops"


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test that uses the lab is a lab test whether or not its module says so, so
    ``-m "not lab"`` (the lane ``make test`` runs beside the lab) never starts one."""
    for item in items:
        if "lab" in getattr(item, "fixturenames", ()) and not item.get_closest_marker("lab"):
            item.add_marker(pytest.mark.lab)


@pytest.fixture
def make_inventory(tmp_path: Path) -> Callable[..., Path]:
    """Build an inventory dir from the fixture base plus named cases (or extra files)."""

    def build(*cases: str, files: dict[str, str] | None = None, base: bool = True) -> Path:
        root = tmp_path / "inventory"
        root.mkdir(exist_ok=True)
        if base:
            shutil.copy(FIXTURES / "inventories" / "base" / "base.yml", root / "base.yml")
        for case in cases:
            for src in (FIXTURES / "inventories" / case).glob("*.yml"):
                shutil.copy(src, root / f"{case}-{src.name}" if len(cases) > 1 else root / src.name)
        for name, text in (files or {}).items():
            (root / name).write_text(text)
        return root

    return build


@pytest.fixture(scope="session")
def postgres() -> Iterator[PgCluster]:
    """A PostgreSQL cluster of our own for the session (Unix socket in a temp dir, the
    password only in a .pgpass file named by $PGPASSFILE), stopped at the end."""
    if pg_bindir() is None:
        pytest.skip("apt-get install postgresql (make test installs it)")
    cluster = start_cluster()
    before = os.environ.get("PGPASSFILE")
    os.environ["PGPASSFILE"] = str(cluster.passfile)
    try:
        yield cluster
    finally:
        if before is None:
            os.environ.pop("PGPASSFILE", None)
        else:
            os.environ["PGPASSFILE"] = before
        cluster.stop()


_databases = itertools.count(1)


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A fresh, empty database: SQLite in tmp_path/.vcops, or one on the test PostgreSQL."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / '.vcops' / 'vcops.db'}"
    cluster: PgCluster = request.getfixturevalue("postgres")
    return cluster.create_database(f"t{os.getpid()}_{next(_databases)}")
