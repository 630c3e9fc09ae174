#!/usr/bin/env bash
# budgets.sh measures the performance budgets of contract section 6 and of
# issue 15 with `comet bench` against a fresh local broker for each run, on
# loopback, and says of each target whether it is met:
#   1. resident memory idle
#   2. 10 authors, 1 subscriber, median real event, as fast as acks come:
#      accepted events/s and the broker's CPU per accepted event
#   3. the same with 100 subscribers: events/s and the broker's CPU per
#      delivery, (CPU/event with 100 - CPU/event with 1) / 99
#   4. submit-to-receipt latency at fixed rates (500/s with 1 and with 100
#      subscribers, 100/s with 100 subscribers) and RSS with 100 subscribers
# CPU is the broker's utime+stime from /proc over the counted phase only (the
# first counted submission until every subscriber has every event); the load
# generator's own CPU is reported beside it, since both share the cores.
# Each saturated scenario runs RUNS times (default 3); the median run (by
# events/s) is reported, with the range.
# Usage: scripts/budgets.sh [EVENTS]   (default 20000 events per saturated run)
# Environment: COMET (binary, default: built from this tree into a temp dir),
# RUNS; GOGC and GOMEMLIMIT pass through to the broker. The broker gets
# --max-connections-per-host=4096: the load generator's subscribers all come
# from one address. Loopback only; every broker it starts is stopped. Needs
# Linux (/proc) and nothing but bash, awk and sed besides comet.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
runs=${RUNS:-3}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
comet=${COMET:-}
if [ -z "$comet" ]; then
	go build -o "$tmp/comet" .
	comet=$tmp/comet
fi
# The Python Comet's figures on this kind of machine (contract section 6).
comet1=790 comet100=165
rp=28198 bp=28199
start() {
	rm -rf "$tmp/db"
	"$comet" --receive=tcp:$rp:interface=127.0.0.1 --broadcast=tcp:$bp:interface=127.0.0.1 \
		--local-ivo=ivo://bench.local/broker --eventdb="$tmp/db" -q --max-connections-per-host=4096 >"$tmp/broker.log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do
		(exec 3<>/dev/tcp/127.0.0.1/$rp) 2>/dev/null && return 0
		sleep 0.05
	done
	echo "budgets: broker did not start"; cat "$tmp/broker.log"; exit 1
}
stop() { kill "$pid"; wait "$pid" 2>/dev/null || true; pid=; }
rss() { awk '/^VmRSS/ {printf "%.1f", $2/1024}' /proc/$pid/status; }
# bench ARGS: one run against a fresh broker; prints the JSON line.
bench() {
	start
	"$comet" bench --target 127.0.0.1:$rp --subscribe 127.0.0.1:$bp --pid "$pid" --json "$@"
	stop
}
. scripts/bench-lib.sh # field (the working directory is the repository now)
# verdict OK: "met" or "NOT MET".
verdict() { if [ "$1" = 1 ]; then echo met; else echo "NOT MET"; fi; }
le() { awk -v a="$1" -v b="$2" 'BEGIN { print (a <= b) ? 1 : 0 }'; }
ge() { awk -v a="$1" -v b="$2" 'BEGIN { print (a >= b) ? 1 : 0 }'; }
calc() { awk "BEGIN { printf \"%.${2:-1}f\", $1 }"; }
# saturated SUBS: RUNS runs; sets rate, lo, hi, bcpu, gcpu, rsspk of the median run.
saturated() {
	local s=$1 lines="" j
	for _ in $(seq "$runs"); do
		j=$(bench -n "$n" -c 10 -s "$s" --warmup 1000)
		[ "$(field "$j" delivery completeness)" = 1 ] || echo "  warning: a subscriber missed events: $j" >&2
		lines+="$(calc "$(field "$j" "" accepted_per_s)" 0) $(field "$j" broker cpu_per_event_us) $(field "$j" generator cpu_per_event_us) $(field "$j" broker rss_peak_mib)"$'\n'
	done
	read -r rate bcpu gcpu rsspk < <(printf '%s' "$lines" | sort -n | awk -v m=$(((runs + 1) / 2)) 'NR == m')
	lo=$(printf '%s' "$lines" | sort -n | head -1 | cut -d' ' -f1)
	hi=$(printf '%s' "$lines" | sort -n | tail -1 | cut -d' ' -f1)
	echo "  runs (events/s, broker µs/event, generator µs/event, RSS peak MiB):"
	printf '%s' "$lines" | sed 's/^/    /'
}

echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo), $(uname -sr), $(go version | cut -d' ' -f3)"
echo "comet: $comet; $n events per saturated run, median of $runs runs"
echo
echo "== idle resident memory"
start
sleep 1
idle=$(rss)
stop
echo "  idle RSS after start: $idle MiB"

echo
echo "== saturated: 10 authors, 1 subscriber"
saturated 1
rate1=$rate bcpu1=$bcpu gcpu1=$gcpu rss1=$rsspk lo1=$lo hi1=$hi
echo
echo "== saturated: 10 authors, 100 subscribers"
saturated 100
rate100=$rate bcpu100=$bcpu gcpu100=$gcpu rss100=$rsspk lo100=$lo hi100=$hi
deliv=$(calc "($bcpu100 - $bcpu1) / 99" 2)
gdeliv=$(calc "($gcpu100 - $gcpu1) / 99" 2)

echo
echo "== fixed rates: 500/s with 1 and with 100 subscribers, 100/s with 100 subscribers"
j=$(bench -n 5000 -c 10 -s 1 --rate 500 --warmup 500)
l1p50=$(field "$j" receipt_latency p50_ms)
j=$(bench -n 5000 -c 10 -s 100 --rate 500 --warmup 500)
l100p99=$(field "$j" receipt_latency p99_ms)
rssl=$(field "$j" broker rss_peak_mib)
j=$(bench -n 3000 -c 10 -s 100 --rate 100 --warmup 200)
f100p50=$(field "$j" receipt_latency p50_ms)
f100p99=$(field "$j" receipt_latency p99_ms)
echo "  500/s, 1 subscriber: receipt p50 $l1p50 ms; 500/s, 100 subscribers: p99 $l100p99 ms, RSS peak $rssl MiB"
echo "  100/s, 100 subscribers: receipt p50 $f100p50 ms, p99 $f100p99 ms"

rssmax=$(awk -v a="$rss100" -v b="$rssl" 'BEGIN { print (a > b) ? a : b }')
echo
echo "== summary (Comet: $comet1/s with 1 subscriber, $comet100/s with 100)"
printf '%-58s %-12s %-30s %s\n' "target" "budget" "measured" "verdict"
row() { printf '%-58s %-12s %-30s %s\n' "$1" "$2" "$3" "$(verdict "$4")"; }
row "accepted/s, 1 subscriber (contract: 5 x Comet)" "$((5 * comet1))" "$rate1 ($(calc "$rate1 / $comet1") x; $lo1-$hi1)" "$(ge "$rate1" $((5 * comet1)))"
row "accepted/s, 1 subscriber (issue 15: 6 x Comet)" "$((6 * comet1))" "$rate1 ($(calc "$rate1 / $comet1") x)" "$(ge "$rate1" $((6 * comet1)))"
row "accepted/s, 100 subscribers (15 x Comet)" "$((15 * comet100))" "$rate100 ($(calc "$rate100 / $comet100") x; $lo100-$hi100)" "$(ge "$rate100" $((15 * comet100)))"
row "broker CPU per accepted event, 1 subscriber (µs)" "175" "$bcpu1 (generator $gcpu1)" "$(le "$bcpu1" 175)"
row "broker CPU per delivery, 100 subscribers (µs)" "2" "$deliv (generator $gdeliv)" "$(le "$deliv" 2)"
row "receipt p50 at 500/s, 1 subscriber (ms)" "1" "$l1p50" "$(le "$l1p50" 1)"
row "receipt p99 at 500/s, 100 subscribers (ms)" "10" "$l100p99" "$(le "$l100p99" 10)"
row "receipt p50 at 100/s, 100 subscribers (ms)" "2" "$f100p50" "$(le "$f100p50" 2)"
row "receipt p99 at 100/s, 100 subscribers (ms)" "10" "$f100p99" "$(le "$f100p99" 10)"
row "RSS idle (MiB)" "15" "$idle" "$(le "$idle" 15)"
row "RSS peak with 100 subscribers (MiB)" "25" "$rssmax" "$(le "$rssmax" 25)"
echo "(1-subscriber RSS peak under saturation: $rss1 MiB; broker CPU per event with 100 subscribers: $bcpu100 µs)"
