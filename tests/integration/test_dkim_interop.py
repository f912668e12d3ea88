#!/usr/bin/python3
"""test_dkim_interop.py - authgate's DKIM against three other
implementations (dkimpy, OpenDKIM, mailauth; see peers/README.md), end to
end through a private Postfix with authgate as its milter.

(a) authgate signs: every message of tests/data/dkim/messages is submitted
    with SMTP AUTH; the bytes the sink receives must verify with every
    peer: RSA-2048, Ed25519, and both at once (two signatures), in
    simple/simple and relaxed/relaxed.  RFC 8463's message signed with its
    own keys must carry its published body hashes.
(b) authgate signs for internal clients only: not for an external client
    (XCLIENT ADDR=198.51.100.x) with the same From:, but for one in
    internal_hosts.
(c) authgate verifies: every corpus message signed by every peer and sent
    by an external client gets one dkim= result per DKIM-Signature in
    authgate's Authentication-Results: pass with header.d/s/a/b (b: the
    first 8 characters of b=); one body byte changed gives dkim=fail.
(d) messages signed elsewhere (RFC 8463 A.3, dkimpy, Exim, gmail) verify.
(e) `authgate check` on the LF-only file: its relaxed/relaxed signature
    verifies everywhere, and it verifies a peer's signature.

What authgate is expected to do (settings: authserv_id, dkim_verify = yes,
dkim_canonicalization, dkim_min_key_bits = 1024, key_table, signing_table
= refile:..., internal_hosts; key files 0600 owned by nobody):
 1. accept those settings (OpenDKIM KeyTable/SigningTable formats);
 2. sign mail from SMTP AUTH clients and from internal_hosts, never from
    other clients, whatever their From:;
 3. add one DKIM-Signature per SigningTable line matching the From:
    address (RSA + Ed25519 key -> two), with d=/s= from the KeyTable,
    a=rsa-sha256 / ed25519-sha256 by key type, c= the configured
    canonicalization (a missing or short c= is read per RFC 6376), and
    From in h=;
 4. signatures that dkimpy, OpenDKIM and mailauth all verify on the bytes
    Postfix delivers, for every corpus message, without disturbing a
    signature the message already had; the RFC 8463 message gets the
    body hashes published for it;
 5. for mail from external clients, one dkim= result per DKIM-Signature in
    the Authentication-Results header with authserv-id authserv_id:
    dkim=pass header.d=D header.s=S header.a=A header.b=<first 8
    characters of b=> when it verifies, dkim=fail after a body change
    (and for a foreign signature whose body hash no longer matches);
 6. `authgate check -c CONF --client-ip IP [--auth-user U] --mail-from A
    FILE` prints the headers it would add, unfolded (DKIM-Signature: ...,
    Authentication-Results: ...), then "action: accept", exit status 0;
    it reads a file with bare LF line ends.
DKIM_INTEROP_MILTER=opendkim runs the MTA tests
with an OpenDKIM milter in authgate's place (dkim_kit.OpenDkimStandIn),
to check this file itself; OpenDKIM cannot dual-sign RSA + Ed25519 nor
make good Ed25519 simple signatures, so those tests fail in that mode.
"""
import os
import re
import subprocess
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dkim_kit as K  # noqa: E402
import harness as H  # noqa: E402
import tap  # noqa: E402

ID = "mx.authgate.test"
DOMAIN = "example.com"
SENDER = "alice@example.com"
EXTERNAL = "198.51.100.25"
STANDIN = os.environ.get("DKIM_INTEROP_MILTER") == "opendkim"
PEERS = ("dkimpy", "opendkim", "mailauth")
CANONS = ("simple/simple", "relaxed/relaxed")


# ---------------------------------------------------------------------------
# setup


def ag_keys():
    """authgate's signing keys (selectors ag-rsa, ag-ed)."""
    return {"rsa": K.make_key("rsa2048", DOMAIN, "ag-rsa"),
            "ed": K.make_key("ed25519", DOMAIN, "ag-ed")}


