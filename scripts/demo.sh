#!/usr/bin/env bash
# The main job end to end on the lab: up, check, scan, snapshot, apply, a patch
# window approved and run, the audit trail, down. The lab is torn down even when a step fails.
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
cat > .vcops/demo/vcops.toml <<'TOML'
[store]
state_dir = "."

# the lab's SMTP server (aiosmtpd on loopback, delivers to a Maildir)
[smtp]
host = "127.0.0.1"
port = 2525
security = "none"
from = "vcops@lab.invalid"

[recipients]
ops = ["noc@lab.invalid"]
TOML
export VCOPS_CONFIG="$PWD/.vcops/demo/vcops.toml"
unset VCOPS_DATABASE_URL
cleanup() { step "lab down"; "$VCOPS" lab down || true; }
trap cleanup EXIT

step "lab up: 6 Debian 12 hosts (one per VoIP role, managed as vcops through sudo), 2 switch simulators, an SMTP server"
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

# By hand, as vcops does: log in as the hosts' vcops user and become root with sudo -n.
as_root() {  # as_root HOST-ADDRESS < script
    ssh -i "$LAB/lab_key" -o UserKnownHostsFile="$LAB/known_hosts" -o StrictHostKeyChecking=yes \
        -o IdentitiesOnly=yes -o BatchMode=yes vcops@"$1" sudo -n sh -s
}
address() { "$VCOPS" -i "$LAB" inventory show --json -l "$1" | python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["address"])'; }

step "fix one thing by hand over SSH (key-only SSH on the kamailio host, as vcops with sudo), scan again: its finding resolves"
as_root "$(address role:kamailio)" <<'SH'
printf 'PasswordAuthentication no\nKbdInteractiveAuthentication no\n' > /etc/ssh/sshd_config.d/50-demo.conf && sshd -t && systemctl reload ssh
SH
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

step "root's own SSH login is now refused on $KAM (PermitRootLogin no); vcops goes on through sudo"
if ssh -i "$LAB/lab_key" -o UserKnownHostsFile="$LAB/known_hosts" -o StrictHostKeyChecking=yes \
    -o IdentitiesOnly=yes -o BatchMode=yes root@"$(address "$KAM")" true 2>.vcops/demo/root-login.txt; then
    echo "root could still log in to $KAM" >&2; exit 1
fi
tail -1 .vcops/demo/root-login.txt

step "snapshot again and diff: what the hardening changed on $KAM"
"$VCOPS" -i "$LAB" snapshot take --limit "$KAM" --reason "after the demo hardening"
"$VCOPS" -i "$LAB" snapshot diff "$KAM" > .vcops/demo/diff.txt
awk 'NR <= 3 || /^diff --git a\/lab-kamailio-01\/files\/etc\/ssh\/sshd_config/ {show = 30} show-- > 0' .vcops/demo/diff.txt

step "a patch window: a newer package appears in the lab's apt repository (built here with dpkg-deb)"
deb() {  # deb VERSION -> .vcops/demo/vcops-demo_VERSION_all.deb
    local root=".vcops/demo/pkg-$1"
    mkdir -p "$root/DEBIAN" "$root/usr/share/vcops-demo"
    printf 'Package: vcops-demo\nVersion: %s\nArchitecture: all\nMaintainer: vcops demo <demo@lab.invalid>\nDescription: vcops demo package\n' "$1" > "$root/DEBIAN/control"
    echo "$1" > "$root/usr/share/vcops-demo/version"
    dpkg-deb --root-owner-group --build "$root" ".vcops/demo/vcops-demo_$1_all.deb" >/dev/null
}
publish() { .venv/bin/python -c 'import sys; from pathlib import Path; from vcops.lab.aptrepo import add_debs; print("published", *add_debs(Path(p) for p in sys.argv[1:]))' "$@"; }
WINDOW_HOSTS="$KAM,lab-sbc-01"
deb 1.0 && deb 1.1 && publish .vcops/demo/vcops-demo_1.0_all.deb
for host in ${WINDOW_HOSTS//,/ }; do  # $KAM refuses root's own login now: vcops + sudo
    as_root "$(address "$host")" <<SH
apt-get -q update >/dev/null && DEBIAN_FRONTEND=noninteractive apt-get install -y -q vcops-demo=1.0 >/dev/null && echo $host: vcops-demo 1.0
SH
done
publish .vcops/demo/vcops-demo_1.1_all.deb

step "window create: the plan comes from real apt on the hosts, hashed and signed by the requester's key for the change board"
START=$(date -u -d '+20 seconds' +%Y-%m-%dT%H:%M:%S+00:00)
WINDOW=$(VCOPS_ACTOR=ops-demo "$VCOPS" -i "$LAB" window create --targets "$WINDOW_HOSTS" --start "$START" \
    --duration 1h --cutoff 15m --actions all-updates --change-id CHG-DEMO-1 --title "demo package update" \
    --key "$LAB/lab_key" --json \
    | python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])')
"$VCOPS" -i "$LAB" window show "$WINDOW"

step "a board member approves it with their SSH key (ssh-keygen -Y sign); the requester could not"
"$VCOPS" -i "$LAB" window approve "$WINDOW" --key "$LAB/board/alice" --comment "low risk, lab"

step "window run at its start: snapshot, drain, install the approved version, restart, health gate (units, SIP OPTIONS, SSH), snapshot"
sleep $(( $(date -d "$START" +%s) - $(date +%s) + 1 ))
time "$VCOPS" -i "$LAB" window run "$WINDOW"
"$VCOPS" -i "$LAB" window report "$WINDOW"
echo "mail the lab's SMTP server received about $WINDOW:"
.venv/bin/python -c 'import sys; from vcops.lab.mail import read_mail; [print("  to", m["To"], "|", m["Subject"]) for m in read_mail() if sys.argv[1] in str(m["Subject"])]' "$WINDOW"

step "audit trail"
"$VCOPS" audit log --last 5
"$VCOPS" audit verify
