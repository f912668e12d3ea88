#!/bin/bash
# milter.sh - the milter load benchmark of `make bench`: authgate against
# nullmilter (the ceiling) and the OpenDKIM + OpenDMARC chain it replaces,
# side by side in one run, same messages, same DNS server.  Prints its
# table (and writes the raw figures to $BENCH_RAW).  Run by run.sh.
#
# It runs in a network and mount namespace of its own (unshare -n -m): a
# private loopback where the DNS server can take port 53, and a private
# /etc/resolv.conf pointing there.  opendmarc (libresolv, libspf2) can ask
# nothing but port 53 of resolv.conf, and nothing here reaches the host's
# network or bothers other users of its loopback.
#
# Env: BENCH_QUICK=1 (fewer messages, one round), BENCH_ROUNDS (3),
# BENCH_MSGS (messages per run, 1500), BENCH_CONNS ("1 8 32").
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${AUTHGATE_BUILDDIR:-$HERE/../../build}
BUILD=$(cd "$BUILD" && pwd)

if [ -z "${BENCH_IN_NS:-}" ]; then
	if [ "$(id -u)" != 0 ] || ! command -v unshare >/dev/null ||
	    ! command -v opendkim >/dev/null || ! command -v opendmarc >/dev/null; then
		echo "# milter benchmark skipped: it needs root (a network namespace)," \
		    "opendkim and opendmarc (sh contrib/setup.sh deps bench)"
		exit 0
	fi
	BENCH_IN_NS=1 AUTHGATE_BUILDDIR=$BUILD exec unshare -n -m "$0" "$@"
fi

QUICK=${BENCH_QUICK:-}
ROUNDS=${BENCH_ROUNDS:-3}
MSGS=${BENCH_MSGS:-1500}
CONNS=${BENCH_CONNS:-"1 8 32"}
if [ -n "$QUICK" ]; then
	ROUNDS=1
	MSGS=300
