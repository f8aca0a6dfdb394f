"""A throwaway PostgreSQL cluster for the tests (Debian's ``postgresql`` package).

``initdb`` into a temporary directory owned by a non-root user (``postgres`` when the
tests run as root), listening only on a Unix socket in that directory, password
authentication (scram) with the password in a ``.pgpass`` file that libpq reads through
``$PGPASSFILE``: the database URLs the tests use carry no password, as in production.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import psycopg


def pg_bindir() -> Path | None:
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@dataclass
class PgCluster:
    root: Path
    bindir: Path
    owner: str
    password: str
    port: int = 5432

    @property
    def passfile(self) -> Path:
        return self.root.with_name(self.root.name + ".pgpass")

    def _as_owner(self, *cmd: str) -> list[str]:
        if os.geteuid() == 0:
            return ["runuser", "-u", self.owner, "--", *cmd]
        return list(cmd)

    def start(self) -> None:
        pwfile = self.root / "pw"
        pwfile.write_text(self.password + "\n")
        if os.geteuid() == 0:
            uid = pwd.getpwnam(self.owner).pw_uid
            os.chown(self.root, uid, -1)
            os.chown(pwfile, uid, -1)
        run = lambda *c: subprocess.run(  # noqa: E731
            self._as_owner(*c), check=True, capture_output=True, text=True, timeout=120
        )
        run(
            str(self.bindir / "initdb"),
            "-D",
            str(self.root / "data"),
            "-U",
            "vcops",
            "--auth=scram-sha-256",
            f"--pwfile={pwfile}",
            "-E",
            "UTF8",
            "--no-sync",
        )
        pwfile.unlink()
        opts = f"-k {self.root} -c listen_addresses='' -p {self.port} -F"
        run(
            str(self.bindir / "pg_ctl"),
            "-D",
            str(self.root / "data"),
            "-o",
            opts,
            "-l",
            str(self.root / "log"),
            "-w",
            "-t",
            "60",
            "start",
        )
        self.passfile.write_text(f"*:*:*:vcops:{self.password}\n")
        self.passfile.chmod(0o600)

    def stop(self) -> None:
        subprocess.run(
            self._as_owner(
                str(self.bindir / "pg_ctl"),
                "-D",
                str(self.root / "data"),
                "-m",
                "fast",
                "-w",
                "stop",
            ),
            check=False,
            capture_output=True,
            timeout=60,
        )
        shutil.rmtree(self.root, ignore_errors=True)
        self.passfile.unlink(missing_ok=True)

    def conninfo(self, dbname: str = "postgres") -> str:
        return (
            f"host={self.root} port={self.port} user=vcops dbname={dbname} passfile={self.passfile}"
        )

    def create_database(self, name: str) -> str:
        """A fresh database; its SQLAlchemy URL (no password in it)."""
        with psycopg.connect(self.conninfo(), autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            conn.execute(f'CREATE DATABASE "{name}"')
        return self.url(name)

    def url(self, name: str) -> str:
        return f"postgresql+psycopg://vcops@/{name}?host={self.root}&port={self.port}"


def start_cluster() -> PgCluster:
    bindir = pg_bindir()
    if bindir is None:
        raise RuntimeError("apt-get install postgresql (the Makefile's APT_PACKAGES has it)")
    owner = "postgres" if os.geteuid() == 0 else pwd.getpwuid(os.geteuid()).pw_name
    root = Path(tempfile.mkdtemp(prefix="vcops-pg-", dir="/tmp"))
    root.chmod(0o700)
    cluster = PgCluster(root=root, bindir=bindir, owner=owner, password=secrets.token_hex(16))
    try:
        cluster.start()
    except BaseException:
        log = root / "log"
        detail = log.read_text()[-2000:] if log.exists() else ""
        cluster.stop()
        raise RuntimeError(f"PostgreSQL did not start: {detail}") from None
    return cluster
