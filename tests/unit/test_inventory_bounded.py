"""Hostile inventory and configuration files are refused quickly, with one readable line:
alias bombs, deep nesting, huge files, FIFOs and devices, enormous integers, binary TOML."""

from __future__ import annotations

import os
import shlex
import time
from collections.abc import Callable
from pathlib import Path

import pytest
import yaml

from vcops.cli import main
from vcops.config import load_config
from vcops.errors import ConfigError, InventoryError
from vcops.inventory import load_inventory
from vcops.inventory.export import to_ansible_dict
from vcops.inventory.yamlbound import YamlLimit, _load, load_bounded

#: The classic "billion laughs" in YAML: 466 bytes that expand to 9^9 strings.
ALIAS_BOMB = """# a billion laughs: 9 levels of 9 aliases, 9^9 x
a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]
b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a]
c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b]
d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c]
e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d]
f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e]
g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f]
h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g]
servers: [*h, *h, *h, *h, *h, *h, *h, *h, *h]
"""


def _problems(root: Path) -> list[str]:
    started = time.monotonic()
    with pytest.raises(InventoryError) as caught:
        load_inventory(root)
    assert time.monotonic() - started < 2, "a hostile file must be refused quickly"
    return [str(p) for p in caught.value.problems]


def test_an_alias_bomb_is_refused_quickly(make_inventory: Callable[..., Path]) -> None:
    assert len(ALIAS_BOMB.encode()) == 466
    problems = _problems(make_inventory(files={"bomb.yml": ALIAS_BOMB}))
    assert any("bomb.yml" in p and "aliases expand to more than" in p for p in problems), problems


def test_deep_nesting_is_refused(make_inventory: Callable[..., Path]) -> None:
    deep = "servers: " + "[" * 5000 + "]" * 5000 + "\n"
    problems = _problems(make_inventory(files={"deep.yml": deep}))
    assert any("deep.yml" in p and "nested deeper than" in p for p in problems), problems


def test_a_huge_file_is_refused(make_inventory: Callable[..., Path]) -> None:
    huge = "# padding\n" * 1_100_000
    problems = _problems(make_inventory(files={"huge.yml": huge}))
    assert any("huge.yml" in p and "larger than" in p for p in problems), problems


def test_a_fifo_does_not_hang(make_inventory: Callable[..., Path]) -> None:
    root = make_inventory()
    os.mkfifo(root / "pipe.yml")
    problems = _problems(root)
    assert any("pipe.yml" in p and "not a regular file" in p for p in problems), problems


def test_a_device_is_refused(make_inventory: Callable[..., Path]) -> None:
    root = make_inventory()
    (root / "zero.yml").symlink_to("/dev/zero")
    problems = _problems(root)
    assert any("zero.yml" in p and "not a regular file" in p for p in problems), problems


def test_a_5000_digit_port_is_an_inventory_error(make_inventory: Callable[..., Path]) -> None:
    port = "9" * 5000
    text = (
        f"servers:\n  - {{name: big-01, address: 192.0.2.99, port: {port}, roles: [generic],"
        " site: s1, environment: lab}\n"
    )
    problems = _problems(make_inventory(files={"big.yml": text}))
    assert any("big.yml" in p and "integer with more than" in p for p in problems), problems


def test_the_known_hosts_path_is_quoted_for_ansible(make_inventory: Callable[..., Path]) -> None:
    root = make_inventory(
        files={
            "settings.yml": "settings:\n  ssh: {known_hosts_file: 'pinned hosts -o ProxyCommand=x'}\n"
        }
    )
    inv = load_inventory(root)
    hostvars = to_ansible_dict(inv)["all"]["children"]["servers"]["hosts"]["kam-01"]  # type: ignore[index, call-overload]
    words = shlex.split(hostvars["ansible_ssh_common_args"])
    expected = f'UserKnownHostsFile="{root.resolve() / "pinned hosts -o ProxyCommand=x"}"'
    assert words[:2] == ["-o", expected]
    assert not any(w.startswith("ProxyCommand") for w in words)


def test_a_binary_config_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "vcops.toml"
    config.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe" * 10)
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_config(config)
    assert main(["--config", str(config), "audit", "log"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "vcops.toml" in err and "internal error" not in err


def test_a_config_fifo_does_not_hang(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "vcops.toml")
    with pytest.raises(ConfigError, match="not a regular file"):
        load_config(tmp_path / "vcops.toml")


LOADERS = [yaml.SafeLoader, *([yaml.CSafeLoader] if yaml.__with_libyaml__ else [])]


@pytest.mark.parametrize("loader", LOADERS, ids=lambda c: c.__name__)
@pytest.mark.parametrize(
    ("text", "message"),
    [
        (ALIAS_BOMB, "aliases expand to more than"),
        ("servers: " + "[" * 100 + "]" * 100 + "\n", "nested deeper than"),
        (f"port: {'9' * 5000}\n", "an integer with more than"),
        (f"port: -0x{'f' * 40}\n", "an integer with more than"),
    ],
)
def test_each_parser_meets_the_same_limits(
    loader: type[yaml.SafeLoader], text: str, message: str
) -> None:
    """The limits hold under libyaml's parser (the one used when PyYAML has it) as under
    PyYAML's own, before a malformed document falls back to PyYAML for its words."""
    with pytest.raises(YamlLimit, match=message) as caught:
        _load(text, loader)
    assert caught.value.line == (2 if text == ALIAS_BOMB else 1)  # the root, after a comment


def test_a_malformed_document_is_described_in_pyyaml_s_words() -> None:
    text = "servers:\n  - [a, b\n"
    with pytest.raises(yaml.YAMLError) as own:
        _load(text, yaml.SafeLoader)
    with pytest.raises(yaml.YAMLError) as loaded:
        load_bounded(text)
    assert str(loaded.value) == str(own.value)


@pytest.mark.parametrize("name", ["servers.yml", "settings.yml", "devices.yml", "groups.yml"])
def test_both_parsers_build_the_same_inventory_data(name: str) -> None:
    text = (Path(__file__).parents[2] / "inventory" / name).read_text()
    data = [_load(text, loader)[1] for loader in LOADERS]
    assert data[0] and all(d == data[0] for d in data)
