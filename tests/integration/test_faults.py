#!/usr/bin/python3
"""test_faults.py - fault injection: authgate behind the private Postfix
(or driven by tests/tools/miltc) while DNS, keys, config, the MTA, memory,
the file descriptor table or the disk misbehave.

Every case states its outcome in its docstring (where the outcome is a
setting's behaviour, authgate.conf(5) says so, and the case cites it), and
every case loses nothing: each message it sends is accepted (and is then
at the sink, exactly once), rejected with a 5xx code, or tempfailed with a
4xx code (and not at the sink; where the case is about recovery, the
client retries it until it is accepted).  Ledger below keeps that account.

Already covered elsewhere, so not repeated here:
  SERVFAIL/no answer for SPF -> temperror, accept or tempfail
    (test_spf.py: temperror_on_servfail, temperror_tempfails_when_asked,
    silent_server_costs_dns_timeout); for DMARC (test_dmarc_mailauth.py,
    test_dmarc_mta.py); each key-record error at verification with a fake
    resolver (tests/unit/test_dkim.c: test_key_records);
  authgate-keys check: every record error, with its message
    (tests/cli/test_keys.sh);
  milter-level abort and hang-up at two offsets, good and broken config
    on SIGHUP, 200 SIGHUPs in a burst, one allocation failure
    (tests/cli/test_daemon.sh); an allocation failure reaching the SMTP
    client as 451/550 through Postfix and Sendmail, authgate down with
    milter_default_action tempfail/accept (test_mta.py); a broken rules
    file on reload (test_metrics.py).
"""
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dkim_kit as K  # noqa: E402
import harness as H  # noqa: E402
import tap  # noqa: E402

import dkim  # noqa: E402  (python3-dkim: signs the "foreign" mail)

ID = "mx.authgate.test"
OUTSIDE = "198.51.100.25"          # authorized by every SPF record here
RCPT = ["bob@example.net"]
BUILD = os.environ.get("AUTHGATE_BUILDDIR") or os.path.join(H.REPO,
                                                            "build")
MILTC = os.path.join(BUILD, "tests", "tools", "miltc")
KEYS = os.path.join(BUILD, "keys", "authgate-keys")
ERROR_LINE = r"\b(error|warning): "


# ---------------------------------------------------------------------------
# helpers


class Ledger:
    """Every message a test sends, by a token in its Subject, and what the
    client was told; settle() checks that none was lost or duplicated."""

    def __init__(self, t, pf, sink):
        self.t, self.pf, self.sink = t, pf, sink
        self.final = {}            # token -> last SendResult
        self.n = 0

    def send(self, frm="alice@example.org", ip=OUTSIDE, submit=False,
             message=None, token=None, retry_until=0, **kw):
        """One message (Subject: <token>); with retry_until, a 4xx is
        retried every 0.3 s until that many seconds have passed, as an
        MTA would (later)."""
        if token is None:
            self.n += 1
            token = "%s-%d" % (self.t.name, self.n)
        msg = message or H.make_message(frm=frm, to=RCPT[0], subject=token,
                                        **kw)
        end = time.monotonic() + retry_until
        while True:
            if submit:
                r = self.pf.submit(frm, RCPT, msg)
            else:
                r = self.pf.send(frm, RCPT, msg,
                                 xclient={"ADDR": ip,
                                          "HELO": "mail.example.org"})
            if not (r.code and 400 <= r.code < 500) or \
                    time.monotonic() > end:
                break
            time.sleep(0.3)
        self.final[token] = r
        return token, r

    def settle(self, timeout=30):
        """Each message has a code (2xx, 4xx, 5xx: never a lost
        connection); the 2xx ones are at the sink exactly once, the others
        not at all; Postfix's queue is empty. -> {token: SinkMessage}"""
        t = self.t
        for tok, r in self.final.items():
            t.ok(r.code is not None and r.stage == "end-of-data" or
                 r.code and r.code >= 400, "%s: the client got a code"
                 % tok, got=r)
        ok = {k for k, r in self.final.items() if r.ok}
        H.wait_until(lambda: len(self.sink.messages()) >= len(ok), timeout,
                     "sink has %d messages" % len(ok))
        time.sleep(0.2)
        got = {}
        for m in self.sink.messages():
            tok = m["Subject"]
            t.ok(tok not in got, "%s delivered once" % tok)
            got[tok] = m
        t.eq(sorted(got), sorted(ok), "delivered = accepted")
        H.wait_until(lambda: not any(self.pf.queue_ids(q) for q in
                                     ("incoming", "active", "deferred",
                                      "hold")), 10, "postfix queue empty")
        return got


def ar(m):
    return " ".join(H.unfold(v) for v in m.get_all("Authentication-Results"))


