#!/usr/bin/python3
"""test_dkim_peers.py - the DKIM interoperability kit checked against itself.

Three independent DKIM implementations (dkimpy, OpenDKIM, mailauth; see
peers/README.md) sign every message of tests/data/dkim/messages with
RSA-2048 and Ed25519 keys in all four canonicalizations, and each of the
three verifies every result.  A kit that cannot tell good from bad is no
kit: every signed message is also verified with one body byte changed and
with the Subject changed, and must then not pass.  Messages signed
elsewhere (RFC 8463, Exim, gmail, mailauth's fixtures) must verify with
every peer.  What a peer cannot do is not run: a test proves the limit
(opendkim_cannot_mix_algorithms, opendkim_ed25519_simple_header_canon) and
matrix_summary lists each such cell with its reason.

Runs without authgate.  Every key record is served by the test's loopback
DnsServer; the query log proves that each verifier asked it.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import dkim_kit as K  # noqa: E402
import harness as H  # noqa: E402
import tap  # noqa: E402

DOMAIN = "example.com"
SIGNERS = ("dkimpy", "opendkim", "mailauth")
VERIFIERS = ("dkimpy", "opendkim", "mailauth")
ALGS = ("rsa2048", "ed25519")
MATRIX = {}        # (signer, kind, canon, verifier) -> (passed, total)
NOT_RUN = {}       # (signer, what) -> reason


def setup(t):
    dns = H.DnsServer().start()
    keys = {k: K.make_key(k, DOMAIN, "kit-" + k)
            for k in ("rsa2048", "ed25519", "rsa1024")}
    K.publish(dns, *keys.values())
    K.publish_fixtures(dns)
    return dns, keys, K.all_peers(dns)


def check_foreign(res, msg):
    """Problems with the corpus message's own (foreign) signatures."""
    bad = []
    for d, s, want in msg.foreign:
        r = K.find(res, d, s)
        if r is None or r.result != want:
            bad.append("foreign d=%s s=%s: want %s, got %s" % (
                d, s, want, r))
    return bad


def run_matrix(t, signer_name, kinds, canons, dual=False):
    """signer signs the corpus with keys `kinds` (one signature each, or
    all at once when dual) in each canon; every verifier checks every
    signature, the foreign ones, and two tampered copies."""
    dns, keys, peers = setup(t)
    signer = peers[signer_name]
    msgs = K.corpus()
    keysets = [[keys[k] for k in kinds]] if dual else \
        [[keys[k]] for k in kinds]
    jobs, meta = [], []
    for ks in keysets:
        for canon in canons:
            why = signer.unsupported(ks, canon)
            if why:                # the caller only asks for what works
                t.fail("asked for an unsupported combination: " + why)
            for m in msgs:
                jobs.append((m.data, ks, canon))
                meta.append((ks, canon, m))
    signed = signer.sign_many(jobs)
    problems = []
    ok_msgs, ok_meta = [], []
    for s, (ks, canon, m) in zip(signed, meta):
        if isinstance(s, Exception):
            problems.append("sign %s %s %s: %s" % (
                "+".join(k.kind for k in ks), canon, m.name, s))
            continue
        if len(K.signatures(s)) != len(K.signatures(m.data)) + len(ks):
            problems.append("sign %s %s: %d signatures added" % (
                canon, m.name, len(K.signatures(s)) -
                len(K.signatures(m.data))))
            continue
        tags = K.signatures(s)[:len(ks)]
        for k, tg in zip(ks, tags):
            if (tg.get("d"), tg.get("s"), tg.get("a"), tg.get("c")) != (
                    k.domain, k.selector, k.algorithm, canon):
                problems.append("sign %s %s: tags %s" % (canon, m.name, tg))
        ok_msgs.append(s)
        ok_meta.append((ks, canon, m))
    batch = []
    for s in ok_msgs:
        batch += [s, K.tamper_body(s), K.tamper_header(s, "Subject")]
    for vname in VERIFIERS:
        verifier = peers[vname]
        before = {k.name: dns.count(k.name, "TXT") for k in keys.values()}
        results = verifier.verify_many(batch)
        asked = [k for k in keys.values()
                 if dns.count(k.name, "TXT") > before[k.name]]
        for i, (ks, canon, m) in enumerate(ok_meta):
            good, body, head = results[3 * i:3 * i + 3]
            cell = (signer_name, "+".join(k.kind for k in ks), canon, vname)
            passed, total = MATRIX.get(cell, (0, 0))
            fine = True
            for k in ks:
                r = K.find(good, k.domain, k.selector)
                if r is None or r.result != "pass":
                    fine = False
                    problems.append("%s -> %s %s %s %s: %s" % (
                        signer_name, vname, k.kind, canon, m.name, r))
                for what, res in (("body changed", body),
                                  ("Subject changed", head)):
                    r = K.find(res, k.domain, k.selector)
                    if r is None or r.result != "fail":
                        fine = False
                        problems.append("%s -> %s %s %s %s, %s: %s" % (
                            signer_name, vname, k.kind, canon, m.name,
                            what, r))
            for p in check_foreign(good, m):
                fine = False
                problems.append("%s -> %s %s %s: %s" % (
                    signer_name, vname, canon, m.name, p))
            MATRIX[cell] = (passed + fine, total + 1)
        for k in {k.name: k for ks, _, _ in ok_meta for k in ks}.values():
            if k not in asked:
                problems.append("%s never asked the loopback DNS server "
                                "for %s" % (vname, k.name))
    t.diag("%s %s signed %d messages (%s; %s); %d verifications by %s"
           % (signer.name, signer.version, len(ok_msgs),
              ", ".join("+".join(k.kind for k in ks) for ks in keysets),
              " ".join(canons), 3 * len(batch), ", ".join(VERIFIERS)))
    if problems:
        t.fail("%d problems" % len(problems), *problems[:60])


