"""The host-key lockout guard: apply refuses a server whose pinned known_hosts key is a
type the ssh baseline stops offering (real keys, parsed by asyncssh as connections do)."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from vcops.enforce.apply import run_apply
from vcops.enforce.hostkeys import lockout_problems, pinned_key_types
from vcops.errors import InventoryError
from vcops.inventory import load_inventory

ADDRESS = "192.0.2.7"


def _public_key(tmp_path: Path, kind: str) -> str:
    key = tmp_path / f"host_{kind}"
    subprocess.run(
        ["ssh-keygen", "-q", "-t", kind, "-N", "", "-f", str(key)], check=True, timeout=60
    )
    algorithm, blob = key.with_suffix(".pub").read_text().split()[:2]
    return f"{algorithm} {blob}"


def _inventory(tmp_path: Path, pins: list[str], rsa: bool = False) -> Path:
    root = tmp_path / "inv"
    root.mkdir()
    (root / "known_hosts").write_text("".join(f"{ADDRESS} {p}\n" for p in pins))
    extra = ", vars: {baseline_ssh_rsa_host_key: true}" if rsa else ""
    (root / "i.yml").write_text(
        "settings: {ssh: {user: vcops, known_hosts_file: known_hosts}}\nsites: [{name: s1}]\n"
        f"servers: [{{name: a, address: {ADDRESS}, roles: [generic], site: s1, "
        f"environment: lab{extra}}}]\n"
    )
    return root


def test_an_ecdsa_only_pin_is_refused_before_anything_changes(tmp_path: Path) -> None:
    inv = load_inventory(_inventory(tmp_path, [_public_key(tmp_path, "ecdsa")]))
    [problem] = lockout_problems(inv, list(inv.servers))
    assert "ecdsa-sha2-nistp256" in str(problem) and "ssh-keyscan -t ed25519" in str(problem)
    with pytest.raises(InventoryError, match="pins only ecdsa"):
        run_apply(inv, "a")  # refused before the policy gate, the engines or any SSH


def test_an_ed25519_pin_or_an_allowed_rsa_pin_passes(tmp_path: Path) -> None:
    ed = _public_key(tmp_path, "ed25519")
    inv = load_inventory(_inventory(tmp_path, [ed, _public_key(tmp_path, "ecdsa")]))
    assert lockout_problems(inv, list(inv.servers)) == []
    rsa = tmp_path / "rsa"
    rsa.mkdir()
    rsa_only = [_public_key(rsa, "rsa")]
    inv = load_inventory(_inventory(rsa, rsa_only))
    assert len(lockout_problems(inv, list(inv.servers))) == 1  # RSA no longer offered
    both = rsa / "allowed"
    both.mkdir()
    inv = load_inventory(_inventory(both, rsa_only, rsa=True))
    assert lockout_problems(inv, list(inv.servers)) == []


def test_no_pin_is_not_judged(tmp_path: Path) -> None:
    inv = load_inventory(_inventory(tmp_path, []))
    assert lockout_problems(inv, list(inv.servers)) == []
    assert pinned_key_types(tmp_path / "missing", ADDRESS, 22) is None
