"""VoIP service controls: Asterisk (PJSIP, AMI, ARI/HTTP, chan_sip), Kamailio, FreeSWITCH.

Judged on the config files gathered from the host (pure parsers below). Values of
secret settings are compared against known sample values but never reported: a
check says "a sample secret", not the secret.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass, field

from vcops.baseline.context import ServerContext
from vcops.baseline.model import (
    CheckResult,
    failed,
    not_applicable,
    passed,
    unknown,
)
from vcops.facts.sections import to_int
from vcops.facts.server import ServerFacts

AST = "/etc/asterisk"
LOCAL = {"127.0.0.1", "::1", "localhost", "[::1]"}


# --- Asterisk ini files ---------------------------------------------------------


@dataclass
class IniSection:
    """One ``[name](templates)`` section; values keep every occurrence in order."""

    name: str
    templates: list[str] = field(default_factory=list)
    is_template: bool = False
    values: dict[str, list[str]] = field(default_factory=dict)

    def get(self, key: str) -> str | None:
        values = self.values.get(key.lower())
        return values[-1] if values else None


def parse_asterisk_ini(text: str) -> list[IniSection]:
    """Asterisk's ini dialect: ``;`` comments, ``[name](!,tmpl)`` headers, ``=`` or ``=>``.

    Example: ``[anonymous](!)\\ntype=endpoint`` gives
    ``[IniSection(name="anonymous", is_template=True, values={"type": ["endpoint"]})]``.
    """
    sections: list[IniSection] = []
    current: IniSection | None = None
    for raw in text.splitlines():
        line = raw.split(";", 1)[0].strip()
        if not line:
            continue
        m = re.match(r"^\[([^\]]+)\]\s*(?:\(([^)]*)\))?", line)
        if m:
            options = [o.strip() for o in (m[2] or "").split(",") if o.strip()]
            current = IniSection(
                name=m[1].strip(),
                templates=[o for o in options if o not in {"!", "+"}],
                is_template="!" in options,
            )
            sections.append(current)
            continue
        key, sep, value = line.partition("=")
        if sep and current is not None:
            current.values.setdefault(key.strip().lower(), []).append(value.lstrip(">").strip())
    return sections


def _effective(sections: list[IniSection]) -> list[IniSection]:
    """Non-template sections with their templates' values folded in."""
    by_name = {s.name: s for s in sections}
    out = []
    for s in sections:
        if s.is_template:
            continue
        merged: dict[str, list[str]] = {}
        for t in s.templates:
            if t in by_name:
                for k, v in by_name[t].values.items():
                    merged[k] = list(v)
        for k, v in s.values.items():
            merged[k] = list(v)
        out.append(IniSection(name=s.name, values=merged))
    return out


def _ini(facts: ServerFacts, name: str) -> list[IniSection] | None:
    text = facts.asterisk_files.get(f"{AST}/{name}")
    return None if text is None else _effective(parse_asterisk_ini(text))


def _no_asterisk(expected: str) -> CheckResult:
    return unknown(expected, f"{AST}/pjsip.conf not found")


