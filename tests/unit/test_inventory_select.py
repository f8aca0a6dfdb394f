"""``--limit`` patterns, table-driven over the base fixture inventory."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from vcops.errors import InventoryError
from vcops.inventory import load_inventory, select_targets

ALL = ["kam-01", "kam-02", "ast-01", "sw-01", "rtr-01"]


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        (None, ALL),
        ("all", ALL),
        ("kam-*", ["kam-01", "kam-02"]),
        ("kam-0[2]", ["kam-02"]),
        ("role:kamailio", ["kam-01", "kam-02"]),
        ("kamailio", ["kam-01", "kam-02"]),  # a bare word matches roles too
        ("role:generic", ["ast-01"]),
        ("group:core", ["kam-01", "rtr-01"]),
        ("edge", ["kam-01", "kam-02"]),
        ("site:s1,!kind:device", ["kam-01", "kam-02", "ast-01"]),
        ("env:staging", ["ast-01"]),
        ("rg:kam-pair", ["kam-01", "kam-02"]),
        ("patch:w2", ["kam-02"]),
        ("platform:junos", ["rtr-01"]),
        ("kind:device", ["sw-01", "rtr-01"]),
        ("group:edge,&patch:w1", ["kam-01"]),
        ("all,!role:kamailio,!rtr-*", ["ast-01", "sw-01"]),
        ("sw-01, ast-01", ["ast-01", "sw-01"]),  # inventory order, spaces ignored
    ],
)
def test_limit_selects(
    pattern: str | None, expected: list[str], make_inventory: Callable[..., Path]
) -> None:
    inv = load_inventory(make_inventory())
    assert [t.name for t in select_targets(inv, pattern)] == expected


@pytest.mark.parametrize(
    ("pattern", "message"),
    [
        ("kamailo", "--limit: kamailo: matches no host or device; did you mean 'kamailio'?"),
        ("colour:blue", "unknown selector 'colour'"),
        ("role:", "empty value"),
        ("kam-*,&role:asterisk", "selects no host or device"),
        ("kam-01,nothing-here", "nothing-here: matches no host or device"),
    ],
)
def test_limit_errors_name_the_term_and_the_fix(
    pattern: str, message: str, make_inventory: Callable[..., Path]
) -> None:
    inv = load_inventory(make_inventory())
    with pytest.raises(InventoryError) as caught:
        select_targets(inv, pattern)
    assert any(message in str(p) for p in caught.value.problems), caught.value.problems