def _short(canon):
    return canon.replace("relaxed", "r").replace("simple", "s").replace(
        "/", "")


def _register_matrix(signer, kinds, canons, dual=False):
    """One test for the combinations the signer supports; the ones it does
    not support are recorded with the reason (no test is skipped)."""
    algs = [K.KINDS[k][0] for k in kinds]
    algs = ["ed25519-sha256" if a == "ed25519" else "rsa-sha256"
            for a in algs]
    label = "+".join(kinds)
    good = []
    for canon in canons:
        why = K.limitation(signer, algs if dual else algs[:1], canon)
        if why:
            # not a test: the evidence tests below assert the limit, and
            # matrix_summary lists the cell with its reason
            NOT_RUN[(signer, label, canon)] = why
        else:
            good.append(canon)
    if good:
        def fn(t):
            run_matrix(t, signer, kinds, good, dual=dual)
        tap.test(fn, name="%s_signs_%s_%s" % (
            signer, label, "_".join(_short(c) for c in good)))


@tap.test
def peer_versions(t):
    dns, keys, peers = setup(t)
    for line in K.versions(peers):
        t.diag(line)
    t.eq(peers["mailauth"].version, K.MAILAUTH_VERSION, "pinned mailauth")
    t.contains(peers["opendkim"].features, "ed25519-sha256",
               "opendkim -V lists ed25519-sha256")
    for k in keys.values():
        t.diag("%s %s: %d-bit %s, record %d bytes" % (
            k.kind, k.name, k.bits, k.k, len(k.txt)))
    t.eq(keys["rsa2048"].bits, 2048)
    t.eq(keys["rsa1024"].bits, 1024)
    t.eq(len(K.corpus()), len(os.listdir(K.MESSAGES)), "corpus files")


