"""The lab's addressing (pure parts)."""

from __future__ import annotations

import ipaddress

from vcops.lab.network import node_mac


def test_a_node_keeps_one_locally_administered_mac_per_address() -> None:
    a = ipaddress.IPv4Address("10.213.0.16")
    assert node_mac(a) == "02:76:0a:d5:00:10" == node_mac(ipaddress.IPv4Address("10.213.0.16"))
    assert node_mac(ipaddress.IPv4Address("10.213.0.17")) != node_mac(a)
    assert int(node_mac(a).split(":")[0], 16) & 0b11 == 0b10  # local, unicast


def test_hosts_past_the_89th_skip_the_switches_range_and_stay_in_the_subnet() -> None:
    import pytest

    from vcops.errors import LabError
    from vcops.lab.layout import GATEWAY, MAX_HOSTS, SUBNET
    from vcops.lab.plan import plan_hosts, plan_switches

    hosts = plan_hosts(MAX_HOSTS)
    addresses = [h.address for h in hosts]
    switches = {s.address for s in plan_switches(50)}
    assert len(set(addresses)) == MAX_HOSTS == 193
    # the last octets (the subnet is this lab instance's: VCOPS_LAB_INSTANCE may be set)
    assert [int(a) - int(SUBNET.network_address) for a in addresses[87:91]] == [98, 99, 151, 152]
    assert int(addresses[-1]) - int(SUBNET.network_address) == 254
    assert not switches & set(addresses)
    assert all(a in SUBNET and a not in (GATEWAY, SUBNET.broadcast_address) for a in addresses)
    with pytest.raises(LabError, match="1 to 193 hosts"):
        plan_hosts(MAX_HOSTS + 1)
