#!/bin/bash
# test_reports.sh - authgate-reports: the reports it builds from a history
# (filled by tests/tools/dhist_fill through the daemon's writer), checked
# against the RFC 9990 schema (xmllint) and read back (record grouping,
# policy_published, metadata, escaping, file name, Subject, MIME); sending
# through a sendmail stub (failure and retry, nothing sent twice);
# suppression; external destinations authorized or not by a DNS server on
# loopback (tests/integration/dns_server.py, stopped by PID); --dry-run,
# --domain, --before, pruning; usage and configuration errors.
. "$(dirname "$0")/lib.sh"
R="$AUTHGATE_BUILDDIR/filter/authgate-reports"
FILL="$AUTHGATE_BUILDDIR/tests/tools/dhist_fill"
XSD="$AUTHGATE_SRCDIR/tests/data/dmarc/rfc9990.xsd"
T=$(mktemp -d)
DNS_PID=""
cleanup() { stop_pid "$DNS_PID"; rm -rf "$T"; }
trap cleanup EXIT

DAY=86400
TODAY=$(($(date +%s) / DAY * DAY))
D1=$((TODAY - DAY))
D3=$((TODAY - 3 * DAY))
D5=$((TODAY - 5 * DAY))
day_of() { date -u -d "@$1" +%Y-%m-%d; }

# xq.py - what a report says, one fact a line
cat > "$T/xq.py" <<'PY'
import email, email.policy, gzip, sys
import xml.etree.ElementTree as E
NS = "{urn:ietf:params:xml:ns:dmarc-2.0}"

def get(e, path):
    x = e.find("/".join(NS + p for p in path.split("/")))
    return None if x is None else (x.text or "")

def report(path):
    return E.fromstring(gzip.open(path).read())

cmd, path = sys.argv[1], sys.argv[2]
if cmd == "meta":
    r = report(path)
    print("root=%s version=%s" % (r.tag, get(r, "version")))
    for f in ("org_name", "email", "report_id", "date_range/begin",
              "date_range/end", "generator"):
        print("%s=%s" % (f, get(r, "report_metadata/" + f)))
elif cmd == "policy":
    r = report(path)
    pp = r.find(NS + "policy_published")
    print(" ".join("%s=%s" % (c.tag[len(NS):], c.text) for c in pp))
elif cmd == "records":
    for rec in report(path).findall(NS + "record"):
        pe = "row/policy_evaluated/"
        reason = rec.find(NS + "row/" + NS + "policy_evaluated/" + NS + "reason")
        dk = ",".join("%s/%s/%s" % (get(d, "domain"), get(d, "selector"),
                                    get(d, "result"))
                      for d in rec.findall(NS + "auth_results/" + NS + "dkim"))
        spf = rec.find(NS + "auth_results/" + NS + "spf")
        print("ip=%s count=%s disp=%s dkim=%s spf=%s reason=%s from=%s "
              "env_from=%s env_to=%s auth_dkim=%s auth_spf=%s" % (
                  get(rec, "row/source_ip"), get(rec, "row/count"),
                  get(rec, pe + "disposition"), get(rec, pe + "dkim"),
                  get(rec, pe + "spf"),
                  "" if reason is None else "%s:%s" % (
                      get(reason, "type"), get(reason, "comment")),
                  get(rec, "identifiers/header_from"),
                  get(rec, "identifiers/envelope_from"),
                  get(rec, "identifiers/envelope_to"), dk,
                  "" if spf is None else "%s/%s/%s" % (
                      get(spf, "domain"), get(spf, "scope"),
                      get(spf, "result"))))
elif cmd == "mime":
    m = email.message_from_binary_file(open(path, "rb"),
                                       policy=email.policy.default)
    for h in ("From", "To", "Subject", "MIME-Version"):
        print("%s: %s" % (h, m[h]))
    print("message-id: %s" % ("yes" if m["Message-ID"] else "no"))
    print("date: %s" % ("yes" if m["Date"] else "no"))
    for part in m.iter_parts():
        print("part: %s %s %s" % (part.get_content_type(),
                                  part.get("Content-Transfer-Encoding"),
                                  part.get_filename()))
        if part.get_content_type() == "application/gzip":
            open(sys.argv[3], "wb").write(part.get_payload(decode=True))
