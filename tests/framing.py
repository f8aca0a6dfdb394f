"""Fact captures kept readable on disk, framed as the host-task layer frames them.

A capture (``tests/fixtures/facts/gather/*.txt``, ``facts/hostile/*.txt``) is a run of
sections, each ``@@vcops-NONCE name rc`` then the command's text; inside the VoIP
``*_conf`` sections, each config file follows ``@@file-NONCE path``. :func:`frame`
turns that into what :mod:`vcops.connectors.hosttask` prints for the ``facts`` task
(base64 records, config files as tars), so tests run the real split and parser.
"""

from __future__ import annotations

import base64
import io
import re
import tarfile

FIXTURE_NONCE = "0123456789abcdef"
TAR_SECTIONS = frozenset(
    {"asterisk_conf", "kamailio_conf", "freeswitch_conf", "banners", "apt_sources"}
)


def _tar(files: dict[str, str]) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, text in files.items():
            data = text.encode()
            info = tarfile.TarInfo(path.lstrip("/"))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def frame(text: str, nonce: str = FIXTURE_NONCE, task: str = "facts") -> str:
    """A readable capture (markers with :data:`FIXTURE_NONCE`) as framed output of the
    ``facts`` task under ``nonce``; later sections of one name win, as on a host."""
    n = FIXTURE_NONCE
    records = []
    for match in re.finditer(
        rf"^@@vcops-{n} (\S+) (\S+)\n(.*?)(?=^@@vcops-{n} |\Z)", text, re.M | re.S
    ):
        name, rc, body = match.group(1), match.group(2), match.group(3).removesuffix("\n")
        if name == "end":
            continue
        if name in TAR_SECTIONS:
            files = {
                m.group(1): m.group(2).removesuffix("\n")
                for m in re.finditer(
                    rf"^@@file-{n} (\S+)\n(.*?)(?=^@@file-{n} |\Z)", body, re.M | re.S
                )
            }
            data = _tar(files)
        else:
            data = body.encode()
        records.append(f"@@vcops-{nonce} {task} {name} {rc}\n{base64.b64encode(data).decode()}")
    start, end = f"@@vcops-{nonce} vcops @start 0\n", f"@@vcops-{nonce} vcops @end 0\n"
    return "\n".join([start, *records, f"@@vcops-{nonce} {task} @end 0\n", end])


Record = tuple[str, int, bytes]


def task_names(script: str) -> list[str]:
    """The host tasks composed into a script vcops sent, in order."""
    return re.findall(r"^T=([a-z][a-z0-9_-]*); t=\$T0/", script, re.M)


def framed(nonce: str, tasks: dict[str, list[Record]]) -> str:
    """What a host prints for these tasks' records (each task ends with status 0)."""
    mark = f"@@vcops-{nonce}"
    out = [f"{mark} vcops @start 0", ""]
    for task, records in tasks.items():
        for name, rc, data in records:
            out += [f"{mark} {task} {name} {rc}", base64.b64encode(data).decode()]
        out += [f"{mark} {task} @end 0", ""]
    out += [f"{mark} vcops @end 0", ""]
    return "\n".join(out)


def said(*lines: str) -> list[Record]:
    """``say`` records (the window steps' answers)."""
    return [("say", 0, line.encode()) for line in lines]
