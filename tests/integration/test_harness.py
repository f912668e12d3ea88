#!/usr/bin/python3
"""Self-tests of the integration harness (TAP output).

    /usr/bin/python3 tests/integration/test_harness.py [NAME-SUBSTRING...]

Uses test_milter.py instead of authgate.  The *_facts tests also record
what Postfix and Sendmail send over the milter protocol (see README.md).
"""

import ast
import glob
import os
import re
import subprocess
import sys
import threading
import time

sys.dont_write_bytecode = True     # write nothing into the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dns.exception  # noqa: E402
import dns.flags  # noqa: E402
import dns.message  # noqa: E402
import dns.query  # noqa: E402
import dns.rcode  # noqa: E402
import dns.resolver  # noqa: E402

import harness as H  # noqa: E402
import tap  # noqa: E402
from tap import test  # noqa: E402

ZONE = {
    "ttl": 60,
    "records": [
        ["test.example.", "SOA", "ns.test.example. hostmaster.test.example. "
         "1 60 60 600 5"],
        ["test.example.", "NS", "ns.test.example."],
        ["test.example.", "MX", "10 mx.test.example."],
        ["test.example.", "TXT", "v=spf1 ip4:192.0.2.0/24 -all", 300],
        ["mx.test.example.", "A", "127.0.0.1"],
        ["mx.test.example.", "AAAA", "2001:db8::1"],
        ["multi.test.example.", "TXT", ["first string", "second string"]],
        ["long.test.example.", "TXT", "v=DKIM1; k=rsa; p=" + "A" * 600],
        ["alias.test.example.", "CNAME", "mx.test.example."],
        ["7.2.0.192.in-addr.arpa.", "PTR", "client.test.example."],
        ["*.wild.test.example.", "TXT", "wildcard"],
        ["a.b.test.example.", "A", "127.0.0.2"],
    ],
}


def kdig(port, name, rtype, *opts):
    r = subprocess.run(["kdig", "@127.0.0.1", "-p", str(port), name, rtype,
                        "+time=2", "+retry=0"] + list(opts),
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       check=False)
    return r.stdout.decode()


def kdig_status(out):
    m = re.search(r"status: (\w+)", out)
    return m.group(1) if m else None


def resolver(port, lifetime=2.0):
    res = dns.resolver.Resolver(configure=False)
    res.nameservers, res.port, res.lifetime = ["127.0.0.1"], port, lifetime
    return res


def query(port, name, rtype, timeout=2.0, tcp=False):
    q = dns.message.make_query(name, rtype)
    fn = dns.query.tcp if tcp else dns.query.udp
    return fn(q, "127.0.0.1", port=port, timeout=timeout)


# ---------------------------------------------------------------------------
# tap.py itself

CHILD = '''\
import sys
sys.dont_write_bytecode = True
sys.path.insert(0, %(here)r)
import harness, tap

@tap.test
def fails(t):
    harness.Daemon(["sleep", "1000"], name="sleeper").start()
    t.eq(1, 2, "one is two")

@tap.test
def raises(t):
    raise ValueError("boom")

@tap.test(skip="not today")
def skipped(t):
    pass

@tap.test(timeout=0.5)
def too_slow(t):
    t.defer(print, "# deferred ran")
    import time
    time.sleep(5)

@tap.test
def passes(t):
    t.contains("haystack", "st")

tap.main()
'''


@test
def tap_reports_failures_and_tears_down(t):
    script = os.path.join(t.tmpdir, "child_test.py")
    with open(script, "w") as f:
        f.write(CHILD % {"here": H.HERE})
    before = set(glob.glob("/tmp/agit-*"))
    r = subprocess.run([H.PYTHON, script], stdout=subprocess.PIPE,
                       stderr=subprocess.STDOUT, timeout=60, check=False,
                       env=dict(os.environ, KEEP_TMP="0"))
    out = r.stdout.decode()
    t.diag("child output:\n" + out)
    t.eq(r.returncode, 1, "exit status 1 when a test failed")
    t.match(r"^1\.\.5$", out)
    t.match(r"^not ok 1 - fails$", out)
    t.match(r"^#\s+got: 1$", out)
    t.match(r"^#\s+want: 2$", out)
    t.match(r"^not ok 2 - raises$", out)
    t.match(r"^# ValueError: boom$", out)
    t.match(r"^ok 3 - skipped # SKIP not today$", out)
    t.match(r"^not ok 4 - too_slow$", out)
    t.match(r"^# tap\.Timeout: test timed out$", out)
    t.match(r"^# deferred ran$", out)
    t.match(r"^ok 5 - passes$", out)
    pid = int(t.match(r"teardown: stopped sleeper\(pid=(\d+)\)", out)
              .group(1))
    t.ok(not os.path.exists("/proc/%d" % pid), "sleeper %d is gone" % pid)
    # only the child's own dirs (named after its tests): other test
    # programs run at the same time and make theirs
    mine = re.compile(r"^/tmp/agit-[^-]+-(fails|raises|skipped|too-slow|"
                      r"passes)-")
    t.eq({d for d in set(glob.glob("/tmp/agit-*")) - before
          if mine.match(d)}, set(), "child removed its temp dirs")


# ---------------------------------------------------------------------------
# DNS server


