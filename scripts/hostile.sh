#!/usr/bin/env bash
# Hostile load: every attack class of "safe on an open port" at once against a
# broker started as contrib/comet.service starts it (GOMEMLIMIT=48MiB; its
# MemoryMax=64M checked as peak RSS), with an honest author and subscriber
# alongside. Loopback only, bounded in time (DURATION seconds, default 30).
# Prints peak RSS, the honest peers' latencies, log bytes and the SIGTERM
# exit time, and exits 1 if peak RSS passed 64 MiB or SIGTERM took 2 s or more.
set -euo pipefail
cd "$(dirname "$0")/.."
DURATION=${DURATION:-30}
tmp=$(mktemp -d)
trap 'kill $(jobs -p) 2>/dev/null || true; rm -rf "$tmp"' EXIT
go build -o "$tmp/comet" .
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
RECV=$(port); BCAST=$(port); UP=$(port)
# A handler that never exits, and --print-event into a pipe nobody reads.
printf '#!/bin/sh\nexec sleep 100000\n' > "$tmp/stuck.sh"; chmod +x "$tmp/stuck.sh"
mkfifo "$tmp/stdout"
sleep 100000 < "$tmp/stdout" &    # holds the pipe open, never reads
GOMEMLIMIT=48MiB "$tmp/comet" --receive=tcp:$RECV:interface=127.0.0.1 --broadcast=tcp:$BCAST:interface=127.0.0.1 \
  --local-ivo=ivo://hostile.test/broker --eventdb "$tmp/db" --remote=127.0.0.1:$UP \
  --cmd "$tmp/stuck.sh" --print-event --save-event --save-event-directory "$tmp/saved" \
  >"$tmp/stdout" 2>"$tmp/log" &
pid=$!
python3 -c "import socket,time,sys
for _ in range(100):
    try: socket.create_connection((\"127.0.0.1\", $RECV), 1).close(); break
    except OSError: time.sleep(0.1)"
peak=0
( while kill -0 $pid 2>/dev/null; do
    h=$(awk '/VmHWM/ {print $2}' /proc/$pid/status 2>/dev/null || echo 0); echo "$h" > "$tmp/hwm"; sleep 0.5
  done ) &
result=$(python3 scripts/hostile.py $RECV $BCAST $UP $DURATION)
peak=$(cat "$tmp/hwm")
start=$(date +%s%N)
kill -TERM $pid
code=0; wait $pid || code=$?
stop_ms=$(( ($(date +%s%N) - start) / 1000000 ))
logbytes=$(wc -c < "$tmp/log")
echo "hostile load, ${DURATION}s: $result"
printf 'peak RSS %d KiB (MemoryMax 65536 KiB); log %d bytes; SIGTERM to exit %d ms (status %d)\n' "$peak" "$logbytes" "$stop_ms" "$code"
fail=0
[ "$peak" -lt 65536 ] || { echo "FAIL: peak RSS over MemoryMax"; fail=1; }
[ "$stop_ms" -lt 2000 ] || { echo "FAIL: SIGTERM took 2 s or more"; fail=1; }
exit $fail
