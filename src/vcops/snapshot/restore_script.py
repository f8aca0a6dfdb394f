"""The server restore script (pure rendering) and the parsing of what it printed.

One script, one SSH session, four phases; any failure before phase 4 leaves the host
as it was:

1. **stage**: each file is written next to its target (``mktemp`` in the same
   directory, so the final ``mv`` is atomic), given the stored owner and mode, and
   checked by its own validator where one exists (``sshd -t -f``, ``nft -c -f``,
   ``kamailio -c -f``, ``apt-config -c``, an XML parse for FreeSWITCH);
2. **swap**: the live file is copied to ``/var/backups/vcops/<run>/`` and the staged
   file renamed over it (deletions move the file to the backup);
3. **check**: whole-config checks (``sshd -t``, ``nft -c -f /etc/nftables.conf``,
   ``kamailio -c``, ``fail2ban-client -t``, ``chronyd -p``); a failure puts every
   file back from the backup;
4. **reload** the affected services that are running, then report their state.

Content travels as base64 in quoted here-documents (base64 has no ``_``, so no line of
it can end the here-document early); paths are quoted with ``shlex.quote``. The
script is the body of the ``restore`` host task (:class:`RestoreTask`), framed by
:mod:`vcops.connectors.hosttask`: one ``say`` record per step, and a validator's
output as an ``invalid-N`` or ``postinvalid-NAME`` record.
"""

from __future__ import annotations

import base64
import posixpath
import re
import shlex
import textwrap
from dataclasses import dataclass, field

from pydantic import BaseModel

from vcops.connectors.hosttask import TaskOutput
from vcops.snapshot.restore_plan import POST_CHECKS, RELOADS, FileWrite

_HEAD = r"""
bk=@@BACKUP@@
out() { emit "$1-$2" 0 "$t/v"; }
have() { command -v "$1" >/dev/null 2>&1; }
mkdir -p "$bk" || { say fail backup "$bk"; exit 1; }
"""


@dataclass
class ScriptResult:
    """What the restore script reported."""

    written: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)
    invalid: dict[str, str] = field(default_factory=dict)
    unvalidated: list[str] = field(default_factory=list)
    post_failed: dict[str, str] = field(default_factory=dict)
    rolled_back: bool = False
    failure: str | None = None
    reloads: dict[str, str] = field(default_factory=dict)
    done: bool = False


def _q(path: str) -> str:
    return shlex.quote(path)


_EOF = "VCOPS_B64_END"


def _stage(index: int, write: FileWrite) -> str:
    assert write.content is not None
    path = write.path
    directory = posixpath.dirname(path)
    payload = "\n".join(textwrap.wrap(base64.b64encode(write.content.encode()).decode(), 76))
    var = f"s{index}"
    lines = [
        f"(umask 022; mkdir -p {_q(directory)}) || {{ say fail stage {index}; cleanup; exit 1; }}",
        f"{var}=$(mktemp {_q(directory + '/.vcops-restore.XXXXXX')}) || "
        f"{{ say fail stage {index}; cleanup; exit 1; }}",
        f"base64 -d >\"${var}\" <<'{_EOF}'",
        payload,
        _EOF,
        f'chown {_q(write.owner + ":" + write.group)} "${var}" && chmod {_q(write.mode)} '
        f'"${var}" || {{ say fail stage {index}; cleanup; exit 1; }}',
    ]
    if write.pre:
        program = write.pre.split()[0]
        command = write.pre.replace("{file}", f'"${var}"')
        lines.append(
            f'if have {_q(program)}; then {command} >"$t/v" 2>&1 || '
            f"{{ out invalid {index}; cleanup; exit 1; }}; else say novalidator {index}; fi"
        )
    return "\n".join(lines)


def _swap(index: int, write: FileWrite) -> str:
    path = _q(write.path)
    backup = f'"$bk"{_q(write.path)}'
    backup_dir = f'"$bk"{_q(posixpath.dirname(write.path))}'
    keep = (
        f"if [ -e {path} ] || [ -L {path} ]; then e{index}=1; mkdir -p {backup_dir} && "
        f"cp -a {path} {backup} || {{ say fail backup {index}; rollback; exit 1; }}; fi"
    )
    if write.content is None:
        return f"{keep}\nrm -f {path} && c{index}=1 && say deleted {index}"
    return (
        f'{keep}\nmv -f "$s{index}" {path} || {{ say fail swap {index}; rollback; exit 1; }}\n'
        f"c{index}=1; say written {index}"
    )


