#!/usr/bin/python3
"""test_dmarc_mta.py - DMARC enforcement end to end: the private Postfix,
authgate as its milter, the loopback DNS server and the SMTP sink.

    /usr/bin/python3 tests/integration/test_dmarc_mta.py [NAME...]

Outside clients are posed with XCLIENT (ADDR 203.0.113.66, in no SPF
record here; 198.51.100.25 is in reject.example's).  The messages carry no
DKIM signature.  authgate runs with its defaults for DMARC (dmarc_enforce =
yes, dmarc_reject_mode = analysis: RFC 9989 7.4 forbids rejecting on
p=reject alone, so a failing message is rejected only when nothing shows
it was relayed - no List-Id/List-Post, no signature - and quarantined
otherwise) and SPF (a fail is only annotated).  Quarantine is Postfix's
hold queue.  The A-R of every delivered or held message is checked.

A test whose name ends in "# TODO reason" shows a known authgate bug: it
asserts what RFC 9989 asks and is expected to fail until the bug is fixed
(then it passes, and the run fails until the TODO is removed).
"""
import os
import re
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import tap  # noqa: E402

ID = "mx.authgate.test"
OUTSIDE = "203.0.113.66"      # authorized by no SPF record here
GOOD = "198.51.100.25"        # authorized by reject.example's SPF record
RCPT = ["bob@example.net"]


def zone(dns):
    dns.add("_dmarc.reject.example.", "TXT", "v=DMARC1; p=reject", ttl=1)
    dns.add("reject.example.", "TXT", "v=spf1 ip4:198.51.100.0/24 -all",
            ttl=1)
    dns.add("reject.example.", "A", "192.0.2.80", ttl=1)
    dns.add("_dmarc.quar.example.", "TXT", "v=DMARC1; p=quarantine", ttl=1)
    dns.add("_dmarc.testr.example.", "TXT", "v=DMARC1; p=reject; t=y", ttl=1)
    dns.add("_dmarc.testq.example.", "TXT", "v=DMARC1; p=quarantine; t=y",
            ttl=1)
    # a sender whose own _dmarc lookups fail (the TODO test)
    dns.add("evil.test.", "TXT", "v=spf1 ip4:203.0.113.0/24 -all", ttl=1)
    dns.behave("_dmarc.evil.test.", rcode="SERVFAIL")


def setup(t, settings=None):
    dns = H.DnsServer().start()
    zone(dns)
    sink = H.Sink().start()
    conf = {"authserv_id": ID, "dns_timeout": "2s"}
    conf.update(settings or {})
    ag = H.Authgate(settings=conf, dns=dns).start()
    pf = H.Postfix(milter=ag, relay_port=sink).start()
    return dns, sink, ag, pf


def spoof(frm, headers=(), subject="DMARC test"):
    return H.make_message(frm=frm, to=RCPT[0], subject=subject,
                          headers=list(headers))


def send(pf, mail_from, message, ip=OUTSIDE, helo="mail.outside.test"):
    return pf.send(mail_from, RCPT, message,
                   xclient={"ADDR": ip, "HELO": helo})


def delivered_ar(sink, n=1):
    m = sink.wait_for(n, timeout=20)[-1]
    ars = m.get_all("Authentication-Results") or []
    return m, [H.unfold(a) for a in ars]


def held(t, pf, r):
    """the message was accepted into the hold queue -> its text"""
    t.eq((r.stage, r.code), ("end-of-data", 250), "accepted (to be held)")
    pf.wait_queue(r.queue_id, "hold")
    t.eq(pf.hold_queue(), [r.queue_id], "in the hold queue")
    return pf.postcat(r.queue_id)


def ar_of(text):
    """the unfolded Authentication-Results of a postcat/message text"""
    m = re.search(r"^Authentication-Results: (.*(?:\n[ \t].*)*)", text, re.M)
    return H.unfold(m.group(1)) if m else None


def nothing_delivered(t, sink):
    time.sleep(0.5)
    t.eq(sink.messages(), [], "nothing delivered")