PY
xq() { /usr/bin/python3 "$T/xq.py" "$@" 2>&1; }
valid() { gzip -dc "$1" | xmllint --noout --schema "$XSD" - 2>&1; }

# A sendmail stub: $T/mode says ok, fail, or "fail-to ADDR"; a message it
# takes goes to $T/mail/ADDR.N, its arguments to $T/mail/ADDR.N.args.
mkdir "$T/mail"
cat > "$T/sendmail" <<EOF
#!/bin/sh
cat > "$T/mail/.in.\$\$"
to=\$(sed -n '/^\$/q; s/^To: //p' "$T/mail/.in.\$\$")
mode=\$(cat "$T/mode")
if [ "\$mode" = fail ] || [ "\$mode" = "fail-to \$to" ]; then
	rm -f "$T/mail/.in.\$\$"
	echo "stub: refused" >&2
	exit 1
fi
n=1
while [ -e "$T/mail/\$to.\$n" ]; do n=\$((n + 1)); done
echo "\$*" > "$T/mail/\$to.\$n.args"
mv "$T/mail/.in.\$\$" "$T/mail/\$to.\$n"
EOF
chmod 755 "$T/sendmail"
echo ok > "$T/mode"
sent() { ls "$T/mail" | grep -c "^$1\.[0-9]*\$"; }

# ---- a DNS server on loopback ---------------------------------------------
cat > "$T/zone.json" <<'EOF'
{"ttl": 1, "records": [
 ["_dmarc.example.com.", "TXT", "v=DMARC1; p=reject; rua=mailto:dmarc@example.com"],
 ["example.com._report._dmarc.thirdparty.example.", "TXT", "v=DMARC1;"],
 ["ov.example._report._dmarc.thirdparty.example.", "TXT", "v=DMARC1; rua=mailto:other@thirdparty.example"],
 ["ov2.example._report._dmarc.thirdparty.example.", "TXT", "v=DMARC1; rua=mailto:y@elsewhere.example"],
 ["vlate.example._report._dmarc.thirdparty.example.", "TXT", "rua=mailto:x@thirdparty.example; v=DMARC1"],
 ["tmp.example._report._dmarc.thirdparty.example.", "TXT", "v=DMARC1"]],
 "behaviour": {"tmp.example._report._dmarc.thirdparty.example.": {"rcode": "SERVFAIL"}}}
EOF
/usr/bin/python3 "$AUTHGATE_SRCDIR/tests/integration/dns_server.py" --port 0 \
    --port-file "$T/dns.port" --zone "$T/zone.json" --querylog "$T/query.log" \
    > "$T/dns.out" 2>&1 &
DNS_PID=$!
i=0
while [ ! -s "$T/dns.port" ] && [ $i -lt 200 ] && kill -0 "$DNS_PID" 2>/dev/null; do
	sleep 0.05
	i=$((i + 1))
done
ok "loopback DNS server started" test -s "$T/dns.port"
DNS="127.0.0.1@$(cat "$T/dns.port" 2>/dev/null)"

# mkconf NAME [LINE...] - $T/NAME.conf with its own history $T/NAME.db
mkconf() {
	n=$1
	shift
	{
		echo "dmarc_history = sqlite:$T/$n.db"
		echo "dmarc_report_from = dmarc-reports@Receiver.Example"
		echo "dmarc_report_org = Receiver Org & Co"
		echo "dmarc_report_sendmail = $T/sendmail"
		echo "dns_servers = $DNS"
		echo "dns_timeout = 2s"
		for l in "$@"; do echo "$l"; done
	} > "$T/$n.conf"
}
# fill NAME - rows from stdin into NAME's history
fill() { "$FILL" "sqlite:$T/$1.db" > "$T/fill.out" 2>&1 || cat "$T/fill.out"; }
# run NAME [ARG...] - authgate-reports on NAME's config: $out, $err, $rc
run() {
	n=$1
	shift
	out=$("$R" -c "$T/$n.conf" "$@" 2>"$T/err")
	rc=$?
	err=$(cat "$T/err")
}
# sql NAME QUERY - ask NAME's history
sql() { sqlite3 "$T/$1.db" "$2" 2>&1; }
TAB=$(printf '\t')

