"""pyinfra deploy: the vcops integrity baseline area (AIDE; hosts without it are skipped).

Run alone: pyinfra INVENTORY deploys/integrity.py (the inventory from `vcops apply` or
`vcops inventory export --format pyinfra` plus the vcops_* role variables). Run it last:
the AIDE database is built from the host as the other areas left it.
"""

from vcops.enforce.pyinfra_deploy import run_area

run_area("integrity")
