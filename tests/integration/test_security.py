#!/usr/bin/python3
"""test_security.py - the security defenses, end to end: a real Postfix
(and Sendmail where the MTAs differ), authgate and a loopback DNS server;
where an MTA cannot make a value arbitrary (a client address, a CR in a
HELO name), tests/tools/miltc speaks the milter protocol in its place.

Every defense and where its test lives (here unless named):

1 Never an open signer
  external client + From: of our domain, of a subdomain, several From:,
    headers posing as authentication (X-Authenticated-User, a Received:
    from localhost, an A-R with auth=pass), HELO/rDNS of our own host,
    loopback not in internal_hosts -> never signed; internal_hosts and
    SMTP AUTH clients -> signed (both through Postfix) ..... open_signer_*
  internal_auth = no: an SMTP AUTH client is not signed for . open_signer_*
  internal_hosts edges over the milter protocol: first/last address of a
    prefix and the ones just outside, IPv4-mapped IPv6 inside/outside an
    IPv4 entry, IPv4-compatible and NAT64 forms, IPv6 prefix edges, no /0
    implied, loopback not implied, an empty {auth_authen} .... internal_edges
  (also: tests/unit/test_cidr.c test_match/test_bad, test_msgctx.c
    test_trust; test_dkim_interop.py external_client_not_signed,
    internal_hosts_signed_without_auth; tests/unit/test_dkim.c
    test_who_is_signed)
2 Forged Authentication-Results with our authserv-id removed in any case,
  with comments, folded, several, with a version, unreadable but naming
  us, under a name spelled in another case or with a space before the
  colon, past max_headers, longer than header_size_limit; foreign ones
  kept byte for byte; exactly one A-R with our id at the sink, ours
  (Postfix and Sendmail) .................................. forged_ar_*
  our id taken from the MTA's j macro when authserv_id is empty ... same
  (also: tests/unit/test_ar.c, test_msgctx.c test_forged_ar/test_caps,
    test_mta.py *_forged_removed*, tests/fuzz/fuzz_ar.c)
3 Header injection: MAIL FROM local part, HELO, From:, DKIM d=/s=/i=/b=
  with ';', '(', ')', '"', CR, LF and 8-bit bytes: our A-R, Received-SPF
  and X-Authgate-* parse to exactly the expected results, every value
  intact inside its quoting; received X-Authgate-* removed .... injection_*
  (also: tests/unit/test_ar.c quoting rows, test_spf.c
    test_received_header, test_rfc5322.c, fuzz_rfc5322/fuzz_addr)
4 Privileges and paths: bind a privileged port as root, then run as
  `user` in every thread with no capability and no way back .... privileges
  a private key its group or others may read or write, or that only root
  can read (keys load after the privilege drop): refused, naming the file
  and mode ................................................. key_modes
  missing -c file, relative key_table, KeyTable key path, missing key
  file, relative rules_files: refused with the file named; a relative -c
  made absolute, the daemon working in "/", reloads read the same file
  ..................................................... paths
  (also: tests/cli/test_daemon.sh "runs as the configured user";
    tests/unit/test_dkim.c test_table_errors, test_config.c test_errors;
    tests/cli/test_keys.sh for authgate-keys check)
5 Bounded resources per message (authgate.conf(5) LIMITS, DNS, DKIM,
  RULES AND SCORES): max_headers and header_size_limit ..... limit_headers
  dkim_max_signatures, dns_max_queries_per_message ........ limit_dkim_dns
  rules_match_limit, rules_scan_limit, MIME depth and part count
  ..................................................... limit_rules_mime
  (also: SPF's RFC 7208 limits in test_spf_hostile.py and
    tests/unit/test_spf.c test_results; DMARC's 8 From: domains in
    test_dmarc_mta.py from_domain_cap_no_bypass and tests/unit/test_dmarc.c
    test_from, its walk of at most 8 names in test_dmarc.c
    test_walk_queries; DNS timeouts and 1100 connections in
    test_faults.py; the match limit in tests/unit/test_rulefile.c
    test_match_limit; MIME depth and parts in tests/unit/test_mime.c;
    the DNS budget with 12 keys in test_dkim.c test_many_signatures)
6 Hardening of the default build (PIE, full RELRO, BIND_NOW, stack
  protector, FORTIFY, no executable stack): tests/cli/test_hardening.sh
"""
import os
import pwd
import re
import signal
import socket
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dkim_kit as K  # noqa: E402
import harness as H  # noqa: E402
import tap  # noqa: E402

import dkim  # noqa: E402  (python3-dkim: signs test mail, checks ours)

ID = "mx.authgate.test"
DOMAIN = "sec.example"             # the domain authgate signs for
OUTSIDE = "198.51.100.7"           # an external client
INSIDE = "192.0.2.10"              # in internal_hosts
RCPT = ["bob@example.net"]
BUILD = os.environ.get("AUTHGATE_BUILDDIR") or os.path.dirname(
    os.path.dirname(H.default_authgate_bin()))
MILTC = os.path.join(BUILD, "tests", "tools", "miltc")
EX_CONFIG = 78


# ---------------------------------------------------------------------------
# helpers


SANITIZER = re.compile(r"AddressSanitizer|LeakSanitizer|"
                       r"UndefinedBehaviorSanitizer|runtime error:")


def clean_exit(ag):
    """Stop authgate; it must exit 0 on SIGTERM with no sanitizer report
    in its log (leaks are only reported at exit: the ASan build's run of
    this file checks them here)."""
    rc = ag.stop()
    bad = [ln for ln in ag.stderr().splitlines() if SANITIZER.search(ln)]
    if rc != 0 or bad:
        raise AssertionError("authgate exit status %s; %s" % (
            rc, "\n".join(bad[:20]) or "no sanitizer report"))


def authgate(t, **kw):
    """A started H.Authgate whose exit is checked at the end of the test."""
    ag = H.Authgate(**kw).start()
    t.defer(clean_exit, ag)
    return ag


def signing_key():
    return K.make_key("rsa2048", DOMAIN, "sec")


def key_dir(t):
    d = os.path.join(t.tmpdir, "keys")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    return d


def daemon_user():
    return "nobody" if os.getuid() == 0 else None


def signing_conf(t, key, mode=0o600, owner="daemon"):
    """KeyTable/SigningTable signing every address of DOMAIN and of its
    subdomains (OpenDKIM's ".domain" form) with key."""
    d = key_dir(t)
    path = key.write(d, owner=daemon_user() if owner == "daemon" else owner,
                     mode=mode, name="sec-%o.pem" % mode)
    kt, st = os.path.join(d, "key_table"), os.path.join(d, "signing_table")
    with open(kt, "w") as f:
        f.write("k1 %s:%s:%s\n" % (DOMAIN, key.selector, path))
    with open(st, "w") as f:
        f.write("%s k1\n.%s k1\n" % (DOMAIN, DOMAIN))
    return {"key_table": kt, "signing_table": st}, path


def our_signatures(raw):
    """Tags of the DKIM-Signature headers with d=DOMAIN in raw bytes."""
    return [s for s in K.signatures(raw) if s.get("d") == DOMAIN]


