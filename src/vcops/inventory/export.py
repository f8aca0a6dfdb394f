"""Export the inventory for Ansible and pyinfra, both from the same model.

Each host gets the same resolved variables in both engines: vcops facts about it
(``vcops_roles``, ``vcops_site`` ...) plus its group vars merged in the order the host
lists its groups, then its own vars. Connection settings point at the inventory's
pinned ``known_hosts`` file with strict checking, so neither engine ever trusts a key
on first use or writes to root's own known_hosts. Device passwords are exported as
references (an environment or file lookup), never as values.
"""

from __future__ import annotations

import json
import pprint
import re
import shlex
from typing import Literal

import yaml

from vcops import __version__
from vcops.inventory.models import Device, Inventory, Server, Target

ExportFormat = Literal["ansible", "ansible-json", "pyinfra"]

_NETWORK_OS = {
    "ios": "cisco.ios.ios",
    "eos": "arista.eos.eos",
    "junos": "junipernetworks.junos.junos",
    "nxos_ssh": "cisco.nxos.nxos",
}
JsonValue = str | int | float | bool | None | list["JsonValue"] | dict[str, "JsonValue"]


def group_name(prefix: str, name: str) -> str:
    """A group name both engines accept: ``role_kamailio``, ``site_lon1``."""
    text = f"{prefix}_{name}" if prefix else name
    return re.sub(r"[^A-Za-z0-9_]", "_", text)


def _plain(value: object) -> JsonValue:
    """Vars as plain JSON-able data (YAML dates become ISO strings)."""
    result: JsonValue = json.loads(json.dumps(value, default=str))
    return result


def vcops_vars(inventory: Inventory, target: Target) -> dict[str, JsonValue]:
    """Engine-neutral variables of one target, user vars last."""
    data: dict[str, JsonValue] = {
        "vcops_kind": target.kind,
        "vcops_site": target.site,
        "vcops_environment": target.environment,
        "vcops_groups": list(target.groups),
        "vcops_management_networks": [str(n) for n in inventory.management_networks(target)],
    }
    if isinstance(target, Server):
        data["vcops_roles"] = list(target.roles)
        data["vcops_redundancy_group"] = target.redundancy_group
        data["vcops_patch_group"] = target.patch_group
    else:
        data["vcops_platform"] = target.platform
    merged = _plain(inventory.host_vars(target))
    assert isinstance(merged, dict)
    data.update(merged)
    return data


def groups_of(inventory: Inventory) -> dict[str, list[str]]:
    """Every derived group and its members, in a stable order."""
    groups: dict[str, list[str]] = {"servers": [], "devices": []}

    def add(name: str, member: str) -> None:
        members = groups.setdefault(name, [])
        if member not in members:
            members.append(member)

    for target in inventory.targets:
        add("servers" if isinstance(target, Server) else "devices", target.name)
        add(group_name("site", target.site), target.name)
        add(group_name("env", target.environment), target.name)
        for group in target.groups:
            add(group_name("", group), target.name)
        if isinstance(target, Server):
            for role in target.roles:
                add(group_name("role", role), target.name)
            if target.redundancy_group:
                add(group_name("rg", target.redundancy_group), target.name)
            if target.patch_group:
                add(group_name("patch", target.patch_group), target.name)
        else:
            add(group_name("platform", target.platform), target.name)
    return groups


def _ansible_connection(inventory: Inventory, target: Target) -> dict[str, JsonValue]:
    ssh = inventory.settings.ssh
    known_hosts = inventory.resolve_path(ssh.known_hosts_file) if ssh.known_hosts_file else None
    if isinstance(target, Server):
        access = inventory.ssh_access(target)
        data: dict[str, JsonValue] = {
            "ansible_host": target.address,
            "ansible_port": access.port,
            "ansible_user": access.user,
            "ansible_python_interpreter": "/usr/bin/python3",
            "ansible_become": access.sudo,
        }
        if access.sudo:
            data["ansible_become_method"] = "ansible.builtin.sudo"
            data["ansible_become_user"] = access.become_user
            if access.become_password_env:
                data["ansible_become_password"] = (
                    f"{{{{ lookup('ansible.builtin.env', '{access.become_password_env}') }}}}"
                )
        if ssh.key_file:
            data["ansible_ssh_private_key_file"] = str(inventory.resolve_path(ssh.key_file))
        args = ["-o StrictHostKeyChecking=yes", "-o IdentitiesOnly=yes"]
        if known_hosts:
            # quoted twice: for Ansible's shlex split, and for ssh, which would read a
            # space in the path as a second file
            known = str(known_hosts)
            value = f'"{known}"' if re.search(r"\s", known) else known
            args.insert(0, "-o " + shlex.quote(f"UserKnownHostsFile={value}"))
        data["ansible_ssh_common_args"] = " ".join(args)
        return data
    assert isinstance(target, Device)
    creds = target.credentials
    if creds.password_env:
        password = f"{{{{ lookup('ansible.builtin.env', '{creds.password_env}') }}}}"
    else:
        path = inventory.resolve_path(creds.password_file or "")
        password = f"{{{{ lookup('ansible.builtin.file', '{path}') }}}}"
    return {
        "ansible_host": target.address,
        "ansible_port": target.port,
        "ansible_user": creds.username,
        "ansible_password": password,
        "ansible_connection": "ansible.netcommon.network_cli",
        "ansible_network_os": _NETWORK_OS[target.platform],
        "ansible_host_key_checking": True,
    }


