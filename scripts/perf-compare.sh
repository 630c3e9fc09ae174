#!/usr/bin/env bash
# perf-compare.sh compares broker binaries under the saturated scenarios of
# budgets.sh (10 authors, 1 and 100 subscribers, the median event), with one
# load generator for all of them, so that only the broker differs. Runs are
# interleaved (A B C A B C ...) so that a machine that drifts during the
# comparison biases no binary; each line is the median of RUNS runs.
# Usage: scripts/perf-compare.sh NAME=BINARY [NAME=BINARY ...]
# Environment: RUNS (default 3), SUBS (default "1 100"), EVENTS (default 20000 with 1 subscriber;
# half that with 100), GEN (the comet whose bench drives the load; default
# the last binary given), ENV_NAME="VAR=value ..." (extra environment for
# that broker, e.g. ENV_base="GOGC=100").
# Prints, per binary and scenario: events/s, broker CPU µs per event, the
# generator's CPU µs per event, events per delivery write (from /metrics,
# when the broker has comet_delivery_writes_total) and the highest RSS peak.
set -euo pipefail
runs=${RUNS:-3}
n1=${EVENTS:-20000}
n100=$((n1 / 2))
[ $# -ge 1 ] || { echo "usage: $0 NAME=BINARY ..."; exit 2; }
names=() bins=()
for a in "$@"; do names+=("${a%%=*}"); bins+=("${a#*=}"); done
gen=${GEN:-${bins[-1]}}
tmp=$(mktemp -d)
pid=
cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$tmp"; }
trap cleanup EXIT
rp=28198 bp=28199 hp=28197
. "$(dirname "$0")/bench-lib.sh" # field
one() { # one BINARY ENV SUBS EVENTS -> "rate bcpu gcpu perwrite"
	rm -rf "$tmp/db"
	env $2 "$1" --receive=tcp:$rp:interface=127.0.0.1 --broadcast=tcp:$bp:interface=127.0.0.1 --http=127.0.0.1:$hp \
		--local-ivo=ivo://bench.local/broker --eventdb="$tmp/db" -q --max-connections-per-host=4096 >"$tmp/log" 2>&1 &
	pid=$!
	for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/$rp) 2>/dev/null && break; sleep 0.05; done
	local j m d w
	j=$("$gen" bench --target 127.0.0.1:$rp --subscribe 127.0.0.1:$bp --pid "$pid" -n "$4" -c 10 -s "$3" --warmup 1000 --json)
	m=$(exec 3<>/dev/tcp/127.0.0.1/$hp && printf 'GET /metrics HTTP/1.0\r\n\r\n' >&3 && cat <&3) || m=
	d=$(printf '%s\n' "$m" | awk '$1 == "comet_deliveries_total" {print $2}')
	w=$(printf '%s\n' "$m" | awk '$1 == "comet_delivery_writes_total" {print $2}')
	kill "$pid"; wait "$pid" 2>/dev/null || true; pid=
	printf '%.0f %s %s %s %s\n' "$(field "$j" "" accepted_per_s)" "$(field "$j" broker cpu_per_event_us)" \
		"$(field "$j" generator cpu_per_event_us)" "$(awk -v d="${d:-0}" -v w="${w:-0}" 'BEGIN { if (w > 0) printf "%.1f", d / w; else print "-" }')" \
		"$(field "$j" broker rss_peak_mib)"
}
for s in ${SUBS:-1 100}; do
	n=$n1; [ "$s" = 100 ] && n=$n100
	for r in $(seq "$runs"); do
		for i in "${!bins[@]}"; do
			ev="ENV_${names[$i]}"
			one "${bins[$i]}" "${!ev:-}" "$s" "$n" >>"$tmp/${names[$i]}.$s"
		done
	done
done
printf '%-12s %-5s %-26s %-24s %-13s %-13s %s\n' binary subs "events/s (median; range)" "broker µs/event (runs)" "gen µs/event" "events/write" "RSS peak MiB (max)"
for i in "${!bins[@]}"; do
	for s in ${SUBS:-1 100}; do
		f="$tmp/${names[$i]}.$s"
		read -r rate b g w _ < <(sort -n "$f" | awk -v m=$(((runs + 1) / 2)) 'NR == m')
		rss=$(cut -d' ' -f5 "$f" | sort -n | tail -1)
		lo=$(sort -n "$f" | head -1 | cut -d' ' -f1) hi=$(sort -n "$f" | tail -1 | cut -d' ' -f1)
		bs=$(cut -d' ' -f2 "$f" | sort -n | tr '\n' ' ')
		printf '%-12s %-5s %-26s %-24s %-13s %-13s %s\n' "${names[$i]}" "$s" "$rate ($lo-$hi)" "$b [${bs% }]" "$g" "$w" "$rss"
	done
done
