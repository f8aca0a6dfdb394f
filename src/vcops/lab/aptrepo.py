"""The lab's local apt repository: the .debs the baseline installs, served to the hosts.

Lab hosts have no route out, so everything a deploy installs (fail2ban, chrony,
auditd ...) comes from a flat repository on the controller:

1. :func:`ensure_packages` (part of the image preparation) downloads, with the
   controller's ordinary apt, exactly :data:`REPO_PACKAGES` plus whatever of their
   dependencies the cached image lacks, resolved against the image's own dpkg status
   and Debian source. They are cached under ``/var/cache/vcops/debs/<key>/``, keyed by
   the image key and the package list (change either and the next run downloads again).
2. ``lab up`` copies them into ``/var/lib/vcops-lab/repo/``, writes its ``Packages``
   index (:func:`render_packages`, pure) and serves that directory read-only with a
   detached ``python3 -m http.server`` bound only to the bridge address
   (:data:`REPO_URL`); ``lab down`` stops it like every other lab process.
3. Each host's overlay gets ``/etc/apt/sources.list.d/vcops-lab.list`` pointing at it
   (``deb [trusted=yes] http://10.213.0.1:8642/ ./``) instead of the unreachable
   Debian sources.

More packages (e.g. test packages built with ``dpkg-deb``) are added to a running
lab's repository with :func:`add_debs`; hosts see them after ``apt-get update``.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path

from vcops.errors import LabError
from vcops.lab.layout import GATEWAY, STATE_DIR
from vcops.lab.system import ProcessRef, run, spawn_detached, write_file

SUITE = "bookworm"
REPO_PACKAGES: tuple[str, ...] = (
    "fail2ban",
    "python3-systemd",
    "chrony",
    "auditd",
    "unattended-upgrades",
    "kamailio-tls-modules",
    "openssl",
    "needrestart",
    "aide",
    "debsums",
    "rsyslog",
    "rsyslog-gnutls",
    "libpam-pwquality",
    "libpam-tmpdir",
    "cron",
    "acct",
    "sysstat",
)
"""What the baseline deploys install (dependencies are resolved against the image)."""

REPO_REVISION = 1
"""Bump when the download recipe changes (part of the cache key)."""

DEB_CACHE_DIR = Path("/var/cache/vcops/debs")
REPO_DIR = STATE_DIR / "repo"
REPO_PORT = 8642
REPO_URL = f"http://{GATEWAY}:{REPO_PORT}/"
REPO_LOG = STATE_DIR / "repo.log"
SOURCES_FILE = Path("etc/apt/sources.list.d/vcops-lab.list")
SOURCES_LINE = f"deb [trusted=yes] {REPO_URL} ./\n"
DEFAULT_SOURCES = (
    "# vcops lab: the Debian mirror is unreachable from lab hosts; packages come from\n"
    "# the lab's local repository (sources.list.d/vcops-lab.list).\n"
)
DOWNLOAD_TIMEOUT = 900.0

# Control fields copied from each .deb into the Packages index, in Debian's order.
_FIELDS = (
    "Package",
    "Source",
    "Version",
    "Installed-Size",
    "Maintainer",
    "Architecture",
    "Replaces",
    "Provides",
    "Depends",
    "Pre-Depends",
    "Recommends",
    "Suggests",
    "Conflicts",
    "Breaks",
    "Enhances",
    "Multi-Arch",
    "Section",
    "Priority",
    "Homepage",
    "Description",
)


def packages_key(image_key: str, packages: Iterable[str] = REPO_PACKAGES) -> str:
    """Short hash naming a package download: the image it extends and the package list.

    >>> len(packages_key("8e10cf6ae7af"))
    12
    """
    material = f"{SUITE}\n{image_key}\n{REPO_REVISION}\n" + "\n".join(sorted(packages))
    return hashlib.sha256(material.encode()).hexdigest()[:12]


def debs_dir(image: Path) -> Path:
    """Where the .debs for ``image`` (an image directory) are cached."""
    key = json.loads((image / "image.json").read_text())["key"]
    return DEB_CACHE_DIR / f"{SUITE}-{packages_key(str(key))}"


@contextlib.contextmanager
def _lock(directory: Path) -> Iterator[None]:
    directory.mkdir(parents=True, exist_ok=True)
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def apt_argv(root: Path, work: Path, mirror: str) -> list[str]:
    """``apt-get`` resolving against the image ``root`` but fetching into ``work`` (pure).

    The controller's apt runs with the image's dpkg status and keyring and a sources
    list naming only ``mirror``, so it downloads exactly what the image lacks.
    """
    return [
        "apt-get",
        "-q",
        "-y",
        "-o", f"Dir::State::status={root / 'var/lib/dpkg/status'}",
        "-o", f"Dir::State::Lists={work / 'lists'}",
        "-o", f"Dir::Cache={work / 'cache'}",
        "-o", f"Dir::Cache::Archives={work / 'archives'}",
        "-o", f"Dir::Etc::SourceList={work / 'sources.list'}",
        "-o", f"Dir::Etc::SourceParts={work / 'empty'}",
        "-o", "Dir::Etc::Trusted=/nonexistent",
        "-o", f"Dir::Etc::TrustedParts={root / 'etc/apt/trusted.gpg.d'}",
        "-o", "Dir::Etc::Preferences=/nonexistent",
        "-o", f"Dir::Etc::PreferencesParts={work / 'empty'}",
        "-o", "Debug::NoLocking=1",
        "-o", "APT::Sandbox::User=root",
        "-o", "APT::Install-Recommends=0",
    ]  # fmt: skip


def ensure_packages(image: Path, on_step: Callable[[str], None]) -> Path:
    """Return the cached .deb directory for ``image``, downloading it first if missing.

    Raises:
        LabError: apt could not resolve or download the packages.
    """
    final = debs_dir(image)
    if (final / "debs.json").is_file():
        return final
    with _lock(DEB_CACHE_DIR):
        if (final / "debs.json").is_file():
            return final
        work = DEB_CACHE_DIR / f".build-{final.name}-{os.getpid()}"
        shutil.rmtree(work, ignore_errors=True)
        try:
            _download(image, work, on_step)
            shutil.rmtree(final, ignore_errors=True)
            (work / "archives").rename(final)
            shutil.rmtree(work, ignore_errors=True)
        except BaseException:
            shutil.rmtree(work, ignore_errors=True)
            raise
    return final


def _download(image: Path, work: Path, on_step: Callable[[str], None]) -> None:
    meta = json.loads((image / "image.json").read_text())
    mirror = str(meta.get("mirror") or "http://deb.debian.org/debian")
    root = image / "rootfs"
    for sub in ("lists/partial", "cache", "archives/partial", "empty"):
        (work / sub).mkdir(parents=True, exist_ok=True)
    write_file(work / "sources.list", f"deb {mirror} {SUITE} main\n")
    on_step(f"downloading the baseline's packages for the lab repository from {mirror}")
    started = time.monotonic()
    argv = apt_argv(root, work, mirror)
    fix = "check that the controller reaches the Debian mirror"
    run([*argv, "update"], what=f"read the package index of {mirror}", fix=fix, timeout=300)
    run(
        [*argv, "install", "--download-only", *REPO_PACKAGES],
        what="download the lab repository's packages",
        fix=fix,
        timeout=DOWNLOAD_TIMEOUT,
    )
    shutil.rmtree(work / "archives/partial", ignore_errors=True)
    (work / "archives/lock").unlink(missing_ok=True)
    debs = sorted(p.name for p in (work / "archives").glob("*.deb"))
    if not debs:
        raise LabError(f"apt downloaded no packages into {work}; {fix}")
    info = {
        "packages": list(REPO_PACKAGES),
        "image": meta.get("key"),
        "mirror": mirror,
        "debs": debs,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_file(work / "archives/debs.json", json.dumps(info, indent=2) + "\n")
    on_step(f"downloaded {len(debs)} packages in {info['seconds']} s")


def parse_control(text: str) -> dict[str, str]:
    """A deb822 control stanza as a dict, continuation lines kept (pure).

    >>> parse_control("Package: a\\nDescription: x\\n more\\n")["Description"]
    'x\\n more'
    """
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line[:1] in {" ", "\t"} and key:
            fields[key] += "\n" + line
        elif ":" in line:
            key, _, value = line.partition(":")
            fields[key] = value.strip()
    return fields


def render_packages(entries: Mapping[str, tuple[dict[str, str], int, str, str]]) -> str:
    """The flat repository's ``Packages`` index (pure).

    Args:
        entries: file name -> (control fields, size, md5, sha256).
    """
    stanzas = []
    for name in sorted(entries):
        control, size, md5, sha256 = entries[name]
        lines = [f"{k}: {control[k]}" for k in _FIELDS if k in control and k != "Description"]
        lines += [f"Filename: ./{name}", f"Size: {size}", f"MD5sum: {md5}", f"SHA256: {sha256}"]
        if "Description" in control:
            lines.append(f"Description: {control['Description']}")
        stanzas.append("\n".join(lines) + "\n")
    return "\n".join(stanzas)


def _index_entry(deb: Path) -> tuple[dict[str, str], int, str, str]:
    control = run(["dpkg-deb", "-f", str(deb)], what=f"read the control fields of {deb}")
    data = deb.read_bytes()
    return (
        parse_control(control),
        len(data),
        hashlib.md5(data, usedforsecurity=False).hexdigest(),
        hashlib.sha256(data).hexdigest(),
    )


def write_index(repo: Path) -> int:
    """(Re)write ``Packages`` for every .deb in ``repo``; return how many it lists."""
    entries = {deb.name: _index_entry(deb) for deb in sorted(repo.glob("*.deb"))}
    index = repo / "Packages"
    before = int(index.stat().st_mtime) if index.exists() else None
    write_file(index, render_packages(entries))
    if before is not None and int(index.stat().st_mtime) <= before:
        # http.server answers If-Modified-Since to the second: an index rewritten within
        # the second a host last fetched it would be "304 Not Modified" to apt-get update,
        # and the host would never see the new packages.
        os.utime(index, (before + 1, before + 1))
    return len(entries)


def populate_repo(debs: Path, repo: Path = REPO_DIR) -> int:
    """Copy the cached .debs into the served directory and index them."""
    repo.mkdir(parents=True, exist_ok=True)
    for deb in debs.glob("*.deb"):
        target = repo / deb.name
        if not target.exists():
            shutil.copyfile(deb, target)
    return write_index(repo)


def add_debs(paths: Iterable[Path], repo: Path = REPO_DIR) -> list[str]:
    """Add .deb files to the running lab's repository and re-index it.

    Hosts see them after ``apt-get update``. Returns the file names added.

    Raises:
        LabError: no lab repository here, or a file is not a readable .deb.
    """
    if not (repo / "Packages").is_file():
        raise LabError(f"no lab repository at {repo}; run `vcops lab up` first")
    added = []
    for path in paths:
        if path.suffix != ".deb" or not path.is_file():
            raise LabError(f"{path}: not a .deb file; build it with dpkg-deb --build")
        shutil.copyfile(path, repo / path.name)
        added.append(path.name)
    write_index(repo)
    return added


def repo_argv(repo: Path = REPO_DIR) -> list[str]:
    """The read-only HTTP server for ``repo``, bound only to the bridge address."""
    return [
        sys.executable,
        "-m",
        "http.server",
        str(REPO_PORT),
        "--bind",
        str(GATEWAY),
        "--directory",
        str(repo),
    ]


def start_repo_server(repo: Path = REPO_DIR) -> ProcessRef:
    """Serve ``repo`` detached (the bridge must already carry :data:`GATEWAY`).

    Raises:
        LabError: the server cannot be started.
    """
    return spawn_detached(repo_argv(repo), log=REPO_LOG)


def is_repo_server(argv: list[str]) -> bool:
    """Whether a command line is the lab's repository server (for teardown)."""
    return "http.server" in argv and str(REPO_DIR) in argv


def point_apt_at_repo(root: Path) -> None:
    """Make a host's apt use the lab repository only (in its mounted overlay root)."""
    write_file(root / "etc/apt/sources.list", DEFAULT_SOURCES)
    for name in ("debian.sources",):
        (root / "etc/apt/sources.list.d" / name).unlink(missing_ok=True)
    write_file(root / SOURCES_FILE, SOURCES_LINE)
