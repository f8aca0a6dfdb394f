"""Server facts: the ``facts`` host task, and :func:`parse_facts` from its records to
:class:`ServerFacts` (the per-section parsers are in :mod:`vcops.facts.sections`).

The task (``gather.sh``, framed by :mod:`vcops.connectors.hosttask` with a per-run
nonce, so a config file on the host cannot forge a section) records one section per
command and the VoIP config files as tars. :func:`parse_facts` parses every section
into typed fields; a section whose command failed or is missing leaves its field
``None``, which checks report as *unknown*.

Example::

    run = run_tasks([target], [FactsTask()])[0]       # one SSH session
    facts = parse_facts(run.output("facts"))           # ServerFacts(os_id="debian", ...)

Config files read here may hold secrets: they stay in memory in ``*_files`` and are
never serialised (``ServerFacts.public()`` drops them).
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
from importlib import resources

from pydantic import BaseModel, ConfigDict, field_validator

from vcops.connectors.hosttask import TaskOutput, tar_members
from vcops.facts.access import HostKey, parse_access
from vcops.facts.accounts import AccountsFacts, parse_accounts
from vcops.facts.aptsources import AptSource
from vcops.facts.integ import AideState, SyslogTarget, integ_facts
from vcops.facts.kernel import SECTIONS as KERNEL_SECTIONS
from vcops.facts.kernel import CoreLimit, Modprobe, kernel_facts
from vcops.facts.nft import Ruleset, parse_ruleset
from vcops.facts.patch import parse_patch
from vcops.facts.sections import (
    MAX_JSON_DEPTH,
    FileStat,
    Listener,
    Section,
    ServiceState,
    Upgrade,
    json_depth,
    parse_apt_config,
    parse_chrony_tracking,
    parse_fail2ban,
    parse_listening,
    parse_os_release,
    parse_packages,
    parse_services,
    parse_sshd_t,
    parse_stat,
    parse_sysctl,
    parse_upgradable,
    to_int,
)

#: A pending-upgrades fingerprint (see ``upgrades.sh``): a sha256 in hex.
FINGERPRINT_RE = re.compile(r"[0-9a-f]{64}")


class ServerFacts(BaseModel):
    """Everything a scan knows about one server. ``None`` = not gathered (unknown)."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    os_id: str | None = None
    os_version_id: str | None = None
    os_pretty: str | None = None
    virt: str | None = None
    now: int | None = None
    sshd: dict[str, list[str]] | None = None
    openssh_version: str | None = None
    ssh_supported: dict[str, list[str]] | None = None
    sysctl: dict[str, str] | None = None
    nft: Ruleset | None = None
    nft_error: str | None = None
    services: dict[str, ServiceState] | None = None
    packages: dict[str, str] | None = None
    upgradable: list[Upgrade] | None = None
    reboot_required_since: int | None = None
    reboot_required: bool | None = None
    apt_config: dict[str, str] | None = None
    fail2ban_jails: list[str] | None = None
    fail2ban_error: str | None = None
    audit_active_rules: list[str] | None = None
    audit_active_error: str | None = None
    audit_rule_files: list[str] | None = None
    chrony_tracking: dict[str, str] | None = None
    chrony_conf: list[str] | None = None
    ntp_synchronized: bool | None = None
    file_stats: dict[str, FileStat] | None = None
    world_accessible: list[str] | None = None
    listening: list[Listener] | None = None
    asterisk_version: str | None = None
    asterisk_files: dict[str, str] = {}
    kamailio_files: dict[str, str] = {}
    freeswitch_files: dict[str, str] = {}
    #: Filled by the scan from history: when each pending security update was first seen.
    security_first_seen: dict[str, int] = {}
    # access (vcops.facts.access): host keys sshd offers, moduli sizes, banners, f2b
    host_keys: dict[str, HostKey] | None = None
    moduli_bits: dict[int, int] | None = None
    banners: dict[str, str] | None = None
    fail2ban_increment: dict[str, str] | None = None
    # Patch sources (vcops.facts.patch)
    os_codename: str | None = None
    apt_sources: list[AptSource] | None = None
    apt_sources_notes: list[str] = []
    #: Newest mtime under /var/lib/apt/lists (host clock); 0 = no lists at all.
    apt_lists_mtime: int | None = None
    needrestart_services: list[str] | None = None
    needrestart_error: str | None = None
    needrestart_conf: list[str] | None = None
    # integrity and logging (vcops.facts.integ)
    aide: AideState | None = None
    journald: dict[str, str] | None = None
    rsyslog_configured: bool | None = None
    rsyslog_targets: list[SyslogTarget] | None = None
    accounts: AccountsFacts | None = None
    # kernel area (vcops.facts.kernel)
    sysctl_files: dict[str, str] | None = None
    modprobe: Modprobe | None = None
    modules_loaded: list[str] | None = None
    core_limits: list[CoreLimit] | None = None
    coredump_conf: dict[str, str] | None = None
    sysstat_default: dict[str, str] | None = None

    @property
    def in_container(self) -> bool:
        return self.virt not in {
            None,
            "none",
            "kvm",
            "qemu",
            "vmware",
            "xen",
            "microsoft",
            "oracle",
        } and self.virt in {
            "systemd-nspawn",
            "lxc",
            "lxc-libvirt",
            "docker",
            "podman",
            "openvz",
            "container-other",
            "wsl",
            "rkt",
        }

    def service(self, unit: str) -> ServiceState | None:
        if self.services is None:
            return None
        return self.services.get(unit if "." in unit else f"{unit}.service")

    def public(self) -> dict[str, object]:
        """A JSON-safe summary without any config file content."""
        return self.model_dump(
            mode="json", exclude={"asterisk_files", "kamailio_files", "freeswitch_files", "nft"}
        )


