"""`vcops serve`: the bind address, the systemd unit, the [web] section."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from vcops.cli.serve_cmds import parse_bind
from vcops.config import ConfigError, load_config
from vcops.schedule import render_web_unit


def test_bind_addresses() -> None:
    assert parse_bind("127.0.0.1:8080") == ("127.0.0.1", 8080)
    assert parse_bind("[::1]:9000") == ("::1", 9000)
    for bad in ("localhost:80", "127.0.0.1", "127.0.0.1:0", "127.0.0.1:99999", "0.0.0.0:x"):
        with pytest.raises(click.BadParameter):
            parse_bind(bad)


def test_the_systemd_unit_runs_serve_on_loopback_with_this_checkout(tmp_path: Path) -> None:
    unit = render_web_unit(
        vcops=Path("/opt/vcops/.venv/bin/vcops"),
        workdir=Path("/opt/vcops"),
        inventory=Path("/opt/vcops/inventory"),
        config=Path("/etc/vcops/vcops.toml"),
        bind="127.0.0.1:8080",
    )
    assert "ExecStart=/opt/vcops/.venv/bin/vcops serve --bind 127.0.0.1:8080\n" in unit
    assert "Environment=VCOPS_CONFIG=/etc/vcops/vcops.toml\n" in unit
    assert "NoNewPrivileges=yes" in unit and "WantedBy=multi-user.target" in unit


def test_web_section(tmp_path: Path) -> None:
    path = tmp_path / "vcops.toml"
    path.write_text('[web]\nbase_url = "https://vcops.example.net/"\ntoken_file = "t"\n')
    web = load_config(path).web
    assert (web.base_url, web.bind, web.token_file) == (
        "https://vcops.example.net",
        "127.0.0.1:8080",
        "t",
    )
    path.write_text('[web]\nbase_url = "vcops.example.net"\n')
    with pytest.raises(ConfigError, match="must start with http"):
        load_config(path)
