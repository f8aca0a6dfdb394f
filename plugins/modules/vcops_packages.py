#!/usr/bin/python
"""Ansible module: install the Debian packages a vcops area needs, when one is missing.

One ``dpkg-query`` answers which of ``names`` are installed, and nothing else runs when
all of them are: an idempotent apply pays one task per area here, where a probe, a fact,
an install and a check-mode report cost four. When some are missing, check mode reports
them (changed, ``missing``) and installs nothing; otherwise ``apt-get update`` then one
``apt-get install --no-install-recommends`` of the missing ones, as the pyinfra engine
does. It runs on the managed host (any Python 3 Debian ships): no vcops import.
"""

from __future__ import annotations

import re

from ansible.module_utils.basic import AnsibleModule

DOCUMENTATION = r"""
module: vcops_packages
short_description: Install the Debian packages a vcops area needs, when one is missing
description:
  - Asks dpkg which of the packages are installed; installs the missing ones in one apt
    transaction (after apt-get update), or reports them in check mode.
options:
  names:
    description: Debian package names (lower case, digits, +, - and .).
    type: list
    elements: str
    required: true
author: vcops
"""

RETURN = r"""
missing:
  description: The packages that were not installed (and are now, outside check mode).
  type: list
  elements: str
  returned: always
"""

#: Debian policy's package name (5.6.1); anything else is refused, never passed to apt.
NAME_RE = re.compile(r"[a-z0-9][a-z0-9+.-]+")
#: dpkg-query's line for an installed package: "NAME ?i " (wanted install, hold or
#: anything: its state is installed; the error flag is blank).
INSTALLED_RE = re.compile(r"(\S+) [a-z]i ?")
APT_ENV = {"DEBIAN_FRONTEND": "noninteractive"}


def missing_from(names: list[str], dpkg_out: str) -> list[str]:
    """The ``names`` dpkg-query's output does not show installed, in their order."""
    installed = {m.group(1) for m in map(INSTALLED_RE.fullmatch, dpkg_out.splitlines()) if m}
    return [n for n in dict.fromkeys(names) if n not in installed]


def main() -> None:
    module = AnsibleModule(
        argument_spec={"names": {"type": "list", "elements": "str", "required": True}},
        supports_check_mode=True,
    )
    names = module.params["names"]
    bad = [n for n in names if not NAME_RE.fullmatch(n)]
    if bad:
        module.fail_json(msg=f"not Debian package names: {', '.join(map(repr, bad))}")
    # exit 1 when a name is unknown to dpkg: that one is missing, the others still listed
    _rc, out, _err = module.run_command(
        ["dpkg-query", "-W", "-f", "${Package} ${db:Status-Abbrev}\n", *names]
    )
    missing = missing_from(names, out)
    if not missing:
        module.exit_json(changed=False, missing=[], msg="all installed")
    if module.check_mode:
        module.exit_json(changed=True, missing=missing, msg=f"would install {', '.join(missing)}")
    for argv in (
        ["apt-get", "update", "-q"],
        ["apt-get", "install", "-y", "-q", "--no-install-recommends", *missing],
    ):
        rc, _out, err = module.run_command(argv, environ_update=APT_ENV)
        if rc != 0:
            tail = (err.strip().splitlines() or ["no error output"])[-3:]
            module.fail_json(
                msg=f"{' '.join(argv[:2])} failed (exit {rc}): {' / '.join(tail)}",
                missing=missing,
            )
    module.exit_json(changed=True, missing=missing, msg=f"installed {', '.join(missing)}")


if __name__ == "__main__":
    main()
