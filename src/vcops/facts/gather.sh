# vcops fact gathering: the body of the `facts` host task (vcops.connectors.hosttask
# frames it: `section NAME CMD...` records one command's output and exit status; the
# VoIP config files are appended as `tarfiles` records by vcops.facts.server).
# Read-only: nothing here changes the host. Runs under /bin/sh (dash on Debian).
# A line ending in "# @shared" is left out when a snapshot in the same script reads it.
# Helpers (a function costs no fork+exec, a `sh -c` wrapper does; sh has no locals:
# their variables must not reuse `section`'s _n and _i).
ssh_kex() (  # "kex: a b c", the key exchanges this OpenSSH has (the PQ check's only
    set -f   # question; one `ssh -Q` costs ~6 ms of host CPU); algorithm names are no globs
    printf 'kex: '; echo $(ssh -Q kex)
)
asterisk_version() {  # `asterisk -V` of an asterisk built from source: a packaged one's
    # version is in the `packages` section (no dpkg-query here, no fork on other hosts)
    [ -e /var/lib/dpkg/info/asterisk.list ] && return 0
    command -v asterisk >/dev/null 2>&1 && asterisk -V 2>/dev/null
    return 0
}
host_key_lengths() {  # per host key: "PATH pub <its .pub line>", the file ssh-keygen -l
    # reads first (read by the shell: no fork), or "PATH <first line of ssh-keygen -l>"
    for _hk in /etc/ssh/ssh_host_*_key; do
        [ -e "$_hk" ] || continue
        _hl=
        if [ -f "$_hk.pub" ] && { IFS= read -r _hl <"$_hk.pub" || [ -n "$_hl" ]; } 2>/dev/null; then
            printf '%s pub %s\n' "$_hk" "$_hl"
        else
            _hl=$(ssh-keygen -l -f "$_hk" 2>&1)
            printf '%s %s\n' "$_hk" "${_hl%%
*}"
        fi
    done
    return 0
}
# Subshell functions, not `sh -c '...'`: a fork without an exec (~0.2 ms, not ~1 ms),
# and an `exit` in one still ends only that section.
reboot_required() (
    if [ -f /var/run/reboot-required ]; then
        stat -c %Y /var/run/reboot-required; cat /var/run/reboot-required.pkgs 2>/dev/null
    else
        echo none
    fi
)
# fail2ban: ONE run of fail2ban's own client classes (its socket and reply formatter)
# asks `status` and every jail's bantime.increment for ~0.05 s of host CPU, where each
# fail2ban-client run (a Python program) costs ~0.1 s. It is taken only when the
# interpreter fail2ban-client names is a plain python3 path, F2B_SOCK is a socket and no
# fail2ban config names another; otherwise, or when it fails in any way, fail2ban-client
# answers as before: `status` once, then ONE interactive session (-i) for every jail's
# increment, so a broken fail2ban is still described in fail2ban-client's own words.
F2B_SOCK=/var/run/fail2ban/fail2ban.sock
F2B_ETC=/etc/fail2ban
F2B_PY='import re, sys
from fail2ban.client.beautifier import Beautifier
from fail2ban.client.csocket import CSocket
sock = CSocket(sys.argv[1], timeout=5)
def ask(*cmd):
    code, answer = sock.send(list(cmd))
    return code, answer, (Beautifier(list(cmd)).beautify(answer) if code == 0 else "")
code, answer, status = ask("status")
if code != 0:
    sys.exit(3)
jails = [j for j in re.split("[ ,\t]+", str(dict(answer).get("Jail list", ""))) if j]
with open(sys.argv[2], "w") as out:
    for jail in jails:
        value = str(ask("get", jail, "bantime.increment")[2])
        out.write(jail + " " + (value.splitlines() or [""])[0] + "\n")