#: The VoIP config files the checks read, per tree (a ``*`` stays inside its directory).
CONF_FILES: dict[str, tuple[str, ...]] = {
    "asterisk": tuple(
        f"/etc/asterisk/{f}"
        for f in ("pjsip.conf", "manager.conf", "http.conf", "ari.conf", "sip.conf", "modules.conf")
    ),
    "kamailio": (
        "/etc/kamailio/kamailio.cfg",
        "/etc/kamailio/kamailio-local.cfg",
        "/etc/kamailio/tls.cfg",
    ),
    "freeswitch": (
        "/etc/freeswitch/vars.xml",
        "/etc/freeswitch/autoload_configs/event_socket.conf.xml",
        "/etc/freeswitch/sip_profiles/*.xml",
    ),
}
#: The snapshot tree (relative to ``/``) that holds each CONF_FILES tree.
CONF_TREES: dict[str, str] = {
    "asterisk": "etc/asterisk",
    "kamailio": "etc/kamailio",
    "freeswitch": "etc/freeswitch",
}


#: Facts sections that are config files as ``cat`` prints them: section -> (the snapshot
#: tree, relative to ``/``, that holds them; the files in ``cat``'s order). Beside a
#: snapshot of that tree the facts task leaves them out and they are rebuilt from the
#: snapshot's files (:func:`file_section`), so each file is read once.
FILE_SECTIONS: dict[str, tuple[str, tuple[str, ...]]] = {
    "audit_rules": ("etc/audit", ("/etc/audit/rules.d/*.rules", "/etc/audit/audit.rules")),
    "chrony_conf": (
        "etc/chrony",
        ("/etc/chrony/chrony.conf", "/etc/chrony/conf.d/*.conf", "/etc/chrony/sources.d/*.sources"),
    ),
}


class FactsTask(BaseModel):
    """The fact-gathering host task (``gather.sh``): one section per command.

    ``shared`` lists what a snapshot composed into the same script already reads
    (CONF_FILES trees, FILE_SECTIONS, ``sshd_t`` and ``packages``): the facts task
    leaves those out and :func:`parse_facts` takes them from the snapshot's records, so
    the files are read once. Example::

        run = run_tasks(targets, [FactsTask()])[0]
        facts = parse_facts(run.output("facts"))
    """

    name: str = "facts"
    shared: frozenset[str] = frozenset()
    #: The pending-upgrades fingerprint stored at this host's last scan (64 hex digits;
    #: anything else is dropped): the host skips ``apt list`` when it still matches.
    upgrades_since: str = ""
    #: The needrestart fingerprint stored at this host's last scan when needrestart
    #: found no service to restart then (same form): the host skips needrestart when it
    #: still matches (``needrestart_check`` in ``gather.sh``).
    needrestart_since: str = ""

    @field_validator("upgrades_since", "needrestart_since")
    @classmethod
    def _fingerprint_only(cls, value: str) -> str:
        return value if FINGERPRINT_RE.fullmatch(value) else ""

    def body(self) -> str:
        here = resources.files("vcops.facts")
        text = here.joinpath("gather.sh").read_text()
        lines = [
            here.joinpath("upgrades.sh").read_text().rstrip(),
            f"upgrades_since={shlex.quote(self.upgrades_since)}",
            f"needrestart_since={shlex.quote(self.needrestart_since)}",
        ]
        lines += [
            ln
            for ln in text.splitlines()
            if not (ln.endswith("# @shared") and ln.split()[1] in self.shared)
        ]
        for tree, files in CONF_FILES.items():
            if tree not in self.shared:
                lines.append(f"tarfiles {tree}_conf {' '.join(_shell_path(f) for f in files)}")
        return "\n".join(lines) + "\n"