def peer_keys():
    """The peers' keys for (c) (selectors peer-rsa, peer-ed)."""
    return {"rsa": K.make_key("rsa2048", DOMAIN, "peer-rsa"),
            "ed": K.make_key("ed25519", DOMAIN, "peer-ed")}


def signing_tables(t, keys, pattern="*@" + DOMAIN):
    """KeyTable + SigningTable (OpenDKIM formats) for keys; the key files
    0600 and owned by nobody, whom the harness runs authgate as."""
    d = os.path.join(t.tmpdir, "dkim-keys")
    os.makedirs(d, exist_ok=True)
    os.chmod(d, 0o755)
    kt, st = [], []
    for i, k in enumerate(keys):
        path = k.write(d, owner="nobody" if os.getuid() == 0 else None,
                       name="key%d-%s.pem" % (i, k.selector))
        kt.append("key%d %s:%s:%s" % (i, k.domain, k.selector, path))
        st.append("%s key%d" % (pattern, i))
    ktp, stp = os.path.join(d, "key_table"), os.path.join(d, "signing_table")
    with open(ktp, "w") as f:
        f.write("# test keys\n" + "\n".join(kt) + "\n")
    with open(stp, "w") as f:
        f.write("# From: pattern, key name\n" + "\n".join(st) + "\n")
    return {"key_table": ktp, "signing_table": "refile:" + stp}


def settings(t, sign_keys=(), canon="relaxed/relaxed", pattern=None,
             **extra):
    conf = {"authserv_id": ID, "dns_timeout": "2s", "dkim_verify": True,
            "dkim_canonicalization": canon, "dkim_min_key_bits": 1024}
    if sign_keys:
        conf.update(signing_tables(t, sign_keys, pattern or "*@" + DOMAIN))
    conf.update(extra)
    return conf


def zone(dns, *keys):
    K.publish(dns, *keys)
    K.publish_fixtures(dns)


def start(t, conf):
    """DNS (every key of this file + the fixed data), sink, authgate (or
    the stand-in), Postfix; -> (dns, sink, milter, postfix)."""
    dns = H.DnsServer().start()
    zone(dns, *ag_keys().values(), *peer_keys().values())
    sink = H.Sink().start()
    if STANDIN:
        ag = K.OpenDkimStandIn(conf, dns).start()
    else:
        ag = H.Authgate(settings=conf, dns=dns).start()
    pf = H.Postfix(milter=ag, relay_port=sink).start()
    return dns, sink, ag, pf


def deliver(t, pf, sink, items, submit=True, xclient=None):
    """Send items [(message bytes, meta)], one SMTP transaction each (with
    AUTH when submit, else to port 25 with xclient); -> [(meta, delivered
    bytes or None, SinkMessage or None)] in item order.  Every transaction
    has its own recipient bob+N@example.net (N runs on per sink) to find
    its delivery."""
    first = getattr(sink, "kit_sent", 0)
    before = getattr(sink, "kit_ok", 0)
    problems, ok = [], 0
    for n, (data, meta) in enumerate(items, first):
        rcpt = "bob+%d@example.net" % n
        if submit:
            r = pf.submit(SENDER, [rcpt], data)
        else:
            r = pf.send(SENDER, [rcpt], data, xclient=xclient)
        if r.ok:
            ok += 1
        else:
            problems.append("message %d: %s %s %s" % (
                n - first, r.stage, r.code, r.text))
    sink.kit_sent = first + len(items)
    sink.kit_ok = before + ok
    got = sink.wait_for(sink.kit_ok, timeout=30 + ok / 5) if ok else []
    by_n = {}
    for m in got:
        mm = re.search(r"bob\+(\d+)@", " ".join(m.rcpts))
        by_n[int(mm.group(1))] = m
    if problems:
        t.diag("not accepted:\n" + "\n".join(problems[:20]))
    out = []
    for n, (data, meta) in enumerate(items, first):
        m = by_n.get(n)
        out.append((meta, K.delivered(m) if m else None, m))
    return out


def norm_canon(c):
    """c= as written -> header/body (RFC 6376 3.5: default simple)."""
    c = (c or "simple").lower()
    return c if "/" in c else c + "/simple"


