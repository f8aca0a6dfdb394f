"""Reading ansible-playbook's output, and the inventory it is handed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from vcops.enforce.ansible import (
    ANSIBLE_CFG,
    parse_playbook_output,
    playbook_argv,
    render_ansible_inventory,
)
from vcops.inventory import load_inventory

REPO = Path(__file__).resolve().parents[2]

OUTPUT = """
PLAY [Enforce the vcops section 3.2 baseline] **********************************

TASK [vcops_ssh : Install the OpenSSH server] **********************************
ok: [web-01]
ok: [web-02]

TASK [vcops_ssh : Install sshd_config (validated with sshd -t)] ****************
--- before: /etc/ssh/sshd_config
+++ after: /root/.ansible/tmp/sshd_config.j2
@@ -1,3 +1,3 @@
-PasswordAuthentication yes
+PasswordAuthentication no

changed: [web-01]
ok: [web-02]

TASK [vcops_fail2ban : Install the vcops jails] ********************************
fatal: [web-02]: FAILED! => {"changed": false, "msg": "failed to validate", "stderr": "ERROR  No section", "rc": 255}

RUNNING HANDLER [vcops_ssh : Reload sshd] **************************************
changed: [web-01]

PLAY RECAP *********************************************************************
web-01                     : ok=30   changed=2    unreachable=0    failed=0    skipped=3    rescued=0    ignored=0
web-02                     : ok=2    changed=0    unreachable=0    failed=1    skipped=0    rescued=0    ignored=0
web-03                     : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
"""


def test_parse_playbook_output_per_host() -> None:
    web1, web2, web3, web4 = parse_playbook_output(OUTPUT, ["web-01", "web-02", "web-03", "web-04"])
    assert web1.reached and web1.failed == []
    assert web1.changed == [
        "vcops_ssh : Install sshd_config (validated with sshd -t)",
        "vcops_ssh : Reload sshd",
    ]
    assert "+PasswordAuthentication no" in web1.diffs[web1.changed[0]]
    assert web1.recap["changed"] == 2
    assert web2.failed == ["vcops_fail2ban : Install the vcops jails"]
    assert "failed to validate" in web2.errors[0] and "No section" in web2.errors[0]
    assert not web3.reached and not web4.reached


def test_a_host_lost_mid_run_is_failed_not_changed() -> None:
    text = (
        "TASK [vcops_firewall : Install /etc/nftables.conf] ***\n"
        "changed: [web-01]\n"
        "TASK [vcops_kernel : Install procps] ***\n"
        'fatal: [web-01]: UNREACHABLE! => {"msg": "Connection timed out", "unreachable": true}\n'
        "PLAY RECAP ***\n"
        "web-01 : ok=5 changed=1 unreachable=1 failed=0 skipped=0 rescued=0 ignored=0\n"
    )
    (host,) = parse_playbook_output(text, ["web-01"])
    assert host.reached and host.failed == ["connection lost during the run"]
    assert "Connection timed out" in host.errors[0]


def test_unreachable_message_is_kept() -> None:
    text = (
        "TASK [vcops_ssh : Install the OpenSSH server] ***\n"
        'fatal: [web-01]: UNREACHABLE! => {"msg": "ssh: connect to host 10.0.0.1 port 22: '
        'Connection refused", "unreachable": true}\n'
    )
    (host,) = parse_playbook_output(text, ["web-01"])
    assert not host.reached and "Connection refused" in host.errors[0]


def test_the_inventory_pins_known_hosts_and_carries_the_role_vars() -> None:
    inventory = load_inventory(REPO / "inventory")
    servers = list(inventory.servers)[:2]
    data = render_ansible_inventory(inventory, servers)
    hosts = data["all"]["children"]["servers"]["hosts"]  # type: ignore[index, call-overload]
    for server in servers:
        entry = hosts[server.name]
        assert "StrictHostKeyChecking=yes" in entry["ansible_ssh_common_args"]
        if inventory.settings.ssh.known_hosts_file:
            assert "UserKnownHostsFile=" in entry["ansible_ssh_common_args"]
        assert entry["vcops_roles"] == list(server.roles)
        assert entry["vcops_ssh_max_auth_tries"] >= 1
        assert "inventory_hostname" not in entry
        assert isinstance(entry["vcops_firewall_ssh_sources_v4"], list)


def test_check_mode_is_check_and_diff(tmp_path: Path) -> None:
    argv = playbook_argv(tmp_path / "inv.yml", check=True)
    assert argv[-2:] == ["--check", "--diff"] and argv[0].endswith("ansible-playbook")
    assert "--check" not in playbook_argv(tmp_path / "inv.yml", check=False)


def test_the_playbook_passes_syntax_check_with_a_vcops_inventory(tmp_path: Path) -> None:
    inventory = load_inventory(REPO / "inventory")
    inv = tmp_path / "inventory.yml"
    inv.write_text(yaml.safe_dump(render_ansible_inventory(inventory, list(inventory.servers))))
    done = subprocess.run(
        [
            str(Path(sys.executable).parent / "ansible-playbook"),
            "--syntax-check",
            "-i",
            str(inv),
            str(REPO / "deploys" / "site.yml"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        env={**os.environ, "ANSIBLE_CONFIG": str(ANSIBLE_CFG)},
        cwd=str(REPO),
    )
    assert done.returncode == 0, done.stderr[-2000:]
