#!/bin/sh
# Benchmark of `mxray reports import` (not part of the test suite).
#
#   bench/reports/import.sh [--runs N] [--peer] [--keep]
#
# Generates, in a temporary directory, with ../shared/bench/gen-dmarc-reports:
#   1. one DMARC aggregate report of 25,903 records, as an e-mail
#      (--reports 1 --records 20000 --seed 5 --format eml);
#   2. 10,000 report e-mails of about 50 records each
#      (--reports 10000 --records 50 --seed 5 --format eml);
# builds mxray, imports each into a fresh data directory under
# /usr/bin/time -v, and prints the wall time, the CPU time (user + system,
# and per record), the peak RSS and records/s. --runs N (default 1) repeats
# each import N times and adds a line with the best and the median wall
# time and records/s, and the median CPU per record: the machine is shared,
# so wall times vary while CPU times stay steadier.
#
# --peer also runs Mail::DMARC's dmarc_receive --file on report 1 (Debian
# package libmail-dmarc-perl, installed with apt-get when missing), storing
# into an SQLite file, and prints the ratio. It takes minutes.
# --keep leaves the temporary directory in place.
set -eu

peer=0
keep=0
runs=1
while [ $# -gt 0 ]; do
	case $1 in
	--peer) peer=1 ;;
	--keep) keep=1 ;;
	--runs) shift; runs=${1:-}; case $runs in ''|*[!0-9]*|0) echo "--runs needs a positive number" >&2; exit 2 ;; esac ;;
	*) echo "usage: $0 [--runs N] [--peer] [--keep]" >&2; exit 2 ;;
	esac
	shift
done

repo=$(cd "$(dirname "$0")/../.." && pwd)
gen=${GEN_DMARC_REPORTS:-$repo/../shared/bench/gen-dmarc-reports}
[ -x "$gen" ] || { echo "$gen not found (set GEN_DMARC_REPORTS)" >&2; exit 2; }
[ -x /usr/bin/time ] || { echo "/usr/bin/time is missing (apt-get install time)" >&2; exit 2; }

tmp=$(mktemp -d "${TMPDIR:-/tmp}/mxray-bench.XXXXXX")
if [ "$keep" = 0 ]; then trap 'rm -rf "$tmp"' EXIT; else echo "keeping $tmp"; fi

echo "generating inputs in $tmp ..."
"$gen" --reports 1 --records 20000 --seed 5 --format eml --out "$tmp/one" >/dev/null
"$gen" --reports 10000 --records 50 --seed 5 --format eml --out "$tmp/many" >/dev/null
echo "building mxray ..."
(cd "$repo" && go build -o "$tmp/mxray" ./cmd/mxray)

# field FILE NAME prints the value of a /usr/bin/time -v line.
field() { sed -n "s/^[[:space:]]*$2: //p" "$1"; }

# seconds H:MM:SS.ss|M:SS.ss converts /usr/bin/time's wall clock.
seconds() { echo "$1" | awk -F: '{ s = 0; for (i = 1; i <= NF; i++) s = s * 60 + $i; print s }'; }

