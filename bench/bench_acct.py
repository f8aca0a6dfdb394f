"""Benchmark (not a test): what BSD process accounting (the ``acct`` package, VC-ACCT-001)
costs a host, to decide where ``baseline_process_accounting`` is on by default.

The kernel writes one fixed-size record per process exit to the accounting file, so
the cost grows with the fork/exec rate, not with traffic. This measures exactly that:
``ROUNDS`` alternating runs of a shell loop executing ``/bin/true`` ``N`` times with
accounting off, then on (``acct(2)`` on a temporary file), and prints the best time
of each, the ratio on/off, the per-exec overhead, and the bytes written per process.

Needs CAP_SYS_PACCT (root outside a container; a systemd-nspawn lab host lacks it).
Accounting is switched off again in ``finally``, and the file removed. Accounting
covers the whole PID namespace while on (about a second per round).

Run: ``.venv/bin/python bench/bench_acct.py [N]`` (default 3000).
"""

from __future__ import annotations

import ctypes
import os
import subprocess
import sys
import tempfile
import time

ROUNDS = 5


def _acct(libc: ctypes.CDLL, path: str | None) -> None:
    if libc.acct(path.encode() if path else None) != 0:
        errno = ctypes.get_errno()
        raise SystemExit(f"acct({path}): {os.strerror(errno)} (needs CAP_SYS_PACCT)")


def _loop(n: int) -> float:
    script = f"i=0; while [ $i -lt {n} ]; do /bin/true; i=$((i+1)); done"
    started = time.perf_counter()
    subprocess.run(["/bin/sh", "-c", script], check=True)
    return time.perf_counter() - started


def main(n: int) -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    off: list[float] = []
    on: list[float] = []
    fd, path = tempfile.mkstemp(prefix="vcops-pacct-")
    os.close(fd)
    written = 0
    try:
        for _ in range(ROUNDS):
            off.append(_loop(n))
            size = os.path.getsize(path)
            _acct(libc, path)
            try:
                on.append(_loop(n))
            finally:
                _acct(libc, None)
            written = max(written, os.path.getsize(path) - size)
    finally:
        os.unlink(path)
    best_off, best_on = min(off), min(on)
    print(f"{n} execs of /bin/true, best of {ROUNDS} rounds")
    print(f"  accounting off: {best_off:.3f} s ({best_off / n * 1e6:.1f} us per exec)")
    print(f"  accounting on:  {best_on:.3f} s ({best_on / n * 1e6:.1f} us per exec)")
    print(f"  ratio on/off: {best_on / best_off:.3f}")
    print(f"  overhead per exec: {(best_on - best_off) / n * 1e6:.1f} us")
    print(f"  bytes written per process: {written / n:.1f} (the round's whole namespace)")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3000)
