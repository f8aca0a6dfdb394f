# Pending upgrades, skipped when nothing `apt list --upgradable` reads has changed since
# the fingerprint the controller stored for this host (the one argument; empty on a
# first scan). The fingerprint is the host's own metadata of those files (name, size,
# inode, mtime and ctime to the nanosecond), hashed here: it never uses a clock, and an
# equal string is the only test, so a host clock that jumps either way cannot hide a
# change. It is taken BEFORE apt runs, so lists changing meanwhile are seen next time.
# Records: `upgrades` = "unchanged FP" or "computed FP", and `upgradable` when computed.
# Read-only: nothing is written on the host outside this run's private $t.
upgrades() {
    _fp=$(stat -c '%n %s %i %.9Y %.9Z' /var/lib/dpkg/status /var/lib/apt/lists/*_Packages* \
        /var/lib/apt/lists/*Release /etc/apt/sources.list /etc/apt/sources.list.d/* \
        /etc/apt/preferences /etc/apt/preferences.d/* /etc/apt/apt.conf.d/* 2>/dev/null \
        | sha256sum | cut -c1-64)
    if [ -n "$1" ] && [ "$1" = "$_fp" ]; then
        printf 'unchanged %s' "$_fp" >"$t/.u"
    else
        section upgradable apt list --upgradable
        printf 'computed %s' "$_fp" >"$t/.u"
    fi
    emit upgrades 0 "$t/.u"
}
