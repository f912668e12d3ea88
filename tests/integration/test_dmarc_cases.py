#!/usr/bin/python3
"""test_dmarc_cases.py - mailauth's 88 DMARC test cases against authgate.

    /usr/bin/python3 tests/integration/test_dmarc_cases.py [-v] [FILTER...]

Runs every case of tests/data/dmarc/mailauth-dmarc-cases.json (extracted
from postalsys/mailauth's mocha tests, MIT; see the README there) through
authgate's DMARC code: tests/tools/dmarc_eval (built by `make check`) with
an in-process DnsServer on 127.0.0.1 serving the case's DNS data.  One TAP
test per case, in file order, named "NN <file>: <mailauth's name>".

Calls:
* verifyDmarc({headerFrom, dkimDomains, spfDomains}) -> the real pipeline
  (msg_header ... msg_eom, policy.c) with a stand-in check reporting an SPF
  pass for each spfDomains entry and a DKIM pass for each dkimDomains entry
  (mailauth's inputs are passes only), then dmarc_check.  headerFrom is
  the From: value; a list of addresses becomes one From: field with all of
  them.
* getDmarcRecord({domain}) -> `dmarc_eval --record DOMAIN`: the DNS Tree
  Walk alone (dmarc_walk.h) and the record it selects.

DNS (what the extractor recorded):
* "zone": the names of the map have exactly the records listed; a type
  not listed at a listed name is NODATA; every other name is NXDOMAIN,
  also the parents of listed names (mailauth's stub resolver knows no empty
  non-terminals: `example.com` is NXDOMAIN next to `_dmarc.example.com`).
* "probed": per (name, type): answer [...] served (TXT: one record per
  list of strings; for A/AAAA/MX, answers that are not addresses become a
  placeholder record: the name exists), answer [] and ENODATA -> NODATA,
  ETIMEOUT -> no answer (the query times out: dns_timeout = 1s), other
  errors -> SERVFAIL, ENOTFOUND and anything not listed -> NXDOMAIN.

Result fields, mailauth -> ours (dmarc_eval's keys):
  status.result        result (outcome 0; without one, the dmarc= of A-R)
  policy               policy (after t=y; absent when no record applies)
  domain               org_domain (the Author Domain's Organizational Domain)
  p / sp / rr          the applied record's p / sp (else p) / text
  alignment.X.result   X_aligned; a domain given must be X_domain (the
                       identifier) or, relaxed, the Organizational Domain
                       through which it aligned (B.4.3 case: mailauth's
                       expectation names giant.bank.example for SPF
                       mail.giant.bank.example)
  alignment.X.strict   adkim / aspf == s
  status.header.from   from_domain; status.header.d: policy_domain
  info                 the A-R line; error: reason (must name the DNS error)
  getDmarcRecord:      false -> no record selected; v/p/sp/adkim/aspf/fo/
                       rua/ruf/rr -> the record; isOrgRecord -> own == no;
                       thrown.code -> a DNS error on the walk's first name
  dns_query_sequence   the _dmarc TXT queries in the DNS server's log (as a
                       multiset: authgate sends a walk's queries in
                       parallel, so arrival order means nothing) and the
                       walk's own order (names= of dmarc_eval --record)

Where mailauth's expectation contradicts RFC 9989, the RFC wins: the case
is listed in RFC_OVERRIDES below with the section, its expectations are
replaced by what the RFC says, and the test prints "# RFC 9989 ..." before
its result.  Cases authgate knowingly fails are listed with the reason in
tests/data/dmarc/expected-failures.txt and reported "not ok ... # TODO
reason"; one that passes is reported "ok ... # TODO" (XPASS) and fails the
run until its line is removed.  Nothing is skipped.

Exit status: 0 when every case passed or failed as listed; 1 otherwise.
Environment: AUTHGATE_BUILDDIR (default <repo>/build), KEEP_TMP not used
(nothing is written).
"""

import json
import os
import re
import subprocess
import sys
import time

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import dns_server  # noqa: E402
import tap  # noqa: E402

DATA = os.path.join(REPO, "tests", "data", "dmarc")
CASES = os.path.join(DATA, "mailauth-dmarc-cases.json")
XFAIL = os.path.join(DATA, "expected-failures.txt")
BUILDDIR = os.environ.get("AUTHGATE_BUILDDIR") or os.path.join(REPO, "build")
EVAL = os.path.join(BUILDDIR, "tests", "tools", "dmarc_eval")
SETTINGS = ["authserv_id=cases.test", "dns_timeout=1s"]
VERBOSE = False

