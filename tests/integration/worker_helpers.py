"""What the site-worker tests share: a redis-server per module, simulated SSH hosts, the
`vcops` command and `vcops worker` processes, a worker config, the masking key copied
to a worker, Redis's MONITOR log, and a command run while one worker is killed."""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.redis_server import start_redis
from tests.simhosts import free_range, known_hosts, make_keys
from vcops.snapshot.keys import KEY_FILE

REPO = Path(__file__).resolve().parents[2]
PYTHONPATH = os.pathsep.join([str(REPO / "src"), str(REPO)])


def env() -> dict[str, str]:
    """Now, not at import: the postgres fixture sets $PGPASSFILE for the session."""
    return {**os.environ, "PYTHONPATH": PYTHONPATH}


VCOPS = [sys.executable, "-m", "vcops.cli"]


@pytest.fixture(scope="module")
def redis_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    if not shutil.which("redis-server"):
        pytest.skip("apt-get install redis-server (make test installs it)")
    proc, url = start_redis(tmp_path_factory.mktemp("redis"))
    try:
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


class Fleet:
    def __init__(self, root: Path, first_port: int, count: int, proc: subprocess.Popen[str]):
        self.root, self.first_port, self.count, self.proc = root, first_port, count, proc

    def inventory(self, delay_site: str = "") -> Path:
        inv = self.root / "inventory"
        inv.mkdir(exist_ok=True)
        servers = []
        for i in range(self.count):
            site = "s1" if i % 2 == 0 else "s2"
            role = "asterisk" if (self.first_port + i) % 3 == 2 else "kamailio"
            servers.append(
                {
                    "name": f"h{i:02d}",
                    "address": "127.0.0.1",
                    "port": self.first_port + i,
                    "roles": [role],
                    "site": site,
                    "environment": "lab",
                }
            )
        data = {
            "settings": {
                "ssh": {
                    "key_file": str(self.root / "client"),
                    "known_hosts_file": str(self.root / "known_hosts"),
                }
            },
            "sites": [{"name": "s1", "timezone": "UTC"}, {"name": "s2", "timezone": "UTC"}],
            "servers": servers,
        }
        (inv / "fleet.yml").write_text(json.dumps(data))
        return inv


def start_fleet(root: Path, count: int, delay: float) -> Fleet:
    root.mkdir(parents=True, exist_ok=True)
    make_keys(root)
    first = free_range(count)
    known_hosts(root, first, count)
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.simhosts", str(root), str(first), str(count), str(delay)],
        stdout=subprocess.PIPE,
        text=True,
        env=env(),
        cwd=REPO,
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    return Fleet(root, first, count, proc)


@pytest.fixture
def fleet(tmp_path: Path) -> Iterator[Fleet]:
    f = start_fleet(tmp_path / "fleet", 8, 0.0)
    yield f
    f.proc.kill()
    f.proc.wait()


def run_cli(
    inv: Path, cfg: Path, *args: str, timeout: float = 240
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*VCOPS, "--inventory", str(inv), "--config", str(cfg), *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env(),
        check=False,
    )


def start_worker(inv: Path, cfg: Path, site: str, concurrency: int = 2) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            *VCOPS,
            "--inventory",
            str(inv),
            "--config",
            str(cfg),
            "worker",
            "--site",
            site,
            "--concurrency",
            str(concurrency),
        ],
        env=env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def wait_workers(inv: Path, cfg: Path, sites: dict[str, int]) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        out = run_cli(inv, cfg, "worker", "status", "--json")
        if out.returncode == 0:
            live = [w for w in json.loads(out.stdout)["workers"] if w["alive"]]
            if all(sum(w["site"] == s for w in live) >= n for s, n in sites.items()):
                return
        time.sleep(0.5)
    raise AssertionError("workers never reported a heartbeat")


def stop_all(*procs: subprocess.Popen[str]) -> None:
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
    for p in procs:
        try:
            p.wait(timeout=20)
        except subprocess.TimeoutExpired:
            p.kill()
            p.wait()


def site_config(
    path: Path,
    broker_url: str | None = None,
    sites: tuple[str, ...] = (),
    database: str | None = None,
    **workers: object,
) -> Path:
    """A vcops.toml beside its own state directory (SQLite there unless ``database``),
    with ``[workers]`` for ``sites`` when a broker is given."""
    path.parent.mkdir(parents=True, exist_ok=True)
    db = database or f"sqlite:///{path.parent / 'vcops.db'}"
    lines = ["[store]", f'database_url = "{db}"', f'state_dir = "{path.parent / "state"}"']
    if broker_url:
        lines += ["[workers]", f'broker_url = "{broker_url}"', f"sites = {json.dumps(sites)}"]
        lines += [f"{k} = {json.dumps(v)}" for k, v in workers.items()]
    path.write_text("\n".join(lines) + "\n")
    return path


def copy_key(src: Path, dst: Path) -> None:
    """The controller's masking key into another state directory (mode 0600)."""
    (dst / "state").mkdir(parents=True, exist_ok=True, mode=0o700)
    shutil.copy(src / "state" / KEY_FILE, dst / "state" / KEY_FILE)
    (dst / "state" / KEY_FILE).chmod(0o600)


_BODY = re.compile(r'body\\*": \\*"([A-Za-z0-9+/=]{8,})\\*"')


def task_bodies(log: Path) -> str:
    """The task messages (kombu sends them base64-encoded) in a MONITOR log, decoded:
    what a payload check must read, since the raw log shows only base64."""
    found = []
    for match in _BODY.finditer(log.read_text(errors="replace")):
        with contextlib.suppress(ValueError):
            found.append(base64.b64decode(match.group(1)).decode(errors="replace"))
    return "\n".join(found)


@contextmanager
def redis_monitor(redis_url: str, log: Path) -> Iterator[Path]:
    """Everything that crosses Redis meanwhile, in ``log`` (``redis-cli MONITOR``)."""
    with log.open("w") as sink:
        monitor = subprocess.Popen(
            ["redis-cli", "-u", redis_url, "MONITOR"], stdout=sink, stderr=subprocess.STDOUT
        )
    try:
        yield log
    finally:
        monitor.terminate()
        monitor.wait(timeout=10)


def run_killing(
    inv: Path, cfg: Path, args: list[str], victim: subprocess.Popen[str]
) -> tuple[int, str, str]:
    """``vcops ARGS`` while every worker is inside a 3 s host session, then ``victim``
    killed with SIGKILL (its task is redelivered); the command's exit code, stdout and
    stderr."""
    command = subprocess.Popen(
        [*VCOPS, "--inventory", str(inv), "--config", str(cfg), *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(),
    )
    time.sleep(2.0)
    victim.send_signal(signal.SIGKILL)
    out, err = command.communicate(timeout=120)
    return command.returncode, out, err
