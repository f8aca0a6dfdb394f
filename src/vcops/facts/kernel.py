"""Kernel-area facts: sysctl, modprobe, limits and coredump config files as the
kernel, kmod, pam_limits and systemd read them (pure parsers).

``gather.sh`` prints the lines of every candidate config file prefixed with its path
(ONE ``grep -H ''`` over the directories' ``*.conf`` globs, so the host forks once per
section); :func:`reader_order` then keeps the files their reader applies, in its
order (by file name, the first directory holding a name wins; the main file before or
after, as the reader does). Example section::

    /etc/modprobe.d/vcops-blacklist.conf:install sctp /bin/false
    /etc/modprobe.d/vcops-blacklist.conf:blacklist sctp

Host output is data: lines are bounded (:data:`MAX_LINES`, :data:`MAX_LINE`) and
nothing read here decides what code runs.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from pydantic import BaseModel

MAX_LINES = 20000
MAX_LINE = 4096


class Modprobe(BaseModel):
    """The effective modprobe config: the first ``install`` per module (kmod uses the
    first), every ``blacklist``. Module names with ``_`` (kmod treats ``-`` the same).

    Example: ``Modprobe(install={"sctp": "/bin/false"}, blacklist=["sctp"])``
    """

    install: dict[str, str] = {}
    blacklist: list[str] = []


class CoreLimit(BaseModel):
    """One ``core`` line of limits.conf / limits.d (``* hard core 0``)."""

    path: str
    domain: str
    type: str
    value: str


def module_name(name: str) -> str:
    """kmod's spelling of a module name.

    >>> module_name("usb-storage")
    'usb_storage'
    """
    return name.replace("-", "_")


def config_lines(text: str) -> Iterator[tuple[str, str]]:
    """``path:line`` records into (path, stripped line), comments and blanks dropped."""
    for raw in text.splitlines()[:MAX_LINES]:
        path, sep, line = raw[:MAX_LINE].partition(":")
        line = line.strip()
        if not sep or not path.startswith("/") or not line or line[0] in "#;":
            continue
        yield path, line


SYSCTL_DIRS = (
    "/etc/sysctl.d",
    "/run/sysctl.d",
    "/usr/local/lib/sysctl.d",
    "/usr/lib/sysctl.d",
    "/lib/sysctl.d",
)
MODPROBE_DIRS = (
    "/etc/modprobe.d",
    "/run/modprobe.d",
    "/usr/local/lib/modprobe.d",
    "/usr/lib/modprobe.d",
    "/lib/modprobe.d",
)
LIMITS_DIRS = ("/etc/security/limits.d",)
COREDUMP_DIRS = (
    "/etc/systemd/coredump.conf.d",
    "/run/systemd/coredump.conf.d",
    "/usr/local/lib/systemd/coredump.conf.d",
    "/usr/lib/systemd/coredump.conf.d",
)
READERS: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...]]] = {
    "sysctl_files": ((), SYSCTL_DIRS, ("/etc/sysctl.conf",)),
    "modprobe_files": ((), MODPROBE_DIRS, ()),
    "limits_files": (("/etc/security/limits.conf",), LIMITS_DIRS, ()),
    "coredump_files": (("/etc/systemd/coredump.conf",), COREDUMP_DIRS, ()),
}
"""Per section: the files read first, the drop-in directories (first holding a name
wins, names in byte order), the files read last. ``gather.sh`` greps exactly these."""


def reader_order(text: str, section: str) -> str:
    """The ``path:line`` lines of the files ``section``'s reader applies, in its order.

    >>> reader_order("/usr/lib/sysctl.d/b.conf:x=1\\n/etc/sysctl.d/b.conf:x=2\\n"
    ...              "/etc/sysctl.conf:y=3\\n/usr/lib/sysctl.d/a.conf:z=4", "sysctl_files")
    '/usr/lib/sysctl.d/a.conf:z=4\\n/etc/sysctl.d/b.conf:x=2\\n/etc/sysctl.conf:y=3'
    """
    first, dirs, last = READERS[section]
    lines: dict[str, list[str]] = {}
    for raw in text.splitlines()[:MAX_LINES]:
        path, sep, _ = raw[:MAX_LINE].partition(":")
        if sep:
            lines.setdefault(path, []).append(raw[:MAX_LINE])
    chosen: dict[str, str] = {}
    for folder in dirs:
        for path in lines:
            where, _, name = path.rpartition("/")
            if where == folder and name.endswith(".conf"):
                chosen.setdefault(name, path)
    order = [*first, *(chosen[n] for n in sorted(chosen)), *last]
    return "\n".join(line for path in order for line in lines.get(path, []))


def parse_sysctl_files(text: str) -> dict[str, str]:
    """The value each key gets from the sysctl files (the last assignment wins).

    >>> parse_sysctl_files("/etc/sysctl.d/a.conf:kernel/sysrq = 1\\n/etc/sysctl.conf:-kernel.sysrq=0")
    {'kernel.sysrq': '0'}
    """
    out: dict[str, str] = {}
    for _, line in config_lines(text):
        key, sep, value = line.partition("=")
        key = key.strip().lstrip("-").replace("/", ".")
        if sep and key and "*" not in key:
            out[key] = " ".join(value.split())
    return out


def parse_modprobe(text: str) -> Modprobe:
    """``install`` and ``blacklist`` lines of the modprobe.d files (pure)."""
    install: dict[str, str] = {}
    blacklist: list[str] = []
    for _, line in config_lines(text):
        words = line.split()
        if len(words) >= 3 and words[0] == "install":
            install.setdefault(module_name(words[1]), " ".join(words[2:]))
        elif len(words) == 2 and words[0] == "blacklist":
            name = module_name(words[1])
            if name not in blacklist:
                blacklist.append(name)
    return Modprobe(install=install, blacklist=blacklist)


def parse_modules(text: str) -> list[str]:
    """``/proc/modules``: the loaded modules' names."""
    return [line.split()[0] for line in text.splitlines()[:MAX_LINES] if line.split()]


