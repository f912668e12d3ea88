#!/usr/bin/python3
"""genmsg.py - the message corpora and DNS zone of the milter benchmark.

    genmsg.py --out DIR --keys KEYDIR [--count N]

KEYDIR holds rsa.private (RSA-2048) and ed.private (Ed25519), as
`authgate-keys generate` writes them.  Writes under DIR:

  in-SIZE/      N messages from bench.example as they arrive from outside:
                with Received: trail, multipart/alternative text + HTML
                (the 1 MB ones add a base64 PDF-like attachment), each
                signed by bench.example with RSA-2048 and Ed25519 (dkimpy,
                relaxed/relaxed), sizes 4k, 100k, 1m
  slow-4k/      4 KB messages like in-4k, each from a domain of its own,
                mNNN.slow.example (with a Return-Path: for miltc
                --return-path), so that no answer serves two messages: the
                run with 50 ms per DNS answer and TTL 0 uses them.  Their
                SPF record is flat (no include), so one round trip is the
                floor of a message's DNS time
  out-SIZE/     unsigned messages from internal users, to be signed, for
                the domains rsa.bench.example (RSA key), ed.bench.example
                (Ed25519) and bench.example (both)
  out-rsa-4k/ out-ed-4k/ out-dual-4k/   the 4 KB ones split by key
  zone.json     the records dns_server.py serves: SPF (a list and an
                include), the DKIM keys, DMARC p=reject with rua, PTR and
                A for the client, SOA for negative caching

The client the benchmark pretends to be is 192.0.2.10, HELO
mail.bench.example; SPF passes for it.
"""

import argparse
import base64
import os
import random
import re

import dkim

CLIENT_IP = "192.0.2.10"
HELO = "mail.bench.example"
NSLOW = 160    # slow-4k: more than a run sends, so no domain comes twice
SIZES = {"4k": 4 * 1024, "100k": 100 * 1024, "1m": 1024 * 1024}
WORDS = ("the of and to in is that for it as was with be by on not he this "
         "are or his from at which but have an they you were her all she "
         "there would their we him been has when who will more no if out "
         "report invoice meeting schedule quarterly update shipment account "
         "project review budget deadline customer support order delivery "
         "please attached regards thanks tomorrow morning afternoon").split()


def pem_der(pem):
    body = re.search(rb"-----BEGIN [A-Z ]+-----(.*?)-----END", pem, re.S)
    return base64.b64decode(b"".join(body.group(1).split()))


def keys(keydir):
    rsa = open(os.path.join(keydir, "rsa.private"), "rb").read()
    ed = pem_der(open(os.path.join(keydir, "ed.private"), "rb").read())
    # PKCS#8 of Ed25519: a fixed 16-byte prefix, then the 32-byte seed
    return rsa, base64.b64encode(ed[-32:])


def record(keydir, sel):
    txt = open(os.path.join(keydir, sel + ".txt")).read()
    return "".join(re.findall(r'"([^"]*)"', txt))


def para(rng, n):
    out, line, total = [], [], 0
    while total < n:
        w = rng.choice(WORDS)
        out.append(w)
        total += len(w) + 1
    text, col = [], 0
    for w in out:
        if col + len(w) + 1 > 72:
            text.append(" ".join(line))
            line, col = [], 0
        line.append(w)
        col += len(w) + 1
    text.append(" ".join(line))
    return "\n".join(text)


