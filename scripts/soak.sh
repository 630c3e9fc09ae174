#!/usr/bin/env bash
# soak.sh: a long mixed-load run of `comet bench` against a local comet broker,
# with subscriber churn, reporting the broker's goroutines and resident memory
# at the start and at the end (both should be flat). Not part of `go test`.
#
# Usage: scripts/soak.sh            (from the repository root; 10 minutes)
#        DURATION=60 scripts/soak.sh
#
# Environment (all optional):
#   DURATION        seconds of load (default 600)
#   COMET           broker binary to run (default: ./comet, built from this tree)
#   BENCH           comet binary whose `bench` drives the load (default: ./comet)
#   RECEIVE_PORT    receiver port on 127.0.0.1 (default 28098)
#   BROADCAST_PORT  broadcaster port on 127.0.0.1 (default 28099)
#   HTTP_PORT       status endpoint port on 127.0.0.1 (default 28080)
#   GOROUTINE_SLACK goroutines the end may exceed the start by (default 20)
#   RSS_SLACK_MIB   MiB the end RSS may exceed the start by (default 16)
#   KEEP            set to keep the temporary directory (logs, event DB)
#   EVENTDB_EXPIRY  the broker's --eventdb-expiry (default 60s, so that the
#                   event database reaches a steady size within the run
#                   instead of growing with every event, as it rightly does
#                   over 30 days in production)
#
# Everything listens and connects on 127.0.0.1 only. The script stops by
# itself after DURATION plus at most a minute, and always stops the broker it
# started. Exit status: 0 flat, 1 the broker died or grew, 2 bad usage.
set -u

DURATION=${DURATION:-600}
RECEIVE_PORT=${RECEIVE_PORT:-28098}
BROADCAST_PORT=${BROADCAST_PORT:-28099}
HTTP_PORT=${HTTP_PORT:-28080}
GOROUTINE_SLACK=${GOROUTINE_SLACK:-20}
RSS_SLACK_MIB=${RSS_SLACK_MIB:-16}

for v in DURATION RECEIVE_PORT BROADCAST_PORT HTTP_PORT GOROUTINE_SLACK RSS_SLACK_MIB; do
	case ${!v} in
	'' | *[!0-9]*)
		echo "soak: $v must be a whole number, not '${!v}'" >&2
		exit 2
		;;
	esac
done

cd "$(dirname "$0")/.." || exit 2
tmp=$(mktemp -d "${TMPDIR:-/tmp}/comet-soak.XXXXXX") || exit 1
broker_pid=

cleanup() {
	if [ -n "$broker_pid" ] && kill -0 "$broker_pid" 2>/dev/null; then
		kill -TERM "$broker_pid" 2>/dev/null
		for _ in $(seq 1 50); do
			kill -0 "$broker_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$broker_pid" 2>/dev/null
		wait "$broker_pid" 2>/dev/null
	fi
	if [ -n "${KEEP:-}" ]; then
		echo "soak: kept $tmp"
	else
		rm -rf "$tmp"
	fi
}
trap cleanup EXIT
trap 'exit 1' INT TERM

if [ -z "${COMET:-}" ] || [ -z "${BENCH:-}" ]; then
	echo "soak: building ./comet"
	go build -o comet . || exit 1
fi
COMET=${COMET:-./comet}
BENCH=${BENCH:-./comet}

# http_get PATH: the body of a GET on the status endpoint (empty on failure).
http_get() {
	if command -v curl >/dev/null 2>&1; then
		curl -fsS --max-time 3 "http://127.0.0.1:$HTTP_PORT$1" 2>/dev/null
		return
	fi
	(
		exec 3<>"/dev/tcp/127.0.0.1/$HTTP_PORT" || exit 1
		printf 'GET %s HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n' "$1" >&3
		timeout 3 cat <&3 | sed '1,/^\r*$/d'
	) 2>/dev/null
}

# rss_kib: the broker's VmRSS in KiB.
rss_kib() {
	awk '/^VmRSS:/ { print $2 }' "/proc/$broker_pid/status" 2>/dev/null
}

# goroutines: the broker's goroutine gauge from /metrics, or n/a.
goroutines() {
	local n
	n=$(http_get /metrics | awk '$1 == "comet_goroutines" || $1 == "go_goroutines" { print $2; exit }')
	echo "${n:-n/a}"
}

# connections: the broker's established TCP connections, if ss is present.
connections() {
	if command -v ss >/dev/null 2>&1; then
		ss -Htn state established "( sport = :$RECEIVE_PORT or sport = :$BROADCAST_PORT )" 2>/dev/null | wc -l
	else
		echo n/a
	fi
}

sample() {
	local rss
	rss=$(rss_kib)
	printf 'soak: %-5s goroutines %s, RSS %s MiB, connections %s\n' "$1" "$(goroutines)" \
		"$(awk -v k="${rss:-0}" 'BEGIN { printf "%.1f", k / 1024 }')" "$(connections)"
}

