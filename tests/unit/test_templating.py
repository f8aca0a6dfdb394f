"""One template loader: the engines' config files, the emails, the systemd units and the
device templates all come from the one root, ``$VCOPS_TEMPLATES`` when it is set."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.enforce.files import HostState
from vcops.enforce.render import desired_files
from vcops.enforce.vars import vars_from_settings
from vcops.errors import ConfigError
from vcops.paths import templates_dir
from vcops.schedule import render_units
from vcops.templating import environment, render_config, template_names

MARK = "# served from the operator's own templates"


@pytest.fixture
def own_templates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    root = tmp_path / "templates"
    shutil.copytree(templates_dir(), root)
    for name in ("ssh/sshd_config.j2", "systemd/vcops-scan.service.j2", "email/drift.txt.j2"):
        path = root / name
        path.write_text(MARK + "\n" + path.read_text())
    monkeypatch.setenv("VCOPS_TEMPLATES", str(root))
    return root


def test_every_renderer_reads_vcops_templates(own_templates: Path) -> None:
    assert templates_dir() == own_templates
    variables = vars_from_settings(DEFAULT_SETTINGS, ["kamailio"], ["10.0.0.0/8"], None, "h")
    sshd = next(f for f in desired_files(variables, HostState()) if f.path.endswith("sshd_config"))
    assert sshd.content.startswith(MARK)  # the engines' config files (and --check)
    mail = environment("report").get_template("email/drift.txt.j2")
    assert mail.filename is not None and Path(mail.filename).is_relative_to(own_templates)
    units = render_units(
        vcops=Path("/usr/bin/vcops"), workdir=own_templates, inventory=own_templates,
        config=None, scan_calendar="daily", windows=False,
    )  # fmt: skip
    assert units["vcops-scan.service"].startswith(MARK)
    assert template_names("netdev/ios") and all(
        (own_templates / n).is_file() for n in template_names("netdev/ios")
    )


def test_config_is_not_escaped_and_mail_html_is(own_templates: Path) -> None:
    (own_templates / "t.conf.j2").write_text("{{ v }}\n")
    (own_templates / "t.html.j2").write_text("{{ v }}\n")
    assert render_config("t.conf.j2", {"v": "a<b"}) == "a<b\n"
    assert environment("report").get_template("t.html.j2").render(v="a<b") == "a&lt;b\n"
    with pytest.raises(ConfigError, match=r"not set|undefined"):
        render_config("t.conf.j2", {})
    with pytest.raises(ConfigError, match="not found"):
        render_config("nope.j2", {})
