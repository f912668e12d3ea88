#!/usr/bin/python3
"""test_dmarc_mailauth.py - authgate's DMARC against mailauth's, message by
message.

    /usr/bin/python3 tests/integration/test_dmarc_mailauth.py [NAME...]

Each scenario is a message (From:, DKIM signatures made here with dkimpy,
Ed25519 keys), an SMTP envelope (client IP, HELO, MAIL FROM) and the DNS
data of one DnsServer on 127.0.0.1 (SPF record of the MAIL FROM domain,
the DKIM key records, the _dmarc records, A/MX records that make names
exist, SERVFAIL behaviours).  Both sides do everything themselves from the
same bytes and the same DNS:

* authgate: `authgate check` (its own SPF and DKIM, then DMARC; with
  dmarc_enforce = no and every spf_*_action = accept, so that the
  Authentication-Results header is always printed): the dmarc= result(s),
  header.from and policy.dmarc.
* mailauth 4.13.3 (npm, peers/setup-node.sh): authenticate() through
  peers/mailauth_dmarc.js (DKIM, SPF, then DMARC; ARC and BIMI off), its
  resolver pointed at the scenario's DnsServer: dmarc.status.result and
  dmarc.policy (false when it returns no DMARC result).

For each scenario the result and policy of both are asserted.  Where they
differ, the scenario says both values and why: the RFC 9989 section and
which side follows it.  mailauth 4.13.3 finds the Organizational Domain
with the public suffix list (tldts), not the DNS Tree Walk, and has no np,
psd or t (its own rfc9989 compliance tests skip those); its alignment
ignores adkim/aspf=s (tools.js getAlignment gets {strict} as a truthy
object and always ends in the relaxed comparison).  The first test
checks that the installed mailauth is that version.

Runs everything once (first test, ~10 s: one `authgate check` per
scenario, 4 at a time, one node process for all of mailauth's), then one
TAP test per scenario.
"""

import concurrent.futures
import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dkim_kit as K  # noqa: E402
import dns_server  # noqa: E402
import harness as H  # noqa: E402
import tap  # noqa: E402

GOOD_IP = "192.0.2.10"          # in every SPF record here
BAD_IP = "198.51.100.77"        # in none
SPF = "v=spf1 ip4:192.0.2.0/24 -all"
AUTHSERV = "authgate.test"
SETTINGS = ["dns_timeout=2s", "authserv_id=" + AUTHSERV, "dmarc_enforce=no",
            "spf_fail_action=none", "spf_softfail_action=none",
            "spf_permerror_action=none", "on_dns_error=accept"]
NONE = None                     # "no DMARC result / no policy"


class Scenario:
    """frm: the From: value; dkim: d= of each signature (dkimpy, on top);
    records: {name: [value or (TYPE, value)]} (a bare value is TXT);
    behave: {name: DnsServer.behave kwargs}; ag: authgate's (result,
    policy) or a list of (header.from, result, policy) for several From
    domains; ma: mailauth's (result, policy) when it differs, with why:
    the RFC 9989 section and which side follows it; todo: ag is what RFC
    9989 says and authgate is known not to do it (a bug, reported): the
    test is an expected failure (TAP TODO) until authgate is fixed."""

    def __init__(self, name, frm, records=None, mail_from="b@other.net",
                 ip=GOOD_IP, helo="mx.sender.example", dkim=(),
                 behave=None, tamper=False, headers=(), ag=None, ma="same",
                 why=None, queries=None, todo=None):
        self.name, self.frm, self.records = name, frm, records or {}
        self.mail_from, self.ip, self.helo = mail_from, ip, helo
        self.dkim, self.behave, self.tamper = list(dkim), behave or {}, \
            tamper
        self.headers = list(headers)
        self.ag = ag
        self.ma = ag if ma == "same" else ma
        self.why = why
        self.queries = queries
        self.todo = todo
        if self.ma != self.ag and not why:
            raise ValueError("%s: a difference needs its why" % name)
        # filled in by run_all()
        self.port = None
        self.ag_out = self.ag_err = None
        self.ag_queries = []
        self.ma_out = None

    def spf_domain(self):
        return (self.mail_from.rpartition("@")[2] if self.mail_from
                else self.helo)


def S(*a, **kw):
    SCENARIOS.append(Scenario(*a, **kw))


SCENARIOS = []
R = "v=DMARC1; p=reject"

# --- alignment ---------------------------------------------------------------
S("spf_aligned", "a@example.com", {"_dmarc.example.com": [R]},
  mail_from="b@example.com", ag=("pass", "reject"))
