#!/bin/bash
# test_rules.sh - the rules through `authgate check` and the daemon: the
# score: and rules: lines, several messages in one run, rule-file errors
# with file:line (check, -n, and SIGHUP keeping the old rules), the
# built-in set loading cleanly, hostile bodies in bounded time.
. "$(dirname "$0")/lib.sh"
T=$(mktemp -d)
chmod 755 "$T"
PIDS=""
cleanup() { for p in $PIDS; do stop_pid "$p"; done; rm -rf "$T"; }
trap cleanup EXIT
AG="$AUTHGATE_BIN"
# no DNS: SPF, DMARC and the rDNS tests off; the rules under test only
NODNS="-o spf_enable=no -o dmarc_enable=no -o rules_rdns=no -o authserv_id=mx.test"

cat > "$T/a.rules" <<'EOF'
header   LUNCH     Subject =~ /lunch/i
describe LUNCH     Subject about lunch
score    LUNCH     3.5
header   __ALICE   From:addr =~ /^alice@/m
meta     ALICE_LUNCH  LUNCH && __ALICE
score    ALICE_LUNCH  2
eval     NO_DATE   date_missing()
score    NO_DATE   0.4
EOF
printf 'From: alice@example.org\nTo: bob@example.net\nSubject: Lunch?\n\nnoon\n' > "$T/m1.eml"
printf 'From: carol@example.org\nSubject: hello\nDate: Mon, 23 Nov 2026 10:00:00 +0000\n\nhi\n' > "$T/m2.eml"

# shellcheck disable=SC2086
out=$("$AG" check $NODNS -o rules_builtin=no -o rules_files="$T/a.rules" --client-ip 192.0.2.1 "$T/m1.eml"); rc=$?
is "check: exit 0" "$rc" 0
is "check: headers, score, rules, then the action" "$out" "Authentication-Results: mx.test; dkim=none
X-Authgate-Score: 5.9/5.0
X-Authgate-Spam: yes
X-Authgate-Report: LUNCH=3.5 (Subject about lunch), ALICE_LUNCH=2.0, NO_DATE=0.4
score: 5.9/5.0
rules: LUNCH,ALICE_LUNCH,NO_DATE
action: accept"

# shellcheck disable=SC2086
out=$("$AG" check $NODNS -o rules_builtin=no -o rules_files="$T/a.rules" -o spam_reject_score=5 --client-ip 192.0.2.1 "$T/m1.eml")
like "over spam_reject_score: 550" "$out" '^action: reject 550 5\.7\.1 Message refused by the content policy of this site$'
# shellcheck disable=SC2086
out=$("$AG" check $NODNS -o rules_builtin=no -o rules_files="$T/a.rules" --auth-user bob --client-ip 192.0.2.1 "$T/m1.eml")
unlike "authenticated client: not scored" "$out" '^score:'

# several messages, one snapshot
# shellcheck disable=SC2086
out=$("$AG" check $NODNS -o rules_builtin=no -o rules_files="$T/a.rules" --client-ip 192.0.2.1 "$T/m1.eml" "$T/m2.eml" "$T/m1.eml")
is "several files: one block each" "$(printf '%s\n' "$out" | grep -E '^(file|score|action):')" "file: $T/m1.eml
score: 5.9/5.0
action: accept
file: $T/m2.eml
score: 0.0/5.0
action: accept
file: $T/m1.eml
score: 5.9/5.0
action: accept"
# shellcheck disable=SC2086
out=$("$AG" check $NODNS --output - --client-ip 192.0.2.1 "$T/m1.eml" "$T/m2.eml" 2>&1); rc=$?
is "--output with several files: usage error" "$rc" 2

# errors name file and line; nothing is scored with a broken set
printf 'header OK Subject =~ /x/\n\nbody BAD /(/\nscore NOPE 1\n' > "$T/bad.rules"
# shellcheck disable=SC2086
out=$("$AG" check $NODNS -o rules_files="$T/bad.rules" --client-ip 192.0.2.1 "$T/m1.eml" 2>&1); rc=$?
is "check with a broken rule file: exit 2" "$rc" 2
like "regex error with file:line" "$out" "^$T/bad\\.rules:3: bad regex at offset 1: missing closing parenthesis$"
like "unknown rule with file:line" "$out" "^$T/bad\\.rules:4: score for NOPE, which no rule file defines$"
# shellcheck disable=SC2086
out=$("$AG" -n $NODNS -o rules_files="$T/bad.rules" 2>&1); rc=$?
is "-n with a broken rule file: exit 1" "$rc" 1
like "-n names the line" "$out" "$T/bad\\.rules:3: "
# shellcheck disable=SC2086
out=$("$AG" -n $NODNS -o rules_files="$T/nothere.rules" 2>&1); rc=$?
like "-n with a missing rule file" "$rc:$out" "^1:.*$T/nothere\\.rules: no such rule file"
# shellcheck disable=SC2086
out=$("$AG" -n $NODNS -o "rules_files=$T/none-*.rules" 2>&1); rc=$?
is "a glob that matches nothing is fine" "$rc" 0

