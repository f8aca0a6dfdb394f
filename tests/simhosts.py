"""Simulated SSH servers on loopback (asyncssh): each answers vcops's fact script with a
real capture from a lab host (``tests/fixtures/facts/gather``), varied per host so
findings differ, with this run's nonce; and the snapshot collection task with a capture
of it from a lab host (``tests/fixtures/snapshot/collect``, see :mod:`tests.snapcapture`).
For tests of the worker path and the fleet benchmark when the lab is busy or too small;
real SSH (keys, pinned host keys).

``python -m tests.simhosts DIR FIRST_PORT COUNT [DELAY]`` serves COUNT hosts on ports
FIRST_PORT.. with the keys in DIR, until killed. A file ``DIR/planted`` (``PATH`` on its
first line, the content after it) is added to every host's collected files.
"""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
from pathlib import Path

import asyncssh

from tests.framing import Record, frame, framed, task_names
from tests.snapcapture import records
from vcops.connectors.hosttask import split

GATHER = Path(__file__).parent / "fixtures" / "facts" / "gather"
RECORDED = ["stock_kamailio.txt", "hardened_kamailio.txt", "stock_asterisk.txt"]
COLLECT = Path(__file__).parent / "fixtures" / "snapshot" / "collect"
#: The snapshot capture of each host (the role of its fact capture).
COLLECTED = ["stock_kamailio.txt", "stock_kamailio.txt", "stock_asterisk.txt"]
NONCE = "0123456789abcdef"
_NONCE_RE = re.compile(r"@@vcops-([0-9a-f]{16})")


def host_output(index: int) -> str:
    """The recorded output host ``index`` answers with (three captures, varied), framed as
    the host-task layer frames the facts task, with the fixture's nonce."""
    text = (GATHER / RECORDED[index % len(RECORDED)]).read_text()
    if index % 2:
        text = re.sub(r"^maxauthtries \d+$", "maxauthtries 6", text, flags=re.M)
    if index % 5 == 0:
        text = re.sub(r"^x11forwarding \w+$", "x11forwarding yes", text, flags=re.M)
    return frame(text)


def host_records(index: int, planted: dict[str, bytes] | None = None) -> dict[str, list[Record]]:
    """Host ``index``'s records per task: ``facts`` (as :func:`host_output`) and
    ``snapshot`` (its role's capture, varied as the facts are, plus ``planted`` files)."""
    facts = split(host_output(index), NONCE).task("facts").records
    snap = records((COLLECT / COLLECTED[index % len(COLLECTED)]).read_bytes(), planted)
    if index % 2:
        snap = [
            (
                n,
                rc,
                re.sub(rb"(?m)^maxauthtries \d+$", b"maxauthtries 6", d) if n == "sshd_t" else d,
            )
            for n, rc, d in snap
        ]
    return {"facts": [(r.name, r.rc, r.data) for r in facts], "snapshot": snap}


def make_keys(root: Path) -> None:
    """A client key and a host key in ``root``."""
    for name in ("client", "host"):
        if not (root / name).exists():
            subprocess.run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(root / name)], check=True
            )


def free_range(count: int, low: int = 10000, high: int = 32000) -> int:
    """The first port of ``count`` consecutive free loopback ports below the ephemeral
    range (so outgoing connections never take one between the check and the bind)."""
    import random
    import socket

    for _ in range(50):
        first = random.randint(low, high - count)
        try:
            for port in range(first, first + count):
                with socket.socket() as s:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return first
    raise RuntimeError(f"no {count} free consecutive ports between {low} and {high}")


def known_hosts(root: Path, first_port: int, count: int) -> Path:
    key = (root / "host.pub").read_text().split()[:2]
    lines = [f"[127.0.0.1]:{p} {' '.join(key)}" for p in range(first_port, first_port + count)]
    path = root / "known_hosts"
    with path.open("a") as out:
        out.write("\n".join(lines) + "\n")
    return path


async def serve(root: Path, first_port: int, count: int, delay: float = 0.0) -> None:
    outputs = [host_output(first_port + i) for i in range(count)]
    planted: dict[str, bytes] = {}
    if (root / "planted").exists():
        path, _, content = (root / "planted").read_bytes().partition(b"\n")
        planted[path.decode()] = content
    by_task: dict[int, dict[str, list[Record]]] = {}

    def factory(index: int) -> object:
        async def handle(process: asyncssh.SSHServerProcess[str]) -> None:
            script = await process.stdin.read()
            found = _NONCE_RE.search(script)
            if delay:
                await asyncio.sleep(delay)
            tasks = task_names(script)
            if found and tasks == ["facts"]:
                # base64 payloads never hold "@@vcops-": only marker lines change
                marker = f"@@vcops-{found.group(1)}"
                process.stdout.write(outputs[index].replace(f"@@vcops-{NONCE}", marker))
            elif found:
                if index not in by_task:
                    by_task[index] = host_records(first_port + index, planted)
                known = by_task[index]
                process.stdout.write(framed(found.group(1), {t: known.get(t, []) for t in tasks}))
            process.exit(0)

        return handle

    for i in range(count):
        await asyncssh.create_server(
            asyncssh.SSHServer,
            "127.0.0.1",
            first_port + i,
            server_host_keys=[str(root / "host")],
            authorized_client_keys=str(root / "client.pub"),
            process_factory=factory(i),
            encoding="utf-8",
        )
    print("ready", flush=True)
    await asyncio.Event().wait()


if __name__ == "__main__":
    args = sys.argv[1:]
    asyncio.run(
        serve(Path(args[0]), int(args[1]), int(args[2]), float(args[3]) if len(args) > 3 else 0)
    )
