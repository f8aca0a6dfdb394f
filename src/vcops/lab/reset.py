"""``vcops lab reset NAME...``: rebuild lab hosts to stock from the image.

A test (or a person) that hardened, broke or patched a lab host gives it back as it was
after ``lab up``: the container is powered off, its overlay's upper directory (all of
its changes) is thrown away, the overlay is mounted again over the same image and the
host is personalised again with the same machine-id, host keys, address and lab key,
then booted in a fresh network namespace (nftables rulesets and ``net.*`` sysctls live
in the namespace, not in the overlay, so a hardened host would otherwise keep them).
Pinned ``known_hosts`` stay valid. About as long as one boot (seconds).
"""

from __future__ import annotations

import ipaddress
import shutil
import signal
import time
from collections.abc import Callable

from vcops.errors import LabError
from vcops.lab import network
from vcops.lab.cgroups import create_cgroups, kill_cgroup
from vcops.lab.hosts import mount_overlay, personalise, start_host
from vcops.lab.image import rootfs
from vcops.lab.inventory import LAB_KEY
from vcops.lab.lifecycle import KAMAILIO_ROLES, _lab_lock
from vcops.lab.prereqs import require_root
from vcops.lab.readiness import wait_for_hosts, wait_for_kamailio
from vcops.lab.state import HostState, LabState, load_state, save_state
from vcops.lab.system import is_same_process, mounts_under, run, send_signal
from vcops.lab.teardown import _remove_nspawn_image_lock

STOP_TIMEOUT = 30.0
"""Seconds a host gets to power off before its cgroup is killed."""

Step = Callable[[str], None]


def lab_reset(names: list[str], *, on_step: Step | None = None) -> list[str]:
    """Rebuild the named lab hosts to stock; return their names once each answers again.

    Raises:
        LabError: not root, no lab up, an unknown name (the known ones are listed), or a
            step failed (naming the host).
    """
    step = on_step or (lambda _m: None)
    require_root()
    with _lab_lock():
        state = load_state()
        if state is None or not state.complete or state.image is None:
            raise LabError("no lab is up; run `vcops lab up` first")
        by_name = {h.name: h for h in state.hosts}
        unknown = [n for n in names if n not in by_name]
        if unknown:
            raise LabError(
                f"no lab host named {', '.join(unknown)}; the lab has {', '.join(by_name)}"
            )
        hosts = [by_name[n] for n in dict.fromkeys(names)]
        authorized = (state.inventory_dir / f"{LAB_KEY}.pub").read_text()
        for host in hosts:  # every host powers off at once, then each is waited for
            _power_off(host)
        for host in hosts:
            _stop(host, step)
        for host in hosts:
            _rebuild(state, host, authorized, step)
        wait_for_hosts(hosts, step)
        wait_for_kamailio([h for h in hosts if h.role in KAMAILIO_ROLES], step)
    return [h.name for h in hosts]


def _power_off(host: HostState) -> None:
    """Ask the container to power off (TERM to its boot loop); :func:`_stop` waits."""
    if host.process is not None and is_same_process(host.process):
        send_signal(host.process.pid, signal.SIGTERM)


def _stop(host: HostState, step: Step) -> None:
    """Wait for the container to power off, kill what is left, unmount."""
    if host.process is not None and is_same_process(host.process):
        deadline = time.monotonic() + STOP_TIMEOUT
        while is_same_process(host.process) and time.monotonic() < deadline:
            time.sleep(0.1)
    for cgroup in host.cgroups:
        kill_cgroup(cgroup)
    deadline = time.monotonic() + STOP_TIMEOUT
    while host.process is not None and is_same_process(host.process):
        if time.monotonic() > deadline:
            raise LabError(f"{host.name}: pid {host.process.pid} would not stop; lab down")
        time.sleep(0.1)
    step(f"{host.name}: powered off")
    _remove_nspawn_image_lock(host.root)
    for target in mounts_under(host.root):
        run(["umount", str(target)], what=f"unmount {target}", fix="vcops lab down")


def _rebuild(state: LabState, host: HostState, authorized_key: str, step: Step) -> None:
    """A fresh upper directory, the overlay again, the same identity, a new boot."""
    assert state.image is not None
    network.delete_link(host.veth)
    network.delete_netns(host.netns)
    network.create_netns(host.netns)
    network.wire_netns(host.netns, host.veth, ipaddress.IPv4Address(host.address))
    for directory in (host.upper, host.work):
        shutil.rmtree(directory, ignore_errors=True)
    mount_overlay(host, rootfs(state.image))
    personalise(host, authorized_key, host.role in KAMAILIO_ROLES)
    create_cgroups(host.cgroups)
    old = host.process
    host.process = start_host(host)
    state.processes = [p for p in state.processes if p != old] + [host.process]
    save_state(state)
    step(f"{host.name}: booting from a fresh overlay ({host.address})")
