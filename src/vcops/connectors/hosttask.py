"""The host-task layer: every script vcops runs on a server goes through here.

A *task* is a shell body plus a pure parser (:class:`HostTask`); its inputs are plain
data, so a site worker can rebuild and run it. Several tasks are composed into ONE
script (:func:`compose`) sent over ONE SSH session, under ``sudo`` when the login is
not root (:func:`vcops.connectors.ssh.become_command`). The framing is the same for every task: a per-run
random nonce (:func:`new_nonce`) in every marker line, each followed by ONE line of
base64, so nothing a host prints (a config file, a package's output) can pose as a
record::

    @@vcops-5f0c9a1be2d4c377 vcops @start 0
    <empty>
    @@vcops-5f0c9a1be2d4c377 facts sshd_t 0
    cG9ydCAyMgo...                       (base64 of `sshd -T` output)
    @@vcops-5f0c9a1be2d4c377 window say 0
    YWN0aXZlIGthbWFpbGlvLnNlcnZpY2U=     (base64 of "active kamailio.service")
    @@vcops-5f0c9a1be2d4c377 facts @end 0
    @@vcops-5f0c9a1be2d4c377 vcops @end 0

Inside a task body these shell functions are defined: ``emit NAME RC FILE`` (a record
of a file), ``section NAME CMD...`` (a command's output, stderr included),
``output NAME CMD...`` (stdout only; stderr as ``NAME-stderr``), ``tarfiles NAME
PATH...`` (a tar of the paths that exist) and ``say WORDS...`` (a one-line record named
``say``); ``quiet CMD...`` runs CMD with its errors dropped and status 0 (a missing
file is no output), ``mute CMD...`` the same keeping CMD's status: shell functions, so
no ``sh -c`` is started for them. ``$t`` is a private temporary directory; each task runs in its own subshell
from ``/``, so an ``exit`` ends only that task. ``section`` outputs are kept in ``$t``
and sent together when the task ends, as ONE ``@batch`` record (a tar of the outputs
and their index) that :func:`split` turns back into one record per section: one
``base64`` run per task instead of one per section (a scan runs about 50 sections).
The other functions emit at once, so a task cut short still shows what it ``say``-d.

Results are data: :func:`run_tasks` never raises for one host. A host whose sudo
refuses is ``failed`` with the fix in its error; the other hosts go on. Reading what a
host said goes through :func:`read_host`, the one per-host boundary: whatever the
output does to a parser or a check (a 5000-digit number, JSON nested past the stack),
that host is *unknown* with the reason and every other host is read as usual.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import io
import re
import secrets
import tarfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, TypeVar

from pydantic import BaseModel

from vcops.connectors.kept import run_sync
from vcops.connectors.ssh import SshTarget, become_error, run_script
from vcops.errors import BecomeError, ConnectError, InventoryError

T = TypeVar("T")

_NONCE_RE = re.compile(r"^[0-9a-f]{16}$")
_NAME_RE = re.compile(r"^[a-z][a-z0-9_-]{0,40}$")
_RECORD_RE = re.compile(r"^[a-z0-9_.@-]{1,80}$")
#: A record's base64 line is bounded; a longer one is dropped (64 MiB decoded).
MAX_RECORD_CHARS = 90 * 1024 * 1024
#: The record a task's end sends with all its ``section`` outputs (one tar, one base64
#: run on the host instead of one per section).
BATCH = "@batch"

_PRELUDE = r"""export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
umask 077
M=@@MARK@@
T0=$(mktemp -d) || { echo "vcops: mktemp failed" >&2; exit 1; }
trap 'rm -rf "$T0"' EXIT
emit() { printf '%s %s %s %s\n' "$M" "$T" "$1" "$2"; base64 -w0 <"$3"; printf '\n'; }
section() { _n=$1; shift; _i=$((_i + 1)); "$@" >"$t/.b/$_i" 2>&1; printf '%s %s %s\n' "$_i" "$_n" "$?" >>"$t/.b/.idx"; }
output() { _n=$1; shift; "$@" >"$t/.o" 2>"$t/.e"; _r=$?; emit "$_n" "$_r" "$t/.o"; emit "$_n-stderr" "$_r" "$t/.e"; }
say() { printf '%s' "$*" >"$t/.s"; emit say 0 "$t/.s"; }
quiet() { "$@" 2>/dev/null; return 0; }
mute() { "$@" 2>/dev/null; }
tarfiles() {
    _n=$1; shift; : >"$t/.l"
    for _f in "$@"; do [ -e "$_f" ] && printf '%s\0' "${_f#/}" >>"$t/.l"; done
    (cd / && tar --create --blocking-factor=1 --file="$t/.tar" --null --no-recursion --files-from="$t/.l") 2>/dev/null
    emit "$_n" "$?" "$t/.tar"
}
flush() {
    [ -s "$t/.b/.idx" ] || return 0
    (cd "$t/.b" && tar --create --blocking-factor=1 --file="$t/.bt" .) 2>/dev/null
    emit @batch "$?" "$t/.bt"
}
T=vcops; t=$T0
printf '%s vcops @start 0\n\n' "$M"
"""


class HostTask(Protocol):
    """One piece of work on a server: a shell body (run from ``/`` in its own
    subshell, with the framing functions above) and a unique record prefix ``name``.
    Its parser lives beside it and takes the :class:`TaskOutput` of that name."""

    @property
    def name(self) -> str: ...

    def body(self) -> str: ...


class Record(BaseModel):
    """One framed record: the task, its name within the task, an exit status, bytes."""

    name: str
    rc: int
    data: bytes

    @property
    def text(self) -> str:
        return self.data.decode("utf-8", "replace")


class TaskOutput(BaseModel):
    """Every record of one task, in order; ``rc`` is None when the task never finished."""

    task: str
    records: list[Record] = []
    rc: int | None = None

    @property
    def complete(self) -> bool:
        return self.rc is not None

    def get(self, name: str) -> Record | None:
        """The last record of that name."""
        found = [r for r in self.records if r.name == name]
        return found[-1] if found else None

    def all(self, name: str) -> list[Record]:
        return [r for r in self.records if r.name == name]

    def ok_text(self, name: str) -> str | None:
        """The text of a record whose command exited 0, else None."""
        record = self.get(name)
        return record.text if record is not None and record.rc == 0 else None


class Framed(BaseModel):
    """A whole run's output split at this run's markers."""

    started: bool = False
    ended: bool = False
    tasks: dict[str, TaskOutput] = {}

    def task(self, name: str) -> TaskOutput:
        return self.tasks.get(name, TaskOutput(task=name))


class HostRun(BaseModel):
    """The outcome on one host; never an exception.

    ``ok``: the composed script ran to its end (each task still has its own ``rc``);
    ``failed``: we logged in but the script could not run or was cut short (sudo
    refused, killed, timed out); ``unreachable``: no session (an *unknown* host).
    """

    name: str
    status: Literal["ok", "failed", "unreachable"]
    error: str | None = None
    framed: Framed = Framed()
    exit_status: int | None = None
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def output(self, task: str) -> TaskOutput:
        return self.framed.task(task)


def new_nonce() -> str:
    """A fresh marker nonce (16 hex digits) for one run."""
    return secrets.token_hex(8)


def marker(nonce: str) -> str:
    if not _NONCE_RE.match(nonce):
        raise ValueError("nonce must be 16 hex digits")
    return f"@@vcops-{nonce}"


def compose(tasks: Sequence[HostTask], nonce: str) -> str:
    """One script running every task in turn, each framed with this run's nonce.

    Raises:
        ValueError: a bad nonce, a bad or repeated task name.
    """
    names = [t.name for t in tasks]
    for name in names:
        if not _NAME_RE.match(name) or name == "vcops":
            raise ValueError(f"bad task name {name!r}")
    if len(set(names)) != len(names):
        raise ValueError(f"task names repeat: {names}")
    parts = [_PRELUDE.replace("@@MARK@@", marker(nonce))]
    for task in tasks:
        parts.append(
            f'T={task.name}; t=$T0/{task.name}; mkdir "$t" "$t/.b"\n'
            f"(\ncd / || exit 1\n{task.body().rstrip()}\n)\n"
            f'_r=$?; flush; printf \'%s %s @end %s\\n\\n\' "$M" "$T" "$_r"\n'
        )
    parts.append("T=vcops\nprintf '%s vcops @end 0\\n\\n' \"$M\"\n")
    return "".join(parts)


def split(output: str, nonce: str) -> Framed:
    """The records of this run, by task (pure). Lines without this run's marker, bad
    names and undecodable payloads are ignored; each marker line takes the next line
    as its base64 payload."""
    prefix = marker(nonce) + " "
    framed = Framed()
    lines = output.split("\n")
    index = 0
    while index < len(lines):
        line = lines[index]
        index += 1
        if not line.startswith(prefix):
            continue
        parts = line[len(prefix) :].split(" ")
        status = parts[2].removeprefix("-") if len(parts) == 3 else ""
        # ASCII digits only: "²".isdigit() is True, and int("²") raises
        if not (status.isascii() and status.isdigit()) or len(parts[2]) > 6:
            continue
        task, name, rc = parts[0], parts[1], int(parts[2])
        if not _RECORD_RE.match(task) or not _RECORD_RE.match(name):
            continue
        payload = lines[index] if index < len(lines) else ""
        index += 1
        if task == "vcops":
            framed.started = framed.started or name == "@start"
            framed.ended = framed.ended or name == "@end"
            continue
        out = framed.tasks.setdefault(task, TaskOutput(task=task))
        if name == "@end":
            out.rc = rc
            continue
        if len(payload) > MAX_RECORD_CHARS:
            continue
        try:
            data = base64.b64decode(payload.strip(), validate=True)
        except (binascii.Error, ValueError):
            continue
        if name == BATCH:
            out.records.extend(unbatch(data))
            continue
        out.records.append(Record(name=name, rc=rc, data=data))
    return framed


def unbatch(data: bytes) -> list[Record]:
    """The ``section`` records of one task, from the one tar its end sends (pure): the
    index ``.idx`` (``N NAME RC`` per line, in the order they ran) and each output as
    the member ``N``. Lines that do not parse, and outputs missing, are skipped."""
    members: dict[str, bytes] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                handle = tar.extractfile(member) if member.isfile() else None
                if handle is not None:
                    members[member.name.removeprefix("./")] = handle.read()
    except (tarfile.TarError, EOFError, OSError):
        return []
    records = []
    for line in members.get(".idx", b"").decode("ascii", "replace").splitlines():
        parts = line.split(" ")
        if len(parts) != 3 or not _RECORD_RE.match(parts[1]) or parts[1] == BATCH:
            continue
        index, name, rc = parts
        status = rc.removeprefix("-")
        if not (status.isascii() and status.isdigit()) or len(rc) > 6 or index not in members:
            continue
        records.append(Record(name=name, rc=int(rc), data=members[index]))
    return records


def tar_members(data: bytes, *, max_bytes: int = 4 * 1024 * 1024) -> dict[str, bytes]:
    """Regular files of a tar as ``/absolute/path -> bytes`` (links to a member inside
    the tar are followed once); oversized or unsafe members are skipped (pure)."""
    files: dict[str, bytes] = {}
    links: dict[str, str] = {}
    try:
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:") as tar:
            for member in tar:
                name = "/" + member.name.lstrip("/")
                if ".." in name.split("/"):
                    continue
                if member.issym():
                    links[name] = member.linkname
                elif member.isfile() and member.size <= max_bytes:
                    handle = tar.extractfile(member)
                    if handle is not None:
                        files[name] = handle.read()
    except (tarfile.TarError, EOFError, OSError):
        return files
    for name, target in links.items():
        resolved = target if target.startswith("/") else f"{name.rsplit('/', 1)[0]}/{target}"
        if resolved in files:
            files[name] = files[resolved]
    return files


# -- running -----------------------------------------------------------------------------


async def run_host(
    target: SshTarget,
    tasks: Sequence[HostTask],
    *,
    timeout: float = 120.0,
    environ: dict[str, str] | None = None,
) -> HostRun:
    """Compose ``tasks`` and run them over one SSH session on one host."""
    started = time.monotonic()
    nonce = new_nonce()
    script = compose(tasks, nonce)
    try:
        result = await run_script(target, script, timeout=timeout, environ=environ)
    except BecomeError as exc:
        return HostRun(name=target.name, status="failed", error=str(exc))
    except ConnectError as exc:
        run = HostRun(name=target.name, status="unreachable", error=str(exc))
        run.seconds = round(time.monotonic() - started, 3)
        return run
    framed = split(result.stdout, nonce)
    run = HostRun(name=target.name, status="ok", framed=framed, exit_status=result.exit_status)
    if not framed.started and target.access is not None and target.access.sudo:
        run.status = "failed"
        run.error = become_error(target.name, target.access, result.stderr, result.exit_status)
    elif not framed.ended:
        run.status = "failed"
        tail = (result.stderr.strip().splitlines() or ["no output"])[-1][:300]
        run.error = f"{target.name}: the script stopped (exit {result.exit_status}): {tail}"
    run.seconds = round(time.monotonic() - started, 3)
    return run


def run_tasks(
    targets: Sequence[SshTarget],
    tasks: Sequence[HostTask] | Callable[[SshTarget], Sequence[HostTask]],
    *,
    max_parallel: int = 50,
    timeout: float = 120.0,
    on_result: Callable[[HostRun], None] | None = None,
) -> list[HostRun]:
    """Run the tasks on every target, one session each, at most ``max_parallel`` at
    once; results in target order."""

    async def gather() -> list[HostRun]:
        semaphore = asyncio.Semaphore(max_parallel)

        async def one(target: SshTarget) -> HostRun:
            async with semaphore:
                wanted = tasks(target) if callable(tasks) else tasks
                run = await run_host(target, wanted, timeout=timeout)
                if on_result is not None:
                    on_result(run)
                return run

        return list(await asyncio.gather(*(one(t) for t in targets)))

    return run_sync(gather())


@dataclass(frozen=True)
class Unreadable:
    """A host's output broke the code reading it: the reason, without the output."""

    error: str


def read_host(work: Callable[[], T]) -> T | Unreadable:
    """Run ``work`` (parse one host's output, and judge it) inside the per-host boundary:
    its result, or :class:`Unreadable` naming the exception type and the vcops function
    that raised it. Never the exception's text: it could quote a config line holding a
    secret. Scan, snapshot and window runner read every host's records through here.

    Raises:
        InventoryError: a bad override in the inventory (the operator's error, not the
            host's) still stops the run.
    """
    try:
        return work()
    except InventoryError:
        raise
    except Exception as exc:  # the per-host boundary
        where = "?"
        tb = exc.__traceback__
        while tb is not None:
            if tb.tb_frame.f_globals.get("__name__", "").startswith("vcops."):
                where = tb.tb_frame.f_code.co_name
            tb = tb.tb_next
        return Unreadable(
            f"its output could not be read ({type(exc).__name__} in {where}); nothing is "
            "known about it until it answers sanely"
        )


class ScriptTask(BaseModel):
    """A task whose body is given as text (fixed scripts: ping, plan, window steps)."""

    name: str
    script: str

    def body(self) -> str:
        return self.script