S("dkim_aligned", "a@example.com", {"_dmarc.example.com": [R]},
  dkim=["example.com"], ag=("pass", "reject"))
S("unaligned_spf_and_dkim_pass", "a@example.com", {"_dmarc.example.com": [R]},
  dkim=["other.net"], ag=("fail", "reject"))
S("spf_fail_no_dkim", "a@example.com", {"_dmarc.example.com": [R]},
  mail_from="b@example.com", ip=BAD_IP, ag=("fail", "reject"))
S("relaxed_spf_subdomain", "a@example.com", {"_dmarc.example.com": [R]},
  mail_from="b@bounce.example.com", ag=("pass", "reject"))
S("relaxed_dkim_subdomain_author", "a@news.example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=quarantine"],
   "news.example.com": [("A", "192.0.2.1")]},
  dkim=["example.com"], ag=("pass", "quarantine"))
S("several_dkim_one_aligned", "a@example.com", {"_dmarc.example.com": [R]},
  dkim=["other.net", "example.com"], ag=("pass", "reject"))
S("dkim_body_broken", "a@example.com", {"_dmarc.example.com": [R]},
  dkim=["example.com"], tamper=True, ag=("fail", "reject"))
S("null_sender_helo_aligned", "a@example.com", {"_dmarc.example.com": [R]},
  mail_from="", helo="mail.example.com", ag=("pass", "reject"))
# RFC 9989 3.2.10.2, 4.4.1: strict = the identical domain.  authgate
# follows; mailauth 4.13.3 ends every strict miss in its relaxed test.
S("strict_dkim_subdomain", "a@news.example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=reject; adkim=s"],
   "news.example.com": [("A", "192.0.2.1")]},
  dkim=["example.com"], ag=("fail", "reject"), ma=("pass", "reject"),
  why="RFC 9989 3.2.10.2/4.4.1 (adkim=s: identical domains only): authgate "
  "follows; mailauth 4.13.3 ignores adkim=s")
S("strict_dkim_identical", "a@example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=reject; adkim=s"]},
  dkim=["example.com"], ag=("pass", "reject"))
# RFC 9989 4.4.2: aspf=s, SPF domain bounce.example.com is not example.com
S("strict_spf_subdomain", "a@example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=reject; aspf=s"]},
  mail_from="b@bounce.example.com", ag=("fail", "reject"),
  ma=("pass", "reject"),
  why="RFC 9989 3.2.10.2/4.4.2 (aspf=s: identical domains only): authgate "
  "follows; mailauth 4.13.3 ignores aspf=s")

# --- sp, np and existence (4.7, 4.10.1, 3.2.13, A.4) -------------------------
S("sp_existing_subdomain", "a@sub.example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=reject; sp=quarantine"],
   "sub.example.com": [("A", "192.0.2.1")]}, ag=("fail", "quarantine"))
# np for a From: domain that does not exist: mailauth has no np
S("np_nxdomain_subdomain", "a@ghost.example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=reject; sp=none; np=quarantine"],
   "example.com": [("A", "192.0.2.1")]},
  ag=("fail", "quarantine"), ma=("fail", "none"),
  why="RFC 9989 4.7 np, 3.2.13 (NXDOMAIN: np applies): authgate follows; "
  "mailauth 4.13.3 knows no np and applies sp")
S("np_nodata_subdomain_exists", "a@mxonly.example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=reject; sp=none; np=quarantine"],
   "mxonly.example.com": [("MX", "10 mx.example.com.")]},
  ag=("fail", "none"))
S("np_absent_sp_for_nxdomain", "a@ghost.example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=reject; sp=quarantine"],
   "example.com": [("A", "192.0.2.1")]}, ag=("fail", "quarantine"))
S("subdomain_own_record", "a@mail.example.com",
  {"_dmarc.mail.example.com": ["v=DMARC1; p=none"],
   "_dmarc.example.com": [R]}, ag=("fail", "none"))
S("intermediate_record_not_applied", "a@x.mail.example.net",
  {"_dmarc.mail.example.net": ["v=DMARC1; p=quarantine"],
   "_dmarc.example.net": [R], "x.mail.example.net": [("A", "192.0.2.1")]},
  ag=("fail", "reject"))

# --- t=y (4.7 t) -------------------------------------------------------------
S("t_y_reject", "a@example.com", {"_dmarc.example.com": [R + "; t=y"]},
  ag=("fail", "quarantine"), ma=("fail", "reject"),
  why="RFC 9989 4.7 t (t=y: one level below): authgate follows; mailauth "
  "4.13.3 ignores t")
