"""Role variables: the resolved baseline of one server as ``vcops_<area>_<name>`` variables.

Both engines read exactly these variables (pyinfra from host data, Ansible from host
vars), and the templates in ``templates/`` use only them, so the scanner, pyinfra and
Ansible enforce the same values. Pure: everything comes from the inventory, the
settings (:func:`vcops.baseline.settings.settings_for`) and the controller address.

Secrets are never values here: ``vcops_asterisk_ami_secret`` and friends hold a
*reference* (``@@vcops-secret:asterisk_ami@@``) that the host resolves from
``/etc/vcops/secrets/<name>`` (root-only, generated on the host when missing) at the
moment the file is installed. Example (abridged)::

    {"vcops_areas": ["ssh", "firewall", ..., "kamailio"],
     "vcops_ssh_max_auth_tries": 3,
     "vcops_firewall_ssh_sources_v4": ["10.213.0.0/24", "10.213.0.1/32"],
     "vcops_fail2ban_jails": ["sshd", "kamailio"], ...}
"""

from __future__ import annotations

import ipaddress

from vcops.baseline.kernel_settings import accounting_on, blacklist_for, sysctl_sets
from vcops.baseline.settings import BaselineSettings, server_settings
from vcops.inventory.export import JsonValue
from vcops.inventory.models import Inventory, Server
from vcops.roles import VOIP_ROLES, daemon_areas, role_areas

MANAGED_HEADER = "managed by vcops, do not edit"
COMMON_AREAS: tuple[str, ...] = (
    "ssh",
    "firewall",
    "fail2ban",
    "kernel",
    "audit",
    "time",
    "updates",
    "logging",
    "accounts",
)
LAST_AREAS: tuple[str, ...] = ("integrity",)
"""Areas that run after every other one: the AIDE database is built from the hardened host."""
ALL_AREAS: tuple[str, ...] = (*COMMON_AREAS, *daemon_areas(), *LAST_AREAS)
SECRET_DIR = "/etc/vcops/secrets"  # noqa: S105 - a directory, not a secret
SECRETS: dict[str, str] = {
    "asterisk_ami": "vcops_asterisk_ami_secret",
    "freeswitch_default_password": "vcops_freeswitch_default_password",
    "freeswitch_event_socket": "vcops_freeswitch_event_socket_password",
}
"""Secret name -> the variable holding its reference."""

UPDATE_ORIGINS: tuple[str, ...] = (
    "origin=Debian,codename=${distro_codename},label=Debian-Security",
    "origin=Debian,codename=${distro_codename}-security,label=Debian-Security",
    "origin=Debian,codename=${distro_codename}-updates",
)


def secret_ref(name: str) -> str:
    """The reference a template gets in place of the secret ``name`` (pure).

    >>> secret_ref("asterisk_ami")
    '@@vcops-secret:asterisk_ami@@'
    """
    return f"@@vcops-secret:{name}@@"


def areas_for(roles: list[str]) -> list[str]:
    """The baseline areas a server with ``roles`` gets, in apply order (pure).

    >>> areas_for(["sbc"])[-2:]
    ['kamailio', 'integrity']
    """
    return list(dict.fromkeys((*COMMON_AREAS, *role_areas(roles), *LAST_AREAS)))


def _jails(settings: BaselineSettings, roles: list[str]) -> list[str]:
    jails = list(settings.fail2ban_jails)
    for role in sorted(roles):
        for jail in settings.fail2ban_role_jails.get(role, []):
            if jail not in jails:
                jails.append(jail)
    return jails


def _ssh_sources(networks: list[str], controller: str | None) -> tuple[list[str], list[str]]:
    """IPv4 and IPv6 sources allowed to SSH: management networks plus the controller."""
    nets = [ipaddress.ip_network(n, strict=False) for n in networks]
    if controller:
        address = ipaddress.ip_address(controller)
        if not any(address in n for n in nets if n.version == address.version):
            nets.append(ipaddress.ip_network(f"{address}/{address.max_prefixlen}"))
    v4 = [str(n) for n in nets if n.version == 4]
    v6 = [str(n) for n in nets if n.version == 6]
    return v4, v6


