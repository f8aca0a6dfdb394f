"""The nftables evaluator on real ``nft -j`` output (fixtures made by loading each .nft
file into a throwaway network namespace)."""

from __future__ import annotations

import json

import pytest

from tests.conftest import FIXTURES
from vcops.facts.nft import ANY, default_drop, exposure, parse_ruleset

NFT = FIXTURES / "facts" / "nft"
EXPECTED = json.loads((NFT / "expected.json").read_text())


def _show(nets: list[object]) -> list[str]:
    return ["any"] if set(nets) == set(ANY) else sorted(str(n) for n in nets)


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_exposure_and_default_policy(case: str) -> None:
    rs = parse_ruleset(json.loads((NFT / f"{case}.json").read_text()))
    expected = EXPECTED[case]
    assert default_drop(rs) is expected["default_drop"]
    for flow, sources in expected.items():
        if flow == "default_drop":
            continue
        proto, port = flow.split("/")
        assert _show(exposure(rs, proto, int(port))) == sources, flow


def test_unknown_matches_widen_never_hide() -> None:
    # A rule matching on something the evaluator does not model (daddr) still counts.
    data = {
        "nftables": [
            {
                "chain": {
                    "family": "inet",
                    "table": "t",
                    "name": "input",
                    "hook": "input",
                    "policy": "drop",
                }
            },
            {
                "rule": {
                    "family": "inet",
                    "table": "t",
                    "chain": "input",
                    "expr": [
                        {
                            "match": {
                                "op": "==",
                                "left": {"payload": {"protocol": "ip", "field": "daddr"}},
                                "right": "10.0.0.1",
                            }
                        },
                        {
                            "match": {
                                "op": "==",
                                "left": {"payload": {"protocol": "tcp", "field": "dport"}},
                                "right": 5038,
                            }
                        },
                        {"accept": None},
                    ],
                }
            },
        ]
    }
    assert _show(exposure(parse_ruleset(data), "tcp", 5038)) == ["any"]