# ---- usage and configuration errors ------------------------------------------
: > "$T/empty.conf"
err=$("$R" --bogus 2>&1); rc=$?
is "unknown option: exit 2" "$rc" 2
like "unknown option: says which" "$err" "unknown option '--bogus'"
err=$("$R" -c "$T/empty.conf" 2>&1); rc=$?
is "no dmarc_history: exit 2" "$rc" 2
like "no dmarc_history: says so" "$err" 'dmarc_history is not set'
printf 'dmarc_report_from = a@b.example\ndmarc_history = mysql://x\n' > "$T/bad.conf"
err=$("$R" -c "$T/bad.conf" 2>&1); rc=$?
is "bad dmarc_history: exit 2" "$rc" 2
like "bad dmarc_history: file:line" "$err" "^$T/bad.conf:2: "
mkconf basic
err=$("$R" -c "$T/basic.conf" -o dmarc_report_from= 2>&1); rc=$?
is "no dmarc_report_from: exit 2" "$rc" 2
like "no dmarc_report_from: says so" "$err" "dmarc_report_from = '' in $T/basic.conf"
run basic --before 2026-02-30
is "--before 2026-02-30: exit 2" "$rc" 2
like "--before 2026-02-30: says so" "$err" "--before '2026-02-30': want a date"
run basic --before "$(day_of $((TODAY + DAY)))"
is "--before tomorrow: exit 2" "$rc" 2
like "--before tomorrow: not over" "$err" 'not over'
run basic --keep-days 0
is "--keep-days 0: exit 2" "$rc" 2

# ---- one report per policy domain and day, --out ---------------------------------
fill basic <<EOF
t=$((D1 + 100))${TAB}count=3${TAB}p=none
t=$((D1 + 200))${TAB}source_ip=192.0.2.2
t=$((D1 + 300))${TAB}header_from=sub.example.com${TAB}disposition=quarantine${TAB}dkim_aligned=0${TAB}spf_aligned=0${TAB}reason_type=local_policy${TAB}reason_comment=a <b> & "c"${TAB}dkim=sub.example.com sel1 fail${TAB}spf_result=softfail${TAB}envelope_to=
t=$((D1 + 400))${TAB}p=quarantine${TAB}sp=none${TAB}np=reject${TAB}adkim=s${TAB}testing=y${TAB}fo=1
t=$((D1 + 500))${TAB}policy_domain=other.example${TAB}count=2${TAB}dkim=other.example s1 pass;third.example s2 fail
t=$((D3 + 500))${TAB}source_ip=198.51.100.7
t=$TODAY${TAB}source_ip=203.0.113.1
t=$((D1 + 600))${TAB}policy_domain=bad domain.example
EOF
mkdir "$T/out1"
run basic --out "$T/out1"
first_out=$out
is "--out: exit 0" "$rc" 0
is "--out: one report per domain and day (today's not over)" \
    "$(ls "$T/out1" | grep -c '\.xml\.gz$')" 3
like "--out: a domain name with a space is never reported" "$err" \
    "'bad domain\.example': not a domain name"
F=$(ls "$T/out1" | grep "^receiver\.example!example\.com!$D1!" | grep 'gz$')
like "file name: receiver!policy-domain!begin!end!unique-id.xml.gz" "$F" \
    "^receiver\.example!example\.com!$D1!$((D1 + 86399))![A-Za-z0-9]+\.xml\.gz\$"