# run NAME INPUT imports INPUT into a fresh data directory.
run() {
	name=$1 input=$2
	rm -rf "$tmp/data-$name"
	/usr/bin/time -v -o "$tmp/time-$name" "$tmp/mxray" --data "$tmp/data-$name" --json reports import "$input" >"$tmp/out-$name" || {
		code=$?
		[ $code = 1 ] || { echo "mxray failed with exit $code" >&2; cat "$tmp/out-$name" >&2; exit 1; }
	}
	wall=$(seconds "$(field "$tmp/time-$name" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')")
	rss=$(field "$tmp/time-$name" 'Maximum resident set size (kbytes)')
	cpu=$(awk -v u="$(field "$tmp/time-$name" 'User time (seconds)')" -v s="$(field "$tmp/time-$name" 'System time (seconds)')" 'BEGIN { print u + s }')
	records=$(sed -n 's/.*"records":\([0-9]*\).*/\1/p' "$tmp/out-$name")
	reports=$(sed -n 's/.*"dmarc_reports":\([0-9]*\).*/\1/p' "$tmp/out-$name")
	awk -v n="$name" -v w="$wall" -v r="$rss" -v c="$cpu" -v rec="$records" -v rep="$reports" 'BEGIN {
		printf "%-22s %6d reports %8d records  wall %6.2f s  cpu %6.2f s (%5.1f us/record)  peak RSS %5.1f MB  %8.0f records/s\n",
			n, rep, rec, w, c, c / rec * 1e6, r / 1024, rec / w }'
	# wall, us/record, RSS in MB and records/s, for runs().
	awk -v w="$wall" -v r="$rss" -v c="$cpu" -v rec="$records" 'BEGIN {
		printf "%.2f %.2f %.1f %.0f\n", w, c / rec * 1e6, r / 1024, rec / w }' >>"$tmp/runs-$name"
}

# runs NAME INPUT imports INPUT $runs times and sums up.
runs() {
	: >"$tmp/runs-$1"
	i=0
	while [ $i -lt "$runs" ]; do
		run "$1" "$2"
		i=$((i + 1))
	done
	[ "$runs" -gt 1 ] || return 0
	m=$(((runs + 1) / 2))
	us=$(awk '{ print $2 }' "$tmp/runs-$1" | sort -n | sed -n "${m}p")
	rss=$(awk '{ print $3 }' "$tmp/runs-$1" | sort -n | tail -n 1)
	sort -n -k1,1 "$tmp/runs-$1" | awk -v n="$1" -v m="$m" -v us="$us" -v rss="$rss" '{ w[NR] = $1; rs[NR] = $4 }
		END {
			printf "%-22s %d runs: wall best %.2f s, median %.2f s; records/s best %.0f, median %.0f; cpu median %.1f us/record; peak RSS max %.1f MB\n",
				n, NR, w[1], w[m], rs[1], rs[m], us, rss }'
}

echo
echo "machine: $(nproc) CPUs, load average $(cut -d' ' -f1-3 /proc/loadavg)"
runs "1 x 26k records" "$tmp/one"
runs "10000 x 50 records" "$tmp/many"

if [ "$peer" = 1 ]; then
	if ! command -v dmarc_receive >/dev/null; then
		echo "installing libmail-dmarc-perl ..."
		DEBIAN_FRONTEND=noninteractive apt-get install -y libmail-dmarc-perl libdbd-sqlite3-perl >/dev/null
	fi
	ini=$(dpkg -L libmail-dmarc-perl | grep '/mail-dmarc.ini$' | head -n 1)
	sed "s#^dsn[[:space:]]*=.*SQLite.*#dsn     = dbi:SQLite:dbname=$tmp/peer.sqlite#" "$ini" >"$tmp/mail-dmarc.ini"
	echo "running dmarc_receive (minutes) ..."
	MAIL_DMARC_CONFIG_FILE=$tmp/mail-dmarc.ini /usr/bin/time -v -o "$tmp/time-peer" \
		dmarc_receive --file "$tmp/one/000000.eml" >"$tmp/out-peer" 2>&1 || true
	pwall=$(seconds "$(field "$tmp/time-peer" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')")
	prss=$(field "$tmp/time-peer" 'Maximum resident set size (kbytes)')
	prec=$(sqlite3 "$tmp/peer.sqlite" 'SELECT COUNT(*) FROM report_record' 2>/dev/null || echo '?')
	mwall=$(seconds "$(field "$tmp/time-1 x 26k records" 'Elapsed (wall clock) time (h:mm:ss or m:ss)')")
	awk -v w="$pwall" -v r="$prss" -v rec="$prec" -v m="$mwall" 'BEGIN {
		printf "%-22s %6d reports %8s records  wall %6.2f s  peak RSS %5.1f MB; mxray is %.0fx faster\n",
			"peer: dmarc_receive", 1, rec, w, r / 1024, w / m }'
fi
