#!/usr/bin/python3
"""soak.py - many messages through the private Postfix with authgate
attached, at many concurrent SMTP sessions, while authgate is reloaded
with SIGHUP every few seconds.

    make soak                                   # 20 000 messages, 32 sessions
    SOAK_MESSAGES=2000 SOAK_SESSIONS=16 /usr/bin/python3 soak.py

Environment: SOAK_MESSAGES (20000), SOAK_SESSIONS (32), SOAK_RELOAD
(seconds between SIGHUPs, 3), AUTHGATE_BIN, KEEP_TMP=1 (keep the temp dir).

The mix, by message number n (n % 20):
  0-5   "sub"    submitted with STARTTLS + SMTP AUTH: authgate signs it
                 (test.example's RSA key), 250
  6-10  "signed" from an outside client, DKIM-signed by signed.example
                 (p=reject, rua: a DMARC history row), dkim/dmarc=pass, 250
  11-15 "plain"  from an outside client, unsigned, spf=pass, 250
  16-17 "spoof"  From: reject.example (p=reject) from an address its SPF
                 does not allow, unsigned: 550 per DMARC policy
  18-19 "spam"   a rule scores it 30, over spam_reject_score: 550
Each session keeps its SMTP connections open (one per kind of client) and
sends message after message; every message goes to bob+n@example.net, so
the sink tells which arrived.  A 4xx reply (or a lost connection) is
counted and the message is sent again, as an MTA would.

Pass: delivered at the sink + rejected at the client = sent, each message
exactly once and with the outcome of its kind (tempfails were retried
until one of those); authgate's VmRSS at the end within 10 % of its value
after warm-up (the first 20 % of the messages); no error or warning line
in authgate's log; every SIGHUP reloaded.

Measured on the 2-vCPU test box (shared), 20 000 messages, 32 sessions:
200 msgs/s, 121 s until the last delivery, VmRSS 20.0 MB after warm-up and
21.5 MB at the end (+7.3 %).  Without dmarc_history the same run does 340
msgs/s and +2.5 %: most of the growth is SQLite's page cache (2 MB at most
by default) following the history as it grows.
"""
import os
import re
import smtplib
import ssl
import sys
import threading
import time
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dkim_kit as K  # noqa: E402
import harness as H  # noqa: E402

import dkim  # noqa: E402

ID = "mx.authgate.test"
OUTSIDE = "198.51.100.25"          # allowed by signed/plain.example's SPF
SPOOFER = "203.0.113.66"           # allowed by no SPF record
USER = ("alice@test.example", "secret")
KINDS = ["sub"] * 6 + ["signed"] * 5 + ["plain"] * 5 + ["spoof"] * 2 + \
    ["spam"] * 2
WANT = {"sub": 250, "signed": 250, "plain": 250, "spoof": 550, "spam": 550}
WANT_TEXT = {"spoof": "5.7.1 Email rejected per DMARC policy for "
             "reject.example",
             "spam": "5.7.1 Message refused by the content policy of "
             "this site"}
RULES = "header SOAK_SPAM Subject =~ /SOAK-SPAM-MARK/\nscore SOAK_SPAM 30\n"


def kind_of(n):
    return KINDS[n % len(KINDS)]


def vmrss_kb(pid):
    with open("/proc/%d/status" % pid) as f:
        return int(re.search(r"^VmRSS:\s+(\d+) kB", f.read(), re.M).group(1))


def scrape(port):
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        text = r.read().decode()
    return {ln.rsplit(" ", 1)[0]: float(ln.rsplit(" ", 1)[1])
            for ln in text.splitlines() if ln and not ln.startswith("#")}


