"""Helpers shared by the apply tests (pyinfra and Ansible engines)."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import yaml

from vcops.connectors.ssh import SshTarget
from vcops.inventory import Inventory

BIN = Path(sys.executable).parent
ROOT_KNOWN_HOSTS = Path("~/.ssh/known_hosts").expanduser()


def vcops(
    inv: Path, db: Path, *args: str, timeout: float = 900
) -> tuple[int, dict[str, object], str]:
    """Run ``vcops -i INV ARGS --json`` with its own database and state directory."""
    proc = subprocess.run(
        [str(BIN / "vcops"), "-i", str(inv), *args, "--json"],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, "VCOPS_DATABASE_URL": f"sqlite:///{db}", "VCOPS_CONFIG": ""},
        cwd=db.parent,  # state (snapshots, masking key) stays in the test's own directory
    )
    data = json.loads(proc.stdout) if proc.stdout.strip() else {}
    return proc.returncode, data, proc.stderr


def inventory_cli(root: Path, tmp_path: Path) -> Callable[..., subprocess.CompletedProcess[str]]:
    """``vcops -i ROOT ARGS`` as an operator runs it from an inventory copy: its own
    ``vcops.toml``, a database and state directory under ``tmp_path``, actor
    ``ops-oncall``. Each call returns the finished process and fails on a traceback."""
    env = {
        **os.environ,
        "VCOPS_DATABASE_URL": f"sqlite:///{tmp_path / 'vcops.db'}",
        "VCOPS_CONFIG": str(root / "vcops.toml"),
        "VCOPS_STATE_DIR": str(tmp_path / "state"),
        "VCOPS_ACTOR": "ops-oncall",
    }

    def vcops(*args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(BIN / "vcops"), "-i", str(root), *args],
            capture_output=True, text=True, timeout=600, check=False, env=env,
        )  # fmt: skip
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc

    return vcops


def target(lab: Inventory, name: str) -> SshTarget:
    return SshTarget.from_inventory(lab, next(s for s in lab.servers if s.name == name))


def known_hosts_digest() -> str | None:
    """Root's own known_hosts, to prove neither engine writes to it."""
    if not ROOT_KNOWN_HOSTS.exists():
        return None
    return hashlib.sha256(ROOT_KNOWN_HOSTS.read_bytes()).hexdigest()


def failing(scan: dict[str, object]) -> list[tuple[str, str, str]]:
    """Every failing result of a scan's JSON: (target, control, actual)."""
    return [
        (o["target"], r["control_id"], r["actual"])
        for o in scan["outcomes"]  # type: ignore[attr-defined]
        for r in o["results"]
        if r["status"] == "fail"
    ]


def host_status(report: dict[str, object]) -> dict[str, dict[str, object]]:
    return {h["name"]: h for h in report["hosts"]}  # type: ignore[index, union-attr]


def inventory_copy(lab: Inventory, tmp_path: Path, host: str, changes: dict[str, object]) -> Path:
    """A copy of the lab inventory with one server's entry changed (e.g. an environment)."""
    copy = tmp_path / "inventory"
    shutil.copytree(lab.root, copy)
    doc = yaml.safe_load((copy / "lab.yml").read_text())
    for server in doc["servers"]:
        if server["name"] == host:
            server.update(changes)
    (copy / "lab.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    return copy


def ssh_as(
    root: Path, address: str, user: str, command: str, *options: str
) -> subprocess.CompletedProcess[str]:
    """OpenSSH as ``user`` with the inventory's key and pinned known_hosts (strict), and
    any further ``-o`` ``options``."""
    return subprocess.run(
        ["ssh", "-i", str(root / "lab_key"), "-o", f"UserKnownHostsFile={root / 'known_hosts'}",
         "-o", "StrictHostKeyChecking=yes", "-o", "IdentitiesOnly=yes", "-o", "BatchMode=yes",
         "-o", "ConnectTimeout=10", *options, f"{user}@{address}", command],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip


@dataclass
class Run:
    """One vcops command's exit code, JSON and stderr, and its wall seconds."""

    code: int
    data: dict[str, object]
    err: str
    seconds: float = 0.0


def run_vcops(lab: Inventory, db: Path, *args: str) -> Run:
    """:func:`vcops` on the lab inventory, timed."""
    started = time.monotonic()
    code, data, err = vcops(lab.root, db, *args)
    return Run(code, data, err, round(time.monotonic() - started, 1))


@dataclass
class Stock:
    """An apply module's stock hosts: a scan and ``apply --check``."""

    scan: Run
    check: Run
    sshd: tuple[str, str]  # sshd_config's hash before and after the check


@dataclass
class Hardened:
    """An apply module's first apply and the scan after it."""

    apply: Run
    scan: Run
    known: tuple[str | None, str | None]  # root's known_hosts digest around the apply
    sources: Run  # the proof host scanned just before the apply, its apt sources moved away
