"""What the window runner runs on a host, and how it reads the answers (pure).

Every step is a host task (:class:`WindowTask`) whose body reports ``say <verb>
<args>`` records, framed by :mod:`vcops.connectors.hosttask` with a nonce new for every
run, so nothing a package or a file on the host prints can pose as a result. Package names and versions come from the
approved plan, are checked against Debian's syntax and are shell-quoted anyway.

Example (install), the ``say`` records in order::

    before vcops-testpkg 1.0
    pending openssl 3.0.15-1~deb12u1
    install 0 -
    after vcops-testpkg 1.1
    unit vcops-testpkg vcops-test.service
    restart vcops-test.service 0
    outdated vcops-libuser.service
    restart vcops-libuser.service 0 active
    reboot-required no
"""

from __future__ import annotations

import re
import shlex
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from vcops.connectors.hosttask import TaskOutput
from vcops.enforce.render import AIDE_UPDATE
from vcops.errors import InventoryError, Problem
from vcops.facts.sections import to_int
from vcops.inventory.models import Server
from vcops.roles import counters_for, units_for
from vcops.window.model import PackageChange

_PACKAGE = re.compile(r"^[a-z0-9][a-z0-9+.-]+$")
_VERSION = re.compile(r"^[A-Za-z0-9.+~:-]+$")
_UNIT = re.compile(r"^[A-Za-z0-9@_.:-]+\.service$")

APT_OPTIONS = (
    "-o Dpkg::Options::=--force-confold -o Dpkg::Options::=--force-confdef "
    "-o DPkg::Lock::Timeout=120 -o APT::Get::Show-Versions=true"
)


class HostSettings(BaseModel):
    """Per-host window settings from ``window_*`` inventory vars (group or host)."""

    model_config = ConfigDict(extra="forbid")

    drain_timeout: int = Field(300, ge=0, le=7200)
    drain_poll: float = Field(5.0, gt=0, le=60)
    gate_wait: int = Field(30, ge=0, le=600)
    reboot_timeout: int = Field(600, ge=30, le=3600)
    sip_port: int = Field(5060, ge=1, le=65535)
    health_units: list[str] | None = None

    def units_for(self, server: Server) -> list[str]:
        if self.health_units is not None:
            return list(self.health_units)
        return list(units_for(server.roles))


def host_settings(server: Server, host_vars: dict[str, object]) -> HostSettings:
    """The window settings of one server.

    Raises:
        InventoryError: a ``window_*`` var is unknown or has a bad value.
    """
    values = {k.removeprefix("window_"): v for k, v in host_vars.items() if k.startswith("window_")}
    try:
        settings = HostSettings.model_validate(values)
    except ValidationError as exc:
        problems = [
            Problem(
                "inventory",
                server.name,
                f"window_{'.'.join(str(p) for p in e['loc'])}: {e['msg']}",
                "see the window_* variables in the README (drain_timeout, drain_poll, gate_wait, "
                "reboot_timeout, sip_port, health_units)",
            )
            for e in exc.errors()
        ]
        raise InventoryError(problems) from exc
    for unit in settings.health_units or []:
        if not _UNIT.match(unit):
            raise InventoryError(
                [
                    Problem(
                        "inventory",
                        server.name,
                        f"window_health_units: {unit!r}",
                        "name .service units",
                    )
                ]
            )
    return settings


def check_package(change: PackageChange) -> None:
    """Refuse a package name or version that is not Debian syntax (it reaches a shell)."""
    if not _PACKAGE.match(change.package) or not _VERSION.match(change.target):
        raise ValueError(f"not a Debian package/version: {change.package!r} {change.target!r}")


def _prelude() -> str:
    return "export DEBIAN_FRONTEND=noninteractive\n"


class WindowTask(BaseModel):
    """A window step as a host task: its body reports through ``say`` records."""

    name: str = "window"
    script: str

    def body(self) -> str:
        return self.script


#: The records holding ``systemctl list-units`` of the active and of the failed
#: services, and the verb each line becomes in the :class:`Answer`.
UNIT_LISTS = {"units-active": "active", "units-failed": "failed"}


def _active_units() -> str:
    # two sections (sent in the task's one batch), not a `say` per unit: a host with 30
    # services ran 30 base64 processes for every precheck, gate and peers' check
    return (
        "section units-active quiet systemctl list-units --type=service --state=active "
        "--plain --no-legend\n"
        "section units-failed quiet systemctl list-units --type=service --state=failed "
        "--plain --no-legend\n"
        'say boot "$(cat /proc/sys/kernel/random/boot_id)"\n'
    )