def verifies(raw, key):
    """python3-dkim verifies the message's first signature with key."""
    txt = key.txt.encode()
    return dkim.verify(raw, dnsfunc=lambda name, timeout=5: txt)


def summary(ag, qid):
    """authgate's one log line for the message with this queue id."""
    lines = H.wait_until(lambda: ag.grep(r"\b%s: ip=" % re.escape(qid)), 10,
                         "no summary line for %s" % qid)
    return lines[-1]


def xtext(v):
    """RFC 3461 xtext, as XCLIENT wants its values."""
    return "".join(c if 33 <= ord(c) <= 126 and c not in "+=" else
                   "".join("+%02X" % b for b in c.encode()) for c in v)


def unescape(s):
    r"""miltc's C escapes (\n \r \t \\ \xHH) back to bytes, as text."""
    out, i = bytearray(), 0
    b = s.encode("latin-1", "replace")
    while i < len(b):
        if b[i] == 0x5c and i + 1 < len(b):
            c = chr(b[i + 1])
            if c == "x":
                out.append(int(b[i + 2:i + 4], 16))
                i += 4
                continue
            out += {"n": b"\n", "r": b"\r", "t": b"\t", "\\": b"\\"}.get(
                c, b"\\" + c.encode())
            i += 2
            continue
        out.append(b[i])
        i += 1
    return out.decode("latin-1")


