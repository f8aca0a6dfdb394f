"""The host-key lockout guard: after the ssh baseline, sshd offers only the ed25519 host
key (and RSA where ``baseline_ssh_rsa_host_key`` allows it, VC-SSH-009). vcops verifies
every host against its pinned known_hosts, so a host pinned only by a key type the
baseline stops offering (say ECDSA) could never be reached again: ``apply`` refuses it
up front with the fix, before anything changes.

Example::

    lockout_problems(inventory, servers)
    # [Problem("apply", "server sbc-02", "known_hosts pins only ecdsa-sha2-nistp256 ...",
    #          "pin its ed25519 key (ssh-keyscan -t ed25519 ...) ...")]
"""

from __future__ import annotations

from pathlib import Path

import asyncssh

from vcops.baseline.settings import BaselineSettings, server_settings
from vcops.connectors.ssh import SshTarget
from vcops.errors import Problem
from vcops.inventory.models import Inventory, Server


def offered_key_types(settings: BaselineSettings) -> frozenset[str]:
    """The host key types sshd offers after the ssh baseline (pure)."""
    return frozenset({"ssh-ed25519", *(["ssh-rsa"] if settings.ssh_rsa_host_key else [])})


def pinned_key_types(known_hosts: Path, address: str, port: int) -> frozenset[str] | None:
    """The key types ``known_hosts`` pins for the host; None when it pins none (or trusts
    a CA: any host key signed by it will do), so nothing can be judged."""
    if not known_hosts.exists():
        return None
    try:
        known = asyncssh.read_known_hosts(str(known_hosts))
    except (OSError, ValueError, asyncssh.KeyImportError):
        return None
    host_keys, ca_keys, *_ = known.match(address, address, port)
    if ca_keys or not host_keys:
        return None
    return frozenset(key.algorithm.decode("ascii", "replace") for key in host_keys)


def would_lock_out(pinned: frozenset[str] | None, offered: frozenset[str]) -> bool:
    """Whether no pinned key type would still be offered (pure; unknown pins: no)."""
    return pinned is not None and not (pinned & offered)


def lockout_problems(inventory: Inventory, servers: list[Server]) -> list[Problem]:
    """A problem for every server whose pinned host keys the baseline would stop offering."""
    problems = []
    for server in servers:
        target = SshTarget.from_inventory(inventory, server)
        settings = server_settings(
            inventory.host_vars(server), user=target.user, where=f"inventory: server {server.name}"
        )
        known = target.known_hosts or Path("~/.ssh/known_hosts").expanduser()
        pinned = pinned_key_types(known, target.address, target.port)
        offered = offered_key_types(settings)
        if would_lock_out(pinned, offered):
            assert pinned is not None
            problems.append(
                Problem(
                    "apply",
                    f"server {server.name}",
                    f"{known} pins only {', '.join(sorted(pinned))}; after the ssh baseline "
                    f"sshd offers {', '.join(sorted(offered))}, so vcops could not verify it",
                    f"pin its ed25519 key (ssh-keyscan -t ed25519 {target.address}, checked "
                    "out of band) in that file, or set baseline_ssh_rsa_host_key for RSA",
                )
            )
    return problems