def precheck_script(roles: Iterable[str]) -> str:
    """Active and failed units, the boot id, and active calls per role (drain)."""
    return _prelude() + _active_units() + calls_script(roles)


def calls_script(roles: Iterable[str]) -> str:
    """Calls in progress per daemon of the roles (the registry's fixed counter commands)."""
    parts = []
    for daemon in counters_for(roles):
        tool = shlex.quote(daemon.counter_tool or daemon.name)
        name = daemon.name
        parts.append(
            f"if command -v {tool} >/dev/null 2>&1; then n=$({daemon.call_counter}); "
            f'say calls {name} "${{n:-unknown}}"; else say calls {name} none; fi\n'
        )
    return "".join(parts)


def drain_script(roles: Iterable[str]) -> str:
    return _prelude() + calls_script(roles)


def install_script(packages: Sequence[PackageChange]) -> str:
    """Install exactly the approved versions; report what else is pending and the unit
    files of the packages; ``try-restart`` the running units of the packages whose
    version changed (in the same session: no second round trip); say whether a reboot
    is required."""
    for p in packages:
        check_package(p)
    names = " ".join(shlex.quote(p.package) for p in packages)
    pinned = " ".join(shlex.quote(f"{p.package}={p.target}") for p in packages)
    query = f"dpkg-query -W -f='${{Package}} ${{Version}}\\n' {names} 2>/dev/null"
    script = (
        _prelude()
        # a runner killed mid-install leaves dpkg half-configured: finish that first
        + 'dpkg --configure -a >"$t/configure" 2>&1 || say note dpkg-configure-failed\n'
        + 'apt-get -q update -o Acquire::http::Timeout=20 >"$t/update" 2>&1 '
        "|| say note apt-get-update-failed\n"
        + "apt list --upgradable 2>/dev/null | sed -n 's#^\\([^/]*\\)/[^ ]* \\([^ ]*\\) .*#\\1 \\2#p' "
        '| while read -r p v; do say pending "$p" "$v"; done\n'
    )
    if not packages:
        return script + "say install 0 -\n" + _REBOOT_REQUIRED
    return (
        script
        + f'{query} >"$t/v0"\n'
        + 'while read -r p v; do say before "$p" "$v"; done <"$t/v0"\n'
        + f'apt-get install -y -q --only-upgrade {APT_OPTIONS} {pinned} >"$t/install" 2>&1; rc=$?\n'
        + 'if [ $rc -ne 0 ]; then say install $rc "$(tail -n 3 "$t/install" | tr "\\n" " ")"; '
        "else say install 0 -; fi\n"
        + f'{query} >"$t/v1"\n'
        + 'while read -r p v; do say after "$p" "$v"; done <"$t/v1"\n'
        + "[ $rc -eq 0 ] || exit 0\n"
        # the units of each upgraded package, restarted here when they run (try-restart):
        # one session for install and restart
        + f"for p in {names}; do "
        'b=$(while read -r q v; do [ "$q" = "$p" ] && echo "$v"; done <"$t/v0"); '
        'a=$(while read -r q v; do [ "$q" = "$p" ] && echo "$v"; done <"$t/v1"); '
        'dpkg -L "$p" 2>/dev/null '
        "| grep -E '^/(usr/)?lib/systemd/system/[^/]+\\.service$' | while read -r f; do "
        'u=${f##*/}; say unit "$p" "$u"; '
        'if [ "$a" != "$b" ] && systemctl is-active --quiet "$u"; then echo "$u" >>"$t/done"; '
        'systemctl try-restart "$u" >"$t/r" 2>&1; say restart "$u" $? "$(systemctl is-active "$u")"; '
        "fi; done; done\n" + OUTDATED_RESTART + aide_rebuild() + _REBOOT_REQUIRED
    )


def aide_rebuild(script: str = AIDE_UPDATE) -> str:
    """After an approved upgrade, the integrity area's script rebuilds AIDE's database
    when a file it watches is newer (VC-AIDE-003 judges later changes against the
    upgraded host, not the old packages); a host without the integrity area skips it."""
    path = shlex.quote(script)
    return (
        f"if [ -x {path} ]; then "
        f'case "$({path} 2>/dev/null | tail -n 1)" in '
        "rebuilt*) say note aide-database-rebuilt ;; 'up to date') ;; "
        "*) say note aide-database-not-rebuilt ;; esac; fi\n"
    )


