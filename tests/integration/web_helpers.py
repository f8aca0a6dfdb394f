"""The dashboard under test: a store with scans recorded the way `vcops scan` records them,
`vcops serve` started as a real process on loopback, and Debian's headless Chromium
driven by Selenium (chromedriver from the chromium-driver package)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from vcops.findings import ControlResult, TargetOutcome, compliance_score, compute_drift
from vcops.findings_store import open_findings, record_scan
from vcops.scan import scan_summary
from vcops.store import Store

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
HOSTILE = "<script>alert(1)</script>kam-x"


def need_chromium() -> None:
    if not (Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()):
        pytest.skip("apt-get install chromium chromium-driver")


def result(target: str, control: str, status: str, actual: str = "x") -> ControlResult:
    return ControlResult(
        target=target,
        control_id=control,
        clause="3.2.2" if control.startswith("VC-PATCH") else "3.2.1",
        severity="high" if control.endswith("1") else "medium",
        title=f"title of {control}",
        status=status,  # type: ignore[arg-type]
        expected="x",
        actual=actual,
    )


def record_scans(store: Store, now: datetime) -> list[float]:
    """Three scans a day apart, recorded through the store as `vcops scan` records them;
    one target's name is hostile markup. Returns the scores."""
    plans = [
        {"kam-01": ("fail", "fail", "fail"), HOSTILE: ("fail", "pass", "fail")},
        {"kam-01": ("pass", "fail", "fail"), HOSTILE: ("fail", "pass", "pass")},
        {"kam-01": ("pass", "pass", "fail"), HOSTILE: ("pass", "pass", "fail")},
    ]
    scores = []
    for day, plan in enumerate(plans):
        outcomes = [
            TargetOutcome(
                target=name,
                kind="server",
                status="scanned",
                results=[
                    result(name, c, s, f"{name} says no")
                    for c, s in zip(
                        ("VC-SSH-001", "VC-SSH-006", "VC-PATCH-002"), statuses, strict=True
                    )
                ],
            )
            for name, statuses in plan.items()
        ]
        outcomes.append(
            TargetOutcome(target="sbc-9", kind="server", status="unknown", error="no answer in 10s")
        )
        drift = compute_drift(open_findings(store), outcomes)
        score = compliance_score(outcomes)
        at = now - timedelta(days=3 - day)
        record_scan(
            store,
            started_at=at,
            finished_at=at + timedelta(seconds=4),
            actor="test",
            selection="all",
            outcomes=outcomes,
            drift=drift,
            score=score,
            summary=scan_summary(outcomes, drift),
        )
        scores.append(score[3])
    return scores


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextmanager
def served(root: Path, *extra: str) -> Iterator[str]:
    """`vcops serve` on a free loopback port for the test inventory in ``root``."""
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k not in {"VCOPS_DATABASE_URL", "VCOPS_CONFIG"}}
    vcops = str(Path(sys.executable).with_name("vcops"))
    proc = subprocess.Popen(
        [vcops, "-i", str(root / "inventory"), *extra, "serve", "--bind", f"127.0.0.1:{port}"],
        cwd=root,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise AssertionError(f"vcops serve exited: {proc.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.5):
                    break
            except OSError:
                time.sleep(0.2)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextmanager
def chromium(tmp: Path, downloads: Path) -> Iterator[object]:
    """Headless Chromium with an empty profile, downloads going to ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    profile = tmp / "profile"
    profile.mkdir(exist_ok=True)
    options = Options()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-background-networking",
        "--disable-component-update",
        "--no-first-run",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--window-size=1280,1800",
    ):
        options.add_argument(arg)
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.execute_cdp_cmd(
            "Page.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)}
        )
        yield driver
    finally:
        driver.quit()


def wait_for_file(directory: Path, name: str, timeout: float = 15) -> Path:
    deadline = time.monotonic() + timeout
    path = directory / name
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0 and not list(directory.glob("*.crdownload")):
            return path
        time.sleep(0.1)
    raise AssertionError(
        f"{name} was not downloaded: {sorted(p.name for p in directory.iterdir())}"
    )


def now() -> datetime:
    return datetime.now(UTC)
