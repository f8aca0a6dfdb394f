"""vcops installed like a tool: a wheel built from the checkout, installed into a fresh
virtualenv in a temporary directory, run from outside the checkout.

``vcops init``, ``inventory check`` and ``info`` run without the lab; a scan and an
apply with each engine run against the session lab, with templates, deploys and roles
found inside the installed package. The wheel is installed without the ``lab`` extra
(the switch simulators' dependencies): ``vcops lab up --switches 0`` brings up a lab
of its own from it (before the session lab comes up: ``lab_free``), scans it through
the ``vcops`` login and sudo, and takes it down; asking that install for a switch
fails with one line naming ``pip install 'vcops[lab]'``. The checkout's ``git status``
does not change.

Dependencies come from a wheelhouse (``/var/cache/vcops/wheels``, filled once with
``pip wheel``), installed with ``--no-index``, so the install takes seconds and needs
no network after the first run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO
from tests.integration.conftest import reset_lab_hosts
from vcops.inventory import Inventory

pytestmark = [pytest.mark.lab, pytest.mark.timeout(900)]
WHEELHOUSE = Path("/var/cache/vcops/wheels")
HOST = "lab-generic-01"


@dataclass
class Installed:
    venv: Path
    home: Path
    timings: dict[str, float] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        """A shell's environment without the checkout: no PYTHONPATH, no VCOPS_* but the
        machine's choice of lab instance (``make test`` runs two labs at once)."""
        keep = ("HOME", "LANG", "LC_ALL", "TERM", "USER", "LOGNAME", "TMPDIR")
        keep += ("VCOPS_LAB_INSTANCE",)
        env = {k: os.environ[k] for k in keep if k in os.environ}
        env["PATH"] = (
            f"{self.venv / 'bin'}:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        )
        return env

    def vcops(self, *args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [str(self.venv / "bin" / "vcops"), *args],
            cwd=self.home,
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc


def _git_status() -> str:
    return subprocess.run(
        ["git", "-C", str(REPO), "status", "--porcelain", "--untracked-files=all"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def _pip(*args: str, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "pip", "--disable-pip-version-check", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installed]:
    status_before = _git_status()
    work = tmp_path_factory.mktemp("wheel")
    timings: dict[str, float] = {}

    started = time.monotonic()
    files = subprocess.run(
        ["git", "-C", str(REPO), "ls-files", "-co", "--exclude-standard", "-z"],
        capture_output=True,
        check=True,
    ).stdout.split(b"\0")
    source = work / "src"
    with tarfile.open(work / "src.tar", "w") as tar:
        for name in filter(None, files):
            path = REPO / name.decode()
            if path.exists() or path.is_symlink():
                tar.add(path, arcname=name.decode(), recursive=False)
    with tarfile.open(work / "src.tar") as tar:
        tar.extractall(source, filter="tar")
    built = _pip("wheel", "--no-deps", "-q", "-w", str(work / "dist"), str(source))
    assert built.returncode == 0, built.stderr[-3000:]
    [wheel] = (work / "dist").glob("vcops-*.whl")
    timings["build wheel"] = time.monotonic() - started

    started = time.monotonic()
    venv = work / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    pip = [str(venv / "bin" / "python"), "-m", "pip", "--disable-pip-version-check"]
    offline = [*pip, "install", "-q", "--no-index", "--find-links", str(WHEELHOUSE), str(wheel)]
    done = subprocess.run(offline, capture_output=True, text=True, timeout=600, check=False)
    if done.returncode != 0:  # first run, or new dependencies: fill the wheelhouse once
        WHEELHOUSE.mkdir(parents=True, exist_ok=True)
        filled = _pip("wheel", "-q", "-w", str(WHEELHOUSE), str(wheel))
        for stale in WHEELHOUSE.glob("vcops-*.whl"):  # pip wheel copies vcops itself too,
            stale.unlink()  # and would read the next run's dependencies from that copy
        assert filled.returncode == 0, filled.stderr[-3000:]
        done = subprocess.run(offline, capture_output=True, text=True, timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-3000:]
    timings["venv + install"] = time.monotonic() - started

    home = work / "operator"
    home.mkdir()
    yield Installed(venv=venv, home=home, timings=timings)
    print("wheel install timings: " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items()))
    assert _git_status() == status_before  # nothing built or written in the checkout


def test_the_installed_vcops_runs_from_its_package_outside_the_checkout(
    installed: Installed,
) -> None:
    where = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c", "import vcops; print(vcops.__file__)"],
        cwd=installed.home,
        env=installed.env(),
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert where.startswith(str(installed.venv)) and "site-packages" in where
    init = installed.vcops("init", "ops")
    assert init.returncode == 0, init.stderr
    assert "inventory check" in init.stdout and "ssh-keyscan" in init.stdout
    check = installed.vcops("-c", "ops/vcops.toml", "inventory", "check")
    assert check.returncode == 0, check.stderr
    info = json.loads(installed.vcops("-c", "ops/vcops.toml", "info", "--json").stdout)
    site = str(installed.venv)
    for key in ("templates",):
        assert info[key]["path"].startswith(site) and info[key]["origin"] == "package"
    for key in ("deploys", "roles"):
        assert info[key].startswith(site), info
    assert Path(info["deploys"], "baseline.py").is_file()
    assert Path(info["roles"], "vcops_ssh", "tasks", "main.yml").is_file()
    assert not Path(info["roles"], "vcops_ssh", "templates").exists()  # one copy: templates/
    assert info["state"] == {
        "path": str(installed.home / "ops" / "state"),
        "origin": "config",
        "exists": False,
    }
    assert not (installed.home / ".vcops").exists()
    # the switch simulators' dependencies are an extra: not installed, and not needed to
    # load the lab commands (`lab up --switches 0` checks for them only with switches)
    probe = subprocess.run(
        [str(installed.venv / "bin" / "python"), "-c",
         "import importlib.util as u; print(u.find_spec('twisted') is None)\n"
         "from vcops.lab.prereqs import check_prerequisites"],
        env=installed.env(), capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.returncode == 0 and probe.stdout.strip() == "True", probe.stderr


def test_scan_and_apply_with_both_engines_from_the_wheel(
    installed: Installed, lab: Inventory
) -> None:
    ops = installed.home / "lab-ops"
    init = installed.vcops("init", str(ops))
    assert init.returncode == 0, init.stderr
    common = ("-c", str(ops / "vcops.toml"), "-i", str(lab.root))
    try:
        scan = installed.vcops(*common, "scan", "--limit", HOST, "--json")
        assert scan.returncode == 1, scan.stderr  # a stock host drifts
        [outcome] = json.loads(scan.stdout)["outcomes"]
        assert outcome["status"] == "scanned"
        started = time.monotonic()
        applied = installed.vcops(*common, "apply", "--engine", "pyinfra", "--limit", HOST)
        installed.timings["apply pyinfra"] = time.monotonic() - started
        assert applied.returncode == 0, applied.stderr + applied.stdout[-2000:]
        started = time.monotonic()
        check = installed.vcops(
            *common, "apply", "--engine", "ansible", "--check", "--limit", HOST, "--json"
        )
        installed.timings["apply ansible --check"] = time.monotonic() - started
        assert check.returncode == 0, check.stderr + check.stdout[-2000:]
        [host] = json.loads(check.stdout)["hosts"]
        assert host["status"] == "unchanged", host  # the roles render the same templates
        again = installed.vcops(*common, "scan", "--limit", HOST, "--json")
        fixed = json.loads(again.stdout)["outcomes"][0]["results"]
        ssh = [r for r in fixed if r["control_id"] == "VC-SSH-006"]
        assert ssh and ssh[0]["status"] == "pass", ssh
        assert (ops / "state" / "snapshots").is_dir()  # the apply's snapshots, in its state
    finally:
        reset_lab_hosts([HOST])
    shutil.rmtree(ops, ignore_errors=True)


def test_lab_up_without_the_lab_extra_runs_a_lab_without_switches(
    installed: Installed, lab_free: None
) -> None:
    ops = installed.home / "bare-ops"
    init = installed.vcops("init", str(ops))
    assert init.returncode == 0, init.stderr
    lab_dir = installed.home / "bare-lab"
    config = ("-c", str(ops / "vcops.toml"))
    up_args = ("lab", "up", "--hosts", "1", "--dir", str(lab_dir))

    refused = installed.vcops(*config, *up_args, "--switches", "1")
    assert refused.returncode == 2, refused.stderr
    assert refused.stderr.strip().splitlines() == [
        "vcops: error: fake-switches is not installed in this Python: "
        "pip install 'vcops[lab]' && pip install --no-deps 'fake-switches==1.5.0' "
        "(or lab up --switches 0)"
    ]
    assert not lab_dir.exists()  # refused before anything was made

    try:
        started = time.monotonic()
        up = installed.vcops(*config, *up_args, "--switches", "0")
        installed.timings["lab up --hosts 1 --switches 0"] = time.monotonic() - started
        assert up.returncode == 0, up.stderr[-3000:]
        ssh = yaml.safe_load((lab_dir / "lab.yml").read_text())["settings"]["ssh"]
        assert ssh["user"] == "vcops"  # the default: managed through sudo, as a real fleet
        scan = installed.vcops(*config, "-i", str(lab_dir), "scan", "--json")
        assert scan.returncode == 1, scan.stderr  # a stock host drifts
        [outcome] = json.loads(scan.stdout)["outcomes"]
        assert outcome["status"] == "scanned", outcome
        results = {r["control_id"]: r for r in outcome["results"]}
        assert results["VC-SSH-002"]["expected"] == "permitrootlogin no"  # login is not root
        assert results["VC-FILE-001"]["status"] != "unknown"  # /etc/shadow, read through sudo
    finally:
        down = installed.vcops(*config, "lab", "down")
    assert down.returncode == 0, down.stderr
    assert "lab down: removed" in down.stdout
    audit = installed.vcops(*config, "audit", "log", "--json")
    assert audit.returncode == 0, audit.stderr
    assert [e["action"] for e in json.loads(audit.stdout) if e["action"].startswith("lab.")] == [
        "lab.up",
        "lab.down",
    ]  # recorded in the operator's own state directory, not the checkout's
