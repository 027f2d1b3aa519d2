#!/bin/sh
# make package-test: the .deb in a clean Debian 12 root. Installed with apt (its dependencies
# come from Debian), the unit's ExecStart run in a private network namespace, the daemon asked
# over its socket as fail2ban-client, stopped, then the package removed with its configuration
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

chroot "$root" sh -c 'apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq /tmp/portcullis.deb' >"$work/apt.log" 2>&1 ||
	{ cat "$work/apt.log"; fail "apt-get install of the .deb"; }
for f in /usr/sbin/portcullis /usr/sbin/fail2ban-client /etc/portcullis/jail.conf /etc/portcullis/filter.d/sshd.conf \
	/lib/systemd/system/portcullis.service /usr/share/man/man8/portcullis.8 /etc/logrotate.d/portcullis; do
	[ -e "$root$f" ] || fail "$f is not installed"
done
chroot "$root" dpkg -s nftables >/dev/null 2>&1 || fail "the nftables dependency was not installed"

# The unit's own command line, in a namespace of its own, with a log to read.
exec_start=$(sed -n 's/^ExecStart=//p' "$root/lib/systemd/system/portcullis.service")
[ -n "$exec_start" ] || fail "no ExecStart in the unit"
: >"$root/var/log/auth.log"
unshare -n chroot "$root" sh -c "
	$exec_start >/tmp/daemon.log 2>&1 &
	pid=\$!
	for i in \$(seq 1 100); do
		fail2ban-client ping >/tmp/ping.out 2>/dev/null && break
		sleep 0.2
	done
	fail2ban-client status >/tmp/status.out 2>&1 || true
	fail2ban-client set sshd banip 203.0.113.9 >/tmp/ban.out 2>&1 || true
	nft list table inet portcullis >/tmp/nft.out 2>&1 || true
	fail2ban-client stop >/tmp/stop.out 2>&1 || true
	wait \$pid
	echo \$? >/tmp/daemon.rc
"
grep -qx 'Server replied: pong' "$root/tmp/ping.out" || { cat "$root/tmp/daemon.log"; fail "the daemon did not answer ping"; }
grep -q 'Jail list:.*sshd' "$root/tmp/status.out" || fail "status: $(cat "$root/tmp/status.out")"
grep -qx 1 "$root/tmp/ban.out" || fail "set sshd banip: $(cat "$root/tmp/ban.out")"
grep -q '203.0.113.9' "$root/tmp/nft.out" || fail "the ban is not in nftables: $(cat "$root/tmp/nft.out")"
grep -qx 0 "$root/tmp/daemon.rc" || { cat "$root/tmp/daemon.log"; fail "the daemon did not stop cleanly"; }

echo "# an admin's edit" >>"$root/etc/portcullis/jail.conf"
chroot "$root" dpkg -r portcullis >"$work/rm.log" 2>&1 || { cat "$work/rm.log"; fail "dpkg -r"; }
[ ! -e "$root/usr/sbin/portcullis" ] || fail "the binary stayed after dpkg -r"
grep -q "an admin's edit" "$root/etc/portcullis/jail.conf" || fail "dpkg -r removed the configuration"
echo "package-test: ok ($(basename "$deb") installed, started from its unit's command line, answered, stopped, removed)"
