#!/bin/sh
# Times mxray's log summary (internal/maillog) against Debian's pflogsumm on
# the same generated log, in the same run: wall time and peak memory from
# /usr/bin/time -v, several runs each (interleaved, so that load from other
# processes hits both alike), then best and median and the ratios.
#
#   bench/logs/summary.sh [MESSAGES]      (default 200000, about 194 MB)
#
# Environment: RUNS (mxray runs, default 7), PF_RUNS (pflogsumm runs,
# default 3), LOG (an existing log to time instead of generating one).
#
# Needs python3, pflogsumm (apt-get install pflogsumm), GNU time, Go.
set -eu
messages=${1:-200000}
runs=${RUNS:-7}
pf_runs=${PF_RUNS:-3}
root=$(cd "$(dirname "$0")/../.." && pwd)
gen="$root/../shared/bench/gen-postfix-log"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

for tool in python3 pflogsumm /usr/bin/time go; do
	command -v "$tool" >/dev/null || { echo "summary.sh: $tool not found" >&2; exit 2; }
done

log=${LOG:-}
if [ -z "$log" ]; then
	echo "generating $messages messages (seed 7)..."
	log="$tmp/mail.log"
	python3 "$gen" --messages "$messages" --seed 7 >"$log"
fi
ls -l "$log" | awk '{printf "input: %d bytes, ", $5}'
wc -l <"$log" | awk '{print $1 " lines"}'

# Build first (go run would time the compiler too): the product itself.
(cd "$root" && go build -o "$tmp/mxray" ./cmd/mxray)

cat "$log" >/dev/null # warm the page cache for both
"$tmp/mxray" logs summary --json "$log" >/dev/null

measure() { # name, command...: appends "wall rss" to $tmp/name.runs
	name=$1; shift
	/usr/bin/time -v "$@" >"$tmp/$name.out" 2>"$tmp/$name.time"
	awk -F': ' '
		/Elapsed \(wall clock\)/ { n = split($2, p, ":"); w = (n == 3) ? p[1]*3600 + p[2]*60 + p[3] : p[1]*60 + p[2] }
		/Maximum resident set size/ { r = $2 }
		END { print w, r }' "$tmp/$name.time" >>"$tmp/$name.runs"
}

i=0
while [ "$i" -lt "$runs" ]; do
	if [ "$i" -lt "$pf_runs" ]; then
		measure pflogsumm pflogsumm "$log"
	fi
	measure mxray "$tmp/mxray" logs summary --json "$log"
	i=$((i + 1))
done

stats() { # name: "best median maxrss" of the runs
	sort -n "$tmp/$1.runs" | awk '{ w[NR] = $1; if ($2 > r) r = $2 }
		END { m = (NR % 2) ? w[(NR + 1) / 2] : (w[NR / 2] + w[NR / 2 + 1]) / 2; print w[1], m, r }'
}
set -- $(stats pflogsumm) $(stats mxray)
printf '%-10s %d runs: wall best %6.2f s, median %6.2f s; max RSS %7d KiB\n' pflogsumm "$pf_runs" "$1" "$2" "$3"
printf '%-10s %d runs: wall best %6.2f s, median %6.2f s; max RSS %7d KiB\n' mxray "$runs" "$4" "$5" "$6"
awk -v pb="$1" -v pm="$2" -v pr="$3" -v mb="$4" -v mm="$5" -v mr="$6" 'BEGIN {
	printf "speed-up: %.1fx best/best, %.1fx median/median (target 25x, stretch 40x)\n", pb / mb, pm / mm
	printf "memory:   %.2f of pflogsumm'"'"'s peak RSS (target <= 1)\n", mr / pr
}'

# Same grand totals, as a sanity check of the run itself.
grep -A 20 'Grand Totals' "$tmp/pflogsumm.out" | sed -n '5,6p'
grep -oE '"(received|delivered)":[0-9]+' "$tmp/mxray.out" | head -2
