"""The VoIP control table (checks in :mod:`vcops.baseline.voip`)."""

from __future__ import annotations

from vcops.baseline.catalog_entry import expected_from
from vcops.baseline.context import ServerContext
from vcops.baseline.model import Clause, Control, Severity
from vcops.baseline.server import Check
from vcops.baseline.voip import (
    check_ast_ami,
    check_ast_chan_sip,
    check_ast_http,
    check_ast_media_encryption,
    check_ast_no_anonymous,
    check_ast_tls_transport,
    check_ast_unidentified_limits,
    check_fs_auth_failures,
    check_fs_default_password,
    check_fs_event_socket,
    check_kam_flood,
    check_kam_relay,
    check_kam_tls,
)
from vcops.facts.server import ServerFacts
from vcops.roles import roles_with_area


def _v(
    id_: str,
    severity: Severity,
    roles: set[str],
    title: str,
    rationale: str,
    check: Check,
    clause: Clause = "3.2.1",
) -> Control[ServerFacts, ServerContext]:
    return Control(
        id=id_,
        clause=clause,
        severity=severity,
        kind="server",
        applies_to=frozenset(roles),
        title=title,
        rationale=rationale,
        expected=expected_from(check),
        check=check,
    )


_ast = set(roles_with_area("asterisk"))
_kam = set(roles_with_area("kamailio"))
_fs = set(roles_with_area("freeswitch"))
VOIP_CONTROLS: list[Control[ServerFacts, ServerContext]] = [
    _v(
        "VC-AST-001",
        "critical",
        _ast,
        "No anonymous or guest SIP endpoint",
        "An anonymous endpoint lets anyone on the internet place calls: toll fraud.",
        check_ast_no_anonymous,
    ),
    _v(
        "VC-AST-002",
        "medium",
        _ast,
        "Limits on unidentified SIP requests",
        "Limits stop scanners from hammering PJSIP with unauthenticated requests.",
        check_ast_unidentified_limits,
    ),
    _v(
        "VC-AST-003",
        "high",
        _ast,
        "PJSIP offers a TLS transport",
        "Signalling in clear text exposes credentials and call metadata.",
        check_ast_tls_transport,
    ),
    _v(
        "VC-AST-004",
        "high",
        _ast,
        "Media encrypted on every endpoint",
        "Unencrypted RTP lets anyone on the path listen to calls.",
        check_ast_media_encryption,
    ),
    _v(
        "VC-AST-005",
        "critical",
        _ast,
        "AMI restricted, no sample credentials",
        "AMI is full remote control of the PBX: originate calls, read configs.",
        check_ast_ami,
    ),
    _v(
        "VC-AST-006",
        "high",
        _ast,
        "ARI/HTTP not public",
        "ARI exposes call control over HTTP.",
        check_ast_http,
    ),
    _v(
        "VC-AST-007",
        "high",
        _ast,
        "chan_sip refuses guests and hides valid users",
        "chan_sip's defaults allow guest calls and reveal which extensions exist.",
        check_ast_chan_sip,
    ),
    _v(
        "VC-KAM-001",
        "high",
        _kam,
        "Kamailio flood protection (pike or antiflood)",
        "Without rate limiting a single scanner can exhaust the proxy.",
        check_kam_flood,
    ),
    _v(
        "VC-KAM-002",
        "high",
        _kam,
        "Kamailio listens on TLS",
        "SIP over TLS protects credentials and call metadata.",
        check_kam_tls,
    ),
    _v(
        "VC-KAM-003",
        "critical",
        _kam,
        "Kamailio is not an open relay",
        "An open relay carries anyone's calls on the operator's trunks.",
        check_kam_relay,
    ),
    _v(
        "VC-FS-001",
        "critical",
        _fs,
        "FreeSWITCH default_password changed",
        "The stock 1234 registers any extension to anyone.",
        check_fs_default_password,
    ),
    _v(
        "VC-FS-002",
        "critical",
        _fs,
        "Event socket on localhost with a non-default password",
        "The event socket (ClueCon on 8021) is remote control of FreeSWITCH.",
        check_fs_event_socket,
    ),
    _v(
        "VC-FS-003",
        "medium",
        _fs,
        "SIP auth failures logged for fail2ban",
        "fail2ban can only ban what FreeSWITCH logs.",
        check_fs_auth_failures,
    ),
]