def stack(t, settings=None, dns=None, env=None, pf_main=None):
    dns = dns or H.DnsServer().start()
    sink = H.Sink().start()
    conf = {"authserv_id": ID, "dns_timeout": "1s", "dns_error_ttl": "0s"}
    conf.update(settings or {})
    ag = H.Authgate(settings=conf, dns=dns, env=env).start()
    pf = H.Postfix(milter=ag, relay_port=sink, main=pf_main).start()
    return dns, sink, ag, pf, Ledger(t, pf, sink)


def domain_zone(dns, domain, key=None, selector="sel", dmarc="p=reject"):
    """SPF (OUTSIDE may send), a DMARC record and a DKIM key for domain."""
    dns.add(domain + ".", "TXT", "v=spf1 ip4:198.51.100.0/24 -all", ttl=1)
    if dmarc:
        dns.add("_dmarc.%s." % domain, "TXT", "v=DMARC1; " + dmarc, ttl=1)
    if key is not None:
        dns.add("%s._domainkey.%s." % (selector, domain), "TXT",
                key.txt, ttl=1)


def signed(key, domain, selector="sel", frm=None, subject="signed"):
    """A message From: frm (default alice@domain) DKIM-signed by key as
    d=domain s=selector (python3-dkim, relaxed/relaxed)."""
    msg = H.make_message(frm=frm or "alice@" + domain, to=RCPT[0],
                         subject=subject)
    sig = dkim.sign(msg, selector.encode(), domain.encode(),
                    key.dkimpy_private(), canonicalize=(b"relaxed",
                                                        b"relaxed"),
                    include_headers=[b"from", b"to", b"subject", b"date",
                                     b"message-id"])
    return sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + msg


def rsa_key():
    return K.make_key("rsa2048", "faults.example", "sel")


def fd_count(pid):
    try:
        return len(os.listdir("/proc/%d/fd" % pid))
    except OSError:
        return -1


def settled_fd_count(pid, quiet=1.0, timeout=30):
    """fd_count once it has not changed for quiet seconds: the daemon
    listens before its milter thread has made its own descriptors (under
    ASan on a loaded machine, seconds before)."""
    last, since = fd_count(pid), time.monotonic()
    deadline = since + timeout
    while time.monotonic() < deadline:
        time.sleep(0.1)
        n = fd_count(pid)
        if n != last:
            last, since = n, time.monotonic()
        elif time.monotonic() - since >= quiet:
            break
    return last


def nofile_limit(pid):
    with open("/proc/%d/limits" % pid) as f:
        m = re.search(r"^Max open files\s+(\d+)\s+(\d+)", f.read(), re.M)
    return int(m.group(1)), int(m.group(2))


def errors(ag, allowed=()):
    """authgate's error/warning lines not matching any allowed regex."""
    return [ln for ln in ag.grep(ERROR_LINE)
            if not any(re.search(a, ln) for a in allowed)]


def miltc(ag, msg_path, *args, timeout=30):
    r = subprocess.run([MILTC] + [str(a) for a in args] +
                       ["inet:%d@127.0.0.1" % ag.port, msg_path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=timeout, check=False)
    return r.returncode, r.stdout.decode(errors="replace"), \
        r.stderr.decode(errors="replace")


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        text = r.read().decode()
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1])
            for ln in text.splitlines() if ln and not ln.startswith("#")}


def signing_conf(t, key, domain="faults.example"):
    """KeyTable/SigningTable for key (0600, owned by the daemon's user)."""
    d = os.path.join(t.tmpdir, "keys")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    path = key.write(d, owner="nobody" if os.getuid() == 0 else None,
                     name="sel.pem")
    kt, st = os.path.join(d, "key_table"), os.path.join(d, "signing_table")
    with open(kt, "w") as f:
        f.write("k1 %s:%s:%s\n" % (domain, key.selector, path))
    with open(st, "w") as f:
        f.write("*@%s k1\n" % domain)
    return {"key_table": kt, "signing_table": "refile:" + st}, path


def dkim_verifies(raw, key):
    """python3-dkim verifies the top signature against key's record."""
    lf = raw.split(b"\r\n\r\n", 1)
    head = b"\r\n".join(ln for ln in lf[0].split(b"\r\n")
                        if not ln.startswith(b"X-Sink-"))
    txt = key.txt.encode()
    return dkim.verify(head + b"\r\n\r\n" + lf[1],
                       dnsfunc=lambda name, timeout=5: txt)


# ---------------------------------------------------------------------------
# DNS


