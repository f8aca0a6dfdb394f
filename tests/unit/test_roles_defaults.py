"""The Ansible roles enforce what the baseline model says, from the same templates.

- every role default equals the baseline model's default (``role_vars`` of a host with
  no overrides), and every ``vcops_<area>_*`` variable ``role_vars`` produces has a
  default and an argument spec in its role;
- each role's ``templates/`` is a link to ``templates/<area>/`` (the pyinfra deploys'
  templates), and the role and pyinfra use exactly the same template files;
- the playbook applies every role, VoIP roles only on their host roles.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.site_play import site_roles
from vcops.baseline.settings import BaselineSettings
from vcops.enforce import render
from vcops.enforce.vars import ALL_AREAS, vars_from_settings
from vcops.paths import templates_dir

REPO = Path(__file__).resolve().parents[2]
ROLES = REPO / "roles"
DEFAULTS = vars_from_settings(BaselineSettings(), [], [], None, "host")


def _yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def _role_defaults(area: str) -> dict[str, Any]:
    data = _yaml(ROLES / f"vcops_{area}" / "defaults" / "main.yml")
    assert isinstance(data, dict)
    return data


def _task_files(area: str) -> list[Path]:
    role = ROLES / f"vcops_{area}"
    return sorted((role / "tasks").glob("*.yml")) + sorted((role / "handlers").glob("*.yml"))


def _template_srcs(area: str) -> set[str]:
    """Every template a role's tasks name (``src:``, looped ``{{ item }}.j2`` expanded)."""
    names: set[str] = set()
    for path in _task_files(area):
        for task in _yaml(path) or []:
            spec = task.get("ansible.builtin.template")
            if not spec:
                continue
            src = str(spec["src"])
            if "{{ item }}" in src:
                names |= {src.replace("{{ item }}", str(i)) for i in task["loop"]}
            else:
                names.add(src)
    return names


@pytest.mark.parametrize("area", ALL_AREAS)
def test_role_defaults_equal_the_baseline_model_defaults(area: str) -> None:
    defaults = _role_defaults(area)
    shared = {k: v for k, v in defaults.items() if k in DEFAULTS}
    assert shared == {k: DEFAULTS[k] for k in shared}
    # every variable of the area that role_vars produces has a default in the role
    own = {k for k in DEFAULTS if k.startswith(f"vcops_{area}_")}
    assert own <= set(defaults), own - set(defaults)
    # and nothing in the defaults is an area variable role_vars does not know
    unknown = {
        k
        for k in defaults
        if k.startswith(tuple(f"vcops_{a}_" for a in ALL_AREAS))
        and k not in DEFAULTS
        and not k.endswith(("_secret_file", "_secret_dir"))
    }
    assert unknown == set()


@pytest.mark.parametrize("area", ALL_AREAS)
def test_argument_specs_document_every_default_with_the_same_value(area: str) -> None:
    role = ROLES / f"vcops_{area}"
    spec = _yaml(role / "meta" / "argument_specs.yml")["argument_specs"]["main"]["options"]
    defaults = _role_defaults(area)
    assert set(spec) == set(defaults)
    for name, option in spec.items():
        assert option["default"] == defaults[name], name
    galaxy = _yaml(role / "meta" / "main.yml")["galaxy_info"]
    assert galaxy["role_name"] == f"vcops_{area}"


@pytest.mark.parametrize("area", ALL_AREAS)
def test_roles_use_the_shared_templates_the_pyinfra_deploys_use(area: str) -> None:
    link = ROLES / f"vcops_{area}" / "templates"
    assert link.is_symlink(), f"{link} must link to templates/{area}, not copy it"
    assert link.resolve() == (templates_dir() / area).resolve()
    on_disk = {p.name for p in (templates_dir() / area).glob("*.j2")}
    # the names pyinfra renders (vcops.enforce.render), per area directory
    source = Path(render.__file__).read_text()
    pyinfra = {m.split("/", 1)[1] for m in re.findall(r'render_template\(\s*f?"([^"]+)"', source)}
    pyinfra_area = {
        n.replace("{name}", "") for n in pyinfra if (templates_dir() / area / n).exists()
    } | {
        f"{name}.j2"
        for name in ("pjsip.conf", "manager.conf", "http.conf", "sip.conf")
        if area == "asterisk"
    }
    assert _template_srcs(area) == on_disk
    assert pyinfra_area == on_disk


@pytest.mark.parametrize("area", ALL_AREAS)
def test_probes_never_report_a_change_and_secret_tasks_are_no_log(area: str) -> None:
    for path in _task_files(area):
        for task in _yaml(path) or []:
            name = task.get("name", "")
            if name.startswith("Probe"):
                assert task.get("changed_when") is False or "ansible.builtin.stat" in task, name
                assert "ansible.builtin.command" not in task or task.get("check_mode") is False
            if "ansible.builtin.command" in task or "ansible.builtin.shell" in task:
                assert "changed_when" in task or "creates" in str(task), name
            text = yaml.safe_dump(task)
            if "secret" in text.lower() and "vcops_" in text and not name.startswith("Probe"):
                if any(k in task for k in ("ansible.builtin.slurp", "ansible.builtin.set_fact")):
                    assert task.get("no_log") is True, name


def test_validated_installs_for_every_config_a_daemon_reads() -> None:
    want = {
        "ssh": "sshd -t -f %s",
        "firewall": "nft -c -f %s",
        "fail2ban": "fail2ban-client -c",
        "time": "chronyd -p -f %s",
        "updates": "apt-config -c %s dump",
        "kamailio": "kamailio -c -f",
        "logging": "rsyslogd -N1 -f %s",
        "integrity": "aide --config-check --config=%s",
    }
    for area, needle in want.items():
        text = "".join(p.read_text() for p in _task_files(area))
        assert needle in text, area


def test_the_playbook_applies_every_role_by_host_role() -> None:
    play = _yaml(REPO / "deploys" / "site.yml")[0]
    roles = site_roles()
    assert set(roles) == {f"vcops_{a}" for a in ALL_AREAS}
    assert play["hosts"] == "servers"
    assert list(roles)[-1] == "vcops_integrity"  # the AIDE database is built last
    assert "'sbc' in vcops_roles" in roles["vcops_kamailio"]
    assert roles["vcops_asterisk"] == "'asterisk' in vcops_roles"
    assert all(roles[f"vcops_{a}"] is None for a in ALL_AREAS[:7])