@test
def dns_records(t):
    srv = H.DnsServer(zone=ZONE).start()
    p = srv.port
    out = kdig(p, "multi.test.example", "TXT")
    t.contains(out, '"first string" "second string"')
    out = kdig(p, "long.test.example", "TXT")
    t.contains(out, "truncated reply", "650-byte TXT: UDP answer truncated")
    t.eq(kdig_status(out), "NOERROR")
    txt = resolver(p).resolve("long.test.example", "TXT")[0]
    t.eq([len(s) for s in txt.strings], [255, 255, 108],
         "long TXT split into 255-byte strings")
    t.eq(b"".join(txt.strings), ("v=DKIM1; k=rsa; p=" + "A" * 600).encode())
    ans = resolver(p).resolve("test.example", "TXT")
    t.eq(ans.rrset.ttl, 300, "per-record TTL")
    t.eq(resolver(p).resolve("mx.test.example", "A").rrset.ttl, 60,
         "default TTL")
    mx = resolver(p).resolve("test.example", "MX")[0]
    t.eq((mx.preference, str(mx.exchange)), (10, "mx.test.example."))
    t.eq(str(resolver(p).resolve("mx.test.example", "AAAA")[0]),
         "2001:db8::1")
    t.eq(str(resolver(p).resolve_address("192.0.2.7")[0]),
         "client.test.example.", "PTR")
    soa = resolver(p).resolve("test.example", "SOA")[0]
    t.eq(soa.minimum, 5)
    t.eq(str(resolver(p).resolve("test.example", "NS")[0]),
         "ns.test.example.")
    cname = resolver(p).resolve("alias.test.example", "A")
    t.eq([str(r) for r in cname], ["127.0.0.1"], "CNAME chased")
    t.eq(str(cname.canonical_name), "mx.test.example.")
    t.eq(str(resolver(p).resolve("x.y.wild.test.example", "TXT")[0]),
         '"wildcard"', "wildcard")
    out = kdig(p, "deep.x.wild.test.example", "TXT", "+short")
    t.eq(out.strip(), '"wildcard"')
    # runtime changes
    srv.set("test.example.", "TXT", "v=spf1 -all", ttl=1)
    t.eq(str(resolver(p).resolve("test.example", "TXT")[0]),
         '"v=spf1 -all"', "set() replaces")
    srv.add("new.test.example", "A", "127.0.0.5")
    t.contains(kdig(p, "new.test.example", "A", "+short"), "127.0.0.5")
    t.ok(srv.count("test.example.", "TXT") == 2, "query log counts",
         srv.queries("test.example."))


@test
def dns_nxdomain_nodata(t):
    srv = H.DnsServer(zone=ZONE).start()
    p = srv.port
    out = kdig(p, "nope.test.example", "A")
    t.eq(kdig_status(out), "NXDOMAIN")
    t.contains(out, "SOA", "negative answer carries the SOA")
    t.eq(kdig_status(kdig(p, "mx.test.example", "TXT")), "NOERROR")
    r = query(p, "mx.test.example", "TXT")
    t.eq((r.rcode(), len(r.answer)), (dns.rcode.NOERROR, 0), "NODATA")
    r = query(p, "b.test.example", "A")
    t.eq((r.rcode(), len(r.answer)), (dns.rcode.NOERROR, 0),
         "empty non-terminal is NODATA")
    t.eq(query(p, "nope.test.example", "A").rcode(), dns.rcode.NXDOMAIN)
    t.raises(dns.resolver.NXDOMAIN, resolver(p).resolve, "x.test.example",
             "A")
    t.raises(dns.resolver.NoAnswer, resolver(p).resolve, "mx.test.example",
             "MX")
    srv.remove("mx.test.example.")
    t.eq(query(p, "mx.test.example", "A").rcode(), dns.rcode.NXDOMAIN,
         "after remove()")
    t.eq([q.outcome for q in srv.queries("mx.test.example.")],
         ["NOERROR/0", "NOERROR/0", "NOERROR/0", "NXDOMAIN"])


