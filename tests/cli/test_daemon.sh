#!/bin/bash
# test_daemon.sh - the daemon on a loopback port, driven by tests/tools/miltc
# (the MTA side of the milter protocol): negotiation, forged A-R removal,
# several messages per connection, abort and vanishing MTA, reload on
# SIGHUP (good and broken config), unix socket, internal-error tempfail,
# SIGTERM drain. Every daemon is stopped by its PID.
. "$(dirname "$0")/lib.sh"
T=$(mktemp -d)
chmod 755 "$T"
PIDS=""
cleanup() { for p in $PIDS; do stop_pid "$p"; done; rm -rf "$T"; }
trap cleanup EXIT
USEROPT=""
[ "$(id -u)" = 0 ] && USEROPT="-o user=nobody"

# start_daemon NAME SOCKET [args...] - start authgate -f, set $DPID
start_daemon() {
	name=$1 sock=$2
	shift 2
	# shellcheck disable=SC2086
	# daemon mechanics only: no check makes DNS queries (SPF is off)
	"$AUTHGATE_BIN" -f -c "$T/$name.conf" -o "milter_socket=$sock" \
	    -o spf_enable=no -o dmarc_enable=no -o rules_enable=no \
	    -o "pid_file=$T/run-$name/authgate.pid" $USEROPT "$@" \
	    2>"$T/$name.log" &
	DPID=$!
	PIDS="$PIDS $DPID"
}

PORT=$(free_port)
printf 'authserv_id = mx.authgate.test\ndrain_timeout = 20s\n' > "$T/d1.conf"
start_daemon d1 "inet:$PORT@127.0.0.1"
ok "daemon listens on its loopback port" wait_port "$PORT"
# (in the foreground the port is open before the pid file is written)
ok "pid file written" wait_file "$T/run-d1/authgate.pid"
is "pid file holds the daemon's pid" "$(cat "$T/run-d1/authgate.pid" 2>/dev/null)" "$DPID"
if [ "$(id -u)" = 0 ]; then
	is "runs as the configured user" "$(ps -o user= -p "$DPID" | tr -d ' ')" nobody
fi

S="inet:$PORT@127.0.0.1"
out=$("$MILTC" "$S" "$MSGS/forged-ar.eml"); rc=$?
is "miltc: exit 0" "$rc" 0
proto=$(printf '%s\n' "$out" | sed -n 's/^negotiated: .*protocol=\(0x[0-9a-f]*\)$/\1/p')
for flag in NR_HDR:0x80 NR_CONN:0x1000 NR_HELO:0x2000 NR_MAIL:0x4000 \
    NR_RCPT:0x8000 NR_EOH:0x40000 NR_BODY:0x80000 HDR_LEADSPC:0x100000; do
	is "negotiates ${flag%%:*}" "$(( proto & ${flag#*:} ))" "$(( ${flag#*:} ))"
done
like "requests connect macros" "$out" '^macros-requested: connect j \{daemon_name\} \{client_addr\}'
like "requests {auth_authen} at MAIL" "$out" '^macros-requested: mail i \{auth_authen\}'
like "requests TLS macros at HELO" "$out" '^macros-requested: helo \{tls_version\} \{cipher\}'
is "forged A-R deleted, highest index first" \
    "$(printf '%s\n' "$out" | grep '^delete-header' | tr '\n' ' ')" \
    "delete-header: 6 Authentication-Results delete-header: 5 Authentication-Results delete-header: 3 Authentication-Results delete-header: 1 Authentication-Results "
like "our A-R inserted at the top, with the leading space the MTA expects" "$out" '^insert-header: 0 Authentication-Results:  mx\.authgate\.test;\\n\\tdkim=none$'
like "accepted" "$out" '^result: continue$'

out=$("$MILTC" --messages 3 "$S" "$MSGS/plain.eml")
is "three messages on one connection" "$(printf '%s\n' "$out" | grep -c '^result: continue$')" 3

out=$("$MILTC" --abort-after-headers "$S" "$MSGS/plain.eml"); rc=$?
like "abort after headers" "$out" '^result: aborted$'
for n in 60 400; do
	out=$("$MILTC" --disconnect-after $n "$S" "$MSGS/forged-ar.eml")
	like "MTA vanishes after $n bytes" "$out" '^result: disconnected$'
done
out=$("$MILTC" "$S" "$MSGS/plain.eml")
like "still serving after aborts and hang-ups" "$out" '^result: continue$'

out=$("$MILTC" --client-ip 203.0.113.9 --macro '{auth_authen}=alice@example.org' "$S" "$MSGS/plain.eml")
sleep 0.2
like "SMTP AUTH makes the client internal" "$(cat "$T/d1.log")" 'ip=203\.0\.113\.9 .*auth=alice@example\.org internal=yes'
out=$("$MILTC" --client-ip 127.0.0.1 "$S" "$MSGS/plain.eml")
sleep 0.2
like "internal_hosts makes 127.0.0.1 internal" "$(cat "$T/d1.log")" 'ip=127\.0\.0\.1 .*internal=yes'
like "one summary line per message with the queue id" "$(cat "$T/d1.log")" '^[^ ]+ authgate\[[0-9]+\]: [0-9A-F]+: ip=192\.0\.2\.1 helo=client\.example\.net from=<sender@example\.org> rcpts=1 internal=no .*action=accept ms=[0-9]+$'

