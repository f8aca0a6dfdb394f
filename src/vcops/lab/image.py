"""The cached Debian 12 root filesystem every lab host boots from (read-only lower layer).

Built once with ``debootstrap --variant=minbase`` into a temporary directory, made
host-neutral (empty machine-id, no SSH host keys, neutral hostname and resolv.conf),
then renamed into ``/var/cache/vcops/images/bookworm-<key>/``, so an interrupted build
never leaves a half image behind. The key hashes the suite, :data:`IMAGE_PACKAGES` and
:data:`IMAGE_REVISION`: change either and the next ``lab up`` builds a new image.

Layout of an image directory::

    bookworm-1a2b3c4d5e6f/
        rootfs/          the root filesystem
        image.json       key, packages, mirror, build seconds
        debootstrap.log
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from vcops.errors import LabError
from vcops.lab.aptrepo import ensure_packages
from vcops.lab.layout import IMAGE_CACHE_DIR
from vcops.lab.system import cmdline, is_running, mounts_under, run, tail, write_file

SUITE = "bookworm"
FALLBACK_MIRROR = "http://deb.debian.org/debian"

IMAGE_PACKAGES: tuple[str, ...] = (
    "openssh-server",
    "python3",
    "iproute2",
    "sudo",
    "systemd",
    "systemd-sysv",
    "dbus",
    "libpam-systemd",
    "nftables",
    "kamailio",
    "ca-certificates",
    "procps",
)
"""Packages installed into the image on top of minbase (part of the cache key)."""

IMAGE_REVISION = 1
"""Version of :func:`customise_image`; bump it whenever the customisation changes."""

BUILD_TIMEOUT = 1800.0
PID_FILE = "debootstrap.pid"
APT_SOURCES = Path("/etc/apt/sources.list")
APT_SOURCES_DIR = Path("/etc/apt/sources.list.d")

NEUTRAL_HOSTNAME = "localhost"
RESOLV_CONF = "# vcops lab: hosts have no route out and no resolver.\nnameserver 127.0.0.1\n"


def image_key(packages: tuple[str, ...] = IMAGE_PACKAGES, revision: int = IMAGE_REVISION) -> str:
    """Short hash naming an image: suite, sorted package list and customisation revision.

    >>> len(image_key())
    12
    """
    material = f"{SUITE}\n{revision}\n" + "\n".join(sorted(packages))
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def image_dir(key: str | None = None) -> Path:
    """Where the image with ``key`` (default: the current one) is cached."""
    return IMAGE_CACHE_DIR / f"{SUITE}-{key or image_key()}"


def rootfs(image: Path) -> Path:
    """The root filesystem inside an image directory."""
    return image / "rootfs"


def parse_mirror(sources: dict[str, str], suite: str = SUITE) -> str | None:
    """The first Debian mirror serving ``suite`` in APT source files (pure).

    Understands deb822 ``.sources`` stanzas (``URIs:`` with ``Suites:``) and one-line
    ``deb [options] URI suite components`` entries; ignores ``Enabled: no`` stanzas,
    ``deb-src`` and other suites (``bookworm-security`` is not ``bookworm``).

    Args:
        sources: file name -> file content.

    >>> parse_mirror({"debian.sources": "Types: deb\\nURIs: http://m/debian\\n"
    ...               "Suites: bookworm bookworm-updates\\nComponents: main\\n"})
    'http://m/debian'
    >>> parse_mirror({"x.list": "deb [arch=amd64] http://n/debian bookworm main"})
    'http://n/debian'
    """
    for name in sorted(sources):
        text = sources[name]
        if name.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields = _deb822_fields(stanza)
                if (
                    "deb" in fields.get("types", "").split()
                    and suite in fields.get("suites", "").split()
                    and fields.get("enabled", "yes").lower() != "no"
                    and fields.get("uris")
                ):
                    return fields["uris"].split()[0]
        else:
            for line in text.splitlines():
                words = re.sub(r"\[[^\]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb" and words[2] == suite:
                    return words[1]
    return None


def _deb822_fields(stanza: str) -> dict[str, str]:
    """Fields of one deb822 stanza, keys lower-cased, comments dropped."""
    fields: dict[str, str] = {}
    key = ""
    for line in stanza.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        if line[0].isspace() and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
    return fields


def find_mirror() -> str:
    """The Debian mirror this machine's APT uses, or :data:`FALLBACK_MIRROR`."""
    sources: dict[str, str] = {}
    candidates = [APT_SOURCES]
    with contextlib.suppress(OSError):
        candidates += sorted(APT_SOURCES_DIR.iterdir())
    for path in candidates:
        if path.suffix in (".list", ".sources") and path.is_file():
            with contextlib.suppress(OSError):
                sources[path.name] = path.read_text()
    mirror = parse_mirror(sources)
    if mirror and mirror.startswith(("http://", "https://", "file:")):
        return mirror
    return FALLBACK_MIRROR