def message(rng, i, size, domain, internal):
    """One message of about SIZE bytes (before signing)."""
    frm = "%s@%s" % (rng.choice(["alice", "bob", "carol", "news"]), domain)
    b = "=_bench_%08x" % rng.getrandbits(32)
    hdrs = []
    if not internal:
        hdrs += [
            "Received: from mail.bench.example (mail.bench.example "
            "[192.0.2.10])\n\tby mx.bench.example (Postfix) with ESMTPS id "
            "4Xy%05dQz\n\tfor <rcpt@example.com>; Mon, 3 Aug 2026 "
            "10:%02d:00 +0000 (UTC)" % (i, i % 60),
            "Received: from [10.1.2.%d] (unknown [10.1.2.%d])\n\tby "
            "mail.bench.example (Postfix) with ESMTPSA id 4Xa%05dBc;\n\t"
            "Mon, 3 Aug 2026 10:%02d:00 +0000 (UTC)"
            % (i % 250, i % 250, i, i % 60)]
    hdrs += [
        "From: %s <%s>" % (frm.split("@")[0].title(), frm),
        "To: Recipient <rcpt@example.com>",
        "Subject: %s %d" % (para(rng, 30).replace("\n", " "), i),
        "Date: Mon, 3 Aug 2026 10:%02d:%02d +0000" % (i % 60, i % 59),
        "Message-ID: <%08x.%d@%s>" % (rng.getrandbits(32), i, domain),
        "MIME-Version: 1.0",
        "Content-Type: multipart/alternative; boundary=\"%s\"" % b]
    if size >= SIZES["1m"]:
        hdrs[-1] = "Content-Type: multipart/mixed; boundary=\"%s\"" % b
    head = "\n".join(hdrs) + "\n\n"
    text_n = max(600, min(size, 96 * 1024) // 3)
    txt = para(rng, text_n)
    html = "<html><body><p>%s</p>\n<p><a href=\"https://www.%s/r/%d\">" \
        "details</a></p></body></html>" % (
            para(rng, text_n).replace("\n", "</p>\n<p>"), domain, i)
    body = ("This is a multi-part message in MIME format.\n\n"
            "--%s\nContent-Type: text/plain; charset=utf-8\n"
            "Content-Transfer-Encoding: 7bit\n\n%s\n"
            "See https://www.%s/r/%d\n\n"
            "--%s\nContent-Type: text/html; charset=utf-8\n"
            "Content-Transfer-Encoding: 7bit\n\n%s\n\n" % (
                b, txt, domain, i, b, html))
    rest = size - len(head) - len(body) - 40
    if size >= SIZES["1m"] and rest > 0:
        raw = rng.randbytes(rest * 3 // 4)
        enc = base64.encodebytes(raw).decode()
        body += ("--%s\nContent-Type: application/pdf; name=\"r%d.pdf\"\n"
                 "Content-Disposition: attachment; filename=\"r%d.pdf\"\n"
                 "Content-Transfer-Encoding: base64\n\n%s\n" % (
                     b, i, i, enc))
    elif rest > 0:
        body = body.replace("\n\n--%s\nContent-Type: text/html" % b,
                            "\n" + para(rng, rest // 2) +
                            "\n\n--%s\nContent-Type: text/html" % b, 1)
        body = body.replace("</p></body>",
                            "</p>\n<p>" + para(rng, rest // 2) +
                            "</p></body>", 1)
    body += "--%s--\n" % b
    return (head + body).replace("\n", "\r\n").encode()


def sign(msg, domain, rsa, ed):
    """msg with an Ed25519 then an RSA DKIM-Signature on top."""
    hdrs = [b"from", b"to", b"subject", b"date", b"message-id",
            b"mime-version", b"content-type"]
    out = msg
    for sel, key in (("rsa", rsa), ("ed", ed)):
        sig = dkim.sign(msg, sel.encode(), domain.encode(), key,
                        canonicalize=(b"relaxed", b"relaxed"),
                        include_headers=hdrs,
                        signature_algorithm=(b"ed25519-sha256" if sel == "ed"
                                             else b"rsa-sha256"))
        out = sig + out
    return out


def write(d, name, data):
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data.replace(b"\r\n", b"\n"))


def zone(keydir, nslow):
    rsa, ed = record(keydir, "rsa"), record(keydir, "ed")
    recs = [[".", "SOA", "ns.bench.example. hostmaster.bench.example. "
             "1 3600 600 86400 3600"]]
    doms = ["bench.example"] + ["m%03d.slow.example" % i
                                for i in range(nslow)]
    for dom in doms:
        if dom == "bench.example":
            recs += [[dom + ".", "TXT", "v=spf1 ip4:198.51.100.0/24 "
                      "include:_spf.%s -all" % dom],
                     ["_spf.%s." % dom, "TXT", "v=spf1 ip4:192.0.2.0/24 -all"]]
        else:
            recs += [[dom + ".", "TXT", "v=spf1 ip4:192.0.2.0/24 -all"]]
        recs += [
            ["rsa._domainkey.%s." % dom, "TXT", rsa],
            ["ed._domainkey.%s." % dom, "TXT", ed],
            ["_dmarc.%s." % dom, "TXT", "v=DMARC1; p=reject; "
             "rua=mailto:dmarc@%s; adkim=r; aspf=r" % dom],
            ["www.%s." % dom, "A", "198.51.100.80"]]
    for sub in ("rsa.bench.example", "ed.bench.example"):
        recs += [[sub + ".", "TXT", "v=spf1 ip4:192.0.2.0/24 -all"]]
    recs += [[HELO + ".", "A", CLIENT_IP],
             [HELO + ".", "TXT", "v=spf1 a -all"],
             ["10.2.0.192.in-addr.arpa.", "PTR", HELO + "."],
             ["bench.example.", "MX", "10 " + HELO + "."],
             ["example.com.", "MX", "10 mx.example.com."]]
    return {"ttl": 3600, "records": recs}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--keys", required=True)
    ap.add_argument("--count", type=int, default=20)
    a = ap.parse_args()
    rsa, ed = keys(a.keys)
    rng = random.Random(20260803)
    for tag, size in SIZES.items():
        n = a.count if size < SIZES["1m"] else max(2, a.count // 4)
        for i in range(n):
            m = message(rng, i, size, "bench.example", False)
            write(os.path.join(a.out, "in-" + tag), "%03d.eml" % i,
                  sign(m, "bench.example", rsa, ed))
            for kind, dom in (("rsa", "rsa.bench.example"),
                              ("ed", "ed.bench.example"),
                              ("dual", "bench.example")):
                if tag != "4k" and kind != "dual":
                    continue
                m = message(rng, i, size, dom, True)
                write(os.path.join(a.out, "out-%s-%s" % (kind, tag)),
                      "%03d.eml" % i, m)
    for i in range(NSLOW):
        dom = "m%03d.slow.example" % i
        m = message(rng, i, SIZES["4k"], dom, False)
        write(os.path.join(a.out, "slow-4k"), "%03d.eml" % i,
              b"Return-Path: <bob@%s>\r\n" % dom.encode() +
              sign(m, dom, rsa, ed))
    import json
    with open(os.path.join(a.out, "zone.json"), "w") as f:
        json.dump(zone(a.keys, NSLOW), f, indent=1)


if __name__ == "__main__":
    main()
