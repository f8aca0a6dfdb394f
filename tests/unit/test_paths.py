"""What vcops ships is found inside the package; one templates root feeds both engines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.conftest import REPO
from vcops.cli import main
from vcops.enforce.ansible import assemble_roles
from vcops.paths import ansible_cfg, deploys_dir, roles_dir, share_dir, templates_dir


def test_shipped_files_are_inside_the_package() -> None:
    assert share_dir().parent == Path(__import__("vcops").__file__).parent
    assert (templates_dir() / "ssh" / "sshd_config.j2").is_file()
    assert (deploys_dir() / "baseline.py").is_file() and (deploys_dir() / "site.yml").is_file()
    assert (roles_dir() / "vcops_ssh" / "tasks" / "main.yml").is_file()
    assert "inventory_plugins = plugins/inventory" in ansible_cfg().read_text()
    assert (ansible_cfg().parent / "plugins" / "inventory" / "vcops.py").is_file()
    # in a checkout they are the repository's own directories, not copies
    assert templates_dir().resolve() == (REPO / "templates").resolve()


def test_roles_render_from_the_one_templates_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mine = tmp_path / "my-templates"
    shutil.copytree(REPO / "templates", mine)
    monkeypatch.setenv("VCOPS_TEMPLATES", str(mine))
    assert templates_dir() == mine
    roles = assemble_roles(tmp_path / "roles")
    ssh = roles / "vcops_ssh"
    assert (ssh / "templates").resolve() == (mine / "ssh").resolve()
    assert (ssh / "tasks" / "main.yml").read_text() == (
        REPO / "roles" / "vcops_ssh" / "tasks" / "main.yml"
    ).read_text()
    every = {p.name for p in (REPO / "roles").iterdir() if p.is_dir()}
    assert {p.name for p in roles.iterdir()} == every
    linked = {p.name for p in roles.iterdir() if (p / "templates").exists()}
    assert linked >= {p.parent.name for p in (REPO / "roles").glob("*/templates")}


def test_the_config_can_name_the_templates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("VCOPS_TEMPLATES", "")  # restored (unset) after the test: the CLI
    monkeypatch.delenv("VCOPS_TEMPLATES")  # exports [paths] templates to its subprocesses
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "vcops.toml").write_text('[paths]\ntemplates = "tpl"\n')
    assert main(["-c", "etc/vcops.toml", "info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["templates"]["path"] == str(tmp_path / "etc" / "tpl")
    assert info["templates"]["origin"] == "config"