@test
def dns_failure_behaviours(t):
    srv = H.DnsServer(zone=ZONE).start()
    p = srv.port
    srv.add("fail.test.example", "A", "127.0.0.3")
    srv.behave("fail.test.example", rcode="SERVFAIL")
    srv.behave("refused.test.example", rcode="REFUSED")
    srv.behave("gone.test.example", drop=True)
    srv.behave("junk.test.example", garbage=True)
    srv.behave("tc.test.example", truncate=True)
    srv.add("tc.test.example", "A", "127.0.0.4")
    srv.behave("slow.test.example", delay=1.0)
    srv.add("slow.test.example", "A", "127.0.0.9")
    srv.behave("txtfail.test.example", rcode="SERVFAIL", types=["TXT"])
    srv.add("txtfail.test.example", "A", "127.0.0.6")
    srv.behave("cut.test.example", cut=40)
    srv.add("cut.test.example", "TXT", "v=spf1 -all")

    t.eq(kdig_status(kdig(p, "fail.test.example", "A")), "SERVFAIL")
    t.eq(query(p, "fail.test.example", "A").rcode(), dns.rcode.SERVFAIL)
    t.eq(kdig_status(kdig(p, "refused.test.example", "A")), "REFUSED")
    t.eq(query(p, "refused.test.example", "A").rcode(), dns.rcode.REFUSED)
    t.eq(query(p, "txtfail.test.example", "TXT").rcode(), dns.rcode.SERVFAIL,
         "behaviour limited to TXT")
    t.eq(query(p, "txtfail.test.example", "A").rcode(), dns.rcode.NOERROR)

    t0 = time.monotonic()
    t.contains(kdig(p, "gone.test.example", "A", "+time=1"),
               "response timeout")
    t.raises(dns.exception.Timeout, query, p, "gone.test.example", "A", 0.5)
    t.raises(dns.exception.Timeout, query, p, "gone.test.example", "A", 0.5,
             True)
    t.between(time.monotonic() - t0, 1.9, 4, "drop: clients time out")

    t.contains(kdig(p, "junk.test.example", "A"), "malformed reply")
    t.raises(dns.exception.DNSException, query, p, "junk.test.example", "A")

    t.raises(dns.exception.DNSException, query, p, "cut.test.example", "TXT")
    t.raises(dns.exception.DNSException, query, p, "cut.test.example", "TXT",
             2.0, True)
    t.eq([q.outcome for q in srv.queries("cut.test.example.")], ["cut"] * 2)

    out = kdig(p, "tc.test.example", "A")
    t.contains(out, "truncated reply from 127.0.0.1@%d(UDP), retrying over "
               "TCP" % p)
    t.contains(out, "127.0.0.4")
    t.eq(query(p, "tc.test.example", "A").flags & dns.flags.TC,
         dns.flags.TC)
    resp, used_tcp = dns.query.udp_with_fallback(
        dns.message.make_query("tc.test.example", "A"), "127.0.0.1", port=p,
        timeout=2)
    t.ok(used_tcp, "dnspython fell back to TCP")
    t.eq(str(resp.answer[0][0]), "127.0.0.4")
    t.eq([(q.proto, q.outcome) for q in srv.queries("tc.test.example.")],
         [("udp", "TC"), ("tcp", "NOERROR/1"), ("udp", "TC"),
          ("udp", "TC"), ("tcp", "NOERROR/1")])

    # a slow name must not delay other queries
    slow = {}

    def ask_slow():
        t1 = time.monotonic()
        slow["ans"] = str(resolver(p, 5).resolve("slow.test.example",
                                                 "A")[0])
        slow["secs"] = time.monotonic() - t1

    th = threading.Thread(target=ask_slow)
    th.start()
    time.sleep(0.1)
    t1 = time.monotonic()
    t.eq(str(resolver(p).resolve("mx.test.example", "A")[0]), "127.0.0.1")
    fast = time.monotonic() - t1
    th.join()
    t.diag("fast query during a 1 s delayed one: %.3f s; slow one %.3f s"
           % (fast, slow["secs"]))
    t.between(fast, 0, 0.3, "fast query not blocked by the slow one")
    t.eq(slow["ans"], "127.0.0.9")
    t.between(slow["secs"], 1.0, 2.0, "delay applied")
    t.eq([q.outcome for q in srv.queries("gone.test.example.")],
         ["drop"] * 3)
    t.eq([q.outcome for q in srv.queries("junk.test.example.")],
         ["garbage"] * 2)


@test
def dns_cli_zone_reload(t):
    zone = os.path.join(t.tmpdir, "zone.json")
    qlog = os.path.join(t.tmpdir, "query.log")
    H.write_json(zone, ZONE)
    port = H.free_port()
    d = H.Daemon([H.PYTHON, os.path.join(H.HERE, "dns_server.py"), "--port",
                  port, "--zone", zone, "--querylog", qlog],
                 ready_port=port, name="dns-cli").start()
    t.eq(kdig(port, "test.example", "TXT", "+short").strip(),
         '"v=spf1 ip4:192.0.2.0/24 -all"')
    t.eq(kdig_status(kdig(port, "later.test.example", "A")), "NXDOMAIN")
    zone2 = dict(ZONE, records=ZONE["records"] +
                 [["later.test.example.", "A", "127.0.0.7"]],
                 behaviour={"test.example.": {"rcode": "SERVFAIL",
                                              "types": ["TXT"]}})
    H.write_json(zone, zone2)
    t.eq(kdig(port, "later.test.example", "A", "+short").strip(),
         "127.0.0.7", "zone file reloaded on change")
    t.eq(kdig_status(kdig(port, "test.example", "TXT")), "SERVFAIL")
    with open(zone, "w") as f:
        f.write("{broken")
    t.eq(kdig(port, "later.test.example", "A", "+short").strip(),
         "127.0.0.7", "a broken zone file keeps the old data")
    log = H.dns_server.read_querylog(qlog)
    t.eq([(q.name, q.type, q.outcome) for q in log],
         [("test.example.", "TXT", "NOERROR/1"),
          ("later.test.example.", "A", "NXDOMAIN"),
          ("later.test.example.", "A", "NOERROR/1"),
          ("test.example.", "TXT", "SERVFAIL"),
          ("later.test.example.", "A", "NOERROR/1")])
    t.contains(d.stderr(), "not loaded")
    d.stop()
    t.ok(not d.alive(), "stopped")


# ---------------------------------------------------------------------------
# SMTP sink


