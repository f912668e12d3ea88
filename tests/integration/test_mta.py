#!/usr/bin/python3
"""test_mta.py - authgate behind a real Postfix and a real Sendmail.

What a mail admin sees end to end: our Authentication-Results header at
the recipient, forged ones (our authserv-id) gone and foreign ones kept, a
reject or tempfail from the verdict reaching the SMTP client with our text,
an SMTP AUTH client treated as internal, and the MTA's milter_default_action
when authgate is down. The verdicts here come from the failure classes
(an injected out-of-memory with on_internal_error = reject/tempfail); the
checks (SPF, DKIM, DMARC, rules) add their own end-to-end tests.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import tap  # noqa: E402

ID = "mx.authgate.test"


def forged_message():
    return H.make_message(
        frm="alice@example.org", to="bob@example.net", subject="forged",
        headers=[
            ("Authentication-Results", "%s; spf=pass smtp.mailfrom=x" % ID),
            ("Authentication-Results", "foreign.example; spf=fail"),
            ("Authentication-Results",
             "(comment)\r\n\t\"MX.AUTHGATE.TEST\" ; dkim=pass"),
        ])


def setup(t, mta="postfix", settings=None, env=None, **mta_kw):
    sink = H.Sink().start()
    # these tests are about the MTA path, not SPF
    conf = {"authserv_id": ID, "spf_enable": False, "dmarc_enable": False}
    conf.update(settings or {})
    ag = H.Authgate(settings=conf, env=env).start()
    cls = H.Postfix if mta == "postfix" else H.Sendmail
    m = cls(milter=ag, relay_port=sink, **mta_kw).start()
    return sink, ag, m


def ar_headers(msg):
    return [H.unfold(v) for v in msg.get_all("Authentication-Results") or []]


@tap.test
def postfix_ar_added(t):
    sink, ag, pf = setup(t)
    r = pf.send("alice@example.org", ["bob@example.net"], H.make_message(),
                xclient={"ADDR": "198.51.100.7", "HELO": "client.example"})
    t.eq((r.stage, r.code), ("end-of-data", 250), "accepted")
    m = sink.wait_for(1, timeout=20)[0]
    t.eq(ar_headers(m), ["%s; dkim=none" % ID], "one A-R, ours")
    # our header is the first line of the message (inserted at the top)
    first = m.raw.split(b"\r\n")
    first = [x for x in first if not x.startswith(b"X-Sink-")][0]
    t.eq(first, b"Authentication-Results: %s;" % ID.encode())
    ag.wait_stderr(r"ip=198\.51\.100\.7 helo=client\.example "
                   r"from=<alice@example\.org> rcpts=1 internal=no")


@tap.test
def postfix_forged_removed_foreign_kept(t):
    sink, ag, pf = setup(t)
    r = pf.send("alice@example.org", ["bob@example.net"], forged_message(),
                xclient={"ADDR": "198.51.100.7"})
    t.eq(r.code, 250)
    m = sink.wait_for(1, timeout=20)[0]
    t.eq(sorted(ar_headers(m)),
         sorted(["%s; dkim=none" % ID, "foreign.example; spf=fail"]),
         "ours replaced, the foreign one kept")
    t.not_contains(m.raw.decode(), "MX.AUTHGATE.TEST")


@tap.test
def postfix_reject_reaches_client(t):
    # an internal error with on_internal_error = reject: 550 with our text
    sink, ag, pf = setup(t, settings={"on_internal_error": "reject"},
                         env={"AUTHGATE_TEST_ARENA_FAIL": "3"})
    r = pf.send("alice@example.org", ["bob@example.net"], H.make_message(),
                xclient={"ADDR": "198.51.100.7"})
    t.eq((r.stage, r.code), ("end-of-data", 550))
    t.match(r"5\.7\.1 local problem, message refused", r.text)
    t.eq(sink.messages(), [], "nothing delivered")


@tap.test
def postfix_tempfail_reaches_client(t):
    sink, ag, pf = setup(t, env={"AUTHGATE_TEST_ARENA_FAIL": "3"})
    r = pf.send("alice@example.org", ["bob@example.net"], H.make_message(),
                xclient={"ADDR": "198.51.100.7"})
    t.eq((r.stage, r.code), ("end-of-data", 451))
    t.match(r"4\.7\.1 temporary local problem, try again later", r.text)
    t.eq(sink.messages(), [])


@tap.test
def postfix_sasl_client_is_internal(t):
    sink, ag, pf = setup(t)
    r = pf.submit("alice@test.example", ["bob@example.net"],
                  H.make_message(frm="alice@test.example"))
    t.eq(r.code, 250, "submitted with STARTTLS + AUTH")
    sink.wait_for(1, timeout=20)
    line = ag.wait_stderr(r"auth=alice@test\.example internal=yes")
    t.ok(line, "authenticated client is internal")
    t.not_contains(ag.stderr(), "alice@test.example internal=no")


@tap.test
def postfix_milter_down_tempfail(t):
    sink, ag, pf = setup(t, default_action="tempfail")
    ag.stop()
    r = pf.send("alice@example.org", ["bob@example.net"], H.make_message())
    t.eq(r.code // 100 if r.code else None, 4, "milter_default_action=tempfail")
    t.eq(sink.messages(), [])


@tap.test
def postfix_milter_down_accept(t):
    sink, ag, pf = setup(t, default_action="accept")
    ag.stop()
    r = pf.send("alice@example.org", ["bob@example.net"], H.make_message())
    t.eq(r.code, 250, "milter_default_action=accept")
    m = sink.wait_for(1, timeout=20)[0]
    t.eq(ar_headers(m), [], "delivered without our header")


@tap.test
def postfix_injected_mail_goes_through_milter(t):
    sink, ag, pf = setup(t)
    pf.inject(H.make_message(frm="root@mta.test.example"),
              ["bob@example.net"])
    m = sink.wait_for(1, timeout=30)[0]
    t.eq(ar_headers(m), ["%s; none" % ID], "non_smtpd_milters")


@tap.test
def sendmail_ar_added_forged_removed(t):
    sink, ag, sm = setup(t, mta="sendmail")
    r = sm.send("alice@example.org", ["bob@example.net"], forged_message())
    t.eq(r.code, 250)
    m = sink.wait_for(1, timeout=30)[0]
    t.eq(sorted(ar_headers(m)),
         sorted(["%s; none" % ID, "foreign.example; spf=fail"]))


@tap.test
def sendmail_reject_reaches_client(t):
    sink, ag, sm = setup(t, mta="sendmail",
                         settings={"on_internal_error": "reject"},
                         env={"AUTHGATE_TEST_ARENA_FAIL": "3"})
    r = sm.send("alice@example.org", ["bob@example.net"], H.make_message())
    t.eq((r.stage, r.code), ("end-of-data", 550))
    t.match(r"5\.7\.1 local problem, message refused", r.text)


@tap.test
def sendmail_sasl_client_is_internal(t):
    sink, ag, sm = setup(t, mta="sendmail")
    r = sm.submit("alice@test.example", ["bob@example.net"],
                  H.make_message(frm="alice@test.example"))
    t.eq(r.code, 250)
    ag.wait_stderr(r"auth=alice@test\.example internal=yes")


if __name__ == "__main__":
    tap.main()