# the built-in set loads, and a local file adjusts it
# shellcheck disable=SC2086
out=$("$AG" -n $NODNS 2>&1); rc=$?
like "built-in rules load cleanly" "$rc:$out" "^0:authgate: configuration OK "
printf 'score DATE_MISSING 0\n' > "$T/local.rules"
# shellcheck disable=SC2086
out=$("$AG" check $NODNS -o rules_files="$T/local.rules" --client-ip 192.0.2.1 "$T/m1.eml")
unlike "score 0 in a local file turns a built-in rule off" "$out" '^rules: .*DATE_MISSING'

# hostile bodies: a 10 MB line, and 100000 MIME parts, still answered
/usr/bin/python3 -c 'import sys; sys.stdout.write("Subject: x\n\n" + "A" * 10000000 + "\n")' > "$T/long.eml"
/usr/bin/python3 - "$T/parts.eml" <<'PY'
import sys
with open(sys.argv[1], "w") as f:
    f.write("MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=b\n\n")
    for i in range(100000):
        f.write("--b\nContent-Type: text/plain\n\npart %d\n" % i)
    f.write("--b--\n")
PY
printf 'body LONG_A /A{100}$/\nbody PARTS /part 99999/\neval MANY mime_parts(999)\nbody SLOW /(A+)+B/\n' > "$T/h.rules"
for f in long parts; do
	# shellcheck disable=SC2086
	out=$("$AG" check $NODNS -o rules_builtin=no -o rules_files="$T/h.rules" --client-ip 192.0.2.1 "$T/$f.eml" 2>&1); rc=$?
	is "hostile $f: exit 0" "$rc" 0
	like "hostile $f: answered" "$out" '^action: accept$'
done
# shellcheck disable=SC2086
out=$("$AG" check $NODNS -o rules_builtin=no -o rules_files="$T/h.rules" --client-ip 192.0.2.1 "$T/long.eml" 2>&1)
like "10 MB line: scanned up to the limit" "$out" '^rules: .*LONG_A'
unlike "10 MB line: a pathological regex on it counts as no match" "$out" 'SLOW'
# shellcheck disable=SC2086
out=$("$AG" check $NODNS -o rules_builtin=no -o rules_files="$T/h.rules" --client-ip 192.0.2.1 "$T/parts.eml" 2>&1)
like "100000 parts: the cap is a signal" "$out" '^rules: .*MANY'
unlike "100000 parts: parts past the cap are not scanned" "$out" 'PARTS'

# the daemon: a broken rule file on SIGHUP keeps the old rules
PORT=$(free_port)
USEROPT=""
[ "$(id -u)" = 0 ] && USEROPT="-o user=nobody"
cp "$T/a.rules" "$T/live.rules"
chmod 644 "$T/live.rules"
# shellcheck disable=SC2086
"$AG" -f -o "milter_socket=inet:$PORT@127.0.0.1" $NODNS -o rules_builtin=no \
    -o rules_files="$T/live.rules" -o "pid_file=$T/run/authgate.pid" \
    $USEROPT 2>"$T/d.log" &
DPID=$!
PIDS="$PIDS $DPID"
ok "daemon up" wait_port "$PORT"
S="inet:$PORT@127.0.0.1"
out=$("$MILTC" "$S" "$T/m1.eml")
like "daemon: score header inserted" "$out" '^insert-header: 0 X-Authgate-Score:  5\.9/5\.0$'
printf 'header X Subject =~ /[/\n' > "$T/live.rules"
kill -HUP "$DPID"
sleep 0.5
like "SIGHUP with a broken rule file: logged with file:line" "$(cat "$T/d.log")" "reload failed, old configuration stays: $T/live\\.rules:1: bad regex"
out=$("$MILTC" "$S" "$T/m1.eml")
like "SIGHUP with a broken rule file: old rules still score" "$out" '^insert-header: 0 X-Authgate-Score:  5\.9/5\.0$'
sleep 0.2
like "the log line has the score and the rules" "$(cat "$T/d.log")" 'score=5\.9 rules=LUNCH,ALICE_LUNCH,NO_DATE'

done_testing
