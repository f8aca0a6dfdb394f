"""Managed files and the live host as the ``state`` helper reports them (pure data):
what :mod:`vcops.enforce.render` produces, what the engines and ``apply --check``
compare."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True)
class ManagedFile:
    """One file vcops owns on a host, as it should be.

    ``validate`` is an argument list run on the host against the candidate (``%s``)
    or against a copy of ``copy_dir`` holding the candidate (``%d``) before the live
    file is replaced.
    """

    area: str
    path: str
    content: str
    mode: str = "0644"
    owner: str = "root"
    group: str = "root"
    validate: tuple[str, ...] | None = None
    copy_dir: str | None = None
    secrets: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class LiveFile:
    """A file as the host reported it (secret values already masked)."""

    exists: bool
    content: str | None = None
    mode: str | None = None
    owner: str | None = None
    group: str | None = None


@dataclass(frozen=True)
class HostState:
    """What the host's ``state`` helper reported: files, dirs, probes.

    Example: ``HostState(files={"/etc/nftables.conf": LiveFile(True, "...", "0644",
    "root", "root")}, probes={"ssh_kex": "curve25519-sha256\\n..."}, groups={"kamailio"})``
    """

    files: dict[str, LiveFile] = field(default_factory=dict)
    exists: dict[str, bool] = field(default_factory=dict)
    dirs: dict[str, dict[str, object]] = field(default_factory=dict)
    probes: dict[str, str] = field(default_factory=dict)
    groups: frozenset[str] = frozenset()
    in_container: bool = False
    packages: frozenset[str] = frozenset()


def parse_state(data: Mapping[str, object]) -> HostState:
    """Turn the helper's JSON into a :class:`HostState` (pure)."""
    files: dict[str, LiveFile] = {}
    raw_files = data.get("files") or {}
    assert isinstance(raw_files, dict)
    for path, info in raw_files.items():
        files[path] = LiveFile(
            exists=bool(info.get("exists")),
            content=info.get("content"),
            mode=info.get("mode"),
            owner=info.get("owner"),
            group=info.get("group"),
        )
    probes_raw = data.get("probes") or {}
    assert isinstance(probes_raw, dict)
    probes = {k: str(v.get("out", "")) for k, v in probes_raw.items()}
    groups = frozenset(
        line.split(":", 1)[0] for line in probes_raw.get("groups", {}).get("out", "").splitlines()
    )
    virt = probes_raw.get("virt", {})
    packages = frozenset(
        line.split()[0]
        for line in probes.get("packages", "").splitlines()
        if line.split()[1:2] == ["ii"]
    )
    exists = data.get("exists") or {}
    dirs = data.get("dirs") or {}
    assert isinstance(exists, dict) and isinstance(dirs, dict)
    return HostState(
        files=files,
        exists={str(k): bool(v) for k, v in exists.items()},
        dirs={str(k): dict(v) for k, v in dirs.items()},
        probes=probes,
        groups=groups,
        in_container=virt.get("rc") == 0 and virt.get("out", "").strip() not in {"", "none"},
        packages=packages,
    )


def file_changed(want: ManagedFile, live: LiveFile | None) -> bool:
    """Whether the live file differs in content, mode, owner or group (pure)."""
    if live is None or not live.exists:
        return True
    return (live.content, live.mode, live.owner, live.group) != (
        want.content,
        want.mode,
        want.owner,
        want.group,
    )