S("t_y_quarantine", "a@example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=quarantine; t=y"]},
  ag=("fail", "none"), ma=("fail", "quarantine"),
  why="RFC 9989 4.7 t: authgate follows; mailauth 4.13.3 ignores t")

# --- psd and the Organizational Domain (4.10.2) ------------------------------
S("psd_y_org_one_below", "a@giant.bank.example",
  {"_dmarc.bank.example": ["v=DMARC1; p=reject; psd=y"],
   "_dmarc.giant.bank.example": ["v=DMARC1; p=quarantine"],
   "giant.bank.example": [("A", "192.0.2.1")]},
  dkim=["mega.bank.example"], ag=("fail", "quarantine"),
  ma=("pass", "quarantine"),
  why="RFC 9989 4.10.2 rule 2, B.4.3 (below a psd=y PSD each name one "
  "label down is its own Organizational Domain: mega.bank.example does not "
  "align with giant.bank.example): authgate follows; mailauth 4.13.3 takes "
  "bank.example from the public suffix list for both")
S("psd_y_record_applies", "a@small.bank.example",
  {"_dmarc.bank.example": ["v=DMARC1; p=reject; sp=quarantine; psd=y"],
   "small.bank.example": [("A", "192.0.2.1")]},
  dkim=["other.bank.example"], ag=("fail", "quarantine"),
  ma=("pass", "quarantine"),
  why="RFC 9989 4.10.2 rule 2 (other.bank.example is its own "
  "Organizational Domain, so it does not align); the PSD's sp applies "
  "(4.10.1): authgate follows; mailauth 4.13.3 aligns through the PSL's "
  "bank.example")
S("psd_y_not_used_over_own_record", "a@foo.example",
  {"_dmarc.example": ["v=DMARC1; p=reject; psd=y"],
   "_dmarc.foo.example": ["v=DMARC1; p=none"]}, ag=("fail", "none"))
S("psd_n_intermediate_org", "a@a.b.example.org",
  {"_dmarc.b.example.org": ["v=DMARC1; p=reject; psd=n"],
   "_dmarc.example.org": ["v=DMARC1; p=none"],
   "a.b.example.org": [("A", "192.0.2.1")]},
  dkim=["example.org"], ag=("fail", "reject"), ma=("pass", "none"),
  why="RFC 9989 4.10.2 rule 1 (psd=n: b.example.org is the Organizational "
  "Domain, its p=reject applies and example.org does not align): authgate "
  "follows; mailauth 4.13.3 uses example.org (PSL) and its p=none")
S("deep_author_walk_capped", "a@a.b.c.d.e.f.g.h.i.j.k.example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=quarantine"]},
  mail_from="b@example.com", dkim=["example.com"], ag=("pass", "quarantine"),
  queries=["a.b.c.d.e.f.g.h.i.j.k.example.com", "g.h.i.j.k.example.com",
           "h.i.j.k.example.com", "i.j.k.example.com", "j.k.example.com",
           "k.example.com", "example.com", "com"])

# --- several records, none, broken ones (4.10, 4.10.1, 4.7, 4.8) -------------
S("several_records_at_author", "a@multi.example.com",
  {"_dmarc.multi.example.com": ["v=DMARC1; p=none", R],
   "_dmarc.example.com": ["v=DMARC1; p=quarantine"],
   "multi.example.com": [("A", "192.0.2.1")]}, ag=("fail", "quarantine"))
S("several_records_only", "a@example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=none", R]}, dkim=["example.com"],
  ag=("none", NONE))
S("no_record", "a@example.com", {}, dkim=["example.com"], ag=("none", NONE))
S("missing_p_with_rua", "a@example.com",
  {"_dmarc.example.com": ["v=DMARC1; rua=mailto:dmarc@example.com"]},
  dkim=["example.com"], ag=("pass", "none"), ma=("pass", NONE),
  why="RFC 9989 4.10.1 (no p but a valid rua: act as p=none): authgate "
  "follows; mailauth 4.13.3 leaves the policy undefined")
S("missing_p_no_rua", "a@example.com",
  {"_dmarc.example.com": ["v=DMARC1; adkim=s"]},
  ag=("none", NONE), ma=("fail", NONE),
  why="RFC 9989 4.10.1 (no valid p and no rua: no DMARC processing): "
  "authgate follows; mailauth 4.13.3 evaluates with no policy")