def _shell_path(path: str) -> str:
    """A path quoted for the shell, leaving a final ``*.ext`` glob to expand on the host."""
    directory, base = path.rsplit("/", 1)
    if re.fullmatch(r"\*\.[a-z]+", base):
        return f"{shlex.quote(directory)}/{base}"
    return shlex.quote(path)


def _conf_match(path: str, pattern: str) -> bool:
    return fnmatch.fnmatchcase(path, pattern) and path.count("/") == pattern.count("/")


def conf_files(tree: str, members: dict[str, bytes]) -> dict[str, str]:
    """The CONF_FILES of one tree found among tar members, as text (pure)."""
    return {
        path: data.decode("utf-8", "replace")
        for path, data in sorted(members.items())
        if any(_conf_match(path, p) for p in CONF_FILES[tree])
    }


def file_section(name: str, members: dict[str, bytes]) -> Section:
    """A FILE_SECTIONS section rebuilt from a snapshot's tar members, as the facts task's
    ``cat`` would have printed it (globs in sorted order, pure)."""
    _tree, patterns = FILE_SECTIONS[name]
    text = "".join(
        members[path].decode("utf-8", "replace")
        for pattern in patterns
        for path in sorted(p for p in members if _conf_match(p, pattern))
    )
    return Section(rc=0, text=text)


def sections_of(out: TaskOutput) -> dict[str, Section]:
    """A task's records as text sections by name (the last of each name)."""
    return {r.name: Section(rc=r.rc, text=r.text) for r in out.records}


def _ok(sections: dict[str, Section], name: str) -> str | None:
    s = sections.get(name)
    return s.text if s is not None and s.rc == 0 else None


