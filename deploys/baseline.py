"""pyinfra deploy: the whole vcops baseline, areas picked by each host's roles.

ssh, firewall, fail2ban, kernel, audit, time and updates on every server; asterisk,
kamailio (kamailio and sbc roles) and freeswitch by role. `vcops apply --engine
pyinfra` runs this file with an inventory carrying the vcops_* role variables.
"""

from vcops.enforce.pyinfra_deploy import run_baseline

run_baseline()
