"""Reading input files that may be hostile: regular files only, bounded in size.

A FIFO named ``hosts.yml`` would block a plain ``read_text()`` forever and
``/dev/zero`` would fill memory; both are refused before a byte is read.

Example::

    data = read_regular(Path("inventory/hosts.yml"), limit=MAX_INPUT_BYTES)
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

#: The largest inventory or configuration file vcops reads (an inventory of thousands
#: of hosts is a few hundred kilobytes).
MAX_INPUT_BYTES = 8 * 1024 * 1024


class UnsafeInput(ValueError):
    """The file is not a regular file, or larger than the limit; the message says which."""


def read_regular(path: Path, *, limit: int = MAX_INPUT_BYTES) -> bytes:
    """The bytes of ``path``, which must be a regular file of at most ``limit`` bytes.

    Raises:
        UnsafeInput: a FIFO, device, socket or directory, or a file larger than ``limit``.
        OSError: the file cannot be opened or read.
    """
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | getattr(os, "O_CLOEXEC", 0))
    with os.fdopen(fd, "rb") as handle:
        info = os.fstat(handle.fileno())
        if not stat.S_ISREG(info.st_mode):
            raise UnsafeInput("not a regular file (a FIFO, device or socket); use a plain file")
        if info.st_size > limit:
            raise UnsafeInput(f"larger than {limit // (1024 * 1024)} MiB; split it or trim it")
        data = handle.read(limit + 1)
    if len(data) > limit:
        raise UnsafeInput(f"larger than {limit // (1024 * 1024)} MiB; split it or trim it")
    return data