def parse_facts(
    out: TaskOutput,
    snapshot_files: dict[str, bytes] | None = None,
    shared: dict[str, Section] | None = None,
) -> ServerFacts:
    """The ``facts`` task's records into :class:`ServerFacts` (pure). With a snapshot in
    the same script, ``snapshot_files`` (its tar members) and ``shared`` (its generated
    sections: ``sshd_t``, ``packages``) stand in for what the facts task left out."""
    s = sections_of(out)
    for name, section in (shared or {}).items():
        s.setdefault(name, section)
    if snapshot_files is not None:
        for name in FILE_SECTIONS:
            if name not in s:
                s[name] = file_section(name, snapshot_files)
    facts: dict[str, object] = {}
    if (text := _ok(s, "os_release")) is not None:
        osr = parse_os_release(text)
        facts.update(
            os_id=osr.get("ID"),
            os_version_id=osr.get("VERSION_ID"),
            os_pretty=osr.get("PRETTY_NAME"),
        )
    if "virt" in s:
        facts["virt"] = s["virt"].text.strip() or "none"
    if (text := _ok(s, "now")) is not None and (now := to_int(text)) is not None:
        facts["now"] = now
    if (text := _ok(s, "sshd_t")) is not None:
        facts["sshd"] = parse_sshd_t(text)
    if (text := _ok(s, "ssh_q")) is not None:
        supported: dict[str, list[str]] = {}
        for line in text.splitlines():
            key, sep, value = line.partition(":")
            if sep:
                supported[key.strip()] = value.split()
        facts["ssh_supported"] = supported
    if (text := _ok(s, "sysctl")) is not None or (
        "sysctl" in s and s["sysctl"].text.count(" = ") > 50
    ):
        facts["sysctl"] = parse_sysctl(s["sysctl"].text)
    if "nft" in s:
        if s["nft"].rc == 0:
            text = s["nft"].text or "{}"
            if json_depth(text) > MAX_JSON_DEPTH:
                facts["nft_error"] = f"nft output nested deeper than {MAX_JSON_DEPTH} levels"
            else:
                try:
                    facts["nft"] = parse_ruleset(json.loads(text))
                except ValueError as exc:  # JSONDecodeError, or a number too long
                    facts["nft_error"] = f"unparsable nft output: {str(exc)[:200]}"
        else:
            facts["nft_error"] = (s["nft"].text.strip().splitlines() or ["nft failed"])[-1][:200]
    if (text := _ok(s, "services")) is not None:
        facts["services"] = parse_services(text)
    if (text := _ok(s, "integ_services")) is not None:
        known = facts.get("services")
        facts["services"] = {**(known if isinstance(known, dict) else {}), **parse_services(text)}
    if (text := _ok(s, "packages")) is not None:
        facts["packages"] = packages = parse_packages(text)
        facts["openssh_version"] = packages.get("openssh-server")
    if (text := _ok(s, "upgradable")) is not None:
        facts["upgradable"] = parse_upgradable(text)
    if (text := _ok(s, "reboot_required")) is not None:
        first = text.strip().splitlines()[0] if text.strip() else "none"
        facts["reboot_required"] = first != "none"
        if (since := to_int(first)) is not None and since >= 0:
            facts["reboot_required_since"] = since
    if (text := _ok(s, "apt_config")) is not None:
        facts["apt_config"] = parse_apt_config(text)
    if "fail2ban" in s:
        if s["fail2ban"].rc == 0 and "Jail list" in s["fail2ban"].text:
            facts["fail2ban_jails"] = parse_fail2ban(s["fail2ban"].text)
        else:
            facts["fail2ban_error"] = (
                s["fail2ban"].text.strip().splitlines() or ["fail2ban-client failed"]
            )[0][:200]
    if "auditctl" in s:
        if s["auditctl"].rc == 0:
            facts["audit_active_rules"] = [
                ln.strip()
                for ln in s["auditctl"].text.splitlines()
                if ln.strip() and ln.strip() != "No rules"
            ]
        else:
            facts["audit_active_error"] = (
                s["auditctl"].text.strip().splitlines() or ["auditctl failed"]
            )[-1][:200]
    if "audit_rules" in s:
        facts["audit_rule_files"] = [
            ln.strip()
            for ln in s["audit_rules"].text.splitlines()
            if ln.strip() and not ln.strip().startswith("#")
        ]
    if (text := _ok(s, "chrony_tracking")) is not None:
        facts["chrony_tracking"] = parse_chrony_tracking(text)
    if "chrony_conf" in s:
        facts["chrony_conf"] = [
            ln.strip()
            for ln in s["chrony_conf"].text.splitlines()
            if ln.strip() and not ln.strip().startswith("#")
        ]
    if (text := _ok(s, "timedatectl")) is not None:
        props = dict(line.partition("=")[::2] for line in text.splitlines())
        if "NTPSynchronized" in props:
            facts["ntp_synchronized"] = props["NTPSynchronized"] == "yes"
    if "stat" in s:
        stats, world = parse_stat(s["stat"].text)
        facts["file_stats"], facts["world_accessible"] = stats, world
    if (text := _ok(s, "listening")) is not None:
        facts["listening"] = parse_listening(text)
    packaged = facts.get("packages")
    if isinstance(packaged, dict) and "asterisk" in packaged:
        facts["asterisk_version"] = packaged["asterisk"]
    elif "asterisk_version" in s and s["asterisk_version"].text.strip():
        facts["asterisk_version"] = s["asterisk_version"].text.strip().splitlines()[0]
    facts.update(integ_facts({name: (sec.rc, sec.text) for name, sec in s.items()}))
    services = facts.get("services")
    facts["accounts"] = parse_accounts(
        {n: (sec.rc, sec.text) for n, sec in s.items() if n.startswith("acc_")},
        services.get("cron.service") if isinstance(services, dict) else None,
    )
    facts.update(kernel_facts({n: _ok(s, n) for n in KERNEL_SECTIONS}))
    for tree in CONF_FILES:
        record = out.get(f"{tree}_conf")
        if record is not None:
            facts[f"{tree}_files"] = conf_files(tree, tar_members(record.data))
        elif snapshot_files is not None:
            facts[f"{tree}_files"] = conf_files(tree, snapshot_files)
    banners = out.get("banners")
    facts.update(
        parse_access(
            {n: _ok(s, n) for n in ("host_keys", "moduli", "fail2ban_increment")},
            tar_members(banners.data) if banners is not None and banners.rc == 0 else None,
        )
    )
    facts.update(parse_patch({n: (x.rc, x.text) for n, x in s.items()}, out))
    return ServerFacts.model_validate(facts)
