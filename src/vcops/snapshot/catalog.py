"""The masking catalog: which values are secrets, per platform and file type (pure data).

Every rule is a regular expression with a named group ``secret``: the span that is
replaced by a keyed hash marker (see :mod:`vcops.snapshot.mask`). A rule may also name
a group ``key`` (the setting's name) and an ``exclude_key`` pattern for settings whose
name looks secret but whose value is not (``password_format = plain``).

File kinds and what they cover::

    ios, eos, nxos    Cisco-style configs: enable/username secrets, SNMP communities and
                      v3 auth/priv keys (any algorithm), TACACS/RADIUS keys, NTP keys,
                      BGP/OSPF/IS-IS keys, key chains, HSRP/VRRP/GLBP authentication (one-
                      line and NX-OS block forms), IKE pre-shared keys and keyrings, any
                      indented ``key VALUE`` line, any other secret/password value
    junos             $9$ strings anywhere, encrypted-password, secret, authentication-key,
                      authentication/privacy-password, pre-shared-key, SNMP communities
    asterisk          /etc/asterisk: any key containing secret/password (wizard keys such as
                      inbound_auth/password too), register => lines, user:secret@ in
                      IAX2/SIP dial strings
    asterisk-voicemail  /etc/asterisk/voicemail.conf: the above, plus every mailbox PIN
    freeswitch        /etc/freeswitch: password/secret params and variables (either quote,
                      either attribute order), vars.xml default_password, DSN passwords
    kamailio          /etc/kamailio: the whole value of any modparam, #!define, #!substdef
                      or #!subst whose name holds a credential word (secret, password, pwd,
                      key, token, cred ...), pass= inside parameter strings, kamctlrc *PW
    ssh, state        only the universal rules (sshd_config holds no secret values)
    apt               netrc-style auth.conf passwords, plus the generic rules
    chrony-keys       NTP symmetric keys (chrony.keys, ntp.keys)
    generic           the whole value of key = value / key: value settings named like a
                      credential (password, secret, token, api key, private or preshared
                      key, *_pass: WireGuard keys too), /etc/shadow and gshadow hashes,
                      Redis PW@host addresses

Universal rules apply to every kind: PEM and OpenSSH private key blocks (the whole
body), PuTTY private lines, and passwords in URLs (``mysql://user:pass@host``).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

FileKind = Literal[
    "ios",
    "eos",
    "nxos",
    "junos",
    "asterisk",
    "asterisk-voicemail",
    "freeswitch",
    "kamailio",
    "ssh",
    "apt",
    "chrony-keys",
    "generic",
    "state",
]
FILE_KINDS: tuple[str, ...] = get_args(FileKind)

_M = re.MULTILINE
_MI = re.MULTILINE | re.IGNORECASE
#: A value: double-quoted (quotes kept, the inside masked) or one bare word.
_VALUE = r'(?P<secret>"[^"\n]*"|\S+)'
#: Cisco encryption type or hash name before a secret (``secret 9 $9$...``, ``sha512 $6$``).
_TYPE = r"(?: (?:[0-9]|sha512|sha256|md5|encrypted|clear))?"


@dataclass(frozen=True)
class Rule:
    """One kind of secret: its name, what it is, and where the value sits."""

    name: str
    what: str
    pattern: re.Pattern[str]
    exclude_key: re.Pattern[str] | None = None


def _rule(name: str, what: str, pattern: str, flags: int = _M, exclude_key: str = "") -> Rule:
    return Rule(
        name,
        what,
        re.compile(pattern, flags),
        re.compile(exclude_key, re.IGNORECASE) if exclude_key else None,
    )


UNIVERSAL: tuple[Rule, ...] = (
    _rule(
        "private-key-block",
        "PEM or OpenSSH private key (the whole body)",
        r"-----BEGIN (?P<label>[A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?)-----\r?\n"
        r"(?P<secret>.*?)\r?\n-----END (?P=label)-----",
        re.DOTALL,
    ),
    _rule(
        "private-key-unterminated",
        "a private key block cut short (masked to the end of the file)",
        r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----\r?\n"
        r"(?P<secret>(?:(?!-----END )[\s\S])+?)\n?\Z",
    ),
    _rule(
        "putty-private-key",
        "PuTTY private key lines",
        r"^Private-Lines: \d+\r?\n(?P<secret>(?:[A-Za-z0-9+/=]+\r?\n)*[A-Za-z0-9+/=]+)$",
    ),
    _rule(
        "url-password",
        "password in a URL (database URLs, proxies, apt sources)",
        r"\b[A-Za-z][A-Za-z0-9+.-]*://[^\s/:@\"'<>]*:(?P<secret>[^\s/\"'<>]+)@",
    ),
)

_CISCO: tuple[Rule, ...] = (
    _rule(
        "enable-secret",
        "enable secret / enable password",
        rf"^\s*enable (?:secret|password)(?: level \d+)?{_TYPE} (?P<secret>\S+)",
    ),
    _rule(
        "username-secret",
        "username ... secret|password",
        rf"^\s*username \S+ (?:.*? )?(?:secret|password){_TYPE} {_VALUE}",
    ),
    _rule(
        "key-config-key",
        "master key for password encryption",
        r"^\s*key config-key password-encrypt(?:ion)? (?P<secret>\S+)",
    ),
    _rule(
        "snmp-community",
        "SNMP community",
        rf"^\s*snmp-server community {_VALUE}",
    ),
    _rule(
        "snmp-host-community",
        "SNMP community on a trap host",
        r"^\s*snmp-server host \S+"
        r"(?: (?:informs|traps|vrf \S+|version (?:1|2c|3(?: (?:auth|noauth|priv))?)))*"
        r" (?P<secret>(?!(?:informs|traps|version|vrf)\b)\S+)",
    ),
    _rule(
        "snmp-user-auth",
        "SNMPv3 user authentication key",
        r"^\s*snmp-server user .*?\bauth (?:md5|sha\S*)(?: [0-9])? (?P<secret>\S+)",
    ),
    _rule(
        "snmp-user-priv",
        "SNMPv3 user privacy key",
        r"^\s*snmp-server user .*?\bpriv (?:(?:3des|des|aes\S*)(?: (?:128|192|256))? )?"
        r"(?:[0-9] )?(?P<secret>\S+)",
    ),
    _rule(
        "tacacs-radius-key",
        "TACACS+ / RADIUS shared key",
        rf"^\s*(?:tacacs-server|radius-server)\b.*?\bkey(?: [0-9])? {_VALUE}",
    ),
    _rule(
        "aaa-server-block-key",
        "TACACS+ / RADIUS server block key",
        rf"^(?:tacacs|radius) server \S+[^\n]*\n(?:[ \t]+[^\n]*\n)*?[ \t]+key(?: [0-9])? {_VALUE}",
    ),
    _rule(
        "server-key",
        "RADIUS dynamic-author / AAA server-private key",
        rf"\bserver-(?:key|private \S+ key)(?: [0-9])? {_VALUE}",
    ),
    _rule("key-string", "key chain / HSRP key-string", r"\bkey-string(?: [0-9])? (?P<secret>\S+)"),
    _rule(
        "fhrp-auth",
        "HSRP / VRRP / GLBP authentication string (IOS and EOS one-line forms)",
        r"^[ \t]*(?:standby|vrrp|glbp)(?: \d+)?(?: peer)? authentication "
        r"(?!(?:md5|ietf-md5) key-chain\b)(?:(?:md5|ietf-md5) key-string(?: [0-9])? |text )?"
        r"(?P<secret>\S+)",
    ),
    _rule(
        "fhrp-block-auth",
        "authentication text / md5 key-string inside an NX-OS hsrp, vrrp or glbp block",
        r"^[ \t]+authentication (?:text|(?:md5|ietf-md5) key-string(?: [0-9])?) (?P<secret>\S+)",
    ),
    _rule(
        "authentication-key",
        "authentication key (IS-IS on EOS and others)",
        r"\bauthentication key(?: [0-9])? (?P<secret>\S+)",
    ),
    _rule(
        "indented-key",
        "a 'key' line inside a block: AAA server, EzVPN group ... (key-chain ids excluded)",
        r"^[ \t]+key(?: [0-9])? (?P<secret>\"[^\"\n]*\"|(?![0-9]+[ \t]*$)\S+)",
    ),
    _rule(
        "ntp-key",
        "NTP authentication key",
        r"^\s*ntp authentication-key \d+ (?:md5|sha1|sha256|cmac-aes-128)(?: [0-9])? (?P<secret>\S+)",
    ),
    _rule(
        "bgp-password",
        "BGP neighbor password",
        rf"^\s*neighbor \S+ password{_TYPE} {_VALUE}",
    ),
    _rule(
        "ospf-key",
        "OSPF authentication / message-digest key",
        r"^\s*ip ospf (?:authentication-key|message-digest-key \d+ (?:md5|sha\S*))(?: [0-9])? "
        r"(?P<secret>\S+)",
    ),
    _rule(
        "isis-password",
        "IS-IS area/domain/interface password",
        r"\b(?:area-password|domain-password|isis password) (?P<secret>\S+)",
    ),
    _rule(
        "ike-psk",
        "IKE pre-shared key",
        r"(?:^\s*crypto isakmp key(?: [0-9])? |\bpre-shared-key(?: (?:local|remote))?"
        r"(?: (?:address|hostname) \S+(?: \S+)? key)?(?: [0-9])? )(?P<secret>\S+)",
    ),
    _rule("wpa-psk", "Wi-Fi pre-shared key", r"\bwpa-psk (?:ascii|hex)(?: [0-9])? (?P<secret>\S+)"),
    _rule(
        "any-secret-password",
        "any other 'secret' or 'password' value (line passwords, PPP, PKI ...)",
        rf"\b(?:secret|password)(?! encryption\b){_TYPE} {_VALUE}",
    ),
)

_JUNOS: tuple[Rule, ...] = (
    _rule("junos-9", "Junos $9$ reversible secret", r"(?P<secret>\$9\$[^\s\";]+)"),
    _rule(
        "junos-encrypted-password",
        "Junos encrypted-password hash",
        r"\bencrypted-password (?P<secret>\"[^\"\n]*\"|[^\s;]+)",
    ),
    _rule(
        "junos-secret",
        "Junos secret, authentication-key, pre-shared-key, simple-password",
        r"\b(?:secret|authentication-key(?! \d+ type\b)|hello-authentication-key|simple-password|"
        r"authentication-password|privacy-password|pre-shared-key (?:ascii-text|hexadecimal)|"
        r"md5 \d+ key|authentication-key \d+ type \S+ value)"
        r" (?P<secret>\"[^\"\n]*\"|[^\s;{]+)",
    ),
    _rule(
        "junos-snmp-community",
        "Junos SNMP community",
        r"(?:^set snmp community |^\s*community (?=\S+\s*\{))(?P<secret>\"[^\"\n]*\"|[^\s;{]+)",
    ),
)

_ASTERISK: tuple[Rule, ...] = (
    _rule(
        "asterisk-secret",
        "Asterisk setting whose name contains secret or password (AMI, ARI, PJSIP, SIP ...)",
        r"^[ \t]*;?[ \t]*(?P<key>[A-Za-z0-9_./-]*(?:secret|password|passwd|passphrase|md5_cred)"
        r"[A-Za-z0-9_./-]*|dbpass|pass)[ \t]*=>?[ \t]*(?P<secret>(?:\\;|[^;\r\n])*?)[ \t]*(?=;|$)",
        _MI,
        exclude_key=r"_format$",
    ),
    _rule(
        "asterisk-dial-secret",
        "user:secret@host in an IAX2/SIP dial string",
        r"\b(?:IAX2|SIP|PJSIP)/[^:/@\s(),]+:(?P<secret>[^@\s(),]+)@",
    ),
    _rule(
        "asterisk-register",
        "Asterisk register => user:secret@host",
        r"^[ \t]*register[ \t]*=>[ \t]*[^:\s]+:(?P<secret>[^:@\s]+)",
        _MI,
    ),
)

_VOICEMAIL: tuple[Rule, ...] = (
    *_ASTERISK,
    _rule(
        "voicemail-pin",
        "voicemail.conf mailbox => PIN,name,email,...: the PIN (a leading - kept)",
        r"^[ \t]*(?P<key>[A-Za-z0-9_.-]+)[ \t]*=>[ \t]*-?(?P<secret>[^,;\r\n]+)",
    ),
)

_FS_NAME = (
    r"(?P<key>[^\"'<>]*(?:password|passwd|secret|passphrase|a1-hash)[^\"'<>]*|(?:[^\"'<>]*-)?pass)"
)
#: An XML attribute value in either quote: the quote is group ``q<n>``, the inside ``secret``.
_FS_VALUE = r"(?P<q{n}>[\"'])(?P<secret>(?:(?!(?P=q{n})).)*)(?P=q{n})"
_FREESWITCH: tuple[Rule, ...] = (
    _rule(
        "freeswitch-param",
        "FreeSWITCH password/secret <param> or <variable> (either quote)",
        r"<(?:param|variable)\s+name\s*=\s*(?P<q1>[\"'])"
        + _FS_NAME
        + r"(?P=q1)\s+value\s*=\s*"
        + _FS_VALUE.format(n=2),
        re.IGNORECASE,
    ),
    _rule(
        "freeswitch-param-value-first",
        "FreeSWITCH password/secret <param> written value first",
        r"<(?:param|variable)\s+value\s*=\s*"
        + _FS_VALUE.format(n=1)
        + r"\s+name\s*=\s*(?P<q2>[\"'])"
        + _FS_NAME
        + r"(?P=q2)",
        re.IGNORECASE,
    ),
    _rule(
        "freeswitch-preprocess-set",
        "FreeSWITCH vars.xml secret (default_password ...)",
        r"<X-PRE-PROCESS\s+cmd\s*=\s*[\"'](?:set|exec-set|env-set)[\"']\s+data\s*=\s*(?P<q>[\"'])"
        r"(?P<key>[^\"'=]*(?:password|passwd|secret|pass)[^\"'=]*)=(?P<secret>(?:(?!(?P=q)).)*)"
        r"(?P=q)",
        re.IGNORECASE,
    ),
    _rule(
        "freeswitch-dsn-password",
        "password= in a database DSN",
        r"(?<=[\s\"';])password=(?P<secret>'[^'\n]*'|[^\s'\";]+)",
        re.IGNORECASE,
    ),
    _rule(
        "freeswitch-odbc-dsn",
        "ODBC DSN dsn:user:password",
        r"<param\s+name=[\"'][^\"']*dsn[\"']\s+value=[\"'](?![A-Za-z][A-Za-z0-9+.-]*://)"
        r"[^:\"']+:[^:\"']*:(?P<secret>[^\"']+)[\"']",
        re.IGNORECASE,
    ),
)

#: Setting names that hold a credential in Kamailio (#!define, #!substdef, modparam).
_KAM_NAME = r"(?:SECRET|PASSWORD|PASSWD|PWD|_PW|DBPW|KEY|TOKEN|CRED|PASS)"
_KAMAILIO: tuple[Rule, ...] = (
    _rule(
        "kamailio-modparam",
        "Kamailio modparam whose name holds a credential word (the whole value)",
        r"modparam\(\s*[\"'][^\"']*[\"']\s*,\s*[\"'](?P<key>[^\"']*(?:secret|password|passwd|pwd|_pw|"
        r"key|token|credential)[^\"']*)[\"']\s*,\s*(?P<q>[\"'])(?P<secret>(?:(?!(?P=q)).)*)(?P=q)",
        re.IGNORECASE,
        exclude_key=r"(?:_column|_col|_avp|_mode|_type|_file|_path|_name|_size)$",
    ),
    _rule(
        "kamailio-inline-password",
        "pass=/password= inside a parameter string (ndb_redis, db_redis, http_client ...)",
        r"(?<=[;\"'\s])(?:pass|password|passwd)=(?P<secret>[^;\"'\s]+)",
        re.IGNORECASE,
    ),
    _rule(
        "kamailio-define",
        "Kamailio #!define of a name holding a credential word",
        r"^#!(?:define|trydef|redefine)[ \t]+(?P<key>\w*" + _KAM_NAME + r"\w*)"
        r"[ \t]+(?P<secret>\"[^\"\n]*\"|'[^'\n]*'|\S+)",
        _MI,
    ),
    _rule(
        "kamailio-substdef",
        "Kamailio #!substdef / #!subst of a name holding a credential word",
        r"^#!(?:substdefs?|substs?)[ \t]+\"(?P<d>[^\w\s\"])(?P<key>[^\"\n]*?"
        + _KAM_NAME
        + r"[^\"\n]*?)(?P=d)(?P<secret>[^\"\n]*?)(?P=d)",
        _MI,
    ),
    _rule(
        "kamctlrc-password",
        "kamctlrc database password (DBRWPW, DBROPW, DBROOTPW)",
        r"^[ \t]*#?[ \t]*(?P<key>[A-Z_]*PW)[ \t]*=[ \t]*(?P<secret>\"[^\"\n]*\"|'[^'\n]*'|\S+)",
    ),
)

#: Setting names that hold a credential in generic key = value files.
_GENERIC_NAME = (
    r"[\w.-]*(?:password|passwd|secret|passphrase|token|api[_-]?key|private[_-]?key|"
    r"pre-?shared[_-]?key|credential|_pass|_psk)[\w.-]*"
)
_GENERIC: tuple[Rule, ...] = (
    _rule(
        "setting-secret",
        "key = value (or key: value) setting named like a credential: the whole value",
        r"^[ \t]*[#;]?[ \t]*(?P<key>" + _GENERIC_NAME + r")[ \t]*[=:][ \t]*"
        r"(?P<secret>[^\r\n]*?)[ \t]*$",
        _MI,
        exclude_key=r"(?:[_-]?format|[_-]?file|[_-]?path|[_-]?length|[_-]?min|[_-]?max)$",
    ),
    _rule(
        "shadow-hash",
        "password hash in /etc/shadow (name:hash:lastchange:...) or /etc/gshadow",
        r"^[a-z_][\w.-]*\$?:(?P<secret>(?![!*]*:)[^:\n]+):(?:\d*:\d*:\d*:|[^:\n]*:[^:\n]*$)",
    ),
    _rule(
        "redis-password",
        "a password before @ in a Redis address (rtpengine redis = PW@IP:PORT/DB)",
        r"^[ \t]*(?P<key>[\w-]*redis[\w-]*)[ \t]*=[ \t]*(?P<secret>[^@\s]+)@",
        _MI,
    ),
)

_APT: tuple[Rule, ...] = (
    _rule("netrc-password", "apt auth.conf (netrc) password", r"\bpassword\s+(?P<secret>\S+)"),
)

_CHRONY_KEYS: tuple[Rule, ...] = (
    _rule(
        "ntp-symmetric-key",
        "NTP symmetric key (chrony.keys / ntp.keys)",
        r"^[ \t]*\d+[ \t]+(?:[A-Z][A-Z0-9-]*[ \t]+)?(?P<secret>(?:HEX:|ASCII:)?[^\s#]+)",
    ),
)

CATALOG: dict[str, tuple[Rule, ...]] = {
    "ios": _CISCO,
    "eos": _CISCO,
    "nxos": _CISCO,
    "junos": _JUNOS,
    "asterisk": _ASTERISK,
    "asterisk-voicemail": _VOICEMAIL,
    "freeswitch": _FREESWITCH,
    "kamailio": _KAMAILIO,
    "ssh": (),
    "state": (),
    "apt": (*_APT, *_GENERIC),
    "chrony-keys": _CHRONY_KEYS,
    "generic": _GENERIC,
}

#: Device platform (inventory) -> file kind of its configs.
PLATFORM_KINDS: dict[str, FileKind] = {
    "ios": "ios",
    "eos": "eos",
    "nxos_ssh": "nxos",
    "junos": "junos",
}


def rules_for(kind: str) -> tuple[Rule, ...]:
    """The rules applied to a file of ``kind``: the universal ones first."""
    return (*UNIVERSAL, *CATALOG.get(kind, _GENERIC))


def classify_path(path: str) -> FileKind:
    """The file kind of a server file by its absolute path.

    >>> classify_path("/etc/asterisk/pjsip.conf")
    'asterisk'
    """
    if path == "/etc/asterisk/voicemail.conf":
        return "asterisk-voicemail"
    if path.startswith("/etc/asterisk/"):
        return "asterisk"
    if path.startswith("/etc/freeswitch/"):
        return "freeswitch"
    if path.startswith("/etc/kamailio/"):
        return "kamailio"
    if path.startswith("/etc/ssh/"):
        return "ssh"
    if path.startswith("/etc/apt/"):
        return "apt"
    if path.endswith((".keys", "/ntp.keys")) and ("/chrony/" in path or "ntp" in path):
        return "chrony-keys"
    return "generic"
