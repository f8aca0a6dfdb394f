"""The lab's apt repository index."""

from __future__ import annotations

from pathlib import Path

from vcops.lab.aptrepo import write_index


def test_a_rewritten_index_is_newer_to_the_second(tmp_path: Path) -> None:
    """apt-get update sends If-Modified-Since and http.server compares whole seconds: an
    index rewritten in the same second must still look modified, or a host keeps the old
    package list (a window planned right after add_debs saw no upgrade)."""
    index = tmp_path / "Packages"
    stamps = []
    for _ in range(3):
        write_index(tmp_path)
        stamps.append(int(index.stat().st_mtime))
    assert stamps[0] < stamps[1] < stamps[2]
