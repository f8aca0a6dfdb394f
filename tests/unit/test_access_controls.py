"""Access controls (VC-SSH-009..015, VC-F2B-002) and the two older SSH controls on
compliant, non-compliant and missing-data facts: missing data is unknown, never pass."""

from __future__ import annotations

import ipaddress
from datetime import UTC, datetime

import pytest

from vcops.baseline.context import ServerContext
from vcops.baseline.server_catalog import SERVER_CONTROLS
from vcops.baseline.settings import DEFAULT_SETTINGS, BaselineSettings
from vcops.facts.access import (
    HostKey,
    parse_fail2ban_increment,
    parse_host_keys,
    parse_moduli,
)
from vcops.facts.server import ServerFacts

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
BANNER = DEFAULT_SETTINGS.banner_text
ED = "/etc/ssh/ssh_host_ed25519_key"
RSA = "/etc/ssh/ssh_host_rsa_key"
ECDSA = "/etc/ssh/ssh_host_ecdsa_key"
KEYS = {
    ED: HostKey(path=ED, kind="ED25519", bits=256),
    RSA: HostKey(path=RSA, kind="RSA", bits=3072),
    ECDSA: HostKey(path=ECDSA, kind="ECDSA", bits=256),
}
SSHD: dict[str, list[str]] = {
    "hostkey": [ED],
    "kexalgorithms": ["sntrup761x25519-sha512@openssh.com,curve25519-sha256"],
    "clientaliveinterval": ["300"],
    "clientalivecountmax": ["2"],
    "maxsessions": ["4"],
    "tcpkeepalive": ["no"],
    "banner": ["/etc/issue.net"],
    "passwordauthentication": ["no"],
    "kbdinteractiveauthentication": ["no"],
    "pubkeyauthentication": ["yes"],
    "allowtcpforwarding": ["no"],
    "allowagentforwarding": ["no"],
    "x11forwarding": ["no"],
    "permittunnel": ["no"],
}
GOOD = ServerFacts(
    sshd=SSHD,
    ssh_supported={"kex": ["curve25519-sha256", "sntrup761x25519-sha512@openssh.com"]},
    openssh_version="1:9.2p1-2+deb12u7",
    host_keys=KEYS,
    moduli_bits={2048: 60, 3072: 76},
    banners={"/etc/issue": BANNER + "\n", "/etc/issue.net": BANNER + "\n"},
    packages={"fail2ban": "1.0.2-2"},
    fail2ban_jails=["sshd", "kamailio"],
    fail2ban_increment={"sshd": "True", "kamailio": "True"},
)
IDS = [
    "VC-SSH-009",
    "VC-SSH-010",
    "VC-SSH-011",
    "VC-SSH-012",
    "VC-SSH-013",
    "VC-SSH-014",
    "VC-SSH-015",
    "VC-F2B-002",
]
BY_ID = {c.id: c for c in SERVER_CONTROLS}


def ctx(settings: BaselineSettings = DEFAULT_SETTINGS) -> ServerContext:
    return ServerContext(
        settings=settings,
        roles=frozenset({"kamailio"}),
        management_networks=(ipaddress.ip_network("10.213.0.0/24"),),
        now=NOW,
    )


def status(control: str, facts: ServerFacts, settings: BaselineSettings = DEFAULT_SETTINGS) -> str:
    return BY_ID[control].check(facts, ctx(settings)).status


def sshd(**changes: str | None) -> ServerFacts:
    """GOOD with sshd -T keys changed (None: the key is not printed)."""
    values = {k: v for k, v in SSHD.items() if changes.get(k, "") is not None}
    values.update({k: [v] for k, v in changes.items() if v is not None})
    return GOOD.model_copy(update={"sshd": values})


@pytest.mark.parametrize("control", IDS)
def test_compliant_host_passes(control: str) -> None:
    assert status(control, GOOD) == "pass", BY_ID[control].check(GOOD, ctx())


@pytest.mark.parametrize("control", [*IDS, "VC-SSH-001", "VC-SSH-008"])
def test_no_sshd_or_no_facts_is_unknown(control: str) -> None:
    assert status(control, ServerFacts()) == "unknown"


@pytest.mark.parametrize(
    ("control", "key"),
    [
        ("VC-SSH-001", "passwordauthentication"),  # passed before: omitted keys were skipped
        ("VC-SSH-001", "pubkeyauthentication"),
        ("VC-SSH-008", "allowtcpforwarding"),  # passed before: "all off"
        ("VC-SSH-008", "permittunnel"),
        ("VC-SSH-009", "hostkey"),
        ("VC-SSH-010", "kexalgorithms"),
        ("VC-SSH-011", "clientaliveinterval"),
        ("VC-SSH-011", "clientalivecountmax"),
        ("VC-SSH-012", "maxsessions"),
        ("VC-SSH-013", "tcpkeepalive"),
        ("VC-SSH-014", "kexalgorithms"),
        ("VC-SSH-015", "banner"),
    ],
)
def test_a_key_sshd_t_omits_is_unknown_never_pass(control: str, key: str) -> None:
    result = BY_ID[control].check(sshd(**{key: None}), ctx())
    assert result.status == "unknown" and key in result.detail, result