@tap.test
def key_records_as_served(t):
    """The records the peers see: an RSA-2048 record is longer than 255
    bytes, so the server splits it into two strings (RFC 7208-style
    concatenation is the verifier's job); Ed25519 is a raw 32-byte key."""
    dns, keys, peers = setup(t)
    for k in keys.values():
        got = peers["dkimpy"].dnsfunc(k.name.encode())
        t.eq(got, k.txt.encode(), "record of %s" % k.name)
    rec = dns.zone.records[K.H.dns_server.norm(keys["rsa2048"].name)][0]
    t.eq(len(rec[1].data), 2, "2048-bit record split in two strings")
    import base64
    t.eq(len(base64.b64decode(keys["ed25519"].public)), 32,
         "ed25519 p= is the raw 32-byte key (RFC 8463 4)")
    t.eq(peers["dkimpy"].dnsfunc(b"nope._domainkey.example.com."), None)


@tap.test
def vectors_verify_with_every_peer(t):
    dns, keys, peers = setup(t)
    vecs = K.vectors()
    problems = []
    for vname in VERIFIERS:
        results = peers[vname].verify_many([v.data for v in vecs])
        for v, res in zip(vecs, results):
            t.diag("%s %s: %s" % (vname, v.name, "; ".join(
                "%s/%s %s" % (r.selector, r.algorithm, r.result)
                for r in res)))
            if len(res) != len(v.expect):
                problems.append("%s %s: %d results for %d signatures" % (
                    vname, v.name, len(res), len(v.expect)))
            for d, s, a, want in v.expect:
                r = K.find(res, d, s)
                if r is None or (r.algorithm, r.result) != (a, want):
                    problems.append("%s %s: want %s/%s/%s %s, got %s" % (
                        vname, v.name, d, s, a, want, r))
    if problems:
        t.fail("%d problems" % len(problems), *problems)


for _signer in SIGNERS:
    for _kind in ALGS:
        _register_matrix(_signer, [_kind], K.CANONS)
for _signer in SIGNERS:
    _register_matrix(_signer, ["rsa2048", "ed25519"],
                     ("relaxed/relaxed", "simple/simple"), dual=True)


@tap.test
def rsa1024_keys(t):
    """RSA-1024 is the smallest key every peer accepts by default (and
    authgate's dkim_min_key_bits default)."""
    dns, keys, peers = setup(t)
    msgs = K.corpus(["plain", "folded-headers", "lf-only"])
    problems = []
    for sname in SIGNERS:
        signed = peers[sname].sign_many(
            [(m.data, [keys["rsa1024"]], "relaxed/relaxed") for m in msgs])
        for vname in VERIFIERS:
            for m, res in zip(msgs, peers[vname].verify_many(signed)):
                r = K.find(res, DOMAIN, "kit-rsa1024")
                if r is None or r.result != "pass":
                    problems.append("%s -> %s %s: %s" % (
                        sname, vname, m.name, r))
    if problems:
        t.fail("RSA-1024", *problems)


@tap.test
def opendkim_cannot_mix_algorithms(t):
    """Evidence for the one limit the matrix skips: OpenDKIM takes the
    algorithm from its global SignatureAlgorithm, not from the key.  An
    RSA key under SignatureAlgorithm ed25519-sha256 gives a signature
    labelled a=ed25519-sha256 that no verifier accepts.  (When this test
    fails, a newer OpenDKIM can dual-sign: drop OpenDkim.unsupported.)"""
    dns, keys, peers = setup(t)
    od = peers["opendkim"]
    rsa = keys["rsa2048"]
    path = rsa.write(od.dir, name="mixed.pem")
    with open(os.path.join(od.dir, "mixed.keytable"), "w") as f:
        f.write("k %s:%s:%s\n" % (rsa.domain, rsa.selector, path))
    with open(os.path.join(od.dir, "mixed.signingtable"), "w") as f:
        f.write("* k\n")
    _, sock = od._start("mixed", [
        "Mode s", "SignatureAlgorithm ed25519-sha256",
        "KeyTable file:%s/mixed.keytable" % od.dir,
        "SigningTable refile:%s/mixed.signingtable" % od.dir,
        "InternalHosts 127.0.0.1", "RequireSafeKeys no"])
    msg = K.corpus(["plain"])[0].data
    out = od._miltc(sock, msg, od.SIGN_CLIENT)
    signed, _ = K.apply_milter_edits(msg, out)
    tags = K.signatures(signed)
    t.eq(len(tags), 1, "one signature")
    t.eq((tags[0]["a"], tags[0]["s"]), ("ed25519-sha256", rsa.selector),
         "an ed25519-sha256 signature made with the RSA key")
    t.diag("b= is %d bytes (an Ed25519 signature has 64)"
           % len(__import__("base64").b64decode(tags[0]["b"])))
    for vname in VERIFIERS:
        r = K.find(peers[vname].verify(signed), rsa.domain, rsa.selector)
        t.diag("%s: %s" % (vname, r))
        t.ne(r.result, "pass", "%s rejects it" % vname)