@tap.test
def reject_policy_spoof_rejected(t):
    """p=reject, spoofed From: from an outside client, SPF fail (MAIL FROM
    in the same domain) and SPF none (another domain), no signature, no
    list headers: 7.4's analysis finds nothing relayed -> 550 5.7.1."""
    dns, sink, ag, pf = setup(t)
    r = send(pf, "ceo@reject.example", spoof("CEO <ceo@reject.example>"))
    t.eq((r.stage, r.code), ("end-of-data", 550), "SPF fail: rejected")
    t.eq(r.text, "5.7.1 Email rejected per DMARC policy for reject.example")
    r = send(pf, "x@attacker.test", spoof("CEO <ceo@reject.example>"))
    t.eq((r.stage, r.code), ("end-of-data", 550), "SPF none: rejected")
    t.eq(r.text, "5.7.1 Email rejected per DMARC policy for reject.example")
    nothing_delivered(t, sink)
    t.eq(pf.hold_queue(), [], "nothing held")
    ag.wait_stderr(r"ip=203\.0\.113\.66 .*dmarc=fail")


@tap.test
def reject_policy_list_mail_held(t):
    """the same spoof with a List-Id header: it may come through a mailing
    list, so p=reject is treated as quarantine (RFC 9989 7.4) -> held."""
    dns, sink, ag, pf = setup(t)
    r = send(pf, "x@attacker.test", spoof(
        "CEO <ceo@reject.example>",
        headers=[("List-Id", "Discussion <discuss.lists.example.net>")]))
    text = held(t, pf, r)
    t.eq(ar_of(text), "%s; spf=none smtp.mailfrom=x@attacker.test; "
         "spf=none smtp.helo=mail.outside.test; dkim=none; "
         "dmarc=fail (p=reject dis=quarantine) header.from=reject.example "
         "policy.dmarc=reject" % ID)
    t.contains(text, "List-Id: Discussion")
    nothing_delivered(t, sink)


@tap.test
def quarantine_policy_held(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, "x@attacker.test", spoof("Pay <billing@quar.example>"))
    text = held(t, pf, r)
    t.match(r"; dmarc=fail \(p=quarantine dis=quarantine\) "
            r"header\.from=quar\.example policy\.dmarc=quarantine$",
            ar_of(text))
    t.diag(pf.wait_log(r"%s: milter-hold: END-OF-MESSAGE" % r.queue_id)[0])
    nothing_delivered(t, sink)


@tap.test
def test_mode_reject_held(t):
    """p=reject; t=y: one level below (RFC 9989 4.7 t) -> quarantine"""
    dns, sink, ag, pf = setup(t)
    r = send(pf, "x@attacker.test", spoof("CEO <ceo@testr.example>"))
    text = held(t, pf, r)
    t.match(r"; dmarc=fail \(p=reject t=y dis=quarantine\) "
            r"header\.from=testr\.example policy\.dmarc=quarantine$",
            ar_of(text))
    nothing_delivered(t, sink)


@tap.test
def test_mode_quarantine_delivered(t):
    """p=quarantine; t=y -> none: delivered, the failure annotated"""
    dns, sink, ag, pf = setup(t)
    r = send(pf, "x@attacker.test", spoof("Pay <billing@testq.example>"))
    t.eq((r.stage, r.code), ("end-of-data", 250))
    m, ars = delivered_ar(sink)
    t.eq(len(ars), 1, "one A-R")
    t.match(r"; dmarc=fail \(p=quarantine t=y dis=none\) "
            r"header\.from=testq\.example policy\.dmarc=none$", ars[0])
    t.eq(pf.hold_queue(), [], "nothing held")


@tap.test
def aligned_spf_pass_delivered(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, "bounce@reject.example", spoof("CEO <ceo@reject.example>"),
             ip=GOOD)
    t.eq((r.stage, r.code), ("end-of-data", 250))
    m, ars = delivered_ar(sink)
    t.eq(ars, ["%s; spf=pass smtp.mailfrom=bounce@reject.example; "
               "spf=none smtp.helo=mail.outside.test; dkim=none; "
               "dmarc=pass (p=reject dis=none) header.from=reject.example "
               "policy.dmarc=reject" % ID])


