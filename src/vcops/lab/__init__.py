"""The vcops lab: throwaway real Debian 12 hosts, switch simulators and an SMTP server.

``lab_up`` boots N Debian 12 hosts (systemd + real sshd, Kamailio on kamailio hosts)
with systemd-nspawn, each in its own network namespace on bridge ``vcopsbr0``
(10.213.0.0/24), starts M fake-switches simulators speaking SSH and aiosmtpd on
127.0.0.1:2525, and writes an inventory (``lab.yml``, keys, pinned known_hosts) for
the demo, the integration tests and Molecule. ``lab_down`` removes all of it, also
after a crash. Needs root.

Modules::

    lifecycle     lab_up / lab_down / lab_status (the entry points re-exported here)
    plan          names, roles, addresses of N hosts and M switches (pure)
    image         the cached debootstrap image (IMAGE_PACKAGES is the cache key)
    network       bridge, namespaces, veths        cgroups    one cgroup per container
    hosts         overlay, personalisation, nspawn  switches   fake-switches simulators
    mail          aiosmtpd + Maildir reader          inventory  lab.yml, keys, known_hosts
    readiness     waiting for sshd / SSH / SMTP / SIP  probe    the network probes
    state         state.json                          teardown   removal, also without state
    prereqs       check_prerequisites                 layout     fixed names and paths
    switch_server the script each simulator runs (inside its namespace)
"""

from __future__ import annotations

from vcops.lab.image import IMAGE_PACKAGES, IMAGE_REVISION
from vcops.lab.lifecycle import lab_down, lab_status, lab_up
from vcops.lab.mail import read_mail
from vcops.lab.models import HostStatus, LabStatus, SmtpStatus, SwitchStatus
from vcops.lab.plan import ROLES
from vcops.lab.prereqs import check_prerequisites

__all__ = [
    "IMAGE_PACKAGES",
    "IMAGE_REVISION",
    "ROLES",
    "HostStatus",
    "LabStatus",
    "SmtpStatus",
    "SwitchStatus",
    "check_prerequisites",
    "lab_down",
    "lab_status",
    "lab_up",
    "read_mail",
]
