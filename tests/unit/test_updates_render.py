"""The updates area's files: the security sources file only where the host lacks the
suite (decided by the aptsources probe run on the host), rendered for Debian or for the
mirror; needrestart in list mode. The probe itself runs here on sample trees."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from vcops.baseline.settings import DEFAULT_SETTINGS
from vcops.enforce.files import HostState
from vcops.enforce.helper import aptsources_source, state_spec
from vcops.enforce.render import (
    NEEDRESTART_CONF,
    SECURITY_SOURCES,
    desired_files,
    lists_stale,
    security_sources_file,
)
from vcops.enforce.vars import vars_from_settings
from vcops.facts.aptsources import parse_deb822

MIRROR = "http://10.213.0.1:8642/"


def _vars(**settings: object) -> dict[str, object]:
    s = DEFAULT_SETTINGS.model_copy(update=settings)
    return dict(vars_from_settings(s, ["generic"], ["10.213.0.0/24"], None, "lab-generic-01"))


def _probe(codename: str, missing: list[str]) -> HostState:
    return HostState(
        probes={"apt_security": json.dumps({"codename": codename, "missing": missing})}
    )


def test_the_file_is_written_only_where_the_suite_is_missing() -> None:
    v = _vars()
    assert security_sources_file(v, _probe("bookworm", [])) is None  # the host has it
    assert security_sources_file(v, HostState(probes={"apt_security": "garbage"})) is None
    f = security_sources_file(v, _probe("trixie", ["trixie-security", "trixie-updates"]))
    assert f is not None and f.path == SECURITY_SOURCES
    entries = parse_deb822(f.content, f.path)
    assert [(e.uris, e.suites) for e in entries] == [
        (("http://deb.debian.org/debian-security",), ("trixie-security",)),
        (("http://deb.debian.org/debian",), ("trixie-updates",)),
    ]
    assert "Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg" in f.content
    # planning the paths to read (no probe yet) lists it
    assert SECURITY_SOURCES in [p.path for p in desired_files(v, HostState())]


def test_the_mirror_form_for_a_flat_trusted_repository() -> None:
    v = _vars(
        apt_security_mirror=MIRROR, apt_security_mirror_suite="./", apt_security_mirror_trusted=True
    )
    f = security_sources_file(v, _probe("bookworm", ["bookworm-security"]))
    assert f is not None
    assert f"URIs: {MIRROR}\nSuites: ./\nTrusted: yes\n" in f.content
    assert "Components" not in f.content
    signed = security_sources_file(
        _vars(apt_security_mirror="http://mirror.example/debian-security"),
        _probe("bookworm", ["bookworm-security"]),
    )
    assert signed is not None and "Suites: bookworm-security\nComponents: main\nSigned-By" in (
        signed.content
    )


def test_needrestart_conf_and_the_probe_in_the_state_spec() -> None:
    v = _vars(apt_security_mirror=MIRROR)
    conf = next(f for f in desired_files(v, HostState()) if f.path == NEEDRESTART_CONF)
    assert "$nrconf{restart} = 'l';" in conf.content and conf.validate == ("perl", "-c", "%s")
    probes = state_spec(v, [])["probes"]
    assert isinstance(probes, dict) and probes["apt_security"][-1] == MIRROR


def test_the_probe_runs_as_a_script(tmp_path: Path) -> None:
    """The module is its own probe: stdlib only, ``python3 -c SOURCE MIRROR``."""
    script = aptsources_source()
    proc = subprocess.run(
        [sys.executable, "-I", "-c", script, MIRROR],
        capture_output=True, text=True, check=False, cwd=tmp_path,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert set(data) == {"codename", "missing", "lists_age"} and isinstance(data["missing"], list)
    assert isinstance(data["lists_age"], int)


def test_stale_or_missing_lists_are_refreshed_by_both_engines() -> None:
    v = _vars(apt_lists_max_age_days=2)

    def state(age: int) -> HostState:
        probe = {"codename": "bookworm", "missing": [], "lists_age": age}
        return HostState(probes={"apt_security": json.dumps(probe)})

    assert not lists_stale(v, state(3600)) and not lists_stale(v, state(2 * 86400))
    assert lists_stale(v, state(2 * 86400 + 1)) and lists_stale(v, state(-1))
    assert not lists_stale(v, HostState())  # no probe: nothing to decide on
