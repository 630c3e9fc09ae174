#!/usr/bin/env bash
# budgets.sh measures the performance budgets of contract section 6 with
# `comet bench` against a fresh local broker for each scenario, on loopback:
#   1. 10 authors, 1 subscriber, median real event: accepted events/s
#   2. the same with 100 subscribers
#   3. submit-to-receipt latency at a moderate rate (1 and 100 subscribers)
#   4. resident memory idle, and with 100 subscribers connected
# Usage: scripts/budgets.sh [EVENTS]   (default 20000 events per scenario)
# Environment: COMET (binary, default: built from this tree into a temp dir),
# GOGC and GOMEMLIMIT pass through to the broker. The broker gets
# --max-connections-per-host=4096: the load generator's subscribers all come
# from one address. Loopback only; every
# broker it starts is stopped.
set -euo pipefail
cd "$(dirname "$0")/.."
n=${1:-20000}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
comet=${COMET:-}
if [ -z "$comet" ]; then
	go build -o "$tmp/comet" .
	comet=$tmp/comet
fi
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
bench() { "$comet" bench --target 127.0.0.1:$rp --subscribe 127.0.0.1:$bp --pid "$pid" "$@"; }

echo "machine: $(nproc) cores, $(awk '/model name/ {$1=$2=$3=""; print; exit}' /proc/cpuinfo), $(uname -sr), $(go version | cut -d' ' -f3)"
echo
echo "== idle resident memory"
start; sleep 1; echo "idle RSS after start: $(rss) MiB"; stop
for s in 1 100; do
	echo; echo "== throughput: 10 authors, $s subscriber(s), $n events"
	start
	bench -n "$n" -c 10 -s "$s" --warmup 1000 | grep -v '^{'
	stop
done
for s in 1 100; do
	echo; echo "== latency at 500 events/s: 10 authors, $s subscriber(s)"
	start
	bench -n 5000 -c 10 -s "$s" --rate 500 --warmup 500 | grep -v '^{'
	stop
done
