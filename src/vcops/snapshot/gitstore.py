"""The snapshot store: a plain git repository driven through the ``git`` command line.

One folder per host, one commit per ``snapshot take`` run that changed something. The
commit message carries trailers, so plain git answers the usual questions::

    git -C .vcops/snapshots log --format='%h %an %s%n%(trailers)' -- kam-lon1-01/
    git -C .vcops/snapshots diff HEAD~1 -- sw-lon1-01/running-config.txt

Writes are serialised by an flock on ``.git/vcops.lock``; a working tree edited by
hand is refused rather than committed. git runs with the operator's global and system
configuration ignored (no external diff tools, hooks or signing prompts).

Host content is data, never instructions to git:

- a collected file whose name starts with ``.git`` (``.gitattributes``, ``.gitignore``,
  ``.gitmodules``) is stored under an escaped name (``%2Egitattributes``; a real name
  starting ``%2E`` or ``%25`` gets ``%25``), and read back under its real name;
- ``info/attributes`` (which wins over every ``.gitattributes``) turns off every
  attribute that could change bytes or break ``git add`` (text, eol, filter,
  working-tree-encoding, ident ...), ``git add --force`` ignores ignore rules, and
  every git command runs with hooks, ``core.fsmonitor``, ``core.attributesFile`` and
  ``core.excludesFile`` pointed at nothing, whatever the repository's config says;
- a take that fails after writing puts the working tree back to HEAD, so the next
  take is not refused for uncommitted changes.
"""

from __future__ import annotations

import fcntl
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path, PurePosixPath

from vcops.errors import StoreError
from vcops.snapshot.models import CommitInfo, FileDiff, HostSnapshot

README = """# vcops config snapshots

Written by `vcops snapshot take`; read with `vcops snapshot list|show|diff` or plain git.

- one folder per host: servers keep `files/<absolute path>`, `file-list.txt` (mode,
  owner, group of every file) and `state/` (nft ruleset, effective sshd config,
  packages, enabled units); devices keep `running-config.txt` and `startup-config.txt`
- one commit per run; trailers name the reason, operator, window and hosts changed:
  `git log --format='%h %an %s%n%(trailers)'`
- secrets never reach this repository: each is replaced by
  `<vcops:masked:hmac-sha256:...>`, a keyed hash (the key is kept outside this
  repository), so a rotated secret shows as a changed marker without being revealed
"""
GITATTRIBUTES = "# byte-exact: restore writes these files back as they were\n* -text\n"
#: ``.git/info/attributes``: outranks any ``.gitattributes`` (none should exist anyway).
INFO_ATTRIBUTES = (
    "# written by vcops: host files are stored byte for byte, never converted or filtered\n"
    "* -text !eol !crlf !filter !ident !working-tree-encoding !encoding !diff !merge "
    "!export-ignore !export-subst !delta !whitespace !conflict-marker-size\n"
)
#: ``-c`` settings on every git command: nothing in the repository's config runs.
_SAFE_CONFIG = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    f"core.attributesFile={os.devnull}",
    f"core.excludesFile={os.devnull}",
    "core.untrackedCache=false",
    "diff.external=",
    "core.pager=cat",
)
_REV_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_./~^@{}:+-]*$")
_TRAILER_KEYS = {"Reason", "Operator", "Window", "Hosts-changed"}
#: Creating a repository cannot hold its own lock file (``.git`` is not there yet):
#: threads of one process (a window's hosts) create it one at a time.
_CREATING = threading.Lock()


def check_rev(rev: str) -> str:
    """A revision safe to pass to git (no option injection).

    Raises:
        StoreError: the revision holds characters git revisions never need.
    """
    if not _REV_RE.match(rev) or ".." in rev:
        raise StoreError(
            f"revision {rev!r}: not a commit name; use a hash from `vcops snapshot list`"
        )
    return rev


def _escape_part(part: str) -> str:
    if part.startswith(("%2E", "%25")):
        return "%25" + part[1:]
    if part.lower().startswith(".git"):
        return "%2E" + part[1:]
    return part


