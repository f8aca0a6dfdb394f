"""SSH to servers: one session and one round trip per host, with sudo when needed.

A script is sent on the standard input of ``/bin/sh -s`` (no second layer of shell
quoting), and its output comes back in one piece. When the login is not root the
shell runs under ``sudo -n -u root`` (:func:`become_command`): still one session and
one round trip, never a password prompt, so a missing sudo rule fails at once with
the fix (:func:`become_error`) instead of hanging. Scripts are framed and parsed by the
host-task layer (:mod:`vcops.connectors.hosttask`). Host keys are always verified
against the inventory's pinned ``known_hosts`` file (or the user's own when the
inventory names none); there is no "accept on first use".

Every vcops host script goes through :func:`run_script`; the host-task layer runs
many hosts at once and turns one host's failure into a result, never an exception.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import shlex
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncssh
from pydantic import BaseModel

from vcops.connectors.kept import current, run_process, run_sync
from vcops.errors import (
    AuthError,
    BecomeError,
    CommandError,
    ConnectError,
    ConnectTimeout,
    HostKeyError,
)
from vcops.inventory.models import Inventory, Server, SshAccess


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
    #: How the login gains root (``sudo``) for host tasks; None: run as the login.
    access: SshAccess | None = None

    @classmethod
    def from_inventory(cls, inventory: Inventory, server: Server) -> SshTarget:
        ssh = inventory.settings.ssh
        access = inventory.ssh_access(server)
        return cls(
            name=server.name,
            address=server.address,
            port=access.port,
            user=access.user,
            access=access,
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


SUDOERS_FIX = "{user} ALL=({become_user}) NOPASSWD: ALL"


def become_command(access: SshAccess | None, token: str) -> tuple[str, bool]:
    """The remote command that reads the script on stdin, and whether the stdin must
    start with the sudo password line (pure; every word through ``shlex.quote``).

    ``sudo -n`` never prompts, so a sudo that wants a password fails at once instead of
    hanging. With ``become_password_env``, ``sudo -S`` reads the password from the
    first line of stdin; a shell then skips everything up to this run's go-line, so
    the password is never run as a command when sudo did not ask for it.
    """
    if access is None or not access.sudo:
        return "/bin/sh -s", False
    if access.become_password_env is None:
        return shlex.join(["sudo", "-n", "-u", access.become_user, "--", "/bin/sh", "-s"]), False
    skip = (
        f'while IFS= read -r l; do [ "$l" = {shlex.quote(go_line(token))} ] && break; done; '
        "exec /bin/sh -s"
    )
    command = ["sudo", "-S", "-p", "", "-u", access.become_user, "--", "/bin/sh", "-c", skip]
    return shlex.join(command), True


def go_line(token: str) -> str:
    return f"@@vcops-go-{token}"


def become_input(
    access: SshAccess | None, token: str, script: str, environ: dict[str, str]
) -> tuple[str | None, str]:
    """The stdin for :func:`become_command` (it holds the password: never log it), or
    None and why not (the password's environment variable is not set)."""
    _command, with_password = become_command(access, token)
    if not with_password:
        return script, ""
    assert access is not None and access.become_password_env is not None
    password = environ.get(access.become_password_env)
    if password is None:
        return None, (
            f"settings.ssh.become_password_env names {access.become_password_env}, "
            "which is not set in vcops's environment; export it, or allow sudo without a "
            f"password: {SUDOERS_FIX.format(user=access.user, become_user=access.become_user)}"
        )
    return f"{password}\n{go_line(token)}\n{script}", ""


def become_error(name: str, access: SshAccess, stderr: str, exit_status: int | None) -> str:
    """One line naming the host, what sudo said and the fix (pure)."""
    said = [ln.strip() for ln in stderr.splitlines() if ln.strip()]
    sudo_lines = [ln for ln in said if ln.startswith("sudo:") or "sudo" in ln]
    last = (sudo_lines or said or [f"exit {exit_status}"])[-1][:200]
    rule = SUDOERS_FIX.format(user=access.user, become_user=access.become_user)
    fix = (
        f"add '{rule}' to /etc/sudoers.d/vcops on the host (check it with visudo -cf), "
        "or name the sudo password's environment variable in settings.ssh.become_password_env"
    )
    if exit_status == 127 or "not found" in last:
        return f"{name}: sudo is not installed ({last}); install it, then {fix}"
    if "incorrect password" in last or "Sorry, try again" in stderr:
        return (
            f"{name}: sudo refused the password from ${access.become_password_env} ({last}); "
            f"fix the password, or {fix}"
        )
    return f"{name}: sudo -n as {access.user} -> {access.become_user} refused ({last}); {fix}"


_KNOWN_HOSTS: dict[tuple[str, int, int], asyncssh.SSHKnownHosts] = {}


def _known_hosts(path: Path) -> asyncssh.SSHKnownHosts:
    """The pinned known_hosts file, parsed once per content (not once per connection:
    with thousands of hosts, re-reading it for every session made a scan quadratic)."""
    stat = path.stat()
    key = (str(path), stat.st_mtime_ns, stat.st_size)
    parsed = _KNOWN_HOSTS.get(key)
    if parsed is None:
        parsed = asyncssh.read_known_hosts(str(path))
        _KNOWN_HOSTS.clear()
        _KNOWN_HOSTS[key] = parsed
    return parsed


async def run_script(
    target: SshTarget,
    script: str,
    *,
    timeout: float = 120.0,
    environ: dict[str, str] | None = None,
) -> CommandResult:
    """Run ``script`` with ``/bin/sh -s`` on the target over one SSH session, under
    sudo when ``target.access`` says so (``environ`` holds the sudo password variable;
    default: the process environment).

    Raises:
        BecomeError: ``become_password_env`` names a variable that is not set.
        HostKeyError: the host key is not the pinned one.
        AuthError: the key was refused.
        ConnectTimeout: no answer within the connect timeout, or the script ran too long.
        ConnectError: any other connection failure.
    """
    where = f"{target.name} ({target.address}:{target.port})"
    token = secrets.token_hex(8)
    command, _ = become_command(target.access, token)
    stdin, why = become_input(
        target.access, token, script, dict(os.environ) if environ is None else environ
    )
    if stdin is None:
        raise BecomeError(f"{target.name}: {why}")
    # Never pass None: to asyncssh that means "do not verify host keys".
    known_hosts = target.known_hosts or Path("~/.ssh/known_hosts").expanduser()
    if not known_hosts.exists():
        raise HostKeyError(
            f"{where}: known_hosts file {known_hosts} not found; create it with the hosts' keys"
        )
    try:
        pinned = _known_hosts(known_hosts)
    except (OSError, ValueError) as exc:
        raise HostKeyError(f"{where}: known_hosts file {known_hosts} unreadable: {exc}") from exc
    kept = current()

    def connect() -> Any:  # asyncssh's awaitable and async context manager
        return asyncssh.connect(
            target.address,
            port=target.port,
            username=target.user,
            known_hosts=pinned,
            client_keys=[str(target.key_file)] if target.key_file else (),
            agent_path=None,
            connect_timeout=target.connect_timeout,
            login_timeout=target.connect_timeout,
            config=None,
            # a kept connection notices a host gone without a word (15 s x 3)
            keepalive_interval=15 if kept is not None else 0,
            keepalive_count_max=3,
        )

    try:
        if kept is not None:  # a window run: one connection per host, a session per script
            key = (target.address, target.port, target.user, target.key_file, known_hosts)
            proc = await kept.run_command(key, connect, command, stdin, timeout)
        else:
            async with connect() as conn:
                proc = await asyncio.wait_for(run_process(conn, command, stdin), timeout=timeout)
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


def run_one(target: SshTarget, script: str, *, timeout: float = 120.0) -> CommandResult:
    """Run an unframed script on one host (lab and test plumbing), under sudo like every
    host script; raise on a connection failure, a refused sudo or a non-zero exit."""
    result = run_sync(run_script(target, script, timeout=timeout))
    access = target.access
    if result.exit_status != 0 and access is not None and access.sudo:
        if any(ln.startswith("sudo:") for ln in result.stderr.splitlines()):
            raise BecomeError(become_error(target.name, access, result.stderr, result.exit_status))
    if result.exit_status != 0:
        raise CommandError(
            f"{target.name}: exited {result.exit_status}: {result.stderr.strip()[-300:]}"
        )
    return result
