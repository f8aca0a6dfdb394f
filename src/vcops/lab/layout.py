"""Fixed names, paths and addresses of the lab.

Everything the lab creates on the controller carries the ``vcops`` prefix (network
namespaces ``vcops-*``, links ``vcops*``, cgroups ``vcops-*``) or lives under
:data:`STATE_DIR`, so :mod:`vcops.lab.teardown` can find it again without state.
"""

from __future__ import annotations

import ipaddress
from pathlib import Path

STATE_DIR = Path("/var/lib/vcops-lab")
"""Root of everything a running lab keeps on disk (removed by ``lab down``)."""

STATE_FILE = STATE_DIR / "state.json"
HOSTS_DIR = STATE_DIR / "hosts"
SWITCHES_DIR = STATE_DIR / "switches"
MAILDIR = STATE_DIR / "mail"
SMTP_LOG = STATE_DIR / "smtp.log"
NETNS_DIR_MARKER = STATE_DIR / "created-run-netns"
"""Present when the lab's first ``ip netns add`` created /run/netns (down removes it)."""

IMAGE_CACHE_DIR = Path("/var/cache/vcops/images")
"""Cached root filesystems, one directory per image key (kept across labs)."""

LOCK_FILE = Path("/run/lock/vcops-lab.lock")
"""Serialises ``lab up`` and ``lab down`` between processes."""

NAME_PREFIX = "vcops"
NETNS_PREFIX = "vcops-"
CGROUP_PREFIX = "vcops-"

BRIDGE = "vcopsbr0"
SUBNET = ipaddress.IPv4Network("10.213.0.0/24")
GATEWAY = ipaddress.IPv4Address("10.213.0.1")
HOST_OCTET_BASE = 11
HOST_OCTET_MORE = 151
"""Hosts past the 89th continue here, after the switches' range."""
SWITCH_OCTET_BASE = 101
MAX_HOSTS = 193  # .11 .. .99, then .151 .. .254
MAX_SWITCHES = 50  # .101 .. .150

SMTP_HOST = "127.0.0.1"
SMTP_PORT = 2525
SMTP_FROM = "vcops@lab.invalid"

SSH_PORT = 22
LAB_USER = "vcops"
"""The unprivileged management login every lab host has (the lab key, a sudo rule) and
the lab inventory logs in as by default; root's own login is opt-in (``lab up --user root``)."""
SIP_PORT = 5060
