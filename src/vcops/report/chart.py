"""A small bar chart of compliance scores as a PNG, with no plotting library.

Mail clients show inline PNGs (``cid:``) reliably, unlike SVG or CSS charts. Pure:
scores in, PNG bytes out. Example: ``trend_png([71.0, 80.5, 94.0])``.
"""

from __future__ import annotations

import struct
import zlib
from collections.abc import Sequence

WIDTH, HEIGHT, PAD = 320, 90, 4
BG = (255, 255, 255)
GRID = (230, 230, 230)


def _colour(score: float) -> tuple[int, int, int]:
    if score >= 90:
        return (46, 139, 87)
    if score >= 70:
        return (218, 165, 32)
    return (200, 50, 50)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def trend_png(scores: Sequence[float], width: int = WIDTH, height: int = HEIGHT) -> bytes:
    """One bar per scan, oldest left; bar height = percent compliant; 50% and 100% grid lines."""
    pixels = [[BG for _ in range(width)] for _ in range(height)]
    for level in (50, 100):
        y = height - 1 - PAD - int((height - 2 * PAD) * level / 100)
        for x in range(width):
            pixels[y][x] = GRID
    shown = list(scores)[-30:]
    if shown:
        slot = (width - 2 * PAD) / len(shown)
        bar = max(1, int(slot * 0.7))
        for i, score in enumerate(shown):
            x0 = PAD + int(i * slot + (slot - bar) / 2)
            top = height - 1 - PAD - int((height - 2 * PAD) * max(0.0, min(score, 100.0)) / 100)
            for y in range(top, height - PAD):
                for x in range(x0, min(width, x0 + bar)):
                    pixels[y][x] = _colour(score)
    raw = b"".join(b"\x00" + bytes(c for px in row for c in px) for row in pixels)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(raw, 9))
        + _chunk(b"IEND", b"")
    )