def to_ansible_dict(inventory: Inventory) -> dict[str, JsonValue]:
    """The inventory as Ansible's YAML inventory structure (``all: children: ...``)."""
    groups = groups_of(inventory)
    children: dict[str, JsonValue] = {}
    for name, members in groups.items():
        if name in {"servers", "devices"}:
            continue
        children[name] = {"hosts": {member: None for member in members}}
    hosts: dict[str, JsonValue] = {}
    devices: dict[str, JsonValue] = {}
    for target in inventory.targets:
        entry = {**_ansible_connection(inventory, target), **vcops_vars(inventory, target)}
        (hosts if isinstance(target, Server) else devices)[target.name] = entry
    return {
        "all": {
            "children": {
                "servers": {"hosts": hosts},
                "devices": {"hosts": devices},
                **children,
            }
        }
    }


def to_ansible_json(inventory: Inventory) -> dict[str, JsonValue]:
    """The dynamic-inventory ``--list`` structure (``_meta.hostvars``) Ansible scripts emit."""
    groups = groups_of(inventory)
    out: dict[str, JsonValue] = {
        "all": {"children": ["ungrouped", *groups]},
        "ungrouped": {"hosts": []},
    }
    for name, members in groups.items():
        out[name] = {"hosts": list(members)}
    out["_meta"] = {
        "hostvars": {
            t.name: {**_ansible_connection(inventory, t), **vcops_vars(inventory, t)}
            for t in inventory.targets
        }
    }
    return out


#: In a pyinfra inventory module, ``{"_sudo_password": ENV_REFERENCE + VAR}`` is written
#: as code reading the controller's environment at run time, never as a value.
ENV_REFERENCE = "__vcops_env__:"


def _pyinfra_connection(inventory: Inventory, server: Server) -> dict[str, JsonValue]:
    ssh = inventory.settings.ssh
    access = inventory.ssh_access(server)
    data: dict[str, JsonValue] = {
        "ssh_hostname": server.address,
        "ssh_port": access.port,
        "ssh_user": access.user,
        "ssh_strict_host_key_checking": "yes",
        "ssh_allow_agent": False,
        "ssh_look_for_keys": False,
    }
    if access.sudo:
        data["_sudo"] = True
        data["_sudo_user"] = access.become_user
        if access.become_password_env:
            data["_sudo_password"] = ENV_REFERENCE + access.become_password_env
    if ssh.key_file:
        data["ssh_key"] = str(inventory.resolve_path(ssh.key_file))
    if ssh.known_hosts_file:
        data["ssh_known_hosts_file"] = str(inventory.resolve_path(ssh.known_hosts_file))
    return data


def to_pyinfra_module(inventory: Inventory) -> str:
    """The inventory as a pyinfra inventory module (servers only: devices are not SSH hosts)."""
    groups = groups_of(inventory)
    server_names = {s.name for s in inventory.servers}
    lines = [
        f'"""pyinfra inventory generated by vcops {__version__} from {inventory.root}.',
        "",
        "Do not edit: run `vcops inventory export --format pyinfra` again instead.",
        '"""',
        "",
    ]
    entries = [
        (s.name, {**_pyinfra_connection(inventory, s), **vcops_vars(inventory, s)})
        for s in inventory.servers
    ]
    lines.append("import os as _os")
    lines.append("")
    lines.append("servers = " + pyinfra_literal(entries))
    for name, members in groups.items():
        if name in {"servers", "devices"}:
            continue
        servers_only = [m for m in members if m in server_names]
        if servers_only:
            lines.append(f"{name} = {servers_only!r}")
    return "\n".join(lines) + "\n"


def pyinfra_literal(value: object) -> str:
    """``value`` as Python source for a pyinfra inventory module; a sudo password
    reference becomes ``_os.environ.get('VAR')`` (read when pyinfra runs)."""
    text = pprint.pformat(value, width=100, sort_dicts=False)
    return re.sub(
        r"'" + re.escape(ENV_REFERENCE) + r"([A-Za-z_][A-Za-z0-9_]*)'",
        r"_os.environ.get('\1')",
        text,
    )


def render_export(inventory: Inventory, fmt: ExportFormat) -> str:
    """The export as text, ready to write to a file."""
    if fmt == "ansible":
        header = f"# Ansible inventory generated by vcops {__version__} from {inventory.root}\n"
        return header + yaml.safe_dump(to_ansible_dict(inventory), sort_keys=False, width=200)
    if fmt == "ansible-json":
        return json.dumps(to_ansible_json(inventory), indent=2) + "\n"
    return to_pyinfra_module(inventory)
