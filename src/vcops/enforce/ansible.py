"""Run the Ansible baseline (``deploys/site.yml`` and the ``vcops_*`` roles) and read it.

The inventory handed to ``ansible-playbook`` is written fresh for each run, like the
pyinfra one: the connection settings of ``vcops inventory export --format ansible``
(the inventory's pinned ``known_hosts`` with strict checking, so root's own
``~/.ssh/known_hosts`` is never read or written), the engine-neutral ``vcops_*``
facts, and the role variables of :func:`vcops.enforce.vars.role_vars`. The vcops
inventory plugin (``plugins/inventory/vcops.py``) adds the same role variables
through :func:`ansible_role_vars`, so a by-hand ``ansible-playbook deploys/site.yml``
enforces the same values.

Results come from the default callback's text (ansible-core ships no JSON stdout
callback): each ``TASK [...]`` header, the ``changed:``/``fatal:`` lines per host, the
``--diff`` blocks before them and the ``PLAY RECAP``. Example recap line::

    lab-sbc-01 : ok=41 changed=12 unreachable=0 failed=0 skipped=9 rescued=0 ignored=0
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from vcops.enforce.pyinfra_run import controller_address
from vcops.enforce.vars import role_vars
from vcops.errors import CommandError
from vcops.inventory.export import JsonValue, _ansible_connection, vcops_vars
from vcops.inventory.models import Device, Inventory, Server
from vcops.paths import ansible_cfg, deploys_dir, roles_dir, templates_dir

SITE_PLAYBOOK = deploys_dir() / "site.yml"
NETWORK_PLAYBOOK = deploys_dir() / "network.yml"
ROLES_DIR = roles_dir()
ANSIBLE_CFG = ansible_cfg()
ROLE_PREFIX = "vcops_"
RUN_TIMEOUT = 1800.0
MAGIC_VARS = frozenset({"inventory_hostname"})
"""role_vars entries Ansible sets itself (a host var of that name would be ignored)."""


def ansible_role_vars(inventory: Inventory, server: Server) -> dict[str, JsonValue]:
    """The ``vcops_*`` role variables of ``server`` as Ansible host vars.

    Raises:
        InventoryError: a ``baseline_*`` override is invalid.
    """
    data = role_vars(inventory, server, controller_address=controller_address(server.address))
    return {k: v for k, v in data.items() if k not in MAGIC_VARS}


def host_entries(inventory: Inventory, servers: list[Server]) -> dict[str, dict[str, JsonValue]]:
    """Host -> every variable Ansible needs: connection, vcops facts, role variables."""
    return {
        server.name: {
            **_ansible_connection(inventory, server),
            **vcops_vars(inventory, server),
            **ansible_role_vars(inventory, server),
        }
        for server in servers
    }


def render_ansible_inventory(inventory: Inventory, servers: list[Server]) -> dict[str, JsonValue]:
    """A YAML-inventory structure for ``servers``: group ``servers`` with every variable."""
    hosts: dict[str, JsonValue] = dict(host_entries(inventory, servers))
    return {"all": {"children": {"servers": {"hosts": hosts}}}}


def write_ansible_inventory(inventory: Inventory, servers: list[Server], path: Path) -> Path:
    """Write :func:`render_ansible_inventory` to ``path`` (YAML) and return it."""
    path.write_text(
        "# Ansible inventory written by vcops for one run; do not edit.\n"
        + yaml.safe_dump(render_ansible_inventory(inventory, servers), sort_keys=False, width=200)
    )
    return path


@dataclass
class AnsibleHost:
    """What ansible-playbook did (or would do, in check mode) on one host."""

    name: str
    reached: bool = False
    changed: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    diffs: dict[str, str] = field(default_factory=dict)
    recap: dict[str, int] = field(default_factory=dict)


_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_TASK = re.compile(r"^(?:TASK|RUNNING HANDLER) \[(.+?)\]\s*\**$")
_STATUS = re.compile(
    r"^(ok|changed|fatal|failed|skipping|unreachable): \[([^\]]+?)(?: -> [^\]]+)?\]"
)
_RECAP = re.compile(r"^(\S+)\s+:\s+((?:\w+=\d+\s*)+)$")


def _message(rest: str) -> str:
    """The readable part of a ``fatal: [h]: FAILED! => {...}`` payload (pure)."""
    start = rest.find("{")
    if start >= 0:
        try:
            data = json.loads(rest[start:])
        except ValueError:
            data = None
        if isinstance(data, dict):
            parts = [str(data.get("msg") or "").strip()]
            for key in ("stderr", "stdout"):
                text = str(data.get(key) or "").strip()
                if text:
                    parts.append(text.splitlines()[-1])
            return "; ".join(p for p in parts if p)[:400]
    return rest.strip()[:400]


def parse_playbook_output(text: str, names: list[str]) -> list[AnsibleHost]:
    """Per-host outcome from ansible-playbook's default output (pure).

    A host with no recap line and no task result never got connected: unreachable.
    """
    hosts = {n: AnsibleHost(n) for n in names}
    task = "?"
    pending: list[str] = []
    lines = _ANSI.sub("", text).splitlines()
    in_recap = False
    for index, line in enumerate(lines):
        header = _TASK.match(line)
        if header:
            task, pending = header[1], []
            continue
        if line.startswith("PLAY RECAP"):
            in_recap = True
            continue
        if in_recap:
            recap = _RECAP.match(line.strip())
            if recap and recap[1] in hosts:
                counts = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", recap[2])}
                host = hosts[recap[1]]
                host.recap = counts
                if counts.get("unreachable", 0):
                    if counts.get("ok", 0) or counts.get("changed", 0):
                        # connected, then lost: as serious as a failure (maybe a firewall)
                        host.failed.append("connection lost during the run")
                        host.errors.append("connection lost during the run")
                    else:
                        host.reached = False
            continue
        status = _STATUS.match(line)
        if not status or status[2] not in hosts:
            pending.append(line)
            continue
        kind, host = status[1], hosts[status[2]]
        if line[status.end() :].lstrip(": ").startswith("UNREACHABLE!"):
            kind = "unreachable"
        if kind == "unreachable":
            host.errors.append(f"{task}: {_message(line[status.end() :])}")
        elif kind in {"fatal", "failed"}:
            host.reached = True
            payload = line[status.end() :]
            # the JSON payload may continue on the following lines
            for more in lines[index + 1 :]:
                if _TASK.match(more) or _STATUS.match(more) or more.startswith(("PLAY", "...")):
                    break
                payload += "\n" + more
            if task not in host.failed and "...ignoring" not in payload:
                host.failed.append(task)
                host.errors.append(f"{task}: {_message(payload)}")
        else:
            host.reached = True
            if kind == "changed":
                if task not in host.changed:
                    host.changed.append(task)
                diff = "\n".join(p for p in pending if p.strip())
                if diff:
                    host.diffs[task] = host.diffs.get(task, "") + diff + "\n"
        pending = []
    return [hosts[n] for n in names]


def playbook_argv(
    inventory_file: Path, *, check: bool, playbook: Path = SITE_PLAYBOOK, forks: int = 20
) -> list[str]:
    """The ``ansible-playbook`` command line (the one beside this Python)."""
    argv = [
        str(Path(sys.executable).parent / "ansible-playbook"),
        "-i",
        str(inventory_file),
        str(playbook),
        "--forks",
        str(forks),
    ]
    if check:
        argv += ["--check", "--diff"]
    return argv


def assemble_roles(directory: Path, roles: Path = ROLES_DIR) -> Path:
    """The roles as Ansible runs them: each ``vcops_<area>`` role's own files (linked
    from the package) with ``templates/`` linked to ``<templates root>/<area>``.

    The templates root is :func:`vcops.paths.templates_dir`, the one the pyinfra deploys
    render from, so ``$VCOPS_TEMPLATES`` (or ``[paths] templates``) changes both engines
    at once; a wheel ships each template once, not once per engine.
    """
    directory.mkdir(parents=True, exist_ok=True)
    root = templates_dir()
    for role in sorted(p for p in roles.iterdir() if p.is_dir()):
        target = directory / role.name
        target.mkdir()
        for item in role.iterdir():
            if item.name != "templates":
                (target / item.name).symlink_to(item.resolve())
        area = root / role.name.removeprefix(ROLE_PREFIX)
        if role.name.startswith(ROLE_PREFIX) and area.is_dir():
            (target / "templates").symlink_to(area.resolve(), target_is_directory=True)
    return directory


def ansible_env(tmp: Path) -> dict[str, str]:
    """The environment ansible-playbook runs with: the config and roles shipped with vcops
    (roles assembled in ``tmp`` around the one templates root)."""
    return {
        **os.environ,
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_ROLES_PATH": str(assemble_roles(tmp / "roles")),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_STDOUT_CALLBACK": "ansible.builtin.default",
        "ANSIBLE_LOCAL_TEMP": str(tmp / "local"),
        "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp / "cp"),
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
    }


def run_ansible(
    inventory: Inventory,
    servers: list[Server],
    *,
    check: bool = False,
    playbook: Path = SITE_PLAYBOOK,
    forks: int = 20,
) -> tuple[list[AnsibleHost], float]:
    """Run ``playbook`` on ``servers``; return per-host results and ansible's wall time.

    Raises:
        CommandError: ansible-playbook could not start or printed nothing to read.
    """
    document = render_ansible_inventory(inventory, servers)
    return _run_playbook(document, [s.name for s in servers], check, playbook, forks)


def render_device_inventory(
    inventory: Inventory, devices: list[Device], mask_key_file: Path
) -> dict[str, JsonValue]:
    """Group ``devices``: each runs on the controller with this Python (vcops importable)
    and names the vcops inventory and masking key for the ``vcops_netdev`` module."""
    hosts: dict[str, JsonValue] = {
        d.name: {
            "ansible_connection": "local",
            "ansible_python_interpreter": sys.executable,
            "vcops_netdev_inventory_dir": str(inventory.root),
            "vcops_netdev_mask_key_file": str(mask_key_file),
        }
        for d in devices
    }
    return {"all": {"children": {"devices": {"hosts": hosts}}}}


def run_ansible_devices(
    inventory: Inventory, devices: list[Device], *, mask_key_file: Path, check: bool = False
) -> tuple[list[AnsibleHost], float]:
    """``deploys/network.yml`` (the ``vcops_netdev`` role) on ``devices``.

    Raises:
        CommandError: ansible-playbook could not start or printed nothing to read.
    """
    document = render_device_inventory(inventory, devices, mask_key_file)
    return _run_playbook(document, [d.name for d in devices], check, NETWORK_PLAYBOOK, 8)


def _run_playbook(
    document: dict[str, JsonValue], names: list[str], check: bool, playbook: Path, forks: int
) -> tuple[list[AnsibleHost], float]:
    with tempfile.TemporaryDirectory(prefix="vcops-ansible-") as tmp:
        inv_file = Path(tmp) / "inventory.yml"
        inv_file.write_text(
            "# Ansible inventory written by vcops for one run; do not edit.\n"
            + yaml.safe_dump(document, sort_keys=False, width=200)
        )
        argv = playbook_argv(inv_file, check=check, playbook=playbook, forks=forks)
        started = time.monotonic()
        try:
            done = subprocess.run(
                argv,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT,
                check=False,
                env=ansible_env(Path(tmp)),
                cwd=tmp,
            )
        except (OSError, subprocess.SubprocessError) as exc:
            raise CommandError(f"ansible-playbook could not run ({exc}); reinstall vcops") from exc
        seconds = time.monotonic() - started
    if "PLAY RECAP" not in done.stdout:
        last = (done.stderr.strip() or done.stdout.strip()).splitlines()[-1:] or ["no output"]
        raise CommandError(
            f"ansible-playbook exited {done.returncode} without a recap: {last[0][:300]}; "
            f"run `ansible-playbook --syntax-check {playbook}`"
        )
    return parse_playbook_output(done.stdout, names), seconds


def write_host_vars(inventory: Inventory, servers: list[Server], directory: Path) -> list[Path]:
    """One ``<host>.yml`` of every variable per server in ``directory`` (for Molecule)."""
    directory.mkdir(parents=True, exist_ok=True)
    hosts = host_entries(inventory, servers)
    paths = []
    for server in servers:
        path = directory / f"{server.name}.yml"
        path.write_text(
            "# written by vcops for Molecule; do not edit\n"
            + yaml.safe_dump(hosts[server.name], sort_keys=False, width=200)
        )
        paths.append(path)
    return paths


USAGE = "usage: python -m vcops.enforce.ansible inventory|hostvars INVENTORY_DIR OUT [LIMIT]\n"


def _main(argv: list[str]) -> int:
    """``python -m vcops.enforce.ansible inventory|hostvars DIR OUT [LIMIT]`` (Molecule).

    ``inventory`` writes one YAML inventory file, ``hostvars`` one file per host.
    """
    from vcops.errors import VcopsError
    from vcops.inventory import load_inventory
    from vcops.inventory.select import select_servers

    if len(argv) < 3 or argv[0] not in {"inventory", "hostvars"}:
        sys.stderr.write(USAGE)
        return 2
    try:
        inventory = load_inventory(Path(argv[1]))
        servers = select_servers(inventory, argv[3] if len(argv) > 3 else None)
    except VcopsError as exc:
        sys.stderr.write(f"vcops: {str(exc).splitlines()[0]}\n")
        return 2
    if argv[0] == "inventory":
        write_ansible_inventory(inventory, servers, Path(argv[2]))
    else:
        write_host_vars(inventory, servers, Path(argv[2]))
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
