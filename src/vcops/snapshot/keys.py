"""The masking key: 32 random bytes in ``<state_dir>/snapshot-mask.key``, mode 0600.

Created on first use, never inside the snapshot repository (whoever reads the store
must not be able to test guesses against the markers). Losing or replacing the key
changes every marker once: the next snapshot then shows every masked line as changed.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
import stat
from pathlib import Path

from vcops.errors import StoreError
from vcops.paths import ensure_state_dir

KEY_FILE = "snapshot-mask.key"


def key_path(state_dir: Path) -> Path:
    """Where the masking key lives."""
    return state_dir / KEY_FILE


def key_id(key: bytes) -> str:
    """A short public name of a key (HMAC of a fixed text): two processes compare it
    to know they mask alike, without the key ever leaving either."""
    return hmac.new(key, b"vcops snapshot mask key id", hashlib.sha256).hexdigest()[:16]


def load_or_create_key(state_dir: Path, snapshots_dir: Path, *, create: bool = True) -> bytes:
    """Read the masking key, creating it (0600) on first use (``create=False``: a site
    worker, which must mask with the controller's key, never makes one of its own).

    Raises:
        StoreError: the key would live inside the snapshot repository, is missing (with
            ``create=False``), readable by others, or unreadable or malformed.
    """
    path = key_path(state_dir)
    repo = snapshots_dir.resolve()
    if path.resolve().is_relative_to(repo):
        raise StoreError(
            f"{path}: the masking key would live inside the snapshot repository {repo}; "
            "move store.snapshots_dir or store.state_dir in vcops.toml so they do not nest"
        )
    if not path.exists() and not create:
        raise StoreError(
            f"{path}: no masking key here; copy the controller's (mode 0600) so this "
            "worker masks as the controller does"
        )
    if not path.exists():
        try:
            ensure_state_dir(state_dir)
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first
        except OSError as exc:
            raise StoreError(f"{path}: cannot create the masking key: {exc.strerror}") from exc
        else:
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(32) + "\n")
    try:
        info = path.stat()
        text = path.read_text().strip()
    except OSError as exc:
        raise StoreError(f"{path}: cannot read the masking key: {exc.strerror}") from exc
    if info.st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise StoreError(
            f"{path}: the masking key is readable by others (mode "
            f"{stat.S_IMODE(info.st_mode):04o}); chmod 600 {path}"
        )
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) < 16:
        raise StoreError(
            f"{path}: not a masking key (expected 64 hex digits); restore it from backup "
            "or delete it to start a new one (every masked line will then change once)"
        )
    return key
