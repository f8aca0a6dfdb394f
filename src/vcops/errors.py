"""The vcops exception tree.

Every error vcops raises on purpose derives from :class:`VcopsError`; the CLI maps
each branch to an exit code and prints one readable line (``--debug`` shows the
traceback)::

    VcopsError                    exit 2 unless noted
    ├── InventoryError            inventory/ is malformed (carries every problem found)
    ├── ConfigError               vcops.toml is malformed
    ├── ConnectError              exit 3: a target could not be reached
    │   ├── AuthError             the target refused our credentials
    │   ├── HostKeyError          the target's host key is unknown or changed
    │   ├── ConnectTimeout        the target did not answer in time
    │   └── BrokerError           the site workers' broker (Redis) is down or missing
    ├── CommandError              exit 1: a command on a target failed
    │   └── BecomeError           sudo refused (no rule, a password wanted, not installed)
    ├── ApprovalError             exit 1: an approval is missing, forged or replayed
    ├── WindowError               exit 1: a patch window cannot be created or run
    ├── StoreError                exit 1: the database or snapshot store failed
    │   ├── LockHeld              another process holds a named lock (it is named)
    │   └── AuditTampered         the audit log's head is not the signed anchor: appends refused
    └── LabError                  exit 2: the lab cannot be built or torn down

Third-party errors (paramiko, SQLAlchemy, PyYAML ...) are translated into this tree
in the connector that calls them, with ``raise X(...) from exc``.
"""

from __future__ import annotations

from dataclasses import dataclass


class VcopsError(Exception):
    """Base of every error vcops raises on purpose."""

    exit_code = 2


@dataclass(frozen=True)
class Problem:
    """One problem in an input file: where it is, what is wrong, how to fix it.

    Example: ``Problem("inventory/hosts.yml", "server sbc-02", "unknown role 'sbcx'",
    "use one of: asterisk, freeswitch, generic, kamailio, rtpengine, sbc")``
    """

    file: str
    entry: str
    message: str
    fix: str = ""

    def __str__(self) -> str:
        where = f"{self.file}: {self.entry}: " if self.entry else f"{self.file}: "
        tail = f"; {self.fix}" if self.fix else ""
        return f"{where}{self.message}{tail}"


class InventoryError(VcopsError):
    """The inventory is malformed; ``problems`` lists every problem found."""

    def __init__(self, problems: list[Problem]) -> None:
        self.problems = problems
        first = str(problems[0]) if problems else "invalid inventory"
        more = f" (and {len(problems) - 1} more problems)" if len(problems) > 1 else ""
        super().__init__(first + more)


class ConfigError(VcopsError):
    """The configuration file is malformed."""


class ConnectError(VcopsError):
    """A target could not be reached."""

    exit_code = 3


class AuthError(ConnectError):
    """The target refused our credentials."""


class HostKeyError(ConnectError):
    """The target's host key is not in the pinned known_hosts file, or changed."""


class ConnectTimeout(ConnectError):
    """The target did not answer in time."""


class BrokerError(ConnectError):
    """The broker of the site workers is not answering (or its client is not installed):
    the targets of those sites are unknown."""


class CommandError(VcopsError):
    """A command on a target failed."""

    exit_code = 1


class BecomeError(CommandError):
    """The login could not gain root with sudo; the message names the host and the fix."""


class ApprovalError(VcopsError):
    """An approval is missing, forged, replayed or otherwise invalid."""

    exit_code = 1


class WindowError(VcopsError):
    """A patch window cannot be created or run."""

    exit_code = 1


class StoreError(VcopsError):
    """The database or the snapshot store failed."""

    exit_code = 1


class LockHeld(StoreError):
    """Another vcops process holds the named lock (``holder`` says which)."""

    def __init__(self, name: str, holder: str) -> None:
        self.name = name
        self.holder = holder
        super().__init__(f"lock {name} is held by {holder}; wait for it to finish, then retry")


class AuditTampered(StoreError):
    """The audit log does not end at this controller's signed anchor; nothing is appended."""


class LabError(VcopsError):
    """The lab cannot be built, started or torn down."""