def miltc(t, ag, message, *args, name="msg.eml"):
    """One message through authgate over the milter protocol; -> dict:
    "edits" [(op, header name, value)], "result", "out"."""
    path = os.path.join(t.tmpdir, name)
    with open(path, "wb") as f:
        f.write(message)
    r = subprocess.run([MILTC] + [str(a) for a in args] +
                       ["inet:%d@127.0.0.1" % ag.port, path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, check=False)
    out = r.stdout.decode("latin-1")
    t.eq(r.returncode, 0, "miltc: %s" % r.stderr.decode(errors="replace"))
    edits, result = [], None
    for line in out.splitlines():
        m = re.match(r"(insert|add|change)-header: (?:\d+ )?([^:]+): ?(.*)$",
                     line)
        if m:
            edits.append((m.group(1), m.group(2), unescape(m.group(3))))
        elif line.startswith("result: "):
            result = line[8:]
    return {"edits": edits, "result": result, "out": out}


def added(res, name):
    return [v.lstrip(" ") for op, n, v in res["edits"]
            if n.lower() == name.lower() and op in ("insert", "add")]


# -- a strict reader of RFC 8601 / RFC 7208 9.1 header values ---------------


class Unparsable(ValueError):
    pass


def tokens(value):
    """RFC 5322 tokens of a header value: ("q", quoted-string unescaped),
    ("w", run of other non-special characters), or one of ';' '=' as
    ("s", c); comments and folding white space dropped.  A CR or LF that
    is not part of a fold, an unclosed quote or comment, or a stray ')'
    raise Unparsable."""
    out, i, n = [], 0, len(value)
    while i < n:
        c = value[i]
        if c in "\r\n":
            if value[i:i + 2] == "\r\n":
                i += 1
            if i + 1 >= n or value[i + 1] not in " \t":
                raise Unparsable("bare line break at %d: %r" % (i, value))
            i += 1
        elif c in " \t":
            i += 1
        elif c == "(":
            depth, i = 1, i + 1
            while depth:
                if i >= n:
                    raise Unparsable("unclosed comment: %r" % value)
                if value[i] == "\\":
                    i += 1
                elif value[i] == "(":
                    depth += 1
                elif value[i] == ")":
                    depth -= 1
                i += 1
        elif c == ")":
            raise Unparsable("')' outside a comment: %r" % value)
        elif c == '"':
            s, i = "", i + 1
            while True:
                if i >= n:
                    raise Unparsable("unclosed quote: %r" % value)
                if value[i] == "\\" and i + 1 < n:
                    s += value[i + 1]
                    i += 2
                elif value[i] == '"':
                    i += 1
                    break
                elif value[i] in "\r\n":
                    raise Unparsable("line break in a quoted-string")
                else:
                    s += value[i]
                    i += 1
            out.append(("q", s))
        elif c in ";=":
            out.append(("s", c))
            i += 1
        else:
            j = i
            while j < n and value[j] not in " \t\r\n()\";=":
                j += 1
            out.append(("w", value[i:j]))
            i = j
    return out


def parse_ar(value):
    """An A-R value -> (authserv-id, [(method, result, {prop: value})]);
    "reason" is one of the props.  Anything outside RFC 8601's grammar
    raises Unparsable."""
    tk = tokens(value)
    if not tk or tk[0][0] not in "wq":
        raise Unparsable("no authserv-id: %r" % value)
    sid, i = tk[0][1], 1
    if i < len(tk) and tk[i][0] == "w" and tk[i][1].isdigit():
        i += 1                                   # authres-version
    if i >= len(tk) or tk[i] != ("s", ";"):
        raise Unparsable("no ';' after the authserv-id: %r" % value)
    i += 1
    if tk[i:] == [("w", "none")]:
        return sid, []
    results = []
    while i < len(tk):
        if tk[i][0] != "w" or tk[i + 1:i + 2] != [("s", "=")] or \
                tk[i + 2:i + 3][:1] and tk[i + 2][0] != "w":
            raise Unparsable("bad resinfo at token %d: %r" % (i, value))
        method, result, props = tk[i][1], tk[i + 2][1], {}
        i += 3
        while i < len(tk) and tk[i] != ("s", ";"):
            if tk[i][0] != "w" or tk[i + 1:i + 2] != [("s", "=")] or \
                    i + 2 >= len(tk) or tk[i + 2][0] not in "wq" or \
                    (tk[i][1] != "reason" and "." not in tk[i][1]):
                raise Unparsable("bad property at token %d: %r"
                                 % (i, value))
            if tk[i][1] in props:
                raise Unparsable("%s twice: %r" % (tk[i][1], value))
            props[tk[i][1]] = tk[i + 2][1]
            i += 3
        results.append((method, result, props))
        i += 1
    return sid, results


def parse_received_spf(value):
    """Received-SPF -> (result, {key: value}); every key once."""
    tk = tokens(value)
    if not tk or tk[0][0] != "w":
        raise Unparsable("no result: %r" % value)
    keys, i = {}, 1
    while i < len(tk):
        if tk[i][0] != "w" or tk[i + 1:i + 2] != [("s", "=")] or \
                i + 2 >= len(tk) or tk[i + 2][0] not in "wq" or \
                tk[i + 3:i + 4] not in ([("s", ";")], []):
            raise Unparsable("bad key-value at token %d: %r" % (i, value))
        if tk[i][1] in keys:
            raise Unparsable("%s twice: %r" % (tk[i][1], value))
        keys[tk[i][1]] = tk[i + 2][1]
        i += 4
    return tk[0][1], keys


def ours(values, sid=ID):
    """The A-R values (unfolded) whose authserv-id is sid, in any case."""
    out = []
    for v in values:
        try:
            if parse_ar(v)[0].lower() == sid.lower():
                out.append(v)
        except Unparsable:
            pass
    return out


def ar_values(sink_msg):
    return [H.unfold(v) for v in sink_msg.get_all(
        "Authentication-Results") or []]


def first_header(sink_msg):
    """(name, value) of the first header line the MTA delivered."""
    raw = K.delivered(sink_msg)
    name, _, rest = raw.split(b"\r\n", 1)[0].partition(b":")
    return name.decode(), rest.decode()


# ---------------------------------------------------------------------------
# 1 never an open signer


SPOOF_HEADERS = [
    ("X-Authenticated-User", "alice@%s" % DOMAIN),
    ("X-Authenticated-Sender", "alice@%s" % DOMAIN),
    ("Received", "from localhost (localhost [127.0.0.1])\r\n\tby %s "
     "(Postfix) with ESMTPSA id 4XyT1c2zNF\r\n\tfor <bob@example.net>; "
     "Mon, 23 Nov 2026 11:59:00 +0000 (UTC)" % H.HOSTNAME),
    ("Authentication-Results", "%s; auth=pass smtp.auth=alice@%s"
     % (ID, DOMAIN)),
    ("X-Original-Authentication-Results", "%s; auth=pass" % ID),
]


def open_signer_stack(t, settings=None):
    key = signing_key()
    dns = H.DnsServer().start()
    K.publish(dns, key, ttl=1)
    sink = H.Sink().start()
    conf, _ = signing_conf(t, key)
    # loopback deliberately not internal: only 192.0.2.0/24 and AUTH
    conf.update({"authserv_id": ID, "internal_hosts": "192.0.2.0/24",
                 "dns_timeout": "2s"})
    conf.update(settings or {})
    ag = authgate(t, settings=conf, dns=dns)
    pf = H.Postfix(milter=ag, relay_port=sink).start()
    return key, dns, sink, ag, pf


def two_from(first, second):
    m = H.make_message(frm=first, subject="two-from")
    return m.replace(b"To:", ("From: %s\r\nTo:" % second).encode(), 1)


@tap.test
def open_signer_external_never_signed(t):
    """An external client is never signed for, whatever its From: and its
    headers claim (authgate.conf(5) DKIM: "mail of external clients is
    never signed, whatever its From: says"); the same messages from
    internal_hosts and over SMTP AUTH are signed, so the tables do match
    them."""
    key, dns, sink, ag, pf = open_signer_stack(t)
    own = "alice@" + DOMAIN
    sub = "bob@mail." + DOMAIN
    external = [
        ("own domain", own, H.make_message(frm=own, subject="own"), {}),
        ("subdomain", sub, H.make_message(frm=sub, subject="sub"), {}),
        ("two From:, ours first", own,
         two_from(own, "eve@evil.example"), {}),
        ("two From:, ours second", "eve@evil.example",
         two_from("eve@evil.example", own), {}),
        ("From: list with ours", own,
         H.make_message(frm="eve@evil.example, %s" % own, subject="list"),
         {}),
        ("headers posing as authentication", own,
         H.make_message(frm=own, subject="spoof", headers=SPOOF_HEADERS),
         {}),
        ("HELO and rDNS name of this host", own,
         H.make_message(frm=own, subject="helo"),
         {"HELO": H.HOSTNAME, "NAME": H.HOSTNAME}),
        ("loopback not in internal_hosts", own,
         H.make_message(frm=own, subject="loopback"),
         {"ADDR": "127.0.0.1", "HELO": "localhost"}),
    ]
    for name, mfrom, msg, xc in external:
        xclient = {"ADDR": OUTSIDE, "HELO": "mail.example.org"}
        xclient.update(xc)
        r = pf.send(mfrom, RCPT, msg, xclient=xclient)
        t.eq(r.code, 250, "%s: accepted" % name)
        t.match(r" internal=no ", summary(ag, r.queue_id), name)
        t.not_contains(summary(ag, r.queue_id), "signed=", name)
    got = sink.wait_for(len(external), timeout=30)
    for m in got:
        t.eq(our_signatures(m.raw), [], "%s: not signed" % m["Subject"])
        t.eq(len(m.get_all("DKIM-Signature") or []), 0,
             "%s: no signature at all" % m["Subject"])

    # the controls: internal_hosts, SMTP AUTH, a subdomain from inside
    n = len(external)
    inside = [
        ("internal host", lambda m: pf.send(
            own, RCPT, m, xclient={"ADDR": INSIDE, "HELO": "ws.sec.example"}),
         own),
        ("internal host, subdomain", lambda m: pf.send(
            sub, RCPT, m, xclient={"ADDR": INSIDE, "HELO": "ws.sec.example"}),
         sub),
        ("SMTP AUTH", lambda m: pf.submit(own, RCPT, m), own),
    ]
    for name, send, frm in inside:
        r = send(H.make_message(frm=frm, subject=name))
        t.eq(r.code, 250, "%s: accepted" % name)
        t.match(r" internal=yes .*signed=%s:sec " % DOMAIN,
                summary(ag, r.queue_id), name)
    got = sink.wait_for(n + len(inside), timeout=30)[n:]
    for m in got:
        raw = K.delivered(m)
        t.eq([s.get("s") for s in our_signatures(raw)], ["sec"],
             "%s: signed once" % m["Subject"])
        t.ok(verifies(raw, key), "%s: our signature verifies" % m["Subject"])

    # internal_auth = no: an authenticated client is just a client
    ag.reload(internal_auth=False)
    ag.wait_stderr(r"configuration reloaded")
    r = pf.submit(own, RCPT, H.make_message(frm=own, subject="auth-no"))
    t.eq(r.code, 250)
    t.match(r" auth=alice@test\.example internal=no ",
            summary(ag, r.queue_id), "internal_auth = no")
    m = sink.wait_for(n + len(inside) + 1, timeout=30)[-1]
    t.eq(our_signatures(m.raw), [], "internal_auth = no: not signed")


def edge_message():
    return H.make_message(frm="alice@" + DOMAIN, subject="edge")


@tap.test
def internal_edges(t):
    """internal_hosts at its edges, with client addresses no MTA on this
    box can pose (miltc sends them in the milter CONNECT): a prefix's
    first and last addresses are internal, the neighbours outside are
    not; an IPv4 entry matches the client seen as ::ffff:a.b.c.d and
    nothing else of IPv6 (not ::a.b.c.d, not NAT64 64:ff9b::/96); no
    entry is implied (loopback, ::/0, 0.0.0.0/0); an empty {auth_authen}
    is no authentication (authgate.conf(5) TRUST, address list)."""
    key = signing_key()
    dns = H.DnsServer().start()
    conf, _ = signing_conf(t, key)
    conf.update({"authserv_id": ID, "spf_enable": False,
                 "dmarc_enable": False, "rules_enable": False,
                 "internal_hosts": "192.0.2.64/26, 2001:db8:1::/48, "
                                   "203.0.113.9"})
    ag = authgate(t, settings=conf, dns=dns)
    cases = [
        ("192.0.2.64", True), ("192.0.2.127", True),
        ("192.0.2.63", False), ("192.0.2.128", False),
        ("::ffff:192.0.2.64", True), ("::ffff:192.0.2.127", True),
        ("::ffff:192.0.2.63", False), ("::ffff:192.0.2.128", False),
        ("::192.0.2.64", False), ("64:ff9b::c000:240", False),
        ("2001:db8:1::", True), ("2001:db8:1:ffff:ffff:ffff:ffff:ffff", True),
        ("2001:db8:0:ffff:ffff:ffff:ffff:ffff", False),
        ("2001:db8:2::", False),
        ("203.0.113.9", True), ("::ffff:203.0.113.9", True),
        ("203.0.113.8", False), ("203.0.113.10", False),
        ("127.0.0.1", False), ("::1", False), ("0.0.0.0", False),
        ("::", False), ("255.255.255.255", False), ("10.0.0.1", False),
        ("fe80::1", False), ("unknown", False),
    ]
    msg = edge_message()
    for ip, want in cases:
        res = miltc(t, ag, msg, "--client-ip", ip, "--mail-from",
                    "alice@" + DOMAIN)
        sigs = added(res, "DKIM-Signature")
        t.eq((len(sigs), res["result"]), (1 if want else 0, "continue"),
             "%s: %s" % (ip, "signed" if want else "not signed"))
    for macro, want in (("{auth_authen}=", False),
                        ("{auth_authen}=alice", True)):
        res = miltc(t, ag, msg, "--client-ip", OUTSIDE, "--macro", macro)
        t.eq(len(added(res, "DKIM-Signature")), 1 if want else 0,
             "external client with %s" % macro)
    lines = ag.grep(r" internal=(yes|no) ")
    t.eq(len(lines), len(cases) + 2, "one summary line per message")


# ---------------------------------------------------------------------------
# 2 forged Authentication-Results


# (header name, value): each claims our authserv-id; "forged-N" marks them
FORGED = [
    ("Authentication-Results", "MX.AuthGate.TEST; spf=pass "
     "smtp.mailfrom=forged-1@example.org"),
    ("Authentication-Results", "(comment (nested) \\) x) %s (after); "
     "dkim=pass header.d=forged-2.example" % ID),
    ("Authentication-Results", "%s 1; dmarc=pass header.from=forged-3"
     % ID),
    ("Authentication-Results", "\r\n\t%s\r\n\t;\r\n\tauth=pass "
     "smtp.auth=forged-4" % ID.upper()),
    ("Authentication-Results", '"%s"; dkim=pass header.d=forged-5' % ID),
    ("Authentication-Results", "%s;dkim=pass header.d=forged-6" % ID),
    ("Authentication-Results", "%s; dkim=pass header.d=forged-6" % ID),
    # unreadable (unclosed comment), but naming us before its first ';'
    ("Authentication-Results", "(x %s; dkim=pass header.d=forged-7"
     % ID),
    ("authentication-results", "%s; spf=pass smtp.mailfrom=forged-8"
     % ID),
    ("AUTHENTICATION-RESULTS", "%s; spf=pass smtp.mailfrom=forged-9"
     % ID),
]
# not ours: kept exactly as they came
FOREIGN = [
    ("Authentication-Results", "foreign.example; spf=pass "
     "smtp.mailfrom=%s" % ID),
    ("Authentication-Results", "%s.evil.example; dkim=pass" % ID),
    ("Authentication-Results", "(%s) foreign2.example;\r\n\tdkim=pass" % ID),
    ("Authentication-Results", "%sing; spf=pass" % ID),
]


def forged_message(subject="forged", extra=()):
    hdrs = []
    for i in range(max(len(FORGED), len(FOREIGN))):
        hdrs += FORGED[i:i + 1] + FOREIGN[i:i + 1]
    msg = H.make_message(frm="alice@example.org", subject=subject,
                         headers=hdrs + list(extra))
    # the obsolete form with white space before the colon (RFC 5322 4.5)
    return msg.replace(b"\r\nTo:", b"\r\nAuthentication-Results : %s; "
                       b"spf=pass smtp.mailfrom=forged-10\r\nTo:"
                       % ID.encode(), 1)


def check_forged(t, m, want_ours, what):
    """exactly one A-R with our id, first in the message, equal to
    want_ours; every foreign one byte for byte, in order; no forged
    text left anywhere."""
    raw = K.delivered(m)
    values = ar_values(m)
    mine = ours(values)
    t.eq(len(mine), 1, "%s: one A-R with our id, got %r" % (what, values))
    t.eq(parse_ar(mine[0])[1], want_ours, "%s: it is ours" % what)
    name, value = first_header(m)
    t.eq((name, H.unfold(value).strip().split(";")[0]),
         ("Authentication-Results", ID), "%s: ours is on top" % what)
    t.not_contains(raw.decode(errors="replace"), "forged-", what)
    at = [raw.find(("%s: %s\r\n" % f).encode()) for f in FOREIGN]
    t.ok(all(i > 0 for i in at) and at == sorted(at),
         "%s: foreign A-R kept byte for byte, in order" % what, got=at)
    t.eq(len(values), len(FOREIGN) + 1, "%s: nothing else" % what)


def forged_stack(t, mta):
    dns = H.DnsServer().start()
    dns.add("example.org.", "TXT", "v=spf1 ip4:198.51.100.0/24 -all", ttl=1)
    sink = H.Sink().start()
    ag = authgate(t, settings={"authserv_id": ID, "dns_timeout": "2s",
                               "rules_enable": False,
                               "internal_hosts": "192.0.2.0/24"},
                     dns=dns)
    cls = H.Postfix if mta == "postfix" else H.Sendmail
    return dns, sink, ag, cls(milter=ag, relay_port=sink).start()


WANT_OURS = [("spf", "pass", {"smtp.mailfrom": "alice@example.org"}),
             ("spf", "none", {"smtp.helo": "mail.example.org"}),
             ("dkim", "none", {}),
             ("dmarc", "none", {"header.from": "example.org"})]


@tap.test
def forged_ar_postfix(t):
    """Every A-R claiming our authserv-id goes, however it is spelled
    (authgate(8): "in any case or quoting, anywhere in the header"); the
    foreign ones stay untouched; ours is added on top.  Then with
    authserv_id empty the MTA's j macro is our id (authgate.conf(5))."""
    dns, sink, ag, pf = forged_stack(t, "postfix")
    r = pf.send("alice@example.org", RCPT, forged_message(),
                xclient={"ADDR": OUTSIDE, "HELO": "mail.example.org"})
    t.eq(r.code, 250)
    t.match(r" removed_ar=%d " % (len(FORGED) + 1), summary(ag, r.queue_id))
    check_forged(t, sink.wait_for(1, timeout=20)[0], WANT_OURS, "postfix")

    ag.reload(authserv_id="")
    ag.wait_stderr(r"configuration reloaded")
    j = H.HOSTNAME
    msg = H.make_message(frm="alice@example.org", subject="j", headers=[
        ("Authentication-Results", "%s; dkim=pass header.d=forged-j1"
         % j.upper()),
        ("Authentication-Results", "(c) %s; spf=pass smtp.mailfrom=forged-j2"
         % j),
        ("Authentication-Results", "%s; dkim=pass" % ID)])
    r = pf.send("alice@example.org", RCPT, msg,
                xclient={"ADDR": OUTSIDE, "HELO": "mail.example.org"})
    t.eq(r.code, 250)
    m = sink.wait_for(2, timeout=20)[1]
    values = ar_values(m)
    t.eq(len(ours(values, j)), 1, "one A-R with the j macro's id")
    t.eq(parse_ar(ours(values, j)[0])[1], WANT_OURS, "and it is ours")
    t.not_contains(m.raw.decode(), "forged-")
    t.eq(ours(values, ID), ["%s; dkim=pass" % ID],
         "the old id is foreign now")


@tap.test
def forged_ar_sendmail(t):
    """The same message through Sendmail, whose header indices do not
    shift after a deletion (tests/integration/README.md (d))."""
    dns, sink, ag, sm = forged_stack(t, "sendmail")
    r = sm.send("alice@example.org", RCPT, forged_message(),
                ehlo="mail.example.org")
    t.eq(r.code, 250)
    # Sendmail's client is 127.0.0.1, outside internal_hosts here and
    # outside the SPF record
    want = [("spf", "fail", {"smtp.mailfrom": "alice@example.org"})] + \
        WANT_OURS[1:]
    check_forged(t, sink.wait_for(1, timeout=30)[0], want, "sendmail")

# ---------------------------------------------------------------------------
# 3 header injection


INJ = "inj.example"
# a local part that tries to close Received-SPF's comment and add keys
MFROM = '"x) client-ip=6.6.6.6; identity=helo; (y"@%s' % INJ
HELO = 'inj.example;dkim=pass(x"'        # XCLIENT: no spaces
FROM_LOCAL = '"a;dmarc=pass"@%s' % INJ
# (';' ends a DKIM tag: it cannot be in one)
SIG_D, SIG_S, SIG_I = INJ + '"(x', 'se)l"', '@%s"(x' % INJ


def injection_message(extra_sig=None):
    sig = ("v=1; a=rsa-sha256; d=%s; s=%s; i=%s; c=relaxed/relaxed; "
           "h=from; bh=AAAA; b=BB)B\"B" % (SIG_D, SIG_S, SIG_I))
    hdrs = [("DKIM-Signature", sig),
            ("X-Authgate-Score", "-50.0/5.0"), ("X-Authgate-Spam", "no"),
            ("X-Authgate-Report", "forged-report")]
    if extra_sig:
        hdrs.append(("DKIM-Signature", extra_sig))
    return H.make_message(frm='"Eve; dmarc=pass (x" <%s>' % FROM_LOCAL,
                          subject="injection", headers=hdrs)


def check_received_spf(t, value, ip, mfrom, helo, what):
    try:
        result, keys = parse_received_spf(value)
    except Unparsable as e:
        t.fail("%s: Received-SPF: %s" % (what, e))
    t.eq((result, keys), ("pass", {
        "receiver": ID, "client-ip": ip, "envelope-from": mfrom,
        "helo": helo, "identity": "mailfrom"}),
        "%s: Received-SPF has exactly its keys" % what)


@tap.test
def injection_through_postfix(t):
    """Values an SMTP client controls land in our headers quoted, so each
    header parses to exactly what authgate decided (RFC 8601 and RFC 7208
    9.1 grammar, checked strictly), with every value intact inside its
    quoting; the X-Authgate-* headers a client sends are removed
    (authgate.conf(5) RULES AND SCORES)."""
    dns = H.DnsServer().start()
    dns.add(INJ + ".", "TXT", "v=spf1 ip4:198.51.100.0/24 -all", ttl=1)
    sink = H.Sink().start()
    ag = authgate(t, settings={"authserv_id": ID, "spf_received_header": True,
                               "dns_timeout": "2s"}, dns=dns)
    pf = H.Postfix(milter=ag, relay_port=sink).start()
    r = pf.send(MFROM, RCPT, injection_message(),
                xclient={"ADDR": OUTSIDE, "HELO": xtext(HELO)})
    t.eq(r.code, 250)
    m = sink.wait_for(1, timeout=20)[0]
    helo = HELO.replace("=", "+3D")     # Postfix keeps XCLIENT's xtext
    values = ar_values(m)
    t.eq(len(values), 1, "one A-R")
    t.eq(parse_ar(values[0]), (ID, [
        ("spf", "pass", {"smtp.mailfrom": MFROM}),
        ("spf", "none", {"smtp.helo": helo}),
        ("dkim", "permerror", {"reason": "key not found in DNS",
                               "header.d": SIG_D, "header.i": SIG_I,
                               "header.s": SIG_S, "header.a": "rsa-sha256",
                               "header.b": 'BB)B"B'}),
        ("dmarc", "none", {"header.from": INJ})]),
        "our A-R, exactly")
    check_received_spf(t, H.unfold(m["Received-SPF"]), OUTSIDE, MFROM, helo,
                       "postfix")
    t.eq([H.unfold(v) for v in m.get_all("X-Authgate-Score")],
         [m["X-Authgate-Score"]], "one X-Authgate-Score")
    t.match(r"^\d+\.\d/5\.0$", m["X-Authgate-Score"], "and it is ours")
    t.eq((m.get_all("X-Authgate-Spam") or [],
          m.get_all("X-Authgate-Report") or []), ([], []),
         "the client's X-Authgate-* removed")


@tap.test
def injection_over_milter(t):
    """What no MTA passes on but a milter must survive anyway: CR, LF,
    NUL-free 8-bit bytes and spaces in the HELO name and the envelope
    sender (miltc), 8-bit bytes in DKIM tags.  Our headers are folded
    with LF+TAB only, carry no CR, and parse to exactly our results."""
    dns = H.DnsServer().start()
    dns.add(INJ + ".", "TXT", "v=spf1 ip4:198.51.100.0/24 -all", ttl=1)
    ag = authgate(t, settings={"authserv_id": ID, "spf_received_header": True,
                               "dns_timeout": "2s"}, dns=dns)
    helo = ("inj.example\r\nAuthentication-Results: %s; dkim=pass\r\n"
            "\t(\xe9; spf=pass" % ID)
    mfrom = "<a\r\nX-Injected: yes@%s>" % INJ
    sig8 = ("v=1; a=rsa-sha256; d=\xe4.%s; s=sel; i=\xe9@\xe4.%s; "
            "c=relaxed/relaxed; h=from; bh=AAAA; b=CCCC" % (INJ, INJ))
    msg = injection_message(extra_sig=sig8)
    res = miltc(t, ag, msg.decode().encode("latin-1"), "--client-ip",
                OUTSIDE, "--helo", helo, "--mail-from", mfrom)
    t.eq(res["result"], "continue")
    for op, name, value in res["edits"]:
        if op == "delete":
            continue
        t.not_contains(value, "\r", "%s: no CR" % name)
        t.ok(all(value[i + 1:i + 2] == "\t" for i, c in enumerate(value)
                 if c == "\n"), "%s: every LF starts a fold" % name,
             got=value)
    values = added(res, "Authentication-Results")
    t.eq(len(values), 1, "one A-R")
    sid, results = parse_ar(values[0].replace("\n", ""))
    # (argv is UTF-8: two bytes, two '?', for the e-acute)
    masked_helo = re.sub(rb"[^\x20-\x7e]", b"?", helo.encode()).decode()
    masked_from = "a??X-Injected: yes@%s" % INJ
    t.eq((sid, [(a, b) for a, b, _ in results]),
         (ID, [("spf", "pass"), ("spf", "none"), ("dkim", "permerror"),
               ("dkim", "neutral"), ("dmarc", "none")]),
         "our A-R: exactly our results")
    t.eq((results[0][2], results[1][2]),
         ({"smtp.mailfrom": masked_from}, {"smtp.helo": masked_helo}),
         "CR, LF and 8-bit bytes masked, the rest kept inside the quotes")
    t.eq(results[2][2], {"reason": "key not found in DNS",
                         "header.d": SIG_D, "header.i": SIG_I,
                         "header.s": SIG_S, "header.a": "rsa-sha256",
                         "header.b": 'BB)B"B'}, "DKIM tags kept, quoted")
    # libopendkim refuses a d= with 8-bit bytes: nothing of it is copied
    t.eq(results[3][2], {"reason": "domain tag missing",
                         "header.a": "rsa-sha256"}, "8-bit d= refused")
    rspf = added(res, "Received-SPF")
    t.eq(len(rspf), 1, "one Received-SPF")
    check_received_spf(t, rspf[0].replace("\n", ""), OUTSIDE, masked_from,
                       masked_helo, "miltc")

    # From: domains: UTF-8 becomes its A-label (RFC 9989 5.3.1), raw
    # Latin-1 and a '(' are no domain at all
    for frm, want in ((b"a@\xc3\xa9vil.example", {
                           "header.from": "xn--vil-9la.example"}),
                      (b"a@\xe9vil.example", {
                          "reason": "no usable From: domain"}),
                      (b"a@ex(ample.com", {
                          "reason": "no usable From: domain"})):
        msg = b"From: \"x\" <" + frm + b">\r\nSubject: x\r\n\r\nbody\r\n"
        res = miltc(t, ag, msg, "--client-ip", OUTSIDE)
        sid, results = parse_ar(added(res, "Authentication-Results")[0]
                                .replace("\n", ""))
        t.eq([p for m, _, p in results if m == "dmarc"], [want],
             "From: %r" % frm)


# ---------------------------------------------------------------------------
# 4 privileges and paths


def proc_status(pid):
    with open("/proc/%s/status" % pid) as f:
        return dict(ln.split(":", 1) for ln in f.read().splitlines()
                    if ":" in ln)


def low_port():
    """A free privileged port on 127.0.0.1 (root only)."""
    for port in range(600, 1000):
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port))
            return port
        except OSError:
            continue
    raise RuntimeError("no free port below 1024")


