"""SSH to servers: one session and one round trip per host, many hosts at once.

A script is sent on the standard input of ``/bin/sh -s`` (no second layer of shell
quoting), and its output comes back in one piece. Host keys are always verified
against the inventory's pinned ``known_hosts`` file (or the user's own when the
inventory names none); there is no "accept on first use".

Results are data: :func:`run_on_hosts` never raises for one host's failure; each
:class:`HostResult` says ``ok``, ``failed`` (the script ran and exited non-zero) or
``unreachable`` (we never got a shell: an *unknown* host, never a compliant one).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import asyncssh
from pydantic import BaseModel

from vcops.errors import AuthError, CommandError, ConnectError, ConnectTimeout, HostKeyError
from vcops.inventory.models import Inventory, Server


@dataclass(frozen=True)
class SshTarget:
    """Everything needed to open an SSH session to one server."""

    name: str
    address: str
    port: int
    user: str
    key_file: Path | None
    known_hosts: Path | None
    connect_timeout: float

    @classmethod
    def from_inventory(cls, inventory: Inventory, server: Server) -> SshTarget:
        ssh = inventory.settings.ssh
        return cls(
            name=server.name,
            address=server.address,
            port=inventory.ssh_port(server),
            user=inventory.ssh_user(server),
            key_file=inventory.resolve_path(ssh.key_file) if ssh.key_file else None,
            known_hosts=inventory.resolve_path(ssh.known_hosts_file)
            if ssh.known_hosts_file
            else None,
            connect_timeout=ssh.connect_timeout,
        )


class CommandResult(BaseModel):
    """What one script printed and how it exited."""

    exit_status: int
    stdout: str
    stderr: str


class HostResult(BaseModel):
    """The outcome on one host; never an exception."""

    name: str
    status: Literal["ok", "failed", "unreachable"]
    error: str | None = None
    result: CommandResult | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"


async def run_script(target: SshTarget, script: str, *, timeout: float = 120.0) -> CommandResult:
    """Run ``script`` with ``/bin/sh -s`` on the target over one SSH session.

    Raises:
        HostKeyError: the host key is not the pinned one.
        AuthError: the key was refused.
        ConnectTimeout: no answer within the connect timeout, or the script ran too long.
        ConnectError: any other connection failure.
    """
    where = f"{target.name} ({target.address}:{target.port})"
    # Never pass None: to asyncssh that means "do not verify host keys".
    known_hosts = target.known_hosts or Path("~/.ssh/known_hosts").expanduser()
    if not known_hosts.exists():
        raise HostKeyError(
            f"{where}: known_hosts file {known_hosts} not found; create it with the hosts' keys"
        )
    try:
        async with asyncssh.connect(
            target.address,
            port=target.port,
            username=target.user,
            known_hosts=str(known_hosts),
            client_keys=[str(target.key_file)] if target.key_file else (),
            agent_path=None,
            connect_timeout=target.connect_timeout,
            login_timeout=target.connect_timeout,
            config=None,
        ) as conn:
            proc = await asyncio.wait_for(
                conn.run("/bin/sh -s", input=script, check=False), timeout=timeout
            )
    except asyncssh.HostKeyNotVerifiable as exc:
        raise HostKeyError(
            f"{where}: host key not verified ({exc.reason}); check the host, then update "
            f"{known_hosts}"
        ) from exc
    except asyncssh.PermissionDenied as exc:
        raise AuthError(
            f"{where}: authentication as {target.user} refused; "
            "check the key in settings.ssh.key_file"
        ) from exc
    except TimeoutError as exc:
        raise ConnectTimeout(f"{where}: no answer within {target.connect_timeout:g}s") from exc
    except asyncssh.Error as exc:
        raise ConnectError(f"{where}: SSH error: {exc.reason}") from exc
    except OSError as exc:
        raise ConnectError(f"{where}: {exc.strerror or exc}") from exc
    stdout = (
        proc.stdout
        if isinstance(proc.stdout, str)
        else (proc.stdout or b"").decode(errors="replace")
    )
    stderr = (
        proc.stderr
        if isinstance(proc.stderr, str)
        else (proc.stderr or b"").decode(errors="replace")
    )
    return CommandResult(
        exit_status=proc.exit_status if proc.exit_status is not None else 255,
        stdout=stdout,
        stderr=stderr,
    )


async def _gather(
    targets: Sequence[SshTarget],
    script: str | Callable[[SshTarget], str],
    max_parallel: int,
    timeout: float,
    on_result: Callable[[HostResult], None] | None,
) -> list[HostResult]:
    semaphore = asyncio.Semaphore(max_parallel)

    async def one(target: SshTarget) -> HostResult:
        async with semaphore:
            started = time.monotonic()
            text = script(target) if callable(script) else script
            try:
                result = await run_script(target, text, timeout=timeout)
            except ConnectError as exc:
                host = HostResult(name=target.name, status="unreachable", error=str(exc))
            else:
                status: Literal["ok", "failed"] = "ok" if result.exit_status == 0 else "failed"
                error = None
                if status == "failed":
                    tail = (result.stderr.strip().splitlines() or ["no output"])[-1]
                    error = f"{target.name}: script exited {result.exit_status}: {tail}"
                host = HostResult(name=target.name, status=status, error=error, result=result)
            host.seconds = round(time.monotonic() - started, 3)
            if on_result is not None:
                on_result(host)
            return host

    return list(await asyncio.gather(*(one(t) for t in targets)))


def run_on_hosts(
    targets: Sequence[SshTarget],
    script: str | Callable[[SshTarget], str],
    *,
    max_parallel: int = 50,
    timeout: float = 120.0,
    on_result: Callable[[HostResult], None] | None = None,
) -> list[HostResult]:
    """Run a script on every target, at most ``max_parallel`` at once; results in target order."""
    return asyncio.run(_gather(targets, script, max_parallel, timeout, on_result))


def run_one(target: SshTarget, script: str, *, timeout: float = 120.0) -> CommandResult:
    """Run a script on one host; raise on a connection failure or a non-zero exit."""
    result = asyncio.run(run_script(target, script, timeout=timeout))
    if result.exit_status != 0:
        raise CommandError(
            f"{target.name}: exited {result.exit_status}: {result.stderr.strip()[-300:]}"
        )
    return result