S("version_lowercase", "a@example.com",
  {"_dmarc.example.com": ["v=dmarc1; p=reject"]},
  ag=("none", NONE), ma=("fail", "reject"),
  why="RFC 9989 4.7 v, 4.8 %s\"DMARC1\" (case-sensitive: not a DMARC "
  "record): authgate follows; mailauth 4.13.3 matches /^v=DMARC1/i")
S("wsp_around_equals", "a@example.com",
  {"_dmarc.example.com": ["v = DMARC1; p = quarantine"]},
  dkim=["example.com"], ag=("pass", "quarantine"), ma=("none", NONE),
  why="RFC 9989 4.8 (equals = *WSP \"=\" *WSP): authgate follows; mailauth "
  "4.13.3 needs \"v=DMARC1\" with no space")
S("policy_keyword_uppercase", "a@example.com",
  {"_dmarc.example.com": ["v=DMARC1; p=REJECT"]},
  ag=("fail", "reject"), ma=("fail", "REJECT"),
  why="RFC 9989 4.8 / RFC 5234 2.3 (keywords in any case): both read "
  "reject; mailauth 4.13.3 passes the published spelling through")
S("pct_zero_changes_nothing", "a@example.com",
  {"_dmarc.example.com": [R + "; pct=0"]}, ag=("fail", "reject"))

# --- From: (5.3.1, 11.5) -----------------------------------------------------
S("idn_from", "a@b\u00fccher.example",
  {"_dmarc.xn--bcher-kva.example": [R]}, dkim=["xn--bcher-kva.example"],
  ag=("pass", "reject"))
S("two_addresses_one_domain", "a@example.com, b@example.com",
  {"_dmarc.example.com": [R]}, dkim=["example.com"],
  headers=[("Sender", "a@example.com")],
  ag=("pass", "reject"), ma=(NONE, NONE),
  why="RFC 9989 5.3.1 (several addresses, one domain: one Author Domain, "
  "validation proceeds): authgate follows; mailauth 4.13.3 returns no "
  "DMARC result for any second address")
S("two_addresses_two_domains", "a@example.com, b@example.net",
  {"_dmarc.example.com": [R],
   "_dmarc.example.net": ["v=DMARC1; p=quarantine"]},
  dkim=["example.com"], headers=[("Sender", "a@example.com")],
  ag=[("example.com", "pass", "reject"),
      ("example.net", "fail", "quarantine")], ma=(NONE, NONE),
  why="RFC 9989 5.3.1 (MAY proceed with several domains) and 11.5 "
  "(evaluate each): authgate evaluates both; mailauth 4.13.3 gives up")

# --- DNS errors (4.10.1, 5.3.6, 9.2) -----------------------------------------
S("servfail_author_record", "a@example.com", {},
  behave={"_dmarc.example.com": {"rcode": "SERVFAIL"}},
  dkim=["example.com"], ag=("temperror", NONE))
S("servfail_org_record", "a@sub.example.com",
  {"sub.example.com": [("A", "192.0.2.1")]},
  behave={"_dmarc.example.com": {"rcode": "SERVFAIL"}},
  dkim=["example.com"], ag=("temperror", NONE))
S("servfail_tld_in_walk", "a@mail.example.com",
  {"_dmarc.example.com": [R], "mail.example.com": [("A", "192.0.2.1")]},
  behave={"_dmarc.com": {"rcode": "SERVFAIL"}},
  dkim=["example.com"], ag=("temperror", NONE), ma=("pass", "reject"),
  why="RFC 9989 4.10 (the walk asks _dmarc.com too: a record there could "
  "be the Organizational Domain's) and 5.3.6 (a required query failed: "
  "neither pass nor fail): authgate follows; mailauth 4.13.3 never asks "
  "_dmarc.com")
# An identifier can only align when the author's Organizational Domain is
# the identifier or one of its parents (4.10.2 never yields another name),
# so a DNS error in the walk of evil.test cannot matter: the message fails
# (a spoofer must not escape p=reject by making its own lookups fail).
S("unrelated_identifier_walk_servfail", "a@example.com",
  {"_dmarc.example.com": [R]},
  behave={"_dmarc.evil.test": {"rcode": "SERVFAIL"}},
  mail_from="b@evil.test", dkim=["evil.test"], ag=("fail", "reject"))
