"""Where vcops finds what it ships (templates, deploys, roles) and where it keeps its state.

Shipped files live inside the package, under ``vcops/share/`` (in a source checkout those
are symlinks to ``templates/``, ``deploys/``, ``roles/``, ``plugins/`` and ``ansible.cfg``
at the repository root; a wheel holds copies), and are found through
:mod:`importlib.resources`, so a ``pip install``-ed vcops runs from any directory::

    share_dir()      .../site-packages/vcops/share
    templates_dir()  $VCOPS_TEMPLATES (set from vcops.toml ``[paths] templates`` by the
                     CLI), else share_dir() / "templates"

The state directory (database, audit anchor, snapshots, masking key, outbox, locks) is
resolved by :func:`vcops.config.resolve_state_dir`; :func:`ensure_state_dir` creates it
private (0700).
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path

TEMPLATES_ENV = "VCOPS_TEMPLATES"


def share_dir() -> Path:
    """The files vcops ships beside its code: ``templates/``, ``deploys/``, ``roles/``,
    ``plugins/``, ``ansible.cfg`` (a real directory: wheels install unpacked)."""
    return Path(str(resources.files("vcops") / "share"))


def templates_origin() -> tuple[Path, str]:
    """The templates root and where it came from (``$VCOPS_TEMPLATES`` or ``package``)."""
    env = os.environ.get(TEMPLATES_ENV)
    if env:
        return Path(env).expanduser().absolute(), f"${TEMPLATES_ENV}"
    return share_dir() / "templates", "package"


def templates_dir() -> Path:
    """The one templates root both engines, the reports and the units render from."""
    return templates_origin()[0]


def deploys_dir() -> Path:
    """The pyinfra deploys and the Ansible playbook shipped with vcops."""
    return share_dir() / "deploys"


def roles_dir() -> Path:
    """The ``vcops_*`` Ansible roles shipped with vcops (templates come from
    :func:`templates_dir`, see :func:`vcops.enforce.ansible.assemble_roles`)."""
    return share_dir() / "roles"


def ansible_cfg() -> Path:
    """The ``ansible.cfg`` shipped with vcops (inventory plugin path relative to it)."""
    return share_dir() / "ansible.cfg"


def ensure_state_dir(path: Path) -> Path:
    """Create the state directory private to its owner (0700) if it does not exist yet.

    An existing directory is left as it is (an operator may have chosen its mode).

    Raises:
        OSError: it cannot be created.
    """
    if not path.is_dir():
        path.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(path, 0o700)
    return path


def create_private_file(path: Path) -> None:
    """Create ``path`` empty with mode 0600 unless it exists (the SQLite database)."""
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    os.close(fd)
