#!/bin/sh
# test_cli.sh - `authgate check`: the output interface, forged A-R removal,
# option placement, usage and config errors, hostile input.
. "$(dirname "$0")/lib.sh"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
AG="$AUTHGATE_BIN"
# These tests are about the check interface, not SPF or DMARC: both are off
# (so no DNS query is ever made; tests/integration covers them end to end).
ID="-o authserv_id=mx.authgate.test -o spf_enable=no -o dmarc_enable=no -o rules_enable=no"
export AUTHGATE_NO_SPF="-o spf_enable=no -o dmarc_enable=no -o rules_enable=no"

out=$("$AG" check $ID --client-ip 192.0.2.1 "$MSGS/plain.eml"); rc=$?
is "plain: exit 0" "$rc" 0
is "plain: A-R none, then accept" "$out" "Authentication-Results: mx.authgate.test; dkim=none
action: accept"

out=$("$AG" check $ID --client-ip 192.0.2.1 "$MSGS/forged-ar.eml")
is "forged: four of ours removed" "$(printf '%s\n' "$out" | grep -c '^removed: Authentication-Results$')" 4
is "forged: one A-R added" "$(printf '%s\n' "$out" | grep -c '^Authentication-Results: ')" 1
like "forged: action last" "$(printf '%s\n' "$out" | tail -1)" '^action: accept$'

# -c and -o before or after the word check; -o wins over the file
printf 'authserv_id = from-file.test\n' > "$T/a.conf"
out=$("$AG" -c "$T/a.conf" $AUTHGATE_NO_SPF check --client-ip 192.0.2.1 "$MSGS/plain.eml")
like "-c before check" "$out" '^Authentication-Results: from-file\.test; dkim=none$'
out=$("$AG" check --client-ip 192.0.2.1 -c "$T/a.conf" $AUTHGATE_NO_SPF -o authserv_id=cli.test "$MSGS/plain.eml")
like "-c/-o after check, -o wins" "$out" '^Authentication-Results: cli\.test; dkim=none$'
out=$("$AG" -o authserv_id=x.test $AUTHGATE_NO_SPF check --client-ip 192.0.2.1 - < "$MSGS/plain.eml")
like "stdin as -" "$out" '^Authentication-Results: x\.test; dkim=none$'
out=$("$AG" -o authserv_id=x.test $AUTHGATE_NO_SPF check --client-ip 192.0.2.1 < "$MSGS/plain.eml")
like "stdin by default" "$out" '^action: accept$'

# without authserv_id: the host name
out=$("$AG" check $AUTHGATE_NO_SPF --client-ip 192.0.2.1 "$MSGS/plain.eml")
like "default authserv-id is the host name" "$out" "^Authentication-Results: $(hostname); dkim=none$"

# line endings, mbox, degenerate files
a=$("$AG" check $ID --client-ip 192.0.2.1 "$MSGS/crlf.eml")
b=$(tr -d '\r' < "$MSGS/crlf.eml" | "$AG" check $ID --client-ip 192.0.2.1 -)
is "CRLF and LF give the same result" "$a" "$b"
out=$("$AG" check $ID --client-ip 192.0.2.1 "$MSGS/mbox.eml"); rc=$?
is "mbox From line: exit 0" "$rc" 0
for f in empty no-headers; do
	out=$("$AG" check $ID --client-ip 192.0.2.1 "$MSGS/$f.eml"); rc=$?
	is "$f message: exit 0" "$rc" 0
	like "$f message: action" "$out" '^action: accept$'
done

# usage and config errors: exit 2, a message on stderr, nothing on stdout
err=$("$AG" check "$MSGS/plain.eml" 2>&1 >/dev/null); rc=$?
is "no --client-ip: exit 2" "$rc" 2
like "no --client-ip: says so" "$err" 'client-ip is required'
err=$("$AG" check --client-ip not-an-ip "$MSGS/plain.eml" 2>&1); rc=$?
is "bad client ip: exit 2" "$rc" 2
like "bad client ip: says so" "$err" "'not-an-ip' is not an IP address"
err=$("$AG" check --client-ip 192.0.2.1 "$T/missing.eml" 2>&1); rc=$?
is "missing file: exit 2" "$rc" 2
printf '\n\ndns_timeout = soon\n' > "$T/bad.conf"
err=$("$AG" check -c "$T/bad.conf" --client-ip 192.0.2.1 "$MSGS/plain.eml" 2>&1); rc=$?
is "bad config: exit 2" "$rc" 2
like "bad config: file:line" "$err" "^$T/bad.conf:3: dns_timeout: 'soon' is not a time"
err=$("$AG" check -o nosuch=1 --client-ip 192.0.2.1 "$MSGS/plain.eml" 2>&1); rc=$?
is "bad -o: exit 2" "$rc" 2
like "bad -o: names it" "$err" "unknown parameter 'nosuch'"
err=$("$AG" check --client-ip 192.0.2.1 --bogus "$MSGS/plain.eml" 2>&1); rc=$?
is "unknown option: exit 2" "$rc" 2

# -n and -p
out=$("$AG" -n -c "$T/a.conf"); rc=$?
is "-n good config: exit 0" "$rc" 0
out=$("$AG" -n -c "$T/bad.conf" 2>&1); rc=$?
is "-n bad config: exit 1" "$rc" 1
like "-n bad config: file:line" "$out" "bad.conf:3:"
out=$("$AG" -p -c "$T/a.conf" -o dns_timeout=1500ms)
like "-p shows the file value" "$out" '^authserv_id = from-file\.test$'
like "-p shows the override" "$out" '^dns_timeout = 1500ms$'
like "-p shows defaults" "$out" '^milter_socket = inet:8894@127\.0\.0\.1$'

# hostile input: huge header, many headers, binary junk: a verdict, no crash
/usr/bin/python3 - "$T" <<'PY'
import os, sys
t = sys.argv[1]
open(os.path.join(t, "huge.eml"), "wb").write(b"Subject: " + b"x" * 500000 + b"\n\nbody\n")
open(os.path.join(t, "many.eml"), "wb").write(b"".join(b"X-H%d: v\n" % i for i in range(20000)) +
    b"Authentication-Results: mx.authgate.test; spf=pass\n\nbody\n")
open(os.path.join(t, "junk.eml"), "wb").write(bytes(range(256)) * 4000)
open(os.path.join(t, "longline.eml"), "wb").write(b"Subject: x\n\n" + b"y" * 10000000)
PY
for f in huge many junk longline; do
	out=$("$AG" check $ID --client-ip 192.0.2.1 "$T/$f.eml" 2>/dev/null); rc=$?
	is "hostile $f: exit 0" "$rc" 0
	like "hostile $f: a verdict" "$out" '^action: (accept|tempfail)'
done
out=$("$AG" check $ID --client-ip 192.0.2.1 "$T/many.eml" 2>/dev/null)
like "forged A-R past max_headers still removed" "$out" '^removed: Authentication-Results$'

done_testing
