"""`vcops serve` in a real browser (Debian's headless Chromium driven by Selenium): the
overview shows the matplotlib chart; a board member downloads the payload from the
window page, signs it with `ssh-keygen -Y sign`, uploads the signature, and the window
is approved with quorum; a key off the board, a replayed signature and the requester's
own are refused with the reason on the page; a host name carrying <script> is text.
Security headers and the token are checked over HTTP against the same process."""

from __future__ import annotations

import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.integration import test_window_approval as base
from tests.integration.web_helpers import (
    HOSTILE,
    chromium,
    need_chromium,
    now,
    record_scans,
    served,
    wait_for_file,
)
from vcops.store import open_store

env = (
    base.env
)  # the fixture: board dana/erik/fatima (+ mallory off the board), W-A (erik asks), W-B


class Site:
    def __init__(self, root: Path, url: str, driver: Any, downloads: Path, scores: list[float]):
        self.root, self.url, self.driver, self.downloads, self.scores = (
            root, url, driver, downloads, scores,
        )  # fmt: skip

    def get(self, path: str) -> str:
        self.driver.get(self.url + path)
        return str(self.driver.find_element("tag name", "body").text)

    def select(self, form: str, name: str, value: str) -> None:
        from selenium.webdriver.support.select import Select

        element = self.driver.find_element("css selector", f"form[action$='/{form}'] [name={name}]")
        Select(element).select_by_visible_text(value)

    def payload(self, wid: str, member: str, decision: str = "approve") -> Path:
        self.get(f"/windows/{wid}")
        self.select("payload", "member", member)
        self.select("payload", "decision", decision)
        name = f"{wid}-{decision}-{member}.txt"
        (self.downloads / name).unlink(missing_ok=True)
        self.driver.find_element("id", "download").click()
        return wait_for_file(self.downloads, name)

    def upload(self, wid: str, member: str, signature: Path, decision: str = "approve") -> str:
        self.get(f"/windows/{wid}")
        self.select("decision", "member", member)
        self.select("decision", "decision", decision)
        self.driver.find_element("id", "sigfile").send_keys(str(signature))
        self.driver.find_element("id", "submit").click()
        return self.answer()

    def answer(self) -> str:
        """The page the form posted to, once it has loaded (never the form's own page)."""
        from selenium.webdriver.support.ui import WebDriverWait

        WebDriverWait(self.driver, 20).until(
            lambda d: d.find_elements("id", "refused") or d.find_elements("id", "recorded")
        )
        return str(self.driver.find_element("tag name", "body").text)


def sign(root: Path, key: str, file: Path) -> Path:
    sig = file.with_name(file.name + ".sig")
    sig.unlink(missing_ok=True)
    subprocess.run(
        [
            "ssh-keygen",
            "-q",
            "-Y",
            "sign",
            "-n",
            "vcops-window",
            "-f",
            str(root / "keys" / key),
            str(file),
        ],
        check=True,
        capture_output=True,
    )
    return sig


@pytest.fixture
def site(env: Path, tmp_path: Path) -> Iterator[Site]:
    need_chromium()
    store = open_store(f"sqlite:///{env / '.vcops' / 'vcops.db'}", env / ".vcops")
    scores = record_scans(store, now())
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    with served(env) as url, chromium(tmp_path, downloads) as driver:
        yield Site(env, url, driver, downloads, scores)


