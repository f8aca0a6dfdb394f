"""Remove every resource of a lab, from its state file and by scanning for leftovers.

``lab down`` must work after a crash, when ``state.json`` is missing or stale, so each
kind of resource is found twice: from the state (if any) and by its lab marker:

=============  ==============================================================
processes      pid + start time from state; ``systemd-nspawn`` whose directory
               is under /var/lib/vcops-lab; the switch server and aiosmtpd
               started with paths under it; anything inside a ``vcops-*``
               network namespace or cgroup
mounts         anything mounted at or under /var/lib/vcops-lab
cgroups        top-level ``vcops-*`` cgroups in every hierarchy
links          ``vcops*`` links (the veths, then the bridge)
netns          ``vcops-*`` network namespaces
files          /var/lib/vcops-lab (only once nothing is mounted under it)
=============  ==============================================================

Nothing else is touched. Containers get SIGTERM first (nspawn powers them off
cleanly), then whatever is left gets SIGKILL.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from vcops.errors import LabError
from vcops.lab import cgroups, network
from vcops.lab.aptrepo import is_repo_server
from vcops.lab.hosts import host_name_from_root
from vcops.lab.layout import (
    BRIDGE,
    HOSTS_DIR,
    NETNS_DIR_MARKER,
    NETNS_PREFIX,
    STATE_DIR,
    machine_name,
)
from vcops.lab.state import LabState
from vcops.lab.switches import SERVER_SCRIPT
from vcops.lab.system import (
    all_pids,
    cmdline,
    is_running,
    is_same_process,
    mounts_under,
    netns_inode,
    parent_pid,
    run,
    send_signal,
)

GRACEFUL_TIMEOUT = 20.0
KILL_TIMEOUT = 10.0
UNMOUNT_TIMEOUT = 5.0
NSPAWN_PROPAGATE_DIR = Path("/run/systemd/nspawn/propagate")
NSPAWN_LOCKS_DIR = Path("/run/systemd/nspawn/locks")
POWEROFF_SIGNAL = int(signal.SIGRTMIN) + 3
"""What systemd (a container's init) takes as "power off cleanly"."""


@dataclass(frozen=True)
class LabProcess:
    """A process that belongs to the lab, what it is, and how to stop it.

    ``graceful`` processes get ``stop_signal`` first and are reported one by one;
    the others (what runs inside a container whose nspawn is gone) are SIGKILLed
    after the graceful wait and reported as a count per ``label``.
    """

    pid: int
    start_time: int | None
    label: str
    graceful: bool
    stop_signal: int = signal.SIGTERM


def find_lab_processes(state: LabState | None) -> list[LabProcess]:
    """Every live process the lab started (see the module docstring for the rules)."""
    found: dict[int, LabProcess] = {}
    if state is not None:
        labels = _state_labels(state)
        for ref in state.processes:
            if is_same_process(ref):
                label = labels.get(ref.pid, f"{ref.argv0} (pid {ref.pid})")
                found[ref.pid] = LabProcess(ref.pid, ref.start_time, label, graceful=True)
    netns_names = network.find_lab_netns() + (state.netns if state else [])
    inodes = network.netns_inodes(sorted(set(netns_names)))
    me = os.getpid()
    for pid in all_pids():
        if pid != me and pid not in found:
            proc = _classify(pid, inodes)
            if proc is not None:
                found[pid] = proc
    for path in _all_cgroups(state):
        for pid in cgroups.member_pids(path):
            if pid != me and pid not in found:
                found[pid] = LabProcess(pid, None, f"cgroup {path}", graceful=False)
    return list(found.values())


def _state_labels(state: LabState) -> dict[int, str]:
    labels = {}
    for host in state.hosts:
        if host.process:
            labels[host.process.pid] = f"host {host.name} (systemd-nspawn pid {host.process.pid})"
    for switch in state.switches:
        if switch.process:
            labels[switch.process.pid] = f"switch {switch.name} (pid {switch.process.pid})"
    if state.smtp and state.smtp.process:
        labels[state.smtp.process.pid] = f"SMTP server (pid {state.smtp.process.pid})"
    if state.repo_process:
        labels[state.repo_process.pid] = f"apt repository server (pid {state.repo_process.pid})"
    return labels


def _classify(pid: int, inodes: dict[int, str]) -> LabProcess | None:
    """The lab process ``pid`` is, or None if it is not one."""
    argv = cmdline(pid)
    if not argv:
        return None
    program = Path(argv[0]).name
    inside = f"{STATE_DIR}/"
    points_into_lab = any(inside in arg for arg in argv[1:])
    if program == "systemd-nspawn" and points_into_lab:
        names = [n for n in (host_name_from_root(a) for a in argv) if n]
        label = f"host {names[0] if names else '?'} (systemd-nspawn pid {pid})"
        return LabProcess(pid, None, label, graceful=True)
    if points_into_lab and program.startswith("python"):
        if str(SERVER_SCRIPT) in argv:
            return LabProcess(pid, None, f"switch simulator (pid {pid})", graceful=True)
        if "aiosmtpd" in argv:
            return LabProcess(pid, None, f"SMTP server (pid {pid})", graceful=True)
        if is_repo_server(argv):
            return LabProcess(pid, None, f"apt repository server (pid {pid})", graceful=True)
    inode = netns_inode(pid)
    if inode is None or inode not in inodes:
        return None
    netns = inodes[inode]
    parent = parent_pid(pid)
    if parent is not None and netns_inode(parent) != inode and not _is_nspawn(parent):
        # The init of a container whose nspawn is gone: ask systemd to power off.
        label = f"orphaned container {netns.removeprefix(NETNS_PREFIX)} (init pid {pid})"
        return LabProcess(pid, None, label, graceful=True, stop_signal=POWEROFF_SIGNAL)
    return LabProcess(pid, None, f"network namespace {netns}", graceful=False)


def _is_nspawn(pid: int) -> bool:
    argv = cmdline(pid)
    return bool(argv) and Path(argv[0]).name == "systemd-nspawn"


def _all_cgroups(state: LabState | None) -> list[Path]:
    paths = set(cgroups.find_lab_cgroups())
    if state is not None:
        paths.update(state.cgroups)
    return sorted(p for p in paths if p.exists())


def stop_processes(state: LabState | None, report: Callable[[str], None]) -> list[str]:
    """Stop the lab's main processes gracefully, wait, SIGKILL whatever is left.

    Returns:
        Problems (processes that would not die), empty when all are gone.
    """
    victims = find_lab_processes(state)
    graceful = [p for p in victims if p.graceful]
    for proc in graceful:
        send_signal(proc.pid, proc.stop_signal)
    _wait_gone(graceful, GRACEFUL_TIMEOUT, report)
    leftovers = [p for p in find_lab_processes(state) if _alive(p)]
    for proc in leftovers:
        send_signal(proc.pid, signal.SIGKILL)
    for path in _all_cgroups(state):
        cgroups.kill_cgroup(path)
    _wait_gone(leftovers, KILL_TIMEOUT, report, killed=True)
    remaining = [p for p in find_lab_processes(state) if _alive(p)]
    return [f"{p.label} (pid {p.pid}) is still running" for p in remaining]


def _alive(proc: LabProcess) -> bool:
    return is_running(proc.pid, proc.start_time)


def _wait_gone(
    procs: list[LabProcess], timeout: float, report: Callable[[str], None], killed: bool = False
) -> None:
    """Wait until ``procs`` are gone; report each graceful one, count the others."""
    pending = list(procs)
    counts: Counter[str] = Counter()
    deadline = time.monotonic() + timeout
    while pending:
        still = []
        for proc in pending:
            if _alive(proc):
                still.append(proc)
            elif proc.graceful:
                report(f"{'killed' if killed else 'stopped'} {proc.label}")
            else:
                counts[proc.label] += 1
        pending = still
        if not pending or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for label, count in sorted(counts.items()):
        report(f"killed {count} leftover process{'es' if count > 1 else ''} in {label}")


def unmount_all(report: Callable[[str], None]) -> list[str]:
    """Unmount everything at or under the state directory, deepest first."""
    problems = []
    for target in mounts_under(STATE_DIR):
        _remove_nspawn_image_lock(target)
        problem = _unmount(target, report)
        if problem:
            problems.append(problem)
    return problems


def _remove_nspawn_image_lock(root: Path) -> None:
    """Delete the lock file nspawn keeps for a container root (left if nspawn was killed).

    nspawn names it after the root's device and inode; only lab roots are considered,
    and only once their nspawn is gone (teardown stops processes first).
    """
    if host_name_from_root(str(root)) is None:
        return
    with contextlib.suppress(OSError):
        st = root.stat()
        (NSPAWN_LOCKS_DIR / f"inode-{st.st_dev}:{st.st_ino}").unlink(missing_ok=True)


def _unmount(target: Path, report: Callable[[str], None]) -> str | None:
    """Unmount ``target``, retrying while busy, lazily as a last resort; None if done."""
    deadline = time.monotonic() + UNMOUNT_TIMEOUT
    while True:
        try:
            run(["umount", str(target)], what=f"unmount {target}", timeout=30)
            report(f"unmounted {target}")
            return None
        except LabError as exc:
            if target not in mounts_under(target):
                return None
            last = str(exc)
            if time.monotonic() > deadline:
                break
        time.sleep(0.25)
    try:
        run(["umount", "--lazy", str(target)], what=f"detach {target}")
    except LabError:
        return f"{target} is still mounted ({last})"
    report(f"detached busy mount {target} (lazy unmount)")
    return None


def remove_cgroups(state: LabState | None, report: Callable[[str], None]) -> list[str]:
    """Remove every lab cgroup."""
    problems = []
    for path in _all_cgroups(state):
        try:
            cgroups.remove_cgroup(path)
            report(f"removed cgroup {path}")
        except LabError as exc:
            problems.append(str(exc))
    return problems


def remove_network(state: LabState | None, report: Callable[[str], None]) -> list[str]:
    """Delete every lab link and network namespace (and /run/netns if the lab made it)."""
    problems = []
    links = list(dict.fromkeys((state.links if state else []) + network.find_lab_links()))
    links.sort(key=lambda name: name == BRIDGE)
    for link in links:
        try:
            if network.delete_link(link):
                report(f"deleted link {link}")
        except LabError as exc:
            problems.append(str(exc))
    names = list(dict.fromkeys((state.netns if state else []) + network.find_lab_netns()))
    for name in names:
        try:
            if network.delete_netns(name):
                report(f"deleted network namespace {name}")
        except LabError as exc:
            problems.append(str(exc))
    created = (state is not None and state.netns_dir_created) or NETNS_DIR_MARKER.exists()
    if created and not network.find_lab_netns():
        with contextlib.suppress(LabError):
            if network.release_netns_dir():
                report(f"removed {network.NETNS_DIR} (created by the lab)")
    return problems


def remove_files(state: LabState | None, report: Callable[[str], None]) -> list[str]:
    """Delete the state directory, once nothing is mounted under it."""
    names = {h.name for h in state.hosts} if state else set()
    with contextlib.suppress(OSError):
        names.update(p.name for p in HOSTS_DIR.iterdir())
    for name in sorted(names):
        with contextlib.suppress(OSError):
            (NSPAWN_PROPAGATE_DIR / machine_name(name)).rmdir()
    if not STATE_DIR.exists():
        return []
    if mounts_under(STATE_DIR):
        return [f"{STATE_DIR} still has mounts under it; not deleting it"]
    shutil.rmtree(STATE_DIR, ignore_errors=True)
    if STATE_DIR.exists():
        return [f"cannot delete {STATE_DIR}"]
    report(f"removed {STATE_DIR}")
    return []


def teardown(state: LabState | None, on_step: Callable[[str], None]) -> list[str]:
    """Remove the whole lab; return what was removed, in human-readable lines.

    Every step runs even if an earlier one had problems, so one stuck resource does not
    keep the others alive.

    Raises:
        LabError: something could not be removed (the message lists all of it).
    """
    removed: list[str] = []

    def report(line: str) -> None:
        removed.append(line)
        on_step(line)

    problems = stop_processes(state, report)
    problems += unmount_all(report)
    problems += remove_cgroups(state, report)
    problems += remove_network(state, report)
    if not problems:
        problems += remove_files(state, report)
    if problems:
        raise LabError(
            "lab down could not remove everything: "
            + "; ".join(problems)
            + "; fix that, then run `vcops lab down` again"
        )
    return removed


def find_leftovers() -> list[str]:
    """Lab resources present on the machine (used to refuse ``up`` over a crashed lab)."""
    found = [f"network namespace {n}" for n in network.find_lab_netns()]
    found += [f"link {n}" for n in network.find_lab_links()]
    found += [f"cgroup {p}" for p in cgroups.find_lab_cgroups()]
    found += [f"mount {m}" for m in mounts_under(STATE_DIR)]
    found += [p.label for p in find_lab_processes(None)]
    if STATE_DIR.exists():
        found.append(f"directory {STATE_DIR}")
    return found
