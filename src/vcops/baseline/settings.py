"""Baseline settings: the desired values every control compares against.

The defaults below are the operator-wide baseline. The inventory overrides any of them
per group or per host with a ``baseline_`` variable of the same name, for example::

    groups:
      - name: sip-edge
        vars:
          baseline_ssh_max_auth_tries: 2
          baseline_rtp_port_range: "16384-32767"

The same resolved settings feed the scanner, the pyinfra deploys and the Ansible
roles (as ``vcops_<area>_<name>`` role variables), so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError

from vcops import roles as registry
from vcops.errors import InventoryError, Problem

VAR_PREFIX = "baseline_"

MODERN_KEX = [
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
    "curve25519-sha256",
    "curve25519-sha256@libssh.org",
    "diffie-hellman-group16-sha512",
    "diffie-hellman-group18-sha512",
]
"""Post-quantum hybrids first (sshd takes the first both sides know); no DH group
exchange (VC-SSH-010: its moduli would need pruning to >= 3072 bits)."""
PQ_KEX = (
    "mlkem768x25519-sha256",
    "sntrup761x25519-sha512",
    "sntrup761x25519-sha512@openssh.com",
)
"""The post-quantum hybrid key exchanges OpenSSH knows (VC-SSH-014)."""
BANNER_TEXT = "Authorised access only. Activity is logged and monitored."
MODERN_CIPHERS = [
    "chacha20-poly1305@openssh.com",
    "aes256-gcm@openssh.com",
    "aes128-gcm@openssh.com",
    "aes256-ctr",
    "aes192-ctr",
    "aes128-ctr",
]
MODERN_MACS = [
    "hmac-sha2-512-etm@openssh.com",
    "hmac-sha2-256-etm@openssh.com",
    "umac-128-etm@openssh.com",
]

NET_SYSCTLS: dict[str, str] = {
    "net.ipv4.conf.all.accept_redirects": "0",
    "net.ipv4.conf.default.accept_redirects": "0",
    "net.ipv4.conf.all.secure_redirects": "0",
    "net.ipv4.conf.all.send_redirects": "0",
    "net.ipv4.conf.default.send_redirects": "0",
    "net.ipv4.conf.all.accept_source_route": "0",
    "net.ipv4.conf.default.accept_source_route": "0",
    "net.ipv4.conf.all.rp_filter": "1",
    "net.ipv4.conf.default.rp_filter": "1",
    "net.ipv4.conf.all.log_martians": "1",
    "net.ipv4.icmp_echo_ignore_broadcasts": "1",
    "net.ipv4.icmp_ignore_bogus_error_responses": "1",
    "net.ipv4.tcp_syncookies": "1",
    "net.ipv4.tcp_rfc1337": "1",
    "net.ipv6.conf.all.accept_redirects": "0",
    "net.ipv6.conf.default.accept_redirects": "0",
    "net.ipv6.conf.all.accept_source_route": "0",
    "net.ipv6.conf.all.accept_ra": "0",
    "net.ipv6.conf.default.accept_ra": "0",
}
KERNEL_SYSCTLS: dict[str, str] = {
    "kernel.randomize_va_space": "2",
    "kernel.kptr_restrict": "2",
    "kernel.dmesg_restrict": "1",
    "kernel.yama.ptrace_scope": "1",
    "kernel.sysrq": "0",
    "fs.protected_hardlinks": "1",
    "fs.protected_symlinks": "1",
    "fs.suid_dumpable": "0",
}

# VC-KRN-004: IPv4 ARP and local-routing sysctls (`all` and `default`), plus the
# `default` half of two VC-KRN-001 keys. SBC and rtpengine keep gratuitous ARP (HA
# virtual IPs) and loose rp_filter: see vcops.roles.MEDIA_RELAY_SYSCTLS.
NET_ARP_SYSCTLS: dict[str, str] = {
    f"net.ipv4.conf.{scope}.{key}": value
    for scope in ("all", "default")
    for key, value in (
        ("accept_local", "0"),
        ("arp_filter", "1"),
        ("arp_ignore", "1"),
        ("drop_gratuitous_arp", "1"),
        ("route_localnet", "0"),
        ("shared_media", "0"),
    )
} | {
    "net.ipv4.conf.default.secure_redirects": "0",
    "net.ipv4.conf.default.log_martians": "1",
}
# VC-KRN-005: IPv6 router advertisements and autoconfiguration off (`all`, `default`).
NET_IPV6_SYSCTLS: dict[str, str] = {
    f"net.ipv6.conf.{scope}.{key}": value
    for scope in ("all", "default")
    for key, value in (
        ("accept_ra_defrtr", "0"),
        ("accept_ra_pinfo", "0"),
        ("accept_ra_rtr_pref", "0"),
        ("autoconf", "0"),
        ("max_addresses", "1"),
        ("router_solicitations", "0"),
    )
} | {"net.ipv6.conf.default.accept_source_route": "0"}
# VC-KRN-006: kernel self-protection. kernel.panic=10 goes with panic_on_oops=1, so an
# oops reboots the host after 10 s instead of leaving it hung. net.core.bpf_jit_harden
# exists only in the host's first network namespace (belongs to the container host).
KERNEL_PROTECT_SYSCTLS: dict[str, str] = {
    "kernel.perf_event_paranoid": "3",
    "kernel.unprivileged_bpf_disabled": "1",
    "kernel.panic_on_oops": "1",
    "kernel.panic": "10",
    "kernel.kexec_load_disabled": "1",
    "fs.protected_fifos": "2",
    "fs.protected_regular": "2",
    "vm.mmap_min_addr": "65536",
    "net.core.bpf_jit_harden": "2",
}
# VC-MOD-001: modules never loaded (`install X /bin/false` + `blacklist X`).
BLACKLISTED_MODULES: list[str] = [
    "usb-storage",
    "firewire-core",
    "firewire-ohci",
    "firewire-sbp2",
    "cramfs",
    "freevxfs",
    "jffs2",
    "hfs",
    "hfsplus",
    "udf",
    "dccp",
    "rds",
    "tipc",
    "sctp",
]


class SecretRef(BaseModel):
    """A secret by reference: ``{"env": "VCOPS_NTP_KEY"}`` or ``{"file": "/etc/vcops/ntp.key"}``
    (``id``: the key number where the device numbers its keys, as NTP does)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    env: str | None = Field(None, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    file: str | None = None
    id: int = Field(1, ge=1, le=65535)


class AaaServer(BaseModel):
    """A TACACS+ or RADIUS server for device logins; its key by reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(pattern=r"^[0-9A-Fa-f:.]+$")
    protocol: Literal["tacacs", "radius"] = "tacacs"
    key: SecretRef


class Snmpv3User(BaseModel):
    """An SNMPv3 user (authPriv: SHA and AES-128); both keys by reference."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    group: str = Field("VCOPS-NMS", pattern=r"^[A-Za-z0-9_.-]{1,32}$")
    auth: SecretRef
    priv: SecretRef


class SyslogServer(BaseModel):
    """A remote syslog target: ``{"address": "10.0.0.5", "protocol": "tls", "port": 6514,
    "permitted_peer": "logs.example.net"}`` (TLS: rsyslog's gtls driver, the peer's
    certificate checked against ``ca_file`` and its name against ``permitted_peer``)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    address: str = Field(pattern=r"^[A-Za-z0-9:.-]{1,253}$")
    port: int = Field(514, ge=1, le=65535)
    protocol: Literal["udp", "tcp", "tls"] = "udp"
    permitted_peer: str | None = Field(None, pattern=r"^[A-Za-z0-9*.-]{1,253}$")
    ca_file: str = Field("/etc/ssl/certs/ca-certificates.crt", pattern=r"^/[A-Za-z0-9_./-]{1,250}$")


AidePath = Annotated[str, StringConstraints(pattern=r"^/[A-Za-z0-9_./*+-]{0,200}$")]
"""An absolute path or AIDE regex (no quotes or spaces: it goes into a shell script too)."""
AIDE_PATHS: list[str] = ["/etc", "/usr", "/boot", "/opt", "/root/.ssh"]
"""What AIDE watches: configuration, programs, libraries, the boot files, root's keys."""
AIDE_EXCLUDE: list[str] = [
    # vcops's own state (secrets generated at apply time: the directory's contents, not
    # /etc/vcops-anything beside it) and what the clock rewrites
    "/etc/vcops/.*",
    "/etc/adjtime",
    # byte-code Python writes beside a module the first time root imports it
    "/usr/.*/__pycache__",
    # never watched (outside AIDE_PATHS), named so a wider aide_paths keeps them out
    "/proc",
    "/sys",
    "/dev",
    "/run",
    "/tmp",  # noqa: S108 - excluded from AIDE, not used
    "/var/tmp",  # noqa: S108 - excluded from AIDE, not used
    "/var/log",
    "/var/lib/apt",
    "/var/lib/dpkg",
    "/var/lib/aide",
    "/var/cache",
    # the VoIP daemons' spools and state
    "/var/spool/asterisk",
    "/var/lib/asterisk",
    "/var/lib/kamailio",
    "/var/lib/freeswitch",
    "/var/lib/rtpengine",
]
"""AIDE regexes (``!`` lines) that are never watched."""
AUDIT_PRIVILEGED_COMMANDS: list[str] = [
    "/usr/bin/sudo",
    "/usr/bin/su",
    "/usr/bin/passwd",
    "/usr/bin/chsh",
]


class BaselineSettings(BaseModel):
    """Every desired value, with the operator-wide default. Field names are the var names
    without the ``baseline_`` prefix."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # SSH (judged on the effective `sshd -T` output)
    ssh_port: int = Field(22, ge=1, le=65535)
    ssh_permit_root_login: Literal["no", "prohibit-password"] = "prohibit-password"
    ssh_max_auth_tries: int = Field(3, ge=1, le=10)
    ssh_log_level: Literal["VERBOSE", "INFO"] = "VERBOSE"
    ssh_kex_algorithms: list[str] = MODERN_KEX
    ssh_ciphers: list[str] = MODERN_CIPHERS
    ssh_macs: list[str] = MODERN_MACS
    ssh_login_grace_time: int = Field(30, ge=5, le=600)
    # SSH host keys, sessions and banner (VC-SSH-009..015)
    #: Offer an RSA host key too (only for old clients that lack ed25519), of this size.
    ssh_rsa_host_key: bool = False
    ssh_rsa_min_bits: int = Field(3072, ge=3072, le=16384)
    #: /etc/ssh/moduli's smallest group when DH group exchange is offered at all.
    ssh_moduli_min_bits: int = Field(3072, ge=3072, le=8192)
    ssh_client_alive_interval: int = Field(300, ge=1, le=3600)
    ssh_client_alive_count_max: int = Field(2, ge=1, le=10)
    ssh_max_sessions: int = Field(4, ge=1, le=10)
    #: The one text of /etc/issue, /etc/issue.net and the SSH banner: no backslash (getty
    #: escapes such as \r or \v print the kernel and OS version) and no control bytes.
    banner_text: str = Field(
        BANNER_TEXT, min_length=1, max_length=1000, pattern=r"^[^\\\x00-\x09\x0b-\x1f\x7f]+$"
    )

    # Firewall (nftables)
    sip_ports: list[int] = [5060, 5061]
    rtp_port_range: str = Field("10000-20000", pattern=r"^\d{1,5}-\d{1,5}$")
    management_ports: dict[str, int] = registry.control_ports()

    # fail2ban: jails every host needs, and per role
    fail2ban_jails: list[str] = ["sshd"]
    fail2ban_role_jails: dict[str, list[str]] = registry.role_jails()

    # Kernel
    net_sysctls: dict[str, str] = NET_SYSCTLS
    kernel_sysctls: dict[str, str] = KERNEL_SYSCTLS
    forwarding_roles: list[str] = list(registry.forwarding_roles())
    net_arp_sysctls: dict[str, str] = NET_ARP_SYSCTLS
    net_ipv6_sysctls: dict[str, str] = NET_IPV6_SYSCTLS
    kernel_protect_sysctls: dict[str, str] = KERNEL_PROTECT_SYSCTLS
    # role -> key -> the value it keeps instead (documented VoIP exceptions)
    sysctl_role_exceptions: dict[str, dict[str, str]] = registry.role_sysctl_exceptions()
    # Kernel modules
    blacklisted_modules: list[str] = BLACKLISTED_MODULES
    # SIP signalling over SCTP: these roles, or a host/group setting
    # `baseline_sctp_signalling: true`, keep the sctp module loadable.
    sctp_roles: list[str] = []
    sctp_signalling: bool = False
    # Process accounting (acct) and sysstat: None = on except on media roles.
    process_accounting: bool | None = None
    process_accounting_off_roles: list[str] = list(registry.media_roles())

    # Audit
    audit_watches: dict[str, str] = {
        "/etc/passwd": "identity",
        "/etc/group": "identity",
        "/etc/shadow": "identity",
        "/etc/gshadow": "identity",
        "/etc/security/opasswd": "identity",
        "/etc/ssh/sshd_config": "sshd_config",
        "/etc/ssh/sshd_config.d": "sshd_config",
    }
    # Audit: privileged commands, time, modules, mounts and permission changes
    # (VC-AUD-003); `-e 2` makes the loaded rules immutable until the next reboot.
    audit_privileged_commands: list[AidePath] = AUDIT_PRIVILEGED_COMMANDS
    audit_immutable: bool = False

    # Integrity (AIDE; paths and excludes are AIDE regexes)
    aide_paths: list[AidePath] = AIDE_PATHS
    aide_exclude: list[AidePath] = AIDE_EXCLUDE
    aide_check_max_age_days: int = Field(2, ge=1, le=365)

    # Logging: rsyslog forwarding (empty: local only) and journald's persistent store
    syslog_servers: list[SyslogServer] = []
    journald_system_max_use: str = Field("512M", pattern=r"^[1-9][0-9]{0,5}[KMG]$")
    journald_system_keep_free: str = Field("1G", pattern=r"^[1-9][0-9]{0,5}[KMG]$")
    journald_max_retention: str = Field("3month", pattern=r"^[1-9][0-9]{0,4}(day|week|month|year)$")

    # Time
    ntp_servers: list[str] = ["0.debian.pool.ntp.org", "1.debian.pool.ntp.org"]

    # Updates (3.2.2)
    security_update_max_age_days: int = Field(7, ge=0, le=365)
    reboot_required_max_days: int = Field(7, ge=0, le=365)
    # Patch sources (VC-PATCH-005..): a mirror that carries the security suite stands in
    # for `<codename>-security` + `-updates`; its suite ("" = `<codename>-security`,
    # "./" = a flat repository) and whether it is trusted without a signature (a lab).
    apt_security_mirror: str = Field("", max_length=300, pattern=r"^(https?://[^\s\"'#]+)?$")
    apt_security_mirror_suite: str = Field("", max_length=64, pattern=r"^[A-Za-z0-9./_-]*$")
    apt_security_mirror_trusted: bool = False
    apt_lists_max_age_days: int = Field(2, ge=1, le=365)
    supported_releases: dict[str, str] = {
        "debian 12": "2028-06-30",
        "debian 13": "2030-06-30",
        "ubuntu 22.04": "2027-06-30",
        "ubuntu 24.04": "2029-06-30",
    }

    # Accounts, PAM, sudo, cron (area `accounts`)
    pwquality_minlen: int = Field(14, ge=8, le=128)
    pwquality_minclass: int = Field(4, ge=1, le=4)
    pwquality_retry: int = Field(3, ge=1, le=10)
    faillock_deny: int = Field(5, ge=1, le=100)
    faillock_fail_interval: int = Field(900, ge=60, le=86400)
    faillock_unlock_time: int = Field(900, ge=0, le=604800)
    pwhistory_remember: int = Field(24, ge=1, le=400)
    login_encrypt_method: Literal["YESCRYPT", "SHA512"] = "YESCRYPT"
    yescrypt_cost_factor: int = Field(7, ge=6, le=11)
    sha_crypt_rounds: int = Field(65536, ge=5001, le=999999999)
    pass_max_days: int = Field(365, ge=1, le=99999)
    pass_min_days: int = Field(1, ge=0, le=99999)
    pass_warn_age: int = Field(14, ge=0, le=99999)
    login_umask: str = Field("027", pattern=r"^0?[0-7]{3}$")
    root_password_max_days: int = Field(365, ge=1, le=99999)
    shell_timeout: int = Field(900, ge=60, le=86400)
    sudo_logfile: str = Field("/var/log/sudo.log", pattern=r"^/[A-Za-z0-9_./-]{1,200}$")
    sudo_umask: str = Field("0027", pattern=r"^0?[0-7]{3}$")

    # File modes (octal strings: the most permissive allowed)
    file_modes: dict[str, str] = {
        "/etc/shadow": "0640",
        "/etc/gshadow": "0640",
        "/etc/ssh/ssh_host_*_key": "0600",
    }
    voip_config_dirs: dict[str, str] = registry.role_config_dirs()

    # VoIP services
    asterisk_unidentified_request_count: int = Field(5, ge=1)
    asterisk_unidentified_request_period: int = Field(5, ge=1)
    asterisk_media_encryption: list[str] = ["sdes", "dtls"]
    asterisk_sample_secrets: list[str] = [
        "mysecret",
        "amp111",
        "secret",
        "password",
        "1234",
        "admin",
    ]
    freeswitch_default_passwords: list[str] = ["1234", "ClueCon"]

    # Network gear
    device_min_versions: dict[str, str] = {
        "ios": "15.2",
        "eos": "4.28",
        "junos": "21.4",
        "nxos_ssh": "9.3",
    }
    device_ntp_servers: list[str] = []
    device_syslog_servers: list[str] = []
    device_banner_required: bool = True
    # What `vcops apply` pushes to devices (templates/netdev/<platform>/); secrets only
    # as references (`*_env` names an environment variable, `*_file` a file).
    device_banner_text: str = Field(
        "Authorised access only. Activity is logged.", min_length=1, max_length=500
    )
    device_ntp_key: SecretRef | None = None
    device_aaa_servers: list[AaaServer] = []
    device_snmpv3_users: list[Snmpv3User] = []
    device_enable_secret: SecretRef | None = None


def settings_for(host_vars: Mapping[str, object], *, where: str = "inventory") -> BaselineSettings:
    """The baseline for one target: defaults, overridden by its ``baseline_*`` vars.

    Raises:
        InventoryError: an override names no setting or has a value of the wrong type.
    """
    overrides = {
        key.removeprefix(VAR_PREFIX): value
        for key, value in host_vars.items()
        if key.startswith(VAR_PREFIX)
    }
    if not overrides:
        return DEFAULT_SETTINGS
    try:
        return BaselineSettings.model_validate({**DEFAULT_SETTINGS.model_dump(), **overrides})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            name = ".".join(str(p) for p in error["loc"])
            if error["type"] == "extra_forbidden":
                problems.append(
                    Problem(
                        where,
                        f"vars.{VAR_PREFIX}{name}",
                        "no such baseline setting",
                        "see `vcops baseline settings` for the names",
                    )
                )
            else:
                problems.append(
                    Problem(where, f"vars.{VAR_PREFIX}{name}", error["msg"], "fix the value")
                )
        raise InventoryError(problems) from exc


DEFAULT_SETTINGS = BaselineSettings()


def server_settings(
    host_vars: Mapping[str, object], *, user: str, where: str = "inventory"
) -> BaselineSettings:
    """:func:`settings_for` a server that vcops logs in to as ``user``.

    A server managed through an unprivileged login (``user`` is not root) needs no root
    login at all: its ``ssh_permit_root_login`` becomes ``no`` unless its own
    ``baseline_ssh_permit_root_login`` says otherwise (``prohibit-password`` stays the
    default for root-managed hosts, which would otherwise lock vcops out).

    Raises:
        InventoryError: an override names no setting or has a value of the wrong type.
    """
    settings = settings_for(host_vars, where=where)
    if user != "root" and f"{VAR_PREFIX}ssh_permit_root_login" not in host_vars:
        settings = settings.model_copy(update={"ssh_permit_root_login": "no"})
    return settings
