"""Write and verify the evidence pack: ``report.html`` (self-contained: styles and the
chart inline), ``report.pdf`` (headless Chromium prints the HTML), ``evidence.json``
(everything in the report), ``controller.pub``, and ``MANIFEST`` (``sha256sum`` format:
``sha256sum -c MANIFEST`` works) signed with the controller's SSH key in the
``vcops-evidence`` namespace (``MANIFEST.sig``; ``ssh-keygen -Y verify`` checks it).

Example::

    files = write_pack(evidence, Path("evidence-2026-11"), key=store.key_file)
    verify_pack(Path("evidence-2026-11"), public_key)   # [] when intact
"""

from __future__ import annotations

import base64
import hashlib
import shutil
import subprocess
import tempfile
from pathlib import Path

from vcops import sshsig
from vcops.errors import VcopsError
from vcops.evidence import Evidence
from vcops.report.chart import trend_png
from vcops.templating import environment

NAMESPACE = "vcops-evidence"
MANIFEST = "MANIFEST"
SIGNATURE = "MANIFEST.sig"


class EvidenceError(VcopsError):
    """The pack cannot be written (exit 2) or does not verify (exit 1)."""

    exit_code = 1


def render_html(evidence: Evidence) -> str:
    chart = base64.b64encode(trend_png(evidence.scans, width=9.0, height=3.2)).decode()
    return (
        environment("report")
        .get_template("evidence/report.html.j2")
        .render(e=evidence, chart=f"data:image/png;base64,{chart}")
    )


def print_pdf(html: Path, pdf: Path, *, chromium: str | None = None) -> None:
    """Print ``html`` to ``pdf`` with headless Chromium (no network, a throwaway profile)."""
    browser = chromium or shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        raise EvidenceError("the PDF needs Chromium: apt-get install chromium")
    with tempfile.TemporaryDirectory(prefix="vcops-pdf-") as profile:
        proc = subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--no-first-run",
                "--disable-sync",
                "--no-pdf-header-footer",
                f"--user-data-dir={profile}",
                f"--print-to-pdf={pdf}",
                html.resolve().as_uri(),
            ],
            capture_output=True,
            timeout=180,
            check=False,
        )
    if proc.returncode != 0 or not pdf.exists() or pdf.stat().st_size == 0:
        raise EvidenceError(
            f"{pdf}: Chromium could not print the report "
            f"({proc.stderr.decode(errors='replace').strip()[-300:]})"
        )


def manifest(directory: Path, names: list[str]) -> bytes:
    """``<sha256>  <name>`` per file, sorted (the format of ``sha256sum``)."""
    lines = [
        f"{hashlib.sha256((directory / n).read_bytes()).hexdigest()}  {n}\n" for n in sorted(names)
    ]
    return "".join(lines).encode()


def write_pack(
    evidence: Evidence, out: Path, *, key: Path, chromium: str | None = None
) -> list[Path]:
    """Write every file of the pack into ``out`` (new or empty) and sign the manifest.

    Raises:
        EvidenceError: ``out`` holds files already, Chromium failed, or the key cannot sign.
    """
    if out.exists() and any(out.iterdir()):
        raise EvidenceError(f"{out}: not empty; give a new directory for the pack")
    out.mkdir(parents=True, exist_ok=True)
    (out / "report.html").write_text(render_html(evidence), encoding="utf-8")
    (out / "evidence.json").write_text(evidence.model_dump_json(indent=2), encoding="utf-8")
    (out / "controller.pub").write_text(evidence.audit.controller_key + "\n")
    print_pdf(out / "report.html", out / "report.pdf", chromium=chromium)
    names = ["controller.pub", "evidence.json", "report.html", "report.pdf"]
    data = manifest(out, names)
    (out / MANIFEST).write_bytes(data)
    try:
        (out / SIGNATURE).write_text(sshsig.sign(key, data, NAMESPACE))
    except sshsig.SignatureError as exc:
        raise EvidenceError(f"cannot sign the manifest: {exc}") from exc
    return [out / n for n in [*names, MANIFEST, SIGNATURE]]


def verify_pack(directory: Path, public_key: str) -> list[str]:
    """Every problem with the pack in ``directory`` (empty when it verifies)."""
    problems: list[str] = []
    try:
        data = (directory / MANIFEST).read_bytes()
        signature = (directory / SIGNATURE).read_text()
    except OSError as exc:
        return [f"{directory}: {exc.strerror}: {exc.filename}"]
    if not sshsig.verify(public_key, "controller", data, signature, NAMESPACE):
        problems.append(
            f"{MANIFEST}: the signature does not verify with key {sshsig.fingerprint(public_key)}"
        )
    listed: set[str] = set()
    for number, line in enumerate(data.decode(errors="replace").splitlines(), 1):
        digest, sep, name = line.partition("  ")
        if not sep or len(digest) != 64 or "/" in name or name in ("", ".", ".."):
            problems.append(f"{MANIFEST}:{number}: not '<sha256>  <file>'")
            continue
        listed.add(name)
        path = directory / name
        if not path.is_file():
            problems.append(f"{name}: missing")
        elif hashlib.sha256(path.read_bytes()).hexdigest() != digest:
            problems.append(f"{name}: changed since the pack was signed (sha256 differs)")
    extra = sorted(
        p.name for p in directory.iterdir() if p.name not in listed | {MANIFEST, SIGNATURE}
    )
    problems += [f"{name}: not in the manifest" for name in extra]
    return problems