@tap.test
def dns_server_stopped_mid_test(t):
    """The DNS server stops between two messages.  Outcome (authgate.conf(5)
    on_dns_error, dns_timeout): the next message is accepted with
    spf=temperror and dmarc=temperror (on_dns_error = accept); after a
    reload with on_dns_error = tempfail the next one gets 451 4.7.1
    "temporary DNS failure"; once the server is back, the client's retry
    of that message is accepted with spf=pass.  The daemon stays up."""
    dns, sink, ag, pf, led = stack(t)
    for d in ("example.org", "second.example", "third.example"):
        domain_zone(dns, d)
    tok1, r = led.send("alice@example.org")
    t.eq(r.code, 250)
    port = dns.port
    dns.stop()
    t0 = time.monotonic()
    tok2, r = led.send("carol@second.example")
    t.eq(r.code, 250, "on_dns_error = accept")
    t.diag("message with the DNS server down: %.2f s"
           % (time.monotonic() - t0))
    ag.reload(on_dns_error="tempfail")
    ag.wait_stderr("configuration reloaded")
    tok3, r = led.send("dave@third.example")
    t.eq((r.code, r.text), (451, "4.7.1 temporary DNS failure, "
                            "try again later"))
    back = H.DnsServer(port=port).start()
    for d in ("example.org", "second.example", "third.example"):
        domain_zone(back, d)
    tok3, r = led.send("dave@third.example", token=tok3, retry_until=10)
    t.eq(r.code, 250, "the retry after the server came back")
    got = led.settle()
    t.match(r"spf=pass smtp\.mailfrom=alice@example\.org", ar(got[tok1]))
    t.match(r"spf=temperror .*smtp\.mailfrom=carol@second\.example",
            ar(got[tok2]))
    t.match(r"dmarc=temperror", ar(got[tok2]))
    t.match(r"spf=pass smtp\.mailfrom=dave@third\.example", ar(got[tok3]))
    t.ok(ag.alive(), "authgate alive")


