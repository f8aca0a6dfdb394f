# vcops fact gathering: the body of the `facts` host task (vcops.connectors.hosttask
# frames it: `section NAME CMD...` records one command's output and exit status; the
# VoIP config files are appended as `tarfiles` records by vcops.facts.server).
# Read-only: nothing here changes the host. Runs under /bin/sh (dash on Debian).
# A line ending in "# @shared" is left out when a snapshot in the same script reads it.
section os_release cat /etc/os-release
section debian_version cat /etc/debian_version
section virt systemd-detect-virt
section now date +%s
section uptime cat /proc/uptime
section sshd_t sshd -T  # @shared
section sshd_version sh -c 'dpkg-query -W -f="\${Version}" openssh-server'
section ssh_q sh -c 'for q in kex cipher mac; do printf "%s: " "$q"; ssh -Q "$q" | tr "\n" " "; echo; done'
section sysctl sysctl -a
section nft nft -j list ruleset
section services systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState \
    ssh.service nftables.service fail2ban.service auditd.service chrony.service \
    unattended-upgrades.service kamailio.service asterisk.service freeswitch.service \
    rtpengine-daemon.service apt-daily-upgrade.timer acct.service sysstat.service
section packages dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n'  # @shared
upgrades "$upgrades_since"  # see upgrades.sh
section reboot_required sh -c 'if [ -f /var/run/reboot-required ]; then stat -c %Y /var/run/reboot-required; cat /var/run/reboot-required.pkgs 2>/dev/null; else echo none; fi'
section apt_config apt-config dump APT::Periodic Unattended-Upgrade
section fail2ban sh -c 'fail2ban-client status 2>&1; for j in $(fail2ban-client status 2>/dev/null | sed -n "s/.*Jail list:[[:space:]]*//p" | tr "," " "); do printf "jail %s\n" "$j"; done'
section auditctl auditctl -l
section audit_rules sh -c 'cat /etc/audit/rules.d/*.rules /etc/audit/audit.rules 2>/dev/null'  # @shared
section chrony_tracking chronyc -n tracking
section chrony_conf sh -c 'cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources 2>/dev/null'  # @shared
section timedatectl timedatectl show
section stat sh -c 'stat -c "%n %a %U %G %F" /etc/shadow /etc/gshadow /etc/passwd /etc/ssh/ssh_host_*_key /etc/asterisk /etc/kamailio /etc/freeswitch 2>/dev/null; for d in /etc/asterisk /etc/kamailio /etc/freeswitch; do [ -d "$d" ] && find "$d" -maxdepth 3 -perm /o+rwx -printf "%p %m %u %g world\n" 2>/dev/null; done; true'
section listening ss -Htlnup
section asterisk_version sh -c 'dpkg-query -W -f="\${Version}" asterisk 2>/dev/null || (asterisk -V 2>/dev/null) || true'
section host_keys sh -c 'for f in /etc/ssh/ssh_host_*_key; do [ -e "$f" ] && printf "%s %s\n" "$f" "$(ssh-keygen -l -f "$f" 2>&1 | head -n 1)"; done; true'
section moduli sh -c 'if [ -e /etc/ssh/moduli ]; then awk "\$1 !~ /^#/ && NF >= 7 {print \$5}" /etc/ssh/moduli | sort -n | uniq -c; else echo missing; fi'
section fail2ban_increment sh -c 'for j in $(fail2ban-client status 2>/dev/null | sed -n "s/.*Jail list:[[:space:]]*//p" | tr "," " "); do printf "%s %s\n" "$j" "$(fail2ban-client get "$j" bantime.increment 2>&1 | head -n 1)"; done'
tarfiles banners /etc/issue /etc/issue.net
tarfiles apt_sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
section apt_lists find /var/lib/apt/lists -maxdepth 1 ! -name lock ! -name partial ! -name auxfiles -printf '%d %T@\n'
section needrestart sh -c 'command -v needrestart >/dev/null || { echo "needrestart is not installed"; exit 127; }; needrestart -b -r l'
section needrestart_conf sh -c 'cat /etc/needrestart/conf.d/*.conf 2>/dev/null; true'
section aide sh -c 'for f in db:/var/lib/aide/vcops.db report:/var/log/aide/vcops-check.log; do printf "%s " "${f%%:*}"; stat -c %Y "${f#*:}" 2>/dev/null || echo none; done; sed -n "1,40p" /var/log/aide/vcops-check.log 2>/dev/null; true'
section integ_services systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState vcops-aide-check.timer rsyslog.service systemd-journald.service
section journald systemd-analyze cat-config systemd/journald.conf
section rsyslog_conf sh -c 'if [ -f /etc/rsyslog.conf ]; then cat /etc/rsyslog.conf; for f in /etc/rsyslog.d/*.conf; do [ -f "$f" ] && cat "$f"; done; true; else echo "no /etc/rsyslog.conf"; exit 3; fi'
# accounts area (vcops.facts.accounts): PAM stack, login.defs, root's aging, TMOUT, sudo, cron
section acc_pam grep -Hv '^[[:space:]]*\(#\|$\)' /etc/pam.d/common-auth /etc/pam.d/common-account /etc/pam.d/common-password /etc/pam.d/common-session
section acc_pwquality sh -c 'cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf 2>/dev/null; true'
section acc_faillock sh -c 'cat /etc/security/faillock.conf 2>/dev/null; true'
section acc_login_defs cat /etc/login.defs
section acc_root passwd -S root
section acc_tmout sh -c 'grep -H "TMOUT" /etc/profile /etc/profile.d/*.sh /etc/bash.bashrc 2>/dev/null; true'
section acc_sudoers sh -c 'grep -Hi "^[[:space:]]*Defaults" /etc/sudoers /etc/sudoers.d/* 2>/dev/null; true'
section acc_visudo visudo -c
section acc_stat sh -c 'stat -c "%n %a %U %G %F" /etc/sudoers.d /etc/crontab /etc/cron.d /etc/cron.daily /etc/cron.hourly /etc/cron.weekly /etc/cron.monthly /etc/cron.yearly /etc/cron.allow /etc/at.allow /etc/cron.deny /etc/at.deny 2>/dev/null; true'
section acc_allow sh -c 'grep -H "" /etc/cron.allow /etc/at.allow 2>/dev/null; true'
section acc_cron systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState cron.service
# kernel area (vcops.facts.kernel): every candidate config file's lines, each prefixed
# with its path, in ONE grep per section (a missing glob or file is skipped);
# vcops.facts.kernel.reader_order keeps the files the reader applies, in its order.
# The paths here are vcops.facts.kernel.READERS (a unit test holds them equal).
section sysctl_files sh -c "grep -H '' /etc/sysctl.d/*.conf /run/sysctl.d/*.conf /usr/local/lib/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf /lib/sysctl.d/*.conf /etc/sysctl.conf 2>/dev/null; true"
section modprobe_files sh -c "grep -H '' /etc/modprobe.d/*.conf /run/modprobe.d/*.conf /usr/local/lib/modprobe.d/*.conf /usr/lib/modprobe.d/*.conf /lib/modprobe.d/*.conf 2>/dev/null; true"
section modules cat /proc/modules
section limits_files sh -c "grep -H '' /etc/security/limits.conf /etc/security/limits.d/*.conf 2>/dev/null; true"
section coredump_files sh -c "grep -H '' /etc/systemd/coredump.conf /etc/systemd/coredump.conf.d/*.conf /run/systemd/coredump.conf.d/*.conf /usr/local/lib/systemd/coredump.conf.d/*.conf /usr/lib/systemd/coredump.conf.d/*.conf 2>/dev/null; true"
section sysstat_default sh -c 'cat /etc/default/sysstat 2>/dev/null; true'
