#!/usr/bin/env bash
# Side by side, in one run, on the same generated sshd logs (5% and 60% failures):
#   portcullis replay   the shipped jails (configs/), the whole decision path without a firewall
#   portcullis regex    with our configs/filter.d/sshd.conf, and with fail2ban's own sshd.conf
#   fail2ban-regex      Debian's, with fail2ban's sshd.conf
#   sshg-parser         sshguard's parser (Debian's sshguard package, unpacked, never installed)
# Wall seconds are the median of RUNS runs; CPU seconds (user+system) and peak RSS are those of the
# median run (GNU time). Prints a Markdown table and writes it to bench/results.md.
#   make bench-compare            LINES=500000 RUNS=5 by default
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-500000}
RUNS=${RUNS:-5}
export PATH=/usr/local/go/bin:$PATH

need() { # need COMMAND PACKAGE
  command -v "$1" >/dev/null && return
  apt-get update -qq && apt-get install -y -qq "$2" >/dev/null
}
need bc bc
[ -x /usr/bin/time ] || { apt-get update -qq && apt-get install -y -qq time >/dev/null; }

root=$(go run ./bench/gen -fetch-fail2ban)
f2b_filter="$root/etc/fail2ban/filter.d/sshd.conf"
if command -v fail2ban-regex >/dev/null; then
  f2b=(fail2ban-regex)
else
  need python3 python3
  f2b=(env "PYTHONPATH=$root/usr/lib/python3/dist-packages" python3 "$root/usr/bin/fail2ban-regex")
fi

# sshguard's parser from Debian's package, unpacked into .cache/ (no service is installed).
sg=.cache/sshguard/usr/libexec/sshguard/sshg-parser
if [ ! -x "$sg" ]; then
  mkdir -p .cache/sshguard-deb
  (cd .cache/sshguard-deb && { apt-get download sshguard >/dev/null 2>&1 || { apt-get update -qq && apt-get download sshguard >/dev/null 2>&1; }; })
  dpkg -x .cache/sshguard-deb/sshguard_*.deb .cache/sshguard
fi

go build -o bin/portcullis ./cmd/portcullis
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# measure NAME COMMAND...: runs it RUNS times; sets wall, cpu, rss (MB) of the median run, and
# leaves that run's output in $tmp/out.
measure() {
  local runs=()
  for i in $(seq "$RUNS"); do
    /usr/bin/time -f "%e %U %S %M" -o "$tmp/time.$i" "$@" > "$tmp/out.$i" 2>&1
    runs+=("$(cat "$tmp/time.$i") $i")
  done
  local med
  med=$(printf '%s\n' "${runs[@]}" | sort -g | awk -v n="$RUNS" 'NR == int((n+1)/2)')
  read -r wall usr sys rss idx <<< "$med"
  cpu=$(echo "$usr + $sys" | bc -l)
  rss=$(echo "$rss / 1024" | bc -l)
  cp "$tmp/out.$idx" "$tmp/out"
}

table="$tmp/table.md"
{
  echo "| workload ($LINES lines) | tool | wall (median of $RUNS) | lines/s | CPU | peak RSS | found | vs fail2ban-regex |"
  echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
} > "$table"
row() { # row WORKLOAD TOOL FOUND BASEWALL
  printf '| %s | %s | %.2f s | %s | %.2f s | %.0f MB | %s | %s |\n' "$1" "$2" "$wall" \
    "$(printf '%.0f' "$(echo "$LINES / $wall" | bc -l)")" "$cpu" "$rss" "$3" \
    "$( [ -n "$4" ] && printf '%.1f×' "$(echo "$4 / $wall" | bc -l)" || echo "1×")" >> "$table"
}

now=2026-03-02T00:00:00Z
for pct in 5 60; do
  log="$tmp/auth$pct.log"
  go run ./bench/gen -lines "$LINES" -fail "$pct" -start 2026-03-01T00:00:00Z -o "$log"
  w="sshd, $pct% failures"

  measure "${f2b[@]}" "$log" "$f2b_filter"
  base=$wall
  row "$w" "fail2ban-regex, fail2ban's sshd.conf" "$(grep '^Lines:' "$tmp/out" | grep -o '[0-9]* matched' | grep -o '[0-9]*')" ""

  measure bin/portcullis regex --now "$now" "$log" "$f2b_filter"
  row "$w" "portcullis regex, fail2ban's sshd.conf" "$(grep -o '[0-9]* matched' "$tmp/out" | grep -o '[0-9]*')" "$base"

  measure bin/portcullis regex --now "$now" --config configs "$log" sshd
  row "$w" "portcullis regex, our sshd.conf" "$(grep -o '[0-9]* matched' "$tmp/out" | grep -o '[0-9]*')" "$base"

  measure bin/portcullis replay -c configs "$log"
  row "$w" "portcullis replay, shipped jails (failures counted, bans decided)" "$(grep -o '[0-9]* failures, [0-9]* bans' "$tmp/out")" "$base"

  measure sh -c "$sg < $log"
  row "$w" "sshguard sshg-parser" "$(grep -c . "$tmp/out" || true) attacks" "$base"
done
# (e) the daemon itself, tailing a file a writer appends to at a fixed rate (in a private network
# namespace, nftables and Pebble included): how far behind it falls and how much CPU it takes.
{
  echo
  echo "| the daemon tailing a file at a fixed rate, sshd 5% failures, 3 s | max lag | catch-up after the writer stops | cores busy (writer included) |"
  echo "| --- | --- | --- | --- |"
  go test -run '^$' -bench TailUnderLoad -benchtime 1x ./bench 2>/dev/null | awk '/^BenchmarkTailUnderLoad/ {
    rate=$1; sub(/.*rate=/, "", rate); sub(/-lines\/s.*/, " lines/s", rate)
    for (i = 1; i <= NF; i++) { m[$(i+1)] = $i }
    printf "| %s | %s ms | %s ms | %s |\n", rate, m["max-lag-ms"], m["catch-up-ms"], m["cores-busy"] }'
} >> "$table"
cat "$table"
# The notes below the table (from the "<!-- notes" line on) are kept: measurement history.
notes=$(sed -n '/^<!-- notes/,$p' bench/results.md 2>/dev/null)
{
  echo "<!-- written by make bench-compare ($(date -u +%Y-%m-%d), $(nproc) cores: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)) -->"
  cat "$table"
  if [ -n "$notes" ]; then echo; echo "$notes"; fi
} > bench/results.md
