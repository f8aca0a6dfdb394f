"""Network devices for snapshots: fetch running/startup configs, push configs back.

Reads go through the device's transport from :mod:`vcops.connectors.netdev`: NAPALM
``get_config(retrieve="all")``, falling back to Netmiko when the NAPALM driver cannot
serve it (the fallback is reported). Writes take one of two paths:

- **replace** (NAPALM): ``load_replace_candidate -> compare_config ->
  commit_config(revert_in=...) -> check from a second session -> confirm_commit``;
  drivers without commit-confirm commit plainly and ``rollback()`` if the check fails.
  :func:`replace_config` works on any :class:`ConfigDriver`, so the same contract tests
  run against NAPALM's replay driver and, when one is named, a real device.
- **merge** (Netmiko): the line plan from :mod:`vcops.snapshot.restore_plan`, pushed with
  ``send_config_set(..., exit_config_mode=False)`` after ``enable``.

Nothing a device prints is ever passed on unmasked, and error messages never quote
config lines.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vcops.connectors.netdev import (
    SHOW_RUNNING,
    DeviceTarget,
    netmiko_session,
    ssh_options,
    translate_error,
)
from vcops.errors import CommandError, ConnectError, InventoryError
from vcops.snapshot.catalog import PLATFORM_KINDS
from vcops.snapshot.mask import mask_text
from vcops.snapshot.noise import is_error_output

#: The command that prints the startup config (Junos has none: commits are the config).
SHOW_STARTUP = {
    "ios": "show startup-config",
    "eos": "show startup-config",
    "nxos_ssh": "show startup-config",
}
#: Platforms whose Netmiko session must enter enable mode first.
#: Seconds before an unconfirmed NAPALM commit reverts on its own.
REVERT_IN = 300


@dataclass
class DeviceConfigs:
    """A device's configs as fetched (NOT masked: keep in memory only)."""

    running: str = field(repr=False)
    startup: str | None = field(repr=False)
    via: str
    notes: list[str] = field(default_factory=list)


class ConfigDriver(Protocol):
    """The part of a NAPALM driver a config replace needs."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def get_config(self, retrieve: str = "all") -> dict[str, str]: ...
    def load_replace_candidate(
        self, filename: str | None = None, config: str | None = None
    ) -> None: ...
    def compare_config(self) -> str: ...
    def commit_config(self, message: str = "", revert_in: int | None = None) -> None: ...
    def confirm_commit(self) -> None: ...
    def discard_config(self) -> None: ...
    def rollback(self) -> None: ...


class ReplaceUnsupported(Exception):
    """The driver cannot load a replace candidate; nothing was changed on the device."""


@dataclass
class ReplaceOutcome:
    """What a replace did. ``diff`` is the driver's diff, NOT masked."""

    diff: str = field(repr=False)
    committed: bool = False
    confirmed: bool = False
    notes: list[str] = field(default_factory=list)


def _kind(target: DeviceTarget) -> str:
    return PLATFORM_KINDS.get(target.platform, "generic")


def describe_error(exc: BaseException, target: DeviceTarget, key: bytes) -> str:
    """An exception as one masked line (class name and first line only)."""
    text = str(exc).strip().splitlines()
    first = text[0][:200] if text else ""
    return mask_text(
        f"{exc.__class__.__name__}: {first}" if first else exc.__class__.__name__,
        _kind(target),
        key,
    ).text


def napalm_driver(target: DeviceTarget) -> Any:
    """A NAPALM driver instance for the target (not opened)."""
    from napalm import get_network_driver

    driver = get_network_driver(target.platform)
    password = target.password()
    # The enable secret is the login password (as in vcops.connectors.netdev).
    options: dict[str, object] = {"port": target.port, "secret": password, **ssh_options(target)}
    return driver(
        target.address,
        target.username,
        password,
        timeout=int(target.timeout),
        optional_args=options,
    )


def _netmiko(target: DeviceTarget) -> Any:
    """A Netmiko session in enable mode (close it with ``with``)."""
    return netmiko_session(target)


def _fetch_netmiko(target: DeviceTarget) -> tuple[str, str | None]:
    with _netmiko(target) as conn:
        running = str(conn.send_command(SHOW_RUNNING[target.platform]))
        startup = None
        command = SHOW_STARTUP.get(target.platform)
        if command:
            text = str(conn.send_command(command))
            startup = None if is_error_output(text) else text
    return running, startup