class Stack:
    """DNS, sink, authgate (signing, verifying, DMARC + history, rules,
    metrics) and Postfix, all in the current temp dir."""

    def __init__(self):
        tmp = H.test_tmpdir()
        self.dns = H.DnsServer().start()
        sub_key = K.make_key("rsa2048", "test.example", "soak")
        self.ext_key = K.make_key("rsa2048", "signed.example", "s1")
        K.publish(self.dns, sub_key, self.ext_key)
        spf = "v=spf1 ip4:198.51.100.0/24 -all"
        for d in ("test.example", "signed.example", "plain.example",
                  "reject.example"):
            self.dns.add(d + ".", "TXT", spf)
        self.dns.add("_dmarc.signed.example.", "TXT",
                     "v=DMARC1; p=reject; rua=mailto:dmarc@signed.example")
        self.dns.add("_dmarc.reject.example.", "TXT", "v=DMARC1; p=reject")
        keys = os.path.join(tmp, "keys")
        os.makedirs(keys)
        os.chmod(keys, 0o755)
        path = sub_key.write(keys, owner="nobody" if os.getuid() == 0
                             else None)
        kt, st = os.path.join(keys, "kt"), os.path.join(keys, "st")
        with open(kt, "w") as f:
            f.write("k %s:%s:%s\n" % ("test.example", "soak", path))
        with open(st, "w") as f:
            f.write("*@test.example k\n")
        rules = os.path.join(tmp, "soak.rules")
        with open(rules, "w") as f:
            f.write(RULES)
        os.chmod(rules, 0o644)
        hist = os.path.join(tmp, "history")
        os.makedirs(hist)
        os.chmod(hist, 0o777)
        self.metrics_port = H.free_port()
        self.settings = {
            "authserv_id": ID, "dns_timeout": "5s",
            "key_table": kt, "signing_table": "refile:" + st,
            "rules_files": rules, "spam_reject_score": 15,
            "dmarc_history": "sqlite:%s/history.db" % hist,
            "metrics_listen": "127.0.0.1:%d" % self.metrics_port}
        self.sink = H.Sink().start()
        self.ag = H.Authgate(settings=self.settings, dns=self.dns).start()
        # The sessions here are long and half their messages are
        # rejected: without these, Postfix slows a client down after 10
        # errors and hangs up after 20 (smtpd_*_error_limit), which is
        # right for a real client but only measures Postfix here.
        self.pf = H.Postfix(milter=self.ag, relay_port=self.sink, main={
            "default_process_limit": "200", "smtpd_timeout": "120s",
            "smtpd_soft_error_limit": "100000",
            "smtpd_hard_error_limit": "100000",
            "smtpd_error_sleep_time": "0s"}).start()

    def signed_templates(self, count=8):
        """count messages of signed.example, signed by its key."""
        out = []
        for i in range(count):
            msg = H.make_message(frm="news@signed.example",
                                 to="bob@example.net",
                                 subject="signed template %d" % i,
                                 body="Signed body %d.\r\n" % i * (i + 1))
            sig = dkim.sign(msg, b"s1", b"signed.example",
                            self.ext_key.dkimpy_private(),
                            canonicalize=(b"relaxed", b"relaxed"),
                            include_headers=[b"from", b"to", b"subject",
                                             b"date", b"message-id"])
            out.append(sig + msg)
        return out


class Session(threading.Thread):
    """One client: takes message numbers from the shared counter and sends
    each on a kept-open connection for its kind of client."""

    def __init__(self, soak):
        super().__init__(daemon=True)
        self.soak = soak
        self.conns = {}

    def connect(self, who):
        pf = self.soak.stack.pf
        if who == "sub":
            s = smtplib.SMTP("127.0.0.1", pf.submission_port, timeout=120)
            s.ehlo("client.test.example")
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            s.starttls(context=ctx)
            s.ehlo("client.test.example")
            s.login(*USER)
        else:
            s = smtplib.SMTP("127.0.0.1", pf.port, timeout=120)
            s.ehlo("client.test.example")
            code, text = s.docmd("XCLIENT", "ADDR=%s HELO=mail.example.org"
                                 % who)
            if code != 220:
                raise smtplib.SMTPResponseException(code, text)
            s.ehlo("mail.example.org")
        return s

    def close(self, who):
        s = self.conns.pop(who, None)
        if s is not None:
            try:
                s.close()
            except OSError:
                pass

    def message(self, n, kind):
        if kind == "sub":
            return "alice@test.example", H.make_message(
                frm="Alice <alice@test.example>", subject="soak %d" % n,
                body="Submitted message %d.\r\n" % n)
        if kind == "signed":
            t = self.soak.templates
            return "news@signed.example", t[n % len(t)]
        if kind == "plain":
            return "carol@plain.example", H.make_message(
                frm="carol@plain.example", subject="soak %d" % n)
        if kind == "spoof":
            return "ceo@reject.example", H.make_message(
                frm="ceo@reject.example", subject="soak %d" % n)
        return "dave@plain.example", H.make_message(
            frm="dave@plain.example", subject="SOAK-SPAM-MARK %d" % n)

    def send(self, n):
        kind = kind_of(n)
        who = {"sub": "sub", "spoof": SPOOFER}.get(kind, OUTSIDE)
        mail_from, data = self.message(n, kind)
        rcpt = "bob+%d@example.net" % n
        while True:
            sent_data = False
            try:
                if who not in self.conns:
                    self.conns[who] = self.connect(who)
                s = self.conns[who]
                code, text = s.mail(mail_from)
                if code == 250:
                    code, text = s.rcpt(rcpt)
                if code in (250, 251):
                    sent_data = True
                    code, text = s.data(data)
                elif code < 500:
                    s.rset()
            except smtplib.SMTPResponseException as e:
                code, text = e.smtp_code, e.smtp_error
                self.close(who)
            except (smtplib.SMTPException, OSError) as e:
                self.soak.count("lost connection" + (
                    " after DATA" if sent_data else ""), str(e))
                self.close(who)
                time.sleep(0.2)
                continue
            text = text.decode(errors="replace") \
                if isinstance(text, bytes) else str(text)
            if 400 <= code < 500:
                self.soak.count("tempfail", "%d %s" % (code, text))
                if code == 421:
                    self.close(who)
                time.sleep(0.2)
                continue
            self.soak.final(n, kind, code, text)
            return

    def run(self):
        try:
            while True:
                n = self.soak.next()
                if n is None:
                    break
                self.send(n)
        except BaseException as e:                # noqa: BLE001
            self.soak.problem("session died: %r" % e)
        finally:
            for who in list(self.conns):
                try:
                    self.conns[who].quit()
                except (smtplib.SMTPException, OSError):
                    pass
                self.close(who)