@tap.test
def enforce_off_delivered(t):
    """dmarc_enforce = no: the result is only written into the A-R"""
    dns, sink, ag, pf = setup(t, {"dmarc_enforce": False})
    r = send(pf, "ceo@reject.example", spoof("CEO <ceo@reject.example>"))
    t.eq((r.stage, r.code), ("end-of-data", 250))
    m, ars = delivered_ar(sink)
    t.eq(ars, ["%s; spf=fail smtp.mailfrom=ceo@reject.example; "
               "spf=none smtp.helo=mail.outside.test; dkim=none; "
               "dmarc=fail (p=reject dis=none) header.from=reject.example "
               "policy.dmarc=reject" % ID])
    t.eq(pf.hold_queue(), [], "nothing held")


@tap.test
def authenticated_client_not_evaluated(t):
    """SMTP AUTH makes the client internal: its From: is its business"""
    dns, sink, ag, pf = setup(t)
    r = pf.submit("alice@test.example", RCPT,
                  spoof("CEO <ceo@reject.example>"))
    t.eq((r.stage, r.code), ("end-of-data", 250))
    m, ars = delivered_ar(sink)
    t.eq(pf.hold_queue(), [], "nothing held")
    t.eq(dns.count("_dmarc.reject.example.", "TXT"), 0,
         "no DMARC lookup for an authenticated client")
    t.eq(ars, ["%s; none" % ID], "no SPF, no DMARC for an internal client")


@tap.test
def identifier_walk_servfail_no_bypass(t):
    """A spoofer with SPF pass for its own MAIL FROM domain, whose own
    _dmarc lookups fail: example of a p=reject domain must still be
    rejected (RFC 9989 7.4 analysis: nothing relayed)."""
    dns, sink, ag, pf = setup(t)
    r = send(pf, "x@evil.test", spoof("CEO <ceo@reject.example>"))
    try:
        t.eq((r.stage, r.code), ("end-of-data", 550), "rejected")
    finally:
        if r.code == 250:
            m, ars = delivered_ar(sink)
            t.diag("delivered with: %s" % ars)


@tap.test
def from_domain_cap_no_bypass(t):
    """From: eight decoys (authgate evaluates eight From: domains), then
    the p=reject domain: the evaluation stops at the cap (RFC 9989 11.5
    allows a cap) but must not end in plain delivery: the p=reject domain
    behind the decoys was spoofed."""
    dns, sink, ag, pf = setup(t)
    for i in range(1, 9):
        dns.add("_dmarc.decoy%d.test." % i, "TXT", "v=DMARC1; p=none", ttl=1)
    frm = ", ".join(["x@decoy%d.test" % i for i in range(1, 9)]
                    + ["ceo@reject.example"])
    r = send(pf, "x@attacker.test", spoof(
        frm, headers=[("Sender", "x@decoy1.test")]))
    if r.code == 250 and not pf.hold_queue():
        m, ars = delivered_ar(sink)
        t.diag("delivered with: %s" % ars)
    t.ok(r.code == 550 or pf.hold_queue(), "rejected or held",
         got=(r.stage, r.code, r.text))


def main():
    """tap.main(), but a TODO test's failure is expected (and its pass is
    not: the bug is fixed, take the TODO off)."""
    argv = sys.argv[1:]
    selected = [x for x in tap._tests
                if not argv or any(a in x[0] for a in argv)]
    print("1..%d" % len(selected), flush=True)
    bad = 0
    for num, (name, fn, skip, timeout) in enumerate(selected, 1):
        ok = tap._run_one(num, name, fn, skip, timeout)
        todo = " # TODO " in name
        if ok == todo:
            bad += 1
            if ok:
                tap.diag("passes although marked TODO: remove the TODO")
        if tap._interrupted:
            bad += 1
            break
    if bad:
        tap.diag("failed %d/%d tests" % (bad, len(selected)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