def _undo(index: int, write: FileWrite) -> str:
    path = _q(write.path)
    backup = f'"$bk"{_q(write.path)}'
    return (
        f'if [ "${{c{index}:-}}" = 1 ]; then if [ "${{e{index}:-}}" = 1 ]; then '
        f"cp -a {backup} {path}; else rm -f {path}; fi; fi"
    )


def _reload(name: str) -> str:
    unit, command = RELOADS[name]
    if unit is None:
        return f'{command} >"$t/v" 2>&1; say reload {name} $? -'
    u = _q(unit)
    wait = (
        f"n=0; while [ $n -lt 20 ]; do s=$(systemctl is-active {u}); "
        f'[ "$s" = activating ] || [ "$s" = reloading ] || break; n=$((n+1)); sleep 0.5; done'
    )
    return (
        f'if systemctl is-active --quiet {u}; then {command} >"$t/v" 2>&1; rc=$?; {wait}; '
        f'say reload {name} "$rc" "$(systemctl is-active {u})"; '
        f"else say reload {name} skipped inactive; fi"
    )


class RestoreTask(BaseModel):
    """The ``restore`` host task for one host (``run_id`` names the backup directory)."""

    name: str = "restore"
    writes: list[FileWrite]
    post_checks: list[str] = []
    reloads: list[str] = []
    run_id: str

    def body(self) -> str:
        return render_restore_script(self.writes, self.post_checks, self.reloads, self.run_id)


def render_restore_script(
    writes: list[FileWrite], post_checks: list[str], reloads: list[str], run_id: str
) -> str:
    """The restore task's body (``run_id`` names the backup directory)."""
    if not re.fullmatch(r"[0-9A-Za-z_.-]+", run_id):
        raise ValueError("run_id must be a plain name")
    staged = " ".join(f'"${{s{i}:-}}"' for i, w in enumerate(writes) if w.content is not None)
    parts = [
        _HEAD.replace("@@BACKUP@@", _q(f"/var/backups/vcops/{run_id}")),
        f"cleanup() {{ rm -f {staged or '/dev/null/none'} 2>/dev/null; true; }}",
        "rollback() {\n"
        + "\n".join(_undo(i, w) for i, w in reversed(list(enumerate(writes))))
        + "\ncleanup; say rolledback\n}",
    ]
    parts += [_stage(i, w) for i, w in enumerate(writes) if w.content is not None]
    parts += [_swap(i, w) for i, w in enumerate(writes)]
    for name in post_checks:
        program, command = POST_CHECKS[name]
        parts.append(
            f'if have {_q(program)}; then {command} >"$t/v" 2>&1 || '
            f"{{ out postinvalid {name}; rollback; exit 1; }}; fi"
        )
    parts += [_reload(name) for name in reloads]
    parts.append("say done")
    return "\n".join(parts) + "\n"


def parse_restore_output(out: TaskOutput, writes: list[FileWrite]) -> ScriptResult:
    """What the task did, from its records (validator output decoded, NOT masked)."""
    result = ScriptResult()

    def path_of(text: str) -> str:
        if text.isascii() and text.isdigit() and len(text) <= 9 and int(text) < len(writes):
            return writes[int(text)].path
        return text

    for record in out.records:
        kind, _, arg = record.name.partition("-")
        if kind in {"invalid", "postinvalid"} and arg:
            if kind == "invalid":
                result.invalid[path_of(arg)] = record.text
            else:
                result.post_failed[arg] = record.text
            continue
        if record.name != "say":
            continue
        words = record.text.split()
        if not words:
            continue
        verb, args = words[0], words[1:]
        if verb == "written" and args:
            result.written.append(path_of(args[0]))
        elif verb == "deleted" and args:
            result.deleted.append(path_of(args[0]))
        elif verb == "novalidator" and args:
            result.unvalidated.append(path_of(args[0]))
        elif verb == "rolledback":
            result.rolled_back = True
        elif verb == "fail":
            result.failure = " ".join([args[0], path_of(args[1])] if len(args) > 1 else args)
        elif verb == "reload" and len(args) >= 3:
            result.reloads[args[0]] = (
                "not running (not reloaded)"
                if args[1] == "skipped"
                else f"exit {args[1]}, {args[2] if args[2] != '-' else 'done'}"
            )
        elif verb == "done":
            result.done = True
    return result