def role_vars(
    inventory: Inventory, server: Server, *, controller_address: str | None = None
) -> dict[str, JsonValue]:
    """Every ``vcops_*`` variable the deploys and roles need for ``server`` (pure).

    Args:
        inventory: the loaded inventory (settings, groups, management networks).
        server: the host.
        controller_address: the address vcops connects from; always allowed to SSH,
            so a deploy can never cut its own management path.

    Raises:
        InventoryError: a ``baseline_*`` override is invalid.
    """
    user = inventory.ssh_user(server)
    settings = server_settings(
        inventory.host_vars(server), user=user, where=f"inventory: server {server.name}"
    )
    return vars_from_settings(
        settings,
        list(server.roles),
        [str(n) for n in inventory.management_networks(server)],
        controller_address,
        server.name,
        sudo_user=None if user == "root" else user,
    )


def vars_from_settings(
    settings: BaselineSettings,
    roles: list[str],
    management_networks: list[str],
    controller_address: str | None,
    hostname: str,
    *,
    sudo_user: str | None = None,
) -> dict[str, JsonValue]:
    """:func:`role_vars` from already resolved parts (pure; what the tests call).

    ``sudo_user`` is the unprivileged management login that gets the sudoers drop-in
    (``/etc/sudoers.d/vcops``); None for root-managed hosts (no drop-in).
    """
    v4, v6 = _ssh_sources(management_networks, controller_address)
    voip = bool(set(roles) & VOIP_ROLES)
    forwarding = bool(set(roles) & set(settings.forwarding_roles))
    ignore = [*v4, *v6]
    sysctls = sysctl_sets(settings, roles)
    data: dict[str, JsonValue] = {
        "inventory_hostname": hostname,
        "vcops_managed_header": MANAGED_HEADER,
        "vcops_areas": list(areas_for(roles)),
        "vcops_controller_address": controller_address,
        # ssh
        "vcops_ssh_port": settings.ssh_port,
        "vcops_ssh_permit_root_login": settings.ssh_permit_root_login,
        "vcops_ssh_sudo_user": sudo_user or "",
        "vcops_ssh_max_auth_tries": settings.ssh_max_auth_tries,
        "vcops_ssh_log_level": settings.ssh_log_level,
        "vcops_ssh_kex_algorithms": list(settings.ssh_kex_algorithms),
        "vcops_ssh_ciphers": list(settings.ssh_ciphers),
        "vcops_ssh_macs": list(settings.ssh_macs),
        "vcops_ssh_login_grace_time": settings.ssh_login_grace_time,
        "vcops_ssh_rsa_host_key": settings.ssh_rsa_host_key,
        "vcops_ssh_moduli_min_bits": settings.ssh_moduli_min_bits,
        "vcops_ssh_client_alive_interval": settings.ssh_client_alive_interval,
        "vcops_ssh_client_alive_count_max": settings.ssh_client_alive_count_max,
        "vcops_ssh_max_sessions": settings.ssh_max_sessions,
        "vcops_ssh_banner_text": settings.banner_text,
        # firewall
        "vcops_firewall_ssh_port": settings.ssh_port,
        "vcops_firewall_ssh_sources_v4": list(v4),
        "vcops_firewall_ssh_sources_v6": list(v6),
        "vcops_firewall_voip": voip,
        "vcops_firewall_sip_ports": list(settings.sip_ports),
        "vcops_firewall_rtp_port_range": settings.rtp_port_range,
        "vcops_firewall_forwarding": forwarding,
        # fail2ban
        "vcops_fail2ban_jails": list(_jails(settings, roles)),
        "vcops_fail2ban_ignore_networks": list(ignore),
        # kernel
        # net: per network namespace (applied everywhere); kernel and protect: the
        # container host's inside a container (written, not applied there)
        "vcops_kernel_net_sysctls": dict(sysctls["net"].items()),
        "vcops_kernel_net_extra_sysctls": dict([*sysctls["arp"].items(), *sysctls["ipv6"].items()]),
        "vcops_kernel_kernel_sysctls": dict(sysctls["kernel"].items()),
        "vcops_kernel_protect_sysctls": dict(sysctls["protect"].items()),
        "vcops_kernel_forwarding": forwarding,
        "vcops_kernel_blacklist": list(blacklist_for(settings, roles)),
        "vcops_kernel_process_accounting": accounting_on(settings, roles),
        # audit
        "vcops_audit_watches": dict(settings.audit_watches),
        "vcops_audit_privileged_commands": list(settings.audit_privileged_commands),
        "vcops_audit_immutable": settings.audit_immutable,
        # integrity (AIDE)
        "vcops_integrity_aide_paths": list(settings.aide_paths),
        "vcops_integrity_aide_exclude": list(settings.aide_exclude),
        # logging
        "vcops_logging_syslog_servers": [
            s.model_dump(mode="json") for s in settings.syslog_servers
        ],
        "vcops_logging_journald_system_max_use": settings.journald_system_max_use,
        "vcops_logging_journald_system_keep_free": settings.journald_system_keep_free,
        "vcops_logging_journald_max_retention": settings.journald_max_retention,
        # time
        "vcops_time_ntp_servers": list(settings.ntp_servers),
        # updates
        "vcops_updates_origins": list(UPDATE_ORIGINS),
        "vcops_updates_security_mirror": settings.apt_security_mirror,
        "vcops_updates_security_mirror_suite": settings.apt_security_mirror_suite,
        "vcops_updates_security_mirror_trusted": settings.apt_security_mirror_trusted,
        "vcops_updates_lists_max_age_days": settings.apt_lists_max_age_days,
        # accounts (PAM, login.defs, root's age, TMOUT, sudo Defaults, cron/at)
        "vcops_accounts_pwquality_minlen": settings.pwquality_minlen,
        "vcops_accounts_pwquality_minclass": settings.pwquality_minclass,
        "vcops_accounts_pwquality_retry": settings.pwquality_retry,
        "vcops_accounts_faillock_deny": settings.faillock_deny,
        "vcops_accounts_faillock_fail_interval": settings.faillock_fail_interval,
        "vcops_accounts_faillock_unlock_time": settings.faillock_unlock_time,
        "vcops_accounts_pwhistory_remember": settings.pwhistory_remember,
        "vcops_accounts_encrypt_method": settings.login_encrypt_method,
        "vcops_accounts_yescrypt_cost_factor": settings.yescrypt_cost_factor,
        "vcops_accounts_sha_crypt_rounds": settings.sha_crypt_rounds,
        "vcops_accounts_pass_max_days": settings.pass_max_days,
        "vcops_accounts_pass_min_days": settings.pass_min_days,
        "vcops_accounts_pass_warn_age": settings.pass_warn_age,
        "vcops_accounts_login_umask": settings.login_umask,
        "vcops_accounts_root_password_max_days": settings.root_password_max_days,
        "vcops_accounts_shell_timeout": settings.shell_timeout,
        "vcops_accounts_sudo_logfile": settings.sudo_logfile,
        "vcops_accounts_sudo_umask": settings.sudo_umask,
        # kamailio (kamailio and sbc roles)
        "vcops_kamailio_defines": ["WITH_ANTIFLOOD", "WITH_TLS"],
        "vcops_kamailio_config_dir": settings.voip_config_dirs.get("kamailio", "/etc/kamailio"),
        "vcops_kamailio_tls_cert": "/etc/kamailio/tls/vcops-kamailio.crt",
        "vcops_kamailio_tls_key": "/etc/kamailio/tls/vcops-kamailio.key",
        # asterisk
        "vcops_asterisk_config_dir": settings.voip_config_dirs.get("asterisk", "/etc/asterisk"),
        "vcops_asterisk_unidentified_request_count": settings.asterisk_unidentified_request_count,
        "vcops_asterisk_unidentified_request_period": settings.asterisk_unidentified_request_period,
        "vcops_asterisk_media_encryption": list(settings.asterisk_media_encryption),
        "vcops_asterisk_ami_port": settings.management_ports.get("asterisk-ami", 5038),
        "vcops_asterisk_http_port": settings.management_ports.get("asterisk-http-ari", 8088),
        "vcops_asterisk_tls_cert": "/etc/asterisk/keys/vcops-asterisk.crt",
        "vcops_asterisk_tls_key": "/etc/asterisk/keys/vcops-asterisk.key",
        # freeswitch
        "vcops_freeswitch_config_dir": settings.voip_config_dirs.get(
            "freeswitch", "/etc/freeswitch"
        ),
        "vcops_freeswitch_event_socket_port": settings.management_ports.get(
            "freeswitch-event-socket", 8021
        ),
        "vcops_secret_dir": SECRET_DIR,
    }
    for name, var in SECRETS.items():
        data[var] = secret_ref(name)
    return data