@contextlib.contextmanager
def _cache_lock() -> Iterator[None]:
    """Hold an exclusive lock on the image cache (one build at a time)."""
    IMAGE_CACHE_DIR.mkdir(parents=True, exist_ok=True)
    fd = os.open(IMAGE_CACHE_DIR / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def ensure_image(on_step: Callable[[str], None]) -> Path:
    """Return the cached image directory, building it first if it is not there yet.

    Also makes sure the packages of the lab's apt repository are downloaded for it
    (see :mod:`vcops.lab.aptrepo`), so a fresh machine prepares both in one step.

    Raises:
        LabError: debootstrap or apt failed, or the cache cannot be written.
    """
    final = _ensure_rootfs(on_step)
    ensure_packages(final, on_step)
    return final


def _ensure_rootfs(on_step: Callable[[str], None]) -> Path:
    final = image_dir()
    if (final / "image.json").is_file():
        return final
    with _cache_lock():
        if (final / "image.json").is_file():
            return final
        _remove_stale_builds()
        build = IMAGE_CACHE_DIR / f".build-{final.name}-{os.getpid()}"
        try:
            _build(build, on_step)
            build.rename(final)
        except BaseException:
            _remove_build_dir(build)
            raise
    return final


def _build(build: Path, on_step: Callable[[str], None]) -> None:
    """debootstrap + customise into ``build`` (a temporary directory)."""
    mirror = find_mirror()
    root = rootfs(build)
    root.mkdir(parents=True)
    log = build / "debootstrap.log"
    on_step(f"building the lab image from {mirror} (about a minute, once)")
    started = time.monotonic()
    argv = [
        "debootstrap",
        "--variant=minbase",
        f"--include={','.join(IMAGE_PACKAGES)}",
        SUITE,
        str(root),
        mirror,
    ]
    try:
        returncode = _run_debootstrap(argv, log)
    except subprocess.TimeoutExpired as exc:
        raise LabError(
            f"debootstrap took over {BUILD_TIMEOUT:.0f} s building the lab image from {mirror}; "
            f"check the mirror is reachable (log: {_keep_failed_log(log)})"
        ) from exc
    if returncode != 0:
        raise LabError(
            f"debootstrap failed (exit {returncode}) building the lab image from {mirror}; "
            f"check the mirror is reachable (log: {_keep_failed_log(log)}). "
            f"Its last lines:\n{tail(log)}"
        )
    customise_image(root)
    seconds = time.monotonic() - started
    meta = {
        "key": image_key(),
        "suite": SUITE,
        "packages": list(IMAGE_PACKAGES),
        "revision": IMAGE_REVISION,
        "mirror": mirror,
        "build_seconds": round(seconds, 1),
        "built_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    write_file(build / "image.json", json.dumps(meta, indent=2) + "\n")
    on_step(f"built the lab image in {seconds:.0f} s")


def _run_debootstrap(argv: list[str], log: Path) -> int:
    """Run debootstrap in its own process group; kill the whole group if interrupted.

    Raises:
        LabError: debootstrap is not installed.
        subprocess.TimeoutExpired: it ran longer than :data:`BUILD_TIMEOUT`.
    """
    with log.open("wb") as out:
        try:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        except FileNotFoundError as exc:
            raise LabError(
                "debootstrap is not installed: apt-get install debootstrap systemd-container"
            ) from exc
        write_file(log.with_name(PID_FILE), f"{proc.pid}\n")
        try:
            return proc.wait(timeout=BUILD_TIMEOUT)
        except BaseException:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            raise


def _keep_failed_log(log: Path) -> Path:
    """Copy a failed build's log out of the build directory (which gets deleted)."""
    kept = IMAGE_CACHE_DIR / "failed-build.log"
    with contextlib.suppress(OSError):
        shutil.copyfile(log, kept)
    return kept


def customise_image(root: Path) -> None:
    """Make a fresh debootstrap tree host-neutral; everything else stays stock.

    - ``/etc/machine-id`` empty and ``/var/lib/dbus/machine-id`` a link to it, so each
      host gets the id written for it (see :mod:`vcops.lab.hosts`);
    - SSH host keys removed (each host gets its own, pinned before boot);
    - hostname and resolv.conf, copied from the controller by debootstrap, replaced.

    Services are left as the packages install them (sshd and kamailio enabled).
    """
    write_file(root / "etc/machine-id", "", 0o444)
    dbus_id = root / "var/lib/dbus/machine-id"
    dbus_id.parent.mkdir(parents=True, exist_ok=True)
    if dbus_id.is_symlink() or dbus_id.exists():
        dbus_id.unlink()
    dbus_id.symlink_to("/etc/machine-id")
    for key in (root / "etc/ssh").glob("ssh_host_*"):
        key.unlink()
    write_file(root / "etc/hostname", NEUTRAL_HOSTNAME + "\n")
    write_file(root / "etc/resolv.conf", RESOLV_CONF)


def _remove_stale_builds() -> None:
    """Delete build directories left by interrupted builds (caller holds the lock).

    If the builder was killed outright, its debootstrap (own process group, pid in
    ``debootstrap.pid``) may still be running into the directory: that group goes first.
    """
    for stale in IMAGE_CACHE_DIR.glob(".build-*"):
        _kill_orphaned_debootstrap(stale)
        _remove_build_dir(stale)


def _kill_orphaned_debootstrap(build: Path) -> None:
    try:
        pid = int((build / PID_FILE).read_text())
    except (OSError, ValueError):
        return
    if not any(str(build) in arg for arg in cmdline(pid)):
        return
    with contextlib.suppress(ProcessLookupError):
        os.killpg(pid, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while is_running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)


def _remove_build_dir(build: Path) -> None:
    """Unmount whatever debootstrap left mounted inside ``build``, then delete it.

    Raises:
        LabError: something stays mounted inside (deleting would reach into it).
    """
    for target in mounts_under(build):
        run(["umount", str(target)], what=f"unmount {target} left by an interrupted build")
    if mounts_under(build):
        raise LabError(f"{build} still has mounts inside; unmount them and retry")
    shutil.rmtree(build, ignore_errors=True)
