"""Run the Ansible baseline (``deploys/site.yml`` and the ``vcops_*`` roles) and read it.

The inventory handed to ``ansible-playbook`` is written fresh for each run, like the
pyinfra one: the connection settings of ``vcops inventory export --format ansible``
(the inventory's pinned ``known_hosts`` with strict checking, so root's own
``~/.ssh/known_hosts`` is never read or written), the engine-neutral ``vcops_*``
facts, and the role variables of :func:`vcops.enforce.vars.role_vars`. The vcops
inventory plugin (``plugins/inventory/vcops.py``) adds the same role variables
through :func:`ansible_role_vars`, so a by-hand ``ansible-playbook deploys/site.yml``
enforces the same values.

Playbooks run through ansible-runner and results are read from its per-host events
(:mod:`vcops.enforce.ansible_events`), with forks sized to the hosts of the run. The
server baseline runs with Mitogen's ``mitogen_linear`` strategy unless the inventory's
``settings.ansible.strategy`` is ``linear`` (:func:`strategy_env`).
"""

from __future__ import annotations

import sys
import tempfile
from importlib.util import find_spec
from pathlib import Path

import yaml

from vcops.enforce.ansible_events import AnsibleHost, Masker, keep_text, run_playbook
from vcops.enforce.apply_models import QUIET, Progress
from vcops.enforce.pyinfra_run import controller_address
from vcops.enforce.vars import role_vars
from vcops.errors import CommandError
from vcops.inventory.export import JsonValue, _ansible_connection, vcops_vars
from vcops.inventory.models import Device, Inventory, Server, Strategy
from vcops.paths import ansible_cfg, deploys_dir, roles_dir, share_dir, templates_dir

SITE_PLAYBOOK = deploys_dir() / "site.yml"
NETWORK_PLAYBOOK = deploys_dir() / "network.yml"
ROLES_DIR = roles_dir()
ANSIBLE_CFG = ansible_cfg()
ROLE_PREFIX = "vcops_"
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


def strategy_env(strategy: Strategy) -> dict[str, str]:
    """The environment that selects the play's strategy: for ``mitogen``,
    ``mitogen_linear`` from the plugins vcops ships (``plugins/strategy``, the same
    path Molecule's scenario names; the plugin is Mitogen's own strategy class);
    nothing for ``linear`` (Ansible's default).

    Raises:
        CommandError: ``mitogen`` is asked for and the package is not installed.
    """
    if strategy == "linear":
        return {}
    if find_spec("ansible_mitogen") is None:
        raise CommandError(
            "settings.ansible.strategy is mitogen but the mitogen package is not "
            "installed: pip install 'mitogen>=0.3.54,<0.4', or set "
            "settings.ansible.strategy: linear in the inventory"
        )
    plugins = share_dir() / "plugins" / "strategy"
    return {"ANSIBLE_STRATEGY_PLUGINS": str(plugins), "ANSIBLE_STRATEGY": "mitogen_linear"}


def ansible_env(tmp: Path, strategy: Strategy = "linear") -> dict[str, str]:
    """What ansible-playbook runs with on top of this process's environment: the config
    and roles shipped with vcops (roles assembled in ``tmp`` around the one templates
    root), strict host keys, nothing written outside ``tmp``, the play's strategy
    (:func:`strategy_env`). ansible-runner sets the callback that turns results into
    events."""
    return {
        **strategy_env(strategy),
        "ANSIBLE_CONFIG": str(ANSIBLE_CFG),
        "ANSIBLE_ROLES_PATH": str(assemble_roles(tmp / "roles")),
        "ANSIBLE_LIBRARY": str(share_dir() / "plugins" / "modules"),
        "ANSIBLE_HOST_KEY_CHECKING": "True",
        "ANSIBLE_NOCOLOR": "1",
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
    mask: Masker | None = None,
    progress: Progress = QUIET,
) -> tuple[list[AnsibleHost], float]:
    """Run ``playbook`` on ``servers``; return per-host results and ansible's wall time
    (diffs with their secrets masked by ``mask``; ``progress`` hears of each task and
    each host's end).

    Raises:
        CommandError: ansible-playbook could not start or ended without results.
    """
    document = render_ansible_inventory(inventory, servers)
    names = [s.name for s in servers]
    strategy = inventory.settings.ansible.strategy
    return _run_playbook(document, names, check, playbook, forks, mask, progress, strategy)


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
    """``deploys/network.yml`` (the ``vcops_netdev`` role) on ``devices``, with
    Ansible's own strategy: the module runs on the controller (``local``), where
    Mitogen saves no connection.

    Raises:
        CommandError: ansible-playbook could not start or ended without results.
    """
    document = render_device_inventory(inventory, devices, mask_key_file)
    return _run_playbook(document, [d.name for d in devices], check, NETWORK_PLAYBOOK, 8)


def _run_playbook(
    document: dict[str, JsonValue],
    names: list[str],
    check: bool,
    playbook: Path,
    forks: int,
    mask: Masker | None = None,
    progress: Progress = QUIET,
    strategy: Strategy = "linear",
) -> tuple[list[AnsibleHost], float]:
    with tempfile.TemporaryDirectory(prefix="vcops-roles-") as tmp:
        return run_playbook(
            document,
            names,
            playbook=playbook,
            check=check,
            forks=min(forks, max(1, len(names))),
            envvars=ansible_env(Path(tmp), strategy),
            mask=mask or keep_text,
            progress=progress,
        )


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
