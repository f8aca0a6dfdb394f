"""vcops: keep a VoIP fleet hardened and patched (Code of Practice 3.2)."""

from __future__ import annotations

__version__ = "0.1.0"
