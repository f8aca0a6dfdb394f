"""Lab hosts: an overlay over the cached image, personalised, booted by systemd-nspawn.

Per host, under ``/var/lib/vcops-lab/hosts/<name>/``::

    upper/  work/   overlayfs upper and work directories (the host's own changes)
    host-keys/      its SSH host keys, generated before the overlay is mounted
    root/           the merged root the container boots from
    nspawn.log      console and nspawn messages (its tail is shown when a boot fails)

Before boot the host gets its own machine-id, hostname, /etc/hosts, SSH host keys
(generated here so ``known_hosts`` is pinned before the host ever answers), the lab
key in root's authorized_keys, a ``vcops`` user with the lab key and a sudo rule (the
login a real fleet gives vcops) and its role's stock config files. Its address is set
from outside on the namespace's ``eth0``; no network manager runs inside.
"""

from __future__ import annotations

import os
import uuid
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

from vcops.errors import LabError
from vcops.lab.aptrepo import point_apt_at_repo
from vcops.lab.cgroups import joiner
from vcops.lab.layout import HOSTS_DIR, LAB_USER, machine_name
from vcops.lab.network import netns_path
from vcops.lab.plan import HostSpec
from vcops.lab.state import HostState
from vcops.lab.system import ProcessRef, run, spawn_detached, write_file

KAMAILIO_WANTS = Path("etc/systemd/system/multi-user.target.wants/kamailio.service")
ROLE_FILE_MODE = 0o640
"""Mode of role config files: Asterisk and FreeSWITCH keep secrets in theirs."""

HOST_KEY_TYPES: tuple[str, ...] = ("rsa", "ecdsa", "ed25519")
"""Host key types every host gets, like a stock Debian install."""
PINNED_KEY_TYPE = "ed25519"
"""The host key written to known_hosts (OpenSSH and Paramiko prefer a pinned type)."""

NSPAWN_ENV = {"SYSTEMD_NSPAWN_API_VFS_WRITABLE": "network"}


def new_host_state(spec: HostSpec) -> HostState:
    """Where ``spec``'s files go and what it will be called; nothing is created yet."""
    base = HOSTS_DIR / spec.name
    return HostState(
        name=spec.name,
        role=spec.role,
        address=str(spec.address),
        roles=[spec.role],
        netns=spec.netns,
        veth=spec.veth,
        root=base / "root",
        upper=base / "upper",
        work=base / "work",
        log=base / "nspawn.log",
        machine_id=uuid.uuid4().hex,
    )


def mount_overlay(host: HostState, lower: Path) -> None:
    """Mount the host's overlay (image below, its own upper dir above) on ``host.root``.

    Raises:
        LabError: the mount failed.
    """
    for directory in (host.upper, host.work, host.root):
        directory.mkdir(parents=True, exist_ok=True)
    options = f"lowerdir={lower},upperdir={host.upper},workdir={host.work}"
    run(
        ["mount", "-t", "overlay", "overlay", "-o", options, str(host.root)],
        what=f"mount the root of {host.name}",
        fix="check that the overlay module is loaded (modprobe overlay)",
    )


def host_keys_dir(host: HostState) -> Path:
    """Where a host's SSH host keys are generated before its root is mounted."""
    return host.root.parent / "host-keys"


def generate_host_keys(host: HostState) -> None:
    """Generate the host's own rsa, ecdsa and ed25519 host keys, as Debian's postinst does.

    Done on the controller, before boot, so ``known_hosts`` is pinned before the host
    ever answers. Slow for RSA (about a second), so callers run hosts in parallel.

    Raises:
        LabError: ssh-keygen failed.
    """
    directory = host_keys_dir(host)
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    for kind in HOST_KEY_TYPES:
        key = directory / f"ssh_host_{kind}_key"
        for old in (key, key.with_name(key.name + ".pub")):
            old.unlink(missing_ok=True)
        run(
            ["ssh-keygen", "-q", "-t", kind, "-N", "", "-C", f"root@{host.name}", "-f", str(key)],
            what=f"generate the SSH {kind} host key of {host.name}",
            fix="apt-get install openssh-client",
        )


def personalise(host: HostState, authorized_key: str, kamailio_enabled: bool) -> str:
    """Write everything that makes the mounted root this host; return its pinned host key.

    Args:
        host: the host (its overlay mounted, its keys made by :func:`generate_host_keys`).
        authorized_key: public key line allowed to log in as root.
        kamailio_enabled: leave Kamailio enabled (roles that run it: kamailio, sbc) or disable it.

    Returns:
        The host's public ed25519 key, ``ssh-ed25519 AAAA...`` (the one to pin).

    Raises:
        LabError: a file cannot be written.
    """
    root = host.root
    write_file(root / "etc/machine-id", host.machine_id + "\n", 0o444)
    write_file(root / "etc/hostname", host.name + "\n")
    write_file(root / "etc/hosts", _etc_hosts(host.name))
    ssh_dir = root / "root/.ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    os.chmod(ssh_dir, 0o700)
    write_file(ssh_dir / "authorized_keys", authorized_key.strip() + "\n", 0o600)
    add_management_user(root, authorized_key)
    if not kamailio_enabled:
        (root / KAMAILIO_WANTS).unlink(missing_ok=True)
    copy_role_files(host.role, root)
    point_apt_at_repo(root)
    for key in sorted(host_keys_dir(host).glob("ssh_host_*")):
        mode = 0o644 if key.suffix == ".pub" else 0o600
        write_file(root / "etc/ssh" / key.name, key.read_text(), mode)
    pinned = host_keys_dir(host) / f"ssh_host_{PINNED_KEY_TYPE}_key.pub"
    return " ".join(pinned.read_text().split()[:2])


