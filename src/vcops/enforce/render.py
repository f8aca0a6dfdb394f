"""What a host's managed files should contain: templates rendered, edits applied (pure).

The templates live in ``templates/<area>/`` at the repository root and are rendered
with Ansible's Jinja2 defaults (``trim_blocks``, trailing newline kept), so the
Ansible template module renders the same bytes from the same variables. Two
FreeSWITCH files are operator-owned and only edited line-wise
(:func:`edit_vars_xml`, :func:`edit_sip_profile`).

Contents carry secret *references* (``@@vcops-secret:NAME@@``), never secrets: the
host resolves them at install time and masks them again when it reports a file, so
"desired" and "live" compare without a secret ever reaching the controller.
"""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from collections.abc import Mapping

from vcops.enforce.files import HostState, ManagedFile
from vcops.enforce.vars import SECRET_DIR, SECRETS, secret_ref
from vcops.facts.aptsources import OWN_FILE
from vcops.inventory.export import JsonValue
from vcops.templating import render_config

SSHD = ["/usr/sbin/sshd", "-t", "-f", "%s"]
VISUDO = ["/usr/sbin/visudo", "-c", "-q", "-f", "%s"]
SUDOERS_DROP_IN = "/etc/sudoers.d/vcops"
BANNER_FILES = ("/etc/issue", "/etc/issue.net")
MODULI = "/etc/ssh/moduli"
GEX_PREFIX = "diffie-hellman-group-exchange-"
"""The login banners (``templates/ssh/issue.j2``); sshd's ``Banner`` is the second."""
PAM_CONFIGS = "/usr/share/pam-configs"
ACCOUNT_FILES: tuple[tuple[str, str, str, tuple[str, ...] | None], ...] = (
    (f"{PAM_CONFIGS}/vcops-faillock", "pam-faillock.j2", "0644", None),
    (f"{PAM_CONFIGS}/vcops-faillock-notify", "pam-faillock-notify.j2", "0644", None),
    (f"{PAM_CONFIGS}/vcops-pwquality", "pam-pwquality.j2", "0644", None),
    (f"{PAM_CONFIGS}/vcops-pwhistory", "pam-pwhistory.j2", "0644", None),
    ("/etc/login.defs", "login.defs.j2", "0644", None),
    ("/etc/profile.d/vcops-tmout.sh", "tmout.sh.j2", "0644", ("sh", "-n", "%s")),
    ("/etc/sudoers.d/vcops-defaults", "sudoers.j2", "0440", tuple(VISUDO)),
    ("/etc/cron.allow", "allow.j2", "0640", None),
    ("/etc/at.allow", "allow.j2", "0640", None),
)
"""The accounts area's files: path, template in ``templates/accounts/``, mode, validator.
The PAM profiles take effect through ``pam-auth-update`` (:mod:`vcops.enforce.accounts`);
the common-* files it writes are never edited by hand."""
NFT = ["nft", "-c", "-f", "%s"]
XML_CHECK = ["python3", "-c", "import sys, xml.dom.minidom as m; m.parse(sys.argv[1])", "%s"]
FS_PROFILES = "/etc/freeswitch/sip_profiles/*.xml"
FS_VARS = "/etc/freeswitch/vars.xml"
SECURITY_SOURCES = OWN_FILE
NEEDRESTART_CONF = "/etc/needrestart/conf.d/vcops.conf"
Vars = Mapping[str, JsonValue]


def render_template(name: str, variables: Vars) -> str:
    """Render ``templates/<name>`` with ``variables`` (the one loader,
    :func:`vcops.templating.render_config`).

    Raises:
        ConfigError: the template is missing or uses a variable that is not set.
    """
    return render_config(name, variables)


def secret_files(names: list[str]) -> dict[str, str]:
    """Reference -> root-only file on the host for the secrets ``names``."""
    return {secret_ref(n): f"{SECRET_DIR}/{n}" for n in names}


