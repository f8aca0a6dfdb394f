"""Benchmark (not a test): a patch window run by vcops against the same rolling update in
Ansible, on the same lab hosts, in one run.

- vcops: ``window run`` of an approved window (max concurrency 2): per host a snapshot,
  precheck, drain, ``apt-get install pkg=version``, restart of the package's unit,
  health gate (units, SIP OPTIONS where it answered, SSH), snapshot, saved progress.
- Ansible: ``ansible-playbook`` with ``serial: 2`` doing only the upgrade: apt (update
  the cache, install the pinned version), restart the unit, check it is running.

Both upgrade the same package (built here with ``dpkg-deb``, published in the lab's
apt repository) on the same hosts, one version step each. vcops does more per host,
so the ratio is an upper bound of its overhead.

Run as root from the repository: ``.venv/bin/python bench/bench_window.py [10]``.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_scan import REPO, VCOPS, compile_sources, lab, timed

from vcops.lab.aptrepo import add_debs

PACKAGE = "vcops-benchpkg"
UNIT = "[Service]\nExecStart=/bin/sleep infinity\n[Install]\nWantedBy=multi-user.target\n"
POSTINST = (
    '#!/bin/sh\nset -e\n[ "$1" = configure ] || exit 0\nsystemctl daemon-reload || true\n'
    f"systemctl enable --now {PACKAGE}.service || true\n"
)
PLAYBOOK = f"""- name: Rolling upgrade of {PACKAGE}
  hosts: servers
  serial: 2
  gather_facts: false
  tasks:
    - name: Install the pinned version
      ansible.builtin.apt:
        name: "{PACKAGE}={{{{ version }}}}"
        update_cache: true
        only_upgrade: true
    - name: Restart its unit
      ansible.builtin.systemd_service:
        name: {PACKAGE}.service
        state: restarted
    - name: Check it runs
      ansible.builtin.command: systemctl is-active {PACKAGE}.service
      changed_when: false
"""


def deb(work: Path, version: str) -> Path:
    root = work / f"pkg-{version}"
    (root / "DEBIAN").mkdir(parents=True)
    (root / "lib/systemd/system").mkdir(parents=True)
    (root / "DEBIAN/control").write_text(
        f"Package: {PACKAGE}\nVersion: {version}\nArchitecture: all\n"
        "Maintainer: vcops bench <bench@lab.invalid>\nDescription: benchmark package\n"
    )
    (root / "DEBIAN/postinst").write_text(POSTINST)
    (root / "DEBIAN/postinst").chmod(0o755)
    (root / f"lib/systemd/system/{PACKAGE}.service").write_text(UNIT)
    out = work / f"{PACKAGE}_{version}_all.deb"
    subprocess.run(["dpkg-deb", "--root-owner-group", "--build", str(root), str(out)],
                   check=True, capture_output=True)  # fmt: skip
    return out


def env_for(work: Path) -> dict[str, str]:
    return {
        **os.environ,
        "VCOPS_DATABASE_URL": f"sqlite:///{work / 'vcops.db'}",
        "VCOPS_STATE_DIR": str(work),
        "VCOPS_CONFIG": "",
        "VCOPS_ACTOR": "bench",
        "ANSIBLE_CONFIG": str(REPO / "ansible.cfg"),
        "VCOPS_INVENTORY": str(work / "lab"),
    }


def step(argv: list[str], env: dict[str, str]) -> str:
    """Run one set-up command; stop the benchmark with its last lines if it fails."""
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise SystemExit(f"{' '.join(argv[:5])} exited {done.returncode}: {' | '.join(tail)}")
    return done.stdout


def measure(hosts: int) -> dict[str, float]:
    with lab(hosts) as work:
        env = env_for(work)
        debs = Path(tempfile.mkdtemp(prefix="vcops-bench-debs-"))
        add_debs([deb(debs, "1.0")])
        step(
            [str(Path(sys.executable).parent / "ansible"), "servers", "-m", "ansible.builtin.apt",
             "-a", f"name={PACKAGE}=1.0 update_cache=true"],
            env,
        )  # fmt: skip
        add_debs([deb(debs, "1.1")])
        start = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=15)
        created = step(
            [VCOPS, "-i", str(work / "lab"), "window", "create", "--targets", "all",
             "--start", start.isoformat(), "--max-concurrency", "2", "--max-errors", "1",
             "--actions", "all-updates", "--change-id", "BENCH", "--title", "bench",
             "--key", str(work / "lab" / "lab_key"), "--json"],
            env,
        )  # fmt: skip
        window = json.loads(created)["id"]
        step(
            [VCOPS, "-i", str(work / "lab"), "window", "approve", window,
             "--key", str(work / "lab" / "board" / "alice")],
            env,
        )  # fmt: skip
        time.sleep(max(0.0, (start - datetime.now(UTC)).total_seconds() + 0.5))
        vcops = timed([VCOPS, "-i", str(work / "lab"), "window", "run", window], work)
        phases = phase_seconds(work / "vcops.db", window)
        add_debs([deb(debs, "1.2")])
        playbook = work / "rolling.yml"
        playbook.write_text(PLAYBOOK)
        ansible = timed(
            [str(Path(sys.executable).parent / "ansible-playbook"), str(playbook),
             "-e", "version=1.2"],
            work,
        )  # fmt: skip
        return {
            "vcops window run": vcops,
            "ansible-playbook serial 2": ansible,
            **{f"phase {k}": v for k, v in phases.items()},
        }


PHASES = (
    "snapshot_and_precheck",
    "drain",
    "change",
    "restart",
    "reboot",
    "gate_and_rollback",
    "snapshot_after",
)


def phase_seconds(db: Path, window: str) -> dict[str, float]:
    """Seconds per runner phase summed over the window's batches (from the runner's
    ``window.batch.done`` audit entries)."""
    with sqlite3.connect(db) as conn:
        rows = conn.execute(
            "SELECT detail FROM audit_log WHERE action = 'window.batch.done' AND target = ?",
            (window,),
        ).fetchall()
    total: dict[str, float] = {}
    for (detail,) in rows:
        for name, value in json.loads(detail).get("seconds", {}).items():
            total[name] = total.get(name, 0.0) + float(value)
    return total


def main(sizes: list[int]) -> None:
    compile_sources()
    for hosts in sizes:
        result = measure(hosts)
        v, a = result["vcops window run"], result["ansible-playbook serial 2"]
        print(f"{hosts} hosts, 2 at a time, one package upgrade each:")
        print(f"  vcops window run (snapshots, drain, gate, rollback ready): {v:7.1f} s")
        print(f"  ansible-playbook serial 2 (apt, restart, is-active only):  {a:7.1f} s")
        print(f"  ratio ansible / vcops: {a / v:.2f}x")
        phases = {k[6:]: t for k, t in result.items() if k.startswith("phase ")}
        print("  vcops, summed over the batches (per phase: the slowest host of each batch):")
        for name in ("peers", "start", "hosts", *PHASES, "finish"):
            if name in phases:
                print(f"    {name:24s} {phases[name]:6.2f} s")
        whole = sum(phases.get(n, 0.0) for n in ("peers", "start", "hosts"))
        print(f"    {'outside the batches':24s} {v - whole:6.2f} s")


if __name__ == "__main__":
    main([int(a) for a in sys.argv[1:]] or [10])