# ---------------------------------------------------------------------------
# RFC 9989 over mailauth.  Each entry: the section, why, and replacement
# expectations {subject: (description, check(ctx) -> (ok, got))}.  A
# subject not listed keeps mailauth's expectation.


def _historic(tag):
    """pct/ri: no processing defined; the record applies regardless, the
    tag is in the record text and nowhere else in our output"""
    def check(ctx):
        c = ctx.calls[0]
        ok = (c.get("record", "") != "" and tag not in c
              and re.search(r"(^|;)\s*%s\s*=" % tag, c["record"], re.I)
              is not None)
        return ok, {"record": c.get("record"), tag: c.get(tag, "(absent)")}
    return check


def _result(want, policy=None, policy_domain=None):
    def check(ctx):
        c = ctx.calls[0]
        got = (c.get("result"), c.get("policy"), c.get("policy_domain"))
        ok = got[0] == want and (policy is None or got[1] == policy) and \
            (policy_domain is None or got[2] == policy_domain)
        return ok, got
    return check


def _no_dmarc(ctx):
    """5.3.1: no domain, no DMARC: no outcome at all, no policy"""
    c = ctx.calls[0]
    got = (c.get("outcomes"), c.get("from_bad"), c.get("result"),
           c.get("policy", ""))
    return (got[0] == "0" and got[1] == "yes"
            and got[2] in ("none", "permerror") and got[3] == ""), got


def _one_domain_pass(ctx):
    c = ctx.calls[0]
    got = (c.get("outcomes"), c.get("from_domain"), c.get("result"),
           c.get("policy"))
    return got == ("1", "example.com", "pass", "reject"), got


def _walk_sequence(want, resolver_local=()):
    """the walk asks want in this order; the server sees all but the names
    the resolver answers itself"""
    def check(ctx):
        sent = sorted(n for n in want if n not in resolver_local)
        return ctx.query_sequence() == sent and ctx.walk_order == want, \
            {"log (sorted)": ctx.query_sequence(),
             "walk order": ctx.walk_order}
    return check


def _ignored_token(token):
    def check(ctx):
        c = ctx.calls[0]
        got = {"p": c.get("p"), "record": c.get("record")}
        return (c.get("p") == "reject" and token in c.get("record", "")
                and not any(token == k for k in c)), got
    return check


