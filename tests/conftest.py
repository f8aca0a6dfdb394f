"""Shared fixtures: paths to fixture files."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

FIXTURES = Path(__file__).parent / "fixtures"
REPO = Path(__file__).resolve().parents[1]


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
