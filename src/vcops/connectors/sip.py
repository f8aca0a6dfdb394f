"""SIP OPTIONS over UDP: is a SIP node answering right now? (the health gate's ear)

The controller sends one OPTIONS request to the host's SIP port and waits for a
response carrying the same Call-ID; any response (200, 403, 404 ...) proves the SIP
stack is alive and parsing requests, which is all a health gate asks.
"""

from __future__ import annotations

import socket
import time
import uuid


def options_request(target: str, port: int, local: str, local_port: int, call_id: str) -> bytes:
    """A minimal SIP OPTIONS request from ``local:local_port`` (pure).

    >>> options_request("10.213.0.11", 5060, "10.213.0.1", 40000, "abc").split(b"\\r\\n")[0]
    b'OPTIONS sip:10.213.0.11:5060 SIP/2.0'
    """
    branch = "z9hG4bK" + call_id[:16]
    lines = [
        f"OPTIONS sip:{target}:{port} SIP/2.0",
        f"Via: SIP/2.0/UDP {local}:{local_port};branch={branch};rport",
        "Max-Forwards: 70",
        f"From: <sip:vcops@{local}>;tag={call_id[:8]}",
        f"To: <sip:{target}:{port}>",
        f"Call-ID: {call_id}@{local}",
        "CSeq: 1 OPTIONS",
        f"Contact: <sip:vcops@{local}:{local_port}>",
        "Accept: application/sdp",
        "User-Agent: vcops",
        "Content-Length: 0",
        "",
        "",
    ]
    return "\r\n".join(lines).encode()


def sip_options(
    address: str, port: int = 5060, timeout: float = 1.0, *, source: str | None = None
) -> str | None:
    """Send one SIP OPTIONS over UDP; return the response's status line or None.

    ``source`` binds the local address (default: the one the route to ``address``
    uses). Example answer from a stock Kamailio: ``SIP/2.0 200 Keepalive``.
    """
    call_id = uuid.uuid4().hex
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    deadline = time.monotonic() + timeout
    try:
        with socket.socket(family, socket.SOCK_DGRAM) as sock:
            if source is not None:
                sock.bind((source, 0))
            sock.connect((address, port))  # picks the source address; filters other peers
            local, local_port = sock.getsockname()[:2]
            sock.send(options_request(address, port, local, local_port, call_id))
            while (left := deadline - time.monotonic()) > 0:
                sock.settimeout(left)
                data = sock.recv(65535)
                if call_id.encode() in data:
                    return data.split(b"\r\n", 1)[0].decode(errors="replace")
    except OSError:
        return None
    return None


def sip_alive(
    address: str, port: int = 5060, *, wait: float = 0.0, timeout: float = 1.0
) -> str | None:
    """:func:`sip_options`, retried for up to ``wait`` seconds (a restarting node)."""
    deadline = time.monotonic() + wait
    while True:
        answer = sip_options(address, port, timeout)
        if answer is not None or time.monotonic() >= deadline:
            return answer
        time.sleep(0.5)