class Soak:
    def __init__(self, messages, sessions, reload_every=3.0, log=print):
        self.total, self.sessions = messages, sessions
        self.reload_every, self.log = reload_every, log
        self.lock = threading.Lock()
        self.n = 0
        self.done = 0
        self.results = {}         # n -> (code, text)
        self.counts = {}          # tempfail, lost connection -> count
        self.samples = {}         # count name -> first text
        self.problems = []
        self.warm_at = max(1, messages // 5)
        self.rss_warm = None

    def next(self):
        with self.lock:
            if self.n >= self.total:
                return None
            self.n += 1
            return self.n - 1

    def count(self, what, text):
        with self.lock:
            self.counts[what] = self.counts.get(what, 0) + 1
            self.samples.setdefault(what, text)

    def problem(self, text):
        with self.lock:
            self.problems.append(text)

    def final(self, n, kind, code, text):
        with self.lock:
            if n in self.results:
                self.problems.append("message %d answered twice" % n)
            self.results[n] = (code, text)
            self.done += 1
            done = self.done
        if code != WANT[kind] or (kind in WANT_TEXT and
                                  text != WANT_TEXT[kind]):
            self.problem("message %d (%s): %d %s" % (n, kind, code, text))
        if done == self.warm_at:
            self.rss_warm = vmrss_kb(self.stack.ag.pid)
            self.log("warm-up done after %d messages: VmRSS %d kB"
                     % (done, self.rss_warm))

    def reloader(self, stop):
        """SIGHUP every reload_every seconds, with a real change each
        time (spam_header_score 5 <-> 6: no message here changes its
        outcome)."""
        while not stop.wait(self.reload_every):
            self.reloads += 1
            self.stack.ag.reload(spam_header_score=5 + self.reloads % 2)

    def check_sink(self, delivered):
        """Every delivered message is one we sent, once, with the outcome
        of its kind."""
        seen = {}
        for path in delivered:
            with open(path, "rb") as f:
                raw = f.read()
            head = raw.split(b"\r\n\r\n", 1)[0]
            m = re.search(rb"^X-Sink-Rcpt-To: <?bob\+(\d+)@", head, re.M)
            if not m:
                self.problem("%s: not ours" % path)
                continue
            n = int(m.group(1))
            seen[n] = seen.get(n, 0) + 1
            kind = kind_of(n)
            ar = H.unfold(head.decode(errors="replace"))
            want = {"sub": r"(?m)^DKIM-Signature: .*d=test\.example",
                    "signed": r"dkim=pass [^;]*header\.d=signed\.example"
                              r".*dmarc=pass",
                    "plain": r"spf=pass smtp\.mailfrom=carol@plain\."
                             r"example"}.get(kind)
            if want is None:
                self.problem("message %d (%s) delivered" % (n, kind))
            elif not re.search(want, ar, re.S):
                self.problem("message %d (%s): headers lack /%s/"
                             % (n, kind, want))
        for n, c in seen.items():
            if c > 1:
                self.problem("message %d delivered %d times" % (n, c))
        return seen

    def run(self):
        t0 = time.monotonic()
        self.stack = Stack()
        self.templates = self.stack.signed_templates()
        ag, pf, sink = self.stack.ag, self.stack.pf, self.stack.sink
        self.log("soak: %d messages, %d sessions, SIGHUP every %.0f s; "
                 "authgate pid %d; setup %.1f s" % (
                     self.total, self.sessions, self.reload_every, ag.pid,
                     time.monotonic() - t0))
        self.reloads = 0
        stop = threading.Event()
        rl = threading.Thread(target=self.reloader, args=(stop,),
                              daemon=True)
        t1 = time.monotonic()
        rl.start()
        workers = [Session(self) for _ in range(self.sessions)]
        for w in workers:
            w.start()
        last = t1
        while any(w.is_alive() for w in workers):
            for w in workers:
                w.join(0.5)
            if time.monotonic() - last > 10:
                last = time.monotonic()
                self.log("%d/%d answered, %.0f s" % (
                    self.done, self.total, last - t1))
        stop.set()
        rl.join()
        send_secs = time.monotonic() - t1
        accepted = sum(1 for c, _ in self.results.values() if c == 250)
        rejected = sum(1 for c, _ in self.results.values() if c >= 500)
        outdir = sink.outdir if hasattr(sink, "outdir") else sink.dir

        def delivered():
            return [os.path.join(outdir, f) for f in os.listdir(outdir)
                    if f.startswith("msg-")]
        try:
            H.wait_until(lambda: len(delivered()) >= accepted and not any(
                pf.queue_ids(q) for q in ("incoming", "active", "deferred",
                                          "hold")), 120 + self.total / 50,
                "sink: %d messages" % accepted)
        except TimeoutError as e:
            self.problem(str(e))
        total_secs = time.monotonic() - t1
        time.sleep(1)
        self.rss_end = vmrss_kb(ag.pid)
        seen = self.check_sink(delivered())
        v = scrape(self.stack.metrics_port)
        reloads_ok = v.get('authgate_reloads_total{result="ok"}', 0)
        hist = (v.get('authgate_dmarc_history_rows_total{outcome="written"}'),
                v.get('authgate_dmarc_history_rows_total{outcome="dropped"}'))
        errors = [ln for ln in ag.grep(r"\b(error|warning): ")]
        lost = [n for n in range(self.total) if n not in self.results]
        if lost:
            self.problem("%d messages never answered: %s" % (
                len(lost), lost[:10]))
        if len(seen) + rejected != self.total:
            self.problem("delivered %d + rejected %d != sent %d" % (
                len(seen), rejected, self.total))
        if len(seen) != accepted:
            self.problem("delivered %d != accepted %d" % (len(seen),
                                                          accepted))
        if reloads_ok != self.reloads:
            self.problem("%d SIGHUPs, %d reloads ok" % (self.reloads,
                                                       reloads_ok))
        growth = (self.rss_end - self.rss_warm) / self.rss_warm \
            if self.rss_warm else None
        if growth is None or abs(growth) > 0.10:
            self.problem("VmRSS %s kB after warm-up, %d kB at the end" % (
                self.rss_warm, self.rss_end))
        if errors:
            self.problem("%d error/warning lines in authgate's log, first: "
                         "%s" % (len(errors), errors[0]))
        if not ag.alive():
            self.problem("authgate died")
        tempfails = self.counts.get("tempfail", 0)
        self.report = {
            "sent": self.total, "delivered": len(seen), "accepted": accepted,
            "rejected": rejected, "tempfailed_retried": tempfails,
            "lost_connections": self.counts.get("lost connection", 0) +
            self.counts.get("lost connection after DATA", 0),
            "reloads": self.reloads, "send_secs": send_secs,
            "total_secs": total_secs, "rss_warm_kb": self.rss_warm,
            "rss_end_kb": self.rss_end, "history": hist,
            "problems": self.problems}
        self.log("sent %d = delivered %d + rejected %d (accepted %d); "
                 "tempfails retried %d, lost connections %d%s" % (
                     self.total, len(seen), rejected, accepted, tempfails,
                     self.report["lost_connections"],
                     "".join("; %s: %s" % kv for kv in self.samples.items())))
        self.log("time: %.1f s sending (%.0f msgs/s), %.1f s until the "
                 "last delivery; %d SIGHUPs, %d reloads ok" % (
                     send_secs, self.total / send_secs, total_secs,
                     self.reloads, reloads_ok))
        self.log("authgate VmRSS: %d kB after warm-up (%d messages), %d kB "
                 "at the end (%+.1f %%); DMARC history rows written/dropped "
                 "%s" % (self.rss_warm or 0, self.warm_at, self.rss_end,
                         100 * (growth or 0), hist))
        for p in self.problems[:20]:
            self.log("PROBLEM: %s" % p)
        return self.report


def main():
    messages = int(os.environ.get("SOAK_MESSAGES", "20000"))
    sessions = int(os.environ.get("SOAK_SESSIONS", "32"))
    every = float(os.environ.get("SOAK_RELOAD", "3"))
    rep = Soak(messages, sessions, every,
               log=lambda text: print("# " + text, flush=True)).run()
    ok = not rep["problems"]
    print("SOAK %s sent=%d delivered=%d rejected=%d tempfailed_retried=%d "
          "secs=%.1f rss_warm_kb=%s rss_end_kb=%s reloads=%d" % (
              "ok" if ok else "FAILED", rep["sent"], rep["delivered"],
              rep["rejected"], rep["tempfailed_retried"], rep["total_secs"],
              rep["rss_warm_kb"], rep["rss_end_kb"], rep["reloads"]))
    H.stop_all()
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
