"""Benchmark (not a test): vcops scan against the peer tools, on 10 and 30 lab hosts.

Measured in one run, on the same lab hosts, wall time of the whole command:

- ``vcops scan --no-store`` (one SSH round trip per host, every control, pending
  upgrades computed on every host)
- ``vcops scan`` run twice with a store, the second timed: nothing apt reads changed
  in between, so every host answers "unchanged" and skips ``apt list --upgradable``
  (the usual case for a scheduled scan: see ``vcops.facts.upgrades``), and on the
  hardened hosts needrestart too; the bench prints on how many hosts each was skipped
- ``pyinfra --dry`` of ``deploys/baseline.py`` (pyinfra's own fact gathering for the
  same baseline)
- ``ansible-playbook --check`` of ``deploys/site.yml`` (the roles), when the roles exist
- ``vcops apply`` with the pyinfra engine and with the ansible engine (each on a
  fresh lab); after the pyinfra apply, ``vcops scan`` and ``pyinfra --dry`` once more,
  on hosts that are now hardened (fail2ban, needrestart, auditd: more for a scan to ask)

Beside the wall time, each command's controller CPU (its process tree's rusage) and the
lab hosts' own CPU during it (their cgroups' ``usage_usec``: sshd, the facts script and
everything it runs) are printed per host, with the host-CPU ratio against ``pyinfra
--dry``.

Run as root from the repository: ``.venv/bin/python bench/bench_scan.py [--scan-only |
--no-ansible] [10 30]`` (``--scan-only``: the scans and ``pyinfra --dry`` only, no
Ansible, no apply; ``--no-ansible``: everything but Ansible).
It takes the machine-wide lab lock, brings labs up and down itself, and prints
times and ratios. Numbers depend on the machine: the lab hosts share its cores.
"""

from __future__ import annotations

import fcntl
import functools
import itertools
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
VCOPS = str(BIN / "vcops")


@contextmanager
def lab(hosts: int) -> Iterator[Path]:
    with open("/run/vcops-lab-tests.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        work = Path(tempfile.mkdtemp(prefix="vcops-bench-"))
        env = {
            **os.environ,
            "VCOPS_DATABASE_URL": f"sqlite:///{work / 'vcops.db'}",
            "VCOPS_STATE_DIR": str(work),
        }
        subprocess.run([VCOPS, "lab", "down"], env=env, capture_output=True, check=False)
        subprocess.run(
            [
                VCOPS,
                "lab",
                "up",
                "--hosts",
                str(hosts),
                "--switches",
                "0",
                "--dir",
                str(work / "lab"),
            ],
            env=env,
            capture_output=True,
            check=True,
        )
        try:
            yield work
        finally:
            subprocess.run([VCOPS, "lab", "down"], env=env, capture_output=True, check=False)


def compile_sources() -> None:
    """Byte-compile vcops's sources once, as a wheel install does: the peers' packages
    in the virtualenv are compiled, and with PYTHONDONTWRITEBYTECODE set (or a fresh
    checkout) every vcops command would otherwise compile its modules each time."""
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(REPO / "src" / "vcops")],
                   check=True, capture_output=True)  # fmt: skip


LAST_CPU = [0.0, 0.0]
LAST_STDOUT = [""]
NOTES: list[str] = []
"""Lines printed after the tables: what the timed scans skipped on the hosts."""
"""The controller CPU seconds (user + system) of the last :func:`timed` command, and
the lab hosts' own CPU seconds during it (their cgroups' ``cpu.stat``)."""


@functools.cache
def _cpu_stats(work: Path) -> tuple[tuple[str, Path], ...]:
    """Each lab host's name and cgroup2 ``cpu.stat`` file, found once per lab (before any
    timing: the first call imports vcops's inventory loader)."""
    sys.path.insert(0, str(REPO / "src"))
    from vcops.inventory import load_inventory
    from vcops.lab.cgroups import cgroup_paths
    from vcops.lab.layout import CGROUP_PREFIX

    stats = tuple(
        (server.name, path / "cpu.stat")
        for server in load_inventory(work / "lab").servers
        for path in cgroup_paths(f"{CGROUP_PREFIX}{server.name}")
        if (path / "cpu.stat").exists()
    )
    if not stats:
        raise SystemExit("no lab host's cgroup has a cpu.stat: cannot read the hosts' CPU")
    return stats


