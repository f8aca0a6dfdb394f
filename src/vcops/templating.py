"""The one template loader: every Jinja2 environment vcops renders with comes from here.

Config files for both engines (pyinfra deploys render through :func:`render_config`;
the Ansible roles' ``templates/`` link to the same files), ``vcops apply --check``, the
device intended configs (``netdev/<platform>/``), the emails and the systemd units all
load from the one root :func:`vcops.paths.templates_dir` returns (``$VCOPS_TEMPLATES``
when set). Two flavours, one factory:

- ``config``: no autoescaping (sshd_config, nftables ...), ``trim_blocks``, trailing
  newline kept, an undefined variable is an error;
- ``report`` (emails, web pages, systemd units): HTML autoescaped (``*.html``,
  ``*.html.j2`` and strings), text not, an undefined variable is an error.

Example::

    render_config("ssh/sshd_config.j2", variables)
    environment("report").get_template("email/drift.txt.j2").render(report=report)
"""

from __future__ import annotations

from collections.abc import Mapping
from functools import lru_cache
from typing import Literal

import jinja2

from vcops.errors import ConfigError
from vcops.paths import templates_dir

Flavour = Literal["config", "report"]


@lru_cache(maxsize=8)
def _environment(root: str, flavour: Flavour) -> jinja2.Environment:
    loader = jinja2.FileSystemLoader(root)
    if flavour == "config":
        return jinja2.Environment(
            loader=loader,
            undefined=jinja2.StrictUndefined,
            trim_blocks=True,
            lstrip_blocks=False,
            keep_trailing_newline=True,
            autoescape=False,  # noqa: S701 - config files, not HTML
        )
    return jinja2.Environment(
        loader=loader,
        autoescape=jinja2.select_autoescape(
            enabled_extensions=("html", "html.j2"), default_for_string=True
        ),
        undefined=jinja2.StrictUndefined,
        trim_blocks=False,
        keep_trailing_newline=True,
    )


def environment(flavour: Flavour) -> jinja2.Environment:
    """The environment of ``flavour`` over the current templates root (cached per root)."""
    return _environment(str(templates_dir()), flavour)


def template_names(folder: str) -> list[str]:
    """The ``*.j2`` templates directly in ``folder`` (``netdev/ios``), in name order."""
    return sorted(f"{folder}/{p.name}" for p in (templates_dir() / folder).glob("*.j2"))


def render_config(name: str, variables: Mapping[str, object]) -> str:
    """Render the config template ``name`` with ``variables``.

    Raises:
        ConfigError: the template is missing or uses a variable that is not set.
    """
    try:
        return environment("config").get_template(name).render(**variables)
    except jinja2.TemplateNotFound as exc:
        raise ConfigError(
            f"{templates_dir() / name}: not found; reinstall vcops or fix $VCOPS_TEMPLATES"
        ) from exc
    except jinja2.UndefinedError as exc:
        raise ConfigError(f"templates/{name}: {exc.message}; add it to vcops.enforce.vars") from exc
