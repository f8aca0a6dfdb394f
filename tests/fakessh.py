"""Fake SSH hosts on loopback (asyncssh servers) that answer vcops's scripts with whatever
a test wants: hostile output from a host we do not control.

Each host listens on its own loopback address (127.0.0.N) with a real host key, pinned
in a ``known_hosts`` file, and accepts only the fleet's client key: vcops connects to
them exactly as to real servers (``vcops.connectors.ssh``). A host's *handler* gets
the script vcops sent on standard input and returns (stdout, exit status), or status
:data:`LOST` to drop the connection instead; nothing is ever executed.

    with FakeFleet(tmp_path) as fleet:
        fleet.add("kam-01", lambda script: ("hello\\n", 0))
        root = fleet.write_inventory(tmp_path / "inventory", roles={"kam-01": ["kamailio"]})

The contract with a real host is the one vcops relies on: a script on stdin of
``/bin/sh -s``, its stdout and exit status back (``tests/integration`` runs the same
scripts on the lab's real sshd hosts).
"""

from __future__ import annotations

import asyncio
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

import asyncssh

Handler = Callable[[str], tuple[str, int]]
#: A handler's status that drops the connection after reading the script, answering
#: nothing (a host lost while the script runs).
LOST = -1


def nonce_of(script: str, prefix: str) -> str:
    """The per-run nonce vcops put in a script after ``prefix`` (e.g. ``@@vcops-``)."""
    m = re.search(re.escape(prefix) + r"([0-9a-f]{8,32})", script)
    assert m, f"no {prefix} nonce in the script"
    return m.group(1)


@dataclass
class FakeFleet:
    """Loopback SSH servers, one per fake host, on a private event loop thread."""

    tmp: Path
    hosts: dict[str, tuple[str, int]] = field(default_factory=dict)
    handlers: dict[str, Handler] = field(default_factory=dict)
    scripts: dict[str, list[str]] = field(default_factory=dict)
    #: the server side of every SSH connection each host accepted, in order
    connections: dict[str, list[asyncssh.SSHServerConnection]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        self.host_key = asyncssh.generate_private_key("ssh-ed25519")
        client = asyncssh.generate_private_key("ssh-ed25519")
        self.client_key = self.tmp / "client_ed25519"
        client.write_private_key(str(self.client_key))
        self.client_key.chmod(0o600)
        self.authorized = asyncssh.import_authorized_keys(client.export_public_key().decode())
        self.known_hosts = self.tmp / "known_hosts"
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.servers: list[asyncssh.SSHAcceptor] = []

    def __enter__(self) -> FakeFleet:
        return self

    def __exit__(
        self,
        _t: type[BaseException] | None,
        _e: BaseException | None,
        _tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        async def stop() -> None:
            for server in self.servers:
                server.close()
                await server.wait_closed()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()

    def add(
        self, name: str, handler: Handler, at_once: tuple[str, int] | None = None
    ) -> tuple[str, int]:
        """Start a fake host; returns its (address, port). With ``at_once`` (stderr,
        status) the host answers that without reading the script, as ``sudo -n`` does
        when it refuses: the session may close before vcops has written the script."""
        address = f"127.0.0.{len(self.hosts) + 11}"
        self.handlers[name] = handler
        self.scripts[name] = []
        self.connections[name] = []
        accepted = self.connections[name]

        class Server(asyncssh.SSHServer):
            def connection_made(self, conn: asyncssh.SSHServerConnection) -> None:
                accepted.append(conn)

        async def process(proc: asyncssh.SSHServerProcess[str]) -> None:
            if at_once is not None:
                proc.stderr.write(at_once[0])
                proc.exit(at_once[1])
                return
            script = await proc.stdin.read()
            self.scripts[name].append(script)
            try:
                out, status = self.handlers[name](script)
            except Exception as exc:  # a broken handler is a test bug: say so
                out, status = f"fake host handler failed: {exc!r}\n", 99
            if status == LOST:  # the host went away mid-script
                proc.channel.get_connection().abort()
                return
            proc.stdout.write(out)
            proc.exit(status)

        async def start() -> asyncssh.SSHAcceptor:
            return await asyncssh.create_server(
                Server,
                address,
                0,
                server_host_keys=[self.host_key],
                authorized_client_keys=self.authorized,
                process_factory=process,
                encoding="utf-8",
            )

        server = asyncio.run_coroutine_threadsafe(start(), self.loop).result(10)
        self.servers.append(server)
        port = server.sockets[0].getsockname()[1]
        self.hosts[name] = (address, port)
        public = self.host_key.export_public_key().decode().strip()
        with self.known_hosts.open("a") as handle:
            handle.write(f"[{address}]:{port} {public}\n")
        return address, port

    def drop(self, name: str) -> None:
        """Close every connection ``name`` accepted, from the host's side (a reboot)."""

        async def close() -> None:
            for conn in self.connections[name]:
                conn.close()
                await conn.wait_closed()

        asyncio.run_coroutine_threadsafe(close(), self.loop).result(10)

    def write_inventory(
        self, root: Path, roles: dict[str, list[str]], environment: str = "lab", extra: str = ""
    ) -> Path:
        """An inventory of the fleet's hosts (one site, no devices), plus ``extra`` YAML."""
        root.mkdir(parents=True, exist_ok=True)
        lines = [
            "settings:",
            f"  ssh: {{user: root, key_file: {self.client_key}, "
            f"known_hosts_file: {self.known_hosts}, connect_timeout: 5}}",
            "  management_networks: [127.0.0.0/8]",
            "sites:",
            "  - {name: lo, timezone: UTC}",
            "servers:",
        ]
        for name, (address, port) in self.hosts.items():
            lines.append(
                f"  - {{name: {name}, address: {address}, port: {port}, "
                f"roles: [{', '.join(roles.get(name, ['generic']))}], site: lo, "
                f"environment: {environment}}}"
            )
        (root / "hosts.yml").write_text("\n".join(lines) + "\n" + extra)
        return root
