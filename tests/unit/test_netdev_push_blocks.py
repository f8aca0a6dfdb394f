"""How a Netmiko push splits its lines (:func:`config_blocks`): every line outside a banner
is sent with its echo and prompt awaited; a banner block (no prompt until its closing
delimiter) is sent whole."""

from __future__ import annotations

import pytest

from vcops.enforce.netdev_push import config_blocks

BANNER = ["banner login ^C", "Authorised access only.", "^C"]


@pytest.mark.parametrize(
    ("platform", "lines", "expected"),
    [
        ("ios", [], []),
        ("ios", ["ip ssh version 2", "no cdp run"], [(True, ["ip ssh version 2", "no cdp run"])]),
        (
            "ios",
            ["no ip http server", *BANNER, "line vty 0 4", "  transport input ssh"],
            [
                (True, ["no ip http server"]),
                (False, BANNER),
                (True, ["line vty 0 4", "  transport input ssh"]),
            ],
        ),
        ("ios", [*BANNER, "ntp authenticate"], [(False, BANNER), (True, ["ntp authenticate"])]),
        # one line holding both delimiters is a block of its own
        (
            "ios",
            ["banner motd #Hi#", "cdp run"],
            [(False, ["banner motd #Hi#"]), (True, ["cdp run"])],
        ),
        # `no banner login` gets a prompt back at once
        ("ios", ["no banner login", "cdp run"], [(True, ["no banner login", "cdp run"])]),
        # a body line holding the delimiter ends the block
        (
            "nxos_ssh",
            ["banner motd @", "one", "two @", "x"],
            [(False, ["banner motd @", "one", "two @"]), (True, ["x"])],
        ),
        # EOS: the body ends at EOF
        (
            "eos",
            ["banner login", "Authorised", "EOF", "x"],
            [(False, ["banner login", "Authorised", "EOF"]), (True, ["x"])],
        ),
        # an unterminated banner takes the rest (the device would wait for the delimiter)
        ("ios", ["banner login ^C", "text"], [(False, ["banner login ^C", "text"])]),
    ],
)
def test_lines_split_into_verified_runs_and_banner_blocks(
    platform: str, lines: list[str], expected: list[tuple[bool, list[str]]]
) -> None:
    got = [(b.verified, list(b.lines)) for b in config_blocks(platform, lines)]
    assert got == expected
    assert [x for b in config_blocks(platform, lines) for x in b.lines] == lines  # none lost
