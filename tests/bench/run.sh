#!/bin/bash
# run.sh - `make bench`: the benchmarks, on loopback, with their figures
# printed and written to build/bench-results.txt. Not part of the tests:
# nothing here passes or fails, it measures.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${AUTHGATE_BUILDDIR:-$HERE/../../build}
OUT=$BUILD/bench-results.txt
T=$(mktemp -d)
PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null; wait "$p" 2>/dev/null; done; rm -rf "$T"; }
trap cleanup EXIT

dns() { # zone-json delay -> sets DNSPORT
	/usr/bin/python3 "$HERE/../integration/dns_server.py" --port 0 \
	    --zone "$1" --port-file "$T/port.$2" > "$T/dns.$2.log" 2>&1 &
	PIDS="$PIDS $!"
	for _ in $(seq 1 100); do [ -s "$T/port.$2" ] && break; sleep 0.05; done
	DNSPORT=$(cat "$T/port.$2")
}

# a two-level record, as most senders publish (a list and an include)
cat > "$T/warm.json" <<'J'
{"ttl": 3600, "records": [
 ["bench.example.", "TXT", "v=spf1 ip4:198.51.100.0/24 include:_spf.bench.example -all"],
 ["_spf.bench.example.", "TXT", "v=spf1 ip4:203.0.113.0/24 -all"]]}
J
cat > "$T/cold.json" <<'J'
{"ttl": 0, "records": [
 ["*.cold.example.", "TXT", "v=spf1 ip4:198.51.100.0/24 -all"]],
 "behaviour": {"*.cold.example.": {"delay": 0.05}}}
J
{
	echo "# authgate benchmarks, $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) CPUs"
	echo "## SPF (libspf2 behind our resolver), whole pipeline, no MTA"
	dns "$T/warm.json" warm
	for th in 1 2; do
		"$BUILD/tests/bench/spf_bench" "$DNSPORT" warm 20000 "$th"
	done
	dns "$T/cold.json" cold
	echo "# every answer from a DNS server that waits 50 ms (TTL 0)"
	"$BUILD/tests/bench/spf_bench" "$DNSPORT" cold 100
} | tee "$OUT"
