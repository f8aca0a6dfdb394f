# vcops fact gathering: the body of the `facts` host task (vcops.connectors.hosttask
# frames it: `section NAME CMD...` records one command's output and exit status; the
# VoIP config files are appended as `tarfiles` records by vcops.facts.server).
# Read-only: nothing here changes the host. Runs under /bin/sh (dash on Debian).
# A line ending in "# @shared" is left out when a snapshot in the same script reads it.
# Helpers (a function costs no fork+exec, a `sh -c` wrapper does; sh has no locals:
# their variables must not reuse `section`'s _n and _i).
ssh_algorithms() (  # "kex: a b c" per kind; set -f: algorithm names are never globs
    set -f
    for _q in kex cipher mac; do printf '%s: ' "$_q"; echo $(ssh -Q "$_q"); done
)
asterisk_version() { dpkg-query -W -f='${Version}' asterisk 2>/dev/null || asterisk -V 2>/dev/null || true; }
host_key_lengths() {  # "PATH <first line of ssh-keygen -l>" per host key
    for _hk in /etc/ssh/ssh_host_*_key; do
        [ -e "$_hk" ] || continue
        _hl=$(ssh-keygen -l -f "$_hk" 2>&1)
        printf '%s %s\n' "$_hk" "${_hl%%
*}"
    done
    return 0
}
section os_release cat /etc/os-release
section debian_version cat /etc/debian_version
section virt systemd-detect-virt
section now date +%s
section uptime cat /proc/uptime
section sshd_t sshd -T  # @shared
section sshd_version dpkg-query -W -f='${Version}' openssh-server
section ssh_q ssh_algorithms
section sysctl sysctl -a
section nft nft -j list ruleset
section services systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState \
    ssh.service nftables.service fail2ban.service auditd.service chrony.service \
    unattended-upgrades.service kamailio.service asterisk.service freeswitch.service \
    rtpengine-daemon.service apt-daily-upgrade.timer acct.service sysstat.service \
    vcops-aide-check.timer rsyslog.service systemd-journald.service