def our_ar(m):
    """authgate's Authentication-Results of a SinkMessage (the one with
    our authserv-id), unfolded; None when there is none."""
    for v in m.get_all("Authentication-Results"):
        v = re.sub(r"\r?\n[ \t]+", " ", v)
        if v.strip().split(";")[0].strip().split()[0] == ID:
            return v
    return None


# ---------------------------------------------------------------------------
# (a) authgate signs


def check_signed(t, results, keys, canon, peers):
    """results [(CorpusMessage, delivered bytes, SinkMessage)]: each has
    exactly one new signature per key with the right tags, and each
    verifies with every peer; foreign signatures keep their result."""
    problems = []
    delivered = [(msg, data) for msg, data, _ in results if data]
    if len(delivered) != len(results):
        problems.append("%d of %d messages not delivered" % (
            len(results) - len(delivered), len(results)))
    for (msg, data) in delivered:
        ours = [g for g in K.signatures(data) if g.get("d") == DOMAIN]
        want = sorted((k.selector, k.algorithm) for k in keys)
        got = sorted((g.get("s"), g.get("a")) for g in ours)
        if got != want:
            problems.append("%s: signatures (s, a) %s, want %s" % (
                msg.name, got, want))
        for g in ours:
            if norm_canon(g.get("c")) != canon:
                problems.append("%s: c=%s, want %s" % (msg.name,
                                                       g.get("c"), canon))
            h = [x.strip().lower() for x in g.get("h", "").split(":")]
            if "from" not in h:
                problems.append("%s: h= lacks from: %s" % (msg.name,
                                                           g.get("h")))
    for name, peer in peers.items():
        verdicts = peer.verify_many([d for _, d in delivered])
        for (msg, data), res in zip(delivered, verdicts):
            for k in keys:
                r = K.find(res, k.domain, k.selector)
                if r is None or r.result != "pass":
                    problems.append("%s %s: %s" % (name, msg.name, r))
            for d, sel, want in msg.foreign:
                r = K.find(res, d, sel)
                if r is None or r.result != want:
                    problems.append("%s %s: foreign %s/%s want %s, got %s"
                                    % (name, msg.name, d, sel, want, r))
    return problems


def _sign_test(which, canon):
    def fn(t):
        keys = [ag_keys()[w] for w in which]
        conf = settings(t, keys, canon)
        dns, sink, ag, pf = start(t, conf)
        peers = K.all_peers(dns)
        msgs = K.corpus()
        results = deliver(t, pf, sink, [(m.data, m) for m in msgs])
        problems = check_signed(t, results, keys, canon, peers)
        t.diag("%d messages submitted, %d delivered, verified by %s" % (
            len(msgs), sum(1 for r in results if r[1]), ", ".join(peers)))
        if problems:
            t.fail("%d problems" % len(problems), *problems[:60])
    return fn


for _which, _label in ((("rsa",), "rsa2048"), (("ed",), "ed25519"),
                       (("rsa", "ed"), "dual_rsa2048_ed25519")):
    for _canon in CANONS:
        tap.test(_sign_test(_which, _canon), name="authgate_signs_%s_%s" % (
            _label, _canon.split("/")[0]))


