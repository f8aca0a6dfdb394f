"""Applying the kernel area's sysctls: what to set now and what has drifted (pure).

``net.*`` keys are per network namespace and always applied; ``kernel.*``, ``fs.*`` and
``vm.*`` belong to the container host inside a container, so there they are written
to the file (for the day the host is a VM) but neither applied nor compared.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping

from vcops.inventory.export import JsonValue

FORWARDING_KEYS = ("net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding")
NET_VARS = ("vcops_kernel_net_sysctls", "vcops_kernel_net_extra_sysctls")
"""Per network namespace: applied on every host."""
HOST_VARS = ("vcops_kernel_kernel_sysctls", "vcops_kernel_protect_sysctls")
"""The container host's inside a container: written to the file, applied on real hosts."""


def wanted_sysctls(variables: Mapping[str, JsonValue], in_container: bool) -> dict[str, str]:
    """The sysctls to apply on this host now (pure).

    >>> v = {"vcops_kernel_net_sysctls": {"net.a": "1"}, "vcops_kernel_kernel_sysctls":
    ...      {"kernel.b": "2"}, "vcops_kernel_forwarding": True}
    >>> wanted_sysctls(v, in_container=True)
    {'net.a': '1'}
    """
    wanted = {}
    for name in NET_VARS:
        wanted.update(_pairs(variables, name))
    if not variables["vcops_kernel_forwarding"]:
        wanted.update(dict.fromkeys(FORWARDING_KEYS, "0"))
    if not in_container:
        for name in HOST_VARS:
            wanted.update(_pairs(variables, name))
    return wanted


def _pairs(variables: Mapping[str, JsonValue], name: str) -> dict[str, str]:
    """One sysctl variable as key -> value strings (absent: nothing)."""
    value = variables.get(name) or {}
    assert isinstance(value, dict)
    return {str(k): str(v) for k, v in value.items()}


def sysctl_argv(variables: Mapping[str, JsonValue], in_container: bool) -> str:
    """One ``sysctl -q -e -w k=v ...`` command line (unknown keys are skipped)."""
    pairs = [f"{k}={v}" for k, v in sorted(wanted_sysctls(variables, in_container).items())]
    return shlex.join(["sysctl", "-q", "-e", "-w", *pairs])


def sysctl_drift(
    variables: Mapping[str, JsonValue], live: Mapping[str, object], in_container: bool
) -> list[str]:
    """Keys whose live value differs (keys the host lacks are ignored) (pure)."""
    drift = []
    for key, value in sorted(wanted_sysctls(variables, in_container).items()):
        if key in live and str(live[key]) != value:
            drift.append(key)
    return drift
