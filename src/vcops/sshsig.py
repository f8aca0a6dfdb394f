"""SSH signatures (``ssh-keygen -Y sign`` / ``-Y verify``): the one place vcops signs.

Used for the change board's decisions and the requester's signature on a window's
terms (namespace ``vcops-window``), and for the audit log's anchor (``vcops-audit``).
Keys are compared by their type and base64 body only (the comment is free text).

Example::

    sig = sign(Path("~/.ssh/id_ed25519"), b"payload", "vcops-window")
    verify("ssh-ed25519 AAAA...", "dana", b"payload", sig, "vcops-window")  # True
"""

from __future__ import annotations

import base64
import hashlib
import os
import struct
import subprocess
import tempfile
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey


class SignatureError(Exception):
    """ssh-keygen could not sign or read a key; the caller names the context."""


def _run(args: list[str], stdin: bytes | None = None) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        args,
        input=stdin if stdin is not None else b"",
        capture_output=True,
        check=False,
        timeout=30,
    )


def key_id(public_key: str) -> str:
    """A public key without its comment: ``ssh-ed25519 AAAA...`` (what identity compares)."""
    return " ".join(public_key.split()[:2])


def same_key(a: str, b: str) -> bool:
    """Whether two public keys are the same key (comments ignored)."""
    return bool(key_id(a)) and key_id(a) == key_id(b)


def public_key_of(key: Path) -> str:
    """The public key of a private key file (``KEY.pub`` when present, else ``ssh-keygen -y``).

    Raises:
        SignatureError: the file is not a readable private key.
    """
    pub = key.with_name(key.name + ".pub")
    if pub.exists():
        return key_id(pub.read_text())
    proc = _run(["ssh-keygen", "-y", "-f", str(key)])
    if proc.returncode != 0:
        raise SignatureError(
            f"{key}: not a readable SSH private key ({proc.stderr.decode(errors='replace').strip()})"
        )
    return key_id(proc.stdout.decode())


def fingerprint(public_key: str) -> str:
    """``SHA256:...`` of a public key (``ssh-keygen -l``)."""
    proc = _run(["ssh-keygen", "-l", "-f", "-"], f"{key_id(public_key)}\n".encode())
    words = proc.stdout.decode(errors="replace").split()
    return words[1] if proc.returncode == 0 and len(words) > 1 else "?"


def generate_key(key: Path, comment: str) -> None:
    """Create an ed25519 key without a passphrase at ``key`` (mode 0600) and ``key.pub``,
    unless another process created it first (the key is made aside and linked in, so
    two first uses never overwrite or half-read each other's key).

    Raises:
        SignatureError: ssh-keygen failed.
    """
    key.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix=".vcops-key-", dir=key.parent) as tmp:
        fresh = Path(tmp) / "key"
        old = os.umask(0o077)
        try:
            proc = _run(
                ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", str(fresh)]
            )
        finally:
            os.umask(old)
        if proc.returncode != 0:
            raise SignatureError(
                f"{key}: ssh-keygen could not create the key "
                f"({proc.stderr.decode(errors='replace').strip()})"
            )
        fresh.chmod(0o600)
        try:
            os.link(fresh, key)
        except FileExistsError:
            return  # another process made it first: keep theirs
        pub = key.with_name(key.name + ".pub")
        pub.unlink(missing_ok=True)
        os.link(fresh.with_name("key.pub"), pub)


def sign(key: Path, data: bytes, namespace: str) -> str:
    """The armored SSH signature of ``data`` by ``key`` in ``namespace``: made here for
    an unencrypted ed25519 key file (the same bytes ``ssh-keygen -Y sign`` writes, since
    ed25519 signatures are deterministic, without starting a process: the audit log
    signs its anchor twice per entry), by ``ssh-keygen`` for any other key.

    Raises:
        SignatureError: ssh-keygen could not sign (missing key, passphrase, agent).
    """
    own = _ed25519(key)
    if own is not None:
        return _sshsig(own, data, namespace)
    with tempfile.TemporaryDirectory(prefix="vcops-sign-") as tmp:
        message = Path(tmp) / "message"
        message.write_bytes(data)
        proc = _run(
            ["ssh-keygen", "-q", "-Y", "sign", "-f", str(key), "-n", namespace, str(message)]
        )
        if proc.returncode != 0:
            raise SignatureError(
                f"{key}: ssh-keygen could not sign ({proc.stderr.decode(errors='replace').strip()})"
            )
        return (Path(tmp) / "message.sig").read_text()


def _ed25519(key: Path) -> Ed25519PrivateKey | None:
    """The key when the file holds an unencrypted ed25519 private key, else None."""
    try:
        loaded = serialization.load_ssh_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError):
        return None
    return loaded if isinstance(loaded, Ed25519PrivateKey) else None


