"""The lab's addressing (pure parts)."""

from __future__ import annotations

import ipaddress

from vcops.lab.network import node_mac


def test_a_node_keeps_one_locally_administered_mac_per_address() -> None:
    a = ipaddress.IPv4Address("10.213.0.16")
    assert node_mac(a) == "02:76:0a:d5:00:10" == node_mac(ipaddress.IPv4Address("10.213.0.16"))
    assert node_mac(ipaddress.IPv4Address("10.213.0.17")) != node_mac(a)
    assert int(node_mac(a).split(":")[0], 16) & 0b11 == 0b10  # local, unicast