PCT_RI = "RFC 9989 C.5.2, 9.3 (pct, ri historic), A.6"
RFC_OVERRIDES = {
    "get-dmarc-record: Should parse all standard tags": (
        PCT_RI, "pct and ri were removed; no processing is defined for "
        "them, so authgate ignores them like unknown tags (4.7) and does "
        "not surface them",
        {"call0.pct": ("pct ignored", _historic("pct")),
         "call0.ri": ("ri ignored", _historic("ri"))}),
    "get-dmarc-record: Should handle whitespace around values": (
        PCT_RI, "pct is historic: ignored",
        {"call0.pct": ("pct ignored", _historic("pct"))}),
    "get-dmarc-record: Should handle split TXT records": (
        PCT_RI, "pct is historic: ignored",
        {"call0.pct": ("pct ignored", _historic("pct"))}),
    "get-dmarc-record: Should convert pct to integer": (
        PCT_RI, "pct is historic: ignored, so it has no value to convert",
        {"call0.pct": ("pct ignored", _historic("pct")),
         "typeof call0.pct": ("pct ignored", _historic("pct"))}),
    "get-dmarc-record: Should convert ri to integer": (
        PCT_RI, "ri is historic: ignored, so it has no value to convert",
        {"call0.ri": ("ri ignored", _historic("ri")),
         "typeof call0.ri": ("ri ignored", _historic("ri"))}),
    "get-dmarc-record: Should handle invalid pct value as 0": (
        PCT_RI, "pct is historic: any value is ignored; the record applies",
        {"call0.pct": ("pct ignored", _historic("pct"))}),
    "get-dmarc-record: Should handle tags with no value": (
        "RFC 9989 4.8",
        "mailauth keeps the malformed token as a key (tagonly: false); 4.8 "
        "says a syntax error in a tag is ignored: the record still applies "
        "and the token appears only in the record text",
        {"call0.tagonly": ("token ignored, record applies",
                           _ignored_token("tagonly"))}),
    "get-dmarc-record: Should handle tags starting with equals": (
        "RFC 9989 4.8",
        "mailauth keeps '=value' under the key false; 4.8 (dmarc-tag = "
        "1*ALPHA equals ...) makes it no tag at all, which is ignored: the "
        "record still applies",
        {"call0.false": ("token ignored, record applies",
                         _ignored_token("=value"))}),
    "get-dmarc-record: Should not query \"_dmarc.null\" when no org domain "
    "can be derived": (
        "RFC 9989 4.10 steps 1-7",
        "the Tree Walk needs no Organizational Domain: it asks the name and "
        "then every shorter one down to the TLD, so 192.0.2.1 (a name of "
        "four labels here) gives four queries, where mailauth (PSL) asks "
        "only the first; nothing asks _dmarc.null. _dmarc.localhost is "
        "walked but answered by libunbound itself (RFC 6761 6.3), so the "
        "DNS server never sees it",
        {"dns_query_sequence": ("the RFC 4.10 walk of both names",
                                _walk_sequence([
                                    "_dmarc.localhost", "_dmarc.192.0.2.1",
                                    "_dmarc.0.2.1", "_dmarc.2.1",
                                    "_dmarc.1"],
                                    resolver_local=["_dmarc.localhost"]))}),
    "dmarc-verify: Should parse all common tags": (
        PCT_RI, "pct is historic: ignored",
        {"call0.pct": ("pct ignored", _historic("pct"))}),
    "dmarc-verify: Should handle split TXT records": (
        PCT_RI, "pct is historic: ignored",
        {"call0.pct": ("pct ignored", _historic("pct"))}),
    "dmarc-verify: Should handle headerFrom without @ symbol": (
        "RFC 9989 5.3.1",
        "a From: value without an address gives no Author Domain, and then "
        "DMARC validation \"is not possible\"; mailauth takes the bare "
        "string as the domain and passes",
        {"call0.status.result": ("no DMARC evaluation (5.3.1)", _no_dmarc)}),
    "dmarc-verify: Should return false for headerFrom array with multiple "
    "elements": (
        "RFC 9989 5.3.1",
        "several addresses with ONE domain still give one Author Domain, "
        "and validation proceeds; mailauth gives up on any second address",
        {"call0": ("one outcome for example.com, pass", _one_domain_pass)}),
    "rfc9989-compliance: does not inherit the org policy when the author "
    "domain publishes multiple records (§4.10 step 2)": (
        "RFC 9989 4.10 step 2",
        "several records at one name are all discarded and the walk goes "
        "on (no step says stop; RFC 7489 6.6.3 stopped): example.com's "
        "p=none applies, so the unauthenticated message fails with policy "
        "none",
        {"call0.status.result": ("fail, policy none from example.com",
                                 _result("fail", "none", "example.com")),
         "call0": ("a policy is applied", _result("fail", "none"))}),
}

# ---------------------------------------------------------------------------
# the cases


class CaseError(Exception):
    """The case file or expected-failures.txt cannot be used."""


def case_key(case):
    stem = case["file"]
    for suffix in ("-test.js", ".js"):
        if stem.endswith(suffix):
            stem = stem[:-len(suffix)]
            break
    return "%s: %s" % (stem, case["name"])


def load_cases(path):
    with open(path, encoding="utf-8") as f:
        data = json.load(f)
    cases = data["cases"]
    keys = [case_key(c) for c in cases]
    dup = sorted({k for k in keys if keys.count(k) > 1})
    if dup:
        raise CaseError("duplicate case names: %s" % ", ".join(dup))
    return cases


def load_expected_failures(path, keys):
    out = {}
    if not os.path.exists(path):
        return out
    with open(path, encoding="utf-8") as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, tab, reason = line.partition("\t")
            name, reason = name.strip(), " ".join(reason.split())
            if not tab or not reason:
                raise CaseError("%s:%d: expected CASE<TAB>REASON" % (path, n))
            if name not in keys:
                raise CaseError("%s:%d: no such case: %r" % (path, n, name))
            if name in out:
                raise CaseError("%s:%d: listed twice: %r" % (path, n, name))
            if "RFC 9989" not in reason and "mailauth-only" not in reason:
                raise CaseError("%s:%d: the reason must name the RFC 9989 "
                                "section (or say mailauth-only)" % (path, n))
            out[name] = reason.replace("#", "No.")
    return out