def host_cpu_each(work: Path) -> dict[str, float]:
    """CPU seconds each lab host's container has used so far: its cgroup2 ``usage_usec``,
    which counts every process in it (sshd, the facts script and what it runs, pyinfra's
    fact commands, systemd answering them)."""
    used: dict[str, float] = {}
    for name, stat in _cpu_stats(work):
        fields = dict(line.split() for line in stat.read_text().splitlines())
        used[name] = used.get(name, 0.0) + int(fields.get("usage_usec", 0)) / 1e6
    return used


def _hosts_cpu(work: Path) -> float:
    """CPU seconds all the lab hosts have used so far (:func:`host_cpu_each`, summed)."""
    return sum(host_cpu_each(work).values())


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def timed(argv: list[str], work: Path, ok: tuple[int, ...] = (0,)) -> float:
    env = {
        **os.environ,
        "VCOPS_DATABASE_URL": f"sqlite:///{work / 'vcops.db'}",
        "VCOPS_STATE_DIR": str(work),
        "VCOPS_CONFIG": "",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "VCOPS_INVENTORY": str(work / "lab"),
        "PYINFRA_PROGRESS": "off",
    }
    host_cpu, cpu = _hosts_cpu(work), _children_cpu()
    started = time.monotonic()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False, cwd=REPO)
    seconds = time.monotonic() - started
    LAST_CPU[:] = [_children_cpu() - cpu, _hosts_cpu(work) - host_cpu]
    LAST_STDOUT[0] = done.stdout
    if done.returncode not in ok:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{' '.join(argv[:4])} exited {done.returncode}: {' | '.join(tail)}")
    return seconds


def note_cached(hosts: int, what: str) -> None:
    """Say on how many hosts the last scan reused its stored answers (its JSON)."""
    outcomes = json.loads(LAST_STDOUT[0])["outcomes"]
    counts = [
        f"{part} cached on {sum(o.get(part) == 'cached' for o in outcomes)}"
        for part in ("upgrades", "needrestart")
    ]
    NOTES.append(f"{hosts} hosts, {what}: {' and '.join(counts)} of {len(outcomes)} hosts")


def pyinfra_inventory(work: Path) -> Path:
    sys.path.insert(0, str(REPO / "src"))
    from vcops.enforce.pyinfra_run import render_pyinfra_inventory
    from vcops.inventory import load_inventory

    inv = load_inventory(work / "lab")
    path = work / "pyinfra_inventory.py"
    path.write_text(render_pyinfra_inventory(inv, list(inv.servers)))
    return path


def measure(hosts: int, scan_only: bool = False, no_ansible: bool = False) -> dict[str, float]:
    out: dict[str, float] = {}
    site = REPO / "deploys" / "site.yml"
    ansible = site.exists() and not scan_only and not no_ansible
    with lab(hosts) as work:
        out["vcops scan"] = timed(
            [VCOPS, "-i", str(work / "lab"), "scan", "--no-store", "--json"], work, ok=(0, 1)
        )
        out["vcops scan cpu"], out["vcops scan host"] = LAST_CPU
        stored = [VCOPS, "-i", str(work / "lab"), "scan", "--json"]
        timed(stored, work, ok=(0, 1))  # computes and stores each host's fingerprint
        out["vcops scan (repeat)"] = timed(stored, work, ok=(0, 1))
        out["vcops scan (repeat) cpu"], out["vcops scan (repeat) host"] = LAST_CPU
        note_cached(hosts, "vcops scan (repeat)")
        inv = pyinfra_inventory(work)
        dry = [str(BIN / "pyinfra"), str(inv), str(REPO / "deploys" / "baseline.py")]
        dry += ["--dry", "--parallel", "50"]
        out["pyinfra --dry"] = timed(dry, work)
        out["pyinfra --dry cpu"], out["pyinfra --dry host"] = LAST_CPU
        if ansible:
            out["ansible-playbook --check"] = timed(
                [
                    str(BIN / "ansible-playbook"),
                    "-i",
                    str(REPO / "deploys" / "inventory.vcops.yml"),
                    str(site),
                    "--check",
                    "--forks",
                    "50",
                ],
                work,
                ok=(0, 2),
            )
        if not scan_only:
            out["vcops apply (pyinfra)"] = timed(
                [VCOPS, "-i", str(work / "lab"), "apply", "--engine", "pyinfra"], work
            )
            timed(stored, work, ok=(0, 1))  # the hardened hosts' new fingerprints
            out["vcops scan (hardened)"] = timed(stored, work, ok=(0, 1))
            out["vcops scan (hardened) cpu"], out["vcops scan (hardened) host"] = LAST_CPU
            note_cached(hosts, "vcops scan (hardened)")
            out["pyinfra --dry (hardened)"] = timed(dry, work)
            out["pyinfra --dry (hardened) cpu"], out["pyinfra --dry (hardened) host"] = LAST_CPU
    if ansible:
        with lab(hosts) as work:
            out["vcops apply (ansible)"] = timed(
                [VCOPS, "-i", str(work / "lab"), "apply", "--engine", "ansible"], work, ok=(0, 1, 2)
            )
    return out


