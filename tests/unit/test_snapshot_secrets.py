"""Every secret in the corpus is masked through the real build path; plain lines are kept.

``tests/fixtures/snapshot/secrets/corpus.tsv`` holds secret-bearing lines for every
platform and file kind vcops collects (``«...»`` marks each secret); ``kept.tsv`` holds
lines that look credential-like but hold nothing secret. Server lines go into a tar at
their path and through :func:`build_server_snapshot`; device lines through
:func:`build_device_snapshot`, exactly as ``snapshot take`` does.
"""

from __future__ import annotations

import io
import re
import tarfile

import pytest

from tests.conftest import FIXTURES
from vcops.snapshot.build import build_device_snapshot, build_server_snapshot
from vcops.snapshot.collect import Section
from vcops.snapshot.mask import MARKER_RE

KEY = b"vcops-test-mask-key-0123456789ab"
SECRETS = FIXTURES / "snapshot" / "secrets"
PLATFORMS = {"ios", "eos", "nxos_ssh", "junos"}
_MARK = re.compile(r"«([^»]*)»")


def _rows(name: str) -> list[tuple[str, str]]:
    rows = []
    for line in (SECRETS / name).read_text().splitlines():
        if line.strip() and not line.startswith("#"):
            where, _, text = line.partition("\t")
            rows.append((where, text.replace("\\n", "\n") + "\n"))
    return rows


CORPUS = _rows("corpus.tsv")
KEPT = _rows("kept.tsv")


def build(where: str, text: str) -> str:
    """Everything the store would hold for a host whose file (or config) is ``text``."""
    if where in PLATFORMS:
        snap = build_device_snapshot("dev-01", where, text, None, "netmiko", KEY)
    else:
        data = text.encode()
        buffer = io.BytesIO()
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            info = tarfile.TarInfo(where.lstrip("/"))
            info.size, info.mode = len(data), 0o640
            tar.addfile(info, io.BytesIO(data))
        sections = {"files": Section(rc=0, data=buffer.getvalue())}
        snap = build_server_snapshot("srv-01", sections, [where.lstrip("/")], KEY)
        assert f"files{where}" in snap.files, snap.warnings
        return snap.files[f"files{where}"]
    return snap.files["running-config.txt"]


def test_the_corpus_covers_every_platform_and_file_kind() -> None:
    secrets = [s for _, text in CORPUS for s in _MARK.findall(text)]
    assert len(CORPUS) >= 60 and len(secrets) >= 60
    assert all("canary" in s for s in secrets)
    wheres = {w for w, _ in CORPUS}
    assert wheres >= PLATFORMS
    for tree in ("asterisk", "freeswitch", "kamailio", "apt", "chrony", "fail2ban"):
        assert any(w.startswith(f"/etc/{tree}/") for w in wheres), tree
    assert {"/etc/shadow", "/etc/wireguard/wg0.conf"} <= wheres


@pytest.mark.parametrize(
    ("where", "text"), CORPUS, ids=[f"{w}:{i}" for i, (w, _) in enumerate(CORPUS)]
)
def test_every_secret_is_masked_through_the_build(where: str, text: str) -> None:
    secrets = _MARK.findall(text)
    plain = _MARK.sub(lambda m: m.group(1), text)
    stored = build(where, plain)
    for secret in secrets:
        assert secret not in stored, f"{secret!r} leaked:\n{stored}"
    assert "canary" not in stored.lower(), stored
    assert MARKER_RE.search(stored)
    # a rotated secret shows as a change, and neither value is revealed
    rotated = _MARK.sub(lambda m: m.group(1).replace("canary", "canarz"), text)
    after = build(where, rotated)
    assert after != stored
    assert "canar" not in after.lower() and "canar" not in stored.lower()
    assert len(after.splitlines()) == len(stored.splitlines())


@pytest.mark.parametrize(("where", "text"), KEPT, ids=[f"{w}:{i}" for i, (w, _) in enumerate(KEPT)])
def test_lines_without_a_secret_are_stored_as_they_are(where: str, text: str) -> None:
    stored = build(where, text)
    assert not MARKER_RE.search(stored), stored
    assert text.strip() in stored