# ---------------------------------------------------------------------------
# DNS as the extractor saw it


ALL_TYPES = ("A", "AAAA", "MX", "TXT", "NS", "SOA", "CNAME", "PTR", "SPF")
PLACEHOLDER = {"A": "192.0.2.1", "AAAA": "2001:db8::1", "MX": "10 mx.invalid."}


class CaseZone(dns_server.Zone):
    """dns_server.Zone with per (name, type) behaviour and a default for
    everything the case does not list (NXDOMAIN)."""

    def __init__(self):
        super().__init__(60)
        self.pairs = {}         # (name, TYPE) -> behaviour dict
        self.known = set()      # names that exist ("zone" mode)
        self.listed = set()     # (name, TYPE) with records ("probed" mode)
        self.mode = None

    def setup(self, spec):
        with self.lock:
            self.clear()
            self.pairs, self.known, self.listed = {}, set(), set()
            if "zone" in spec:
                self.mode = "zone"
                self._zone(spec["zone"])
            else:
                self.mode = "probed"
                self._probed(spec.get("probed", []))

    def _zone(self, zone):
        for name, types in zone.items():
            self.known.add(dns_server.norm(name))
            for rtype, values in types.items():
                for v in values:
                    self.add(name, rtype, _rdata(rtype, v))

    def _probed(self, probed):
        for p in probed:
            name, rtype = dns_server.norm(p["name"]), p["type"].upper()
            if "error" in p and p["error"]:
                err = p["error"]
                self.pairs[(name, rtype)] = (
                    {"drop": True} if err == "ETIMEOUT"
                    else {"rcode": "NOERROR"} if err == "ENODATA"
                    else {"rcode": "NXDOMAIN"} if err == "ENOTFOUND"
                    else {"rcode": "SERVFAIL"})
            elif "answer" in p and p["answer"]:
                for v in p["answer"]:
                    self.add(name, rtype, _rdata(rtype, v))
                self.listed.add((name, rtype))
            elif "answer" in p:
                self.pairs[(name, rtype)] = {"rcode": "NOERROR"}   # NODATA
            # neither answer nor error: treated as not listed (NXDOMAIN)

    def behaviour_for(self, qname, qtype):
        with self.lock:
            b = self.pairs.get((qname, qtype))
            if b is not None:
                return b
            if self.mode == "probed" and (qname, qtype) not in self.listed:
                return {"rcode": "NXDOMAIN"}
            if self.mode == "zone" and qname not in self.known:
                return {"rcode": "NXDOMAIN"}
        return {}


def _rdata(rtype, v):
    rtype = rtype.upper()
    if rtype == "TXT":
        return [str(s) for s in v] if isinstance(v, list) else str(v)
    if rtype == "MX" and isinstance(v, dict):
        return [int(v.get("priority", 10)), str(v.get("exchange"))]
    if rtype in ("A", "AAAA"):
        s = v[0] if isinstance(v, list) and v else v
        if isinstance(s, str) and re.fullmatch(r"[0-9a-fA-F.:]+", s):
            return s
        return PLACEHOLDER[rtype]
    if rtype == "MX":
        return PLACEHOLDER["MX"]
    return v


class Server:
    """One DnsServer for the whole run; each case loads its data."""

    def __init__(self):
        self.srv = dns_server.DnsServer(port=0)
        self.srv.zone = CaseZone()
        self.srv.start()

    def load(self, spec):
        self.srv.zone.setup(spec)
        self.srv.clear_log()

    def dmarc_queries(self):
        return [q.name.rstrip(".") for q in self.srv.queries()
                if q.type == "TXT" and q.name.startswith("_dmarc.")]

    def stop(self):
        self.srv.stop()


# ---------------------------------------------------------------------------
# running dmarc_eval


def unescape(v):
    return re.sub(r"\\x([0-9a-f]{2})", lambda m: chr(int(m.group(1), 16)), v)


