"""A device's intended hardening config, rendered from ``templates/netdev/<platform>/``.

The variables come from the same :class:`~vcops.baseline.settings.BaselineSettings` the
scanner judges with, the device's management networks and what its running config says
(its vty line ranges). Secrets are resolved from their references at render time and
live only in the returned text: every plan, log and audit entry shows it masked.

Example::

    >>> v = intent_vars(DeviceContext(BaselineSettings()), "ios", (), secrets={})
    >>> v["vty_lines"], v["banner"]
    (['vty 0 4', 'vty 5 15'], 'Authorised access only. Activity is logged.')
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from ipaddress import IPv4Network
from pathlib import Path

from vcops.baseline.context import DeviceContext
from vcops.baseline.netparse import VtyLine
from vcops.baseline.settings import BaselineSettings, SecretRef
from vcops.enforce.render import Vars, render_template
from vcops.errors import InventoryError, Problem
from vcops.templating import template_names

#: Default vty ranges per platform when the running config shows none.
_DEFAULT_VTY = {"ios": ["vty 0 4", "vty 5 15"], "nxos_ssh": ["vty"]}


def secret_refs(settings: BaselineSettings) -> dict[str, SecretRef]:
    """Every secret reference the device templates use, by a readable name."""
    refs: dict[str, SecretRef] = {}
    if settings.device_ntp_key:
        refs["device_ntp_key"] = settings.device_ntp_key
    if settings.device_enable_secret:
        refs["device_enable_secret"] = settings.device_enable_secret
    for n, server in enumerate(settings.device_aaa_servers):
        refs[f"device_aaa_servers[{n}].key"] = server.key
    for n, user in enumerate(settings.device_snmpv3_users):
        refs[f"device_snmpv3_users[{n}].auth"] = user.auth
        refs[f"device_snmpv3_users[{n}].priv"] = user.priv
    return refs


def resolve_secrets(settings: BaselineSettings, root: Path, *, where: str) -> dict[str, str]:
    """Read every referenced secret (environment or file, relative to ``root``).

    Raises:
        InventoryError: a reference names nothing readable (one problem per reference).
    """
    values: dict[str, str] = {}
    problems: list[Problem] = []
    for name, ref in secret_refs(settings).items():
        if ref.env:
            value = os.environ.get(ref.env, "")
            if not value:
                problems.append(
                    Problem(where, f"baseline_{name}", f"${ref.env} is not set", "export it")
                )
            values[name] = value
        elif ref.file:
            path = Path(ref.file).expanduser()
            path = path if path.is_absolute() else root / path
            try:
                values[name] = path.read_text().strip()
            except OSError as exc:
                problems.append(
                    Problem(where, f"baseline_{name}", f"{path}: {exc.strerror}", "create it")
                )
        else:
            problems.append(
                Problem(where, f"baseline_{name}", "names no env or file", "set env: or file:")
            )
    if problems:
        raise InventoryError(problems)
    return values


def intent_vars(
    ctx: DeviceContext,
    platform: str,
    vty_lines: Sequence[VtyLine],
    *,
    secrets: Mapping[str, str],
) -> Vars:
    """Template variables for one device (pure: secrets are passed in, already read)."""
    s = ctx.settings
    nets = [n for n in ctx.management_networks if isinstance(n, IPv4Network)]
    key = secrets.get("device_ntp_key")
    vty = [v.name for v in vty_lines] or _DEFAULT_VTY.get(platform, [])
    return {
        "mgmt_networks": [
            {"address": str(n.network_address), "wildcard": str(n.hostmask), "prefix": str(n)}
            for n in nets
        ],
        "vty_lines": list(vty),
        "ntp_servers": list(s.device_ntp_servers),
        "ntp_key": {"id": s.device_ntp_key.id, "value": key} if s.device_ntp_key and key else None,
        "syslog_hosts": list(s.device_syslog_servers),
        "banner": s.device_banner_text,
        "enable_secret": secrets.get("device_enable_secret"),
        "aaa_servers": [
            {
                "index": n + 1,
                "address": server.address,
                "protocol": server.protocol,
                "key": secrets.get(f"device_aaa_servers[{n}].key", ""),
            }
            for n, server in enumerate(s.device_aaa_servers)
        ],
        "snmp_groups": list(dict.fromkeys(u.group for u in s.device_snmpv3_users)),
        "snmp_users": [
            {
                "name": user.name,
                "group": user.group,
                "auth": secrets.get(f"device_snmpv3_users[{n}].auth", ""),
                "priv": secrets.get(f"device_snmpv3_users[{n}].priv", ""),
            }
            for n, user in enumerate(s.device_snmpv3_users)
        ],
    }


def render_intended(platform: str, variables: Vars) -> str:
    """Every ``templates/netdev/<platform>/*.j2``, in name order, rendered and joined.

    Raises:
        ConfigError: a template is missing or uses a variable that is not set.
    """
    return "".join(
        render_template(name, variables) for name in template_names(f"netdev/{platform}")
    )