@tap.test
def rfc8463_message_signed_by_authgate(t):
    """The RFC 8463 A.3 message, signed by authgate with the A.1 keys
    (dual, for football.example.com): the body hashes are the published
    ones (simple: dkimpy's signature of it; relaxed: A.3), and every peer
    verifies both signatures."""
    ed, rsa = K.rfc8463_keys()
    unsigned = open(os.path.join(K.DATA, "vectors", "rfc8463",
                                 "unsigned.msg"), "rb").read()
    want_bh = {}
    for v in K.vectors():
        if v.name in ("rfc8463-a3", "dkimpy-rfc8463-simple"):
            tags = K.signatures(v.data)[0]
            want_bh[norm_canon(tags["c"]).split("/")[1]] = tags["bh"]
    problems = []
    for canon in CANONS:
        H.stop_all()
        conf = settings(t, [ed, rsa], canon,
                        pattern="*@football.example.com")
        dns, sink, ag, pf = start(t, conf)
        peers = K.all_peers(dns)
        [(_, data, _)] = deliver(t, pf, sink, [(unsigned, "rfc8463")])
        t.ok(data, "delivered (%s)" % canon)
        sigs = [s for s in K.signatures(data)
                if s.get("d") == "football.example.com"]
        t.eq(sorted(s["s"] for s in sigs), ["brisbane", "test"],
             "two signatures (%s)" % canon)
        for s in sigs:
            if s.get("bh") != want_bh[canon.split("/")[1]]:
                problems.append("%s %s: bh=%s, want %s" % (
                    canon, s["s"], s.get("bh"), want_bh[canon.split("/")[1]]))
        for name, peer in peers.items():
            res = peer.verify(data)
            for s in ("brisbane", "test"):
                r = K.find(res, "football.example.com", s)
                if r is None or r.result != "pass":
                    problems.append("%s %s s=%s: %s" % (canon, name, s, r))
    if problems:
        t.fail("%d problems" % len(problems), *problems)


# ---------------------------------------------------------------------------
# (b) who gets signed


@tap.test
def external_client_not_signed(t):
    keys = list(ag_keys().values())
    dns, sink, ag, pf = start(t, settings(t, keys))
    msgs = K.corpus(["plain", "with-dkim-signature"])
    results = deliver(t, pf, sink, [(m.data, m) for m in msgs],
                      submit=False,
                      xclient={"ADDR": EXTERNAL, "HELO": "mail.example.org"})
    for m, got, sm in results:
        data = m.data
        t.ok(got, "%s delivered" % m.name)
        ours = [s for s in K.signatures(got) if s.get("d") == DOMAIN]
        t.eq(ours, [], "%s from %s: not signed" % (m.name, EXTERNAL))
        t.eq(len(K.signatures(got)), len(K.signatures(data)),
             "%s: signatures unchanged" % m.name)
        t.ok(our_ar(sm), "%s: authgate's A-R is there" % m.name,
             got=sm.get_all("Authentication-Results"))


@tap.test
def internal_hosts_signed_without_auth(t):
    """internal_hosts is the other way to be internal: no AUTH needed."""
    keys = [ag_keys()["rsa"]]
    conf = settings(t, keys, internal_hosts="127.0.0.0/8, 192.0.2.0/24")
    dns, sink, ag, pf = start(t, conf)
    msg = K.corpus(["plain"])[0].data
    inside = deliver(t, pf, sink, [(msg, None)], submit=False,
                     xclient={"ADDR": "192.0.2.10",
                              "HELO": "mail.example.com"})
    outside = deliver(t, pf, sink, [(msg, None)], submit=False,
                      xclient={"ADDR": EXTERNAL, "HELO": "mail.example.org"})
    got_in = inside[0][1]
    t.ok(got_in, "delivered")
    sig = [s for s in K.signatures(got_in) if s.get("d") == DOMAIN]
    t.eq([s.get("s") for s in sig], ["ag-rsa"], "192.0.2.10 is signed for")
    peers = K.all_peers(dns, names=("dkimpy",))
    t.eq(K.find(peers["dkimpy"].verify(got_in), DOMAIN, "ag-rsa").result,
         "pass")
    got_out = outside[0][1]
    t.ok(got_out, "delivered")
    t.eq([s for s in K.signatures(got_out) if s.get("d") == DOMAIN], [],
         "%s is not signed for" % EXTERNAL)


# ---------------------------------------------------------------------------
# (c) authgate verifies


