"""Every class of inventory error, reported with file, entry and fix, all at once."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import FIXTURES, REPO
from vcops.errors import InventoryError
from vcops.inventory import Server, load_inventory

CASES = sorted(
    p.name for p in (FIXTURES / "inventories").iterdir() if p.is_dir() and p.name != "base"
)


def _problems(root: Path) -> list[str]:
    with pytest.raises(InventoryError) as caught:
        load_inventory(root)
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize("case", CASES)
def test_each_error_class_is_reported_with_file_entry_and_fix(
    case: str, make_inventory: Callable[..., Path]
) -> None:
    root = make_inventory(case)
    problems = _problems(root)
    expected = (FIXTURES / "inventories" / case / "expected.txt").read_text().splitlines()
    for line in filter(None, expected):
        assert any(line in p for p in problems), f"{line!r} not in {problems}"
    for problem in problems:
        assert ".yml" in problem.split(":")[0], f"no file named in {problem!r}"


def test_all_problems_are_reported_at_once(make_inventory: Callable[..., Path]) -> None:
    root = make_inventory(*CASES)
    problems = _problems(root)
    # One run reports the problems of every case, not just the first one found.
    for case in CASES:
        first = (FIXTURES / "inventories" / case / "expected.txt").read_text().splitlines()[0]
        assert any(first.split(": ", 1)[-1] in p for p in problems), (case, first)


def test_the_base_fixture_and_the_shipped_example_are_valid(
    make_inventory: Callable[..., Path],
) -> None:
    inv = load_inventory(make_inventory())
    assert [s.name for s in inv.servers] == ["kam-01", "kam-02", "ast-01"]
    example = load_inventory(REPO / "inventory")
    assert len(example.sites) == 2
    assert len(example.devices) == 4
    assert {d.platform for d in example.devices} == {"ios", "eos", "junos", "nxos_ssh"}
    assert len(example.change_board.members) == 3
    assert len(example.freezes) == 1
    roles = {r for s in example.servers for r in s.roles}
    assert roles == {"asterisk", "kamailio", "freeswitch", "sbc", "rtpengine", "generic"}


def test_group_vars_merge_in_listed_order_then_host_vars(
    make_inventory: Callable[..., Path],
) -> None:
    inv = load_inventory(make_inventory())
    kam01, _, ast01 = inv.servers
    assert inv.host_vars(kam01) == {"baseline_ssh_max_auth_tries": 4, "note": "core"}
    assert inv.host_vars(ast01) == {"baseline_ssh_max_auth_tries": 2}
    assert isinstance(ast01, Server)
    assert inv.ssh_port(ast01) == 2222
    assert inv.ssh_user(ast01) == "ops"


def test_missing_directory_and_empty_directory(tmp_path: Path) -> None:
    with pytest.raises(InventoryError, match="inventory directory not found; pass --inventory"):
        load_inventory(tmp_path / "nope")
    with pytest.raises(InventoryError, match=r"no \*.yml files"):
        load_inventory(tmp_path)


def test_a_section_defined_twice_names_both_files(make_inventory: Callable[..., Path]) -> None:
    root = make_inventory(files={"a.yml": "settings: {}\n", "b.yml": "settings: {}\n"})
    assert any("b.yml:1: settings: also defined in" in p and "a.yml" in p for p in _problems(root))


def test_secret_values_never_appear_in_error_messages(make_inventory: Callable[..., Path]) -> None:
    problems = _problems(make_inventory("inline_secrets"))
    assert not any("canary" in p for p in problems)
