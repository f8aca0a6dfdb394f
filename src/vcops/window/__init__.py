"""Patch windows: planned, approved by the change board with SSH signatures, run in batches."""

#: The batch runner (`vcops window run`) is not built yet; schedules leave its timer out.
RUNNER_AVAILABLE = False
