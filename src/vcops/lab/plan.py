"""What a lab of N hosts and M switches consists of: names, roles, addresses (pure).

>>> [h.name for h in plan_hosts(7)]  # doctest: +NORMALIZE_WHITESPACE
['lab-kamailio-01', 'lab-asterisk-01', 'lab-freeswitch-01', 'lab-sbc-01',
 'lab-rtpengine-01', 'lab-generic-01', 'lab-kamailio-02']
>>> plan_switches(2)[1].transport
'netmiko'
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass

from vcops.errors import LabError
from vcops.lab.layout import (
    CGROUP_PREFIX,
    HOST_OCTET_BASE,
    HOST_OCTET_MORE,
    LINK_PREFIX,
    MAX_HOSTS,
    MAX_SWITCHES,
    NETNS_PREFIX,
    SUBNET,
    SWITCH_OCTET_BASE,
)

ROLES: tuple[str, ...] = ("kamailio", "asterisk", "freeswitch", "sbc", "rtpengine", "generic")
"""Host ``i`` (0-based) gets role ``ROLES[i % 6]``."""

VOIP_GROUP = "lab-voip"
SWITCH_MODEL = "cisco_generic"
SWITCH_PLATFORM = "ios"
SWITCH_USERNAME = "admin"


@dataclass(frozen=True)
class HostSpec:
    """One planned lab host."""

    index: int
    name: str
    role: str
    address: ipaddress.IPv4Address
    redundancy_group: str
    patch_group: str

    @property
    def netns(self) -> str:
        """Network namespace name, ``vcops-<name>``."""
        return f"{NETNS_PREFIX}{self.name}"

    @property
    def veth(self) -> str:
        """Controller-side veth name (the peer is ``eth0`` inside the namespace)."""
        return veth_name(self.address)

    @property
    def cgroup(self) -> str:
        """Cgroup directory name, created at the root of each isolated hierarchy."""
        return f"{CGROUP_PREFIX}{self.name}"

    @property
    def groups(self) -> list[str]:
        """Inventory groups: every host but the generic ones is in ``lab-voip``."""
        return [] if self.role == "generic" else [VOIP_GROUP]


@dataclass(frozen=True)
class SwitchSpec:
    """One planned network-switch simulator."""

    index: int
    name: str
    address: ipaddress.IPv4Address
    transport: str
    platform: str = SWITCH_PLATFORM
    model: str = SWITCH_MODEL
    username: str = SWITCH_USERNAME

    @property
    def netns(self) -> str:
        """Network namespace name, ``vcops-sw-NN``."""
        return f"{NETNS_PREFIX}sw-{self.index + 1:02d}"

    @property
    def veth(self) -> str:
        """Controller-side veth name."""
        return veth_name(self.address)


def veth_name(address: ipaddress.IPv4Address) -> str:
    """Controller-side veth for an address: ``vcops-v<last octet>`` (15 chars at most)."""
    return f"{LINK_PREFIX}v{int(address) & 0xFF}"


def host_octet(index: int) -> int:
    """The last octet of host ``index`` (0-based): .11 .. .99, then .151 .. .254 (the
    switches have .101 .. .150)."""
    first = SWITCH_OCTET_BASE - 2 - HOST_OCTET_BASE + 1  # .11 .. .99
    return HOST_OCTET_BASE + index if index < first else HOST_OCTET_MORE + index - first


def plan_hosts(count: int) -> list[HostSpec]:
    """Plan ``count`` hosts: roles round-robin, two-digit numbers per role, waves.

    Raises:
        LabError: ``count`` is out of range.
    """
    if not 1 <= count <= MAX_HOSTS:
        raise LabError(f"the lab holds 1 to {MAX_HOSTS} hosts, not {count}; pick a count in range")
    hosts = []
    for i in range(count):
        role = ROLES[i % len(ROLES)]
        number = i // len(ROLES) + 1
        hosts.append(
            HostSpec(
                index=i,
                name=f"lab-{role}-{number:02d}",
                role=role,
                address=SUBNET.network_address + host_octet(i),
                redundancy_group=f"lab-{role}",
                patch_group="lab-wave-1" if number % 2 else "lab-wave-2",
            )
        )
    return hosts


def plan_switches(count: int) -> list[SwitchSpec]:
    """Plan ``count`` switches: NAPALM transport for even indexes, Netmiko for odd.

    Raises:
        LabError: ``count`` is out of range.
    """
    if not 0 <= count <= MAX_SWITCHES:
        raise LabError(
            f"the lab holds 0 to {MAX_SWITCHES} switches, not {count}; pick a count in range"
        )
    return [
        SwitchSpec(
            index=j,
            name=f"lab-sw-{j + 1:02d}",
            address=SUBNET.network_address + SWITCH_OCTET_BASE + j,
            transport="napalm" if j % 2 == 0 else "netmiko",
        )
        for j in range(count)
    ]
