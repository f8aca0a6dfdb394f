"""SSH signatures made in-process for ed25519 keys: byte for byte what ``ssh-keygen -Y
sign`` writes, and verified by ``ssh-keygen -Y verify``; other keys still go through
ssh-keygen."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vcops import sshsig


def _key(tmp_path: Path, kind: str, passphrase: str = "") -> Path:
    key = tmp_path / f"key-{kind}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", passphrase, "-C", "t", "-f", str(key)],
        check=True,
        capture_output=True,
    )
    return key


def _keygen_signature(tmp_path: Path, key: Path, data: bytes, namespace: str) -> str:
    message = tmp_path / "message"
    message.write_bytes(data)
    subprocess.run(
        ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", namespace, str(message)],
        check=True,
        capture_output=True,
    )
    return (tmp_path / "message.sig").read_text()


@pytest.mark.parametrize("data", [b"", b"anchor 42 abc", bytes(range(256)) * 40])
def test_an_ed25519_signature_is_what_ssh_keygen_writes(tmp_path: Path, data: bytes) -> None:
    key = _key(tmp_path, "ed25519")
    ours = sshsig.sign(key, data, "vcops-audit")
    assert ours == _keygen_signature(tmp_path, key, data, "vcops-audit")
    public = (tmp_path / "key-ed25519.pub").read_text()
    assert sshsig.verify(public, "ops", data, ours, "vcops-audit")
    assert not sshsig.verify(public, "ops", data + b"x", ours, "vcops-audit")
    assert not sshsig.verify(public, "ops", data, ours, "vcops-window")


def test_other_keys_are_signed_by_ssh_keygen(tmp_path: Path) -> None:
    key = _key(tmp_path, "ecdsa")
    signature = sshsig.sign(key, b"payload", "vcops-window")
    public = (tmp_path / "key-ecdsa.pub").read_text()
    assert sshsig.verify(public, "ops", b"payload", signature, "vcops-window")


def test_a_key_with_a_passphrase_is_left_to_ssh_keygen(tmp_path: Path) -> None:
    key = _key(tmp_path, "ed25519", passphrase="secret-pass")
    with pytest.raises(sshsig.SignatureError, match="could not sign"):
        sshsig.sign(key, b"payload", "vcops-window")
