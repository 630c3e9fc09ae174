# bench-lib.sh: what budgets.sh and perf-compare.sh share (sourced).

# field JSON OBJECT KEY: a number from comet bench's JSON line; OBJECT is ""
# for the top level, else the name of a flat object (broker, generator,
# delivery, receipt_latency, ...).
field() {
	local j=$1
	[ -n "$2" ] && j=$(printf '%s' "$j" | grep -o "\"$2\":{[^}]*}")
	printf '%s' "$j" | grep -o "\"$3\":[-0-9.e+]*" | head -1 | cut -d: -f2
}