@tap.test
def dns_answers_after_the_deadline(t):
    """Every answer for one domain comes 1.6 s after the question, past
    dns_timeout = 1s.  Outcome (dns_timeout: "a lookup that times out is a
    temporary error of the check that made it"): three messages sent at
    once each get their answer in about dns_timeout, accepted with
    spf=temperror (on_dns_error = accept); the late answers arrive after
    their messages have ended and harm nothing (a message after them is
    accepted, no error is logged); once the server is quick again the
    domain gets spf=pass."""
    dns, sink, ag, pf, led = stack(t)
    domain_zone(dns, "late.example")
    domain_zone(dns, "example.org")
    dns.behave("late.example.", delay=1.6)
    dns.behave("*.late.example.", delay=1.6)
    took, toks = [], []

    def one():
        t0 = time.monotonic()
        tok, r = led.send("x@late.example")
        took.append((time.monotonic() - t0, r.code))
        toks.append(tok)
    threads = [threading.Thread(target=one) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    t.diag("times and codes: %s" % took)
    t.eq([c for _, c in took], [250] * 3)
    t.ok(max(s for s, _ in took) < 5, "answered in about dns_timeout",
         got=took)
    time.sleep(1.5)                   # the late answers arrive now
    tok_after, r = led.send("alice@example.org")
    t.eq(r.code, 250)
    dns.behave("late.example.")
    dns.behave("*.late.example.")
    tok_ok, r = led.send("y@late.example")
    t.eq(r.code, 250)
    got = led.settle()
    for tok in toks:
        t.match(r"spf=temperror reason=\"DNS timeout for late\.example\"",
                ar(got[tok]))
    t.match(r"spf=pass", ar(got[tok_after]))
    t.match(r"spf=pass smtp\.mailfrom=y@late\.example", ar(got[tok_ok]))
    t.eq(errors(ag), [], "nothing logged as an error")


MODES = {                            # domain -> DnsServer.behave()
    "servfail.example": {"rcode": "SERVFAIL"},
    "garbage.example": {"garbage": True},
    "cut.example": {"cut": 60},
    "tc.example": {"truncate": True},
}


@tap.test
def dns_servfail_truncated_garbage(t):
    """Every name of a domain answers SERVFAIL, garbage bytes, a datagram
    cut inside the answer, or TC=1 (then the full answer over TCP), for
    its SPF record, its DKIM key and its DMARC record (p=reject).  The
    message is signed by the domain and sent from an address its SPF
    allows.  Outcome: TC -> the answer is fetched over TCP and everything
    passes; SERVFAIL, garbage, cut -> spf, dkim and dmarc temperror, and
    (authgate.conf(5) on_dns_error, DKIM and DMARC sections: temperror is
    handled by on_dns_error) the message is accepted, not rejected for its
    p=reject; with on_dns_error = tempfail they get 451 4.7.1, and the
    client's retries are accepted with dmarc=pass once DNS answers."""
    dns, sink, ag, pf, led = stack(t)
    key = rsa_key()
    for d, how in MODES.items():
        domain_zone(dns, d, key)
        dns.behave(d + ".", **how)
        dns.behave("*.%s." % d, **how)
    toks = {}
    for d in MODES:
        toks[d], r = led.send("alice@" + d, message=signed(
            key, d, subject="%s-%s" % (t.name, d)),
            token="%s-%s" % (t.name, d))
        t.eq(r.code, 250, d)
    ag.reload(on_dns_error="tempfail")
    ag.wait_stderr("configuration reloaded")
    retry = {}
    for d in MODES:
        if d == "tc.example":
            continue
        tok = "%s-%s-again" % (t.name, d)
        retry[d], r = led.send("alice@" + d, token=tok, message=signed(
            key, d, subject=tok))
        t.eq((d, r.code, r.text), (d, 451, "4.7.1 temporary DNS failure, "
                                   "try again later"))
    for d in retry:
        dns.behave(d + ".")
        dns.behave("*.%s." % d)
    for d, tok in retry.items():
        _, r = led.send("alice@" + d, token=tok, retry_until=10,
                        message=signed(key, d, subject=tok))
        t.eq((d, r.code), (d, 250), "retried once DNS answers")
    got = led.settle()
    t.match(r"spf=pass .*dkim=pass .*dmarc=pass", ar(got[toks["tc.example"]]))
    t.ok(dns.count("_dmarc.tc.example.", proto="tcp") >= 1, "TCP used")
    for d in ("servfail.example", "garbage.example", "cut.example"):
        a = ar(got[toks[d]])
        for method in ("spf", "dkim", "dmarc"):
            t.match(r"\b%s=temperror" % method, a)
        t.match(r"dkim=pass .*dmarc=pass", ar(got[retry[d]]))
    t.eq(errors(ag), [], "nothing logged as an error")


# ---------------------------------------------------------------------------
# keys


@tap.test
def verify_key_record_missing_or_malformed(t):
    """External mail signed with selectors whose key record is missing,
    malformed, revoked (p=) or of the wrong type.  Outcome (authgate.conf(5)
    DKIM: "a missing, revoked (empty p=), malformed or mismatched key gives
    permerror"): dkim=permerror with header.s, the message is accepted (no
    DMARC record here); the good selector gives dkim=pass."""
    dns, sink, ag, pf, led = stack(t)
    key = rsa_key()
    domain_zone(dns, "verify.example", key, "good", dmarc=None)
    dns.add("bad._domainkey.verify.example.", "TXT",
            "v=DKIM1; k=rsa; p=!!!not*base64", ttl=1)
    dns.add("revoked._domainkey.verify.example.", "TXT", "v=DKIM1; p=",
            ttl=1)
    dns.add("wrongk._domainkey.verify.example.", "TXT",
            "v=DKIM1; k=ed25519; p=" + key.public, ttl=1)
    toks = {}
    for sel in ("good", "gone", "bad", "revoked", "wrongk"):
        tok = "%s-%s" % (t.name, sel)
        toks[sel], r = led.send("alice@verify.example", token=tok,
                                message=signed(key, "verify.example", sel,
                                               subject=tok))
        t.eq((sel, r.code), (sel, 250))
    got = led.settle()
    t.match(r"dkim=pass .*header\.s=good", ar(got[toks["good"]]))
    for sel in ("gone", "bad", "revoked", "wrongk"):
        t.match(r"dkim=permerror .*header\.s=%s" % sel, ar(got[toks[sel]]))


@tap.test
def sign_key_record_missing_or_malformed(t):
    """Our own signing key's record is missing, then malformed, then right.
    Outcome (authgate-keys(8) check): authgate-keys check exits 1 and
    says which; the daemon never looks its own record up, so it signs all
    along and every submission is accepted and delivered signed (a
    verifier would see permerror until the record is fixed; after the fix
    the same signature verifies)."""
    key = rsa_key()
    dns = H.DnsServer().start()
    sign, _ = signing_conf(t, key)
    dns_, sink, ag, pf, led = stack(t, sign, dns=dns)
    cfg = os.path.join(t.tmpdir, "keys-check.conf")
    with open(cfg, "w") as f:
        f.write("dns_servers = 127.0.0.1@%d\ndns_timeout = 1s\n" % dns.port)
    path = sign["key_table"]
    with open(path) as f:
        keyfile = f.read().split(":")[-1].strip()

    def check():
        r = subprocess.run([KEYS, "check", "-c", cfg, "-d", "faults.example",
                            "-s", "sel", "-k", keyfile],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           check=False)
        return r.returncode, (r.stdout + r.stderr).decode()

    rc, out = check()
    t.eq(rc, 1, "no record: " + out)
    t.match(r"no key record|does not exist|NXDOMAIN", out)
    tok1, r = led.send("alice@faults.example", submit=True)
    t.eq(r.code, 250)
    dns.add("sel._domainkey.faults.example.", "TXT", "v=DKIM1; k=rsa; p=@@",
            ttl=1)
    rc, out = check()
    t.eq(rc, 1, "malformed: " + out)
    t.match(r"malformed|base64", out)
    tok2, r = led.send("alice@faults.example", submit=True)
    t.eq(r.code, 250)
    dns.set("sel._domainkey.faults.example.", "TXT", [key.txt], ttl=1)
    rc, out = check()
    t.eq(rc, 0, out)
    got = led.settle()
    for tok in (tok1, tok2):
        t.ok(dkim_verifies(got[tok].raw, key), "%s: signed, and verifies "
             "with the record published later" % tok)


@tap.test
def reload_refused_old_config_and_key_stay(t):
    """SIGHUP after the signing key file was deleted, after it was made
    unreadable for the daemon's user (owner root, 0600), and with a syntax
    error in the config file (which also changes authserv_id).  Outcome
    (authgate.conf(5) on_key_error and DESCRIPTION: "a missing or
    unreadable key stops ... a reload", "a file with any error is refused
    as a whole and the running configuration stays in force"): each
    reload fails with a log line naming the problem, the daemon keeps the
    old configuration and the key it had loaded: every submission is
    accepted and signed with that key (python3-dkim verifies it) under the
    old authserv-id.  With the key restored, a reload succeeds."""
    key = rsa_key()
    sign, keyfile = signing_conf(t, key)
    dns, sink, ag, pf, led = stack(t, sign)
    toks = [led.send("alice@faults.example", submit=True)[0]]

    def hup_fails(n):
        ag.reload()
        H.wait_until(lambda: len(ag.grep("reload failed")) >= n, 10,
                     "reload %d refused" % n)
        tok, r = led.send("alice@faults.example", submit=True)
        t.eq(r.code, 250)
        toks.append(tok)
        t.diag(ag.grep("reload failed")[-1])
        return ag.grep("reload failed")[-1]

    saved = keyfile + ".saved"
    os.rename(keyfile, saved)
    t.match(re.escape(keyfile), hup_fails(1))
    shutil.copy(saved, keyfile)
    os.chmod(keyfile, 0o600)
    os.chown(keyfile, 0, 0)
    if os.getuid() == 0:
        t.match(re.escape(keyfile), hup_fails(2))
    else:
        hup_fails(2)
    if os.getuid() == 0:
        shutil.chown(keyfile, "nobody")
    with open(ag.conf, "a") as f:
        f.write("authserv_id = other.example\nthis is not a setting\n")
    ag.signal(signal.SIGHUP)
    H.wait_until(lambda: len(ag.grep("reload failed")) >= 3, 10, "refused")
    t.diag(ag.grep("reload failed")[-1])
    tok, r = led.send("alice@faults.example", submit=True)
    t.eq(r.code, 250)
    toks.append(tok)
    ag.reload()                           # rewrites a good file
    ag.wait_stderr("configuration reloaded")
    toks.append(led.send("alice@faults.example", submit=True)[0])
    got = led.settle()
    for tok in toks:
        m = got[tok]
        t.match(r"^%s;" % re.escape(ID), ar(m), "old authserv-id")
        t.ok(dkim_verifies(m.raw, key), "%s signed with the loaded key" % tok)
    t.ok(ag.alive())


# ---------------------------------------------------------------------------
# the MTA goes away


def smtp_drop(port, cut, ip=OUTSIDE):
    """An SMTP client that sends MAIL, RCPT, DATA, then the first cut bytes
    of a message and hangs up."""
    msg = H.make_message(frm="alice@example.org", subject="dropped",
                         body="line\r\n" * 200)
    s = socket.create_connection(("127.0.0.1", port), 10)
    f = s.makefile("rb")

    def cmd(line):
        s.sendall(line + b"\r\n")
        while True:
            reply = f.readline()
            if reply[3:4] != b"-":
                return reply
    f.readline()
    cmd(b"EHLO client.example")
    cmd(b"XCLIENT ADDR=%s HELO=mail.example.org" % ip.encode())
    cmd(b"EHLO mail.example.org")
    cmd(b"MAIL FROM:<alice@example.org>")
    cmd(b"RCPT TO:<bob@example.net>")
    t = cmd(b"DATA")
    s.sendall(msg[:cut])
    time.sleep(0.2)
    s.close()
    return t, len(msg)


@tap.test
def mta_disconnects_mid_header_and_body(t):
    """An SMTP client hangs up inside the headers and inside the body; then
    miltc (the MTA side of the milter protocol) hangs up after every 9th
    byte offset of a message stream, from the MAIL packet to EOM.  Outcome:
    nothing is delivered or queued for the dropped messages (the client
    never got a 250, it still has them); authgate logs no error, returns
    to its file descriptor count, and the next message is accepted."""
    dns, sink, ag, pf, led = stack(t)
    domain_zone(dns, "example.org")
    led.send("alice@example.org")
    base = fd_count(ag.pid)
    for cut in (60, 700):
        reply, total = smtp_drop(pf.port, cut)
        t.match(rb"^354", reply)
    H.wait_until(lambda: len(pf.log_lines("lost connection after DATA"))
                 >= 2, 10, "postfix saw both hang-ups")
    tok, r = led.send("alice@example.org")
    t.eq(r.code, 250)
    msg = os.path.join(H.REPO, "tests", "cli", "messages", "forged-ar.eml")
    seen = 0
    for cut in range(1, 4000, 9):
        rc, out, err = miltc(ag, msg, "--client-ip", OUTSIDE, "--mail-from",
                             "alice@example.org", "--disconnect-after", cut)
        t.eq(rc, 0, "miltc cut at %d: %s" % (cut, err))
        if "result: disconnected" not in out:
            break
        seen += 1
    t.diag("milter stream cut at %d offsets" % seen)
    t.ok(seen > 20, "the whole stream was cut through", got=seen)
    H.wait_until(lambda: fd_count(ag.pid) <= base + 2, 10,
                 "fds back to %d (now %d)" % (base, fd_count(ag.pid)))
    led.settle()
    t.eq(errors(ag), [], "nothing logged as an error")


@tap.test
def hard_fd_limit_reached(t):
    """A fresh daemon (its resolver's thread not yet started) whose hard
    open-file limit is 256 gets 400 milter connections at once, each with
    one message. Outcome: past the limit libmilter refuses connections
    (the MTA's milter_default_action applies to those), every message on an
    accepted connection is answered, the daemon stays up (the resolver's
    thread and event base exist from the start, so a lookup never needs a
    descriptor it cannot get), and once the load is gone a message is
    checked as usual (after a few seconds: lookups that could not get a
    socket were SERVFAIL, which dns_error_ttl and libunbound itself, for
    5 s, remember)."""
    dns = H.DnsServer().start()
    domain_zone(dns, "example.org")
    ag = H.Authgate(settings={"authserv_id": ID, "dns_timeout": "2s",
                              "dns_error_ttl": "1s"},
                    dns=dns)
    # prlimit sets the limits and execs the daemon (same pid)
    ag.argv = ["prlimit", "--nofile=256:256", "--"] + ag.argv
    ag.start()
    t.eq(nofile_limit(ag.pid), (256, 256), "limits lowered")
    corpus = os.path.join(t.tmpdir, "corpus")
    os.makedirs(corpus)
    with open(os.path.join(corpus, "plain.eml"), "wb") as f:
        f.write(H.make_message(frm="alice@example.org"))
    r = subprocess.run([MILTC, "--load", "--connections", "400",
                        "--per-conn", "1", "--client-ip", OUTSIDE,
                        "--mail-from", "alice@example.org",
                        "--timeout", "20",
                        "inet:%d@127.0.0.1" % ag.port, corpus],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=120, check=False)
    out = r.stdout.decode(errors="replace")
    t.diag(out.strip().splitlines()[-1] if out.strip() else "no output")
    t.ok(ag.alive(), "authgate alive after 400 connections at 256 files")
    m = re.search(r"results: accept=(\d+) continue=(\d+) ", out)
    t.ok(m is not None and int(m.group(2)) > 0,
         "messages on accepted connections answered", got=out[-600:])
    time.sleep(6)
    r = subprocess.run([MILTC, "--client-ip", OUTSIDE,
                        "--mail-from", "alice@example.org",
                        "inet:%d@127.0.0.1" % ag.port,
                        os.path.join(corpus, "plain.eml")],
                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                       timeout=30, check=False)
    out = r.stdout.decode(errors="replace")
    t.match(r"spf=pass smtp.mailfrom=alice@example.org", out)


@tap.test
def thousand_milter_connections(t):
    """1100 milter connections at once (1000 and a margin; miltc --load),
    each with one message through every check, against a fresh daemon
    (its resolver thread not yet started) started with the open-file
    limits a systemd service gets by default: soft 1024, hard higher.
    Outcome: the daemon raises its soft limit to the hard one at start
    (authgate(8) LIMITS), so every message is answered (continue), the
    daemon stays up and its open files return to where they were.
    (Without the raise, libunbound's thread could not create its event
    base at the first lookup and libevent exited the daemon, status 1.)"""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard < 4096:
        t.skip("hard RLIMIT_NOFILE %d: too low to test 1000 connections"
               % hard)
    dns = H.DnsServer().start()
    domain_zone(dns, "example.org")
    ag = H.Authgate(settings={"authserv_id": ID, "dns_timeout": "2s"},
                    dns=dns)
    resource.setrlimit(resource.RLIMIT_NOFILE, (1024, hard))
    try:
        ag.start()                    # inherits soft 1024
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, 4096), hard))
    corpus = os.path.join(t.tmpdir, "corpus")
    os.makedirs(corpus)
    plain = os.path.join(corpus, "plain.eml")
    with open(plain, "wb") as f:
        f.write(H.make_message(frm="alice@example.org"))
    base = settled_fd_count(ag.pid)
    lim = nofile_limit(ag.pid)
    t.diag("authgate: %d fds open, RLIMIT_NOFILE %s" % (base, lim))
    peak = [base]
    done = threading.Event()

    def watch():
        while not done.is_set():
            peak[0] = max(peak[0], fd_count(ag.pid))
            time.sleep(0.05)
    w = threading.Thread(target=watch)
    w.start()
    try:
        r = subprocess.run([MILTC, "--load", "--connections", "1100",
                            "--per-conn", "1", "--client-ip", OUTSIDE,
                            "--mail-from", "alice@example.org",
                            "--timeout", "20",
                            "inet:%d@127.0.0.1" % ag.port, corpus],
                           stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                           timeout=120, check=False)
    finally:
        done.set()
        w.join()
    out = r.stdout.decode(errors="replace")
    t.diag(out.strip().splitlines()[-1] if out.strip() else "no output")
    t.diag("fd peak %d" % peak[0])
    t.ok(ag.alive(), "authgate alive")
    t.eq(r.returncode, 0, out[-2000:])
    t.match(r"messages: 1100 done, 0 errors", out)
    t.match(r"results: accept=0 continue=1100 ", out)
    t.eq(lim[0], lim[1], "soft limit raised to the hard one")
    # +3: libmilter's worker pool makes its epoll fd and pipe at the
    # first connection, once
    # (a generous wait: under ASan on a loaded machine the 1100 worker
    # threads take a while to wind down; the point is that they do)
    H.wait_until(lambda: fd_count(ag.pid) <= base + 3, 90,
                 "fds back to %d + 3" % base)
    rc, out, _ = miltc(ag, plain, "--client-ip", OUTSIDE)
    t.match(r"(?m)^result: continue$", out)
    t.eq(errors(ag), [], "nothing logged as an error")


