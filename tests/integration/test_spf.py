#!/usr/bin/python3
"""test_spf.py - SPF end to end: a real Postfix, authgate, and the sender's
records served by the loopback DNS server.

The client address is posed with XCLIENT (every real connection comes from
127.0.0.1, which SPF libraries treat as localhost). Addresses are from
198.51.100.0/24 and 203.0.113.0/24; their reverse zones are answered by the
test server, not by libunbound's built-in local zones (authgate turns those
off when dns_servers is set).
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
GOOD = "198.51.100.25"  # authorized by example.org's record
BAD = "203.0.113.66"    # not authorized


def zone(dns):
    dns.add("example.org.", "TXT", "v=spf1 ip4:198.51.100.0/24 -all", ttl=1)
    dns.add("soft.example.org.", "TXT", "v=spf1 ip4:198.51.100.0/24 ~all",
            ttl=1)
    dns.add("exp.example.org.", "TXT",
            "v=spf1 ip4:198.51.100.0/24 -all exp=why.example.org", ttl=1)
    dns.add("why.example.org.", "TXT",
            "%{i} may not send for %{d}, see https://example.org/spf", ttl=1)
    dns.add("broken.example.org.", "TXT", "v=spf1 ip4:198.51.100.0/33 -all",
            ttl=1)
    # RFC 7208 3.3: strings of one record are glued without a separator
    dns.add("multi.example.org.", "TXT", ["v=spf1 ip4:198.51.10", "0.0/24 -all"],
            ttl=1)
    dns.add("mail.example.org.", "A", GOOD, ttl=1)
    dns.add("mail.example.org.", "TXT", "v=spf1 a -all", ttl=1)
    dns.add("flaky.example.org.", "TXT", "v=spf1 -all", ttl=1)
    dns.behave("flaky.example.org.", rcode="SERVFAIL")
    dns.add("silent.example.org.", "TXT", "v=spf1 -all", ttl=1)
    dns.behave("silent.example.org.", drop=True)


def setup(t, settings=None):
    dns = H.DnsServer().start()
    zone(dns)
    sink = H.Sink().start()
    conf = {"authserv_id": ID, "dns_timeout": "1s"}
    conf.update(settings or {})
    ag = H.Authgate(settings=conf, dns=dns).start()
    pf = H.Postfix(milter=ag, relay_port=sink).start()
    return dns, sink, ag, pf


def send(pf, frm, ip, helo="mail.example.org"):
    return pf.send(frm, ["bob@example.net"], H.make_message(frm=frm or
                   "x@example.org"), xclient={"ADDR": ip, "HELO": helo})


def ar(sink):
    return H.unfold(sink.wait_for(1, timeout=20)[-1]["Authentication-Results"])


@tap.test
def pass_and_fail(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, "alice@example.org", GOOD)
    t.eq(r.code, 250)
    t.match(r"^mx\.authgate\.test; spf=pass smtp\.mailfrom=alice@example\.org;"
            r" spf=pass smtp\.helo=mail\.example\.org; dkim=none;"
            r" dmarc=none header\.from=example\.org$", ar(sink))
    r = send(pf, "alice@example.org", BAD)
    t.eq(r.code, 250, "fail is annotated, not rejected, by default")
    m = sink.wait_for(2, timeout=20)[-1]
    t.match(r"spf=fail smtp\.mailfrom=alice@example\.org",
            H.unfold(m["Authentication-Results"]))
    t.match(r"spf=fail smtp\.helo=mail\.example\.org",
            H.unfold(m["Authentication-Results"]))
    # the record was prefetched at MAIL FROM and asked for once per TTL
    t.ok(dns.count("example.org.", "TXT") >= 1, "record looked up")
    ag.wait_stderr(r"ip=203\.0\.113\.66 .* spf=fail spf_helo=fail ")


@tap.test
def fail_reject_with_explanation(t):
    dns, sink, ag, pf = setup(t, {"spf_fail_action": "reject"})
    r = send(pf, "alice@exp.example.org", BAD)
    t.eq((r.stage, r.code), ("end-of-data", 550))
    t.eq(r.text, "5.7.23 203.0.113.66 may not send for exp.example.org, "
         "see https://example.org/spf")
    r = send(pf, "alice@example.org", BAD)
    t.eq(r.code, 550)
    t.eq(r.text, "5.7.23 203.0.113.66 is not allowed to send mail for "
         "example.org", "the default explanation")
    r = send(pf, "alice@exp.example.org", GOOD)
    t.eq(r.code, 250, "pass is delivered")


@tap.test
def softfail_and_permerror_actions(t):
    dns, sink, ag, pf = setup(t, {"spf_softfail_action": "tempfail",
                                  "spf_permerror_action": "reject"})
    r = send(pf, "alice@soft.example.org", BAD)
    t.eq(r.code, 451, "softfail -> tempfail")
    t.match(r"^4\.7\.23 ", r.text)
    r = send(pf, "alice@broken.example.org", GOOD)
    t.eq(r.code, 550, "permerror -> reject")
    t.match(r"^5\.7\.24 SPF record of broken\.example\.org is broken: .*CIDR",
            r.text)


@tap.test
def received_spf_header(t):
    dns, sink, ag, pf = setup(t, {"spf_received_header": True})
    send(pf, "alice@example.org", GOOD)
    m = sink.wait_for(1, timeout=20)[0]
    t.match(r"^pass \(mx\.authgate\.test: domain of alice@example\.org "
            r"designates 198\.51\.100\.25 as permitted sender\) "
            r"receiver=mx\.authgate\.test; client-ip=198\.51\.100\.25; "
            r"envelope-from=alice@example\.org; helo=mail\.example\.org; "
            r"identity=mailfrom;$", m["Received-SPF"])
    # headers top down: our A-R, then Received-SPF, then the MTA's
    names = [line.split(b":")[0] for line in m.raw.split(b"\r\n")
             if line and not line.startswith((b"X-Sink-", b"X-Authgate-",
                                              b" ", b"\t"))]
    t.eq(names[:3], [b"Authentication-Results", b"Received-SPF",
                     b"Received"])


@tap.test
def multi_string_record(t):
    dns, sink, ag, pf = setup(t)
    send(pf, "alice@multi.example.org", GOOD)
    t.match(r"spf=pass smtp\.mailfrom=alice@multi\.example\.org", ar(sink))
    send(pf, "alice@multi.example.org", BAD)
    m = sink.wait_for(2, timeout=20)[-1]
    t.match(r"spf=fail smtp\.mailfrom=alice@multi\.example\.org",
            H.unfold(m["Authentication-Results"]))


@tap.test
def null_sender_uses_helo(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, "", GOOD, helo="mail.example.org")
    t.eq(r.code, 250)
    t.match(r"spf=pass smtp\.mailfrom=postmaster@mail\.example\.org",
            ar(sink))


@tap.test
def temperror_on_servfail(t):
    dns, sink, ag, pf = setup(t)
    r = send(pf, "alice@flaky.example.org", BAD)
    t.eq(r.code, 250, "on_dns_error = accept by default")
    t.match(r"spf=temperror reason=\"DNS servfail for flaky\.example\.org\" "
            r"smtp\.mailfrom=alice@flaky\.example\.org", ar(sink))


@tap.test
def temperror_tempfails_when_asked(t):
    dns, sink, ag, pf = setup(t, {"on_dns_error": "tempfail"})
    r = send(pf, "alice@flaky.example.org", BAD)
    t.eq((r.code, r.text),
         (451, "4.7.1 temporary DNS failure, try again later"))


@tap.test
def silent_server_costs_dns_timeout(t):
    dns, sink, ag, pf = setup(t)
    t0 = time.monotonic()
    r = send(pf, "alice@silent.example.org", BAD)
    took = time.monotonic() - t0
    t.eq(r.code, 250)
    t.match(r"spf=temperror reason=\"DNS timeout for silent\.example\.org\"",
            ar(sink))
    # our 1 s deadline, not libunbound's ~17 s of retransmissions
    t.ok(took < 10, "answered in %.1f s" % took)


@tap.test
def internal_clients_not_checked(t):
    dns, sink, ag, pf = setup(t)
    r = pf.submit("alice@test.example", ["bob@example.net"],
                  H.make_message(frm="alice@test.example"))
    t.eq(r.code, 250)
    t.eq(ar(sink), "%s; none" % ID, "no SPF for an authenticated client")
    t.eq(dns.count("test.example.", "TXT"), 0, "and no query")


if __name__ == "__main__":
    tap.main()