def add_management_user(root: Path, authorized_key: str, user: str = LAB_USER) -> None:
    """The unprivileged login a real fleet gives vcops: ``user`` with the lab key and a
    sudo rule (``/etc/sudoers.d/vcops``, the file the baseline then manages).

    Raises:
        LabError: useradd failed or a file cannot be written.
    """
    passwd = (root / "etc/passwd").read_text()
    if not any(line.split(":", 1)[0] == user for line in passwd.splitlines()):
        run(
            ["useradd", "--root", str(root), "--create-home", "--user-group",
             "--shell", "/bin/bash", "--comment", "vcops management login", user],
            what=f"add the user {user} to {root}",
            fix="apt-get install passwd",
        )  # fmt: skip
    entry = next(
        line.split(":")
        for line in (root / "etc/passwd").read_text().splitlines()
        if line.split(":", 1)[0] == user
    )
    uid, gid, home = int(entry[2]), int(entry[3]), entry[5]
    ssh_dir = root / home.lstrip("/") / ".ssh"
    ssh_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
    keys = ssh_dir / "authorized_keys"
    write_file(keys, authorized_key.strip() + "\n", 0o600)
    for path in (ssh_dir, keys):
        os.chown(path, uid, gid)
    write_file(root / "etc/sudoers.d/vcops", f"{user} ALL=(root) NOPASSWD: ALL\n", 0o440)


def _etc_hosts(name: str) -> str:
    """Debian's stock /etc/hosts for a machine called ``name``."""
    return (
        "127.0.0.1\tlocalhost\n"
        f"127.0.1.1\t{name}\n"
        "\n"
        "# The following lines are desirable for IPv6 capable hosts\n"
        "::1     localhost ip6-localhost ip6-loopback\n"
        "ff02::1 ip6-allnodes\n"
        "ff02::2 ip6-allrouters\n"
    )


def role_files(role: str) -> dict[str, bytes]:
    """The stock config files a role's hosts carry: absolute path -> content.

    They ship as package data under ``vcops/lab/files/<role>/<absolute path>``.
    """
    base = resources.files("vcops.lab").joinpath("files", role)
    found: dict[str, bytes] = {}
    if base.is_dir():
        _collect(base, "", found)
    return found


def _collect(node: Traversable, prefix: str, found: dict[str, bytes]) -> None:
    for child in node.iterdir():
        path = f"{prefix}/{child.name}"
        if child.is_dir():
            _collect(child, path, found)
        elif not child.name.endswith((".pyc", "~")):
            found[path] = child.read_bytes()


def copy_role_files(role: str, root: Path) -> None:
    """Copy the role's stock config files into the mounted root."""
    for path, content in sorted(role_files(role).items()):
        target = root / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.unlink(missing_ok=True)
        fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, ROLE_FILE_MODE)
        with os.fdopen(fd, "wb") as out:
            out.write(content)


def nspawn_argv(host: HostState) -> list[str]:
    """The systemd-nspawn command booting ``host`` (see DESIGN.md, "The lab")."""
    return [
        "systemd-nspawn",
        "--boot",
        f"--directory={host.root}",
        f"--machine={machine_name(host.name)}",
        f"--hostname={host.name}",
        f"--network-namespace-path={netns_path(host.netns)}",
        "--register=no",
        "--keep-unit",
        "--capability=CAP_NET_ADMIN",
        "--console=read-only",
        "--link-journal=no",
        "--resolv-conf=off",
        "--timezone=off",
    ]


REBOOT_EXIT = 133
"""systemd-nspawn's exit status when the container asked to reboot."""

BOOT_LOOP = (
    'trap \'kill -TERM "$child" 2>/dev/null; wait "$child"; exit 0\' TERM INT\n'
    "while :; do\n"
    '  "$@" & child=$!\n'
    '  wait "$child"; rc=$?\n'
    f'  [ "$rc" -eq {REBOOT_EXIT} ] || exit "$rc"\n'
    "done\n"
)
"""Boot the container again when it reboots (as ``systemd-nspawn@.service`` does with
``RestartForceExitStatus=133``); a TERM is passed on to nspawn, which powers it off."""


def boot_loop_argv(host: HostState) -> list[str]:
    """``sh -c BOOT_LOOP`` around :func:`nspawn_argv`: a lab host survives ``reboot``."""
    return ["/bin/sh", "-c", BOOT_LOOP, "vcops-lab-host", *nspawn_argv(host)]


def start_host(host: HostState) -> ProcessRef:
    """Boot ``host`` detached, from its own cgroups (``host.cgroups``, already created);
    it boots again after a reboot from inside.

    Raises:
        LabError: systemd-nspawn could not be started.
    """
    env = {k: v for k, v in os.environ.items() if k != "NOTIFY_SOCKET"}
    env.update(NSPAWN_ENV)
    if not host.cgroups:
        raise LabError(f"{host.name}: no cgroup to start in (internal error)")
    return spawn_detached(
        boot_loop_argv(host), log=host.log, env=env, before_exec=joiner(host.cgroups)
    )


def host_name_from_root(arg: str) -> str | None:
    """The host a ``--directory=`` argument of a lab nspawn belongs to, if any.

    >>> host_name_from_root("--directory=/var/lib/vcops-lab/hosts/lab-sbc-01/root")
    'lab-sbc-01'
    """
    path = Path(arg.split("=", 1)[-1])
    if path.name == "root" and path.parent.parent == HOSTS_DIR:
        return path.parent.name
    return None