@tap.test
def privileges(t):
    """Started as root, authgate binds a privileged port and then runs as
    `user` for good (authgate.conf(5) user, authgate(8) SECURITY): real,
    effective, saved and file-system ids of every thread are the user's,
    the groups are the user's, no capability is left; it serves mail."""
    if os.getuid() != 0:
        t.skip("needs root (the privilege drop only happens as root)")
    pw = pwd.getpwnam("nobody")
    port = low_port()
    dns = H.DnsServer().start()
    ag = authgate(t, settings={"authserv_id": ID, "user": "nobody",
                               "spf_enable": False, "dmarc_enable": False},
                     port=port, dns=dns)
    t.ok(H.listening(port), "listening on port %d" % port)
    tasks = os.listdir("/proc/%d/task" % ag.pid)
    t.ok(len(tasks) > 1, "several threads", got=tasks)
    groups = {str(g) for g in os.getgrouplist("nobody", pw.pw_gid)}
    for tid in tasks:
        st = proc_status("%d/task/%s" % (ag.pid, tid))
        t.eq(st["Uid"].split(), [str(pw.pw_uid)] * 4, "thread %s: Uid" % tid)
        t.eq(st["Gid"].split(), [str(pw.pw_gid)] * 4, "thread %s: Gid" % tid)
        t.eq(set(st["Groups"].split()) - groups, set(),
             "thread %s: only the user's groups" % tid)
        for cap in ("CapInh", "CapPrm", "CapEff", "CapAmb"):
            t.eq(int(st[cap], 16), 0, "thread %s: %s" % (tid, cap))
    res = miltc(t, ag, H.make_message(frm="alice@example.org"),
                "--client-ip", OUTSIDE)
    t.eq((res["result"], len(added(res, "Authentication-Results"))),
         ("continue", 1), "it serves mail on the privileged port")
    t.eq(os.readlink("/proc/%d/cwd" % ag.pid), "/", "it works in /")


