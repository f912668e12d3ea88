#!/usr/bin/python3
"""gen_pipeline_seeds.py - write (or read back) fuzz_pipeline inputs.

fuzz_pipeline.c reads a binary sequence of milter operations. This script
keeps the seed corpus readable and reproducible: each seed below is a list
of operations, encoded exactly as the harness decodes them.

  gen_pipeline_seeds.py [OUTDIR]      write the seeds (default: the
                                      corpus/pipeline dir next to this file)
  gen_pipeline_seeds.py --decode FILE...
                                      print inputs (a crash, say) as the
                                      operation list, one per line

Encoding (keep in step with fuzz_pipeline.c):
  byte 0       flags: 1 snapshot B, 8 snapshot C (else A),
               2 message arenas fail, 4 connection arenas fail
  [2 bytes]    flag 2 only: n, big-endian (fail_after = n % 512 + 1)
  [2 bytes]    flag 4 only: n, big-endian (fail_after = n % 64 + 1)
  operations   opcode byte, then its arguments; a string is a length
               byte (0xff: a 2-byte big-endian length follows) and bytes
"""
import os
import sys

# opcode: (name, argument kinds); "s" string, "b" byte
OPS = [
    ("conn", "ss"),        # j macro, daemon name
    ("client", "bsss"),    # kind, address bytes, ip text, client name
    ("helo", "sss"),       # helo, tls version, cipher
    ("msg", "ss"),         # queue id, auth user
    ("mail", "s"),
    ("rcpt", "s"),
    ("hdr", "ss"),         # name, value
    ("arhdr", "bs"),       # name variant (0..2), value
    ("eoh", ""),
    ("body", "s"),
    ("eom", ""),
    ("abort", ""),
    ("qid", "s"),
]
OPCODE = {name: i for i, (name, _) in enumerate(OPS)}

# client kinds: 0 text address; 1 socket address (+ text); 2 socket only;
# 4 bit: no client name
CLIENT_TEXT, CLIENT_SA, CLIENT_SA_ONLY = 0, 1, 3


def enc_str(s):
    if isinstance(s, str):
        s = s.encode("latin-1")
    if len(s) < 0xFF:
        return bytes([len(s)]) + s
    return bytes([0xFF, len(s) >> 8, len(s) & 0xFF]) + s


def encode(flags, ops, fail_msg=1, fail_conn=1):
    out = bytearray([flags])
    if flags & 2:
        out += bytes([(fail_msg - 1) >> 8, (fail_msg - 1) & 0xFF])
    if flags & 4:
        out += bytes([(fail_conn - 1) >> 8, (fail_conn - 1) & 0xFF])
    for op in ops:
        name, args = op[0], op[1:]
        kinds = OPS[OPCODE[name]][1]
        if len(args) != len(kinds):
            raise ValueError("%s takes %d arguments" % (name, len(kinds)))
        out.append(OPCODE[name])
        for kind, arg in zip(kinds, args):
            out += bytes([arg]) if kind == "b" else enc_str(arg)
    return bytes(out)


def message_ops(path):
    """hdr/arhdr/eoh/body operations for an .eml file, as an MTA sends it:
    values without the line end, folds kept as LF, body with CRLF."""
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(b"From "):
        data = data.split(b"\n", 1)[1] if b"\n" in data else b""
    lines = data.replace(b"\r\n", b"\n").split(b"\n")
    ops, i = [], 0
    while i < len(lines) and lines[i] and b":" in lines[i] \
            and lines[i][:1] not in (b" ", b"\t"):
        name, value = lines[i].split(b":", 1)
        i += 1
        while i < len(lines) and lines[i][:1] in (b" ", b"\t"):
            value += b"\n" + lines[i]
            i += 1
        if name.strip().lower() == b"authentication-results":
            variant = {b"Authentication-Results": 0,
                       b"authentication-results": 1}.get(name, 2)
            ops.append(("arhdr", variant, value))
        else:
            ops.append(("hdr", name.strip(), value))
    if i < len(lines) and lines[i] == b"":
        i += 1
    ops.append(("eoh",))
    body = b"\r\n".join(lines[i:])
    for off in range(0, len(body), 200):
        ops.append(("body", body[off:off + 200]))
    return ops


