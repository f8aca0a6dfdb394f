"""Benchmark (not a test): ``vcops apply`` with each engine, first run and idempotent.

On one fresh lab of N stock hosts (default 10), in one run:

- the first ``vcops apply --engine pyinfra`` of every host (package installs, every
  area), with each host's own CPU seconds for it (read from the host's cgroup), the
  bound on this machine where all lab hosts share its cores;
- a second pyinfra apply of every host (nothing left to change);
- on one host: ``vcops apply --engine ansible`` once (the engines agree, so it changes
  little), then the idempotent Ansible apply with Mitogen's ``mitogen_linear`` strategy
  (``settings.ansible.strategy``'s default) and with Ansible's own ``linear``, and the
  idempotent pyinfra apply of the same host: the ratios linear / Mitogen and Ansible /
  pyinfra (the Ansible engine's overhead).

With ``--first-ansible``: instead, the first ``vcops apply --engine ansible`` of N
stock hosts with Mitogen and with ``linear``, each on its own fresh lab.

Run as root from the repository: ``.venv/bin/python bench/bench_apply.py [--first-ansible]
[N]``. It takes the machine-wide lab lock and brings the lab up and down itself.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import yaml
from bench_scan import VCOPS, compile_sources, host_cpu_each, lab, timed

HOST = "lab-generic-01"


def linear_copy(work: Path) -> Path:
    """The lab inventory with ``settings.ansible.strategy: linear``."""
    copy = work / "lab-linear"
    shutil.copytree(work / "lab", copy)
    doc = yaml.safe_load((copy / "lab.yml").read_text())
    doc["settings"]["ansible"] = {"strategy": "linear"}
    (copy / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


def measure(hosts: int) -> None:
    with lab(hosts) as work:
        inv = str(work / "lab")
        before = host_cpu_each(work)
        first = timed([VCOPS, "-i", inv, "apply", "--engine", "pyinfra"], work)
        used = {h: s - before.get(h, 0.0) for h, s in host_cpu_each(work).items()}
        second = timed([VCOPS, "-i", inv, "apply", "--engine", "pyinfra"], work)
        one = ["apply", "--limit", HOST]
        timed([VCOPS, "-i", inv, *one, "--engine", "ansible"], work)
        mitogen = timed([VCOPS, "-i", inv, *one, "--engine", "ansible"], work)
        linear = timed([VCOPS, "-i", str(linear_copy(work)), *one, "--engine", "ansible"], work)
        pyinfra = timed([VCOPS, "-i", inv, *one, "--engine", "pyinfra"], work)
    cpu = sorted(used.values())
    print(f"{hosts} hosts, first vcops apply --engine pyinfra: {first:.1f} s")
    if cpu:
        print(
            f"  host CPU for it: {sum(cpu):.1f} s in all, {min(cpu):.1f}-{max(cpu):.1f} s per "
            f"host; on {len(cpu)} hosts sharing this machine's cores that is at least "
            f"{sum(cpu) / _cores():.1f} s of wall time"
        )
    print(f"{hosts} hosts, second vcops apply --engine pyinfra (nothing to change): {second:.1f} s")
    print(f"1 host, idempotent vcops apply --engine ansible, Mitogen: {mitogen:.1f} s")
    print(f"1 host, idempotent vcops apply --engine ansible, linear: {linear:.1f} s")
    print(f"1 host, idempotent vcops apply --engine pyinfra: {pyinfra:.1f} s")
    print(f"ratio linear / Mitogen: {linear / mitogen:.1f}x")
    print(f"Ansible engine (Mitogen) / pyinfra engine, idempotent: {mitogen / pyinfra:.1f}x")


def measure_first_ansible(hosts: int) -> None:
    seconds = {}
    for strategy in ("mitogen", "linear"):
        with lab(hosts) as work:
            inv = work / "lab" if strategy == "mitogen" else linear_copy(work)
            argv = [VCOPS, "-i", str(inv), "apply", "--engine", "ansible"]
            seconds[strategy] = timed(argv, work, ok=(0, 1, 2))
        print(f"{hosts} hosts, first vcops apply --engine ansible, {strategy}: "
              f"{seconds[strategy]:.1f} s", flush=True)  # fmt: skip
    print(f"ratio linear / Mitogen, first apply: {seconds['linear'] / seconds['mitogen']:.2f}x")


def _cores() -> int:
    return len(os.sched_getaffinity(0))


if __name__ == "__main__":
    if os.geteuid() != 0:
        raise SystemExit("run as root: the benchmark brings up the lab")
    compile_sources()
    args = sys.argv[1:]
    size = int(next((a for a in args if a.isdigit()), "10"))
    if "--first-ansible" in args:
        measure_first_ansible(size)
    else:
        measure(size)