# np absent: the existence test cannot change the outcome (sp either way).
S("sp_only_existence_servfail", "a@sub.example.org",
  {"_dmarc.example.org": ["v=DMARC1; p=reject; sp=quarantine"]},
  behave={"sub.example.org": {"rcode": "SERVFAIL"}},
  ag=("fail", "quarantine"))


# ---------------------------------------------------------------------------
# running both sides


KEYS = {}


def key_for(domain):
    if domain not in KEYS:
        KEYS[domain] = K.make_key("ed25519", domain, "sel")
    return KEYS[domain]


def zone_of(s):
    z = dns_server.Zone()
    for name, values in s.records.items():
        for v in values:
            rtype, value = v if isinstance(v, tuple) else ("TXT", v)
            z.add(name, rtype, value)
    z.add(s.spf_domain(), "TXT", SPF)
    for d in s.dkim:
        k = key_for(d)
        z.add(k.name, "TXT", k.txt)
    for name, kw in s.behave.items():
        z.behave(name, **kw)
    return z


def message_of(s, signer):
    msg = H.make_message(frm=s.frm, to="rcpt@dest.test",
                         subject="DMARC scenario %s" % s.name,
                         headers=s.headers,
                         msgid="<%s@scenario.test>" % s.name)
    if s.dkim:
        msg = signer.sign_many([(msg, [key_for(d) for d in s.dkim],
                                 "relaxed/relaxed")])[0]
        if isinstance(msg, Exception):
            raise msg
    if s.tamper:
        msg = K.tamper_body(msg)
    return msg


def ar_dmarc(text):
    """-> [(result, header.from, policy.dmarc or None)] of the dmarc=
    results in authgate check's Authentication-Results line"""
    out = []
    for line in text.splitlines():
        if not line.lower().startswith("authentication-results:"):
            continue
        value = re.sub(r"\([^()]*\)", " ", line.partition(":")[2])
        for part in value.split(";")[1:]:
            m = re.match(r"\s*dmarc=(\S+)", part)
            if not m:
                continue
            hf = re.search(r"header\.from=(\S+)", part)
            pol = re.search(r"policy\.dmarc=(\S*)", part)
            out.append((m.group(1), hf.group(1) if hf else None,
                        pol.group(1) if pol else None))
    return out


def run_authgate(s, path, conf):
    cmd = [H.default_authgate_bin(), "check", "-c", conf,
           "-o", "dns_servers=127.0.0.1@%d" % s.port]
    for o in SETTINGS:
        cmd += ["-o", o]
    cmd += ["--client-ip", s.ip, "--helo", s.helo,
            "--mail-from", s.mail_from, "--rcpt", "rcpt@dest.test", path]
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60, check=False)
    s.ag_cmd = cmd
    s.ag_out = r.stdout.decode("utf-8", "replace")
    s.ag_err = r.stderr.decode("utf-8", "replace")
    s.ag_rc = r.returncode


STATE = {}


def run_all(t):
    """Everything, once: DNS servers, messages, authgate, mailauth."""
    if "done" in STATE:
        return
    STATE["done"] = True
    tmp = t.tmpdir
    conf = os.path.join(tmp, "authgate.conf")
    with open(conf, "w") as f:
        f.write("# empty: settings come from -o (test_dmarc_mailauth.py)\n")
    servers = []
    t0 = time.monotonic()
    try:
        signer = K.Dkimpy(0)
        for s in SCENARIOS:
            srv = dns_server.DnsServer(port=0)
            srv.zone = zone_of(s)
            srv.start()
            servers.append(srv)
            s.server, s.port = srv, srv.port
            s.path = os.path.join(tmp, "%s.eml" % s.name)
            with open(s.path, "wb") as f:
                f.write(message_of(s, signer))
        t.diag("keys, messages, DNS: %.1f s" % (time.monotonic() - t0))
        with concurrent.futures.ThreadPoolExecutor(4) as pool:
            list(pool.map(lambda s: run_authgate(s, s.path, conf),
                          SCENARIOS))
        for s in SCENARIOS:
            s.ag_queries = [q.name.rstrip(".") for q in s.server.queries()
                            if q.type == "TXT"
                            and q.name.startswith("_dmarc.")]
            s.server.clear_log()
        t.diag("authgate check x %d: %.1f s" % (len(SCENARIOS),
                                                time.monotonic() - t0))
        mod = K.ensure_mailauth()
        jobs = [{"in": s.path, "dns": "127.0.0.1:%d" % s.port, "ip": s.ip,
                 "helo": s.helo, "sender": s.mail_from,
                 "mta": "mailauth.test"} for s in SCENARIOS]
        spec = os.path.join(tmp, "mailauth-jobs.json")
        H.write_json(spec, {"mailauth": mod, "jobs": jobs})
        r = subprocess.run(["node", os.path.join(K.PEERS_DIR,
                                                 "mailauth_dmarc.js"), spec],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           timeout=300, check=False)
        if r.returncode:
            t.fail("mailauth_dmarc.js exit %d" % r.returncode,
                   r.stderr.decode(errors="replace")[-2000:])
        out = json.loads(r.stdout)
        STATE["mailauth_version"] = out["version"]
        STATE["node"] = out["node"]
        for s, res in zip(SCENARIOS, out["results"]):
            s.ma_out = res
        t.diag("mailauth: %.1f s in all" % (time.monotonic() - t0))
    finally:
        for srv in servers:
            srv.stop()