def check_ast_no_anonymous(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "no anonymous or guest endpoint"
    pjsip = _ini(facts, "pjsip.conf")
    if pjsip is None:
        return _no_asterisk(expected)
    bad = [
        s.name
        for s in pjsip
        if s.get("type") == "endpoint" and s.name.lower() in {"anonymous", "guest"}
    ]
    sip = _ini(facts, "sip.conf")
    if sip is not None:
        general = next((s for s in sip if s.name == "general"), None)
        if (
            general is not None
            and (general.get("allowguest") or "yes") == "yes"
            and _has_chan_sip(facts) is not False
        ):
            bad.append("sip.conf allowguest=yes")
    return (failed if bad else passed)(expected, f"found: {', '.join(bad)}" if bad else "none")


def check_ast_unidentified_limits(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    count, period = (
        ctx.settings.asterisk_unidentified_request_count,
        ctx.settings.asterisk_unidentified_request_period,
    )
    expected = f"unidentified_request_count <= {count} and unidentified_request_period <= {period}"
    pjsip = _ini(facts, "pjsip.conf")
    if pjsip is None:
        return _no_asterisk(expected)
    glob = next((s for s in pjsip if s.get("type") == "global"), None)
    got_c = glob.get("unidentified_request_count") if glob else None
    got_p = glob.get("unidentified_request_period") if glob else None
    got_count = to_int(got_c) if got_c is not None else None
    got_period = to_int(got_p) if got_p is not None else None
    if got_count is None or got_period is None or got_count < 0 or got_period < 0:
        return failed(
            expected,
            "not set (Asterisk defaults 5 requests / 5 s apply only with a [global] type=global section)",
        )
    ok = got_count <= count and got_period <= period
    return (passed if ok else failed)(expected, f"count {got_c}, period {got_p}")


def check_ast_tls_transport(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "a PJSIP transport with protocol=tls"
    pjsip = _ini(facts, "pjsip.conf")
    if pjsip is None:
        return _no_asterisk(expected)
    tls = [
        s.name
        for s in pjsip
        if s.get("type") == "transport" and (s.get("protocol") or "").lower() in {"tls", "wss"}
    ]
    return (passed if tls else failed)(
        expected, f"tls transports: {', '.join(tls)}" if tls else "no TLS transport"
    )


def check_ast_media_encryption(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    allowed = ctx.settings.asterisk_media_encryption
    expected = f"media_encryption {' or '.join(allowed)} on every endpoint"
    pjsip = _ini(facts, "pjsip.conf")
    if pjsip is None:
        return _no_asterisk(expected)
    endpoints = [s for s in pjsip if s.get("type") == "endpoint"]
    if not endpoints:
        return passed(expected, "no endpoints defined")
    bad = [s.name for s in endpoints if (s.get("media_encryption") or "no") not in allowed]
    return (failed if bad else passed)(
        expected,
        f"{len(bad)} of {len(endpoints)} endpoints unencrypted: {', '.join(bad[:5])}"
        if bad
        else f"{len(endpoints)} endpoints encrypted",
    )


def check_ast_ami(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "AMI off, or bound to localhost / ACL-restricted, with no sample credentials"
    manager = _ini(facts, "manager.conf")
    if manager is None:
        return unknown(expected, f"{AST}/manager.conf not found")
    general = next((s for s in manager if s.name == "general"), None)
    if general is None or (general.get("enabled") or "no").lower() not in {
        "yes",
        "true",
        "1",
        "on",
    }:
        return passed(expected, "AMI disabled")
    problems = []
    bind = general.get("bindaddr") or "0.0.0.0"  # noqa: S104 - Asterisk's default, reported
    users = [s for s in manager if s.name != "general"]
    if bind not in LOCAL:
        open_users = [u.name for u in users if not u.values.get("permit")]
        if open_users:
            problems.append(
                f"bound to {bind} with users without permit ACL: {', '.join(open_users)}"
            )
    sample = set(ctx.settings.asterisk_sample_secrets)
    samples = [
        u.name
        for u in users
        if (u.get("secret") or "") in sample or (u.name in {"admin", "manager"} and u.get("secret"))
    ]
    if samples:
        problems.append(f"sample credentials for {', '.join(samples)}")
    return (failed if problems else passed)(
        expected,
        "; ".join(problems) if problems else f"bound to {bind}, {len(users)} users restricted",
    )


def check_ast_http(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "ARI/HTTP off or bound to localhost"
    http = _ini(facts, "http.conf")
    if http is None:
        return (
            passed(expected, "no http.conf (HTTP server off)")
            if f"{AST}/pjsip.conf" in facts.asterisk_files
            else _no_asterisk(expected)
        )
    general = next((s for s in http if s.name == "general"), None)
    if general is None or (general.get("enabled") or "no").lower() not in {
        "yes",
        "true",
        "1",
        "on",
    }:
        return passed(expected, "HTTP server disabled")
    bind = general.get("bindaddr") or "0.0.0.0"  # noqa: S104 - Asterisk's default, reported
    return (passed if bind in LOCAL else failed)(
        expected, f"HTTP server on {bind}:{general.get('bindport') or 8088}"
    )


def _has_chan_sip(facts: ServerFacts) -> bool | None:
    """chan_sip exists before Asterisk 21; None when the version is unknown."""
    if facts.asterisk_version is None:
        return None
    m = re.search(r"([0-9]{1,6})\.", facts.asterisk_version.split(":")[-1])
    return int(m[1]) < 21 if m else None


def check_ast_chan_sip(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "sip.conf: allowguest=no, alwaysauthreject=yes (Asterisk < 21 only)"
    has = _has_chan_sip(facts)
    if has is False:
        return not_applicable(expected, f"Asterisk {facts.asterisk_version} has no chan_sip")
    sip = _ini(facts, "sip.conf")
    if sip is None:
        return (
            passed(expected, "no sip.conf")
            if has
            else unknown(expected, "no sip.conf and Asterisk version unknown")
        )
    if has is None:
        return unknown(
            expected, "Asterisk version unknown (not installed here); judge sip.conf when it is"
        )
    general = next((s for s in sip if s.name == "general"), None)
    bad = []
    if general is None or (general.get("allowguest") or "yes") != "no":
        bad.append("allowguest not no")
    if general is None or (general.get("alwaysauthreject") or "yes") != "yes":
        bad.append("alwaysauthreject not yes")
    return (failed if bad else passed)(expected, ", ".join(bad) if bad else "set")


# --- Kamailio ------------------------------------------------------------------


def preprocess_kamailio(text: str, defines: set[str] | None = None) -> str:
    """Apply ``#!define`` / ``#!ifdef`` / ``#!ifndef`` / ``#!else`` / ``#!endif`` (also ``!!``).

    Returns the effective config (directives removed, comments kept out).
    """
    defined = set(defines or ())
    stack: list[bool] = []
    out: list[str] = []
    for raw in text.splitlines():
        line = raw.strip()
        directive = re.match(r"^(?:#!|!!)(\w+)\s*(\S*)", line)
        active = all(stack)
        if directive:
            word, arg = directive[1], directive[2]
            if word == "ifdef":
                stack.append(arg in defined)
            elif word == "ifndef":
                stack.append(arg not in defined)
            elif word == "else" and stack:
                stack[-1] = not stack[-1]
            elif word == "endif" and stack:
                stack.pop()
            elif word in {"define", "substdef", "trydef"} and active:
                defined.add(arg)
            elif word == "undef" and active:
                defined.discard(arg)
            continue
        if not active or line.startswith("#") or line.startswith("//"):
            continue
        out.append(raw.split("#", 1)[0] if not line.startswith("loadmodule") else raw)
    return "\n".join(out)


def _kamailio(facts: ServerFacts) -> str | None:
    text = facts.kamailio_files.get("/etc/kamailio/kamailio.cfg")
    if text is None:
        return None
    local = facts.kamailio_files.get("/etc/kamailio/kamailio-local.cfg", "")
    return preprocess_kamailio(local + "\n" + text)


def check_kam_flood(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "pike or antiflood active (module loaded and called)"
    cfg = _kamailio(facts)
    if cfg is None:
        return unknown(expected, "/etc/kamailio/kamailio.cfg not found")
    loaded = re.search(r'loadmodule\s+"(pike|antiflood)(\.so)?"', cfg)
    called = re.search(r"\b(pike_check_req|antiflood_check_req)\s*\(", cfg)
    if loaded and called:
        return passed(expected, f"{loaded[1]} loaded and called")
    return failed(
        expected,
        "pike loaded but never called"
        if loaded
        else "no pike or antiflood (WITH_ANTIFLOOD not defined)",
    )


def check_kam_tls(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "tls module loaded and a TLS listener"
    cfg = _kamailio(facts)
    if cfg is None:
        return unknown(expected, "/etc/kamailio/kamailio.cfg not found")
    loaded = re.search(r'loadmodule\s+"tls(\.so)?"', cfg)
    enabled = re.search(r"^\s*enable_tls\s*=\s*(yes|1|true)", cfg, re.M)
    listen = re.search(r"^\s*listen\s*=\s*tls:", cfg, re.M)
    if loaded and (enabled or listen):
        return passed(expected, "tls enabled")
    return failed(
        expected, "no TLS (WITH_TLS not defined)" if not loaded else "tls loaded but not enabled"
    )


def check_kam_relay(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "requests for foreign domains from non-subscribers refused (not an open relay)"
    cfg = _kamailio(facts)
    if cfg is None:
        return unknown(expected, "/etc/kamailio/kamailio.cfg not found")
    guard = re.search(
        r"(?<![\w$])(!\s*uri\s*==\s*myself|uri\s*!=\s*myself|!\s*is_myself\s*\(\s*\"\$ru\"\s*\))",
        cfg,
    )
    if guard:
        return passed(expected, "relay guard present")
    return failed(
        expected, "no 'uri!=myself' guard: anyone can relay calls through it (define WITH_AUTH)"
    )


# --- FreeSWITCH ----------------------------------------------------------------


def _xml(facts: ServerFacts, path: str) -> ET.Element | str | None:
    text = facts.freeswitch_files.get(path)
    if text is None:
        return None
    try:
        return ET.fromstring(text)  # noqa: S314 - see the import note
    except ET.ParseError as exc:
        return f"{path} is not valid XML: {exc}"


def check_fs_default_password(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "default_password changed from the stock value"
    root = _xml(facts, "/etc/freeswitch/vars.xml")
    if root is None:
        return unknown(expected, "/etc/freeswitch/vars.xml not found")
    if isinstance(root, str):
        return unknown(expected, root)
    for el in root.iter("X-PRE-PROCESS"):
        data = el.get("data", "")
        if el.get("cmd") == "set" and data.startswith("default_password="):
            value = data.partition("=")[2]
            if value in ctx.settings.freeswitch_default_passwords:
                return failed(expected, "default_password is the stock default")
            return passed(expected, "changed (value hidden)")
    return failed(expected, "default_password not set (FreeSWITCH falls back to its default)")


def check_fs_event_socket(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "event socket on localhost with a non-default password"
    root = _xml(facts, "/etc/freeswitch/autoload_configs/event_socket.conf.xml")
    if root is None:
        return unknown(expected, "event_socket.conf.xml not found")
    if isinstance(root, str):
        return unknown(expected, root)
    params = {p.get("name", ""): p.get("value", "") for p in root.iter("param")}
    bad = []
    if params.get("listen-ip", "127.0.0.1") not in LOCAL:
        bad.append(f"listens on {params.get('listen-ip')}:{params.get('listen-port', '8021')}")
    if params.get("password", "ClueCon") in ctx.settings.freeswitch_default_passwords:
        bad.append("stock password")
    return (failed if bad else passed)(
        expected, "; ".join(bad) if bad else "localhost, password changed"
    )


def check_fs_auth_failures(facts: ServerFacts, ctx: ServerContext) -> CheckResult:
    expected = "log-auth-failures true on every SIP profile (fail2ban reads them)"
    profiles = {p: t for p, t in facts.freeswitch_files.items() if "/sip_profiles/" in p}
    if not profiles:
        return unknown(expected, "no /etc/freeswitch/sip_profiles/*.xml")
    bad = []
    for path in sorted(profiles):
        root = _xml(facts, path)
        if not isinstance(root, ET.Element):
            bad.append(f"{path} unreadable")
            continue
        params = {p.get("name", ""): p.get("value", "") for p in root.iter("param")}
        if params.get("log-auth-failures", "false").lower() != "true":
            bad.append(path.rsplit("/", 1)[-1])
    return (failed if bad else passed)(
        expected,
        f"off in: {', '.join(bad)}" if bad else f"{len(profiles)} profiles log auth failures",
    )