def run_daemon(t, args, cwd=None):
    """authgate -f with args that must stop it at start: -> (status,
    stderr).  (It listens before it loads keys, so a start that fails
    there is seen by its exit, not by its port.)"""
    argv = [H.default_authgate_bin(), "-f"] + list(args) + [
        "-o", "milter_socket=inet:%d@127.0.0.1" % H.free_port(),
        "-o", "pid_file=", "-o", "dns_servers=127.0.0.1@9"]
    if os.getuid() == 0:
        argv += ["-o", "user=nobody"]
    r = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       cwd=cwd, timeout=20, check=False)
    return r.returncode, r.stderr.decode(errors="replace")


def conf_args(conf):
    """settings as -o name=value arguments"""
    out = []
    for k, v in conf.items():
        if isinstance(v, bool):
            v = "yes" if v else "no"
        out += ["-o", "%s=%s" % (k, v)]
    return out


@tap.test
def key_modes(t):
    """A private key its group or others may read or write is refused at
    start with the file, who may read it and the mode; one the service
    user cannot read (root's 0600: keys are loaded after the privilege
    drop) is refused as unreadable; 0600 owned by the user signs
    (authgate.conf(5) DKIM, KeyTable)."""
    key = signing_key()
    dns = H.DnsServer().start()
    K.publish(dns, key, ttl=1)
    base = {"authserv_id": ID, "spf_enable": False, "dmarc_enable": False,
            "rules_enable": False}
    cases = [(0o640, "readable by its group"), (0o604, "readable by others"),
             (0o644, "readable by others"), (0o620, "writable by its group"),
             (0o602, "writable by others"), (0o660, "readable by its group")]
    for mode, who in cases:
        conf, path = signing_conf(t, key, mode=mode)
        rc, err = run_daemon(t, conf_args(dict(base, **conf)))
        t.eq(rc, EX_CONFIG, "mode %04o: exit status" % mode)
        t.contains(err, "%s: private key is %s (mode %04o): chmod 600 it"
                   % (path, who, mode), "mode %04o" % mode)
    if os.getuid() == 0:
        conf, path = signing_conf(t, key, mode=0o600, owner="root")
        rc, err = run_daemon(t, conf_args(dict(base, **conf)))
        t.eq(rc, EX_CONFIG, "root's key: exit status")
        t.contains(err, "%s: cannot read the key: Permission denied" % path,
                   "root's key, read as nobody")
    conf, path = signing_conf(t, key, mode=0o600)
    ag = authgate(t, settings=dict(base, **conf), dns=dns)
    res = miltc(t, ag, edge_message(), "--client-ip", OUTSIDE, "--macro",
                "{auth_authen}=alice")
    t.eq(len(added(res, "DKIM-Signature")), 1, "mode 0600 signs")


