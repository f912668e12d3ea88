#!/usr/bin/python3
"""test_rules.py - the anti-spam rules end to end: a real Postfix, authgate
with a rule file, DNSBL/URIBL zones and reverse DNS served by the loopback
DNS server.

Client addresses are posed with XCLIENT. Each test writes its own rule file
(the built-in set stays on, so what it adds is tested alongside it).
"""
import os
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import tap  # noqa: E402

ID = "mx.authgate.test"
LISTED = "198.51.100.66"   # in the test DNSBL
CLEAN = "198.51.100.25"    # not listed, forward-confirmed rDNS
RCPT = ["bob@example.net"]

RULES = """\
dnsbl    TEST_DNSBL   bl.test 127.0.0.2-127.0.0.11
describe TEST_DNSBL   Client listed in bl.test
score    TEST_DNSBL   4.2
uribl    TEST_URIBL   dbl.test &2
score    TEST_URIBL   3.1
header   TEST_REJECT  Subject =~ /\\bREJECT-ME\\b/
score    TEST_REJECT  20
header   TEST_HOLD    Subject =~ /\\bHOLD-ME\\b/
score    TEST_HOLD    11
eval     TEST_NO_RDNS client_no_rdns()
score    TEST_NO_RDNS 0.7
"""


def zone(dns):
    dns.add("66.100.51.198.bl.test.", "A", "127.0.0.2", ttl=1)
    dns.add("66.100.51.198.bl.test.", "TXT", "listed: spam source", ttl=1)
    dns.add("bad.example.dbl.test.", "A", "127.0.1.2", ttl=1)
    dns.add("25.100.51.198.in-addr.arpa.", "PTR", "mail.example.org.", ttl=1)
    dns.add("mail.example.org.", "A", CLEAN, ttl=1)


def setup(t, settings=None):
    dns = H.DnsServer().start()
    zone(dns)
    sink = H.Sink().start()
    path = os.path.join(H.test_tmpdir(), "test.rules")
    with open(path, "w") as f:
        f.write(RULES)
    os.chmod(path, 0o644)
    conf = {"authserv_id": ID, "dns_timeout": "2s", "rules_files": path,
            "spam_quarantine_score": 10}
    conf.update(settings or {})
    ag = H.Authgate(settings=conf, dns=dns).start()
    pf = H.Postfix(milter=ag, relay_port=sink).start()
    return dns, sink, ag, pf


def send(pf, ip, subject="hello", body="Hello Bob,\n\nsee you.\n",
         headers=(), frm="alice@example.org"):
    msg = H.make_message(frm=frm, to=RCPT[0], subject=subject,
                         headers=list(headers), body=body)
    return pf.send(frm, RCPT, msg, xclient={"ADDR": ip,
                                            "HELO": "mail.example.org"})


@tap.test
def dnsbl_listed_client_scores(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, LISTED)
    t.eq(r.code, 250)
    m = sink.wait_for(1, timeout=20)[-1]
    score = m["X-Authgate-Score"]
    t.match(r"^\d+\.\d/5\.0$", score)
    t.ok(float(score.split("/")[0]) >= 4.2, "the DNSBL score is in")
    ag.wait_stderr(r"ip=198\.51\.100\.66 .*rules=[A-Z_,]*TEST_DNSBL")
    t.ok(dns.count("66.100.51.198.bl.test.", "A") >= 1, "asked the list")
    # the same list does not list the clean client
    r = send(pf, CLEAN)
    t.eq(r.code, 250)
    m = sink.wait_for(2, timeout=20)[-1]
    ag.wait_stderr(r"ip=198\.51\.100\.25 .*score=")
    t.eq(ag.grep(r"ip=198\.51\.100\.25 .*TEST_DNSBL"), [],
         "clean client not listed")


@tap.test
def uribl_and_rdns(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, CLEAN, body="Offer: http://www.shop.bad.example/buy now\n")
    t.eq(r.code, 250)
    sink.wait_for(1, timeout=20)
    ag.wait_stderr(r"ip=198\.51\.100\.25 .*rules=[A-Z_,]*TEST_URIBL")
    t.eq(ag.grep(r"ip=198\.51\.100\.25 .*TEST_NO_RDNS"), [],
         "PTR found and confirmed")
    r = send(pf, "203.0.113.77")
    t.eq(r.code, 250)
    sink.wait_for(2, timeout=20)
    ag.wait_stderr(r"ip=203\.0\.113\.77 .*rules=[A-Z_,]*TEST_NO_RDNS")


@tap.test
def over_reject_score_is_rejected(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, CLEAN, subject="please REJECT-ME now")
    t.eq((r.stage, r.code), ("end-of-data", 550))
    t.eq(r.text, "5.7.1 Message refused by the content policy of this site")
    time.sleep(0.5)
    t.eq(sink.messages(), [], "nothing delivered")
    ag.wait_stderr(r"rules=[A-Z_,]*TEST_REJECT.* action=reject")


@tap.test
def over_quarantine_score_is_held(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, CLEAN, subject="HOLD-ME please")
    t.eq((r.stage, r.code), ("end-of-data", 250))
    pf.wait_queue(r.queue_id, "hold")
    t.eq(pf.hold_queue(), [r.queue_id], "in the hold queue")
    text = pf.postcat(r.queue_id)
    t.match(r"(?m)^X-Authgate-Spam: yes$", text)
    t.match(r"(?m)^X-Authgate-Report: TEST_HOLD=11\.0", text)


@tap.test
def forged_score_headers_removed(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, CLEAN, headers=[("X-Authgate-Score", "-99.0/5.0"),
                                 ("X-Authgate-Spam", "no")])
    t.eq(r.code, 250)
    m = sink.wait_for(1, timeout=20)[-1]
    t.eq(len(m.get_all("X-Authgate-Score") or []), 1, "one score header")
    t.ok(not m["X-Authgate-Score"].startswith("-99"), "ours, not theirs")
    t.eq(m.get_all("X-Authgate-Spam") or [], [], "the forged flag is gone")


@tap.test
def authenticated_client_not_scored(t):
    dns, sink, ag, pf = setup(t)
    msg = H.make_message(frm="alice@test.example", to=RCPT[0],
                         subject="REJECT-ME from a user")
    r = pf.submit("alice@test.example", RCPT, msg)
    t.eq(r.code, 250, "internal mail is not scored or rejected")
    m = sink.wait_for(1, timeout=20)[-1]
    t.eq(m["X-Authgate-Score"], None)


if __name__ == "__main__":
    tap.main()