def main(sizes: list[int], scan_only: bool = False, no_ansible: bool = False) -> None:
    compile_sources()
    results: dict[int, dict[str, float]] = {}
    for n in sizes:  # each size as it is measured: a later size may not fit the machine
        results[n] = measure(n, scan_only, no_ansible)
        print(
            f"{n} hosts: " + ", ".join(f"{k} {v:.2f} s" for k, v in results[n].items()), flush=True
        )
    extra = (" cpu", " host")
    names = list(dict.fromkeys(k for r in results.values() for k in r if not k.endswith(extra)))
    print(f"\n{'wall seconds':<28}" + "".join(f"{n:>10} hosts" for n in sizes))
    for name in names:
        print(
            f"{name:<28}" + "".join(f"{results[n].get(name, float('nan')):>16.1f}" for n in sizes)
        )
    for n in sizes:
        cpu = {k[: -len(" cpu")]: v for k, v in results[n].items() if k.endswith(" cpu")}
        print(
            f"{n} hosts, controller CPU per host: "
            + ", ".join(f"{k} {1000 * v / n:.0f} ms" for k, v in cpu.items())
        )
    pairs = [  # (peer, vcops): measured on the same hosts in the same state
        ("pyinfra --dry", "vcops scan"),
        ("pyinfra --dry", "vcops scan (repeat)"),
        ("ansible-playbook --check", "vcops scan"),
        ("ansible-playbook --check", "vcops scan (repeat)"),
        ("pyinfra --dry (hardened)", "vcops scan (hardened)"),
    ]
    for n in sizes:
        r = results[n]
        host = {k[: -len(" host")]: v for k, v in r.items() if k.endswith(" host")}
        print(
            f"{n} hosts, the lab hosts' own CPU per host: "
            + ", ".join(f"{k} {1000 * v / n:.0f} ms" for k, v in host.items())
        )
        for what, suffix in (("wall time", ""), ("hosts' CPU", " host")):
            ratios = [
                f"{peer} / {mine} = {r[peer + suffix] / r[mine + suffix]:.1f}x"
                for peer, mine in pairs
                if r.get(peer + suffix) and r.get(mine + suffix)
            ]
            print(f"{n} hosts, {what}: " + ", ".join(ratios))
    for line in NOTES:
        print(line)
    for a, b in itertools.pairwise(sizes):
        growth = results[b]["vcops scan"] / results[a]["vcops scan"]
        print(f"vcops scan time grows {growth:.2f}x from {a} to {b} hosts ({b / a:.1f}x the hosts)")


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark brings up the lab")
    args = sys.argv[1:]
    flags = {"--scan-only", "--no-ansible"}
    if any(a not in flags and not a.isdigit() for a in args):  # --help among them
        raise SystemExit(__doc__.split("\n\n")[-1])
    sizes = [int(a) for a in args if a not in flags] or [10, 30]
    main(sizes, "--scan-only" in args, "--no-ansible" in args)
