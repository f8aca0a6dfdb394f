"""A throwaway redis-server on a free loopback port, for the worker tests and the fleet
benchmark: no persistence, its files in a directory of the caller's."""

from __future__ import annotations

import socket
import subprocess
import time
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, seconds: float = 20) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(f"nothing listens on {port}")


def start_redis(work: Path) -> tuple[subprocess.Popen[bytes], str]:
    """Start redis-server bound to 127.0.0.1; return the process and its broker URL."""
    port = free_port()
    proc = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
         "--appendonly", "no", "--dir", str(work)],
        stdout=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        wait_port(port)
    except AssertionError:
        proc.terminate()
        raise
    return proc, f"redis://127.0.0.1:{port}/0"
