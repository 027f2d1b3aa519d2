#!/usr/bin/env bash
# Side by side, in one run, on the same generated sshd logs: `portcullis regex` and Debian's
# fail2ban-regex, both with fail2ban's own filter.d/sshd.conf. Prints a Markdown table.
#   make bench-compare            LINES=500000 RUNS=3 by default
set -euo pipefail
cd "$(dirname "$0")/.."
LINES=${LINES:-500000}
RUNS=${RUNS:-3}
export PATH=/usr/local/go/bin:$PATH

root=$(go run ./bench/gen -fetch-fail2ban)
filter="$root/etc/fail2ban/filter.d/sshd.conf"
if command -v fail2ban-regex >/dev/null; then
  f2b=(fail2ban-regex)
else
  # The same program from the unpacked package, run by the system's Python.
  if ! command -v python3 >/dev/null; then
    apt-get update -qq && apt-get install -y -qq python3 >/dev/null
  fi
  f2b=(env "PYTHONPATH=$root/usr/lib/python3/dist-packages" python3 "$root/usr/bin/fail2ban-regex")
fi
go build -o bin/portcullis ./cmd/portcullis
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# median of the wall-clock seconds of RUNS runs of a command (its output goes to $tmp/out)
median() {
  local times=()
  for _ in $(seq "$RUNS"); do
    local t0 t1
    t0=$(date +%s.%N)
    "$@" > "$tmp/out" 2>&1
    t1=$(date +%s.%N)
    times+=("$(echo "$t1 - $t0" | bc -l)")
  done
  printf '%s\n' "${times[@]}" | sort -g | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}'
}

echo "| workload ($LINES lines) | portcullis regex | fail2ban-regex | ratio | failures found (ours / fail2ban) |"
echo "| --- | --- | --- | --- | --- |"
for pct in 5 60; do
  log="$tmp/auth$pct.log"
  go run ./bench/gen -lines "$LINES" -fail "$pct" -start 2026-03-01T00:00:00Z -o "$log"
  ours=$(median bin/portcullis regex --now 2026-03-02T00:00:00Z "$log" "$filter")
  ours_n=$(grep -o '[0-9]* matched' "$tmp/out" | grep -o '[0-9]*')
  theirs=$(median "${f2b[@]}" "$log" "$filter")
  theirs_n=$(grep '^Lines:' "$tmp/out" | grep -o '[0-9]* matched' | grep -o '[0-9]*')
  printf '| sshd, %s%% failures, fail2ban sshd.conf | %.2f s (%.0f lines/s) | %.2f s (%.0f lines/s) | %.1f× | %s / %s |\n' \
    "$pct" "$ours" "$(echo "$LINES / $ours" | bc -l)" "$theirs" "$(echo "$LINES / $theirs" | bc -l)" \
    "$(echo "$theirs / $ours" | bc -l)" "$ours_n" "$theirs_n"
done
