"""The ``vcops_packages`` Ansible module (``plugins/modules``), run as Ansible runs a
module (a process reading its arguments file) against this machine's real dpkg: an
installed package asks for nothing, a missing one is reported in check mode and never
installed there, a name that is not a Debian package name is refused before any
command. The lab tests (test_apply_ansible, Molecule) install with it on real hosts."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

MODULE = Path(__file__).parents[2] / "plugins/modules/vcops_packages.py"
pytestmark = pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs dpkg")


def run_module(tmp_path: Path, args: dict[str, object]) -> dict[str, object]:
    path = tmp_path / "args.json"
    path.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
    done = subprocess.run(
        [sys.executable, str(MODULE), str(path)], capture_output=True, text=True, check=False
    )
    result = json.loads(done.stdout)
    assert isinstance(result, dict)
    return result


def test_installed_packages_change_nothing(tmp_path: Path) -> None:
    result = run_module(tmp_path, {"names": ["coreutils", "dpkg"]})
    assert (result["changed"], result["missing"], result["msg"]) == (False, [], "all installed")


def test_check_mode_reports_the_missing_ones_and_installs_nothing(tmp_path: Path) -> None:
    names = ["coreutils", "vcops-no-such-package", "vcops-nor-this"]
    result = run_module(tmp_path, {"names": names, "_ansible_check_mode": True})
    assert result["changed"] is True
    assert result["missing"] == ["vcops-no-such-package", "vcops-nor-this"]
    assert result["msg"] == "would install vcops-no-such-package, vcops-nor-this"


@pytest.mark.parametrize("name", ["-oAPT::Get::Trivial-Only=1", "Foo", "a b", "x", "pkg;id"])
def test_a_name_that_is_not_a_package_is_refused(tmp_path: Path, name: str) -> None:
    result = run_module(tmp_path, {"names": ["coreutils", name], "_ansible_check_mode": True})
    assert result.get("failed") is True
    assert result["msg"] == f"not Debian package names: {name!r}"


def test_only_fully_installed_lines_count() -> None:
    spec = importlib.util.spec_from_file_location("vcops_packages", MODULE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    # installed, config files left, unpacked only, installed, held, broken (error flag R)
    dpkg = "a ii \nb rc \nc iU \nd ii\ne hi \ng iiR\n"
    assert module.missing_from(["a", "b", "c", "d", "e", "f", "g", "a"], dpkg) == [
        "b",
        "c",
        "f",
        "g",
    ]