echo "soak: starting $COMET on 127.0.0.1:$RECEIVE_PORT (receive) :$BROADCAST_PORT (broadcast) :$HTTP_PORT (http), event DB $tmp/eventdb"
"$COMET" --receive="tcp:$RECEIVE_PORT:interface=127.0.0.1" \
	--broadcast="tcp:$BROADCAST_PORT:interface=127.0.0.1" \
	--local-ivo=ivo://comet.soak/broker \
	--broadcast-test-interval=30 \
	--eventdb="$tmp/eventdb" --eventdb-expiry="${EVENTDB_EXPIRY:-60s}" \
	--http="127.0.0.1:$HTTP_PORT" \
	--author-whitelist=127.0.0.0/8 --subscriber-whitelist=127.0.0.0/8 \
	--max-connections-per-host=4096 \
	>"$tmp/broker.log" 2>&1 &
broker_pid=$!

ready=
for _ in $(seq 1 150); do
	if ! kill -0 "$broker_pid" 2>/dev/null; then
		echo "soak: the broker exited at start:" >&2
		tail -5 "$tmp/broker.log" >&2
		exit 1
	fi
	if http_get /healthz >/dev/null; then
		ready=1
		break
	fi
	sleep 0.1
done
if [ -z "$ready" ]; then
	echo "soak: the broker's /healthz did not answer within 15 s" >&2
	exit 1
fi

bench() {
	local budget=$1
	shift
	"$BENCH" bench --json --target "127.0.0.1:$RECEIVE_PORT" --subscribe "127.0.0.1:$BROADCAST_PORT" \
		--pid "$broker_pid" --timeout "${budget}s" --settle 5s "$@" 2>>"$tmp/bench.err"
}

# summary: one line from a bench JSON report on stdin.
summary() {
	local j r
	j=$(cat)
	r=$(printf '%s' "$j" | grep -o '"receipt_latency":{[^}]*}')
	f() { printf '%s' "${2:-$j}" | grep -o "\"$1\":[^,}]*" | head -1 | cut -d: -f2; }
	printf 'accepted %s naks %s errors %s, %.0f ev/s, receipt p50 %s ms p99 %s ms, delivered min %s max %s of %s, RSS peak %s MiB' \
		"$(f accepted)" "$(f naks)" "$(f errors)" "$(f accepted_per_s)" "$(f p50_ms "$r")" "$(f p99_ms "$r")" \
		"$(f received_min)" "$(f received_max)" "$(f expected)" "$(f rss_peak_mib)"
}

sleep 2
sample start
start_rss=$(rss_kib)
start_gr=$(goroutines)

# Each round changes the number of subscribers (they connect at the start
# of a run and disconnect at its end: churn), alternates plain and filtered
# subscribers, and sometimes runs a second load alongside.
subs_cycle=(1 10 0 50 100 5 25)
end=$((SECONDS + DURATION))
round=0
failures=0
while [ "$SECONDS" -lt "$end" ]; do
	left=$((end - SECONDS))
	budget=$((left < 60 ? left : 60))
	[ "$budget" -lt 5 ] && budget=5
	s=${subs_cycle[$((round % ${#subs_cycle[@]}))]}
	args=(-n 3000 -c 10 -s "$s")
	filtered=
	if [ $((round % 3)) -eq 2 ]; then
		args+=(--filter "//Param[@name='Packet_Type']")
		filtered=", filtered"
	fi
	side=
	if [ $((round % 4)) -eq 3 ]; then
		bench "$budget" -n 500 -c 2 -s 20 --rate 100 >"$tmp/side.json" &
		side=$!
	fi
	out=$(bench "$budget" "${args[@]}")
	if [ -n "$side" ]; then
		wait "$side"
		echo "soak: round $round side load: $(summary <"$tmp/side.json")"
	fi
	if [ -z "$out" ]; then
		failures=$((failures + 1))
		echo "soak: round $round (-s $s): no report: $(tail -1 "$tmp/bench.err")"
	else
		echo "$out" >>"$tmp/bench.jsonl"
		echo "soak: round $round (-s $s$filtered): $(echo "$out" | summary)"
	fi
	if ! kill -0 "$broker_pid" 2>/dev/null; then
		echo "soak: the broker died during round $round:" >&2
		tail -5 "$tmp/broker.log" >&2
		exit 1
	fi
	round=$((round + 1))
done

# Let the last connections close before the final sample.
sleep 5
sample end
end_rss=$(rss_kib)
end_gr=$(goroutines)

status=0
if [ "$start_gr" != n/a ] && [ "$end_gr" != n/a ] && [ "$end_gr" -gt $((start_gr + GOROUTINE_SLACK)) ]; then
	echo "soak: goroutines grew from $start_gr to $end_gr"
	status=1
fi
if [ "${end_rss:-0}" -gt $((${start_rss:-0} + RSS_SLACK_MIB * 1024)) ]; then
	echo "soak: RSS grew from $start_rss KiB to $end_rss KiB"
	status=1
fi
echo "soak: $round rounds in $DURATION s, $failures without a report; goroutines $start_gr -> $end_gr, RSS $((start_rss / 1024)) -> $((end_rss / 1024)) MiB: $([ $status -eq 0 ] && echo flat || echo NOT flat)"
exit $status
