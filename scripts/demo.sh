#!/usr/bin/env bash
# The main job end to end on the lab: up, check, an SSH round to every host and
# switch, the audit trail, down. The lab is torn down even when a step fails.
set -euo pipefail
cd "$(dirname "$0")/.."
# One lab per machine: wait for any test session or benchmark using it.
if [ -z "${VCOPS_DEMO_LOCKED:-}" ]; then
    exec env VCOPS_DEMO_LOCKED=1 flock /run/vcops-lab-tests.lock "$0" "$@"
fi
VCOPS=.venv/bin/vcops
LAB=inventory/lab
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }

# The demo keeps its own state (database, audit anchor) in .vcops/demo, fresh each run.
rm -rf .vcops/demo && mkdir -p .vcops/demo
printf '[store]\nstate_dir = "."\n' > .vcops/demo/vcops.toml
export VCOPS_CONFIG="$PWD/.vcops/demo/vcops.toml"
unset VCOPS_DATABASE_URL
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
"$VCOPS" -i "$LAB" inventory export --format pyinfra -o .vcops/demo/lab-inventory.py
.venv/bin/pyinfra -y .vcops/demo/lab-inventory.py exec -- uname -sr

step "the section 3.2 baseline: $("$VCOPS" baseline list --json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))') controls"
"$VCOPS" baseline show VC-NFT-004

step "drift scan of the stock lab (exit 1: drift found)"
time "$VCOPS" -i "$LAB" scan || test $? -eq 1

step "fix one thing by hand over SSH (key-only SSH on the kamailio host), scan again: its finding resolves"
ssh -i "$LAB/lab_key" -o UserKnownHostsFile="$LAB/known_hosts" -o StrictHostKeyChecking=yes -o IdentitiesOnly=yes \
    root@"$("$VCOPS" -i "$LAB" inventory show --json -l role:kamailio | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])')" \
    "printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n' > /etc/ssh/sshd_config.d/50-demo.conf && sshd -t && systemctl reload ssh"
"$VCOPS" -i "$LAB" scan --limit role:kamailio >/dev/null || test $? -eq 1
"$VCOPS" -i "$LAB" findings --status resolved

step "a waiver shows a finding as waived, never hides it"
"$VCOPS" -i "$LAB" waiver add VC-SSH-007 --hosts role:generic --reason "central syslog not ready; INFO logging accepted until then" \
    --expires "$(date -u -d '+30 days' +%F)" --approved-by dana
"$VCOPS" -i "$LAB" findings --status waived

KAM=lab-kamailio-01
step "snapshot the fleet before changing anything (secrets masked, one git commit)"
"$VCOPS" -i "$LAB" snapshot take --reason "before the demo hardening" || test $? -eq 3

step "apply --check: what the pyinfra engine would change on $KAM (nothing changes yet)"
"$VCOPS" -i "$LAB" apply --limit "$KAM" --check > .vcops/demo/check.txt
awk 'NR <= 40' .vcops/demo/check.txt

step "apply the baseline with pyinfra on $KAM, then scan it: its findings resolve"
time "$VCOPS" -i "$LAB" apply --limit "$KAM"
"$VCOPS" -i "$LAB" scan --limit "$KAM" || test $? -eq 1

step "a second apply changes nothing"
"$VCOPS" -i "$LAB" apply --limit "$KAM"

step "snapshot again and diff: what the hardening changed on $KAM"
"$VCOPS" -i "$LAB" snapshot take --limit "$KAM" --reason "after the demo hardening"
"$VCOPS" -i "$LAB" snapshot diff "$KAM" > .vcops/demo/diff.txt
awk 'NR <= 3 || /^diff --git a\/lab-kamailio-01\/files\/etc\/ssh\/sshd_config/ {show = 30} show-- > 0' .vcops/demo/diff.txt

step "audit trail"
"$VCOPS" audit log --last 5
"$VCOPS" audit verify
