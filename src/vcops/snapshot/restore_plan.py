"""Restore planning (pure): what to write back, how to validate it, what to reload.

Servers: the stored snapshot is compared with a fresh, in-memory collection of the
live host. A stored file that holds mask markers gets its secrets back only when the
*live* host still has a value with the same marker (same key, same value: the secret
did not change); otherwise the file is refused with a message naming it, or skipped
under ``skip_masked``. The store never holds a secret, so nothing else could be right.

Devices: NAPALM replaces the whole config; the Netmiko path pushes a line plan
(:func:`plan_line_merge`): removals first (``no ...``), then additions, block by block.

Example::

    plan = plan_server_restore(stored_files, live, key, roots=paths_for_roles(["kamailio"]))
    plan.writes        # [FileWrite(path="/etc/kamailio/kamailio.cfg", ...)]
    plan.files         # [RestoreFile(path=..., action="write", diff="--- live ...")]
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from vcops.snapshot.build import FILE_LIST, FILES_DIR, parse_file_list, safe_member_path
from vcops.snapshot.catalog import classify_path
from vcops.snapshot.mask import collect_secrets, mask_text, unmask
from vcops.snapshot.models import FileEntry, RestoreFile


@dataclass(frozen=True)
class Handling:
    """How files under a path are validated and applied."""

    pattern: re.Pattern[str]
    pre: str | None = None  # shell command; {file} is the staged file (already quoted)
    post: str | None = None  # name of a whole-config check in POST_CHECKS
    reload: str | None = None  # name of a reload in RELOADS


def _h(
    pattern: str, pre: str | None = None, post: str | None = None, reload: str | None = None
) -> Handling:
    return Handling(re.compile(pattern), pre, post, reload)


_XML_CHECK = "python3 -c 'import sys, xml.dom.minidom as m; m.parse(sys.argv[1])' {file}"
#: First match wins. Validators run only where their program is installed.
HANDLING: tuple[Handling, ...] = (
    _h(r"/etc/ssh/sshd_config", pre="sshd -t -f {file}", post="sshd", reload="ssh"),
    _h(r"/etc/ssh/sshd_config\.d/.*", post="sshd", reload="ssh"),
    _h(r"/etc/ssh/.*"),
    _h(r"/etc/nftables\.conf", pre="nft -c -f {file}", post="nftables", reload="nftables"),
    _h(r"/etc/nftables\.d/.*", post="nftables", reload="nftables"),
    _h(r"/etc/fail2ban/.*", post="fail2ban", reload="fail2ban"),
    _h(r"/etc/sysctl\.conf|/etc/sysctl\.d/.*", reload="sysctl"),
    _h(r"/etc/audit/rules\.d/.*|/etc/audit/audit\.rules", reload="audit-rules"),
    _h(r"/etc/audit/.*", reload="auditd"),
    _h(r"/etc/chrony/.*", post="chrony", reload="chrony"),
    _h(r"/etc/apt/apt\.conf(?:\.d/.*)?", pre="apt-config -c {file} dump"),
    _h(r"/etc/apt/.*"),
    _h(
        r"/etc/kamailio/kamailio\.cfg",
        pre="kamailio -c -f {file}",
        post="kamailio",
        reload="kamailio",
    ),
    _h(r"/etc/kamailio/.*\.cfg", post="kamailio", reload="kamailio"),
    _h(r"/etc/kamailio/.*"),
    _h(r"/etc/asterisk/.*", reload="asterisk"),
    _h(r"/etc/freeswitch/.*\.xml", pre=_XML_CHECK, reload="freeswitch"),
    _h(r"/etc/freeswitch/.*", reload="freeswitch"),
    _h(r"/etc/rtpengine/.*", reload="rtpengine"),
    _h(r".*"),
)

#: Whole-config checks run after every file is in place (rolled back if one fails).
POST_CHECKS: dict[str, tuple[str, str]] = {
    "sshd": ("sshd", "sshd -t"),
    "nftables": ("nft", "nft -c -f /etc/nftables.conf"),
    "fail2ban": ("fail2ban-client", "fail2ban-client -t"),
    "chrony": ("chronyd", "chronyd -p -f /etc/chrony/chrony.conf"),
    "kamailio": ("kamailio", "kamailio -c -f /etc/kamailio/kamailio.cfg"),
}
#: name -> (unit that must be active for the reload, command). None: always run.
RELOADS: dict[str, tuple[str | None, str]] = {
    "ssh": ("ssh", "systemctl reload ssh"),
    "nftables": ("nftables", "systemctl reload nftables"),
    "fail2ban": ("fail2ban", "fail2ban-client reload"),
    "sysctl": (None, "systemctl restart systemd-sysctl"),
    "audit-rules": ("auditd", "augenrules --load"),
    "auditd": ("auditd", "systemctl reload auditd"),
    "chrony": ("chrony", "systemctl restart chrony"),
    "asterisk": ("asterisk", "systemctl reload asterisk"),
    "kamailio": ("kamailio", "systemctl restart kamailio"),
    "freeswitch": ("freeswitch", "fs_cli -x reloadxml"),
}
#: Services vcops never restarts by itself, with what to tell the operator.
MANUAL: dict[str, str] = {
    "rtpengine": "rtpengine reads its config at start only and a restart drops media: "
    "restart rtpengine-daemon in a maintenance window",
}


def handling_for(path: str) -> Handling:
    """The validation and reload rule of an absolute path."""
    return next(h for h in HANDLING if h.pattern.fullmatch(path))


@dataclass(frozen=True)
class FileWrite:
    """One file to write (content unmasked: memory only) or delete (content None)."""

    path: str
    content: str | None = field(repr=False)
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    existed: bool = True
    pre: str | None = None


@dataclass
class ServerPlan:
    """The plan for one server: writes, the public per-file view, checks, reloads."""

    files: list[RestoreFile] = field(default_factory=list)
    writes: list[FileWrite] = field(default_factory=list)
    post_checks: list[str] = field(default_factory=list)
    reloads: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def refused(self) -> list[RestoreFile]:
        return [f for f in self.files if f.action == "refused"]


def unified(before: str, after: str, path: str) -> str:
    """A unified diff of two masked texts (live -> snapshot)."""
    return "".join(
        difflib.unified_diff(
            before.splitlines(keepends=True),
            after.splitlines(keepends=True),
            fromfile=f"live:{path}",
            tofile=f"snapshot:{path}",
        )
    )


def _selected(path: str, paths: Sequence[str] | None) -> bool:
    if not paths:
        return True
    return any(path == p.rstrip("/") or path.startswith(p.rstrip("/") + "/") for p in paths)


def plan_server_restore(
    stored: dict[str, bytes],
    live: Iterable[tuple[FileEntry, str | None]],
    key: bytes,
    *,
    roots: Sequence[str],
    paths: Sequence[str] | None = None,
    skip_masked: bool = False,
) -> ServerPlan:
    """Plan a server restore from the stored host folder and the live files (unmasked).

    Every stored path is checked again against ``roots``, the trees collected for this
    host's roles (never what the store says): a path outside them (a forged
    ``file-list.txt`` naming ``/root/.ssh/authorized_keys``, or one with ``..``) is
    refused, and so is the whole restore.
    """
    plan = ServerPlan()
    listed = parse_file_list(stored.get(FILE_LIST, b"").decode("utf-8", "replace"))
    stored_entries: dict[str, FileEntry] = {}
    for path, entry in listed.items():
        if safe_member_path(path[1:], roots) != path:
            reason = (
                "outside the trees collected for this host's roles: the snapshot store has "
                "been edited; nothing is restored"
            )
            plan.files.append(RestoreFile(path=path, action="refused", reason=reason))
            continue
        stored_entries[path] = entry
    live_map = {entry.path: (entry, text) for entry, text in live}
    known: dict[str, str] = {}
    for entry, text in live_map.values():
        if text is not None:
            known.update(collect_secrets(text, classify_path(entry.path), key).secrets)
    for path in sorted(set(stored_entries) | set(live_map)):
        if not _selected(path, paths):
            continue
        item = _plan_file(
            path, stored_entries.get(path), live_map.get(path), stored, known, key, skip_masked
        )
        if item is None:
            continue
        public, write = item
        plan.files.append(public)
        if write is None:
            continue
        plan.writes.append(write)
        rule = handling_for(path)
        if rule.post and rule.post not in plan.post_checks:
            plan.post_checks.append(rule.post)
        if rule.reload and rule.reload in MANUAL:
            if MANUAL[rule.reload] not in plan.notes:
                plan.notes.append(MANUAL[rule.reload])
        elif rule.reload and rule.reload not in plan.reloads:
            plan.reloads.append(rule.reload)
    return plan


def _plan_file(
    path: str,
    saved: FileEntry | None,
    current: tuple[FileEntry, str | None] | None,
    stored: dict[str, bytes],
    known: dict[str, str],
    key: bytes,
    skip_masked: bool,
) -> tuple[RestoreFile, FileWrite | None] | None:
    kind = classify_path(path)
    live_entry, live_text = current if current is not None else (None, None)
    live_masked = mask_text(live_text, kind, key).text if live_text is not None else ""
    if saved is None:
        if live_entry is None:
            return None
        if live_entry.type != "file":
            reason = f"a {live_entry.type} added since the snapshot; remove it by hand if unwanted"
            return RestoreFile(path=path, action="skipped", reason=reason), None
        diff = unified(live_masked, "", path)
        public = RestoreFile(path=path, action="delete", diff=diff, reason="not in the snapshot")
        return public, FileWrite(path=path, content=None)
    if saved.type != "file":
        same = live_entry is not None and live_entry.model_dump() == saved.model_dump()
        if same:
            return RestoreFile(path=path, action="unchanged"), None
        reason = f"{saved.type} entries are not restored (only regular text files are); fix by hand"
        return RestoreFile(path=path, action="skipped", reason=reason), None
    raw = stored.get(f"{FILES_DIR}{path}")
    if raw is None:
        return RestoreFile(path=path, action="skipped", reason="listed but not stored"), None
    text = raw.decode("utf-8")
    same_meta = live_entry is not None and (
        live_entry.mode,
        live_entry.owner,
        live_entry.group,
    ) == (
        saved.mode,
        saved.owner,
        saved.group,
    )
    if live_entry is not None and live_entry.type == "file" and live_masked == text and same_meta:
        return RestoreFile(path=path, action="unchanged"), None
    diff = unified(live_masked, text, path)
    if not diff and not same_meta and live_entry is not None:
        before = f"{live_entry.mode} {live_entry.owner}:{live_entry.group}"
        diff = f"mode/owner: {before} -> {saved.mode} {saved.owner}:{saved.group}\n"
    content, unresolved = unmask(text, known)
    if unresolved:
        count = len(set(unresolved))
        if skip_masked:
            reason = (
                f"holds {count} masked secret(s) the host no longer has; skipped (--skip-masked)"
            )
            return RestoreFile(path=path, action="skipped", diff=diff, reason=reason), None
        reason = (
            f"holds {count} masked secret(s) that are not in the snapshot store and no longer on "
            "the host; restore this file by hand, or rerun with --skip-masked to leave it as it is"
        )
        return RestoreFile(path=path, action="refused", diff=diff, reason=reason), None
    rule = handling_for(path)
    action = "write" if live_entry is not None else "create"
    public = RestoreFile(
        path=path, action=action, diff=diff, validator=rule.pre.split()[0] if rule.pre else None
    )
    write = FileWrite(
        path=path,
        content=content,
        mode=saved.mode,
        owner=saved.owner,
        group=saved.group,
        existed=live_entry is not None,
        pre=rule.pre,
    )
    return public, write


# -- devices: the Netmiko line plan -------------------------------------------------------

_SKIP = re.compile(r"^(?:!.*|end|version .*|Building configuration.*|Current configuration.*)$")


def _blocks(text: str) -> dict[str, list[str]]:
    """Top-level lines -> their indented children (indentation kept), skipping comments."""
    blocks: dict[str, list[str]] = {}
    header: str | None = None
    for line in text.splitlines():
        stripped = line.strip()
        if not stripped:
            continue
        if not line[:1].isspace():
            if _SKIP.match(stripped):
                header = None
                continue
            header = line.rstrip()
            blocks.setdefault(header, [])
        elif header is not None and not stripped.startswith("!"):
            blocks[header].append(line.rstrip())
    return blocks


def _negate(line: str) -> str:
    indent = line[: len(line) - len(line.lstrip())]
    body = line.strip()
    return f"{indent}{body[3:]}" if body.startswith("no ") else f"{indent}no {body}"


def plan_line_merge(current: str, target: str, platform: str) -> list[str]:
    """Config lines that turn ``current`` into ``target`` (both noise-filtered).

    IOS-style (ios, eos, nxos_ssh): removed top-level lines become ``no <line>``; a block
    whose children changed is entered and gets ``no <child>`` then the new children.
    Removals come before additions so a replaced single-value command ends right.

    Raises:
        ValueError: the platform has no line-merge path (Junos needs NAPALM).
    """
    if platform == "junos":
        raise ValueError("Junos configs are restored through NAPALM only (transport: napalm)")
    have, want = _blocks(current), _blocks(target)
    removals: list[str] = []
    additions: list[str] = []
    for header in have:
        if header not in want:
            removals.append(_negate(header))
    for header, children in want.items():
        old = have.get(header)
        if old is None:
            additions.append(header)
            additions.extend(children)
            continue
        gone = [c for c in old if c not in children]
        new = [c for c in children if c not in old]
        if gone or new:
            additions.append(header)
            additions.extend(_negate(c) for c in gone)
            additions.extend(new)
    return removals + additions
