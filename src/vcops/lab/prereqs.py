"""What the controller needs before it can run the lab, each with a one-line fix."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from vcops.errors import LabError
from vcops.lab.cgroups import systemd_hierarchies
from vcops.lab.mail import aiosmtpd_available
from vcops.lab.switches import FAKE_SWITCHES_FIX, fake_switches_available

TOOLS: tuple[tuple[str, str], ...] = (
    ("debootstrap", "apt-get install debootstrap systemd-container"),
    ("systemd-nspawn", "apt-get install debootstrap systemd-container"),
    ("ip", "apt-get install iproute2"),
    ("mount", "apt-get install mount"),
    ("umount", "apt-get install mount"),
    ("ssh-keygen", "apt-get install openssh-client"),
    ("ssh-keyscan", "apt-get install openssh-client"),
)


def require_root() -> None:
    """Raise unless running as root.

    Raises:
        LabError: not root.
    """
    if os.geteuid() != 0:
        raise LabError("the lab needs root: run as root: sudo vcops lab up")


def check_prerequisites(*, switches: bool = True) -> None:
    """Check root, tools, overlayfs, cgroups and (with ``switches``) the simulators; fail
    on the first gap. The simulators come with ``pip install 'vcops[lab]'``.

    Raises:
        LabError: one line naming what is missing and how to install it.
    """
    require_root()
    for tool, fix in TOOLS:
        if shutil.which(tool) is None:
            raise LabError(f"{tool} is not installed: {fix}")
    if not _overlay_supported():
        raise LabError("the kernel has no overlay filesystem: modprobe overlay")
    systemd_hierarchies()
    if switches and not fake_switches_available():
        raise LabError(f"fake-switches is not installed in this Python: {FAKE_SWITCHES_FIX}")
    if not aiosmtpd_available():
        raise LabError("aiosmtpd is not installed in this Python: pip install aiosmtpd")


def _overlay_supported() -> bool:
    """Whether overlayfs is available (loaded, or loadable on first mount)."""
    try:
        if "overlay" in Path("/proc/filesystems").read_text().split():
            return True
    except OSError:
        return False
    return any(Path("/lib/modules", os.uname().release).rglob("overlay.ko*"))