section packages dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n'  # @shared
upgrades "$upgrades_since"  # see upgrades.sh
section reboot_required sh -c 'if [ -f /var/run/reboot-required ]; then stat -c %Y /var/run/reboot-required; cat /var/run/reboot-required.pkgs 2>/dev/null; else echo none; fi'
section apt_config apt-config dump APT::Periodic Unattended-Upgrade
section fail2ban sh -c 'fail2ban-client status 2>&1; for j in $(fail2ban-client status 2>/dev/null | sed -n "s/.*Jail list:[[:space:]]*//p" | tr "," " "); do printf "jail %s\n" "$j"; done'
section auditctl auditctl -l
section audit_rules mute cat /etc/audit/rules.d/*.rules /etc/audit/audit.rules  # @shared
section chrony_tracking chronyc -n tracking
section chrony_conf mute cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources  # @shared
section timedatectl timedatectl show
section stat sh -c 'stat -c "%n %a %U %G %F" /etc/shadow /etc/gshadow /etc/passwd /etc/ssh/ssh_host_*_key /etc/asterisk /etc/kamailio /etc/freeswitch 2>/dev/null; for d in /etc/asterisk /etc/kamailio /etc/freeswitch; do [ -d "$d" ] && find "$d" -maxdepth 3 -perm /o+rwx -printf "%p %m %u %g world\n" 2>/dev/null; done; true'
section listening ss -Htlnup
section asterisk_version asterisk_version
section host_keys host_key_lengths
section moduli sh -c 'if [ -e /etc/ssh/moduli ]; then awk "\$1 !~ /^#/ && NF >= 7 {print \$5}" /etc/ssh/moduli | sort -n | uniq -c; else echo missing; fi'
section fail2ban_increment sh -c 'for j in $(fail2ban-client status 2>/dev/null | sed -n "s/.*Jail list:[[:space:]]*//p" | tr "," " "); do printf "%s %s\n" "$j" "$(fail2ban-client get "$j" bantime.increment 2>&1 | head -n 1)"; done'
tarfiles banners /etc/issue /etc/issue.net
tarfiles apt_sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
section apt_lists find /var/lib/apt/lists -maxdepth 1 ! -name lock ! -name partial ! -name auxfiles -printf '%d %T@\n'
section needrestart sh -c 'command -v needrestart >/dev/null || { echo "needrestart is not installed"; exit 127; }; needrestart -b -r l'
section needrestart_conf quiet cat /etc/needrestart/conf.d/*.conf
section aide sh -c 'for f in db:/var/lib/aide/vcops.db report:/var/log/aide/vcops-check.log; do printf "%s " "${f%%:*}"; stat -c %Y "${f#*:}" 2>/dev/null || echo none; done; sed -n "1,40p" /var/log/aide/vcops-check.log 2>/dev/null; true'
section journald systemd-analyze cat-config systemd/journald.conf
section rsyslog_conf sh -c 'if [ -f /etc/rsyslog.conf ]; then cat /etc/rsyslog.conf; for f in /etc/rsyslog.d/*.conf; do [ -f "$f" ] && cat "$f"; done; true; else echo "no /etc/rsyslog.conf"; exit 3; fi'
# accounts area (vcops.facts.accounts): PAM stack, login.defs, root's aging, TMOUT, sudo, cron
section acc_pam grep -Hv '^[[:space:]]*\(#\|$\)' /etc/pam.d/common-auth /etc/pam.d/common-account /etc/pam.d/common-password /etc/pam.d/common-session
section acc_pwquality quiet cat /etc/security/pwquality.conf /etc/security/pwquality.conf.d/*.conf
section acc_faillock quiet cat /etc/security/faillock.conf
section acc_login_defs cat /etc/login.defs
section acc_root passwd -S root
section acc_tmout quiet grep -H TMOUT /etc/profile /etc/profile.d/*.sh /etc/bash.bashrc
section acc_sudoers quiet grep -Hi '^[[:space:]]*Defaults' /etc/sudoers /etc/sudoers.d/*
section acc_visudo visudo -c
section acc_stat quiet stat -c '%n %a %U %G %F' /etc/sudoers.d /etc/crontab /etc/cron.d /etc/cron.daily /etc/cron.hourly /etc/cron.weekly /etc/cron.monthly /etc/cron.yearly /etc/cron.allow /etc/at.allow /etc/cron.deny /etc/at.deny
section acc_allow quiet grep -H '' /etc/cron.allow /etc/at.allow
section acc_cron systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState cron.service
# kernel area (vcops.facts.kernel): every candidate config file's lines, each prefixed
# with its path, in ONE grep per section (a missing glob or file is skipped);
# vcops.facts.kernel.reader_order keeps the files the reader applies, in its order.
# The paths here are vcops.facts.kernel.READERS (a unit test holds them equal).
section sysctl_files quiet grep -H '' /etc/sysctl.d/*.conf /run/sysctl.d/*.conf /usr/local/lib/sysctl.d/*.conf /usr/lib/sysctl.d/*.conf /lib/sysctl.d/*.conf /etc/sysctl.conf
section modprobe_files quiet grep -H '' /etc/modprobe.d/*.conf /run/modprobe.d/*.conf /usr/local/lib/modprobe.d/*.conf /usr/lib/modprobe.d/*.conf /lib/modprobe.d/*.conf
section modules cat /proc/modules
section limits_files quiet grep -H '' /etc/security/limits.conf /etc/security/limits.d/*.conf
section coredump_files quiet grep -H '' /etc/systemd/coredump.conf /etc/systemd/coredump.conf.d/*.conf /run/systemd/coredump.conf.d/*.conf /usr/local/lib/systemd/coredump.conf.d/*.conf /usr/lib/systemd/coredump.conf.d/*.conf
section sysstat_default quiet cat /etc/default/sysstat