@test
def sink_in_process_and_cli(t):
    sink = H.Sink().start()
    r = H.send("127.0.0.1", sink.port, "a@example.org",
               ["b@example.net", "c@example.net"],
               H.make_message(subject="sink", body=".leading dot\r\n"))
    t.ok(r.ok, "accepted", r)
    t.eq(r.queue_id, "sink1")
    msgs = sink.wait_for(1, timeout=5)
    t.eq(msgs[0].mail_from, "<a@example.org>")
    t.eq(msgs[0].rcpts, ["<b@example.net>", "<c@example.net>"])
    t.eq(msgs[0]["Subject"], "sink")
    t.eq(msgs[0].body, b".leading dot\r\n", "dot-unstuffed, CRLF kept")
    t.ok(msgs[0].raw.startswith(b"X-Sink-Mail-From: <a@example.org>\r\n"
                                b"X-Sink-Rcpt-To: <b@example.net>\r\n"
                                b"X-Sink-Rcpt-To: <c@example.net>\r\n"))
    t.raises(TimeoutError, sink.wait_for, 2, 0.3)

    outdir = os.path.join(t.tmpdir, "cli-sink")
    port = H.free_port()
    H.Daemon([H.PYTHON, os.path.join(H.HERE, "smtp_sink.py"), "--port",
              port, outdir], ready_port=port, name="sink-cli").start()
    r = H.send("127.0.0.1", port, "", ["x@example.net"], b"Subject: cli\n\nx")
    t.ok(r.ok, "CLI sink accepts", r)
    msgs = H.smtp_sink.wait_for(outdir, 1, 5)
    t.eq((msgs[0].mail_from, msgs[0]["Subject"]), ("<>", "cli"))


# ---------------------------------------------------------------------------
# Postfix


def postfix_setup(t, **kw):
    sink = H.Sink().start()
    milter = H.TestMilter().start()
    pf = H.Postfix(milter=milter, relay_port=sink, **kw).start()
    return sink, milter, pf


@test
def postfix_delivers_with_milter_header(t):
    sink, milter, pf = postfix_setup(t)
    msg = H.make_message(headers=[("X-Delete-Me", "1"), ("X-Keep", "k"),
                                  ("X-Delete-Me", "2"), ("X-Delete-Me", "3")])
    r = pf.send("a@example.org", ["b@example.net"], msg)
    t.ok(r.ok, "accepted", r)
    t.match(r"^[0-9A-F]{6,}$", r.queue_id)
    m = sink.wait_for(1)[0]
    t.eq(m["X-Test-Milter"], "auth=<> daemon=<mta.test.example> tls=<> "
         "client=<127.0.0.1>")
    t.eq(m.get_all("X-Delete-Me"), [], "every X-Delete-Me removed")
    t.eq(m["X-Keep"], "k")
    t.contains(m["Received"], "with ESMTP id " + r.queue_id)
    pf.wait_log(r"%s: to=<b@example.net>, relay=127.0.0.1.*status=sent"
                % r.queue_id)
    # local submission through sendmail(1) goes through non_smtpd_milters
    rc, out = pf.inject(H.make_message(subject="via sendmail(1)"),
                        ["local@example.net"])
    t.eq(rc, 0, "sendmail(1) exit status: " + out)
    m = sink.wait_for(2)[1]
    t.eq(m["Subject"], "via sendmail(1)")
    t.contains(m["X-Test-Milter"], "daemon=<")


@test
def postfix_milter_reject_tempfail(t):
    sink, milter, pf = postfix_setup(t)
    msg = H.make_message()
    r = pf.send("a@example.org", ["reject@example.net"], msg)
    t.eq((r.stage, r.code, r.text),
         ("rcpt", 550, "5.7.1 authgate-test: rejected by milter"))
    r = pf.send("a@example.org", ["tempfail@example.net"], msg)
    t.eq((r.stage, r.code, r.text),
         ("rcpt", 451, "4.7.1 authgate-test: try again later"))
    r = pf.send("a@example.org", ["ok@example.net", "reject@example.net"],
                msg)
    t.ok(r.ok, "one of two recipients rejected: still delivered", r)
    t.eq([c for _, c, _ in r.rcpts], [250, 550])
    r = pf.send("a@example.org", ["eom-reject@example.net"], msg)
    t.eq((r.stage, r.code, r.text),
         ("end-of-data", 550, "5.7.1 authgate-test: rejected at eom"))
    r = pf.send("a@example.org", ["eom-tempfail@example.net"], msg)
    t.eq((r.stage, r.code), ("end-of-data", 451))
    t.ok(pf.wait_log(r"milter-reject: RCPT from .*550 5\.7\.1 "
                      r"authgate-test: rejected by milter"), "maillog")
    t.eq(len(sink.wait_for(1)), 1)


@test
def postfix_submission_auth_tls(t):
    sink, milter, pf = postfix_setup(t, submission_daemon_name="ORIGINATING")
    msg = H.make_message()
    r = pf.submit("alice@test.example", ["b@example.net"], msg)
    t.ok(r.ok, "authenticated submission accepted", r)
    t.contains(r.transcript, "auth: 235 2.7.0 Authentication successful")
    m = sink.wait_for(1)[0]
    t.eq(m["X-Test-Milter"], "auth=<alice@test.example> daemon=<ORIGINATING>"
         " tls=<TLSv1.3> client=<127.0.0.1>")
    eom = milter.entries("eom")[-1]["macros"]
    t.eq(eom.get("{auth_type}"), "PLAIN")
    r = pf.submit("alice@test.example", ["b@example.net"], msg,
                  auth=("alice@test.example", "wrong"))
    t.eq((r.stage, r.code), ("auth", 535))
    r = pf.submit("alice@test.example", ["b@example.net"], msg, auth=False)
    t.eq((r.stage, r.code), ("rcpt", 554), "no AUTH: rejected")
    r = H.send("127.0.0.1", pf.submission_port, "a@test.example",
               ["b@example.net"], msg, auth=("alice@test.example", "secret"))
    t.eq((r.stage, r.text), ("auth", "AUTH not offered"),
         "smtpd_tls_auth_only: no AUTH before STARTTLS")