@tap.test
def paths(t):
    """A missing -c file, a relative path in the configuration (key_table,
    a KeyTable key, rules_files) and a missing key file stop the daemon
    at start, naming the file; a relative -c is made absolute, the
    daemon works in "/", and a reload reads that same file (authgate(8)
    -c, authgate.conf(5))."""
    key = signing_key()
    d = key_dir(t)
    _, keypath = signing_conf(t, key)
    kt = os.path.join(d, "kt-rel")
    with open(kt, "w") as f:
        f.write("k1 %s:sec:keys/sec.pem\n" % DOMAIN)
    kt2 = os.path.join(d, "kt-missing")
    with open(kt2, "w") as f:
        f.write("k1 %s:sec:%s/nothere.pem\n" % (DOMAIN, d))
    st = os.path.join(d, "signing_table")
    missing = os.path.join(t.tmpdir, "nothere", "authgate.conf")
    cases = [
        ("missing -c file", ["-c", missing],
         "%s: cannot open: No such file or directory" % missing),
        ("relative key_table", ["-o", "key_table=keys/key_table", "-o",
                                "signing_table=" + st],
         "key_table: 'keys/key_table' is not an absolute path"),
        ("relative key path in the KeyTable",
         ["-o", "key_table=" + kt, "-o", "signing_table=" + st],
         "%s:1: key 'k1': need a domain, a selector and an absolute" % kt),
        ("missing key file",
         ["-o", "key_table=" + kt2, "-o", "signing_table=" + st],
         "%s/nothere.pem: cannot read the key: No such file" % d),
        ("relative rules file", ["-o", "rules_files=local.rules"],
         "rules_files: 'local.rules' is not an absolute path"),
    ]
    for name, args, want in cases:
        rc, err = run_daemon(t, args, cwd=t.tmpdir)
        t.eq(rc, EX_CONFIG, "%s: exit status" % name)
        t.contains(err, want, name)

    # a relative -c
    sub = os.path.join(t.tmpdir, "etc")
    os.makedirs(sub)
    conf = os.path.join(sub, "a.conf")
    with open(conf, "w") as f:
        f.write("authserv_id = first.test\nspf_enable = no\n")
    port = H.free_port()
    argv = [H.default_authgate_bin(), "-f", "-c", "a.conf", "-o",
            "milter_socket=inet:%d@127.0.0.1" % port, "-o", "pid_file=",
            "-o", "dns_servers=127.0.0.1@%d" % H.DnsServer().start().port]
    if os.getuid() == 0:
        argv += ["-o", "user=nobody"]
    ag = H.Daemon(argv, ready_port=port, cwd=sub, name="authgate").start()
    t.defer(clean_exit, ag)
    ag.port = port
    t.eq(os.readlink("/proc/%d/cwd" % ag.pid), "/", "it works in /")
    ag.wait_stderr(r"listening on .*, configuration %s$" % re.escape(conf))
    with open(conf, "w") as f:
        f.write("authserv_id = second.test\nspf_enable = no\n")
    ag.signal(signal.SIGHUP)
    ag.wait_stderr(r"configuration reloaded from %s " % re.escape(conf))
    res = miltc(t, ag, H.make_message(frm="alice@example.org"),
                "--client-ip", OUTSIDE)
    t.eq([v.split(";")[0] for v in added(res, "Authentication-Results")],
         ["second.test"], "the reload read the same file")


