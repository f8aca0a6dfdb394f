# vcops fact gathering: one script, one SSH session, one round trip.
# Prints sections "@@vcops <name> <exit-status>" followed by the command's output.
# Read-only: nothing here changes the host. Runs under /bin/sh (dash on Debian).
export LC_ALL=C PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
section() { name=$1; shift; out=$("$@" 2>&1); rc=$?; printf '@@vcops %s %s\n%s\n' "$name" "$rc" "$out"; }
have() { command -v "$1" >/dev/null 2>&1; }
catif() { for f in "$@"; do [ -e "$f" ] && { printf '@@file %s\n' "$f"; cat "$f"; printf '\n'; }; done; return 0; }

section os_release cat /etc/os-release
section debian_version cat /etc/debian_version
section virt systemd-detect-virt
section now date +%s
section uptime cat /proc/uptime
section sshd_t sshd -T
section sshd_version sh -c 'dpkg-query -W -f="\${Version}" openssh-server'
section ssh_q sh -c 'for q in kex cipher mac; do printf "%s: " "$q"; ssh -Q "$q" | tr "\n" " "; echo; done'
section sysctl sysctl -a
section nft nft -j list ruleset
section services systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState \
    ssh.service nftables.service fail2ban.service auditd.service chrony.service \
    unattended-upgrades.service kamailio.service asterisk.service freeswitch.service \
    rtpengine-daemon.service apt-daily-upgrade.timer
section packages dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n'
section upgradable apt list --upgradable
section reboot_required sh -c 'if [ -f /var/run/reboot-required ]; then stat -c %Y /var/run/reboot-required; cat /var/run/reboot-required.pkgs 2>/dev/null; else echo none; fi'
section apt_config apt-config dump APT::Periodic Unattended-Upgrade
section fail2ban sh -c 'fail2ban-client status 2>&1; for j in $(fail2ban-client status 2>/dev/null | sed -n "s/.*Jail list:[[:space:]]*//p" | tr "," " "); do printf "jail %s\n" "$j"; done'
section auditctl auditctl -l
section audit_rules sh -c 'cat /etc/audit/rules.d/*.rules /etc/audit/audit.rules 2>/dev/null'
section chrony_tracking chronyc -n tracking
section chrony_conf sh -c 'cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources 2>/dev/null'
section timedatectl timedatectl show
section stat sh -c 'stat -c "%n %a %U %G %F" /etc/shadow /etc/gshadow /etc/passwd /etc/ssh/ssh_host_*_key /etc/asterisk /etc/kamailio /etc/freeswitch 2>/dev/null; for d in /etc/asterisk /etc/kamailio /etc/freeswitch; do [ -d "$d" ] && find "$d" -maxdepth 3 -perm /o+rwx -printf "%p %m %u %g world\n" 2>/dev/null; done; true'
section listening ss -Htlnup
section asterisk_version sh -c 'dpkg-query -W -f="\${Version}" asterisk 2>/dev/null || (asterisk -V 2>/dev/null) || true'
section asterisk_conf catif /etc/asterisk/pjsip.conf /etc/asterisk/manager.conf /etc/asterisk/http.conf /etc/asterisk/ari.conf /etc/asterisk/sip.conf /etc/asterisk/modules.conf
section kamailio_conf catif /etc/kamailio/kamailio.cfg /etc/kamailio/kamailio-local.cfg /etc/kamailio/tls.cfg
section freeswitch_conf sh -c 'for f in /etc/freeswitch/vars.xml /etc/freeswitch/autoload_configs/event_socket.conf.xml /etc/freeswitch/sip_profiles/*.xml; do [ -e "$f" ] && { printf "@@file %s\n" "$f"; cat "$f"; printf "\n"; }; done; true'
printf '@@vcops end 0\n'