# ---------------------------------------------------------------------------
# memory and disk


@tap.test
def allocation_failure_every_point(t):
    """AUTHGATE_TEST_ARENA_FAIL=N makes every arena fail after N
    allocations; N runs from 1 up to where a message no longer hits the
    limit, each with a fresh daemon and two messages through miltc: an
    external one signed by a p=reject domain (SPF, DKIM verify, DMARC,
    rules) and an internal one that is signed.  Outcome (authgate.conf(5)
    on_internal_error = tempfail): each message gets 451 4.7.1 or goes
    through; never a crash, the daemon answers the next connection."""
    key = rsa_key()
    dns = H.DnsServer().start()
    domain_zone(dns, "faults.example", key)
    sign, _ = signing_conf(t, key)
    conf = {"authserv_id": ID, "dns_timeout": "1s"}
    conf.update(sign)
    ext = os.path.join(t.tmpdir, "ext.eml")
    with open(ext, "wb") as f:
        f.write(signed(key, "faults.example", frm="alice@faults.example"))
    internal = os.path.join(t.tmpdir, "int.eml")
    with open(internal, "wb") as f:
        f.write(H.make_message(frm="alice@faults.example"))
    kinds = {"ext": (ext, ["--client-ip", OUTSIDE, "--mail-from",
                           "alice@faults.example"]),
             "int": (internal, ["--client-ip", "203.0.113.9", "--macro",
                                "{auth_authen}=alice", "--mail-from",
                                "alice@faults.example"])}
    seen, n, passes = {}, 0, 0
    while passes < 3 and n < 2000:
        n += 1 if n < 120 else 7
        ag = H.Authgate(settings=conf, dns=dns,
                        env={"AUTHGATE_TEST_ARENA_FAIL": str(n)}).start()
        res = {}
        for kind, (path, args) in kinds.items():
            rc, out, err = miltc(ag, path, *args)
            t.eq(rc, 0, "N=%d %s: miltc: %s" % (n, kind, err))
            res[kind] = re.search(r"(?m)^result: (\S+)(?: (\d{3} \S+))?",
                                  out).groups()
            t.ok(res[kind] in (("continue", None),
                               ("tempfail", "451 4.7.1")),
                 "N=%d %s" % (n, kind), got=out)
        rc, out, _ = miltc(ag, internal)
        t.ok(ag.alive(), "N=%d: alive" % n)
        t.match(r"(?m)^result: ", out, "N=%d: answers again" % n)
        ag.stop()
        t.eq(ag.returncode, 0, "N=%d: clean exit" % n)
        for kind in kinds:
            seen.setdefault(res[kind][0], []).append(n)
        passes = passes + 1 if all(r[0] == "continue"
                                   for r in res.values()) else 0
    t.diag("tempfail at N=%s..%s, through from N=%s; %d daemons" % (
        min(seen.get("tempfail", [0])), max(seen.get("tempfail", [0])),
        min(seen.get("continue", [0])), len(set(sum(seen.values(), [])))))
    t.ok(seen.get("tempfail") and seen.get("continue"), "both outcomes seen")


