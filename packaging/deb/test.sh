#!/bin/sh
# make package-test: the .deb in a clean Debian 12 root where fail2ban 1.0.2 ran first. fail2ban
# (Debian's package) is installed, configured with a jail.local and run, and bans an IPv4 and an
# IPv6 address; then the .deb is installed with apt (its dependencies come from Debian), and the
# unit's command line (with /etc/default/portcullis, as systemd reads it) is started in a private
# network namespace: it must run fail2ban's own jails, take over both bans into nftables, and
# answer as fail2ban-client; then it is stopped and the package removed with its configuration
# kept. Every check that fails stops the script with a message and a non-zero status.
set -eu
deb=$(readlink -f "$1")
here=$(cd "$(dirname "$0")/../.." && pwd)
cache=$here/.cache/debroot-bookworm.tar
work=$(mktemp -d)
root=$work/root
cleanup() {
	umount "$root/proc" 2>/dev/null || true
	rm -rf "$work"
}
trap cleanup EXIT
fail() { echo "package-test: FAIL: $*" >&2; exit 1; }

if [ ! -f "$cache" ]; then
	echo "package-test: debootstrap --variant=minbase bookworm (cached in $cache)"
	debootstrap --variant=minbase bookworm "$work/base" http://deb.debian.org/debian >/dev/null
	tar -C "$work/base" -cf "$cache" .
	rm -rf "$work/base"
fi
mkdir -p "$root"
tar -C "$root" -xf "$cache"
cp /etc/resolv.conf "$root/etc/resolv.conf"
mount -t proc proc "$root/proc"
cp "$deb" "$root/tmp/portcullis.deb"

# fail2ban first, as the admin had it: its own jail.local, two bans in force in its database.
chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends fail2ban' >"$work/apt-f2b.log" 2>&1 ||
	{ cat "$work/apt-f2b.log"; fail "apt-get install fail2ban"; }
: >"$root/var/log/auth.log"
printf '[sshd]\nenabled = true\nbackend = auto\nlogpath = /var/log/auth.log\nbantime = 1h\n' >"$root/etc/fail2ban/jail.local"
unshare -n chroot "$root" sh -c '
	mkdir -p /run/fail2ban
	fail2ban-client start >/tmp/f2b-start.out 2>&1
	fail2ban-client set sshd banip 203.0.113.50 2001:db8::50 >/tmp/f2b-ban.out 2>&1
	fail2ban-client stop >/dev/null 2>&1' || true
grep -qx 2 "$root/tmp/f2b-ban.out" || { cat "$root/tmp/f2b-start.out" "$root/tmp/f2b-ban.out"; fail "fail2ban did not ban the two addresses"; }

chroot "$root" sh -c 'DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/portcullis.deb' >"$work/apt.log" 2>&1 ||
	{ cat "$work/apt.log"; fail "apt-get install of the .deb"; }
grep -qx 'PORTCULLIS_CONFIG=/etc/fail2ban' "$root/etc/default/portcullis" ||
	fail "fail2ban was configured, but /etc/default/portcullis does not point at /etc/fail2ban: $(cat "$root/etc/default/portcullis")"
for f in /usr/sbin/portcullis /usr/sbin/fail2ban-client /etc/portcullis/jail.conf /etc/portcullis/filter.d/sshd.conf \
	/lib/systemd/system/portcullis.service /usr/share/man/man8/portcullis.8 /etc/logrotate.d/portcullis; do
	[ -e "$root$f" ] || fail "$f is not installed"
done
chroot "$root" dpkg -s nftables >/dev/null 2>&1 || fail "the nftables dependency was not installed"

# The unit's own command line, in a namespace of its own, with a log to read.
exec_start=$(sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/portcullis.service")
[ -n "$exec_start" ] || fail "no ExecStart in the unit"
: >"$root/var/log/auth.log"
# The unit's command line as systemd runs it: its Environment, then /etc/default/portcullis.
unshare -n chroot "$root" sh -c "
	PORTCULLIS_CONFIG=/etc/portcullis
	. /etc/default/portcullis
	$exec_start >/tmp/daemon.log 2>&1 &
	pid=\$!
	c=/usr/sbin/fail2ban-client
	for i in \$(seq 1 150); do
		\$c ping >/tmp/ping.out 2>/dev/null && break
		sleep 0.2
	done
	\$c status >/tmp/status.out 2>&1 || true
	\$c get sshd banip >/tmp/banned.out 2>&1 || true
	\$c set sshd banip 203.0.113.9 >/tmp/ban.out 2>&1 || true
	nft list table inet portcullis >/tmp/nft.out 2>&1 || true
	\$c stop >/tmp/stop.out 2>&1 || true
	wait \$pid
	echo \$? >/tmp/daemon.rc
"
daemon_log() { echo "== daemon stderr"; tail -20 "$root/tmp/daemon.log"; echo "== /var/log/fail2ban.log"; grep -v "fail2ban\.[a-z]* *\[" "$root/var/log/fail2ban.log" | tail -20; }
grep -qx 'Server replied: pong' "$root/tmp/ping.out" || { daemon_log; fail "the daemon did not answer ping"; }
grep -q 'Jail list:.*sshd' "$root/tmp/status.out" || fail "status: $(cat "$root/tmp/status.out")"
for a in 203.0.113.50 2001:db8::50; do
	grep -q "$a" "$root/tmp/banned.out" || { daemon_log; fail "fail2ban's ban of $a was not taken over: $(cat "$root/tmp/banned.out")"; }
	grep -q "$a" "$root/tmp/nft.out" || fail "fail2ban's ban of $a is not in nftables: $(cat "$root/tmp/nft.out")"
done
grep -qx 1 "$root/tmp/ban.out" || fail "set sshd banip: $(cat "$root/tmp/ban.out")"
grep -q '203.0.113.9' "$root/tmp/nft.out" || fail "the ban is not in nftables: $(cat "$root/tmp/nft.out")"
grep -q "took over fail2ban's bans" "$root/var/log/fail2ban.log" || { daemon_log; fail "fail2ban.conf's logtarget has no word of the take-over"; }
grep -qx 0 "$root/tmp/daemon.rc" || { daemon_log; fail "the daemon did not stop cleanly"; }

echo "# an admin's edit" >>"$root/etc/portcullis/jail.conf"
chroot "$root" dpkg -r portcullis >"$work/rm.log" 2>&1 || { cat "$work/rm.log"; fail "dpkg -r"; }
[ ! -e "$root/usr/sbin/portcullis" ] || fail "the binary stayed after dpkg -r"
grep -q "an admin's edit" "$root/etc/portcullis/jail.conf" || fail "dpkg -r removed the configuration"
echo "package-test: ok ($(basename "$deb") installed where fail2ban ran, started from its unit's command line on /etc/fail2ban, fail2ban's bans taken over into nftables, answered, stopped, removed)"
