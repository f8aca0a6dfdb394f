"""The host side of vcops enforcement: a standalone script run as ``python3 -c``.

Sent whole over SSH (see :func:`vcops.enforce.helper.remote_command`); uses only the
Python 3 standard library of the target and never imports vcops. Actions, each with
one base64 JSON argument:

``state``   read managed files (secret values replaced by their references, so a
            secret never leaves the host), directory permissions, file existence and
            probe commands; print one JSON document.
``install`` resolve secret references (generating missing secrets on the host into
            root-only files), write the content next to the target, validate it
            (``%s`` = the candidate, ``%d`` = a copy of ``copy_dir`` holding the
            candidate under its real name) and only then rename it over the target.
            Exit 3 with one line on stderr when validation fails: the live file stays.
``cert``    create a self-signed certificate and key if either is missing.
"""

from __future__ import annotations

import base64
import contextlib
import glob
import grp
import json
import os
import pwd
import secrets
import shutil
import stat
import subprocess
import sys
import tempfile

VALIDATION_FAILED = 3


def _read_secrets(refs: dict[str, str]) -> dict[str, str]:
    values = {}
    for ref, path in refs.items():
        with contextlib.suppress(OSError):
            with open(path) as handle:
                value = handle.read().strip()
            if value:
                values[ref] = value
    return values


def _mask(text: str, values: dict[str, str]) -> str:
    for ref, value in values.items():
        text = text.replace(value, ref)
    return text


def _file_state(path: str, values: dict[str, str]) -> dict[str, object]:
    try:
        st = os.stat(path)
    except OSError:
        return {"exists": False}
    try:
        with open(path, encoding="utf-8", errors="replace") as handle:
            content: str | None = _mask(handle.read(), values)
    except OSError:
        content = None
    return {
        "exists": True,
        "content": content,
        "mode": f"{stat.S_IMODE(st.st_mode):04o}",
        "owner": _user(st.st_uid),
        "group": _group(st.st_gid),
    }


def _user(uid: int) -> str:
    try:
        return pwd.getpwuid(uid).pw_name
    except KeyError:
        return str(uid)


def _group(gid: int) -> str:
    try:
        return grp.getgrgid(gid).gr_name
    except KeyError:
        return str(gid)


def _dir_state(directory: str, group: str | None) -> dict[str, object]:
    if not os.path.isdir(directory):
        return {"exists": False, "world": [], "wrong_group": []}
    world, wrong = [], []
    for root, dirs, files in os.walk(directory):
        for name in [root, *(os.path.join(root, f) for f in dirs + files)]:
            try:
                st = os.lstat(name)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & 0o007:
                world.append(name)
            if group and _group(st.st_gid) != group:
                wrong.append(name)
    return {"exists": True, "world": sorted(set(world)), "wrong_group": sorted(set(wrong))}


def state(spec: dict[str, object]) -> dict[str, object]:
    refs = spec.get("secrets") or {}
    assert isinstance(refs, dict)
    values = _read_secrets(refs)
    paths = list(spec.get("paths") or [])  # type: ignore[call-overload]
    for pattern in spec.get("globs") or []:  # type: ignore[attr-defined]
        paths += sorted(glob.glob(pattern))
    probes = {}
    for name, argv in (spec.get("probes") or {}).items():  # type: ignore[attr-defined]
        try:
            done = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
            probes[name] = {"rc": done.returncode, "out": done.stdout}
        except (OSError, subprocess.SubprocessError) as exc:
            probes[name] = {"rc": 127, "out": str(exc)}
    dirs = spec.get("dirs") or {}
    assert isinstance(dirs, dict)
    return {
        "files": {p: _file_state(p, values) for p in dict.fromkeys(paths)},
        "exists": {p: os.path.exists(p) for p in spec.get("exists") or []},  # type: ignore[attr-defined]
        "dirs": {d: _dir_state(d, g) for d, g in dirs.items()},
        "probes": probes,
    }


def _resolve_secrets(content: str, refs: dict[str, str]) -> str:
    for ref, path in refs.items():
        if ref not in content:
            continue
        value = _read_secrets({ref: path}).get(ref)
        if value is None:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            value = secrets.token_hex(16)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "w") as out:
                out.write(value + "\n")
        content = content.replace(ref, value)
    return content