def test_overview_shows_the_chart_scores_and_hostile_names_as_text(site: Site) -> None:
    from selenium.common.exceptions import NoAlertPresentException

    body = site.get("/")
    assert f"Fleet compliance {site.scores[-1]}%" in body
    img = site.driver.find_element("id", "trend")
    assert img.get_property("naturalWidth") == 800 and img.get_property("complete")
    assert "3.2.1" in body and "3.2.2" in body and "no answer in 10s" in body  # clause, unknown
    assert "By site" in body and "By role" in body
    assert HOSTILE in body  # the markup is shown as text ...
    with pytest.raises(NoAlertPresentException):
        site.driver.switch_to.alert
    assert "&lt;script&gt;" in site.driver.page_source
    host = site.get("/hosts/" + urllib.request.quote(HOSTILE, safe=""))
    assert f"Host {HOSTILE}" in host and "VC-SSH-001" in host
    waiver = base.vcops(
        site.root, "waiver", "add", "VC-PATCH-002", "--hosts", "kam-01", "--reason", "vendor fix due",
        "--expires", "2099-01-31", "--approved-by", "dana",
    )  # fmt: skip
    assert waiver.returncode == 0, waiver.stderr
    kam = site.get("/hosts/kam-01")
    assert "waived by #1 until 2099-01-31 (dana: vendor fix due)" in kam
    assert "#1 VC-PATCH-002: vendor fix due (approved by dana, expires 2099-01-31)" in kam
    control = site.get("/controls/VC-PATCH-002")
    assert "Failing on 1 host(s)" in control and "Waived on 1 host(s)" in control


def test_a_member_approves_by_upload_and_quorum_is_reached(site: Site) -> None:
    payload = site.payload("W-B", "dana")
    assert payload.read_text().startswith("vcops-window-decision-v2\nwindow: W-B\n")
    body = site.upload("W-B", "dana", sign(site.root, "dana", payload))
    assert "dana: approve recorded (signature verified); approvals 1/2; state pending" in body
    body = site.upload("W-B", "fatima", sign(site.root, "fatima", site.payload("W-B", "fatima")))
    assert "approvals 2/2; state approved" in body
    state = site.driver.find_element("id", "state").text
    assert "approved" in state and "2/2 approvals (quorum reached)" in state
    rows = site.driver.find_element("id", "approvals").text
    assert rows.count("valid") == 2 and "INVALID" not in rows
    shown = base.show(site.root, "W-B")  # the CLI sees the same verified approvals
    assert shown["state"] == "approved"


def test_refusals_are_shown_with_their_reason(site: Site) -> None:
    # a key that is not on the change board
    body = site.upload("W-B", "dana", sign(site.root, "mallory", site.payload("W-B", "dana")))
    assert (
        "approve refused: the signature was made by a key that is not on the change board (SHA256:"
        in body
    )
    # the requester's own signature on their own window
    body = site.upload("W-A", "erik", sign(site.root, "erik", site.payload("W-A", "erik")))
    assert "erik requested window W-A and cannot approve or reject it" in body
    # a replayed signature: dana's valid one, uploaded again
    signed = sign(site.root, "dana", site.payload("W-B", "dana"))
    assert "approvals 1/2" in site.upload("W-B", "dana", signed)
    body = site.upload("W-B", "dana", signed)
    assert "this signature was already recorded (dana on window W-B)" in body
    assert site.driver.find_element("id", "refused").is_displayed()
    assert "1/2 approvals" in site.driver.find_element("id", "tally").text
    audit = site.get("/audit")
    assert "Chain verified:" in site.driver.find_element("id", "verdict").text
    assert "window.approve.refused" in audit and "window.payload" in audit


def _fetch(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def test_headers_token_and_unknown_pages(env: Path) -> None:
    (env / "web.token").write_text("a-long-enough-token-for-tests\n")
    (env / "vcops.toml").write_text('[web]\ntoken_file = "web.token"\n')
    with served(env, "-c", str(env / "vcops.toml")) as url:
        status, headers, _ = _fetch(url + "/windows")
        assert status == 401
        status, headers, body = _fetch(
            url + "/windows", {"Authorization": "Bearer a-long-enough-token-for-tests"}
        )
        assert status == 200 and b"W-A" in body
        csp = headers["content-security-policy"]
        assert "default-src 'none'" in csp and "script-src" not in csp  # no script at all
        assert headers["x-content-type-options"] == "nosniff"
        status, _, body = _fetch(url + "/windows/W-NOPE?token=a-long-enough-token-for-tests")
        assert status == 404 and b"no window" in body
        status, headers, body = _fetch(url + "/chart/trend.png?token=a-long-enough-token-for-tests")
        assert status == 200 and body[:8] == b"\x89PNG\r\n\x1a\n"
