"""pyinfra deploy: the vcops accounts baseline area (hosts without the area are skipped).

Run alone: pyinfra INVENTORY deploys/accounts.py (the inventory from `vcops apply` or
`vcops inventory export --format pyinfra` plus the vcops_* role variables).
"""

from vcops.enforce.pyinfra_deploy import run_area

run_area("accounts")