ID=$(echo "$F" | sed 's/.*!\([A-Za-z0-9]*\)\.xml\.gz$/\1/')
F="$T/out1/$F"
is "report validates against the RFC 9990 schema" "$(valid "$F")" "- validates"
for f in "$T/out1"/*.xml.gz; do
	is "$(basename "$f") validates" "$(valid "$f")" "- validates"
done
is "report_metadata" "$(xq meta "$F")" "root={urn:ietf:params:xml:ns:dmarc-2.0}feedback version=1.0
org_name=Receiver Org & Co
email=dmarc-reports@receiver.example
report_id=$ID
date_range/begin=$D1
date_range/end=$((D1 + 86399))
generator=authgate $("$R" --version | awk '{print $NF}')"
is "policy_published: the newest row's, unset tags at their defaults" \
    "$(xq policy "$F")" \
    "domain=example.com p=quarantine sp=none np=reject adkim=s aspf=r discovery_method=treewalk fo=1 testing=y"
is "records: same tuple counted, other IP and From: domain apart" \
    "$(xq records "$F" | sort)" \
    "ip=192.0.2.1 count=1 disp=quarantine dkim=fail spf=fail reason=local_policy:a <b> & \"c\" from=sub.example.com env_from=sub.example.com env_to=None auth_dkim=sub.example.com/sel1/fail auth_spf=sub.example.com/mfrom/softfail
ip=192.0.2.1 count=4 disp=pass dkim=pass spf=pass reason= from=example.com env_from=example.com env_to=receiver.example auth_dkim=example.com/sel1/pass auth_spf=example.com/mfrom/pass
ip=192.0.2.2 count=1 disp=pass dkim=pass spf=pass reason= from=example.com env_from=example.com env_to=receiver.example auth_dkim=example.com/sel1/pass auth_spf=example.com/mfrom/pass"
like "XML escapes the comment" "$(gzip -dc "$F")" \
    '<comment>a &lt;b&gt; &amp; &quot;c&quot;</comment>'
like "XML escapes org_name" "$(gzip -dc "$F")" '<org_name>Receiver Org &amp; Co</org_name>'
O=$(ls "$T/out1"/*other.example*.gz)
is "other.example: its own report, signatures in order" "$(xq records "$O")" \
    "ip=192.0.2.1 count=2 disp=pass dkim=pass spf=pass reason= from=other.example env_from=other.example env_to=receiver.example auth_dkim=other.example/s1/pass,third.example/s2/fail auth_spf=other.example/mfrom/pass"
O=$(ls "$T/out1"/*"!example.com!$D3!"*.gz)
is "an earlier day: its own report" "$(xq records "$O" | cut -d' ' -f1-2)" \
    "ip=198.51.100.7 count=1"
is "the message: headers and parts" "$(xq mime "$F.eml" "$T/att.gz")" \
    "From: dmarc-reports@Receiver.Example
To: dmarc@example.com
Subject: Report Domain: example.com Submitter: receiver.example Report-ID: $ID
MIME-Version: 1.0
message-id: yes
date: yes
part: text/plain 7bit None
part: application/gzip base64 $(basename "$F")"
ok "the attachment is the report file" cmp "$T/att.gz" "$F"
like "--out: says what it sent" "$first_out" \
    "^sent: example\.com $(day_of $D1) report $ID \(6 messages\) to dmarc@example\.com\$"
before=$(ls -l --time-style=+%s.%N "$T/out1" | md5sum)
run basic --out "$T/out1"
is "rerun: exit 0" "$rc" 0
is "rerun: nothing sent" "$out" ""
is "rerun: no file written" "$(ls -l --time-style=+%s.%N "$T/out1" | md5sum)" "$before"
is "rerun: today's row still waits" \
    "$(sql basic "SELECT COUNT(*) FROM dmarc_eval WHERE t >= $TODAY")" 1

# ---- sendmail: a failure is tried again, nothing is sent twice --------------------
mkconf mail
fill mail <<EOF
t=$((D1 + 10))${TAB}count=2${TAB}rua=mailto:a@example.com,mailto:b@example.com
EOF
echo fail > "$T/mode"
run mail
is "sendmail fails: exit 1" "$rc" 1
like "sendmail fails: its status is named" "$err" "$T/sendmail exited with status 1"
like "sendmail fails: tried again next run" "$err" \
    "example\.com $(day_of $D1): report [A-Za-z0-9]+ to a@example\.com not sent: trying again next run"
is "sendmail fails: nothing reported as sent" "$out" ""
is "sendmail fails: the period is not done" "$(sql mail 'SELECT COUNT(*) FROM dmarc_done')" 0
echo "fail-to b@example.com" > "$T/mode"
run mail
is "one destination fails: exit 1" "$rc" 1
is "one destination fails: the other got it" "$(sent a@example.com)" 1
is "one destination fails: it did not" "$(sent b@example.com)" 0
echo ok > "$T/mode"
run mail
is "sendmail works again: exit 0" "$rc" 0
is "sendmail works again: the failed one gets it" "$(sent b@example.com)" 1
is "sendmail works again: the other not twice" "$(sent a@example.com)" 1
is "sendmail is run as sendmail -t -oi" "$(cat "$T/mail/b@example.com.1.args")" "-t -oi"
like "the message's Subject" "$(xq mime "$T/mail/b@example.com.1" "$T/att2.gz")" \
    "Subject: Report Domain: example\.com Submitter: receiver\.example Report-ID: [A-Za-z0-9]+\$"
is "the mailed report validates" "$(valid "$T/att2.gz")" "- validates"
ID1=$(xq mime "$T/mail/a@example.com.1" /dev/null | sed -n 's/^Subject: .*Report-ID: //p')
ID2=$(xq mime "$T/mail/b@example.com.1" /dev/null | sed -n 's/^Subject: .*Report-ID: //p')
is "a report sent again keeps its Report-ID" "$ID2" "$ID1"
run mail
is "run again: exit 0" "$rc" 0
is "run again: nothing sent" "$out$(sent a@example.com)$(sent b@example.com)" "11"

# ---- dmarc_report_suppress ------------------------------------------------------------
mkconf supp "dmarc_report_suppress = DMARC@example.com, Sup.Example"
fill supp <<EOF
t=$((D1 + 10))${TAB}rua=mailto:dmarc@example.com,mailto:keep@example.com
t=$((D1 + 20))${TAB}policy_domain=d2.example${TAB}rua=mailto:r@mail.sup.example
EOF
run supp
is "suppression: exit 0" "$rc" 0
is "suppression: the address listed gets nothing" "$(sent dmarc@example.com)" 0
is "suppression: the subdomain of a domain listed gets nothing" "$(sent r@mail.sup.example)" 0
is "suppression: the others get it" "$(sent keep@example.com)" 1
like "suppression: says so" "$err" "d2\.example: r@mail\.sup\.example is in dmarc_report_suppress"
unlike "suppression: no DNS check for a suppressed address" "$(cat "$T/query.log" 2>/dev/null)" "d2\.example\._report"
is "suppression: both periods done" "$(sql supp 'SELECT COUNT(*) FROM dmarc_done')" 2

# ---- external destinations (RFC 9990 4) -----------------------------------------------
mkconf ext
fill ext <<EOF
t=$((D1 + 10))${TAB}rua=mailto:r@thirdparty.example,mailto:r@reports.example.com
t=$((D1 + 20))${TAB}policy_domain=unauth.example${TAB}rua=mailto:u@thirdparty.example
t=$((D1 + 30))${TAB}policy_domain=ov.example${TAB}rua=mailto:x@thirdparty.example
t=$((D1 + 40))${TAB}policy_domain=ov2.example${TAB}rua=mailto:x@thirdparty.example
t=$((D1 + 50))${TAB}policy_domain=vlate.example${TAB}rua=mailto:x@thirdparty.example
t=$((D1 + 60))${TAB}policy_domain=tmp.example${TAB}rua=mailto:x@thirdparty.example
t=$((D1 + 70))${TAB}policy_domain=web.example${TAB}rua=https://reports.example/up,mailto:d@web.example
EOF
run ext
is "external: a temporary DNS error: exit 1" "$rc" 1
is "external: authorized by v=DMARC1 at <domain>._report._dmarc.<host>" "$(sent r@thirdparty.example)" 1
like "external: the authorization was asked" "$(cat "$T/query.log" 2>/dev/null)" \
    ' example\.com\._report\._dmarc\.thirdparty\.example\. TXT NOERROR/1$'
is "same Organizational Domain: sent without asking" "$(sent r@reports.example.com)" 1
unlike "same Organizational Domain: no authorization asked" "$(cat "$T/query.log" 2>/dev/null)" \
    '_report\._dmarc\.reports\.example\.com'
is "not authorized: not sent" "$(sent u@thirdparty.example)" 0
like "not authorized: says so" "$err" \
    'unauth\.example: no report authorization at unauth\.example\._report\._dmarc\.thirdparty\.example \(nxdomain\)'
is "authorization with a rua on the same host: it replaces the URI" \
    "$(sent other@thirdparty.example)" 1
is "authorization with a rua elsewhere: sent to neither" \
    "$(sent y@elsewhere.example)$(sent x@thirdparty.example)" 00
like "authorization with a rua elsewhere: says so" "$err" \
    'ov2\.example: .*names mailto:y@elsewhere\.example, not on that host: sent to neither'
like "v=DMARC1 not first: not authorized" "$err" \
    'vlate\.example: no report authorization at .* \(no v=DMARC1 record\)'
like "temporary DNS error: tried again next run" "$err" \
    'tmp\.example: DNS servfail for tmp\.example\._report\._dmarc\.thirdparty\.example TXT: trying again next run'
like "a URI that is not mailto: is skipped" "$err" \
    'web\.example: https://reports\.example/up: only mailto: URIs are supported, skipped'
is "... and the mailto: after it is sent" "$(sent d@web.example)" 1
is "external: every period but the one in doubt done" \
    "$(sql ext "SELECT policy_domain FROM dmarc_eval WHERE NOT EXISTS (SELECT 1 FROM dmarc_done d WHERE d.policy_domain = dmarc_eval.policy_domain)")" \
    tmp.example
sed -i '/"behaviour"/c\ "behaviour": {}}' "$T/zone.json"
run ext
is "DNS answers again: exit 0" "$rc" 0
is "DNS answers again: the report goes" "$(sent x@thirdparty.example)" 1
like "DNS answers again: the one of tmp.example" \
    "$(xq mime "$T/mail/x@thirdparty.example.1" /dev/null)" 'Subject: Report Domain: tmp\.example '
is "DNS answers again: nothing else sent twice" \
    "$(sent r@thirdparty.example)$(sent other@thirdparty.example)$(sent d@web.example)" 111

# ---- --dry-run, --domain, --before ------------------------------------------------------
mkconf opts
fill opts <<EOF
t=$((D5 + 10))${TAB}policy_domain=a.example
t=$((D3 + 10))${TAB}policy_domain=a.example
t=$((D3 + 20))${TAB}policy_domain=b.example
EOF
run opts --dry-run
is "--dry-run: exit 0" "$rc" 0
is "--dry-run: says what it would send" "$(echo "$out" | sed 's/ report [A-Za-z0-9]* / report ID /')" \
    "would send: a.example $(day_of $D5) report ID (1 messages) to dmarc@a.example
would send: a.example $(day_of $D3) report ID (1 messages) to dmarc@a.example
would send: b.example $(day_of $D3) report ID (1 messages) to dmarc@b.example"
is "--dry-run: sends nothing" "$(sent dmarc@a.example)$(sent dmarc@b.example)" 00
is "--dry-run: marks nothing" "$(sql opts 'SELECT COUNT(*) FROM dmarc_sent') $(sql opts 'SELECT COUNT(*) FROM dmarc_done')" "0 0"
run opts --domain b.example
is "--domain: exit 0" "$rc" 0
is "--domain: only that domain" "$(sent dmarc@a.example)$(sent dmarc@b.example)" 01
run opts --before "$(day_of $D3)"
is "--before: exit 0" "$rc" 0
like "--before: the days before it" "$out" "^sent: a\.example $(day_of $D5) "
unlike "--before: not that day" "$out" "$(day_of $D3)"
run opts
is "the rest: exit 0" "$rc" 0
is "the rest: sent" "$(sent dmarc@a.example)$(sent dmarc@b.example)" 21

# ---- pruning ------------------------------------------------------------------------
mkconf prune
fill prune <<EOF
t=$((D5 + 10))${TAB}policy_domain=x.example${TAB}count=2
t=$((D5 + 20))${TAB}policy_domain=y.example
t=$((D1 + 10))${TAB}policy_domain=z.example
EOF
echo "fail-to dmarc@y.example" > "$T/mode"
run prune --keep-days 4
is "prune: exit 1 (y.example failed)" "$rc" 1
like "prune: says how many" "$out" '^pruned: 3 rows older than 4 days$'
# rows older than --keep-days go, sent or not (a destination that failed
# for that long is given up on); newer ones stay
is "prune: rows older than --keep-days go, the rest stay" \
    "$(sql prune 'SELECT policy_domain, COUNT(*) FROM dmarc_eval GROUP BY policy_domain ORDER BY 1')" \
    "z.example|1"
echo ok > "$T/mode"

done_testing