fi
MILTC=$BUILD/tests/tools/miltc
NULLM=$BUILD/tests/tools/nullmilter
AG=$BUILD/filter/authgate
RAW=${BENCH_RAW:-/dev/null}
T=$(mktemp -d /tmp/authgate-bench.XXXXXX)
chmod 755 "$T"
PIDS=""
cleanup() {
	for p in $PIDS; do kill "$p" 2>/dev/null; done
	for p in $PIDS; do wait "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT

ip link set lo up
echo "nameserver 127.0.0.1" > "$T/resolv.conf"
mount --bind "$T/resolv.conf" /etc/resolv.conf

# --- keys, messages, DNS ------------------------------------------------------
mkdir -p "$T/keys"
for k in "rsa rsa 2048" "ed ed25519 256"; do
	set -- $k
	"$BUILD/keys/authgate-keys" generate --domain bench.example \
	    --selector "$1" --type "$2" --bits "$3" --dir "$T/keys" >/dev/null ||
	    { echo "authgate-keys failed" >&2; exit 1; }
done
chown -R nobody "$T/keys"
/usr/bin/python3 "$HERE/genmsg.py" --out "$T/c" --keys "$T/keys" \
    --count "$([ -n "$QUICK" ] && echo 8 || echo 20)" || exit 1
cp "$T/c/zone.json" "$T/zone.json"
/usr/bin/python3 "$HERE/../integration/dns_server.py" --port 53 \
    --zone "$T/zone.json" --port-file "$T/dns.port" > "$T/dns.log" 2>&1 &
PIDS="$PIDS $!"
for _ in $(seq 1 100); do [ -s "$T/dns.port" ] && break; sleep 0.05; done

# --- the daemons ----------------------------------------------------------------
wait_sock() { # spec pid
	local path port
	for _ in $(seq 1 200); do
		case $1 in
		unix:*) path=${1#unix:}; [ -S "$path" ] && kill -0 "$2" && return 0 ;;
		inet:*) port=${1#inet:}; port=${port%@*}
			(exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null &&
			    sleep 0.2 && kill -0 "$2" && return 0 ;;
		esac
		kill -0 "$2" 2>/dev/null || break
		sleep 0.05
	done
	echo "daemon for $1 did not start; its log:" >&2
	cat "$T"/*.log >&2
	return 1
}
PORT=20000
next_port() { PORT=$((PORT + 1)); }
sockspec() { # name transport: sets SPEC (not in a subshell: PORT counts)
	if [ "$2" = unix ]; then SPEC="unix:$T/$1.sock"; else next_port; SPEC="inet:$PORT@127.0.0.1"; fi
}
# start_* NAME TRANSPORT: starts one instance, sets SPEC and PID
start_null() {
	sockspec "$1" "$2"
	"$NULLM" -a -n "$SPEC" > "$T/$1.log" 2>&1 &
	PID=$!; PIDS="$PIDS $PID"; wait_sock "$SPEC" "$PID"
}
odkim_spec() { case $1 in unix:*) echo "local:${1#unix:}" ;; *) echo "$1" ;; esac; }
start_odkim() { # name transport mode(v|rsa|ed)
	sockspec "$1" "$2"
	{
		echo "Socket $(odkim_spec "$SPEC")"
		echo "Background no"; echo "Syslog no"; echo "SoftwareHeader no"
		echo "AuthservID bench.mta"; echo "Nameservers 127.0.0.1"
		echo "DNSTimeout 5"; echo "PidFile $T/$1.pid"
		echo "TemporaryDirectory $T"
		# the keys sit under /tmp, which is world-writable
		echo "RequireSafeKeys false"
		case $3 in
		v) echo "Mode v"; echo "AlwaysAddARHeader yes" ;;
		*)	echo "Mode s"; echo "Canonicalization relaxed/relaxed"
			echo "InternalHosts 127.0.0.1, 10.0.0.0/8"
			echo "KeyTable file:$T/odkim-$3.keytable"
			echo "SigningTable refile:$T/odkim-$3.signingtable"
			[ "$3" = ed ] && echo "SignatureAlgorithm ed25519-sha256"
			echo "$3 bench.example:$3:$T/keys/$3.private" > "$T/odkim-$3.keytable"
			echo "*@$3.bench.example $3" > "$T/odkim-$3.signingtable" ;;
		esac
	} > "$T/$1.conf"
	opendkim -f -x "$T/$1.conf" > "$T/$1.log" 2>&1 &
	PID=$!; PIDS="$PIDS $PID"; wait_sock "$SPEC" "$PID"
}
start_odmarc() {
	sockspec "$1" "$2"
	cat > "$T/$1.conf" <<-EOF
	Socket $(odkim_spec "$SPEC")
	AuthservID bench.mta
	TrustedAuthservIDs bench.mta
	SPFSelfValidate true
	SPFIgnoreResults true
	RejectFailures true
	FailureReports false
	HistoryFile $T/$1.history
	Syslog false
	PidFile $T/$1.pid
	EOF
	opendmarc -f -c "$T/$1.conf" > "$T/$1.log" 2>&1 &
	PID=$!; PIDS="$PIDS $PID"; wait_sock "$SPEC" "$PID"
}
start_ag() {
	sockspec "$1" "$2"
	mkdir -p "$T/$1.d"; chown nobody "$T/$1.d"
	cat > "$T/$1.conf" <<-EOF
	milter_socket = $SPEC
	pid_file =
	user = nobody
	dns_servers = 127.0.0.1
	authserv_id = bench.mta
	key_table = $T/ag.keytable
	signing_table = refile:$T/ag.signingtable
	dmarc_history = sqlite:$T/$1.d/dmarc.db
	EOF
	"$AG" -f -c "$T/$1.conf" > "$T/$1.log" 2>&1 &
	PID=$!; PIDS="$PIDS $PID"; wait_sock "$SPEC" "$PID"
}
cat > "$T/ag.keytable" <<EOF
rsa bench.example:rsa:$T/keys/rsa.private
ed bench.example:ed:$T/keys/ed.private
EOF
cat > "$T/ag.signingtable" <<EOF
*@rsa.bench.example rsa
*@ed.bench.example ed
*@bench.example rsa
*@bench.example ed
EOF
stop() { # pid...: SIGKILL (throwaway instances; libmilter takes 5 s on TERM)
	for p in "$@"; do kill -9 "$p" 2>/dev/null; wait "$p" 2>/dev/null; done
}
hwm() { # pid... -> summed VmHWM in KB
	local s=0 v p
	for p in "$@"; do
		v=$(awk '/^VmHWM/ {print $2}' "/proc/$p/status" 2>/dev/null)
		s=$((s + ${v:-0}))
	done
	echo $s
}

IN=(--client-ip 192.0.2.10 --client-name mail.bench.example
    --helo mail.bench.example --rcpt rcpt@example.com)
OUT=(--client-ip 10.1.2.3 --client-name unknown --helo laptop.local
    --macro '{auth_authen}=user' --macro '{auth_type}=PLAIN'
    --rcpt someone@example.com)

# load SYSTEM MODE TRANSPORT CONNS ROUND PIDS CORPUS SPEC [miltc args]:
# one miltc --load run, one line into $RAW and $T/raw
load() {
	local sys=$1 mode=$2 tr=$3 n=$4 round=$5 pids=$6 corpus=$7 spec=$8
	shift 8
	local per=$(((MSGS + n - 1) / n)) out line
	# a tenth for 1 MB messages, and over TCP for the libmilter filters
	# without TCP_NODELAY, which wait ~40 ms per message (nullmilter, the
	# OpenDKIM + OpenDMARC chain)
	case $corpus-$tr-$sys in
	*-1m-*|*-inet-nullmilter|*-inet-chain) per=$(((MSGS / 10 + n - 1) / n)) ;;
	esac
	[ -n "${PER:-}" ] && per=$PER
	out=$("$MILTC" --load --connections "$n" --per-conn "$per" --warmup 3 \
	    --timeout 60 "$@" "$spec" "$T/c/$corpus" 2>"$T/miltc.err")
	line="$(echo "$out" | grep '^LOAD ') $(echo "$out" | grep '^modifications:' |
	    sed 's/^modifications: //; s/add-header/addh/; s/insert-header/insh/' | cut -d' ' -f1-2)"
	[ -s "$T/miltc.err" ] && sed 's/^/# miltc: /' "$T/miltc.err" | head -3 >&2
	echo "RUN sys=$sys mode=$mode tr=$tr conns=$n round=$round corpus=$corpus" \
	    "rss_kb=$(hwm $pids) $line" | tee -a "$RAW" >> "$T/raw"
}

echo "# milter load: $(nproc) CPUs, rounds=$ROUNDS, $MSGS messages per run" \
    "(1 MB: a tenth), connections: $CONNS"
echo "# opendkim $(dpkg-query -W -f '${Version}' opendkim 2>/dev/null)," \
    "opendmarc $(dpkg-query -W -f '${Version}' opendmarc 2>/dev/null)," \
    "authgate $(git -C "$HERE" describe --always --dirty 2>/dev/null)"
echo "# crypto ceiling: openssl speed -seconds 2 rsa2048 ed25519 sha256"
openssl speed -seconds 2 rsa2048 ed25519 sha256 2>/dev/null |
    grep -E '^rsa 2048|\(Ed25519\)|^sha256' | tee "$T/ossl.out" | sed 's/^/#   /'
cp "$T/ossl.out" "${RAW%.raw}.openssl" 2>/dev/null

# --- throughput and latency: warm DNS --------------------------------------------
for tr in unix inet; do
	start_null "null-$tr" "$tr"; eval "NULL_$tr=\$SPEC NULLP_$tr=\$PID"
	start_odkim "odkimv-$tr" "$tr" v; eval "ODV_$tr=\$SPEC ODVP_$tr=\$PID"
	start_odmarc "odmarc-$tr" "$tr"; eval "ODM_$tr=\$SPEC ODMP_$tr=\$PID"
	start_ag "ag-$tr" "$tr"; eval "AGS_$tr=\$SPEC AGP_$tr=\$PID"
done
start_odkim odkims-rsa unix rsa; ODSR=$SPEC; ODSRP=$PID
start_odkim odkims-ed unix ed; ODSE=$SPEC; ODSEP=$PID

for round in $(seq 1 "$ROUNDS"); do
	for n in $CONNS; do
		for tr in unix inet; do
			eval "null=\$NULL_$tr nullp=\$NULLP_$tr odv=\$ODV_$tr odvp=\$ODVP_$tr"
			eval "odm=\$ODM_$tr odmp=\$ODMP_$tr ags=\$AGS_$tr agp=\$AGP_$tr"
			load nullmilter verify "$tr" "$n" "$round" "$nullp" in-4k "$null" "${IN[@]}" --mail-from bob@bench.example
			load authgate verify "$tr" "$n" "$round" "$agp" in-4k "$ags" "${IN[@]}" --mail-from bob@bench.example
			load chain verify "$tr" "$n" "$round" "$odvp $odmp" in-4k "$odv" --chain "$odm" "${IN[@]}" --mail-from bob@bench.example
			load authgate sign-dual "$tr" "$n" "$round" "$agp" out-dual-4k "$ags" "${OUT[@]}" --mail-from alice@bench.example
			[ "$tr" = inet ] && continue
			load opendkim verify "$tr" "$n" "$round" "$odvp" in-4k "$odv" "${IN[@]}" --mail-from bob@bench.example
			load opendmarc verify "$tr" "$n" "$round" "$odmp" in-4k "$odm" "${IN[@]}" --mail-from bob@bench.example
			load authgate sign-rsa "$tr" "$n" "$round" "$agp" out-rsa-4k "$ags" "${OUT[@]}" --mail-from alice@rsa.bench.example
			load authgate sign-ed "$tr" "$n" "$round" "$agp" out-ed-4k "$ags" "${OUT[@]}" --mail-from alice@ed.bench.example
			load nullmilter sign "$tr" "$n" "$round" "$nullp" out-rsa-4k "$null" "${OUT[@]}" --mail-from alice@rsa.bench.example
			load opendkim sign-rsa "$tr" "$n" "$round" "$ODSRP" out-rsa-4k "$ODSR" "${OUT[@]}" --mail-from alice@rsa.bench.example
			load opendkim sign-ed "$tr" "$n" "$round" "$ODSEP" out-ed-4k "$ODSE" "${OUT[@]}" --mail-from alice@ed.bench.example
		done
	done
done
# The results must be what they should: every verify run accepted, every
# signed run signed (counted in the modifications the miltc summary shows).
# A sample message per system, to be read in the log when in doubt.
for s in "authgate $AGS_unix ${IN[*]} --mail-from bob@bench.example" \
    "chain $ODV_unix --chain $ODM_unix ${IN[*]} --mail-from bob@bench.example"; do
	set -- $s
	name=$1; shift
	echo "# sample, $name:"
	"$MILTC" "$@" "$T/c/in-4k/000.eml" 2>&1 | grep -E '^(add|insert)-header|^result' |
	    cut -c1-150 | sed 's/^/#   /'
done
echo "# sample, authgate sign-dual:"
"$MILTC" "$AGS_unix" "${OUT[@]}" --mail-from alice@bench.example "$T/c/out-dual-4k/000.eml" 2>&1 |
    grep -E '^(add|insert)-header|^result' | cut -c1-100 | sed 's/^/#   /'

# --- memory: fresh instances, 32 connections, 4 KB then 1 MB -------------------------
# The same number of messages for both sizes (4 per connection): a peak
# that grows with the count of messages is not one of message size.
for size in 4k 1m; do
	start_null "m-null-$size" unix; p1=$PID; s1=$SPEC
	start_odkim "m-odkimv-$size" unix v; p2=$PID; s2=$SPEC
	start_odmarc "m-odmarc-$size" unix; p3=$PID; s3=$SPEC
	start_ag "m-ag-$size" unix; p4=$PID; s4=$SPEC
	start_ag "m-ags-$size" unix; p5=$PID; s5=$SPEC
	echo "MEM sys=nullmilter size=$size start_kb=$(hwm $p1)" >> "$T/raw"
	echo "MEM sys=opendkim size=$size start_kb=$(hwm $p2)" >> "$T/raw"
	echo "MEM sys=opendmarc size=$size start_kb=$(hwm $p3)" >> "$T/raw"
	echo "MEM sys=authgate size=$size start_kb=$(hwm $p4)" >> "$T/raw"
	PER=4 load nullmilter mem-$size unix 32 1 "$p1" in-$size "$s1" "${IN[@]}" --mail-from bob@bench.example
	PER=4 load chain mem-$size unix 32 1 "$p2 $p3" in-$size "$s2" --chain "$s3" "${IN[@]}" --mail-from bob@bench.example
	echo "MEM sys=opendkim size=$size end_kb=$(hwm $p2)" >> "$T/raw"
	echo "MEM sys=opendmarc size=$size end_kb=$(hwm $p3)" >> "$T/raw"
	PER=4 load authgate mem-$size unix 32 1 "$p4" in-$size "$s4" "${IN[@]}" --mail-from bob@bench.example
	PER=4 load authgate mem-sign-$size unix 32 1 "$p5" out-dual-$size "$s5" "${OUT[@]}" --mail-from alice@bench.example
	stop $p1 $p2 $p3 $p4 $p5
done

# --- 50 ms per DNS answer, TTL 0: fresh instances ------------------------------------
/usr/bin/python3 - "$T/zone.json" <<'PY'
import json, sys
z = json.load(open(sys.argv[1]))
z["ttl"] = 0
for r in z["records"]:
    if r[1] == "SOA":
        r[2] = "ns.bench.example. hostmaster.bench.example. 1 3600 600 86400 0"
z["behaviour"] = {"*..": {"delay": 0.05}}
json.dump(z, open(sys.argv[1] + ".new", "w"))
PY
mv "$T/zone.json.new" "$T/zone.json"
start_ag ag-slow unix; sa=$SPEC; pa=$PID
start_odkim odkimv-slow unix v; sv=$SPEC; pv=$PID
start_odmarc odmarc-slow unix; sm=$SPEC; pm=$PID
SLOWN=$([ -n "$QUICK" ] && echo 40 || echo 150)
for n in 1 8; do
	MSGS=$SLOWN load authgate dns50 unix "$n" 1 "$pa" slow-4k "$sa" "${IN[@]}" --return-path
	MSGS=$SLOWN load chain dns50 unix "$n" 1 "$pv $pm" slow-4k "$sv" --chain "$sm" "${IN[@]}" --return-path
done
stop $pa $pv $pm

/usr/bin/python3 "$HERE/report.py" "$T/raw" "$T/ossl.out"
