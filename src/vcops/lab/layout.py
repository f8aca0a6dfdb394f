"""Fixed names, paths and addresses of the lab.

Everything the lab creates on the controller carries the ``vcops`` prefix (network
namespaces ``vcops-*``, links ``vcops-*`` and the bridge, cgroups ``vcops-*``) or lives
under :data:`STATE_DIR`, so :mod:`vcops.lab.teardown` can find it again without state.

A machine can run more than one lab at once: ``VCOPS_LAB_INSTANCE=N`` (1 to 9; unset or
0 is the default lab) gives every name, path and address its own instance ``N``
(``vcopsN-*``, bridge ``vcopsbrN``, /var/lib/vcops-lab-N, 10.213.N.0/24, SMTP port
2525 + N), and each instance's ``lab down`` finds only its own resources. ``make test``
runs its lab tests on two labs at once this way.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path

from vcops.errors import LabError

INSTANCE_ENV = "VCOPS_LAB_INSTANCE"
MAX_INSTANCE = 9


def parse_instance(raw: str | None) -> tuple[int, str | None]:
    """(instance, problem) for the value of ``$VCOPS_LAB_INSTANCE``.

    >>> parse_instance(None), parse_instance("2")
    ((0, None), (2, None))
    >>> parse_instance("x")[1]
    "VCOPS_LAB_INSTANCE='x' is not a lab instance: use 0 to 9"
    """
    text = (raw or "").strip() or "0"
    if text.isascii() and text.isdigit() and len(text) == 1:
        return int(text), None
    return 0, f"{INSTANCE_ENV}={raw!r} is not a lab instance: use 0 to {MAX_INSTANCE}"


INSTANCE, INSTANCE_PROBLEM = parse_instance(os.environ.get(INSTANCE_ENV))
"""This process's lab instance; ``INSTANCE_PROBLEM`` says why the variable was refused
(:func:`check_instance`: the lab commands refuse to start, nothing is created)."""
_TAG = str(INSTANCE) if INSTANCE else ""
SUFFIX = f"-{INSTANCE}" if INSTANCE else ""
"""``-N`` for instance N, empty for the default lab (paths and lock files)."""

STATE_DIR = Path(f"/var/lib/vcops-lab{SUFFIX}")
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

LOCK_FILE = Path(f"/run/lock/vcops-lab{SUFFIX}.lock")
"""Serialises ``lab up`` and ``lab down`` between processes."""

LINK_PREFIX = f"vcops{_TAG}-"
"""The controller-side veths; with :data:`BRIDGE`, the links this lab owns."""
NETNS_PREFIX = f"vcops{_TAG}-"
CGROUP_PREFIX = f"vcops{_TAG}-"

BRIDGE = f"vcopsbr{INSTANCE}"
SUBNET = ipaddress.IPv4Network(f"10.213.{INSTANCE}.0/24")
GATEWAY = ipaddress.IPv4Address(f"10.213.{INSTANCE}.1")
HOST_OCTET_BASE = 11
HOST_OCTET_MORE = 151
"""Hosts past the 89th continue here, after the switches' range."""
SWITCH_OCTET_BASE = 101
MAX_HOSTS = 193  # .11 .. .99, then .151 .. .254
MAX_SWITCHES = 50  # .101 .. .150

SMTP_HOST = "127.0.0.1"
SMTP_PORT = 2525 + INSTANCE
SMTP_FROM = "vcops@lab.invalid"

SSH_PORT = 22
LAB_USER = "vcops"
"""The unprivileged management login every lab host has (the lab key, a sudo rule) and
the lab inventory logs in as by default; root's own login is opt-in (``lab up --user root``)."""
SIP_PORT = 5060


def check_instance() -> None:
    """Refuse a ``$VCOPS_LAB_INSTANCE`` that is not 0 to 9.

    Raises:
        LabError: the variable holds anything else.
    """
    if INSTANCE_PROBLEM:
        raise LabError(INSTANCE_PROBLEM)


def is_lab_link(name: str) -> bool:
    """Whether ``name`` is a link of this lab instance (its bridge or one of its veths)."""
    return name == BRIDGE or name.startswith(LINK_PREFIX)


def machine_name(host: str) -> str:
    """The container's machine name for nspawn: the host name in the default lab,
    ``<host>-N`` in instance N (nspawn keys /run/systemd/nspawn/propagate on it)."""
    return f"{host}{SUFFIX}"
