#!/bin/bash
# run.sh - `make bench`: the benchmarks, on loopback, with their figures
# printed and written to build/bench-results.txt. Not part of the tests:
# nothing here passes or fails, it measures.
# BENCH_QUICK=1: fewer iterations everywhere, for development (its figures
# are rough); milter.sh describes the other knobs of the milter benchmark.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${AUTHGATE_BUILDDIR:-$HERE/../../build}
OUT=$BUILD/bench-results.txt
N_SPF=20000 N_DKIM=2000 N_COLD=100
[ -n "${BENCH_QUICK:-}" ] && N_SPF=2000 N_DKIM=200 N_COLD=20
T=$(mktemp -d)
# the servers are started inside the { ... } | tee pipeline below, a
# subshell: their pids go to a file, which cleanup reads
cleanup() {
	for p in $(cat "$T/pids" 2>/dev/null); do kill "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

dns() { # zone-json delay -> sets DNSPORT
	/usr/bin/python3 "$HERE/../integration/dns_server.py" --port 0 \
	    --zone "$1" --port-file "$T/port.$2" > "$T/dns.$2.log" 2>&1 &
	echo $! >> "$T/pids"
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
		"$BUILD/tests/bench/spf_bench" "$DNSPORT" warm "$N_SPF" "$th"
	done
	dns "$T/cold.json" cold
	echo "# every answer from a DNS server that waits 50 ms (TTL 0)"
	"$BUILD/tests/bench/spf_bench" "$DNSPORT" cold "$N_COLD"
	echo
	echo "## DKIM (verify: libopendkim; sign: dkim_signer.c), whole pipeline, no MTA"
	echo "# a 4 KB message, 7 headers; keys from a warm cache"
	echo '{"records": []}' > "$T/dkim.json"
	dns "$T/dkim.json" dkim
	"$BUILD/tests/bench/dkim_bench" "$DNSPORT" "$T/dkim.json" "$N_DKIM" |
	    tee "$T/dkim.out"
	echo "# the OpenSSL ceiling on this machine, same run (openssl speed)"
	openssl speed -seconds 3 rsa2048 ed25519 2>/dev/null |
	    grep -E '^rsa 2048|\(Ed25519\)' | tee "$T/ossl.out"
	/usr/bin/python3 - "$T/dkim.out" "$T/ossl.out" <<'PY'
import re, sys
ours = {m.group(1): float(m.group(2)) for m in
        re.finditer(r"DKIM (.*?) messages=\d+ rate=(\d+)/s", open(sys.argv[1]).read())}
o = open(sys.argv[2]).read()
rsa = re.search(r"rsa 2048 bits\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", o)
ed = re.search(r"\(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", o)
if rsa and ed:
    ceil = {"sign rsa-2048": float(rsa.group(1)), "sign ed25519": float(ed.group(1)),
            "verify rsa": float(rsa.group(2)), "verify ed": float(ed.group(2))}
    for k, v in ours.items():
        if k.startswith("sign rsa-2048"):
            print("# %s: %.0f%% of OpenSSL's %.0f RSA-2048 signs/s" % (k, 100 * v / ceil["sign rsa-2048"], ceil["sign rsa-2048"]))
        elif k.startswith("sign ed25519"):
            print("# %s: %.0f%% of OpenSSL's %.0f Ed25519 signs/s" % (k, 100 * v / ceil["sign ed25519"], ceil["sign ed25519"]))
        elif k.startswith("sign dual"):
            both = 1 / (1 / ceil["sign rsa-2048"] + 1 / ceil["sign ed25519"])
            print("# %s: %.0f%% of OpenSSL's %.0f RSA+Ed25519 sign pairs/s" % (k, 100 * v / both, both))
        elif k.startswith("verify 1"):
            print("# %s: %.0f%% of OpenSSL's %.0f RSA-2048 verifies/s" % (k, 100 * v / ceil["verify rsa"], ceil["verify rsa"]))
        elif k.startswith("verify 3"):
            three = 1 / (2 / ceil["verify rsa"] + 1 / ceil["verify ed"])
            print("# %s: %.1f%% of OpenSSL's %.0f (RSA, Ed25519, RSA) verify triples/s" % (k, 100 * v / three, three))
PY
	echo
	echo "## Milter load: authgate, nullmilter and OpenDKIM + OpenDMARC (milter.sh)"
	BENCH_RAW=$BUILD/bench-results.raw AUTHGATE_BUILDDIR=$BUILD \
	    "$HERE/milter.sh"
} | tee "$OUT"
