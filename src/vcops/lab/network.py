"""The lab network: bridge ``vcopsbr0`` (10.213.0.1/24) and one namespace per node.

Each host or switch lives in its own network namespace holding ``lo`` and ``eth0``,
the inside end of a veth pair whose outside end (``vcops-v<octet>``) is a port of the
bridge. Nodes get only their /24 address: no default route, no NAT, so they can reach
nothing but the controller and each other.
"""

from __future__ import annotations

import contextlib
import ipaddress
import json
import os
from pathlib import Path

from vcops.errors import LabError
from vcops.lab.layout import BRIDGE, GATEWAY, NETNS_PREFIX, SUBNET, is_lab_link
from vcops.lab.system import mounts, run

NETNS_DIR = Path("/run/netns")
_IP_FIX = "apt-get install iproute2"


def ip(*args: str, what: str) -> str:
    """Run ``ip ARGS`` (iproute2); raise LabError saying ``what`` failed."""
    return run(["ip", *args], what=what, fix=_IP_FIX, timeout=30)


def check_subnet_free() -> None:
    """Make sure nothing else on this machine already routes the lab subnet.

    Raises:
        LabError: a route or address overlapping :data:`SUBNET` exists on a link that is
            not this lab's.
    """
    routes = json.loads(ip("-j", "-4", "route", "show", "table", "all", what="list routes"))
    for route in routes:
        dst, dev = str(route.get("dst", "")), str(route.get("dev", ""))
        if dst in ("", "default") or is_lab_link(dev):
            continue
        try:
            network = ipaddress.IPv4Network(dst, strict=False)
        except ValueError:
            continue
        if network.prefixlen > 0 and network.overlaps(SUBNET):
            raise LabError(
                f"the lab subnet {SUBNET} is already in use on this machine "
                f"(route {dst} dev {dev or '?'}); remove that route or address first"
            )


def netns_dir_is_mounted() -> bool:
    """Whether ``/run/netns`` is already a mount point (``ip netns add`` makes it one)."""
    return any(m.target == NETNS_DIR for m in mounts())


def create_bridge() -> None:
    """Create ``vcopsbr0`` with the controller's lab address and bring it up.

    Raises:
        LabError: a step failed.
    """
    ip("link", "add", BRIDGE, "type", "bridge", what=f"create bridge {BRIDGE}")
    ip(
        "addr",
        "add",
        f"{GATEWAY}/{SUBNET.prefixlen}",
        "dev",
        BRIDGE,
        what=f"address bridge {BRIDGE}",
    )
    ip("link", "set", BRIDGE, "up", what=f"bring up bridge {BRIDGE}")


def create_netns(netns: str) -> None:
    """Create the network namespace ``netns`` (``/run/netns/<netns>``).

    Raises:
        LabError: ``ip netns add`` failed.
    """
    ip("netns", "add", netns, what=f"create network namespace {netns}")


def node_mac(address: ipaddress.IPv4Address) -> str:
    """A node's fixed MAC address, from its IPv4 address (locally administered, pure).

    A host rebuilt by ``vcops lab reset`` keeps its MAC, so the controller's neighbour
    cache stays right: with a random one, packets went to the old MAC until the entry
    expired (about 30 s per reset).
    """
    return "02:76:" + ":".join(f"{octet:02x}" for octet in address.packed)


def wire_netns(netns: str, veth: str, address: ipaddress.IPv4Address) -> None:
    """Give ``netns`` an ``eth0`` with ``address``, plugged into the bridge via ``veth``.

    Raises:
        LabError: a step failed.
    """
    cidr = f"{address}/{SUBNET.prefixlen}"
    ip(
        "link",
        "add",
        veth,
        "type",
        "veth",
        "peer",
        "name",
        "eth0",
        "address",
        node_mac(address),
        "netns",
        netns,
        what=f"create veth {veth} for {netns}",
    )
    ip("link", "set", veth, "master", BRIDGE, what=f"attach {veth} to {BRIDGE}")
    ip("link", "set", veth, "up", what=f"bring up {veth}")
    ip("-n", netns, "addr", "add", cidr, "dev", "eth0", what=f"address eth0 in {netns}")
    ip("-n", netns, "link", "set", "eth0", "up", what=f"bring up eth0 in {netns}")
    ip("-n", netns, "link", "set", "lo", "up", what=f"bring up lo in {netns}")


def netns_path(netns: str) -> Path:
    """The bind-mounted namespace file nspawn and ``ip netns exec`` enter."""
    return NETNS_DIR / netns


def find_lab_netns() -> list[str]:
    """Every network namespace of this lab (``vcops-*``) on the machine."""
    try:
        return sorted(n for n in os.listdir(NETNS_DIR) if n.startswith(NETNS_PREFIX))
    except OSError:
        return []


def find_lab_links() -> list[str]:
    """Every link of this lab in the controller's namespace, veths before the bridge."""
    links = json.loads(ip("-j", "link", "show", what="list links"))
    names = [str(link["ifname"]) for link in links if is_lab_link(str(link["ifname"]))]
    return sorted(names, key=lambda name: (name == BRIDGE, name))


def netns_inodes(names: list[str]) -> dict[int, str]:
    """Map namespace inode -> name for the given namespaces (to find their processes)."""
    inodes = {}
    for name in names:
        with contextlib.suppress(OSError):
            inodes[os.stat(netns_path(name)).st_ino] = name
    return inodes


def link_exists(name: str) -> bool:
    """Whether the link ``name`` exists in the controller's namespace."""
    return Path("/sys/class/net", name).exists()


def delete_link(name: str) -> bool:
    """Delete link ``name``; False if it was already gone.

    Raises:
        LabError: the link exists and cannot be deleted.
    """
    if not link_exists(name):
        return False
    ip("link", "del", name, what=f"delete link {name}")
    return True


def delete_netns(name: str) -> bool:
    """Delete network namespace ``name``; False if it was already gone.

    Raises:
        LabError: the namespace exists and cannot be deleted.
    """
    if not netns_path(name).exists():
        return False
    ip("netns", "del", name, what=f"delete network namespace {name}")
    return True


def release_netns_dir() -> bool:
    """Unmount and remove ``/run/netns`` if it is empty (undo what ``ip netns add`` did).

    Only called when the lab itself created the mount. Returns whether it did anything.
    """
    if not NETNS_DIR.is_dir() or os.listdir(NETNS_DIR):
        return False
    if netns_dir_is_mounted():
        run(["umount", str(NETNS_DIR)], what=f"unmount {NETNS_DIR}")
    with contextlib.suppress(OSError):
        NETNS_DIR.rmdir()
    return True
