"""pyinfra deploy: the whole vcops baseline, areas picked by each host's roles.

ssh, firewall, fail2ban, kernel, audit, time, updates, logging and accounts on every server; asterisk,
kamailio (kamailio and sbc roles) and freeswitch by role; integrity (AIDE) last of all.
`vcops apply --engine pyinfra` runs this file with an inventory carrying the vcops_*
role variables.
"""

from vcops.enforce.pyinfra_deploy import run_baseline

run_baseline()
