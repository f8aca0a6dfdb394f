"""``vcops serve``: the dashboard and the change board's decision page (FastAPI + Jinja2)."""