def supported_kex(wanted: list[str], offered: str) -> list[str]:
    """The wanted KEX algorithms this host's OpenSSH knows (``ssh -Q kex`` output).

    An sshd refuses a config naming an algorithm it lacks, so the baseline's newer
    names (e.g. ML-KEM on OpenSSH 9.2) are dropped; with no probe output nothing is.

    >>> supported_kex(["mlkem768x25519-sha256", "curve25519-sha256"], "curve25519-sha256\\n")
    ['curve25519-sha256']
    """
    known = set(offered.split())
    return [a for a in wanted if a in known] if known else list(wanted)


def prune_moduli(text: str, min_bits: int) -> str:
    """/etc/ssh/moduli without the groups smaller than ``min_bits`` (pure; the same lines
    the Ansible role's ``awk '$0 ~ /^#/ || NF < 7 || $5 + 1 >= min'`` keeps: moduli(5)
    stores the size minus one in field 5).

    >>> prune_moduli("# c\\n1 2 6 100 2047 2 F\\n1 2 6 100 3071 2 F\\n", 3072)
    '# c\\n1 2 6 100 3071 2 F\\n'
    """
    kept = []
    for line in text.splitlines(keepends=True):
        fields = line.split()
        if line.startswith("#") or len(fields) < 7:
            kept.append(line)
            continue
        size = fields[4]
        if size.isascii() and size.isdigit() and len(size) < 7 and int(size) + 1 >= min_bits:
            kept.append(line)
    return "".join(kept)


def _moduli_file(v: dict[str, JsonValue], state: HostState) -> list[ManagedFile]:
    """/etc/ssh/moduli pruned to ``vcops_ssh_moduli_min_bits``, only while sshd offers DH
    group exchange (VC-SSH-010). Without a state yet it is listed so its content is read;
    a host without the file gets none."""
    if not any(a.startswith(GEX_PREFIX) for a in _strs(v, "vcops_ssh_kex_algorithms")):
        return []
    live = state.files.get(MODULI)
    if live is not None and (not live.exists or live.content is None):
        return []
    floor = v["vcops_ssh_moduli_min_bits"]
    assert isinstance(floor, int)
    content = prune_moduli(live.content, floor) if live is not None and live.content else ""
    return [ManagedFile("ssh", MODULI, content)]


def edit_vars_xml(text: str, ref: str) -> str:
    """Set FreeSWITCH's ``default_password`` pre-process variable to ``ref`` (pure)."""
    line = f'<X-PRE-PROCESS cmd="set" data="default_password={ref}"/>'
    pattern = re.compile(r'<X-PRE-PROCESS\s+cmd="set"\s+data="default_password=[^"]*"\s*/>')
    if pattern.search(text):
        return pattern.sub(line, text)
    return re.sub(r"(<include>[^\n]*\n)", lambda m: f"{m[1]}  {line}\n", text, count=1)


def _auth_failures_on(text: str) -> bool | None:
    try:
        root = ET.fromstring(text)  # noqa: S314 - the host's own config, parsed locally
    except ET.ParseError:
        return None
    values = [
        p.get("value", "") for p in root.iter("param") if p.get("name") == "log-auth-failures"
    ]
    return bool(values) and all(v.lower() == "true" for v in values)


def edit_sip_profile(text: str) -> str:
    """Turn ``log-auth-failures`` on in a FreeSWITCH SIP profile (pure).

    Existing params are switched to true; a profile without one gets it first in its
    ``<settings>``. A profile that is not valid XML is left alone.
    """
    if _auth_failures_on(text) is not False:
        return text
    pattern = re.compile(r'(<param\s+name="log-auth-failures"\s+value=")[^"]*("\s*/>)')
    edited = pattern.sub(r"\1true\2", text)
    if _auth_failures_on(edited):
        return edited
    return re.sub(
        r"(\n?)([ \t]*)(<settings>)",
        lambda m: f'{m[1]}{m[2]}{m[3]}\n{m[2]}  <param name="log-auth-failures" value="true"/>',
        edited,
        count=1,
    )