@tap.test
def dmarc_history_disk_full(t):
    """The DMARC history (sqlite) lives on a 256 KB tmpfs that is then
    filled to the last byte.  Outcome (authgate.conf(5) Aggregate reports:
    "rows are dropped and counted, mail is never delayed"): every message
    is accepted; rows that cannot be written are dropped, logged as "rows
    lost" and counted in authgate_dmarc_history_rows_total{outcome=
    "dropped"}; once space is freed, rows are written again."""
    mnt = os.path.join(t.tmpdir, "hist")
    os.makedirs(mnt)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0777",
                        "tmpfs", mnt], capture_output=True, text=True,
                       check=False)
    if r.returncode:
        t.skip("cannot mount a tmpfs: %s" % r.stderr.strip())
    holder = {}

    def unmount():
        if "ag" in holder:
            holder["ag"].stop()
        subprocess.run(["umount", "-l", mnt], check=False)
    t.defer(unmount)
    mport = H.free_port()
    dns, sink, ag, pf, led = stack(t, {
        "dmarc_history": "sqlite:%s/history.db" % mnt,
        "metrics_listen": "127.0.0.1:%d" % mport})
    holder["ag"] = ag
    domain_zone(dns, "rua.example", dmarc="p=none; rua=mailto:d@rua.example")

    def rows():
        v = scrape(mport)
        return (v['authgate_dmarc_history_rows_total{outcome="written"}'],
                v['authgate_dmarc_history_rows_total{outcome="dropped"}'])
    t.eq(led.send("a@rua.example")[1].code, 250)
    H.wait_until(lambda: rows()[0] == 1, 10, "first row written")
    filler = os.path.join(mnt, "filler")
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    for size in (65536, 4096, 1):     # to the last byte
        try:
            while True:
                os.write(fd, b"\0" * size)
        except OSError:
            pass
    os.close(fd)
    st = os.statvfs(mnt)
    t.eq(st.f_bavail, 0, "file system full")
    for _ in range(3):
        t.eq(led.send("a@rua.example")[1].code, 250, "mail flows")
    H.wait_until(lambda: rows()[1] >= 3, 10, "rows dropped: %s" % (rows(),))
    t.ok(ag.grep(r"dmarc history: \d+ rows lost: .*full"), "logged")
    os.unlink(filler)
    t.eq(led.send("a@rua.example")[1].code, 250)
    H.wait_until(lambda: rows()[0] >= 2, 10, "written again: %s" % (rows(),))
    t.diag("history rows written/dropped: %s" % (rows(),))
    led.settle()
    t.eq(errors(ag, [r"dmarc history: \d+ rows lost"]), [])