@test
def postfix_xclient_client_addr(t):
    sink, milter, pf = postfix_setup(t)
    r = pf.send("a@example.org", ["b@example.net"], H.make_message(),
                xclient={"ADDR": "192.0.2.7", "NAME": "client.example.org",
                         "HELO": "helo.example.org"})
    t.ok(r.ok, "accepted", r)
    m = sink.wait_for(1)[0]
    t.contains(m["X-Test-Milter"], "client=<192.0.2.7>")
    t.contains(m["Received"], "from helo.example.org (client.example.org "
               "[192.0.2.7])")
    conn = milter.entries("connect")[-1]
    t.eq(conn["macros"].get("_"), "client.example.org [192.0.2.7]")
    t.eq(milter.entries("helo")[-1]["args"], ["'helo.example.org'"])
    r = pf.send("a@example.org", ["b@example.net"], H.make_message(),
                xclient={"ADDR": "198.51.100.20"}, starttls=True)
    t.ok(r.ok, "XCLIENT after STARTTLS", r)
    t.contains(sink.wait_for(2)[1]["X-Test-Milter"], "client=<198.51.100.20>")


@test
def postfix_milter_down_default_action(t):
    sink, milter, pf = postfix_setup(t)        # default_action=tempfail
    pf2 = H.Postfix(milter=milter, relay_port=sink,
                    default_action="accept").start()
    msg = H.make_message()
    t.ok(pf.send("a@example.org", ["b@example.net"], msg).ok, "milter up")
    milter.stop()
    r = pf.send("a@example.org", ["b@example.net"], msg)
    t.diag("tempfail: %r" % r)
    t.eq((r.code, r.text), (451, "4.7.1 Service unavailable - try again "
                                 "later"))
    t.ok(pf.wait_log(r"milter-reject: .*451 4\.7\.1 Service unavailable"),
         "maillog says milter-reject")
    r = pf2.send("a@example.org", ["b@example.net"], msg)
    t.ok(r.ok, "accept: delivered without the milter", r)
    msgs = sink.wait_for(2)
    t.eq(msgs[1]["X-Test-Milter"], None)
    t.contains(msgs[0]["X-Test-Milter"], "auth=<>")


@test
def postfix_reconfigure(t):
    sink, milter, pf = postfix_setup(t)
    pf.reconfigure(smtpd_banner="$myhostname ESMTP reconfigured")
    t.eq(pf.postconf("smtpd_banner"), ["$myhostname ESMTP reconfigured"])

    def banner():
        r = pf.send("a@example.org", ["b@example.net"], H.make_message())
        return "reconfigured" in r.transcript[0] and r

    r = H.wait_until(banner, 10, "new banner never seen")
    t.eq(r.transcript[0], "connect: 220 mta.test.example ESMTP reconfigured")


@test
def postfix_quarantine_hold_queue(t):
    sink, milter, pf = postfix_setup(t)
    r = pf.send("a@example.org", ["quarantine@example.net"],
                H.make_message(subject="hold me"))
    t.ok(r.ok, "accepted", r)
    pf.wait_queue(r.queue_id, "hold")
    t.eq(pf.hold_queue(), [r.queue_id])
    q = pf.queue()
    t.eq([(e["queue_name"], e["queue_id"]) for e in q],
         [("hold", r.queue_id)], "postqueue -j")
    text = pf.postcat(r.queue_id)
    t.contains(text, "Subject: hold me")
    t.contains(text, "X-Test-Milter: auth=<>")
    t.diag(pf.wait_log(r"%s: milter-hold: END-OF-MESSAGE" % r.queue_id)[0])
    time.sleep(0.5)
    t.eq(sink.messages(), [], "nothing delivered")


# ---------------------------------------------------------------------------
# milter protocol facts (README.md "What the MTAs send")

FOLDED = [(b"Subject", b" a\r\n\tb"), (b"X-Fold", b" first\r\n  second\r\n"
                                                b" third"),
          (b"X-Lead", b"   three spaces"), (b"X-Empty", b""),
          (b"X-NoSpace", b"x"), (b"X-Trail", b" trailing  ")]
BODY = b"line1\r\n.dotline\r\n  indented\r\n\r\n\r\n"


def raw_message(headers, body=b"body\r\n", ops=None):
    lines = [b"From: alice@test.example", b"To: bob@example.net",
             b"Message-ID: <%d@test.example>" % time.time_ns()]
    lines += [n + b":" + v for n, v in headers]
    if ops:
        lines.append(b"X-Test-Ops: " + ops.encode())
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


DUPS = [(b"X-Dup", b" one"), (b"X-Dup", b" two"), (b"X-Dup", b" three"),
        (b"x-dup", b" four"), (b"X-Delete-Me", b" d1"), (b"X-Keep", b" k"),
        (b"X-Delete-Me", b" d2")]

OPS = {
    "del-1-twice": "del X-Dup 1; del X-Dup 1",
    "del-2": "del X-Dup 2",
    "del-case": "del X-DUP 4",
    "chg-2": "chg X-Dup 2 TWO",
    "chg-missing": "chg X-None 1 new; chg X-Dup 9 nine",
    "ins": "ins 0 X-Ins0 zero; ins 1 X-Ins1 one; ins 3 X-Ins3 three; "
           "ins 1000 X-Ins1000 big",
    "add-folded": "add X-Fold-LF a\\n\\tb; add X-Fold-CRLF c\\r\\n\\td; "
                  "add X-Lead-Add   lead",
}