def _group(state: HostState, wanted: str) -> str:
    return wanted if wanted in state.groups else "root"


def _strs(variables: Vars, key: str) -> list[str]:
    value = variables[key]
    assert isinstance(value, list)
    return [str(v) for v in value]


def area_files(area: str, variables: Vars, state: HostState) -> list[ManagedFile]:
    """The files of one baseline area for a host (pure)."""
    v = dict(variables)
    if area == "ssh":
        kex: list[JsonValue] = list(
            supported_kex(
                _strs(variables, "vcops_ssh_kex_algorithms"), state.probes.get("ssh_kex", "")
            )
        )
        v["vcops_ssh_kex_algorithms"] = kex
        content = render_template("ssh/sshd_config.j2", v)
        banner = render_template("ssh/issue.j2", v)  # shown verbatim: no managed header
        files = [ManagedFile(area, path, banner) for path in BANNER_FILES]
        files += _moduli_file(v, state)
        files.append(
            ManagedFile(area, "/etc/ssh/sshd_config", content, "0600", validate=tuple(SSHD))
        )
        if variables.get("vcops_ssh_sudo_user"):  # managed through a non-root login
            sudoers = render_template("ssh/sudoers.j2", v)
            files.append(
                ManagedFile(area, SUDOERS_DROP_IN, sudoers, "0440", validate=tuple(VISUDO))
            )
        return files
    if area == "firewall":
        content = render_template("firewall/nftables.conf.j2", v)
        return [ManagedFile(area, "/etc/nftables.conf", content, "0644", validate=tuple(NFT))]
    if area == "fail2ban":
        check = ("fail2ban-client", "-c", "%d", "-t")
        files = [
            ManagedFile(
                area,
                "/etc/fail2ban/jail.d/vcops.conf",
                render_template("fail2ban/vcops.conf.j2", v),
                validate=check,
                copy_dir="/etc/fail2ban",
            )
        ]
        if "kamailio" in _strs(variables, "vcops_fail2ban_jails"):
            files.insert(
                0,
                ManagedFile(
                    area,
                    "/etc/fail2ban/filter.d/vcops-kamailio.conf",
                    render_template("fail2ban/vcops-kamailio.conf.j2", v),
                ),
            )
        return files
    if area == "kernel":
        return _kernel_files(v)
    if area == "audit":
        content = render_template("audit/vcops.rules.j2", v)
        return [ManagedFile(area, "/etc/audit/rules.d/90-vcops.rules", content, "0640")]
    if area == "time":
        content = render_template("time/chrony.conf.j2", v)
        check = ("chronyd", "-p", "-f", "%s")
        return [ManagedFile(area, "/etc/chrony/chrony.conf", content, validate=check)]
    if area == "updates":
        check = ("apt-config", "-c", "%s", "dump")
        sources = security_sources_file(variables, state)
        return [
            *([sources] if sources is not None else []),
            ManagedFile(
                area,
                "/etc/apt/apt.conf.d/20auto-upgrades",
                render_template("updates/20auto-upgrades.j2", v),
                validate=check,
            ),
            ManagedFile(
                area,
                "/etc/apt/apt.conf.d/52vcops-unattended-upgrades",
                render_template("updates/52vcops-unattended-upgrades.j2", v),
                validate=check,
            ),
            ManagedFile(
                area,
                NEEDRESTART_CONF,
                render_template("updates/vcops-needrestart.conf.j2", v),
                validate=("perl", "-c", "%s"),
            ),
        ]
    if area == "accounts":
        rendered = {
            "pam-faillock.j2": render_template("accounts/pam-faillock.j2", v),
            "pam-faillock-notify.j2": render_template("accounts/pam-faillock-notify.j2", v),
            "pam-pwquality.j2": render_template("accounts/pam-pwquality.j2", v),
            "pam-pwhistory.j2": render_template("accounts/pam-pwhistory.j2", v),
            "login.defs.j2": render_template("accounts/login.defs.j2", v),
            "tmout.sh.j2": render_template("accounts/tmout.sh.j2", v),
            "sudoers.j2": render_template("accounts/sudoers.j2", v),
            "allow.j2": render_template("accounts/allow.j2", v),
        }
        return [
            ManagedFile(area, path, rendered[name], mode, validate=check)
            for path, name, mode, check in ACCOUNT_FILES
        ]
    if area == "kamailio":
        group = _group(state, "kamailio")
        return [
            ManagedFile(
                area,
                "/etc/kamailio/tls.cfg",
                render_template("kamailio/tls.cfg.j2", v),
                "0640",
                group=group,
            ),
            ManagedFile(
                area,
                "/etc/kamailio/kamailio-local.cfg",
                render_template("kamailio/kamailio-local.cfg.j2", v),
                "0640",
                group=group,
                validate=("kamailio", "-c", "-f", "%d/kamailio.cfg"),
                copy_dir="/etc/kamailio",
            ),
        ]
    if area == "asterisk":
        group = _group(state, "asterisk")
        refs = secret_files(["asterisk_ami"])
        return [
            ManagedFile(
                area,
                f"/etc/asterisk/{name}",
                render_template(f"asterisk/{name}.j2", v),
                "0640",
                group=group,
                secrets=refs if name == "manager.conf" else {},
            )
            for name in ("pjsip.conf", "manager.conf", "http.conf", "sip.conf")
        ]
    if area == "freeswitch":
        return _freeswitch_files(v, state)
    if area == "integrity":
        return _integrity_files(v)
    if area == "logging":
        return _logging_files(v)
    return []