# reload: a good change takes effect, a broken file keeps the old config
printf 'authserv_id = reloaded.authgate.test\ndrain_timeout = 20s\n' > "$T/d1.conf"
kill -HUP "$DPID"
sleep 0.5
out=$("$MILTC" "$S" "$MSGS/plain.eml")
like "SIGHUP: new authserv-id in use" "$out" 'Authentication-Results:  reloaded\.authgate\.test;\\n\\tdkim=none'
printf 'authserv_id = broken.test\n\ndns_timeout = whenever\n' > "$T/d1.conf"
kill -HUP "$DPID"
sleep 0.5
like "SIGHUP broken config: logged with file:line" "$(cat "$T/d1.log")" "reload failed, old configuration stays: $T/d1.conf:3: dns_timeout: 'whenever' is not a time"
out=$("$MILTC" "$S" "$MSGS/plain.eml")
like "SIGHUP broken config: old config stays" "$out" 'Authentication-Results:  reloaded\.authgate\.test;\\n\\tdkim=none'
for i in $(seq 1 200); do kill -HUP "$DPID"; done
sleep 1
ok "200 SIGHUPs in a burst: still running" kill -0 "$DPID"
out=$("$MILTC" "$S" "$MSGS/plain.eml")
like "200 SIGHUPs in a burst: still answering" "$out" '^result: continue$'

# drain: SIGTERM waits for an open connection, then exits
/usr/bin/python3 - "$PORT" "$T/hold" <<'PY' &
import os, socket, struct, sys, time
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
s.sendall(struct.pack(">IcIII", 13, b"O", 6, 0x1ff, 0x1fffff))
s.recv(4096)
open(sys.argv[2], "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.05)
s.close()
PY
HOLDER=$!
PIDS="$PIDS $HOLDER"
for i in $(seq 1 100); do [ -e "$T/hold" ] && break; sleep 0.05; done
kill -TERM "$DPID"
sleep 1
ok "SIGTERM with a connection open: still draining" kill -0 "$DPID"
ok "SIGTERM: no new connections accepted" sh -c "! (exec 3<>/dev/tcp/127.0.0.1/$PORT) 2>/dev/null"
rm -f "$T/hold"
ok "SIGTERM: exits once the connection closes" wait_gone "$DPID" 5
wait "$HOLDER" 2>/dev/null
ok "pid file removed at exit" test ! -e "$T/run-d1/authgate.pid"
like "drain logged" "$(cat "$T/d1.log")" 'SIGTERM: stopping, draining 1 connection'

# unix socket
printf 'authserv_id = unix.authgate.test\n' > "$T/d2.conf"
start_daemon d2 "unix:$T/milter.sock"
for i in $(seq 1 100); do [ -S "$T/milter.sock" ] && break; sleep 0.05; done
ok "unix socket created" test -S "$T/milter.sock"
is "unix socket mode 0660" "$(stat -c %a "$T/milter.sock" 2>/dev/null)" 660
out=$("$MILTC" "unix:$T/milter.sock" "$MSGS/plain.eml")
like "unix socket: message through" "$out" 'Authentication-Results:  unix\.authgate\.test;\\n\\tdkim=none'
stop_pid "$DPID"

# an internal error (the arena runs out of memory) tempfails, no crash
printf 'authserv_id = oom.authgate.test\n' > "$T/d3.conf"
PORT3=$(free_port)
AUTHGATE_TEST_ARENA_FAIL=3 start_daemon d3 "inet:$PORT3@127.0.0.1"
wait_port "$PORT3"
out=$("$MILTC" "inet:$PORT3@127.0.0.1" "$MSGS/plain.eml")
like "out of memory: tempfail" "$out" '^result: tempfail'
like "out of memory: 451 4.7.1" "$out" '451 4\.7\.1'
ok "out of memory: daemon alive" kill -0 "$DPID"
stop_pid "$DPID"

# start-up errors
printf 'user = no-such-user-here\n' > "$T/d4.conf"
if [ "$(id -u)" = 0 ]; then
	err=$("$AUTHGATE_BIN" -f -c "$T/d4.conf" -o "milter_socket=inet:$(free_port)@127.0.0.1" 2>&1); rc=$?
	is "missing user: exit 78" "$rc" 78
	like "missing user: says how to fix it" "$err" "user 'no-such-user-here' does not exist: create it"
fi
printf 'nonsense here\n' > "$T/d5.conf"
err=$("$AUTHGATE_BIN" -f -c "$T/d5.conf" 2>&1); rc=$?
is "bad config at start: exit 78" "$rc" 78
like "bad config at start: file:line" "$err" "d5.conf:1: expected 'name = value'"
printf 'authserv_id = x\n' > "$T/d6.conf"
err=$("$AUTHGATE_BIN" -f -c "$T/d6.conf" -o "milter_socket=inet:$PORT3@127.0.0.1" $USEROPT -o "pid_file=$T/p6" 2>&1 &
	P6=$!; sleep 0.5; "$AUTHGATE_BIN" -f -c "$T/d6.conf" -o "milter_socket=inet:$PORT3@127.0.0.1" $USEROPT -o "pid_file=$T/p7" 2>&1; echo "rc=$?"; stop_pid $P6)
like "port in use: clear error" "$err" "cannot listen on inet:$PORT3@127.0.0.1"

done_testing