@tap.test
def opendkim_ed25519_simple_header_canon(t):
    """Evidence for the other limit the matrix skips: OpenDKIM's own
    ed25519-sha256 signatures with c=simple/... fail everywhere, OpenDKIM
    included, while its relaxed ones and everybody's simple ones pass.
    (When this test fails, OpenDKIM is fixed: drop that limitation.)"""
    dns, keys, peers = setup(t)
    od = peers["opendkim"]
    ed = keys["ed25519"]
    msg = K.corpus(["plain"])[0].data
    path = ed.write(od.dir, name="edsimple.pem")
    signed = {}
    for canon in ("simple/simple", "simple/relaxed", "relaxed/relaxed"):
        tag = "ed" + _short(canon)
        with open(os.path.join(od.dir, tag + ".keytable"), "w") as f:
            f.write("k %s:%s:%s\n" % (ed.domain, ed.selector, path))
        with open(os.path.join(od.dir, tag + ".signingtable"), "w") as f:
            f.write("* k\n")
        _, sock = od._start(tag, [
            "Mode s", "SignatureAlgorithm ed25519-sha256",
            "Canonicalization %s" % canon,
            "KeyTable file:%s/%s.keytable" % (od.dir, tag),
            "SigningTable refile:%s/%s.signingtable" % (od.dir, tag),
            "InternalHosts 127.0.0.1", "RequireSafeKeys no"])
        out = od._miltc(sock, msg, od.SIGN_CLIENT)
        signed[canon] = K.apply_milter_edits(msg, out)[0]
    signed["dkimpy simple/simple"] = peers["dkimpy"].sign(
        msg, [ed], "simple/simple")
    for vname in VERIFIERS:
        res = peers[vname].verify_many(list(signed.values()))
        for what, r in zip(signed, res):
            r = K.find(r, ed.domain, ed.selector)
            t.diag("%s verifies opendkim %s: %s" % (vname, what, r))
            want = "fail" if what.startswith("simple/") else "pass"
            t.eq(r.result, want, "%s: %s" % (vname, what))


@tap.test
def matrix_summary(t):
    """The peer-to-peer matrix of this run: passed/total messages per
    signer, key and verifier, over all canonicalizations run, and what was
    not run and why."""
    t.ok(MATRIX, "the matrix tests ran")
    kinds = sorted({c[1] for c in MATRIX} | {n[1] for n in NOT_RUN})
    for signer in SIGNERS:
        for kind in kinds:
            for canon in K.CANONS:
                cells = []
                for vname in VERIFIERS:
                    v = MATRIX.get((signer, kind, canon, vname))
                    if v:
                        cells.append("%s %d/%d" % (vname, v[0], v[1]))
                if (signer, kind, canon) in NOT_RUN:
                    cells = ["not run: " + NOT_RUN[(signer, kind, canon)]]
                if cells:
                    t.diag("%-8s %-15s %-15s -> %s" % (
                        signer, kind, canon, ", ".join(cells)))
    failed = {c: v for c, v in MATRIX.items() if v[0] != v[1]}
    t.eq(failed, {}, "every cell passed")


if __name__ == "__main__":
    tap.main()