AIDE_CONF = "/etc/aide/vcops.conf"
AIDE_UPDATE = "/usr/local/sbin/vcops-aide-update"
AIDE_CHECK_UNIT = "vcops-aide-check"


def _integrity_files(v: dict[str, JsonValue]) -> list[ManagedFile]:
    unit = f"/etc/systemd/system/{AIDE_CHECK_UNIT}"
    return [
        ManagedFile(
            "integrity",
            AIDE_CONF,
            render_template("integrity/vcops-aide.conf.j2", v),
            "0600",
            validate=("aide", "--config-check", "--config=%s"),
        ),
        ManagedFile(
            "integrity",
            AIDE_UPDATE,
            render_template("integrity/vcops-aide-update.j2", v),
            "0750",
            validate=("sh", "-n", "%s"),
        ),
        ManagedFile(
            "integrity",
            f"{unit}.service",
            render_template("integrity/vcops-aide-check.service.j2", v),
        ),
        ManagedFile(
            "integrity",
            f"{unit}.timer",
            render_template("integrity/vcops-aide-check.timer.j2", v),
        ),
    ]


RSYSLOG_DROP_IN = "/etc/rsyslog.d/90-vcops.conf"
JOURNALD_DROP_IN = "/etc/systemd/journald.conf.d/90-vcops.conf"


def _logging_files(v: dict[str, JsonValue]) -> list[ManagedFile]:
    # A drop-in without targets is comments only, which `rsyslogd -N1` refuses as a
    # config of its own ("no active actions"): it is validated when it forwards.
    forwards = bool(v["vcops_logging_syslog_servers"])
    return [
        ManagedFile(
            "logging",
            RSYSLOG_DROP_IN,
            render_template("logging/90-vcops.conf.j2", v),
            validate=("rsyslogd", "-N1", "-f", "%s") if forwards else None,
        ),
        ManagedFile("logging", JOURNALD_DROP_IN, render_template("logging/journald.conf.j2", v)),
    ]


SYSSTAT_DEFAULT = "/etc/default/sysstat"