@tap.test
def outcomes_are_documented(t):
    """The outcomes cited above are what authgate.conf(5) and authgate(8)
    say (the sentences, with the man page's line breaks and font requests
    taken out)."""
    def text(name):
        with open(os.path.join(H.REPO, "filter", name)) as f:
            raw = f.read()
        raw = re.sub(r"(?m)^\.(B|BR|I|RI|IR|BI)\s+", "", raw)
        raw = re.sub(r"(?m)^\.[A-Za-z]+.*$", "", raw)
        return " ".join(raw.replace('"', "").split())
    conf = text("authgate.conf.5.in")
    for phrase in (
            "A lookup that times out is a temporary error of the check "
            "that made it",
            "on_dns_error = accept",
            "failure). accept delivers the message with temperror in its "
            "results; tempfail makes the sender retry later",
            "on_internal_error = tempfail",
            "a missing or unreadable key stops the daemon (or a reload) "
            "instead",
            "a file with any error is refused as a whole and the running "
            "configuration stays in force",
            "a missing, revoked (empty p=), malformed or mismatched key "
            "gives permerror",
            "rows are dropped and counted, mail is never delayed"):
        t.contains(conf, phrase)
    t.contains(text("authgate.8.in"), "raises its soft open-file limit to "
               "the hard one")
    with open(os.path.join(H.REPO, "keys", "authgate-keys.8.in")) as f:
        t.contains(" ".join(f.read().split()), "The daemon itself never "
                   "looks up its own key records")


if __name__ == "__main__":
    tap.main()