def parse_core_limits(text: str) -> list[CoreLimit]:
    """The ``core`` entries of limits.conf and limits.d, in the order pam_limits reads."""
    out: list[CoreLimit] = []
    for path, line in config_lines(text):
        words = line.split()
        if len(words) == 4 and words[2] == "core":
            out.append(CoreLimit(path=path, domain=words[0], type=words[1], value=words[3]))
    return out


def parse_coredump_conf(text: str) -> dict[str, str]:
    """``[Coredump]`` settings of coredump.conf and its drop-ins (the last one wins).

    >>> parse_coredump_conf("/etc/systemd/coredump.conf.d/x.conf:[Coredump]\\n"
    ...                     "/etc/systemd/coredump.conf.d/x.conf:Storage=none")
    {'storage': 'none'}
    """
    out: dict[str, str] = {}
    section = ""
    for _, line in config_lines(text):
        if line.startswith("["):
            section = line.strip("[] ").lower()
            continue
        key, sep, value = line.partition("=")
        if sep and section == "coredump":
            out[key.strip().lower()] = value.strip().lower()
    return out


def parse_default_file(text: str) -> dict[str, str]:
    """A shell ``/etc/default/*`` file's ``KEY="value"`` lines."""
    out: dict[str, str] = {}
    for raw in text.splitlines()[:MAX_LINES]:
        line = raw[:MAX_LINE].strip()
        key, sep, value = line.partition("=")
        if sep and key.isidentifier() and not line.startswith("#"):
            out[key] = value.strip().strip("\"'")
    return out


def kernel_facts(ok: Mapping[str, str | None]) -> dict[str, object]:
    """The ServerFacts fields of this module from the sections that ran (text or None)."""
    facts: dict[str, object] = {}
    if (text := ok.get("sysctl_files")) is not None:
        facts["sysctl_files"] = parse_sysctl_files(reader_order(text, "sysctl_files"))
    if (text := ok.get("modprobe_files")) is not None:
        facts["modprobe"] = parse_modprobe(reader_order(text, "modprobe_files"))
    if (text := ok.get("modules")) is not None:
        facts["modules_loaded"] = parse_modules(text)
    if (text := ok.get("limits_files")) is not None:
        facts["core_limits"] = parse_core_limits(reader_order(text, "limits_files"))
    if (text := ok.get("coredump_files")) is not None:
        facts["coredump_conf"] = parse_coredump_conf(reader_order(text, "coredump_files"))
    if (text := ok.get("sysstat_default")) is not None:
        facts["sysstat_default"] = parse_default_file(text)
    return facts


SECTIONS = (
    "sysctl_files",
    "modprobe_files",
    "modules",
    "limits_files",
    "coredump_files",
    "sysstat_default",
)
"""The gather.sh sections this module parses."""