def test_host_keys() -> None:
    assert status("VC-SSH-009", sshd(hostkey=ECDSA)) == "fail"
    three = GOOD.model_copy(update={"sshd": {**SSHD, "hostkey": [RSA, ECDSA, ED]}})
    result = BY_ID["VC-SSH-009"].check(three, ctx())
    assert result.status == "fail" and "ecdsa" in result.actual and "rsa 3072" in result.actual
    two = GOOD.model_copy(update={"sshd": {**SSHD, "hostkey": [ED, RSA]}})
    allowed = DEFAULT_SETTINGS.model_copy(update={"ssh_rsa_host_key": True})
    assert status("VC-SSH-009", two, allowed) == "pass"  # old clients need RSA: >= 3072
    small = two.model_copy(
        update={"host_keys": {**KEYS, RSA: HostKey(path=RSA, kind="RSA", bits=2048)}}
    )
    assert status("VC-SSH-009", small, allowed) == "fail"
    # a configured key whose file is missing is not offered; no ed25519 at all fails
    no_ed = GOOD.model_copy(update={"host_keys": {RSA: KEYS[RSA]}})
    assert status("VC-SSH-009", no_ed) == "fail"
    # a key outside /etc/ssh/ssh_host_*_key is not described: unknown
    assert status("VC-SSH-009", sshd(hostkey="/srv/key")) == "unknown"
    assert status("VC-SSH-009", GOOD.model_copy(update={"host_keys": None})) == "unknown"


def test_group_exchange() -> None:
    gex = "curve25519-sha256,diffie-hellman-group-exchange-sha256"
    assert status("VC-SSH-010", sshd(kexalgorithms=gex)) == "fail"  # 60 groups of 2048 bits
    pruned = sshd(kexalgorithms=gex).model_copy(update={"moduli_bits": {3072: 76, 4096: 68}})
    assert status("VC-SSH-010", pruned) == "pass"
    no_file = sshd(kexalgorithms=gex).model_copy(update={"moduli_bits": {}})
    assert status("VC-SSH-010", no_file) == "fail"
    unread = sshd(kexalgorithms=gex).model_copy(update={"moduli_bits": None})
    assert status("VC-SSH-010", unread) == "unknown"


def test_idle_timeout_sessions_keepalive() -> None:
    assert status("VC-SSH-011", sshd(clientaliveinterval="0")) == "fail"  # Debian's default
    assert status("VC-SSH-011", sshd(clientalivecountmax="3")) == "fail"
    assert status("VC-SSH-011", sshd(clientaliveinterval="x")) == "unknown"
    assert status("VC-SSH-012", sshd(maxsessions="10")) == "fail"
    assert status("VC-SSH-013", sshd(tcpkeepalive="yes")) == "fail"


def test_pq_kex_first() -> None:
    classic_first = "curve25519-sha256,sntrup761x25519-sha512@openssh.com"
    assert status("VC-SSH-014", sshd(kexalgorithms=classic_first)) == "fail"
    old = GOOD.model_copy(update={"ssh_supported": {"kex": ["curve25519-sha256"]}})
    assert status("VC-SSH-014", old) == "not_applicable"  # this OpenSSH has none
    assert status("VC-SSH-014", GOOD.model_copy(update={"ssh_supported": None})) == "unknown"


def test_banners() -> None:
    stock = GOOD.model_copy(
        update={
            "banners": {
                "/etc/issue": "Debian GNU/Linux 12 \\n \\l\n\n",
                "/etc/issue.net": "Debian GNU/Linux 12\n",
            }
        }
    )
    result = BY_ID["VC-SSH-015"].check(stock, ctx())
    assert result.status == "fail" and "discloses" in result.actual
    escape = GOOD.model_copy(
        update={"banners": {"/etc/issue": "Welcome \\r\n", "/etc/issue.net": BANNER}}
    )
    assert status("VC-SSH-015", escape) == "fail"
    assert status("VC-SSH-015", sshd(banner="none")) == "fail"
    other = DEFAULT_SETTINGS.model_copy(update={"banner_text": "Property of Example Telecom."})
    assert status("VC-SSH-015", GOOD, other) == "fail"  # the files show another text
    missing = GOOD.model_copy(update={"banners": {"/etc/issue": BANNER}})
    assert status("VC-SSH-015", missing) == "fail"
    assert status("VC-SSH-015", GOOD.model_copy(update={"banners": None})) == "unknown"


def test_banner_text_setting_rejects_getty_escapes() -> None:
    with pytest.raises(ValueError):
        BaselineSettings(banner_text="Welcome to \\n")
    with pytest.raises(ValueError):
        BaselineSettings(banner_text="red \x1b[31m")
    assert BaselineSettings(banner_text="Line one\nLine two").banner_text.count("\n") == 1


def test_fail2ban_increment() -> None:
    off = GOOD.model_copy(update={"fail2ban_increment": {"sshd": "True", "kamailio": "None"}})
    result = BY_ID["VC-F2B-002"].check(off, ctx())
    assert result.status == "fail" and "kamailio" in result.actual
    not_installed = ServerFacts(packages={"openssh-server": "1"})
    assert status("VC-F2B-002", not_installed) == "fail"
    no_jails = GOOD.model_copy(update={"fail2ban_jails": []})
    assert status("VC-F2B-002", no_jails) == "fail"
    unasked = GOOD.model_copy(update={"fail2ban_increment": {"sshd": "True"}})
    assert status("VC-F2B-002", unasked) == "unknown"


def test_parsers_bound_and_skip_garbage() -> None:
    keys = parse_host_keys(
        f"{ED} 256 SHA256:abc root@h (ED25519)\n"
        f"{ECDSA} {ECDSA} is not a key file.\n"
        "relative 256 SHA256:x c (RSA)\n" + "x" * 10_000 + "\n"
    )
    assert keys[ED].kind == "ED25519" and keys[ECDSA].kind is None and len(keys) == 2
    assert parse_moduli("missing\n") == {}
    assert parse_moduli("  60 2047\n  2 99999999999999\nfoo bar\n") == {2048: 60}
    assert parse_fail2ban_increment("sshd True\n$(x) True\n") == {"sshd": "True"}
