"""Shell commands that run :mod:`vcops.enforce.remote` on a host (pure).

The helper travels inside the command (``python3 -c <source> <action> <base64 json>``,
every word through :func:`shlex.quote`), so nothing is installed on the host and no
file transfer is needed. Both the pyinfra deploys and ``vcops apply --check`` use it.
"""

from __future__ import annotations

import base64
import json
import shlex
from functools import lru_cache
from importlib import resources

from vcops.enforce.accounts import ACCOUNTS_PROBES
from vcops.enforce.files import ManagedFile
from vcops.enforce.render import FS_PROFILES, FS_VARS, Vars, secret_files
from vcops.enforce.vars import SECRETS
from vcops.roles import DAEMONS

PACKAGES: dict[str, tuple[str, ...]] = {
    "ssh": ("openssh-server",),
    "firewall": ("nftables",),
    "fail2ban": ("fail2ban", "python3-systemd"),
    "kernel": ("procps",),
    "audit": ("auditd",),
    "time": ("chrony",),
    "updates": ("unattended-upgrades", "needrestart"),
    "logging": ("rsyslog", "rsyslog-gnutls"),
    "integrity": ("aide", "debsums"),
    "accounts": ("libpam-pwquality", "libpam-tmpdir", "cron"),
    **{d.area: d.area_packages for d in DAEMONS.values() if d.area},
}
"""Packages each area installs (all of them are in the lab's apt repository)."""
ACCOUNTING_PACKAGES: tuple[str, ...] = ("acct", "sysstat")
"""What the kernel area adds where ``vcops_kernel_process_accounting`` is on."""


def area_packages(area: str, variables: Vars) -> tuple[str, ...]:
    """The packages ``area`` installs on a host with these role variables."""
    extra = (
        ACCOUNTING_PACKAGES
        if area == "kernel" and variables.get("vcops_kernel_process_accounting")
        else ()
    )
    return (*PACKAGES.get(area, ()), *extra)


CONFIG_DIRS: dict[str, tuple[str, str]] = {
    d.area: (f"vcops_{d.area}_config_dir", d.group or d.name)
    for d in DAEMONS.values()
    if d.area and d.config_dir
}
"""VoIP areas -> (variable naming the config dir, the group that must read it)."""


@lru_cache(maxsize=1)
def aptsources_source() -> str:
    """The apt sources probe's source text (:mod:`vcops.facts.aptsources`)."""
    return resources.files("vcops.facts").joinpath("aptsources.py").read_text()


@lru_cache(maxsize=1)
def remote_source() -> str:
    """The helper script's source text."""
    return resources.files("vcops.enforce").joinpath("remote.py").read_text()


def _encode(spec: object) -> str:
    return base64.b64encode(json.dumps(spec, sort_keys=True).encode()).decode()


def remote_command(action: str, spec: object) -> str:
    """``python3 -c <helper> ACTION <spec>`` as one quoted shell command line."""
    return shlex.join(["python3", "-c", remote_source(), action, _encode(spec)])


def install_spec(f: ManagedFile) -> dict[str, object]:
    """The ``install`` action's argument for one managed file."""
    return {
        "path": f.path,
        "content": f.content,
        "mode": f.mode,
        "owner": f.owner,
        "group": f.group,
        "validate": list(f.validate) if f.validate else None,
        "copy_dir": f.copy_dir,
        "secrets": f.secrets,
    }


def areas(variables: Vars) -> list[str]:
    value = variables["vcops_areas"]
    assert isinstance(value, list)
    return [str(a) for a in value]


def config_dirs(variables: Vars) -> dict[str, str]:
    """Config directory -> group that must read it, for the host's VoIP areas."""
    return {
        str(variables[var]): group
        for area, (var, group) in CONFIG_DIRS.items()
        if area in areas(variables)
    }


def certificates(variables: Vars) -> dict[str, dict[str, str]]:
    """Area -> ``cert`` action spec for the TLS material a VoIP area needs."""
    out: dict[str, dict[str, str]] = {}
    for area in (d.area for d in DAEMONS.values() if d.area and d.tls):
        if area in areas(variables):
            out[area] = {
                "cert": str(variables[f"vcops_{area}_tls_cert"]),
                "key": str(variables[f"vcops_{area}_tls_key"]),
                "cn": str(variables["inventory_hostname"]),
                "group": area,
            }
    return out


def state_spec(variables: Vars, paths: list[str]) -> dict[str, object]:
    """The ``state`` action's argument: files, VoIP dirs, certificates and probes."""
    wanted = list(dict.fromkeys(paths))
    globs = []
    if "freeswitch" in areas(variables):
        wanted.append(FS_VARS)
        globs.append(FS_PROFILES)
    packages = sorted({p for a in areas(variables) for p in area_packages(a, variables)})
    probes: dict[str, list[str]] = {}
    if "updates" in areas(variables):
        mirror = str(variables.get("vcops_updates_security_mirror") or "")
        probes["apt_security"] = ["python3", "-c", aptsources_source(), mirror]
    return {
        "paths": wanted,
        "globs": globs,
        "dirs": config_dirs(variables),
        "exists": sorted({c[k] for c in certificates(variables).values() for k in ("cert", "key")}),
        "secrets": secret_files(list(SECRETS)),
        "probes": {
            "ssh_kex": ["ssh", "-Q", "kex"],
            "nft_tables": ["nft", "list", "tables"],
            "virt": ["systemd-detect-virt", "-c"],
            "groups": [
                "getent",
                "group",
                *dict.fromkeys(d.group for d in DAEMONS.values() if d.group),
            ],
            "aide_db": ["stat", "-c", "%Y", "/var/lib/aide/vcops.db"],
            "audit_status": ["auditctl", "-s"],
            "packages": ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *packages],
            **probes,
            **(ACCOUNTS_PROBES if "accounts" in areas(variables) else {}),
        },
    }