def fetch_configs(target: DeviceTarget, key: bytes) -> DeviceConfigs:
    """Running and (where there is one) startup config through the device's transport.

    Raises:
        ConnectError: (or a subclass) the device cannot be reached or logged in to.
        InventoryError: the password reference cannot be resolved.
    """
    notes: list[str] = []
    if target.transport == "napalm":
        try:
            conn = napalm_driver(target)
            conn.open()
        except InventoryError:
            raise
        except Exception as exc:
            raise translate_error(target, exc) from exc
        try:
            configs = conn.get_config(retrieve="all")
            running = str(configs.get("running") or "")
            startup = str(configs.get("startup") or "") or None
            if running.strip():
                return DeviceConfigs(running=running, startup=startup, via="napalm")
            notes.append("napalm get_config returned no running config; used netmiko")
        except Exception as exc:
            notes.append(
                f"napalm get_config failed ({describe_error(exc, target, key)}); used netmiko"
            )
        finally:
            with contextlib.suppress(Exception):  # a broken session must not hide the result
                conn.close()
    try:
        running, startup = _fetch_netmiko(target)
    except InventoryError:
        raise
    except Exception as exc:
        raise translate_error(target, exc) from exc
    return DeviceConfigs(running=running, startup=startup, via="netmiko", notes=notes)


_ERROR_MARKS = ("% Invalid", "No such command", "% Incomplete", "% Ambiguous", "% Unknown")


def push_lines(target: DeviceTarget, commands: Sequence[str], key: bytes) -> list[str]:
    """Send config lines with Netmiko (enable, config mode, left in config mode).

    Returns the device's error lines, masked (empty when every line was accepted).

    Raises:
        ConnectError: the device cannot be reached or logged in to.
    """
    try:
        with _netmiko(target) as conn:
            output = str(conn.send_config_set(list(commands), exit_config_mode=False))
    except (ConnectError, InventoryError):
        raise
    except Exception as exc:
        raise translate_error(target, exc) from exc
    kind = _kind(target)
    return [
        mask_text(line.strip(), kind, key).text
        for line in output.splitlines()
        if any(mark in line for mark in _ERROR_MARKS)
    ]


def replace_config(
    open_driver: Callable[[], ConfigDriver],
    config: str,
    *,
    check: bool,
    revert_in: int | None = REVERT_IN,
) -> ReplaceOutcome:
    """Replace a device's whole config through a NAPALM-like driver.

    Raises:
        ReplaceUnsupported: the candidate could not be loaded (the device is untouched).
        CommandError: the commit or the check after it failed (rolled back).
    """
    conn = open_driver()
    conn.open()
    try:
        try:
            conn.load_replace_candidate(config=config)
        except Exception as exc:
            raise ReplaceUnsupported(f"{exc.__class__.__name__}") from exc
        diff = conn.compare_config() or ""
        if check or not diff.strip():
            conn.discard_config()
            return ReplaceOutcome(diff=diff)
        outcome = ReplaceOutcome(diff=diff)
        confirm = revert_in is not None
        if confirm:
            try:
                conn.commit_config(revert_in=revert_in)
            except NotImplementedError:
                confirm = False
            except Exception as exc:
                if "Confirm" not in exc.__class__.__name__ and "revert" not in str(exc):
                    conn.discard_config()
                    raise CommandError(f"commit failed: {exc.__class__.__name__}") from exc
                confirm = False
            if not confirm:
                outcome.notes.append(
                    "the driver has no commit-confirm here; committed without an automatic "
                    "revert (rolled back if the check after the commit fails)"
                )
        if not confirm:
            try:
                conn.commit_config()
            except Exception as exc:
                raise CommandError(f"commit failed: {exc.__class__.__name__}") from exc
        outcome.committed = True
        try:
            probe = open_driver()
            probe.open()
            try:
                probe.get_config(retrieve="running")
            finally:
                probe.close()
        except Exception as exc:
            try:
                conn.rollback()
            except Exception:
                outcome.notes.append("rollback failed; the commit-confirm timer reverts it")
            raise CommandError(
                f"the device did not answer a second session after the commit "
                f"({exc.__class__.__name__}); rolled back"
            ) from exc
        if confirm:
            conn.confirm_commit()
            outcome.confirmed = True
        return outcome
    finally:
        conn.close()