def header_block(sink_msg):
    """Delivered header lines without the sink's X-Sink-* lines, with
    continuation lines joined to their field by '|'."""
    head = sink_msg.raw.split(b"\r\n\r\n", 1)[0].decode()
    out = []
    for line in head.split("\r\n"):
        if line[:1] in (" ", "\t"):
            out[-1] += "|" + line
        elif not line.startswith("X-Sink-"):
            out.append(line)
    return out


def probe_mta(t, mta_cls, leadspc):
    """Send the probe messages through mta_cls with a MilterTap in front of
    test_milter; -> dict of observations."""
    sink = H.Sink().start()
    milter = H.TestMilter(leadspc=leadspc).start()
    wire = H.MilterTap(milter).start()
    mta = mta_cls(milter=wire, relay_port=sink).start()
    obs = {}
    r = mta.send("a@example.org", ["b@example.net"], raw_message(FOLDED, BODY))
    t.ok(r.ok, "probe accepted", r)
    delivered = sink.wait_for(1)[0]
    conn = wire.connections()[-1]
    obs["negotiated_leadspc"] = milter.entries("negotiate")[-1]["leadspc"]
    obs["headers"] = wire.headers(conn)
    obs["body"] = wire.body(conn)
    obs["delivered"] = delivered
    obs["milter_saw"] = [tuple(e["args"]) for e in milter.entries("header")]
    obs["eom_getsymval"] = milter.entries("eom")[-1]["macros"]
    for n, (name, ops) in enumerate(OPS.items(), 2):
        r = mta.send("a@example.org", ["b@example.net"],
                     raw_message(DUPS, ops=ops))
        t.ok(r.ok, "%s accepted" % name, r)
        obs[name + "-raw"] = sink.wait_for(n)[-1].raw
        obs[name] = [h for h in header_block(sink.wait_for(n)[-1])
                     if re.match(r"(?i)x-(dup|ins|none|fold|lead|delete)",
                                 h) or h.startswith("Received")]
    big = (b"x" * 998 + b"\r\n") * 100
    t.ok(mta.send("a@example.org", ["b@example.net"],
                  raw_message([], big)).ok, "big body accepted")
    obs["chunks"] = [len(p["data"]) for p in
                     wire.packets(wire.connections()[-1], "mta", "body")]
    for name in ("plain", "submission"):
        wire_before = len(wire.connections())
        if name == "plain":
            r = mta.send("a@example.org", ["b@example.net"],
                         H.make_message())
        else:
            r = mta.submit("alice@test.example", ["b@example.net"],
                           H.make_message())
        t.ok(r.ok, "%s accepted" % name, r)
        obs["macros_" + name] = [m for c in wire.connections()[wire_before:]
                                 for m in wire.macros(c)]
    H.stop_all()
    return obs


def show(t, title, obs):
    t.diag("--- %s" % title)
    t.diag("header values on the wire (SMFIC_HEADER):")
    for name, value in obs["headers"]:
        t.diag("  %s: %r" % (name, value))
    t.diag("body on the wire: %r" % obs["body"])
    t.diag("body chunks for a 100,000-byte body: %s" % obs["chunks"])
    t.diag("X-Test-Milter as delivered: %r" % [
        h for h in header_block(obs["delivered"])
        if h.startswith("X-Test-Milter")])
    for name in OPS:
        t.diag("%-12s %s" % (name, " / ".join(obs[name])))
    for name in ("plain", "submission"):
        t.diag("macros by stage, %s:" % name)
        for stage, macros in obs["macros_" + name]:
            t.diag("  %-8s %s" % (stage, macros))
    t.diag("smfi_getsymval at EOM: %s" % obs["eom_getsymval"])


def check_common_facts(t, obs, leadspc):
    hdr = dict(obs["headers"])
    sp = b" " if leadspc else b""
    t.eq(obs["negotiated_leadspc"], leadspc, "SMFIP_HDR_LEADSPC negotiated")
    t.eq(hdr["Subject"], sp + b"a\n\tb", "folded: LF + continuation WSP")
    t.eq(hdr["X-Fold"], sp + b"first\n  second\n third")
    t.eq(hdr["X-Lead"], b"  three spaces" if not leadspc
         else b"   three spaces", "only one leading space removed")
    t.eq(hdr["X-Empty"], b"")
    t.eq(hdr["X-NoSpace"], b"x")
    t.eq(hdr["X-Trail"], sp + b"trailing  ", "trailing WSP kept")
    t.eq([v for n, v in obs["milter_saw"] if n == "'Subject'"],
         [repr(sp + b"a\n\tb")], "libmilter hands the wire bytes through")
    t.eq(obs["body"], BODY, "body: CRLF, dot-unstuffed, trailing CRLFs kept")
    t.eq(obs["chunks"], [65535, 34465], "65535-byte body chunks")
    xtm = [h for h in header_block(obs["delivered"])
           if h.startswith("X-Test-Milter")][0]
    want = "X-Test-Milter:auth=<>" if leadspc else "X-Test-Milter: auth=<>"
    t.eq(xtm[:len(want)], want, "MTA adds the space after ':' only "
         "without LEADSPC")
    raw = obs["delivered"].raw
    t.contains(raw, b"Subject: a\r\n\tb\r\n", "folding delivered unchanged")
    ins = obs["ins"]
    t.eq([h.split(":")[0] for h in ins[:4]],
         ["X-Ins0", "X-Ins1", "Received", "X-Ins3"],
         "insheader index counts the MTA's own Received header")
    t.eq(ins[-1].split(":")[0], "X-Ins1000", "index past the end appends")
    t.eq(obs["del-2"][1:4], ["X-Dup: one", "X-Dup: three", "x-dup: four"])
    t.eq(obs["del-case"][1:4], ["X-Dup: one", "X-Dup: two", "X-Dup: three"],
         "names match case-insensitively")
    t.eq(obs["chg-2"][2], "X-Dup:TWO" if leadspc else "X-Dup: TWO")
    t.eq([h for h in obs["del-2"] if h.startswith("X-Delete")], [],
         "X-Delete-Me removed (highest index first)")
    folded = [h for h in obs["add-folded"] if h.startswith("X-Fold-LF")]
    sep = "" if leadspc else " "
    t.eq(folded, ["X-Fold-LF:%sa|\tb" % sep],
         "an added value folded with \\n is delivered CRLF-folded")
    t.contains(obs["add-folded-raw"], b"X-Fold-CRLF:%sc\r\r\n\td\r\n"
               % sep.encode(), "a CR in an added value is kept: bare CR")
    t.contains(obs["add-folded-raw"], b"X-Lead-Add:%s  lead\r\n"
               % sep.encode(), "leading WSP of an added value is kept")