def connect(ip="192.0.2.1", name="mail.example.org", j="mx.authgate.test"):
    return [("conn", j, "smtpd"),
            ("client", CLIENT_TEXT, b"", ip, name),
            ("helo", name, "", "")]


def envelope(sender="<alice@example.org>", rcpts=("<bob@example.com>",),
             qid="4XyT1c2zNF", auth=""):
    ops = [("msg", qid, auth), ("mail", sender)]
    ops += [("rcpt", r) for r in rcpts]
    return ops


HERE = os.path.dirname(os.path.abspath(__file__))
MESSAGES = os.path.join(HERE, "..", "cli", "messages")


def seeds():
    msgs = {n[:-4]: message_ops(os.path.join(MESSAGES, n))
            for n in sorted(os.listdir(MESSAGES)) if n.endswith(".eml")}
    s = {}
    # one plain message, the way Postfix sends it
    s["plain"] = (0, connect() + envelope() + msgs["plain"] + [("eom",)])
    # forged A-R headers in every spelling the test messages have
    s["forged-ar"] = (0, connect() + envelope() + msgs["forged-ar"]
                      + [("eom",)])
    # snapshot B: no authserv_id, the MTA's j macro names us
    s["forged-ar-j"] = (1, connect(j="mx.authgate.test") + envelope()
                        + msgs["forged-ar"] + [("eom",)])
    s["crlf"] = (0, connect() + envelope() + msgs["crlf"] + [("eom",)])
    s["no-headers"] = (0, connect() + envelope() + msgs["no-headers"]
                       + [("eom",)])
    s["empty"] = (0, connect() + envelope() + msgs["empty"] + [("eom",)])
    # two messages on one connection, the first aborted mid-body (RSET)
    s["abort-then-send"] = (0, connect() + envelope(qid="A1")
                            + [("hdr", "Subject", " first"), ("eoh",),
                               ("body", "part of it\r\n"), ("abort",)]
                            + envelope(qid="A2", rcpts=("<a@x.example>",
                                                        "<b@y.example>"))
                            + msgs["plain"] + [("eom",)])
    # client by socket address, IPv6, internal network, SMTP AUTH
    s["ipv6-auth"] = (0, [("conn", "mx.authgate.test", "submission"),
                          ("client", CLIENT_SA,
                           bytes.fromhex("20010db8000100000000000000000025"),
                           "IPv6:2001:db8:1::25", "laptop.example.org"),
                          ("helo", "[IPv6:2001:db8:1::25]", "TLSv1.3",
                           "TLS_AES_256_GCM_SHA384")]
                      + envelope(auth="alice") + msgs["forged-ar"]
                      + [("eom",)])
    # IPv4 socket address, unknown client name, null sender
    s["ipv4-sa-null-sender"] = (0, [("conn", "", ""),
                                    ("client", CLIENT_SA | 4,
                                     bytes([198, 51, 100, 7]), "", ""),
                                    ("helo", "x", "", "")]
                                + envelope(sender="<>") + msgs["plain"]
                                + [("eom",)])
    # over max_headers (10 in snapshot A) with a forged A-R past the cap
    many = [("hdr", "Received", " from h%d.example by mx" % i)
            for i in range(12)]
    s["max-headers"] = (0, connect() + envelope() + many
                        + [("arhdr", 2, " mx.authgate.test; spf=pass"),
                           ("eom",)])
    # a header over header_size_limit (1k in snapshot A), folded with LF
    s["big-header"] = (0, connect() + envelope()
                       + [("hdr", "X-Long", " " + "\n ".join(
                           ["word%03d" % i for i in range(200)])),
                          ("eom",)])
    # XCLIENT: Postfix connects again on the same milter connection
    s["xclient-reconnect"] = (0, connect() + [
        ("client", CLIENT_TEXT, b"", "203.0.113.9", "real.example.net")]
        + envelope() + msgs["plain"] + [("qid", "4XyT1c2zNF"), ("eom",)])
    # allocation failures: message arenas, connection arenas, both
    for n in (3, 8, 20):
        s["oom-msg-%d" % n] = (2, connect() + envelope()
                               + msgs["forged-ar"] + [("eom",)], n)
    s["oom-conn-4"] = (4, connect() + envelope() + msgs["plain"]
                       + [("eom",)], 1, 4)
    s["oom-both"] = (6, connect() + envelope() + msgs["forged-ar"]
                     + [("eom",)], 12, 3)
    # snapshot C: SPF against the harness's fake DNS zone
    def spf(ip, helo, *senders, sa=None):
        ops = [("conn", "mx.authgate.test", "smtpd"),
               ("client", CLIENT_SA if sa else CLIENT_TEXT, sa or b"", ip,
                helo),
               ("helo", helo, "", "")]
        for i, sender in enumerate(senders):
            ops += envelope(sender=sender, qid="S%d" % i)
            ops += [("hdr", "From", " " + sender), ("eoh",),
                    ("body", "hi\r\n"), ("eom",)]
        return ops
    s["spf-pass"] = (8, spf("192.0.2.25", "mail.example.org",
                            "<alice@example.org>", "<postmaster@mail"
                            ".example.org>"))
    s["spf-ipv6-mx"] = (8, spf("2001:db8::25", "mail.example.org",
                               "<a@mxlist.example>", "<b@example.org>",
                               sa=bytes.fromhex(
                                   "20010db8000000000000000000000025")))
    s["spf-fail-exp"] = (8, spf("203.0.113.9", "host.macro.example",
                                "<bob@exp.example>", "<eve@badexp.example>",
                                "<x@two.example>"))
    s["spf-macro"] = (8, spf("203.0.113.9", "host.macro.example",
                             "<john.doe-x@macro.example>",
                             "<a+b@redirect.example>", "<>"))
    s["spf-errors"] = (8, spf("198.51.100.7", "helo.example",
                              "<u@softfail.example>", "<u@permerror.example>",
                              "<u@loop.example>", "<u@void.example>",
                              "<u@lookups.example>"))
    s["spf-dns-failures"] = (8, spf("192.0.2.1", "helo.example",
                                    "<u@servfail.example>",
                                    "<u@dropped.example>",
                                    "<u@notspf.example>",
                                    "<u@zero.example>",
                                    "<u@split.example>"))
    # snapshot C: DKIM-signed messages whose keys the zone has
    dkim = os.path.join(HERE, "..", "data", "dkim")
    for name, path, sender in (
            ("dkim-list", "messages/with-dkim-signature.eml",
             "<team-bounces@lists.example.org>"),
            ("dkim-broken", "messages/with-broken-dkim-signature.eml",
             "<team-bounces@lists.example.org>"),
            ("dkim-rfc8463", "vectors/rfc8463/signed.msg",
             "<joe@football.example.com>")):
        s[name] = (8, connect(ip="198.51.100.7", name="lists.example.org")
                   + envelope(sender=sender)
                   + message_ops(os.path.join(dkim, path)) + [("eom",)])
    return s