# ---------------------------------------------------------------------------
# 5 bounded resources per message


def folded(text, width=70):
    """text as a folded header value (CRLF + space every width bytes)."""
    return "\r\n ".join(text[i:i + width] for i in range(0, len(text), width))


@tap.test
def limit_headers(t):
    """max_headers = 10, header_size_limit = 1k (authgate.conf(5)
    LIMITS): a message of 40 headers and a 5 KB Subject is accepted and
    delivered unchanged, the cuts are logged, and forged A-R headers are
    removed past the count and past the size."""
    dns = H.DnsServer().start()
    sink = H.Sink().start()
    ag = authgate(t, settings={"authserv_id": ID, "max_headers": 10,
                               "header_size_limit": "1k",
                               "dns_timeout": "2s"}, dns=dns)
    pf = H.Postfix(milter=ag, relay_port=sink).start()
    subject = " ".join("word%04d" % i for i in range(560))   # 5 KB
    # a 3 KB comment, folded, before our id
    long_forged = "(%s)\r\n %s; spf=pass smtp.mailfrom=forged-long" % (
        folded("c" * 3000), ID)
    hdrs = [("Authentication-Results", long_forged)]
    hdrs += [("X-Filler-%02d" % i, "value %d" % i) for i in range(30)]
    hdrs += [("Authentication-Results", "%s; dkim=pass header.d=forged-late"
              % ID), FOREIGN[0]]
    msg = H.make_message(frm="alice@example.org", subject=folded(subject),
                         headers=hdrs)
    r = pf.send("alice@example.org", RCPT, msg,
                xclient={"ADDR": OUTSIDE, "HELO": "mail.example.org"})
    t.eq(r.code, 250)
    line = summary(ag, r.queue_id)
    t.match(r" removed_ar=2 .*flags=0x3 action=accept ", line)
    t.ok(ag.grep(r"more than 10 headers; the rest are not checked"),
         "the count cut is logged")
    t.ok(ag.grep(r"header over header_size_limit \(\d+ bytes\), truncated"),
         "the size cut is logged")
    m = sink.wait_for(1, timeout=20)[0]
    t.eq(H.unfold(m["Subject"]), H.unfold(folded(subject)),
         "the Subject delivered whole")
    t.eq(len([k for k in m.msg.keys() if k.startswith("X-Filler-")]), 30,
         "every header delivered")
    t.not_contains(m.raw.decode(), "forged-")
    t.eq(len(ours(ar_values(m))), 1, "one A-R with our id")
    t.contains(K.delivered(m).decode(), "%s: %s\r\n" % FOREIGN[0])


def sign_many(key, selectors, msg):
    """msg with one DKIM-Signature per selector (key published under each
    selector), the first selector's on top."""
    for sel in reversed(selectors):
        sig = dkim.sign(msg, sel.encode(), DOMAIN.encode(), key.pem,
                        include_headers=[b"from", b"subject"])
        msg = sig.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n") + msg
    return msg


def dkim_results(res):
    sid, results = parse_ar(added(res, "Authentication-Results")[0]
                            .replace("\n", ""))
    return [(r, p.get("header.s"), p.get("reason")) for m, r, p in results
            if m == "dkim"]


