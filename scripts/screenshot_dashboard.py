"""Take the README's dashboard screenshots with headless Chromium (docs/*.png).

Builds a throwaway controller like the browser tests do (a board of three, two windows,
three recorded scans), serves it with `vcops serve` on loopback, has dana approve W-B by
uploading a signature made with ssh-keygen, and saves the overview and the window page.
Run from the repository root: python scripts/screenshot_dashboard.py
"""

from __future__ import annotations

import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.integration import test_window_approval as base  # noqa: E402
from tests.integration.test_web import Site, sign  # noqa: E402
from tests.integration.web_helpers import chromium, now, record_scans, served  # noqa: E402
from vcops.store import open_store  # noqa: E402


def main() -> None:
    os.environ["VCOPS_STATE_DIR"] = ".vcops"  # as the tests run it: state beside the inventory
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        base.env.__wrapped__(root)  # type: ignore[attr-defined]
        store = open_store(f"sqlite:///{root / '.vcops' / 'vcops.db'}", root / ".vcops")
        scores = record_scans(store, now())
        downloads = root / "downloads"
        downloads.mkdir()
        with served(root) as url, chromium(root, downloads) as driver:
            site = Site(root, url, driver, downloads, scores)
            site.get("/")
            driver.save_screenshot(str(ROOT / "docs" / "dashboard-overview.png"))
            site.upload("W-B", "dana", sign(root, "dana", site.payload("W-B", "dana")))
            driver.save_screenshot(str(ROOT / "docs" / "dashboard-window.png"))


if __name__ == "__main__":
    main()