@test
def postfix_wire_facts(t):
    for leadspc in (False, True):
        obs = probe_mta(t, H.Postfix, leadspc)
        show(t, "Postfix, leadspc=%s" % leadspc, obs)
        check_common_facts(t, obs, leadspc)
        t.eq(obs["del-1-twice"][1:3], ["X-Dup: three", "x-dup: four"],
             "Postfix renumbers after a deletion")
        t.eq(obs["headers"][-1][0], "Date",
             "Postfix passes the Date: it added to the milter")
        t.eq(obs["chg-missing"][-2:], ["X-None:%snew" % (
            "" if leadspc else " "), "X-Dup:%snine" % (
            "" if leadspc else " ")], "chgheader past the end appends")
        stages = [s for s, _ in obs["macros_plain"]]
        t.eq(stages[:4], ["connect", "helo", "mail", "rcpt"])
        t.ok({"data", "header", "eoh", "body", "eom"} <= set(stages),
             "i sent at data/header/eoh/body/eom", stages)
        t.ok(all("i" not in m for s, m in obs["macros_plain"]
                 if s in ("mail", "rcpt")), "no i at MAIL/RCPT")
        helos = [m for s, m in obs["macros_submission"] if s == "helo"]
        t.eq(helos[-1].get("{tls_version}"), "TLSv1.3",
             "helo macros re-sent after STARTTLS")
        mail = [m for s, m in obs["macros_submission"] if s == "mail"][0]
        t.eq(mail.get("{auth_authen}"), "alice@test.example")


@test
def postfix_macros_after_xclient(t):
    sink = H.Sink().start()
    milter = H.TestMilter().start()
    wire = H.MilterTap(milter).start()
    pf = H.Postfix(milter=wire, relay_port=sink).start()
    r = pf.send("a@example.org", ["b@example.net"], H.make_message(),
                xclient={"ADDR": "203.0.113.5", "NAME": "[UNAVAILABLE]"})
    t.ok(r.ok, "accepted", r)
    conns = wire.connections()
    t.diag("milter connections for one XCLIENT session: %d" % len(conns))
    for c in conns:
        t.diag("  conn %d: %s" % (c, [(s, m.get("{client_addr}"))
                                      for s, m in wire.macros(c)]))
    t.eq(len(conns), 2, "XCLIENT: Postfix opens a second milter session")
    first = [s for s, _ in wire.macros(conns[0])]
    t.eq(first, ["connect", "helo"], "first session ends after EHLO")
    t.eq(wire.macros(conns[1])[0][1].get("{client_addr}"), "203.0.113.5")
    t.eq(wire.macros(conns[1])[0][1].get("{client_name}"), "unknown")
    t.contains(sink.wait_for(1)[0]["X-Test-Milter"], "client=<203.0.113.5>")


# ---------------------------------------------------------------------------
# Sendmail


