#!/usr/bin/env bash
# The main job end to end on the lab: up, check, an SSH round to every host and
# switch, the audit trail, down. The lab is torn down even when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
VCOPS=.venv/bin/vcops
LAB=inventory/lab
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

cleanup() { step "lab down"; "$VCOPS" lab down || true; }
trap cleanup EXIT

step "lab up: 6 Debian 12 hosts (one per VoIP role), 2 switch simulators, an SMTP server"
"$VCOPS" lab down >/dev/null 2>&1 || true
time "$VCOPS" lab up --hosts 6 --switches 2 --dir "$LAB"

step "inventory check (the lab's own inventory)"
"$VCOPS" -i "$LAB" inventory check

step "inventory show"
"$VCOPS" -i "$LAB" inventory show

step "ping: one SSH round trip to every host, running config from every switch"
time "$VCOPS" -i "$LAB" inventory ping

step "the same hosts through Ansible (the vcops inventory plugin) and pyinfra (the export)"
ANSIBLE_CONFIG="$PWD/ansible.cfg" VCOPS_INVENTORY="$PWD/$LAB" .venv/bin/ansible servers -m ansible.builtin.ping -o
"$VCOPS" -i "$LAB" inventory export --format pyinfra -o .vcops/lab-inventory.py
.venv/bin/pyinfra -y .vcops/lab-inventory.py exec -- uname -sr

step "audit trail"
"$VCOPS" audit log --last 5
"$VCOPS" audit verify