def parse_output(text):
    """-> dict: the message's keys plus outcome 0's (pipeline form), or the
    record form's keys; "outcomes_list" holds every outcome."""
    top, outs, cur = {}, [], None
    for line in text.splitlines():
        key, eq, value = line.partition("=")
        if not eq:
            continue
        value = unescape(value)
        if key == "outcome":
            cur = {}
            outs.append(cur)
            continue
        (cur if cur is not None else top)[key] = value
    out = dict(top)
    if outs:
        out.update(outs[0])
    elif "ar" in top:
        m = re.search(r"\bdmarc=([a-z]+)", top["ar"])
        out["result"] = m.group(1) if m else ""
    out["outcomes_list"] = outs
    return out


def run_eval(args, port):
    cmd = [EVAL, "-o", "dns_servers=127.0.0.1@%d" % port]
    for s in SETTINGS:
        cmd += ["-o", s]
    cmd += args
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=30, check=False)
    return cmd, r.returncode, r.stdout.decode("utf-8", "replace"), \
        r.stderr.decode("utf-8", "replace")


def domain_of(entry):
    return entry if isinstance(entry, str) else entry.get("domain")


def call_args(call):
    inp = call["input"]
    if call["fn"] == "getDmarcRecord":
        return ["--record", inp["domain"]]
    args = []
    for e in inp.get("spfDomains") or []:
        args += ["--spf", domain_of(e)]
    for e in inp.get("dkimDomains") or []:
        args += ["--dkim", domain_of(e)]
    frm = inp["headerFrom"]
    args.append(", ".join(frm) if isinstance(frm, list) else frm)
    return args


class Ctx:
    def __init__(self, case, server):
        self.case, self.server = case, server
        self.calls, self.runs = [], []
        self.queries = []
        self.walk_order = []

    def query_sequence(self):
        return sorted(self.queries)


def run_case(case, server):
    ctx = Ctx(case, server)
    spf_many = [len(c["input"].get("spfDomains") or []) for c in case["calls"]
                if c["fn"] == "verifyDmarc"]
    if any(n > 1 for n in spf_many):
        raise CaseError("more than one SPF domain in a call: not mappable")
    for i, call in enumerate(case["calls"]):
        server.load(call["dns"]) if i == 0 else server.srv.zone.setup(
            call["dns"])
        cmd, rc, so, se = run_eval(call_args(call), server.srv.port)
        ctx.runs.append((cmd, rc, so, se))
        if rc != 0:
            raise CaseError("dmarc_eval exit %d: %s" % (rc, se.strip()))
        ctx.calls.append(parse_output(so))
    ctx.queries = server.dmarc_queries()
    if any(e["subject"] == "dns_query_sequence" for e in case["expects"]):
        # the walk's own order: the record form asks the same names
        for call in case["calls"]:
            server.srv.zone.setup(call["dns"])
            dom = call["input"].get("domain") or _author(call)
            _, rc, so, se = run_eval(["--record", dom], server.srv.port)
            if rc != 0:
                raise CaseError("dmarc_eval --record exit %d: %s"
                                % (rc, se.strip()))
            names = parse_output(so).get("names", "")
            ctx.walk_order += names.split(",") if names else []
    return ctx


def _author(call):
    frm = call["input"]["headerFrom"]
    frm = frm[0] if isinstance(frm, list) else frm
    return frm.rpartition("@")[2]


# ---------------------------------------------------------------------------
# mailauth's expectations in our terms

ABSENT = object()


