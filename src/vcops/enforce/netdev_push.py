"""Push a device plan with a safety net: commit-confirm where the driver has it, Netmiko
otherwise; verify from a fresh login; roll back on failure (I/O edge of device apply).

- **NAPALM with commit-confirm** (eos, junos): ``load_merge_candidate ->
  compare_config -> commit_config(revert_in=N)``, then the caller's ``verify`` (a
  fresh login and re-checked controls), then ``confirm_commit``; on failure
  ``rollback()`` (and if even that cannot reach the device, the timer reverts).
  :func:`merge_with_confirm` works on any :class:`MergeDriver`, so one contract suite
  runs against NAPALM's mock driver and, when named, a real device.
- **Netmiko** (ios on either transport: NAPALM's ios driver has no commit-confirm and
  its merge needs SCP): ``send_config_set`` stopping at the first ``% Invalid input``;
  on a rejected line or a failed verify the plan's rollback lines are pushed from a new
  session, retried while the device does not answer. Each line waits for its echo and
  the next prompt (``cmd_verify``), so a line costs a round trip, not Netmiko's two
  seconds of silence per line without it; only a banner block (no prompt until its
  closing delimiter) is sent without, and waits for the silence once
  (:func:`config_blocks`).

Nothing here prints: errors come back masked, as data.
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

from vcops.connectors.netdev import DeviceTarget, netmiko_session, translate_error
from vcops.enforce.netdev_plan import DevicePlan, mask_line
from vcops.errors import ConnectError, InventoryError

#: Seconds before an unconfirmed commit reverts on its own.
REVERT_IN = 300
#: Platforms whose NAPALM driver commits with ``revert_in`` (NAPALM support matrix).
COMMIT_CONFIRM = frozenset({"eos", "junos"})
ERROR_PATTERN = r"% ?(Invalid input|Incomplete command|Ambiguous command|Unknown command)"


class MergeDriver(Protocol):
    """The part of a NAPALM driver a merge with commit-confirm needs."""

    def open(self) -> None: ...
    def close(self) -> None: ...
    def load_merge_candidate(
        self, filename: str | None = None, config: str | None = None
    ) -> None: ...
    def compare_config(self) -> str: ...
    def commit_config(self, message: str = "", revert_in: int | None = None) -> None: ...
    def confirm_commit(self) -> None: ...
    def discard_config(self) -> None: ...
    def rollback(self) -> None: ...


@dataclass
class PushOutcome:
    """What the push did: ``pushed`` (the change reached the device), ``verified``,
    ``rolled_back`` and how, and ``error`` (masked), if any."""

    pushed: bool = False
    verified: bool = False
    rolled_back: bool = False
    via: str = ""
    error: str = ""
    notes: list[str] = field(default_factory=list)


Verify = Callable[[], str | None]
"""Log in afresh and check the pushed controls; None when they pass, else why not."""


def merge_with_confirm(
    open_driver: Callable[[], MergeDriver],
    config: str,
    verify: Verify,
    *,
    revert_in: int = REVERT_IN,
) -> PushOutcome:
    """Merge ``config`` with commit-confirm: commit, verify, then confirm or roll back."""
    outcome = PushOutcome(via="napalm commit-confirm")
    conn = open_driver()
    conn.open()
    try:
        conn.load_merge_candidate(config=config)
        if not (conn.compare_config() or "").strip():
            conn.discard_config()
            outcome.notes.append("the device already had every line")
            outcome.verified = verify() is None
            return outcome
        conn.commit_config(revert_in=revert_in)
        outcome.pushed = True
        problem = verify()
        if problem is None:
            conn.confirm_commit()
            outcome.verified = True
            return outcome
        outcome.error = problem
        try:
            conn.rollback()
            outcome.notes.append("rolled back the unconfirmed commit")
        except Exception as exc:
            outcome.notes.append(
                f"rollback failed ({exc.__class__.__name__}); the commit-confirm timer "
                f"reverts it within {revert_in} s"
            )
        outcome.rolled_back = True
        return outcome
    finally:
        conn.close()


@dataclass(frozen=True)
class ConfigBlock:
    """Lines sent together: ``verified`` ones one at a time, each echo and prompt awaited;
    otherwise a banner, whose body lines get no prompt until the closing delimiter."""

    lines: tuple[str, ...]
    verified: bool


_BANNER_START = re.compile(r"banner (?:login|motd|exec|incoming)(?: (\^C|[^\s\w]))?(.*)$")


def config_blocks(platform: str, lines: Sequence[str]) -> list[ConfigBlock]:
    """Split configuration lines into runs Netmiko can check line by line and banner
    blocks (``banner login ^C`` .. the line holding ``^C``; EOS: .. ``EOF``).

    Example::

        >>> [(b.verified, b.lines) for b in config_blocks(
        ...     "ios", ["ip ssh version 2", "banner login ^C", "Hi", "^C", "cdp run"])]
        [(True, ('ip ssh version 2',)), (False, ('banner login ^C', 'Hi', '^C')), (True, ('cdp run',))]
    """
    out: list[ConfigBlock] = []
    run: list[str] = []
    rest = list(lines)
    while rest:
        line = rest.pop(0)
        start = _BANNER_START.match(line.strip())
        if start is None:
            run.append(line)
            continue
        if run:
            out.append(ConfigBlock(tuple(run), True))
            run = []
        delim = start[1] or ("EOF" if platform == "eos" else "")
        block = [line]
        if delim and delim not in start[2]:
            while rest:
                block.append(rest.pop(0))
                if delim in block[-1]:
                    break
        out.append(ConfigBlock(tuple(block), False))
    if run:
        out.append(ConfigBlock(tuple(run), True))
    return out


def _send_blocks(conn: Any, platform: str, lines: Sequence[str]) -> None:
    """Send ``lines`` in configuration mode (entered already), block by block.

    Raises:
        ConfigRejected: the device answered a line with an error.
    """
    from netmiko.exceptions import ConfigInvalidException

    for block in config_blocks(platform, lines):
        common = {"enter_config_mode": False, "exit_config_mode": False}
        if block.verified:
            try:
                conn.send_config_set(list(block.lines), error_pattern=ERROR_PATTERN, **common)
            except ConfigInvalidException as exc:
                text = str(exc).split("at command: ", 1)[-1].split(", matched error", 1)[0]
                raise ConfigRejected(text) from exc
            continue
        output = str(conn.send_config_set(list(block.lines), cmd_verify=False, **common))
        if re.search(ERROR_PATTERN, output, flags=re.M):
            raise ConfigRejected(block.lines[0])


def _send(target: DeviceTarget, lines: Sequence[str]) -> None:
    """One Netmiko session: enable, config mode, the lines, ``end``.

    Raises:
        ConfigRejected: the device answered a line with an error.
        ConnectError: it could not be reached or logged in to.
    """
    try:
        with netmiko_session(target) as conn:
            conn.config_mode()
            try:
                _send_blocks(conn, target.platform, lines)
            except ConfigRejected:
                conn.exit_config_mode()
                raise
            conn.exit_config_mode()  # not after a lost session: its own error would hide why
    except (ConfigRejected, InventoryError, ConnectError):
        raise
    except Exception as exc:
        raise translate_error(target, exc) from exc


class ConfigRejected(Exception):
    """The device refused a line (its text, NOT masked, is the argument)."""


def push_netmiko(
    target: DeviceTarget,
    plan: DevicePlan,
    verify: Verify,
    *,
    key: bytes,
    secrets: Sequence[str] = (),
    attempts: int = 6,
    pause: float = 3.0,
) -> PushOutcome:
    """Push the remediation; on a rejected line or a failed verify push the rollback."""
    outcome = PushOutcome(via="netmiko")
    try:
        _send(target, plan.remediation)
        outcome.pushed = True
        problem = verify()
    except ConfigRejected as exc:
        outcome.pushed = True  # the lines before it were applied
        problem = f"the device rejected: {mask_line(target.platform, str(exc), key, secrets)}"
    except ConnectError as exc:
        outcome.error = str(exc)
        return outcome  # never reached the device: nothing to undo
    if problem is None:
        outcome.verified = True
        return outcome
    outcome.error = problem
    for attempt in range(1, attempts + 1):
        try:
            _send(target, plan.rollback)
        except ConnectError as exc:
            outcome.notes.append(f"rollback attempt {attempt}: {exc}")
            if attempt < attempts:
                time.sleep(pause)
            continue
        except ConfigRejected as exc:
            line = mask_line(target.platform, str(exc), key, secrets)
            outcome.notes.append(f"rollback line rejected: {line}")
            break
        outcome.rolled_back = True
        outcome.notes.append(f"rollback pushed ({len(plan.rollback)} lines, attempt {attempt})")
        break
    return outcome