@test
def sendmail_delivers_and_rejects(t):
    sink = H.Sink().start()
    milter = H.TestMilter().start()
    sm = H.Sendmail(milter=milter, relay_port=sink).start()
    msg = H.make_message(headers=[("X-Delete-Me", "1"), ("X-Keep", "k")])
    r = sm.send("a@example.org", ["b@example.net"], msg)
    t.ok(r.ok, "accepted", r)
    t.match(r"^[0-9A-Za-z]{14}$", r.queue_id)
    m = sink.wait_for(1)[0]
    t.eq(m["X-Test-Milter"], "auth=<> daemon=<MTA> tls=<> client=<127.0.0.1>")
    t.eq(m.get_all("X-Delete-Me"), [])
    t.contains(m["Received"], "(8.17.1.9/8.17.1.9) with ESMTP id " +
               r.queue_id)
    r = sm.send("a@example.org", ["reject@example.net"], msg)
    t.eq((r.stage, r.code, r.text), ("rcpt", 550, "5.7.1 <reject@example."
                                     "net>... authgate-test: rejected by "
                                     "milter"))
    r = sm.send("a@example.org", ["tempfail@example.net"], msg)
    t.eq((r.stage, r.code), ("rcpt", 451))
    r = sm.submit("alice@test.example", ["b@example.net"], msg)
    t.ok(r.ok, "AUTH + STARTTLS submission", r)
    t.eq(sink.wait_for(2)[1]["X-Test-Milter"], "auth=<alice@test.example> "
         "daemon=<MSA> tls=<TLSv1.3> client=<127.0.0.1>")
    r = sm.send("a@example.org", ["quarantine@example.net"], msg)
    t.ok(r.ok, "quarantined message accepted", r)
    H.wait_until(lambda: r.queue_id in sm.quarantined(), 10,
                  "no hf file for %s" % r.queue_id)
    milter.stop()
    r = sm.send("a@example.org", ["b@example.net"], msg)
    t.diag("milter down, F=T: %r" % r)
    t.eq(r.code // 100, 4, "F=T: tempfail when the milter is down")


@test
def sendmail_wire_facts(t):
    for leadspc in (False, True):
        obs = probe_mta(t, H.Sendmail, leadspc)
        show(t, "Sendmail, leadspc=%s" % leadspc, obs)
        check_common_facts(t, obs, leadspc)
        t.eq(obs["del-1-twice"][1:4], ["X-Dup: two", "X-Dup: three",
                                       "x-dup: four"],
             "Sendmail does NOT renumber: 2nd 'del 1' hits the deleted one")
        t.ok("Date" not in dict(obs["headers"]),
             "Sendmail does not pass the Date: it added")
        stages = [s for s, _ in obs["macros_plain"]]
        t.eq(stages, ["connect", "helo", "mail", "rcpt", "eom"])
        mail = [m for s, m in obs["macros_plain"] if s == "mail"][0]
        t.ok(mail.get("i"), "Sendmail sends i at MAIL", mail)


# ---------------------------------------------------------------------------
# Authgate wrapper (with a stand-in binary: authgate itself is not built)

FAKE_AUTHGATE = '''#!/usr/bin/python3
import os, re, sys
args = sys.argv[1:]
with open(os.environ["FAKE_ARGV_LOG"], "w") as f:
    f.write(repr(args))
conf = args[args.index("-c") + 1]
with open(conf) as f:
    print("config:", f.read(), file=sys.stderr, flush=True)
port = re.search(r"milter_socket=inet:(\\d+)@", " ".join(args)).group(1)
os.execv("/usr/bin/python3", ["/usr/bin/python3", %(milter)r,
         "--port", port, "--log", conf + ".milter.jsonl"])
'''


@test
def authgate_wrapper_with_fake_binary(t):
    fake = os.path.join(t.tmpdir, "fake-authgate")
    with open(fake, "w") as f:
        f.write(FAKE_AUTHGATE % {"milter": os.path.join(H.HERE,
                                                        "test_milter.py")})
    os.chmod(fake, 0o755)
    argv_log = os.path.join(t.tmpdir, "argv")
    dns_srv = H.DnsServer(zone=ZONE).start()
    ag = H.Authgate(binary=fake, dns=dns_srv, env={"FAKE_ARGV_LOG": argv_log},
                    settings={"authserv_id": "mta.test.example",
                              "sign": False, "internal_hosts":
                              ["127.0.0.0/8", "192.0.2.0/24"]},
                    grace=0.5).start()
    with open(argv_log) as f:
        t.eq(ast.literal_eval(f.read()), ["-f", "-c", ag.conf, "-o",
                              "milter_socket=inet:%d@127.0.0.1" % ag.port,
                              "-o", "dns_servers=127.0.0.1@%d" % dns_srv.port])
    t.ok(ag.wait_stderr(r"internal_hosts = 127\.0\.0\.0/8, 192\.0\.2\.0/24"))
    t.ok(ag.grep(r"^sign = no$"), "booleans written as yes/no")
    sink = H.Sink().start()
    pf = H.Postfix(milter=ag, relay_port=sink).start()
    t.ok(pf.send("a@example.org", ["b@example.net"], H.make_message()).ok)
    t.contains(sink.wait_for(1)[0]["X-Test-Milter"], "auth=<>")
    t.raises(H.StartError, H.Authgate(binary="/nonexistent/ag").start)
    if "AUTHGATE_BIN" not in os.environ:
        t.eq(H.default_authgate_bin(),
             os.path.join(H.REPO, "build", "filter", "authgate"))


# ---------------------------------------------------------------------------


@test
def nothing_left_behind(t):
    left = H.leftover_processes()
    t.eq(left, [], "no process of this run remains (cmdline/environ "
         "mentioning %s, or in a session the harness started)" % H.RUN_TAG)
    if os.environ.get("KEEP_TMP") != "1":
        t.eq([d for d in glob.glob("/tmp/%s-*" % H.RUN_TAG)
              if d != t.tmpdir], [], "earlier temp dirs removed")
    t.diag("processes that needed SIGKILL: %s" % (H.KILLED or "none"))
    t.diag("component timings (s): min / median / max over the run")
    by = {}
    for comp, event, secs in H.TIMINGS:
        by.setdefault((comp, event), []).append(secs)
    for (comp, event), v in sorted(by.items()):
        v.sort()
        t.diag("  %-16s %-5s n=%-3d %.3f / %.3f / %.3f" % (
            comp, event, len(v), v[0], v[len(v) // 2], v[-1]))


if __name__ == "__main__":
    tap.main()
