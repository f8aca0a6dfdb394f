"""Run the pyinfra baseline deploy as a subprocess and read its JSON results.

The inventory handed to pyinfra is written fresh for each run: the same connection
settings as ``vcops inventory export --format pyinfra`` (the inventory's pinned
``known_hosts`` with strict checking, so root's own ``~/.ssh/known_hosts`` is never
read or written), the engine-neutral ``vcops_*`` facts, and the role variables of
:func:`vcops.enforce.vars.role_vars`.
"""

from __future__ import annotations

import json
import os
import re
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from vcops import __version__
from vcops.enforce.apply_models import QUIET, Progress
from vcops.enforce.pyinfra_progress import MARK, ProgressReader
from vcops.enforce.vars import role_vars
from vcops.errors import CommandError
from vcops.inventory.export import (
    _pyinfra_connection,
    pyinfra_literal,
    vcops_vars,
)
from vcops.inventory.models import Inventory, Server
from vcops.paths import deploys_dir

DEPLOYS_DIR = deploys_dir()
"""The pyinfra deploys shipped inside the package (``vcops/share/deploys``)."""
BASELINE_DEPLOY = DEPLOYS_DIR / "baseline.py"
RUN_TIMEOUT = 1800.0


def controller_address(address: str, port: int = 22) -> str | None:
    """The local address the kernel would use to reach ``address`` (no packet is sent)."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            sock.connect((address, port))
            return str(sock.getsockname()[0])
    except OSError:
        return None


def render_pyinfra_inventory(inventory: Inventory, servers: list[Server]) -> str:
    """A pyinfra inventory module for ``servers`` with every ``vcops_*`` variable (pure
    except for looking up the controller's own address per host)."""
    entries = []
    for server in servers:
        data = {
            **_pyinfra_connection(inventory, server),
            **vcops_vars(inventory, server),
            **role_vars(inventory, server, controller_address=controller_address(server.address)),
        }
        entries.append((server.name, data))
    return (
        f'"""pyinfra inventory written by vcops {__version__} for one apply; do not edit."""\n\n'
        + "import os as _os\n\nservers = "
        + pyinfra_literal(entries)
        + "\n"
    )


@dataclass
class PyinfraHost:
    """What pyinfra did on one host."""

    name: str
    changed: list[str] = field(default_factory=list)
    unchanged: int = 0
    failed: list[str] = field(default_factory=list)
    reached: bool = False
    errors: list[str] = field(default_factory=list)


def parse_results(
    payload: dict[str, object] | None, names: list[str], stderr: str
) -> list[PyinfraHost]:
    """Per-host outcome from pyinfra's ``--json`` output and its log on stderr (pure).

    pyinfra prints no JSON when every host failed ("No hosts remaining"); then the
    log alone says what happened. A host that appears in no operation never got
    connected: it is unreachable.
    """
    hosts = {n: PyinfraHost(n) for n in names}
    results = payload.get("results") if payload else None
    operations = results.get("operations", []) if isinstance(results, dict) else []
    json_errors: dict[str, list[str]] = {n: [] for n in names}
    for op in operations:
        label = str(op.get("name", "?"))
        for key in ("success", "no_change", "error"):
            for name in op.get(key, []):
                if name not in hosts:
                    continue
                if key == "error":
                    # pyinfra lists every op after a host's failure here too: the
                    # failing one is named in the log (below); keep these as fallback.
                    json_errors[name].append(label)
                    hosts[name].reached = True
                else:
                    _record(hosts[name], key, label)
    current = "?"
    for raw in stderr.splitlines():
        line = _strip_ansi(raw).strip()
        if line.startswith("--> Starting operation:"):
            current = line.removeprefix("--> Starting operation:").strip()
            continue
        m = re.match(r"^\[([^\]]+)\]\s*(.*)$", line)
        if not m or m[1] not in hosts:
            continue
        host, text = hosts[m[1]], m[2].strip()
        if text == "Connected":
            host.reached = True
        elif re.search(r"error|failed|could not|vcops:|refused|timed out", text, re.I):
            host.errors.append(text)
            if text.startswith("Error") and current != "?":
                _record(host, "error", current)
        elif not operations and text == "Success":
            _record(host, "success", current)
        elif not operations and text == "No changes":
            _record(host, "no_change", current)
    for name, labels in json_errors.items():
        if labels and not hosts[name].failed:
            hosts[name].failed.append(labels[0])
    return [hosts[n] for n in names]


CONDITIONAL = " (when the operations before it change)"
"""Suffix of a planned operation pyinfra runs only if an earlier one changes (``_if``)."""


def parse_plan(
    payload: dict[str, object] | None, names: list[str], stderr: str
) -> list[PyinfraHost]:
    """Per-host operations a ``pyinfra --dry --json`` run would change (pure).

    pyinfra prepares every operation from the host's live facts (files, packages,
    services, sysctls) and lists, per operation, the hosts it would change; that plan
    is what a real run executes. An operation guarded by ``_if`` (a reload after a file
    change) is listed with :data:`CONDITIONAL`. Example payload::

        {"plan": [{"name": "kernel: apply sysctls", "hosts_with_change": ["kam-01"],
                   "hosts_with_conditional_change": []}], "results": null}
    """
    hosts = {n: PyinfraHost(n) for n in names}
    plan = payload.get("plan") if payload else None
    for op in plan if isinstance(plan, list) else []:
        if not isinstance(op, dict):
            continue
        label = str(op.get("name", "?"))[:300]
        for key, suffix in (
            ("hosts_with_change", ""),
            ("hosts_with_conditional_change", CONDITIONAL),
        ):
            for name in op.get(key) or []:
                if name in hosts:
                    hosts[name].changed.append(label + suffix)
    for raw in stderr.splitlines():
        m = re.match(r"^\[([^\]]+)\]\s*(.*)$", _strip_ansi(raw).strip())
        if not m or m[1] not in hosts:
            continue
        host, text = hosts[m[1]], m[2].strip()
        if text == "Connected":
            host.reached = True
        elif re.search(r"error|failed|could not|vcops:|refused|timed out", text, re.I):
            host.errors.append(text)
    if plan is not None:
        for host in hosts.values():
            host.reached = host.reached or bool(host.changed)
    return [hosts[n] for n in names]


@dataclass(frozen=True)
class Finished:
    """A finished subprocess: its exit status and everything it printed."""

    returncode: int
    stdout: str
    stderr: str


def _run_streaming(
    argv: list[str],
    *,
    env: dict[str, str],
    cwd: str,
    on_stderr: Callable[[str], None],
    timeout: float = RUN_TIMEOUT,
) -> Finished:
    """Run ``argv`` to its end (killed after ``timeout`` seconds), handing each stderr
    line to ``on_stderr`` as it is printed (the progress markers are left out of the
    ``stderr`` kept).

    Raises:
        CommandError: the program could not start, or ran past the timeout.
    """
    try:
        proc = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
        )
    except OSError as exc:
        raise CommandError(f"pyinfra could not run ({exc}); reinstall vcops") from exc
    assert proc.stdout is not None and proc.stderr is not None
    lines: list[str] = []

    def drain(stream: IO[str]) -> None:
        for line in stream:
            lines.append(line)
            on_stderr(line)

    expired = threading.Event()

    def stop() -> None:
        expired.set()
        proc.kill()

    reading = threading.Thread(target=drain, args=(proc.stderr,), daemon=True)
    reading.start()
    timer = threading.Timer(timeout, stop)
    timer.start()
    try:
        stdout = proc.stdout.read()
        proc.wait()
        reading.join()
    finally:
        timer.cancel()
    if expired.is_set():
        raise CommandError(f"pyinfra ran longer than {timeout:.0f} s and was stopped")
    return Finished(proc.returncode, stdout, "".join(x for x in lines if not x.startswith(MARK)))