def subject_value(ctx, subject):
    """-> (value in mailauth's terms, comparator or None)"""
    m = re.match(r"(typeof )?call(\d+)(?:\.(.*))?$", subject)
    if not m:
        raise CaseError("subject %r not mappable" % subject)
    c = ctx.calls[int(m.group(2))]
    path = m.group(3) or ""
    record_form = "names" in c
    if path == "":
        if record_form:
            return (c if c.get("selected", "-1") != "-1" else False), None
        return (c if c.get("outcomes", "0") != "0" else False), None
    if m.group(1):
        raise CaseError("typeof %s not mappable" % path)
    simple = {
        "v": lambda: "DMARC1" if c.get("record") else ABSENT,
        "p": lambda: c.get("p") or ABSENT,
        "sp": lambda: (c.get("sp") or c.get("p") or ABSENT)
        if not record_form else (c.get("sp") or ABSENT),
        "adkim": lambda: c.get("adkim") if c.get("record") else ABSENT,
        "aspf": lambda: c.get("aspf") if c.get("record") else ABSENT,
        "fo": lambda: c.get("fo") or ABSENT,
        "rua": lambda: c.get("rua") or ABSENT,
        "ruf": lambda: c.get("ruf") or ABSENT,
        "rr": lambda: c.get("record") or ABSENT,
        "isOrgRecord": lambda: (c.get("own") == "no")
        if c.get("record") else ABSENT,
        "status.result": lambda: c.get("result"),
        "policy": lambda: c.get("policy") or ABSENT,
        "domain": lambda: c.get("org_domain") or ABSENT,
        "status.header.from": lambda: c.get("from_domain") or ABSENT,
        "status.header.d": lambda: c.get("policy_domain") or ABSENT,
        "alignment.dkim.strict": lambda: c.get("adkim") == "s",
        "alignment.spf.strict": lambda: c.get("aspf") == "s",
        "info": lambda: c.get("ar") or ABSENT,
    }
    if path in simple:
        return simple[path](), None
    am = re.fullmatch(r"alignment\.(spf|dkim)\.result", path)
    if am:
        x = am.group(1)
        if c.get(x + "_aligned") != "yes":
            return ABSENT, None
        ok_values = {c.get(x + "_domain")}
        if c.get("a" + x if x == "spf" else "adkim") != "s":
            ok_values.add(c.get("org_domain"))
        return ok_values, "aligned-domain"
    if path == "error":
        return c.get("reason") or ABSENT, "dns-error"
    if path == "thrown.code":
        errs = c.get("errors", "")
        first = c.get("names", "").split(",")[0]
        return (errs.split(",")[0] if errs else ABSENT, first), "thrown"
    if path == "status.comment":
        m2 = re.search(r"dmarc=\S+\s+\(([^)]*)\)", c.get("ar", ""))
        return (m2.group(1) if m2 else ABSENT), None
    # anything else is a mailauth-only field (underSized, ...): we have none
    return c.get(path, ABSENT), None


def check_expect(ctx, e):
    """-> (ok, description, got)"""
    subject, chain, args = e["subject"], e["chain"], e["args"]
    words = [w for w in chain if w not in ("to", "be", "been", "is", "that",
                                           "which", "and", "has", "have",
                                           "with", "at", "of", "same",
                                           "but", "does", "still", "deep")]
    neg = "not" in words
    words = [w for w in words if w != "not"]
    desc = "%s %s %s" % (subject, ".".join(chain),
                         json.dumps(args) if args is not None else "")
    if subject == "dns_query_sequence":
        want = args[0]
        got = {"log (sorted)": ctx.query_sequence(), "walk order":
               ctx.walk_order}
        ok = ctx.query_sequence() == sorted(want) and ctx.walk_order == want
        return ok != neg, desc, got
    if words == ["property"]:
        obj, _ = subject_value(ctx, subject)
        key = args[0]
        if obj is False:
            return neg, desc, False
        mine = {"policy": "policy", "pct": "pct"}.get(key, key)
        has = obj.get(mine, "") != "" if isinstance(obj, dict) else False
        return has != neg, desc, {mine: obj.get(mine) if isinstance(obj, dict)
                                  else None}
    value, how = subject_value(ctx, subject)
    verb = words[0] if words else ""
    if verb == "equal" or verb == "eql":
        want = args[0]
        if how == "aligned-domain":
            ok = value is not ABSENT and want in value
        elif how == "dns-error":
            ok = value is not ABSENT and re.search(r"\bDNS\b", value) \
                is not None
        elif how == "thrown":
            err, first = value
            ok = err is not ABSENT and err == first
        else:
            ok = value == want
        got = sorted(value) if isinstance(value, set) else value
    elif verb in ("contain", "include"):
        ok = isinstance(value, str) and args[0] in value
        got = value
    elif verb in ("false", "true"):
        want = verb == "true"
        ok = value is want
        got = value
    elif verb == "ok":
        ok = value is not ABSENT and bool(value)
        got = value
    elif verb == "undefined":
        ok = value is ABSENT
        got = value
    elif verb in ("an", "a"):
        kind = args[0]
        ok = (isinstance(value, dict) if kind == "object"
              else isinstance(value, str) if kind == "string" else False)
        got = type(value).__name__
    else:
        raise CaseError("assertion %s not mappable" % ".".join(chain))
    if got is ABSENT:
        got = "(absent)"
    if isinstance(got, dict):
        got = {k: v for k, v in got.items() if k != "outcomes_list"}
    return ok != neg, desc, got