sock.close()
print(status)'
f2b_fast() {  # the `status` text; "JAIL VALUE" lines in $t/.f2i; non-zero: not taken
    _py=; { IFS= read -r _py <"$(command -v fail2ban-client)"; } 2>/dev/null
    _py=${_py#"#!"}
    case $_py in *[[:space:]]*) return 1 ;; /*/python3 | /*/python3.[0-9]*) ;; *) return 1 ;; esac
    [ -S "$F2B_SOCK" ] || return 1
    ! grep -hs '^[[:space:]]*socket[[:space:]]*=' "$F2B_ETC/fail2ban.conf" \
        "$F2B_ETC/fail2ban.local" "$F2B_ETC"/fail2ban.d/* |
        grep -qvx "[[:space:]]*socket[[:space:]]*=[[:space:]]*$F2B_SOCK[[:space:]]*" || return 1
    "$_py" -I -c "$F2B_PY" "$F2B_SOCK" "$t/.f2i" 2>/dev/null
}
f2b_jails() {  # sets _jl: the rest of the "Jail list:" line of `status` ($1)
    _jl=${1##*Jail list:}; [ "$_jl" != "$1" ] || _jl=
    _jl=${_jl%%
*}
}
fail2ban_status() {  # the `status` text, a "jail NAME" line per jail, "via" the path taken
    _jl=; _f2i=
    command -v fail2ban-client >/dev/null || { echo "fail2ban-client: not found"; return 127; }
    if _f2=$(f2b_fast); then
        _f2r=0; _f2i=socket
    else
        _f2=$(fail2ban-client status 2>&1); _f2r=$?
    fi
    printf '%s\n' "$_f2"
    [ "$_f2r" = 0 ] || return "$_f2r"
    f2b_jails "$_f2"
    (IFS=' ,	'; set -f; for j in $_jl; do printf 'jail %s\n' "$j"; done)
    printf 'via %s\n' "${_f2i:-fail2ban-client}"
}
fail2ban_increment() (  # "JAIL VALUE": the first line of each answer, in asking order
    if [ -n "$_f2i" ]; then cat "$t/.f2i"; exit; fi
    IFS=' ,	'; set -f
    [ -n "$_jl" ] || exit 0
    for j in $_jl; do printf 'get %s bantime.increment\n' "$j"; done |
        fail2ban-client -i 2>/dev/null |
        awk -v jails="$(printf '%s ' $_jl)" 'BEGIN { RS = "fail2ban> "; split(jails, j, " ") }
            NR > 1 && NR - 1 in j { sub(/\n.*/, ""); print j[NR - 1], $0 }'
)
file_modes() (
    stat -c "%n %a %U %G %F" /etc/shadow /etc/gshadow /etc/passwd /etc/ssh/ssh_host_*_key \
        /etc/asterisk /etc/kamailio /etc/freeswitch 2>/dev/null
    for d in /etc/asterisk /etc/kamailio /etc/freeswitch; do
        [ -d "$d" ] && find "$d" -maxdepth 3 -perm /o+rwx -printf "%p %m %u %g world\n" 2>/dev/null
    done
    true
)
moduli_sizes() (
    if [ -e /etc/ssh/moduli ]; then
        awk '$1 !~ /^#/ && NF >= 7 {n[$5]++} END {for (s in n) print n[s], s}' /etc/ssh/moduli
    else
        echo missing
    fi
)
needrestart_list() (
    command -v needrestart >/dev/null || { echo "needrestart is not installed"; exit 127; }
    needrestart -b -r l
)
# needrestart (~0.3 s of CPU on a Kamailio host: it reads every process's memory maps in
# Perl), skipped when the controller stored a fingerprint under which it found no
# service to restart ($1; empty otherwise) and the fingerprint still holds. What its
# service list depends on, hashed: the boot, dpkg's status, needrestart's own config and
# program, and every file a process maps (device, inode, path: a library replaced since
# shows as "(deleted)" or a new inode), leaving out this script's own session. Same
# rules as upgrades.sh: no clock, an equal string is the only test, taken BEFORE
# needrestart runs. Only as root (another user's maps are unreadable). mawk: no regex
# intervals, and a file it cannot open as an argument ends it, so awk opens each itself
# (a process gone meanwhile is skipped). Record `needrestart_state` = "unchanged FP" or
# "computed FP" ("computed" alone when no fingerprint could be taken).
needrestart_check() {
    _nf=
    if [ "$(id -u)" = 0 ] && command -v needrestart >/dev/null; then
        _nf=$({ cat /proc/sys/kernel/random/boot_id
            stat -c '%n %s %i %.9Y %.9Z' /var/lib/dpkg/status "$(command -v needrestart)"
            find /etc/needrestart -printf '%p %s %i %T@ %C@\n' 2>/dev/null
            awk -v self="/proc/$$/stat" '
                function session(f,  l, a) {
                    l = ""; if ((getline l < f) <= 0) l = ""; close(f)
                    if (!sub(/^.*\) /, "", l)) return ""
                    split(l, a, " "); return a[4]
                }
                BEGIN {
                    mine = session(self)
                    for (i = 1; i < ARGC; i++) {
                        m = ARGV[i]; s = m; sub(/maps$/, "stat", s); n = session(s)
                        if (n == "" || n == mine) continue
                        while ((getline l < m) > 0)
                            if (split(l, a, " ") >= 6) { sub(/^[^ ]+ +[^ ]+ +[^ ]+ +/, "", l); print l }
                        close(m)
                    }
                }' /proc/[0-9]*/maps | sort -u
        } | sha256sum | cut -c1-64)
    fi
    if [ -n "$1" ] && [ "$1" = "$_nf" ]; then
        printf 'unchanged %s' "$_nf" >"$t/.n"
    else
        section needrestart needrestart_list
        printf 'computed %s' "$_nf" >"$t/.n"
    fi
    emit needrestart_state 0 "$t/.n"
}
aide_state() (
    for f in db:/var/lib/aide/vcops.db report:/var/log/aide/vcops-check.log; do
        printf '%s ' "${f%%:*}"; stat -c %Y "${f#*:}" 2>/dev/null || echo none
    done
    sed -n "1,40p" /var/log/aide/vcops-check.log 2>/dev/null
    true
)
rsyslog_files() (
    if [ -f /etc/rsyslog.conf ]; then
        cat /etc/rsyslog.conf
        for f in /etc/rsyslog.d/*.conf; do [ -f "$f" ] && cat "$f"; done
        true
    else
        echo "no /etc/rsyslog.conf"; exit 3
    fi
)
section os_release cat /etc/os-release
section debian_version cat /etc/debian_version
section virt systemd-detect-virt
section now date +%s
section uptime cat /proc/uptime
section sshd_t sshd -T  # @shared
section ssh_q ssh_kex
section sysctl sysctl -a
section nft nft -j list ruleset
section services systemctl show --no-pager -p Id,LoadState,ActiveState,SubState,UnitFileState \
    ssh.service nftables.service fail2ban.service auditd.service chrony.service \
    unattended-upgrades.service kamailio.service asterisk.service freeswitch.service \
    rtpengine-daemon.service apt-daily-upgrade.timer acct.service sysstat.service \
    vcops-aide-check.timer rsyslog.service systemd-journald.service cron.service
section packages dpkg-query -W -f='${Package}\t${Version}\t${db:Status-Abbrev}\n'  # @shared
upgrades "$upgrades_since"  # see upgrades.sh
section reboot_required reboot_required
section apt_config apt-config dump APT::Periodic Unattended-Upgrade
section fail2ban fail2ban_status
section auditctl auditctl -l
section audit_rules mute cat /etc/audit/rules.d/*.rules /etc/audit/audit.rules  # @shared
section chrony_tracking chronyc -n tracking
section chrony_conf mute cat /etc/chrony/chrony.conf /etc/chrony/conf.d/*.conf /etc/chrony/sources.d/*.sources  # @shared
section timedatectl timedatectl show
section stat file_modes
section listening ss -Htlnup
section asterisk_version asterisk_version
section host_keys host_key_lengths
section moduli moduli_sizes
section fail2ban_increment fail2ban_increment
tarfiles banners /etc/issue /etc/issue.net
tarfiles apt_sources /etc/apt/sources.list /etc/apt/sources.list.d/*.list /etc/apt/sources.list.d/*.sources
section apt_lists find /var/lib/apt/lists -maxdepth 1 ! -name lock ! -name partial ! -name auxfiles -printf '%d %T@\n'
needrestart_check "$needrestart_since"
section needrestart_conf quiet cat /etc/needrestart/conf.d/*.conf
section aide aide_state
section journald systemd-analyze cat-config systemd/journald.conf
section rsyslog_conf rsyslog_files
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