def check_ar(t, results):
    """results [(item, data, SinkMessage)] with item (signed msg, expect)
    where expect is [(d, s, a, b, result)] per signature."""
    problems = []
    for (signed, expect, label), data, sm in results:
        if sm is None:
            problems.append("%s: not delivered" % label)
            continue
        ar = our_ar(sm)
        if ar is None:
            problems.append("%s: no A-R with authserv-id %s: %s" % (
                label, ID, sm.get_all("Authentication-Results")))
            continue
        got = K.ar_dkim(ar)
        if len(got) != len(expect):
            problems.append("%s: %d dkim results for %d signatures: %s" % (
                label, len(got), len(expect), ar))
        for d, s, a, b, want in expect:
            r = K.find(got, d, s, b)
            if r is None:
                problems.append("%s: no result for d=%s s=%s: %s" % (
                    label, d, s, ar))
                continue
            if r.result != want:
                problems.append("%s: d=%s s=%s: dkim=%s, want %s (%s)" % (
                    label, d, s, r.result, want, ar))
            if want == "pass" and (r.algorithm, r.b) != (a, b[:8]):
                problems.append("%s: header.a=%s header.b=%s, want %s %s" % (
                    label, r.algorithm, r.b, a, b[:8]))
    return problems


def expectations(signed, corpus_msg=None, tampered=False):
    """(d, s, a, b, result) for every signature of a signed message: pass,
    fail when the body was changed, a foreign signature's own result."""
    foreign = {(d, sel): r for d, sel, r in
               (corpus_msg.foreign if corpus_msg else [])}
    out = []
    for tags in K.signatures(signed):
        key = (tags.get("d"), tags.get("s"))
        want = "fail" if tampered else foreign.get(key, "pass")
        out.append((tags.get("d"), tags.get("s"), tags.get("a"),
                    tags.get("b", ""), want))
    return out


def _verify_test(peer_name):
    def fn(t):
        dns, sink, ag, pf = start(t, settings(t))
        peer = K.all_peers(dns, names=(peer_name,))[peer_name]
        pk = peer_keys()
        msgs = K.corpus()
        jobs, labels = [], []
        for keyset in ([pk["rsa"]], [pk["ed"]], [pk["rsa"], pk["ed"]]):
            for canon in CANONS:
                why = peer.unsupported(keyset, canon)
                name = "+".join(k.kind for k in keyset)
                if why:
                    t.diag("not signed by %s (%s %s): %s" % (
                        peer_name, name, canon, why))
                    continue
                for m in msgs:
                    jobs.append((m.data, keyset, canon))
                    labels.append((m, "%s %s %s %s" % (peer_name, name,
                                                       canon, m.name)))
        signed = peer.sign_many(jobs)
        items = []
        for sm_, (m, label), job in zip(signed, labels, jobs):
            if isinstance(sm_, Exception):
                t.fail("%s: %s could not sign: %s" % (label, peer_name, sm_))
            items.append((sm_, (sm_, expectations(sm_, m), label)))
            if job[2] == "relaxed/relaxed":
                bad = K.tamper_body(sm_)
                items.append((bad, (bad, expectations(bad, m, True),
                                    label + " (one body byte changed)")))
        results = deliver(t, pf, sink, items, submit=False,
                          xclient={"ADDR": EXTERNAL,
                                   "HELO": "mail.example.org"})
        problems = check_ar(t, results)
        t.diag("%d messages signed by %s %s sent from %s" % (
            len(items), peer.name, peer.version, EXTERNAL))
        if problems:
            t.fail("%d problems" % len(problems), *problems[:60])
    return fn


for _peer in PEERS:
    tap.test(_verify_test(_peer), name="authgate_verifies_%s" % _peer)


# ---------------------------------------------------------------------------
# (d) vectors


@tap.test
def authgate_verifies_vectors(t):
    """RFC 8463 A.3 (relaxed), dkimpy's simple signature of it, gmail
    (2013, degenerate folding), Exim's ed25519-sha256: every signature
    dkim=pass with the right header.d/s/a/b."""
    dns, sink, ag, pf = start(t, settings(t))
    items = []
    for v in K.vectors():
        b = {g.get("s"): g.get("b", "") for g in K.signatures(v.data)}
        expect = [(d, sel, a, b[sel], want) for d, sel, a, want in v.expect]
        items.append((v.data, (v.data, expect, v.name)))
    results = deliver(t, pf, sink, items, submit=False,
                      xclient={"ADDR": EXTERNAL, "HELO": "mail.example.org"})
    problems = check_ar(t, results)
    if problems:
        t.fail("%d problems" % len(problems), *problems)


