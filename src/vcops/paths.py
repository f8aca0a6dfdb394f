"""Where vcops finds the files it ships beside the package (templates/)."""

from __future__ import annotations

import os
from pathlib import Path


def templates_dir() -> Path:
    """``$VCOPS_TEMPLATES``, else ``templates/`` of the source tree vcops runs from."""
    env = os.environ.get("VCOPS_TEMPLATES")
    if env:
        return Path(env)
    return Path(__file__).resolve().parents[2] / "templates"
