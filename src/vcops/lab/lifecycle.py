"""``lab up``, ``lab down`` and ``lab status``: the lab's public entry points.

``lab_up`` records every resource in the state file before creating it and, if any
step fails (or is interrupted), removes everything with the same code ``lab_down``
uses. Processes are started detached, so the lab outlives the calling process.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from vcops.errors import LabError
from vcops.lab import network
from vcops.lab.aptrepo import REPO_URL, debs_dir, populate_repo, start_repo_server
from vcops.lab.cgroups import cgroup_paths, create_cgroups
from vcops.lab.hosts import (
    generate_host_keys,
    mount_overlay,
    new_host_state,
    personalise,
    start_host,
)
from vcops.lab.image import ensure_image, rootfs
from vcops.lab.inventory import (
    write_board_keys,
    write_device_secrets,
    write_inventory_files,
    write_known_hosts,
    write_lab_key,
    write_switch_password,
)
from vcops.lab.layout import (
    BRIDGE,
    GATEWAY,
    LAB_USER,
    LOCK_FILE,
    NETNS_DIR_MARKER,
    SMTP_PORT,
    STATE_DIR,
    STATE_FILE,
    SUBNET,
    check_instance,
)
from vcops.lab.mail import check_smtp_port_free, new_smtp_state, start_smtp
from vcops.lab.models import HostStatus, LabStatus, SmtpStatus, SwitchStatus
from vcops.lab.plan import HostSpec, SwitchSpec, plan_hosts, plan_switches
from vcops.lab.prereqs import check_prerequisites, require_root
from vcops.lab.probe import ssh_ready
from vcops.lab.readiness import (
    wait_for_hosts,
    wait_for_kamailio,
    wait_for_repo,
    wait_for_smtp,
    wait_for_switches,
)
from vcops.lab.state import HostState, LabState, SwitchState, load_state, save_state
from vcops.lab.switches import (
    generate_switch_key,
    new_switch_state,
    scan_host_key,
    start_switch,
)
from vcops.lab.system import all_pids, cmdline, is_same_process
from vcops.lab.teardown import find_leftovers, teardown
from vcops.roles import roles_running

KAMAILIO_ROLES = roles_running("kamailio")
"""Lab hosts that run Kamailio (the image has it installed): kamailio and sbc."""

PROBE_WORKERS = 16

Step = Callable[[str], None]


def _quiet(_message: str) -> None:
    """Default progress callback: say nothing."""


@contextlib.contextmanager
def _lab_lock() -> Iterator[None]:
    """Serialise ``up`` and ``down`` across processes."""
    check_instance()
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError as exc:
            raise LabError(
                "another `vcops lab up` or `vcops lab down` is running; wait for it to finish"
            ) from exc
        yield
    finally:
        os.close(fd)


def lab_up(
    inventory_dir: Path,
    hosts: int = 6,
    switches: int = 2,
    *,
    on_step: Step | None = None,
    user: str = LAB_USER,
) -> LabStatus:
    """Build and start the lab, write its inventory into ``inventory_dir``, return status.

    Returns only once every host's sshd, every switch's SSH port, the SMTP server and
    (on kamailio hosts) Kamailio answer.

    Args:
        inventory_dir: where ``lab.yml``, keys and known_hosts go (created if missing).
        hosts: number of Debian hosts (roles round-robin: kamailio, asterisk, ...).
        switches: number of switch simulators.
        on_step: called with one human-readable line per step.
        user: the login the lab inventory names: ``vcops`` (every host has it, with the
            lab key and a sudo rule), so the lab is managed as a real fleet is, through
            sudo; or ``root`` (opt-in: root's own SSH login, which the baseline keeps).

    Raises:
        LabError: prerequisites missing, a lab already up, or a step failed (whatever
            was created has been removed again).
    """
    step = on_step or _quiet
    check_prerequisites(switches=switches > 0)
    host_specs = plan_hosts(hosts)
    switch_specs = plan_switches(switches)
    inventory_dir = inventory_dir.resolve()
    with _lab_lock():
        _refuse_if_present()
        network.check_subnet_free()
        check_smtp_port_free()
        image = ensure_image(step)
        started = time.monotonic()
        state = LabState(inventory_dir=inventory_dir, image=image, state_dir=STATE_DIR)
        try:
            _create(state, host_specs, switch_specs, rootfs(image), step, user)
        except BaseException as exc:
            first_line = (str(exc) or type(exc).__name__).splitlines()[0]
            step(f"lab up failed: {first_line}; removing what it created")
            cleanup = ""
            try:
                teardown(state, step)
            except LabError as down_exc:
                cleanup = f"; cleaning up failed too: {down_exc}"
                step(cleanup.lstrip("; "))
            if isinstance(exc, LabError) and cleanup:
                raise LabError(f"{exc}{cleanup}") from exc
            if isinstance(exc, OSError):
                raise LabError(f"lab up failed: {exc}{cleanup}") from exc
            raise
        step(
            f"lab up: {hosts} hosts, {switches} switches, SMTP on 127.0.0.1:{SMTP_PORT} "
            f"in {time.monotonic() - started:.1f} s"
        )
    return lab_status()


def _refuse_if_present() -> None:
    """Raise if a lab, or leftovers of a crashed one, is already on this machine."""
    if STATE_FILE.exists():
        state = load_state()
        if state is not None and state.complete:
            raise LabError(
                f"the lab is already up ({len(state.hosts)} hosts, {len(state.switches)} "
                "switches); run `vcops lab down` first"
            )
        raise LabError(
            f"an earlier `vcops lab up` did not finish ({STATE_FILE}); run `vcops lab down` first"
        )
    leftovers = find_leftovers()
    if leftovers:
        more = f" and {len(leftovers) - 3} more" if len(leftovers) > 3 else ""
        raise LabError(
            f"leftovers of an earlier lab are still here ({', '.join(leftovers[:3])}{more}); "
            "run `vcops lab down` first"
        )


INOTIFY_INSTANCES = Path("/proc/sys/fs/inotify/max_user_instances")
#: Each booted systemd (PID 1 of a lab host, and its journald, udevd, logind) opens
#: its own inotify instances; Debian's default of 128 runs out near 25 hosts.
INOTIFY_PER_HOST = 16


def _ensure_inotify(hosts: int, step: Step) -> None:
    """Raise fs.inotify.max_user_instances on this machine when the lab needs more (the
    limit is the machine's: hosts another lab instance runs count too)."""
    try:
        current = int(INOTIFY_INSTANCES.read_text().strip())
    except (OSError, ValueError):
        return
    running = sum(1 for pid in all_pids() if (cmdline(pid) or [""])[0].endswith("systemd-nspawn"))
    needed = 128 + INOTIFY_PER_HOST * (hosts + running)
    if current < needed:
        INOTIFY_INSTANCES.write_text(f"{needed}\n")
        step(
            f"raised fs.inotify.max_user_instances from {current} to {needed} ({hosts} hosts each boot systemd)"
        )


def _create(
    state: LabState,
    hosts: list[HostSpec],
    switches: list[SwitchSpec],
    lower: Path,
    step: Step,
    user: str = LAB_USER,
) -> None:
    """Create every resource, recording each in ``state`` before creating it."""
    STATE_DIR.mkdir(mode=0o700, parents=True)
    state.dirs.append(STATE_DIR)
    save_state(state)

    inventory_dir = state.inventory_dir
    inventory_dir.mkdir(parents=True, exist_ok=True)
    step(f"writing lab keys into {inventory_dir}")
    lab_key = write_lab_key(inventory_dir)
    board = write_board_keys(inventory_dir)
    passwords = {s.name: write_switch_password(inventory_dir, s.name) for s in switches}
    write_device_secrets(inventory_dir)

    _ensure_inotify(len(hosts), step)
    _create_bridge(state, step)
    _start_repo(state, step)
    known_hosts = _start_nodes(state, hosts, switches, lower, lab_key, passwords, step)
    step(f"starting the SMTP server on 127.0.0.1:{SMTP_PORT}")
    smtp = new_smtp_state()
    state.smtp = smtp
    smtp.process = start_smtp(smtp)
    state.processes.append(smtp.process)
    save_state(state)

    wait_for_hosts(state.hosts, step)
    wait_for_switches(state.switches, step)
    for switch in state.switches:
        known_hosts[switch.address] = scan_host_key(switch)
    wait_for_smtp(smtp)
    wait_for_repo()
    wait_for_kamailio([h for h in state.hosts if h.role in KAMAILIO_ROLES], step)

    write_known_hosts(inventory_dir, known_hosts)
    write_inventory_files(inventory_dir, hosts, switches, board, user=user)
    step(f"wrote {inventory_dir / 'lab.yml'}")
    state.complete = True
    save_state(state)


def _create_bridge(state: LabState, step: Step) -> None:
    step(f"creating bridge {BRIDGE} ({GATEWAY}/{SUBNET.prefixlen})")
    if not network.netns_dir_is_mounted():
        state.netns_dir_created = True
        NETNS_DIR_MARKER.touch()
    state.bridge = BRIDGE
    state.links.append(BRIDGE)
    save_state(state)
    network.create_bridge()


def _start_repo(state: LabState, step: Step) -> None:
    """Fill the lab apt repository from the image's cached .debs and serve it."""
    assert state.image is not None
    count = populate_repo(debs_dir(state.image))
    step(f"serving the lab apt repository ({count} packages) on {REPO_URL}")
    state.repo_process = start_repo_server()
    state.processes.append(state.repo_process)
    save_state(state)


def _start_nodes(
    state: LabState,
    hosts: list[HostSpec],
    switches: list[SwitchSpec],
    lower: Path,
    lab_key: str,
    passwords: dict[str, Path],
    step: Step,
) -> dict[str, str]:
    """Boot the hosts and start the switches; return address -> pinned host key (hosts).

    Host keys (RSA is slow) are generated in parallel while earlier hosts boot.
    """
    known_hosts: dict[str, str] = {}
    planned_hosts = [(spec, new_host_state(spec)) for spec in hosts]
    planned_switches = [(spec, new_switch_state(spec)) for spec in switches]
    keygen = ThreadPoolExecutor(max_workers=os.cpu_count() or 2)
    try:
        host_keys = [keygen.submit(generate_host_keys, host) for _s, host in planned_hosts]
        switch_keys = [keygen.submit(generate_switch_key, sw) for _s, sw in planned_switches]
        for (spec, host), key_job in zip(planned_hosts, host_keys, strict=True):
            state.hosts.append(host)
            _create_node_network(state, spec.netns, spec.veth, spec)
            state.mounts.append(host.root)
            save_state(state)
            mount_overlay(host, lower)
            key_job.result()
            known_hosts[host.address] = personalise(host, lab_key, spec.role in KAMAILIO_ROLES)
            host.cgroups = cgroup_paths(spec.cgroup)
            state.cgroups.extend(host.cgroups)
            save_state(state)
            create_cgroups(host.cgroups)
            step(f"booting {spec.name} ({spec.address}, {spec.role})")
            host.process = start_host(host)
            state.processes.append(host.process)
            save_state(state)
        for (sw_spec, switch), key_job in zip(planned_switches, switch_keys, strict=True):
            state.switches.append(switch)
            _create_node_network(state, sw_spec.netns, sw_spec.veth, sw_spec)
            key_job.result()
            step(f"starting switch {sw_spec.name} ({sw_spec.address}, {sw_spec.transport})")
            switch.process = start_switch(switch, sw_spec, passwords[sw_spec.name])
            state.processes.append(switch.process)
            save_state(state)
    finally:
        keygen.shutdown(wait=True, cancel_futures=True)
    return known_hosts


def _create_node_network(
    state: LabState, netns: str, veth: str, spec: HostSpec | SwitchSpec
) -> None:
    state.netns.append(netns)
    state.links.append(veth)
    save_state(state)
    network.create_netns(netns)
    network.wire_netns(netns, veth, spec.address)


def lab_down(*, on_step: Step | None = None) -> list[str]:
    """Stop and remove every lab resource; return what was removed (one line each).

    Works from the state file and, when that is missing or stale after a crash, by
    scanning for ``vcops``-named resources. Safe to run twice: the second run removes
    nothing and returns an empty list. The image cache and the inventory stay.

    Raises:
        LabError: not root, or something could not be removed (all of it is listed).
    """
    require_root()
    with _lab_lock():
        return teardown(load_state(), on_step or _quiet)


def lab_status() -> LabStatus:
    """Report the lab: which hosts and switches run and answer SSH, the SMTP server.

    Raises:
        LabError: the state file exists but cannot be read (not root), or
            ``$VCOPS_LAB_INSTANCE`` is not a lab instance.
    """
    check_instance()
    if STATE_DIR.exists() and not os.access(STATE_DIR, os.R_OK | os.X_OK):
        raise LabError("cannot read the lab state: run as root: sudo vcops lab status")
    state = load_state()
    if state is None:
        return LabStatus(
            up=False,
            hosts=[],
            switches=[],
            smtp=None,
            image=None,
            state_dir=STATE_DIR,
            inventory_dir=None,
        )
    with ThreadPoolExecutor(max_workers=PROBE_WORKERS) as pool:
        hosts = list(pool.map(_host_status, state.hosts))
        switches = list(pool.map(_switch_status, state.switches))
    smtp = None
    if state.smtp is not None:
        smtp = SmtpStatus(
            host=state.smtp.host,
            port=state.smtp.port,
            maildir=state.smtp.maildir,
            running=state.smtp.process is not None and is_same_process(state.smtp.process),
        )
    return LabStatus(
        up=state.complete,
        hosts=hosts,
        switches=switches,
        smtp=smtp,
        image=state.image,
        state_dir=state.state_dir,
        inventory_dir=state.inventory_dir,
    )


def _host_status(host: HostState) -> HostStatus:
    running = host.process is not None and is_same_process(host.process)
    return HostStatus(
        name=host.name,
        address=host.address,
        roles=host.roles,
        running=running,
        ssh_reachable=running and ssh_ready(host.address),
    )


def _switch_status(switch: SwitchState) -> SwitchStatus:
    running = switch.process is not None and is_same_process(switch.process)
    return SwitchStatus(
        name=switch.name,
        address=switch.address,
        platform=switch.platform,
        transport=switch.transport,
        running=running,
        ssh_reachable=running and ssh_ready(switch.address),
    )