def _unescape_part(part: str) -> str:
    if part.startswith("%2E"):
        return "." + part[3:]
    if part.startswith("%25"):
        return "%" + part[3:]
    return part


def stored_name(path: str) -> str:
    """The name a host file is stored under (``.git*`` components escaped)."""
    return "/".join(_escape_part(p) for p in path.split("/"))


def real_name(path: str) -> str:
    """The host's name of a stored file (inverse of :func:`stored_name`)."""
    return "/".join(_unescape_part(p) for p in path.split("/"))


def _safe_relative(path: str) -> str:
    parts = PurePosixPath(path).parts
    if not parts or parts[0] == "/" or any(p in {"..", ".", ".git", ""} for p in parts):
        raise StoreError(f"snapshot path {path!r} is not a safe relative path")
    return "/".join(parts)


class SnapshotRepo:
    """The git repository of snapshots at ``path``."""

    def __init__(self, path: Path) -> None:
        self.path = path

    # -- plumbing ---------------------------------------------------------------------

    def git(
        self,
        *args: str,
        stdin: bytes | None = None,
        env: dict[str, str] | None = None,
        ok: Sequence[int] = (0,),
    ) -> subprocess.CompletedProcess[bytes]:
        """Run git in the repository; raise StoreError on an unexpected exit status."""
        full_env = {
            **os.environ,
            "GIT_CONFIG_NOSYSTEM": "1",
            "GIT_CONFIG_GLOBAL": os.devnull,
            "GIT_TERMINAL_PROMPT": "0",
            "LC_ALL": "C",
            **(env or {}),
        }
        safe = [arg for setting in _SAFE_CONFIG for arg in ("-c", setting)]
        try:
            proc = subprocess.run(
                ["git", *safe, "-C", str(self.path), *args],
                input=stdin,
                capture_output=True,
                env=full_env,
                check=False,
                timeout=300,
            )
        except FileNotFoundError as exc:
            raise StoreError("git is not installed; apt-get install git") from exc
        except subprocess.TimeoutExpired as exc:
            raise StoreError(f"{self.path}: git {args[0]} took over 300 s") from exc
        if proc.returncode not in ok:
            tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()
            raise StoreError(
                f"{self.path}: git {args[0]} failed: {tail[-1] if tail else proc.returncode}"
            )
        return proc

    def _text(self, *args: str) -> str:
        return self.git(*args).stdout.decode("utf-8", "replace")

    def exists(self) -> bool:
        return (self.path / ".git").is_dir()

    def require(self) -> None:
        """Raise StoreError unless the repository exists."""
        if not self.exists():
            raise StoreError(
                f"{self.path}: no snapshot repository yet; run `vcops snapshot take` first"
            )

    def has_head(self) -> bool:
        return self.git("rev-parse", "--verify", "--quiet", "HEAD", ok=(0, 1)).returncode == 0

    @contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the repository's write lock (other writers wait)."""
        with open(self.path / ".git" / "vcops.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def ensure(self) -> None:
        """Create the repository with its README on first use."""
        with _CREATING:
            self._ensure()

    def _ensure(self) -> None:
        try:
            self.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        except OSError as exc:
            raise StoreError(f"{self.path}: cannot create the snapshot repository: {exc}") from exc
        if not self.exists():
            self.git("init", "--quiet", "--initial-branch=main", "--template=")
            self.git("config", "core.quotepath", "false")
        info = self.path / ".git" / "info"
        info.mkdir(exist_ok=True)
        if not (info / "attributes").is_file() or (info / "attributes").read_text() != (
            INFO_ATTRIBUTES
        ):
            (info / "attributes").write_text(INFO_ATTRIBUTES)
        with self.lock():
            if self.has_head():
                return
            (self.path / "README.md").write_text(README)
            (self.path / ".gitattributes").write_text(GITATTRIBUTES)
            self.git("add", "--", "README.md", ".gitattributes")
            self._commit("vcops snapshot store created\n", "vcops")

    def check_clean(self) -> None:
        """Refuse a working tree edited by hand (it would be committed as a snapshot)."""
        status = self.git("status", "--porcelain", "-z", "--untracked-files=all").stdout
        if status.strip(b"\0"):
            first = status.split(b"\0")[0].decode("utf-8", "replace")[3:]
            raise StoreError(
                f"{self.path}: uncommitted changes ({first} ...); snapshots are written by "
                f"vcops only: inspect with `git -C {self.path} status`, then commit or "
                "discard them (git checkout -- . && git clean -fd)"
            )

    # -- writing ----------------------------------------------------------------------

    def write_host(self, snapshot: HostSnapshot) -> None:
        """Replace the host's folder in the working tree with this snapshot."""
        folder = self.path / _safe_relative(snapshot.name)
        if folder.is_symlink() or (folder.exists() and not folder.is_dir()):
            raise StoreError(f"{folder}: not a host folder; remove it by hand")
        if folder.exists():
            shutil.rmtree(folder)
        for name, text in snapshot.files.items():
            target = folder / _safe_relative(stored_name(name))
            try:
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(text.encode("utf-8"))
            except OSError as exc:
                raise StoreError(f"{snapshot.name}: cannot store {name!r}: {exc}") from exc

    def discard_changes(self) -> None:
        """Put the working tree and index back to HEAD (after a take that failed)."""
        if self.has_head():
            self.git("reset", "--quiet", "--hard", "HEAD")
        self.git("clean", "-q", "-ffdx", "--", ".")

    def stage(self, hosts: Sequence[str]) -> dict[str, str]:
        """Stage the hosts' folders; return host -> 'new' | 'changed' for those that differ."""
        if not hosts:
            return {}
        specs = [f"{_safe_relative(h)}/" for h in hosts]
        self.git("add", "--all", "--force", "--", *specs)
        out = self.git("diff", "--cached", "--name-only", "-z", "--", *specs).stdout
        changed = {p.decode("utf-8", "replace").split("/", 1)[0] for p in out.split(b"\0") if p}
        known = set(self.hosts("HEAD"))
        return {h: ("changed" if h in known else "new") for h in hosts if h in changed}

    def _commit(self, message: str, actor: str) -> str:
        email = actor if "@" in actor else f"{actor}@vcops.invalid"
        ident = {
            "GIT_AUTHOR_NAME": actor,
            "GIT_AUTHOR_EMAIL": email,
            "GIT_COMMITTER_NAME": actor,
            "GIT_COMMITTER_EMAIL": email,
        }
        self.git(
            "commit",
            "--quiet",
            "--no-verify",
            "--no-gpg-sign",
            "--file=-",
            stdin=message.encode(),
            env=ident,
        )
        return self._text("rev-parse", "HEAD").strip()

    def commit(self, message: str, actor: str) -> str | None:
        """Commit what is staged; None (and no commit) when nothing is."""
        staged = self.git("diff", "--cached", "--quiet", ok=(0, 1)).returncode
        if staged == 0:
            return None
        return self._commit(message, actor)

    # -- reading ----------------------------------------------------------------------

    def resolve(self, rev: str) -> str:
        """The full hash of a commit.

        Raises:
            StoreError: no such commit.
        """
        proc = self.git(
            "rev-parse",
            "--verify",
            "--quiet",
            "--end-of-options",
            f"{check_rev(rev)}^{{commit}}",
            ok=(0, 1, 128),
        )
        if proc.returncode != 0:
            raise StoreError(
                f"{self.path}: no snapshot {rev!r}; see `vcops snapshot list` for revisions"
            )
        return proc.stdout.decode().strip()

    def hosts(self, rev: str = "HEAD") -> list[str]:
        """Host folders at a revision."""
        if rev == "HEAD" and not self.has_head():
            return []
        out = self.git("ls-tree", "-z", "-d", "--name-only", self.resolve(rev)).stdout
        return sorted(p.decode("utf-8", "replace") for p in out.split(b"\0") if p)

    def log(self, host: str | None = None, limit: int | None = None) -> list[CommitInfo]:
        """Commits newest first (only those touching ``host``'s folder when given)."""
        if not self.has_head():
            return []
        fmt = "%H%x1f%h%x1f%aI%x1f%an%x1f%s%x1f%(trailers:only,unfold)%x1e"
        args = ["log", f"--format={fmt}"]
        if limit:
            args.append(f"--max-count={limit}")
        args.append("HEAD")
        if host is not None:
            args += ["--", f"{_safe_relative(host)}/"]
        commits = []
        for record in self._text(*args).split("\x1e"):
            fields = record.strip("\n").split("\x1f")
            if len(fields) < 6:
                continue
            trailers: dict[str, str] = {}
            for line in fields[5].splitlines():
                name, sep, value = line.partition(": ")
                if sep and name in _TRAILER_KEYS:
                    trailers[name] = value.strip()
            changed = trailers.get("Hosts-changed", "")
            commits.append(
                CommitInfo(
                    commit=fields[0],
                    short=fields[1],
                    date=fields[2],
                    author=fields[3],
                    subject=fields[4],
                    reason=trailers.get("Reason", ""),
                    operator=trailers.get("Operator", ""),
                    window=trailers.get("Window"),
                    hosts_changed=[h.strip() for h in changed.split(",") if h.strip()],
                )
            )
        return commits

    def host_commits(self, host: str) -> list[str]:
        """Full hashes of the commits that changed the host, newest first."""
        return [c.commit for c in self.log(host)]

    def read_tree(self, host: str, rev: str) -> dict[str, bytes]:
        """The host's files at a revision: path inside the host folder -> bytes."""
        commit = self.resolve(rev)
        prefix = f"{_safe_relative(host)}/"
        out = self.git("ls-tree", "-r", "-z", "--full-tree", commit, "--", prefix).stdout
        entries: list[tuple[str, str]] = []
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, path = record.partition(b"\t")
            parts = meta.split()
            if len(parts) == 3 and parts[1] == b"blob":
                name = path.decode("utf-8", "replace")
                entries.append((real_name(name[len(prefix) :]), parts[2].decode()))
        if not entries:
            return {}
        batch = self.git(
            "cat-file", "--batch", stdin="".join(f"{sha}\n" for _, sha in entries).encode()
        ).stdout
        files: dict[str, bytes] = {}
        offset = 0
        for name, _ in entries:
            header_end = batch.index(b"\n", offset)
            size = int(batch[offset:header_end].split()[2])
            files[name] = batch[header_end + 1 : header_end + 1 + size]
            offset = header_end + 1 + size + 1
        return files

    def diff(self, host: str, rev_a: str, rev_b: str) -> list[FileDiff]:
        """The host's per-file changes from ``rev_a`` to ``rev_b``."""
        a, b = self.resolve(rev_a), self.resolve(rev_b)
        prefix = f"{_safe_relative(host)}/"
        common = ["--no-color", "--no-ext-diff", "--no-textconv", "--no-renames", a, b]
        names = self.git("diff", "--name-status", "-z", *common, "--", prefix).stdout
        fields = [f.decode("utf-8", "replace") for f in names.split(b"\0") if f]
        statuses = list(zip(fields[0::2], fields[1::2], strict=False))
        patch = self._text("diff", "--patch", "--full-index", *common, "--", prefix)
        chunks = [c for c in re.split(r"(?m)^(?=diff --git )", patch) if c.strip()]
        result = []
        words = {"A": "added", "D": "deleted", "M": "modified", "T": "modified"}
        for (code, path), chunk in zip(statuses, chunks, strict=False):
            status = words.get(code[:1], "modified")
            if status == "modified" and "\n@@" not in chunk and "old mode" in chunk:
                status = "mode"
            result.append(FileDiff(path=real_name(path[len(prefix) :]), status=status, diff=chunk))
        return result