def _kernel_files(v: dict[str, JsonValue]) -> list[ManagedFile]:
    """sysctls, module blacklist, core dumps off; /etc/default/sysstat with accounting."""
    files = [
        # 99-vcops sorts after systemd's 99-protect-links.conf (fs.protected_fifos=1) and
        # 99-sysctl.conf: systemd-sysctl applies files by name, the last value wins.
        ManagedFile(
            "kernel",
            "/etc/sysctl.d/99-vcops-hardening.conf",
            render_template("kernel/sysctl.conf.j2", v),
        ),
        ManagedFile(
            "kernel",
            "/etc/modprobe.d/vcops-blacklist.conf",
            render_template("kernel/modprobe-blacklist.conf.j2", v),
        ),
        ManagedFile(
            "kernel",
            "/etc/security/limits.d/90-vcops-coredump.conf",
            render_template("kernel/limits-coredump.conf.j2", v),
        ),
        ManagedFile(
            "kernel",
            "/etc/systemd/coredump.conf.d/90-vcops.conf",
            render_template("kernel/coredump.conf.j2", v),
        ),
    ]
    if v.get("vcops_kernel_process_accounting"):
        files.append(
            ManagedFile("kernel", SYSSTAT_DEFAULT, render_template("kernel/sysstat.j2", v))
        )
    return files


def _freeswitch_files(v: dict[str, JsonValue], state: HostState) -> list[ManagedFile]:
    group = _group(state, "freeswitch")
    esl = secret_files(["freeswitch_event_socket"])
    default = secret_files(["freeswitch_default_password"])
    files = [
        ManagedFile(
            "freeswitch",
            "/etc/freeswitch/autoload_configs/event_socket.conf.xml",
            render_template("freeswitch/event_socket.conf.xml.j2", v),
            "0640",
            group=group,
            validate=tuple(XML_CHECK),
            secrets=esl,
        )
    ]
    live_vars = state.files.get(FS_VARS)
    if live_vars is not None and live_vars.exists and live_vars.content is not None:
        ref = str(v[SECRETS["freeswitch_default_password"]])
        files.append(
            ManagedFile(
                "freeswitch",
                FS_VARS,
                edit_vars_xml(live_vars.content, ref),
                "0640",
                group=group,
                validate=tuple(XML_CHECK),
                secrets=default,
            )
        )
    for path, live in sorted(state.files.items()):
        if path.startswith("/etc/freeswitch/sip_profiles/") and live.content is not None:
            files.append(
                ManagedFile(
                    "freeswitch",
                    path,
                    edit_sip_profile(live.content),
                    "0640",
                    group=group,
                    validate=tuple(XML_CHECK),
                )
            )
    return files


def security_sources_file(variables: Vars, state: HostState) -> ManagedFile | None:
    """The updates area's sources file, when the host's own sources lack the security
    suite (or the mirror). The ``apt_security`` probe (:mod:`vcops.facts.aptsources`
    run on the host) decides; without a probe (planning the paths to read) it is listed.
    """
    raw = state.probes.get("apt_security")
    codename, missing = "", ["unprobed"]
    if raw is not None:
        try:
            data = json.loads(raw)
            codename, missing = str(data["codename"]), [str(m) for m in data["missing"]]
        except (ValueError, KeyError, TypeError):
            return None
        if not missing or not codename:
            return None
    v = dict(variables)
    v["vcops_updates_codename"] = codename or "bookworm"
    content = render_template("updates/vcops-security.sources.j2", v)
    return ManagedFile("updates", SECURITY_SOURCES, content)


def lists_stale(variables: Vars, state: HostState) -> bool:
    """Whether the host's apt lists are older than ``vcops_updates_lists_max_age_days``
    (or absent), by the ``apt_security`` probe and the host's clock (VC-PATCH-006)."""
    days = variables.get("vcops_updates_lists_max_age_days", 2)
    try:
        age = int(json.loads(state.probes.get("apt_security", ""))["lists_age"])
    except (ValueError, KeyError, TypeError):
        return False
    return isinstance(days, int) and (age < 0 or age > days * 86400)


def desired_files(variables: Vars, state: HostState) -> list[ManagedFile]:
    """Every managed file of the host's areas, in apply order (pure)."""
    files: list[ManagedFile] = []
    for area in _strs(variables, "vcops_areas"):
        files.extend(area_files(area, variables, state))
    return files
