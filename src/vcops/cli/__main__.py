"""``python -m vcops.cli``."""

from vcops.cli.main import run

run()