# ---------------------------------------------------------------------------


def make_test(case, server):
    key = case_key(case)
    override = RFC_OVERRIDES.get(key)

    def fn(t):
        t0 = time.monotonic()
        if override:
            t.diag("%s overrides mailauth: %s" % (override[0], override[1]))
        ctx = run_case(case, server)
        failures = []
        for e in case["expects"]:
            if override and e["subject"] in override[2]:
                what, check = override[2][e["subject"]]
                ok, got = check(ctx)
                desc = "%s -> %s instead (%s)" % (
                    e["subject"], what, override[0])
                if VERBOSE or not ok:
                    t.diag("  mailauth wanted: %s %s %s" % (
                        e["subject"], ".".join(e["chain"]),
                        json.dumps(e["args"])))
            else:
                ok, desc, got = check_expect(ctx, e)
            if not ok:
                failures.append("%s\n    got: %r" % (desc, got))
            elif VERBOSE:
                t.diag("  ok: %s" % desc)
        if failures or VERBOSE:
            for cmd, rc, so, se in ctx.runs:
                t.diag("  $ " + " ".join(cmd[1:]))
                for line in so.splitlines():
                    t.diag("    " + line)
                for line in se.splitlines()[:10]:
                    t.diag("    stderr: " + line)
            t.diag("  _dmarc TXT queries: %s" % ", ".join(ctx.queries))
        if VERBOSE:
            t.diag("  %.2f s" % (time.monotonic() - t0))
        if failures:
            t.fail("%d of %d expectations not met" % (
                len(failures), len(case["expects"])), *failures)
    return fn


def main():
    global VERBOSE
    argv = sys.argv[1:]
    if "-v" in argv:
        VERBOSE = True
        argv = [a for a in argv if a != "-v"]
    try:
        cases = load_cases(CASES)
        keys = {case_key(c) for c in cases}
        xfail = load_expected_failures(XFAIL, keys)
        stray = sorted(set(RFC_OVERRIDES) - keys)
        if stray:
            raise CaseError("RFC_OVERRIDES names no case: %s" % stray)
        both = sorted(set(RFC_OVERRIDES) & set(xfail))
        if both:
            raise CaseError("both overridden and expected to fail: %s" % both)
    except (OSError, ValueError, KeyError, CaseError) as e:
        print("Bail out! %s" % e, flush=True)
        return 2
    if not os.access(EVAL, os.X_OK):
        print("Bail out! no dmarc_eval at %s (make -C build/tests "
              "tools/dmarc_eval, or set AUTHGATE_BUILDDIR)" % EVAL,
              flush=True)
        return 1
    server = Server()
    tests = []
    try:
        for n, case in enumerate(cases, 1):
            key = case_key(case)
            name = "%02d %s" % (n, key.replace("#", "No."))
            if key in xfail:
                name += " # TODO %s" % xfail[key]
            tests.append((name, make_test(case, server),
                          key in xfail))
        selected = [x for x in tests
                    if not argv or any(a.lower() in x[0].lower()
                                       for a in argv)]
        print("1..%d" % len(selected), flush=True)
        print("# %d cases (%d expected failures, %d RFC 9989 overrides); "
              "dmarc_eval %s" % (len(cases), len(xfail), len(RFC_OVERRIDES),
                                 EVAL), flush=True)
        bad, passed, xfailed, xpassed = 0, 0, 0, []
        for num, (name, fn, todo) in enumerate(selected, 1):
            ok = tap._run_one(num, name, fn, None, 60)
            if ok and not todo:
                passed += 1
            elif not ok and todo:
                xfailed += 1
            else:
                bad += 1
                if ok:
                    xpassed.append(name)
            if tap._interrupted:
                bad += 1
                break
        tap.diag("dmarc cases: %d passed, %d expected failures, %d "
                 "unexpected" % (passed, xfailed, bad))
        for name in xpassed:
            tap.diag("passes although listed in expected-failures.txt "
                     "(remove it): %s" % name)
    finally:
        server.stop()
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
