"""Remediation and rollback for one device, computed by hier-config (pure, no I/O).

Running and intended configs are both cut down to the sections owned by the controls to
fix (:mod:`vcops.enforce.netdev_scope`), then hier-config computes the commands that
take the running sections to the intended ones (``no`` / ``delete`` forms for what must
go) and, at the same time, the commands that take them back. Nothing outside those
sections is ever touched, so this is never a full replace.

hier-config 2.3.1 (the version ciscoconfparse2 0.9.18 pins) with its ios, eos, nxos and
junos drivers; junos configs are compared as ``set`` lines.

Example::

    plan = plan_device("ios", running, intended, {"VC-NET-003"}, mask_key=key)
    plan.remediation        # ["no ip http server"]  (real lines: push these)
    plan.shown_remediation  # the same with every secret masked: print/log these
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vcops.baseline.junosparse import junos_statements
from vcops.baseline.netparse import clean_config_text
from vcops.enforce.netdev_scope import (
    DEFAULT_ON,
    SCOPES,
    blocks,
    junos_set_lines,
    scoped_lines,
)
from vcops.snapshot.catalog import PLATFORM_KINDS
from vcops.snapshot.mask import MARKER_RE, marker_for, mask_text

#: Inventory platform -> hier-config 2.3.1 os name.
HIER_OS = {"ios": "ios", "eos": "eos", "nxos_ssh": "nxos", "junos": "junos"}
#: Commands a device replaces in place (a new value needs no `no` of the old one first).
_IDEMPOTENT = {
    "ios": [
        [r"line vty", r"transport input"],
        [r"line vty", r"access-class"],
        [r"ip ssh version"],
        [r"aaa authentication login default"],
    ],
    "eos": [
        [r"management ssh", r"ip access-group"],
        [r"aaa authentication login default"],
    ],
    "nxos_ssh": [[r"line vty", r"access-class"], [r"aaa authentication login default"]],
    "junos": [],
}


#: Controls fixed by removing lines only: remediated even when the intent adds none.
REMOVAL_ONLY: dict[str, frozenset[str]] = {
    "ios": frozenset({"VC-NET-008"}),
    "eos": frozenset({"VC-NET-008"}),
    "nxos_ssh": frozenset({"VC-NET-008"}),
    "junos": frozenset({"VC-NET-002", "VC-NET-003", "VC-NET-008"}),
}


@dataclass(frozen=True)
class DevicePlan:
    """What vcops would push to one device to close its findings, and how to undo it.

    ``remediation``/``rollback`` hold the real commands (secrets included) and are never
    printed; ``shown_*`` are the same with every secret masked as snapshots mask them.
    """

    platform: str
    controls: tuple[str, ...]
    remediation: tuple[str, ...] = field(repr=False)
    rollback: tuple[str, ...] = field(repr=False)
    shown_remediation: tuple[str, ...] = ()
    shown_rollback: tuple[str, ...] = ()

    @property
    def empty(self) -> bool:
        return not self.remediation

    def digest(self) -> str:
        """SHA-256 of the masked remediation (for window terms; secrets stay out)."""
        text = "\n".join([self.platform, *self.controls, "--", *self.shown_remediation])
        return hashlib.sha256(text.encode()).hexdigest()


def config_lines(platform: str, text: str) -> list[str]:
    """A config as lines hier-config can load: Junos as ``set`` lines whatever the input
    form; IOS-style with capture noise (``Building configuration...``) dropped."""
    text = clean_config_text(text)
    if platform == "junos":
        statements, _whole = junos_statements(text)
        return junos_set_lines(statements)
    noise = re.compile(r"(Building configuration|Current configuration\s*:|end$)")
    out: list[str] = []
    for line in text.splitlines():
        if noise.match(line.strip()):
            continue
        # hier-config 2.3.1 reads banners over several lines only: `banner motd #x#` ->
        # `banner motd #`, `x`, `#` (the form IOS and NX-OS accept as input too).
        single = re.fullmatch(r"(banner \w+) (\^C|[^\s\w])(.*)\2\s*", line)
        out.extend(
            [f"{single[1]} {single[2]}", single[3], single[2]] if single else [line.rstrip()]
        )
    return out


def _host(platform: str) -> object:
    from hier_config import Host  # type: ignore[import-untyped]
    from hier_config.options import options_for  # type: ignore[import-untyped]

    options = dict(options_for(HIER_OS[platform]))
    extra = [
        {"lineage": [{"re_search": f"^{part}"} for part in lineage]}
        for lineage in _IDEMPOTENT[platform]
    ]
    options["idempotent_commands"] = [*options.get("idempotent_commands", []), *extra]
    return Host(hostname="device", os=HIER_OS[platform], hconfig_options=options)


def _with_parents(platform: str, running: list[str], intended: list[str]) -> list[str]:
    """Add to ``running`` the bare parent of every child-scoped intended block it lacks
    (``line vty 0 4`` always exists on the device), so rollback removes the children
    vcops added instead of the whole parent."""
    child_tops = [s.top for s in SCOPES[platform] if s.child is not None]
    have = {b[0] for b in blocks(running, platform)}
    extra = [
        b[0]
        for b in blocks(intended, platform)
        if b[0] not in have and any(re.match(t, b[0]) for t in child_tops)
    ]
    return running + extra


def _text(children: Iterable[object], platform: str) -> list[str]:
    out: list[str] = []
    for child in children:
        for text in str(child.cisco_style_text()).splitlines():  # type: ignore[attr-defined]
            if platform == "junos":
                # hier-config gives rollback's re-added statements without their `set`.
                bare = text.strip()
                out.append(bare if bare.startswith(("set ", "delete ")) else f"set {bare}")
            else:
                out.append(text)
    return _fix_banners(out, platform)


def _restore_defaults(
    platform: str, rollback: list[str], remediation: list[str], running: list[str]
) -> list[str]:
    """Rolling back ``no X`` where the running config showed neither ``X`` nor ``no X``
    returns ``X`` to its default: on only for :data:`DEFAULT_ON` switches."""
    pushed_off = {line[3:] for line in remediation if line.startswith("no ")}
    shown = {line.strip() for line in running}
    return [
        line
        for line in rollback
        if not (
            line in pushed_off
            and line not in shown
            and f"no {line}" not in shown
            and line not in DEFAULT_ON[platform]
        )
    ]


def _fix_banners(lines: list[str], platform: str) -> list[str]:
    """``no banner login ^C ... ^C`` (hier-config negates the whole block) -> ``no banner
    login``, which is what IOS, EOS and NX-OS accept."""
    out: list[str] = []
    skip_to: str | None = None
    for line in lines:
        if skip_to is not None:
            if skip_to in line:
                skip_to = None
            continue
        m = re.match(r"no banner (login|motd|exec)( (\^C|\S))?(.*)$", line)
        if m:
            out.append(f"no banner {m[1]}")
            if platform == "eos" and m[2] is None:
                skip_to = "EOF"
            elif m[3] and m[3] not in m[4]:
                skip_to = m[3]
            continue
        out.append(line)
    return out


#: Secrets in lines the snapshot catalog reads only at the top level of a file: an IOS
#: ``tacacs server`` block's `` key [7] X`` and Junos plain-text root passwords.
_CHILD_SECRETS = re.compile(
    r"^(?P<lead>\s*key (?:[0-9] )?|.*\bplain-text-password-value |(?:set |delete )?snmp community )"
    r"(?P<secret>\"[^\"]*\"|\S+)"
)


def mask_line(platform: str, line: str, key: bytes, known: Iterable[str] = ()) -> str:
    """``line`` with every secret replaced by its snapshot marker: the catalog's rules
    (applied after any ``no``/``delete`` prefix and indentation), the child-line keys
    above, and any of the ``known`` values (the secrets vcops resolved for the intent)."""
    m = re.match(r"(\s*(?:(?:no|delete) )?)(.*)$", line)
    assert m is not None  # the pattern matches every string
    lead, body = m[1], m[2]
    body = mask_text(body, PLATFORM_KINDS[platform], key).text
    child = _CHILD_SECRETS.match(lead + body) or _CHILD_SECRETS.match(body)
    if child and not MARKER_RE.search(child["secret"]):
        value = child["secret"].strip('"')
        marked = child["secret"].replace(value, marker_for(key, value))
        body = (lead + body)[: child.start("secret")] + marked + (lead + body)[child.end() :]
        lead = ""
    text = lead + body
    for value in known:
        if value:
            text = text.replace(value, marker_for(key, value))
    return text


def _mask_lines(
    platform: str, lines: Sequence[str], key: bytes, known: Iterable[str]
) -> tuple[str, ...]:
    values = sorted(set(known), key=len, reverse=True)
    return tuple(mask_line(platform, line, key, values) for line in lines)


def plan_device(
    platform: str,
    running: str,
    intended: str,
    controls: Iterable[str],
    *,
    mask_key: bytes,
    secrets: Iterable[str] = (),
) -> DevicePlan:
    """The remediation closing ``controls`` on a device and its rollback.

    Args:
        platform: ios, eos, nxos_ssh or junos.
        running: the running config as fetched.
        intended: the rendered hardening config (:func:`render_intended`).
        controls: ids of the controls to fix (failing or unknown, enforceable).
        mask_key: the snapshot mask key (shown lines carry the same markers).
        secrets: the secret values rendered into ``intended`` (masked wherever they
            appear in the shown lines, whatever the line).

    A control whose sections the intended config leaves empty is not remediated (its
    setting is not configured: removing the device's lines would leave nothing in
    their place), except the removal-only ones (:data:`REMOVAL_ONLY`).
    """
    intended_lines = config_lines(platform, intended)
    wanted = tuple(
        sorted(
            c
            for c in set(controls)
            if c in REMOVAL_ONLY.get(platform, ()) or scoped_lines(platform, intended_lines, [c])
        )
    )
    run_lines = scoped_lines(platform, config_lines(platform, running), wanted)
    want_lines = scoped_lines(platform, intended_lines, wanted)
    run_lines = _with_parents(platform, run_lines, want_lines)
    host = _host(platform)
    host.load_running_config("\n".join(run_lines) + "\n")  # type: ignore[attr-defined]
    host.load_generated_config("\n".join(want_lines) + "\n")  # type: ignore[attr-defined]
    remediation = _text(host.remediation_config().all_children_sorted(), platform)  # type: ignore[attr-defined]
    rollback = _text(host.rollback_config().all_children_sorted(), platform)  # type: ignore[attr-defined]
    rollback = _restore_defaults(platform, rollback, remediation, run_lines)
    return DevicePlan(
        platform=platform,
        controls=wanted,
        remediation=tuple(remediation),
        rollback=tuple(rollback),
        shown_remediation=_mask_lines(platform, remediation, mask_key, secrets),
        shown_rollback=_mask_lines(platform, rollback, mask_key, secrets),
    )
