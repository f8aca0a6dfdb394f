"""Run one fake-switches simulator from a JSON config (started by :mod:`vcops.lab.switches`).

Run as a script with the venv's Python inside the switch's network namespace::

    ip netns exec vcops-sw-01 .venv/bin/python .../switch_server.py \\
        --config /var/lib/vcops-lab/switches/lab-sw-01/switch.json

It differs from the ``fake-switches`` command in three ways that make it behave more
like a real device:

- the password is read from a file, not the command line (``ps`` shows no secret);
- the enable secret is the login password (fake-switches compares the enable
  password as bytes against a str, so only an empty secret works otherwise);
- each switch has its own RSA host key instead of the key built into fake-switches.

Logging stays at INFO: at DEBUG fake-switches logs every line typed, secrets included.
"""

from __future__ import annotations

import argparse
import json
import logging
from pathlib import Path


def main() -> None:
    """Parse ``--config``, build the switch and serve SSH until killed."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--config", required=True, type=Path)
    args = parser.parse_args()
    config = json.loads(args.config.read_text())
    password = Path(config["password_file"]).read_text().strip()
    host_key = Path(config["host_key"])
    private_key = host_key.read_text()
    public_key = host_key.with_name(host_key.name + ".pub").read_text().strip()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    from fake_switches import switch_factory  # type: ignore[import-untyped]
    from fake_switches.transports import ssh_service  # type: ignore[import-untyped]
    from twisted.internet import reactor

    logging.getLogger().setLevel(logging.INFO)
    ssh_service.getRSAKeys = lambda: (public_key, private_key)
    core = switch_factory.SwitchFactory().get(config["model"], config["hostname"], password)
    service = ssh_service.SwitchSshService(
        ip=config["listen_host"],
        port=int(config["port"]),
        switch_core=core,
        users={config["username"]: password.encode()},
    )
    service.hook_to_reactor(reactor)
    logging.info(
        "switch %s serving SSH on %s:%s", config["hostname"], config["listen_host"], config["port"]
    )
    reactor.run()  # type: ignore[misc]


if __name__ == "__main__":
    main()