@tap.test
def limit_dkim_dns(t):
    """dkim_max_signatures = 2: of 4 valid signatures 2 are verified and
    the rest are one dkim=neutral saying so, their keys never asked for;
    dns_max_queries_per_message = 10 (dkim_max_signatures 50): of 14
    signatures with 14 keys, 10 keys are asked for and those 10 pass,
    the other 4 are a permanent error; both messages are accepted
    (authgate.conf(5) DKIM and DNS)."""
    key = signing_key()
    dns = H.DnsServer().start()
    sels = ["s%d" % i for i in range(1, 5)] + ["t%d" % i for i in range(1, 15)]
    for sel in sels:
        dns.add("%s._domainkey.%s." % (sel, DOMAIN), "TXT", key.txt, ttl=1)
    ag = authgate(t, settings={"authserv_id": ID, "spf_enable": False,
                               "dmarc_enable": False, "rules_enable": False,
                               "dkim_max_signatures": 2}, dns=dns)
    base = H.make_message(frm="alice@" + DOMAIN, subject="many")
    res = miltc(t, ag, sign_many(key, sels[:4], base), "--client-ip",
                OUTSIDE)
    t.eq((res["result"], dkim_results(res)), ("continue", [
        ("pass", "s1", None), ("pass", "s2", None),
        ("neutral", None, "2 more signatures not checked "
         "(dkim_max_signatures)")]), "dkim_max_signatures = 2")
    t.eq([dns.count("%s._domainkey.%s." % (s, DOMAIN), "TXT")
          for s in sels[:4]], [1, 1, 0, 0], "keys asked for")

    ag.reload(dkim_max_signatures=50, dns_max_queries_per_message=10)
    ag.wait_stderr(r"configuration reloaded")
    dns.clear_log()
    res = miltc(t, ag, sign_many(key, sels[4:], base), "--client-ip",
                OUTSIDE)
    got = dkim_results(res)
    t.eq(res["result"], "continue")
    asked = [s for s in sels[4:]
             if dns.count("%s._domainkey.%s." % (s, DOMAIN), "TXT")]
    t.eq(len(asked), 10, "10 queries: %s" % asked)
    t.eq(sorted(s for r, s, _ in got if r == "pass"), sorted(asked),
         "the keys asked for verify")
    t.eq(sorted((r, s) for r, s, _ in got if r != "pass"),
         sorted(("permerror", s) for s in sels[4:] if s not in asked),
         "the others: a permanent error")


RULES = r"""header   TEST_REDOS   Subject =~ /^(a+)+$/
score    TEST_REDOS   0.1
body     TEST_MAGIC   /MAGICWORD/
score    TEST_MAGIC   0.1
body     TEST_LATE    /LATEWORD/
score    TEST_LATE    0.1
"""


def nested(depth, inner):
    """A message whose text part sits depth multiparts deep."""
    part = "Content-Type: text/plain\r\n\r\n%s\r\n" % inner
    for i in reversed(range(depth)):
        part = ('Content-Type: multipart/mixed; boundary="b%d"\r\n\r\n'
                "--b%d\r\n%s\r\n--b%d--\r\n" % (i, i, part, i))
    head, body = part.split("\r\n\r\n", 1)
    return H.make_message(frm="alice@example.org", subject="nested %d"
                          % depth, headers=[("MIME-Version", "1.0"),
                                            tuple(head.split(": ", 1))],
                          body=body)


def many_parts(n, words):
    """A multipart/mixed of n small text parts; words: {index: text}."""
    body = "".join("--bb\r\nContent-Type: text/plain\r\n\r\n%s\r\n"
                   % words.get(i, "part %d" % i) for i in range(n))
    return H.make_message(frm="alice@example.org", subject="parts %d" % n,
                          headers=[("MIME-Version", "1.0"),
                                   ("Content-Type",
                                    'multipart/mixed; boundary="bb"')],
                          body=body + "--bb--\r\n")


def hits(res):
    """The rules named in the message's X-Authgate-Report."""
    reports = added(res, "X-Authgate-Report")
    return set(re.findall(r"\b([A-Z][A-Z0-9_]+)=", reports[0])) \
        if reports else set()


@tap.test
def limit_rules_mime(t):
    """rules_match_limit = 1000: a regex that backtracks without end
    counts as no match, the log names the rule, the message goes on at
    once; rules_scan_limit = 1k: text past it is not scanned; MIME: a
    part nested deeper than 20 levels and parts past the 1000th are not
    walked, and mime_broken() hits (authgate.conf(5) RULES AND SCORES,
    authgate-rules(5))."""
    path = os.path.join(t.tmpdir, "sec.rules")
    with open(path, "w") as f:
        f.write(RULES)
    os.chmod(path, 0o644)
    dns = H.DnsServer().start()
    ag = authgate(t, settings={"authserv_id": ID, "spf_enable": False,
                               "dmarc_enable": False, "rules_rdns": False,
                               "rules_files": path, "spam_header_score": 0,
                               "rules_match_limit": 1000,
                               "rules_scan_limit": "1k"}, dns=dns)

    def run(msg, name):
        t0 = time.monotonic()
        res = miltc(t, ag, msg, "--client-ip", OUTSIDE)
        t.eq(res["result"], "continue", "%s: accepted" % name)
        return hits(res), time.monotonic() - t0

    got, _ = run(H.make_message(frm="alice@example.org", subject="aaaa"),
                 "short subject")
    t.ok("TEST_REDOS" in got, "the regex matches a short subject", got=got)
    got, secs = run(H.make_message(frm="alice@example.org",
                                   subject="a" * 40 + "!"), "backtracking")
    t.ok("TEST_REDOS" not in got, "runaway regex: no match", got=got)
    t.between(secs, 0, 5, "and no runaway time")
    t.ok(ag.grep(r"rules: TEST_REDOS .*reached rules_match_limit"),
         "the log names the rule")

    got, _ = run(H.make_message(frm="alice@example.org",
                                body="MAGICWORD\r\n"), "word at the start")
    t.ok("TEST_MAGIC" in got, "scanned within rules_scan_limit", got=got)
    got, _ = run(H.make_message(frm="alice@example.org",
                                body="filler line\r\n" * 400 +
                                "MAGICWORD\r\n"), "word after 5 KB")
    t.ok("TEST_MAGIC" not in got, "not scanned past rules_scan_limit",
         got=got)

    ag.reload(rules_scan_limit="1m")
    ag.wait_stderr(r"configuration reloaded")
    got, _ = run(nested(5, "MAGICWORD"), "5 levels")
    t.ok("TEST_MAGIC" in got and "MIME_BROKEN" not in got,
         "5 levels deep: walked", got=got)
    got, _ = run(nested(25, "MAGICWORD"), "25 levels")
    t.ok("TEST_MAGIC" not in got and "MIME_BROKEN" in got,
         "25 levels deep: not walked, mime_broken()", got=got)
    got, _ = run(many_parts(1100, {5: "MAGICWORD", 1050: "LATEWORD"}),
                 "1100 parts")
    t.ok({"TEST_MAGIC", "MIME_BROKEN"} <= got and "TEST_LATE" not in got,
         "1100 parts: the first ones walked, not past 1000, mime_broken()",
         got=got)
    got, _ = run(many_parts(990, {985: "LATEWORD"}), "990 parts")
    t.ok("TEST_LATE" in got and "MIME_BROKEN" not in got,
         "990 parts: all walked", got=got)


if __name__ == "__main__":
    tap.main()
