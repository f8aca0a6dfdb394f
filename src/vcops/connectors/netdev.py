"""Network devices through NAPALM or Netmiko, host keys verified, passwords by reference.

Third-party errors are translated here into the vcops tree. Example::

    config = fetch_running_config(inventory, device)   # str, the running config
"""

from __future__ import annotations

import os
import socket
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel

from vcops.errors import (
    AuthError,
    ConnectError,
    ConnectTimeout,
    HostKeyError,
    InventoryError,
    Problem,
)
from vcops.inventory.models import Device, Inventory

#: Netmiko device types per inventory platform.
NETMIKO_TYPES = {
    "ios": "cisco_ios",
    "eos": "arista_eos",
    "junos": "juniper_junos",
    "nxos_ssh": "cisco_nxos",
}
#: The command that prints the running config, per platform.
SHOW_RUNNING = {
    "ios": "show running-config",
    "eos": "show running-config",
    "junos": "show configuration | display set",
    "nxos_ssh": "show running-config",
}


@dataclass(frozen=True)
class DeviceTarget:
    """Everything needed to log in to one device (the password is resolved late)."""

    name: str
    address: str
    port: int
    platform: str
    transport: str
    username: str
    password_env: str | None
    password_file: Path | None
    known_hosts: Path | None
    timeout: float

    @classmethod
    def from_inventory(cls, inventory: Inventory, device: Device) -> DeviceTarget:
        ssh = inventory.settings.ssh
        creds = device.credentials
        return cls(
            name=device.name,
            address=device.address,
            port=device.port,
            platform=device.platform,
            transport=device.transport,
            username=creds.username,
            password_env=creds.password_env,
            password_file=inventory.resolve_path(creds.password_file)
            if creds.password_file
            else None,
            known_hosts=inventory.resolve_path(ssh.known_hosts_file)
            if ssh.known_hosts_file
            else None,
            timeout=ssh.connect_timeout,
        )

    def password(self) -> str:
        """Resolve the password reference now, so it lives in memory only while used."""
        if self.password_env:
            value = os.environ.get(self.password_env)
            if not value:
                raise InventoryError(
                    [
                        Problem(
                            "environment",
                            f"device {self.name}",
                            f"${self.password_env} is not set",
                            f"export {self.password_env}=...",
                        )
                    ]
                )
            return value
        assert self.password_file is not None
        try:
            return self.password_file.read_text().strip()
        except OSError as exc:
            raise InventoryError(
                [
                    Problem(
                        str(self.password_file),
                        f"device {self.name}",
                        f"cannot read password file: {exc.strerror}",
                        "create it, mode 0600",
                    )
                ]
            ) from exc


class DeviceResult(BaseModel):
    """The outcome on one device; never an exception."""

    name: str
    status: Literal["ok", "failed", "unreachable"]
    transport: str
    error: str | None = None
    output: str = ""


def ssh_options(target: DeviceTarget) -> dict[str, object]:
    known_hosts = target.known_hosts or Path("~/.ssh/known_hosts").expanduser()
    return {
        "ssh_strict": True,
        "system_host_keys": False,
        "alt_host_keys": True,
        "alt_key_file": str(known_hosts),
        "allow_agent": False,
        "use_keys": False,
    }


def translate_error(target: DeviceTarget, exc: Exception) -> ConnectError:
    where = f"{target.name} ({target.address}:{target.port})"
    text = str(exc)
    name = exc.__class__.__name__
    if (
        "not found in known_hosts" in text
        or ("Server" in text and "not found" in text)
        or (name == "SSHException" and "host key" in text.lower())
    ):
        return HostKeyError(
            f"{where}: host key not verified; check the device, "
            f"then add its key to {target.known_hosts}"
        )
    if "Authentication" in name or "Authentication" in text:
        return AuthError(
            f"{where}: login as {target.username} refused; check the password reference"
        )
    if "Timeout" in name or isinstance(exc, socket.timeout | TimeoutError):
        return ConnectTimeout(f"{where}: no answer within {target.timeout:g}s")
    return ConnectError(f"{where}: {name}: {text.splitlines()[0] if text else 'connection failed'}")


ENABLE_PLATFORMS = frozenset({"ios", "eos", "nxos_ssh"})


def netmiko_session(target: DeviceTarget, password: str | None = None) -> Any:
    """A Netmiko session in enable mode where the platform has one (use it with ``with``).

    The enable secret is the login password (by reference, like the password itself).
    """
    from netmiko import ConnectHandler

    secret = password if password is not None else target.password()
    conn = ConnectHandler(
        device_type=NETMIKO_TYPES[target.platform],
        host=target.address,
        port=target.port,
        username=target.username,
        password=secret,
        secret=secret,
        conn_timeout=target.timeout,
        **ssh_options(target),
    )
    if target.platform in ENABLE_PLATFORMS and not conn.check_enable_mode():
        conn.enable()
    return conn


def fetch_running_config(target: DeviceTarget) -> str:
    """The device's running config through its transport (NAPALM ``get_config`` or Netmiko).

    Raises:
        ConnectError: (or a subclass) when the device cannot be reached or logged in to.
        InventoryError: the password reference cannot be resolved.
    """
    password = target.password()
    try:
        if target.transport == "napalm":
            from napalm import get_network_driver

            driver = get_network_driver(target.platform)
            # The enable secret is the login password by reference (a separate
            # enable_env/enable_file would go in Credentials when a site needs it).
            options: dict[str, object] = {
                "port": target.port,
                "secret": password,
                **ssh_options(target),
            }
            with driver(
                target.address,
                target.username,
                password,
                timeout=int(target.timeout),
                optional_args=options,
            ) as conn:
                configs = conn.get_config(retrieve="running")
            return str(configs["running"])
        with netmiko_session(target, password) as conn:
            return str(conn.send_command(SHOW_RUNNING[target.platform]))
    except InventoryError:
        raise
    except Exception as exc:
        raise translate_error(target, exc) from exc


def fetch_many(
    targets: Sequence[DeviceTarget],
    *,
    max_parallel: int = 16,
    on_result: Callable[[DeviceResult], None] | None = None,
) -> list[DeviceResult]:
    """The running config of every device, in parallel threads; results in target order."""

    def one(target: DeviceTarget) -> DeviceResult:
        try:
            output = fetch_running_config(target)
        except ConnectError as exc:
            result = DeviceResult(
                name=target.name, status="unreachable", transport=target.transport, error=str(exc)
            )
        except InventoryError as exc:
            result = DeviceResult(
                name=target.name, status="failed", transport=target.transport, error=str(exc)
            )
        else:
            result = DeviceResult(
                name=target.name, status="ok", transport=target.transport, output=output
            )
        if on_result is not None:
            on_result(result)
        return result

    if not targets:
        return []
    with ThreadPoolExecutor(max_workers=min(max_parallel, len(targets))) as pool:
        return list(pool.map(one, targets))