# ---------------------------------------------------------------------------
# (e) the CLI path: authgate check on the LF-only file


def check_cli(t, conf, args, path):
    """Run `authgate check` -> (status, stdout lines)."""
    binary = H.default_authgate_bin()
    if not os.access(binary, os.X_OK):
        t.fail("authgate binary %s not found" % binary)
    cf = os.path.join(t.tmpdir, "check.conf")
    with open(cf, "w") as f:
        for k, v in conf.items():
            v = ("yes" if v else "no") if isinstance(v, bool) else v
            f.write("%s = %s\n" % (k, v))
    r = subprocess.run([binary, "check", "-c", cf] + args + [path],
                       stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                       timeout=60)
    t.diag("authgate check %s: exit %d\n%s%s" % (
        " ".join(args), r.returncode, r.stdout.decode(errors="replace"),
        r.stderr.decode(errors="replace")))
    return r.returncode, r.stdout.decode("utf-8", errors="replace") \
        .splitlines()


@tap.test(skip="stand-in mode: authgate only" if STANDIN else None)
def cli_signs_lf_only_file(t):
    """relaxed/relaxed: the unfolded DKIM-Signature line that `authgate
    check` prints, put on top of the LF-only file, verifies everywhere
    (relaxed header canonicalization unfolds anyway)."""
    keys = list(ag_keys().values())
    dns = H.DnsServer().start()
    zone(dns, *keys)
    conf = settings(t, keys, "relaxed/relaxed")
    msg = K.corpus(["lf-only"])[0]
    t.ok(msg.lf_only, "the file has bare LF line ends")
    rc, out = check_cli(t, conf, [
        "-o", "dns_servers=127.0.0.1@%d" % dns.port, "--client-ip",
        "127.0.0.1", "--auth-user", "alice", "--mail-from", SENDER],
        msg.path)
    t.eq(rc, 0, "exit status")
    sig_lines = [ln for ln in out if ln.startswith("DKIM-Signature:")]
    t.eq(len(sig_lines), 2, "two DKIM-Signature lines (RSA + Ed25519)")
    t.match(r"^action: accept", "\n".join(out))
    signed = "".join(ln + "\n" for ln in sig_lines).encode() + msg.data
    for name, peer in K.all_peers(dns).items():
        res = peer.verify(signed)
        for k in keys:
            r = K.find(res, k.domain, k.selector)
            t.ok(r is not None and r.result == "pass",
                 "%s verifies %s" % (name, k.selector), got=r)


@tap.test(skip="stand-in mode: authgate only" if STANDIN else None)
def cli_verifies_lf_only_file(t):
    dns = H.DnsServer().start()
    pk = peer_keys()
    zone(dns, *pk.values())
    msg = K.corpus(["lf-only"])[0]
    peers = K.all_peers(dns)
    for name in PEERS:
        for key in pk.values():
            canon = "relaxed/relaxed"
            signed = peers[name].sign(msg.data, [key], canon)
            t.eq(K.eol_of(signed), b"\n", "still LF-only")
            path = os.path.join(t.tmpdir, "%s-%s.eml" % (name, key.kind))
            with open(path, "wb") as f:
                f.write(signed)
            rc, out = check_cli(t, settings(t), [
                "-o", "dns_servers=127.0.0.1@%d" % dns.port,
                "--client-ip", EXTERNAL, "--mail-from", SENDER], path)
            t.eq(rc, 0, "exit status")
            ar = [ln.split(":", 1)[1].strip() for ln in out
                  if ln.startswith("Authentication-Results:")]
            t.eq(len(ar), 1, "one A-R line")
            tags = K.signatures(signed)[0]
            r = K.find(K.ar_dkim(ar[0]), DOMAIN, key.selector)
            t.ok(r is not None and (r.result, r.algorithm, r.b) == (
                "pass", key.algorithm, tags["b"][:8]),
                "%s %s: dkim=pass header.a=%s header.b=%s" % (
                    name, key.kind, key.algorithm, tags["b"][:8]), got=ar)


if __name__ == "__main__":
    tap.main()