#: Units never restarted for needrestart (they end sessions or the machine's bus).
NEEDRESTART_SKIP = (
    "dbus.service|dbus-broker.service|systemd-logind.service|getty@*|serial-getty@*|user@*"
)

OUTDATED_RESTART = (
    # services still mapping a replaced library (needrestart, list mode: it restarts
    # nothing itself) are restarted too, even when their own package did not change;
    # the gate then checks them like the upgraded ones
    ': >>"$t/done"\n'
    "if command -v needrestart >/dev/null 2>&1; then "
    "needrestart -b -r l 2>/dev/null | sed -n 's/^NEEDRESTART-SVC: *//p' | head -n 200 "
    "| while read -r u; do "
    'case "$u" in *.service) ;; *) continue ;; esac; '
    'case "$u" in *[!A-Za-z0-9@_.:-]*) continue ;; esac; '
    'say outdated "$u"; '
    f'case "$u" in {NEEDRESTART_SKIP}) continue ;; esac; '
    'grep -qxF "$u" "$t/done" && continue; '
    'if systemctl is-active --quiet "$u"; then '
    'systemctl try-restart "$u" >"$t/r" 2>&1; say restart "$u" $? "$(systemctl is-active "$u")"; '
    "fi; done; "
    "else say note needrestart-missing; fi\n"
)


_REBOOT_REQUIRED = (
    "if [ -f /var/run/reboot-required ]; then say reboot-required yes; "
    "else say reboot-required no; fi\n"
)


def restart_script(units: Sequence[str]) -> str:
    """``try-restart`` the units (only running ones restart), then say their state."""
    checked = [u for u in units if _UNIT.match(u)]
    parts = [_prelude()]
    for unit in checked:
        q = shlex.quote(unit)
        parts.append(
            f"if systemctl is-active --quiet {q}; then systemctl try-restart {q} "
            f'>"$t/r" 2>&1; say restart {q} $? "$(systemctl is-active {q})"; fi\n'
        )
    return "".join(parts)


def start_script(units: Sequence[str]) -> str:
    """Start units that were running before a change (after a rollback)."""
    parts = [_prelude()]
    for unit in units:
        if _UNIT.match(unit):
            q = shlex.quote(unit)
            parts.append(f'systemctl restart {q} >"$t/s" 2>&1; say start {q} $?\n')
    return "".join(parts)


def gate_script() -> str:
    """After a change: active and failed units and the boot id (SSH answering is itself
    part of the gate)."""
    return _prelude() + _active_units()


#: Planning: refresh the package lists first (the board approves what the mirror offers
#: today, not what the host last heard about; a failed refresh still plans from the
#: cache), then what is upgradable, and whether a reboot is pending.
PLAN_SCRIPT = (
    "export DEBIAN_FRONTEND=noninteractive\n"
    'apt-get -q update -o Acquire::http::Timeout=20 >"$t/update" 2>&1 '
    "|| say note apt-get-update-failed\n"
    'if apt list --upgradable >"$t/up" 2>/dev/null; then say listed 0; '
    'while IFS= read -r l; do say upgradable "$l"; done <"$t/up"; else say listed 1; fi\n'
    + _REBOOT_REQUIRED
)


def plan_answer(answer: Answer) -> tuple[str | None, bool]:
    """(``apt list --upgradable``'s text, or None when it did not run; whether a
    reboot is pending) from a ``plan`` step's records."""
    listed = answer.first("listed")
    reboot = answer.first("reboot-required")
    if listed != ["0"]:
        return None, False
    text = "\n".join(" ".join(args) for args in answer.all("upgradable"))
    return text, bool(reboot and reboot[0] == "yes")


REBOOT_SCRIPT = "nohup sh -c 'sleep 2; systemctl reboot' >/dev/null 2>&1 &\necho scheduled\n"