def _wire(value: bytes) -> bytes:
    return struct.pack(">I", len(value)) + value


def _sshsig(key: Ed25519PrivateKey, data: bytes, namespace: str) -> str:
    """An armored SSHSIG (OpenSSH's PROTOCOL.sshsig, hash sha512) of ``data``."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    public = _wire(b"ssh-ed25519") + _wire(raw)
    signed = (
        b"SSHSIG"
        + _wire(namespace.encode())
        + _wire(b"")
        + _wire(b"sha512")
        + _wire(hashlib.sha512(data).digest())
    )
    signature = _wire(b"ssh-ed25519") + _wire(key.sign(signed))
    blob = (
        b"SSHSIG"
        + struct.pack(">I", 1)
        + _wire(public)
        + _wire(namespace.encode())
        + _wire(b"")
        + _wire(b"sha512")
        + _wire(signature)
    )
    text = base64.b64encode(blob).decode("ascii")
    lines = [text[i : i + 70] for i in range(0, len(text), 70)]
    return (
        "\n".join(["-----BEGIN SSH SIGNATURE-----", *lines, "-----END SSH SIGNATURE-----"]) + "\n"
    )


def verify(public_key: str, principal: str, data: bytes, signature: str, namespace: str) -> bool:
    """Whether ``signature`` is ``public_key``'s signature of ``data`` in ``namespace``."""
    if not key_id(public_key) or not signature.strip():
        return False
    with tempfile.TemporaryDirectory(prefix="vcops-verify-") as tmp:
        allowed = Path(tmp) / "allowed_signers"
        allowed.write_text(f'{principal} namespaces="{namespace}" {key_id(public_key)}\n')
        sig = Path(tmp) / "message.sig"
        sig.write_text(signature)
        proc = _run(
            [
                "ssh-keygen",
                "-Y",
                "verify",
                "-f",
                str(allowed),
                "-I",
                principal,
                "-n",
                namespace,
                "-s",
                str(sig),
            ],
            data,
        )
    return proc.returncode == 0


ARMOR_BEGIN = "-----BEGIN SSH SIGNATURE-----"
ARMOR_END = "-----END SSH SIGNATURE-----"
MAX_SIGNATURE_CHARS = 16_000


def normalise(signature: str) -> str:
    """The armored signature alone, re-wrapped (pasted text may carry blank lines or CRLF).

    Raises:
        SignatureError: not the text ``ssh-keygen -Y sign`` writes, or far too long.
    """
    text = signature.replace("\r\n", "\n").strip()
    if len(text) > MAX_SIGNATURE_CHARS:
        raise SignatureError(
            f"signature too long ({len(text)} characters); expected an SSHSIG block"
        )
    if ARMOR_BEGIN not in text or ARMOR_END not in text:
        raise SignatureError(
            "not an SSH signature: expected the text ssh-keygen -Y sign writes "
            f"({ARMOR_BEGIN} ... {ARMOR_END})"
        )
    body = text.split(ARMOR_BEGIN, 1)[1].split(ARMOR_END, 1)[0]
    lines = [line.strip() for line in body.splitlines() if line.strip()]
    return "\n".join([ARMOR_BEGIN, *lines, ARMOR_END]) + "\n"


def _string(data: bytes, offset: int) -> tuple[bytes, int]:
    if offset + 4 > len(data):
        raise ValueError("truncated")
    length = int.from_bytes(data[offset : offset + 4], "big")
    end = offset + 4 + length
    if end > len(data):
        raise ValueError("truncated")
    return data[offset + 4 : end], end


def signer_key(signature: str) -> tuple[str, str]:
    """(public key ``type base64``, namespace) read from an armored SSHSIG.

    The key inside a signature is public data: it names who claims to have signed, so a
    refusal can say which key it was; only :func:`verify` proves anything.

    Raises:
        SignatureError: not a readable SSH signature.
    """
    text = normalise(signature)
    body = "".join(text.splitlines()[1:-1])
    try:
        blob = base64.b64decode(body, validate=True)
        if not blob.startswith(b"SSHSIG"):
            raise ValueError("no SSHSIG magic")
        pub, offset = _string(blob, 6 + 4)  # after the magic and the version
        namespace, _ = _string(blob, offset)
        key_type, _ = _string(pub, 0)
    except ValueError as exc:
        raise SignatureError(f"not a readable SSH signature ({exc})") from exc
    return (
        f"{key_type.decode(errors='replace')} {base64.b64encode(pub).decode()}",
        namespace.decode(errors="replace"),
    )
