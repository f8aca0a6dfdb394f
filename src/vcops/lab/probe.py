"""Network probes the lab uses to know a node is really up (lab addresses and loopback only)."""

from __future__ import annotations

import socket

from vcops.connectors import sip as connectors_sip
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


def sip_options(address: str, port: int = SIP_PORT, timeout: float = 1.0) -> str | None:
    """SIP OPTIONS from the controller's lab address; the response's status line or None.

    Example answer from a stock Kamailio: ``SIP/2.0 200 Keepalive``.
    """
    return connectors_sip.sip_options(address, port, timeout, source=str(GATEWAY))