def _ids(owner: str, group: str) -> tuple[int, int]:
    try:
        uid = pwd.getpwnam(owner).pw_uid
    except KeyError:
        uid = 0
    try:
        gid = grp.getgrnam(group).gr_gid
    except KeyError:
        gid = 0
    return uid, gid


def _validate(spec: dict[str, object], candidate: str) -> str | None:
    argv = spec.get("validate")
    if not argv:
        return None
    assert isinstance(argv, list)
    path = str(spec["path"])
    workdir = None
    try:
        target_dir = os.path.dirname(candidate)
        root = spec.get("copy_dir")
        if root:
            root = str(root)
            workdir = tempfile.mkdtemp(prefix="vcops-validate-")
            target_dir = os.path.join(workdir, os.path.basename(root))
            shutil.copytree(
                root, target_dir, symlinks=True, ignore=shutil.ignore_patterns(".vcops-tmp-*")
            )
            inside = os.path.join(target_dir, os.path.relpath(path, root))
            os.makedirs(os.path.dirname(inside), exist_ok=True)
            shutil.copyfile(candidate, inside)
            candidate = inside
        cmd = [str(a).replace("%s", candidate).replace("%d", target_dir) for a in argv]
        try:
            done = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        except (OSError, subprocess.SubprocessError) as exc:
            return f"{cmd[0]} could not run: {exc}"
        if done.returncode != 0:
            lines = [ln.strip() for ln in (done.stderr + done.stdout).splitlines() if ln.strip()]
            errors = [ln for ln in lines if "error" in ln.lower()] or lines[-1:]
            return f"`{argv[0]}` exit {done.returncode}: " + (errors[0] if errors else "no output")
        return None
    finally:
        if workdir:
            shutil.rmtree(workdir, ignore_errors=True)


def install(spec: dict[str, object]) -> int:
    path = str(spec["path"])
    refs = spec.get("secrets") or {}
    assert isinstance(refs, dict)
    content = _resolve_secrets(str(spec["content"]), refs)
    directory = os.path.dirname(path)
    os.makedirs(directory, mode=0o755, exist_ok=True)
    tmp = os.path.join(directory, ".vcops-tmp-" + os.path.basename(path))
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(content)
    uid, gid = _ids(str(spec.get("owner", "root")), str(spec.get("group", "root")))
    os.chown(tmp, uid, gid)
    os.chmod(tmp, int(str(spec.get("mode", "0644")), 8))
    problem = _validate(spec, tmp)
    if problem:
        os.unlink(tmp)
        sys.stderr.write(f"vcops: {path}: new config failed validation, not installed: {problem}\n")
        return VALIDATION_FAILED
    os.replace(tmp, path)
    sys.stdout.write(f"installed {path}\n")
    return 0


def cert(spec: dict[str, object]) -> int:
    crt, key = str(spec["cert"]), str(spec["key"])
    if os.path.exists(crt) and os.path.exists(key):
        return 0
    os.makedirs(os.path.dirname(key), mode=0o750, exist_ok=True)
    argv = ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "825"]
    argv += ["-subj", f"/CN={spec['cn']}", "-keyout", key, "-out", crt]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
    if done.returncode != 0:
        sys.stderr.write(f"vcops: cannot create {crt}: {done.stderr.strip()[-200:]}\n")
        return 1
    uid, gid = _ids("root", str(spec.get("group", "root")))
    for path, mode in ((key, 0o640), (crt, 0o644), (os.path.dirname(key), 0o750)):
        os.chown(path, uid, gid)
        os.chmod(path, mode)
    sys.stdout.write(f"created {crt}\n")
    return 0


def main(argv: list[str]) -> int:
    # Every file's mode is set explicitly; directories this creates are 0755 whatever
    # the login's umask (sudo's ``Defaults umask=0027`` would make them 0750, and the
    # Ansible roles, which ask for 0755, would change them back on every run).
    os.umask(0o022)
    action, payload = argv[1], argv[2]
    spec = json.loads(base64.b64decode(payload))
    if action == "state":
        sys.stdout.write(json.dumps(state(spec)) + "\n")
        return 0
    if action == "install":
        return install(spec)
    if action == "cert":
        return cert(spec)
    sys.stderr.write(f"vcops: unknown action {action}\n")
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
