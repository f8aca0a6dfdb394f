"""VoIP service controls on config-file fixtures: stock, hardened, broken and missing."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from tests.conftest import FIXTURES
from vcops.baseline.context import ServerContext
from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.baseline.voip import parse_asterisk_ini, preprocess_kamailio
from vcops.baseline.voip_catalog import VOIP_CONTROLS
from vcops.facts.server import ServerFacts

VOIP = FIXTURES / "facts" / "voip"
CASES = sorted(p.name for p in VOIP.iterdir() if p.is_dir())


def facts_from(case: str) -> ServerFacts:
    root = VOIP / case / "files"
    files = {"/" + str(p.relative_to(root)): p.read_text() for p in root.rglob("*") if p.is_file()}
    pick = lambda prefix: {k: v for k, v in files.items() if k.startswith(prefix)}  # noqa: E731
    version = VOIP / case / "version.txt"
    return ServerFacts(
        asterisk_files=pick("/etc/asterisk/"),
        kamailio_files=pick("/etc/kamailio/"),
        freeswitch_files=pick("/etc/freeswitch/"),
        asterisk_version=version.read_text().strip() if version.exists() else None,
    )


@pytest.mark.parametrize("case", CASES)
def test_voip_controls_on_fixtures(case: str) -> None:
    expected: dict[str, str] = json.loads((VOIP / f"{case}.expected.json").read_text())
    facts = facts_from(case)
    ctx = ServerContext(
        settings=DEFAULT_SETTINGS,
        roles=frozenset({"asterisk", "kamailio", "freeswitch"}),
        management_networks=(),
        now=datetime(2026, 11, 28, tzinfo=UTC),
    )
    got = {c.id: c.check(facts, ctx) for c in VOIP_CONTROLS}
    assert {k: v.status for k, v in got.items()} == expected
    for result in got.values():
        text = f"{result.expected} {result.actual} {result.detail}"
        for secret in ("canary", "mysecret", "ClueCon", "1234567890", "set-by-vault"):
            assert secret not in text, (secret, text)


def test_asterisk_templates_fold_into_endpoints() -> None:
    sections = parse_asterisk_ini(
        "[t](!)\ntype=endpoint\nmedia_encryption=sdes ; comment\n[a](t)\nauth=x\n"
    )
    assert sections[0].is_template and sections[1].templates == ["t"]
    assert sections[0].values["media_encryption"] == ["sdes"]


def test_kamailio_preprocessor_honours_defines_and_nesting() -> None:
    cfg = (
        "#!define A\n#!ifdef A\nyes_a\n#!ifdef B\nyes_b\n#!else\nno_b\n#!endif\n#!endif\n"
        "#!ifndef A\nno_a\n#!endif\n"
    )
    assert preprocess_kamailio(cfg).split() == ["yes_a", "no_b"]
    assert preprocess_kamailio(cfg, {"B"}).split() == ["yes_a", "yes_b"]


def test_the_stock_kamailio_config_is_really_stock(tmp_path: Path) -> None:
    text = (VOIP / "kamailio_stock" / "files" / "etc" / "kamailio" / "kamailio.cfg").read_text()
    assert "#!ifdef WITH_ANTIFLOOD" in text and "#!define WITH_ANTIFLOOD" not in text