class Step(BaseModel):
    """One window step for one host, as data: what it is, never the script text. The
    script is built where the host is reached (:meth:`script`: on the controller, or on
    the site worker from a sealed task), so a task on the broker can only name these
    steps, with package versions and unit names checked again there.

    ``sip`` probes SIP OPTIONS on ``sip_port`` from the same side, without a script."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["plan", "precheck", "drain", "install", "gate", "reboot", "start", "sip"]
    packages: list[PackageChange] = Field(default_factory=list, max_length=500)
    units: list[str] = Field(default_factory=list, max_length=200)
    sip_port: int = Field(5060, ge=1, le=65535)

    def script(self, roles: Iterable[str]) -> str | None:
        """The host task's body (None for ``sip``: nothing runs on the host)."""
        if self.kind == "plan":
            return PLAN_SCRIPT
        if self.kind == "precheck":
            return precheck_script(roles)
        if self.kind == "drain":
            return drain_script(roles)
        if self.kind == "install":
            return install_script(self.packages)
        if self.kind == "reboot":
            return REBOOT_SCRIPT
        if self.kind == "start":
            return start_script(self.units)
        if self.kind == "gate":
            return gate_script()
        return None


@dataclass
class Answer:
    """The ``@@<nonce>`` lines of one script's output, by verb."""

    lines: dict[str, list[list[str]]] = field(default_factory=dict)

    def all(self, verb: str) -> list[list[str]]:
        return self.lines.get(verb, [])

    def first(self, verb: str) -> list[str] | None:
        found = self.lines.get(verb)
        return found[0] if found else None


def parse_answer(out: TaskOutput) -> Answer:
    """The task's ``say`` records and its unit lists (framed with this run's nonce:
    nothing else counts)."""
    answer = Answer()
    for record in out.all("say"):
        verb, *args = record.text.split(" ", 3)
        answer.lines.setdefault(verb, []).append(args)
    for name, verb in UNIT_LISTS.items():
        for record in out.all(name):
            for line in record.text.splitlines():
                unit = line.split(maxsplit=1)[:1]
                if unit:
                    answer.lines.setdefault(verb, []).append(unit)
    return answer


@dataclass(frozen=True)
class UnitState:
    active: frozenset[str]
    failed: frozenset[str]
    boot_id: str


def unit_state(answer: Answer) -> UnitState:
    boot = answer.first("boot")
    return UnitState(
        active=frozenset(a[0] for a in answer.all("active") if a),
        failed=frozenset(a[0] for a in answer.all("failed") if a),
        boot_id=boot[0] if boot else "",
    )


def call_counts(answer: Answer) -> dict[str, int | None]:
    """Active calls per daemon: an int, or None when the daemon could not tell."""
    out: dict[str, int | None] = {}
    for args in answer.all("calls"):
        if len(args) < 2 or args[1] == "none":
            continue
        count = to_int(args[1])
        out[args[0]] = count if count is not None and count >= 0 else None
    return out


@dataclass(frozen=True)
class InstallResult:
    exit_status: int
    error: str
    before: dict[str, str]
    after: dict[str, str]
    pending: dict[str, str]
    units: dict[str, list[str]]
    reboot_required: bool
    notes: list[str]
    #: Units the install script restarted (running units of the upgraded packages, and
    #: those needrestart named as running outdated libraries).
    restarted: list[str] = field(default_factory=list)
    #: Units needrestart named as running outdated libraries after the install.
    outdated: list[str] = field(default_factory=list)


def _exit_status(text: str) -> int:
    status = to_int(text)
    return status if status is not None and 0 <= status <= 255 else 1


def install_result(answer: Answer) -> InstallResult | None:
    """None when the script never said how the install went (cut off, killed)."""
    done = answer.first("install")
    if done is None:
        return None
    units: dict[str, list[str]] = {}
    for args in answer.all("unit"):
        if len(args) >= 2:
            units.setdefault(args[0], []).append(args[1])
    reboot = answer.first("reboot-required")
    return InstallResult(
        exit_status=_exit_status(done[0] if done else ""),
        error=" ".join(done[1:]).strip(" -") if done else "",
        before={a[0]: a[1] for a in answer.all("before") if len(a) >= 2},
        after={a[0]: a[1] for a in answer.all("after") if len(a) >= 2},
        pending={a[0]: a[1] for a in answer.all("pending") if len(a) >= 2},
        units=units,
        reboot_required=bool(reboot and reboot[0] == "yes"),
        notes=[a[0] for a in answer.all("note") if a],
        restarted=[a[0] for a in answer.all("restart") if a],
        outdated=[a[0] for a in answer.all("outdated") if a and _UNIT.match(a[0])],
    )
