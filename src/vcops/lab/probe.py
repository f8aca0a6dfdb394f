"""Network probes the lab uses to know a node is really up (lab addresses and loopback only)."""

from __future__ import annotations

import socket
import uuid

from vcops.lab.layout import GATEWAY, SIP_PORT


def read_banner(address: str, port: int, timeout: float = 2.0) -> str | None:
    """Connect to ``address:port`` and return the first line the server sends, or None.

    An SSH server greets with ``SSH-2.0-...``, an SMTP server with ``220 ...``.
    """
    try:
        with socket.create_connection((address, port), timeout=timeout) as conn:
            conn.settimeout(timeout)
            data = b""
            while b"\n" not in data and len(data) < 1024:
                chunk = conn.recv(256)
                if not chunk:
                    break
                data += chunk
    except OSError:
        return None
    line = data.split(b"\n", 1)[0].decode(errors="replace").strip()
    return line or None


def ssh_ready(address: str, port: int = 22, timeout: float = 2.0) -> bool:
    """Whether an SSH server accepts connections on ``address:port`` and greets."""
    banner = read_banner(address, port, timeout)
    return banner is not None and banner.startswith("SSH-")


def smtp_ready(address: str, port: int, timeout: float = 2.0) -> bool:
    """Whether an SMTP server accepts connections on ``address:port`` and greets."""
    banner = read_banner(address, port, timeout)
    return banner is not None and banner.startswith("220")


def sip_options_request(target: str, port: int, local_port: int, call_id: str) -> bytes:
    """A minimal SIP OPTIONS request from the controller's lab address (pure).

    >>> sip_options_request("10.213.0.11", 5060, 40000, "abc").split(b"\\r\\n")[0]
    b'OPTIONS sip:10.213.0.11:5060 SIP/2.0'
    """
    branch = "z9hG4bK" + call_id[:16]
    lines = [
        f"OPTIONS sip:{target}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {GATEWAY}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:vcops-lab@{GATEWAY}>;tag={call_id[:8]}",
        f"To: <sip:{target}:{port}>",
        f"Call-ID: {call_id}@{GATEWAY}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:vcops-lab@{GATEWAY}:{local_port}>",
        "Accept: application/sdp",
        "User-Agent: vcops-lab",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def sip_options(address: str, port: int = SIP_PORT, timeout: float = 1.0) -> str | None:
    """Send one SIP OPTIONS over UDP; return the response's status line or None.

    Example answer from a stock Kamailio: ``SIP/2.0 200 Keepalive``.
    """
    call_id = uuid.uuid4().hex
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.bind((str(GATEWAY), 0))
            sock.settimeout(timeout)
            request = sip_options_request(address, port, sock.getsockname()[1], call_id)
            sock.sendto(request, (address, port))
            while True:
                data, _peer = sock.recvfrom(65535)
                if call_id.encode() in data:
                    return data.split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError:
        return None