def _record(host: PyinfraHost, key: str, label: str) -> None:
    host.reached = True
    if key == "success":
        host.changed.append(label)
    elif key == "no_change":
        host.unchanged += 1
    elif label not in host.failed:
        host.failed.append(label)


def _strip_ansi(text: str) -> str:
    return re.sub(r"\x1b\[[0-9;]*m", "", text)


def run_pyinfra(
    inventory: Inventory,
    servers: list[Server],
    *,
    dry: bool = False,
    parallel: int = 20,
    deploy: Path = BASELINE_DEPLOY,
    progress: Progress = QUIET,
) -> tuple[list[PyinfraHost], float]:
    """Run ``deploy`` on ``servers``; return per-host results and pyinfra's wall time
    (``progress`` hears of each operation and each host's end as pyinfra runs them).

    With ``dry`` nothing is changed: each host's ``changed`` lists the operations
    pyinfra's own dry run plans from the live facts (:func:`parse_plan`).

    Raises:
        CommandError: pyinfra could not start or printed no JSON.
    """
    import time

    pyinfra = Path(sys.executable).parent / "pyinfra"
    with tempfile.TemporaryDirectory(prefix="vcops-pyinfra-") as tmp:
        inv_file = Path(tmp) / "inventory.py"
        inv_file.write_text(render_pyinfra_inventory(inventory, servers))
        argv = [str(pyinfra), str(inv_file), str(deploy), "--json", "--parallel", str(parallel)]
        argv.append("--dry" if dry else "-y")
        env = {**os.environ, "PYINFRA_PROGRESS": "off"}
        started = time.monotonic()
        reader = ProgressReader([s.name for s in servers], progress)
        # never the operator's directory as cwd: nothing is read from or left in it
        done = _run_streaming(argv, env=env, cwd=tmp, on_stderr=reader.feed)
        reader.finish()
        seconds = time.monotonic() - started
    try:
        payload = json.loads(done.stdout) if done.stdout.strip() else None
    except ValueError:
        payload = None
    if payload is None and "--> Connecting to hosts" not in done.stderr:
        last = _strip_ansi(done.stderr).strip().splitlines()[-1:] or ["no output"]
        raise CommandError(
            f"pyinfra exited {done.returncode} without results: {last[0]}; "
            "rerun with --debug or run the deploy by hand"
        )
    names = [s.name for s in servers]
    if dry:
        return parse_plan(payload, names, done.stderr), seconds
    return parse_results(payload, names, done.stderr), seconds