def write(outdir):
    os.makedirs(outdir, exist_ok=True)
    for name, spec in sorted(seeds().items()):
        data = encode(*spec)
        ops = spec[1]
        with open(os.path.join(outdir, name + ".bin"), "wb") as f:
            f.write(data)
        print("%-24s %5d bytes, %d ops" % (name, len(data), len(ops)))


def decode(data):
    """the harness's reading of an input, as text lines"""
    pos = 0

    def byte():
        nonlocal pos
        if pos >= len(data):
            return 0
        pos += 1
        return data[pos - 1]

    def string():
        nonlocal pos
        n = byte()
        if n == 0xFF:
            n = (byte() << 8) | byte()
        s = data[pos:pos + n]
        pos += len(s)
        return s

    flags = byte()
    out = ["flags %d (snapshot %s)" % (
        flags, "C" if flags & 8 else "B" if flags & 1 else "A")]
    if flags & 2:
        n = (byte() << 8) | byte()
        out.append("message arenas: fail_after %d" % (n % 512 + 1))
    if flags & 4:
        n = (byte() << 8) | byte()
        out.append("connection arenas: fail_after %d" % (n % 64 + 1))
    while pos < len(data):
        name, kinds = OPS[byte() % len(OPS)]
        args = [repr(byte()) if k == "b" else repr(string()) for k in kinds]
        out.append(" ".join([name] + args))
    return out


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--decode":
        for path in sys.argv[2:]:
            with open(path, "rb") as f:
                print("\n".join(decode(f.read())))
    else:
        write(sys.argv[1] if len(sys.argv) > 1
              else os.path.join(HERE, "corpus", "pipeline"))
