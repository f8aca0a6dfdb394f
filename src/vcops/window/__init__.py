"""Patch windows: planned, approved by the change board with SSH signatures, run in batches."""
