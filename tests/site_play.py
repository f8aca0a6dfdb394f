"""The roles ``deploys/site.yml`` applies, in play order, with each one's ``when``
(listed under ``roles:`` or included by a task), for the tests that check the playbook."""

from __future__ import annotations

from pathlib import Path

import yaml

SITE = Path(__file__).resolve().parents[1] / "deploys" / "site.yml"
INCLUDE = "ansible.builtin.include_role"


def site_roles() -> dict[str, str | None]:
    """Role name -> its ``when`` (None: every host), in the order the play runs them."""
    play = yaml.safe_load(SITE.read_text())[0]
    roles: dict[str, str | None] = {r["role"]: r.get("when") for r in play["roles"]}
    for task in play.get("tasks", []):
        if INCLUDE in task:
            roles[task[INCLUDE]["name"]] = task.get("when")
    return roles