@tap.test
def run_both_and_mailauth_version(t):
    """Run every scenario on both sides; mailauth must be the version whose
    behaviour the expectations below describe."""
    run_all(t)
    t.eq(STATE.get("mailauth_version"), K.MAILAUTH_VERSION,
         "mailauth version (the expected differences are 4.13.3's)")
    t.diag("mailauth %s, node %s, %d scenarios (%d with a difference)" % (
        STATE["mailauth_version"], STATE["node"], len(SCENARIOS),
        sum(1 for s in SCENARIOS if s.ma != s.ag)))


def mailauth_pair(s):
    res = s.ma_out
    if not res or not res.get("ok"):
        return ("error", (res or {}).get("error"))
    d = res["dmarc"]
    if not d:
        return (NONE, NONE)
    return (d["result"], d["policy"])


def check(t, s):
    if "done" not in STATE:
        run_all(t)
    if s.ma_out is None:
        t.fail("not run (the first test failed)")
    detail = ["authgate: " + " ".join(s.ag_cmd[1:]),
              "  " + "\n  ".join(s.ag_out.splitlines()),
              "  stderr: " + s.ag_err.strip()[-500:],
              "  _dmarc TXT queries: %s" % ", ".join(s.ag_queries),
              "mailauth: %s" % json.dumps({k: v for k, v in s.ma_out.items()
                                           if k != "info"}),
              "  " + (s.ma_out.get("info") or "").replace("\r\n", "\n  ")]
    problems = []

    def expect(fn, *a):
        try:
            fn(*a)
        except tap.Failure as e:
            problems.append([str(e)] + e.lines)

    expect(t.eq, mailauth_pair(s), s.ma, "mailauth (result, policy)")
    expect(t.eq, s.ag_rc, 0, "authgate check exit status")
    got = ar_dmarc(s.ag_out)
    if isinstance(s.ag, list):
        expect(t.eq, [(hf, r, p) for r, hf, p in got], s.ag,
               "authgate dmarc= results (header.from, result, policy)")
    elif len(got) != 1:
        expect(t.eq, len(got), 1, "one dmarc= result from authgate")
    else:
        expect(t.eq, (got[0][0], got[0][2]), s.ag,
               "authgate (result, policy.dmarc)")
        author = s.frm.split(",")[0].rpartition("@")[2]
        expect(t.eq, got[0][1], author.encode("idna").decode(),
               "authgate header.from (A-labels)")
    if s.queries is not None:
        # every _dmarc query authgate sent: the author's walk (the
        # identifiers' walks are answered from its cache)
        expect(t.eq, sorted(s.ag_queries),
               sorted("_dmarc." + n for n in s.queries),
               "authgate: the author's walk, 8 queries (RFC 9989 4.10)")
    if problems:
        lines = []
        for p in problems[1:]:
            lines += ["also: " + p[0]] + p[1:]
        t.fail(problems[0][0], *(problems[0][1:] + lines + detail))
    if s.ma != s.ag:
        t.diag("differ, as expected: authgate %s, mailauth %s: %s" % (
            s.ag, s.ma, s.why))


def register(s):
    def fn(t):
        check(t, s)
    fn.__name__ = s.name
    tap.test(fn, name=s.name + (" # TODO %s" % s.todo if s.todo else ""))


for _s in SCENARIOS:
    register(_s)


def main():
    """tap.main(), but a TODO test's failure is expected (and its pass is
    not: the bug is fixed, take the todo off)."""
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
                tap.diag("passes although marked TODO: remove the todo")
        if tap._interrupted:
            bad += 1
            break
    if bad:
        tap.diag("failed %d/%d tests" % (bad, len(selected)))
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
