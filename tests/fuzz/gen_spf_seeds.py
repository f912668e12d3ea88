#!/usr/bin/python3
"""gen_spf_seeds.py - write (or read back) fuzz_spf inputs.

fuzz_spf.c reads a client, MAIL FROM, HELO and a small DNS zone in binary.
The seeds come from the RFC 7208 test suite (tests/data/spf/
rfc7208-tests.yml, the pyspf/openspf one): for each scenario, up to two
of its tests with different expected results, each with the scenario's
whole zone; then a few hand-made zones of hostile answers (lying TXT
string lengths, short A rdata, compression pointers in names, too many
PTR names, SERVFAIL, timeout and bogus answers, the query budget).

  gen_spf_seeds.py [OUTDIR]        write the seeds (default: the
                                   corpus/spf dir next to this file;
                                   other files there, inputs fuzzing
                                   found, are left alone)
  gen_spf_seeds.py --decode FILE...
                                   print inputs (a crash, say) readably

Encoding (keep in step with fuzz_spf.c):
  byte 0       flags: 1 IPv6 client, 2 snapshot B (budget 10, no HELO
               identity, a default explanation with macros), 4 IPv4
               client as an IPv4-mapped IPv6 socket address
  4/16 bytes   client address
  string       MAIL FROM;  string  HELO
  records      string owner, byte type (TYPES index), byte kind (bits
               0-2: 0 data, 1 NXDOMAIN, 2 SERVFAIL, 3 REFUSED, 4 libunbound
               error, 5 bogus data, 6 timeout; bit 3 secure; bits 4-7 TTL
               minutes),
               string rdata (wire form)
  a string is a length byte (0xff: a 2-byte big-endian length follows)
  and that many bytes.
How the suite's zonedata maps (as tests/integration/test_spf_suite.py
serves it): TXT strings -> one record of several character-strings;
"TXT: NONE" -> no record, but the name exists; SPF -> a TXT record when
the name has no TXT entry, else a type 99 one (never asked for); a
TIMEOUT entry -> a timeout for every type from there on (records listed
before it still answer); "TYPE: TIMEOUT" -> a timeout for that type; a
CNAME -> copies of its target's records under the alias (what libunbound
hands over).
"""
import ipaddress
import os
import re
import sys

import yaml  # python3-yaml

TYPES = ["TXT", "A", "AAAA", "MX", "PTR", "SPF", "ANY"]
KINDS = ["data", "NXDOMAIN", "SERVFAIL", "REFUSED", "uberror", "bogus",
         "timeout", "data"]
DATA, NXDOMAIN, SERVFAIL, REFUSED, UBERROR, BOGUS, TIMEOUT = range(7)
F_IPV6, F_SNAP_B, F_MAPPED = 1, 2, 4

HERE = os.path.dirname(os.path.abspath(__file__))
SUITE = os.path.join(HERE, "..", "data", "spf", "rfc7208-tests.yml")


def enc_str(s):
    if isinstance(s, str):
        s = s.encode("utf-8")
    if len(s) < 0xFF:
        return bytes([len(s)]) + s
    return bytes([0xFF, len(s) >> 8, len(s) & 0xFF]) + s


def wire_name(name):
    """Uncompressed wire form, or None when a label does not fit."""
    out = bytearray()
    for label in name.rstrip(".").split("."):
        b = label.encode("utf-8")
        if not b or len(b) > 63:
            return None
        out += bytes([len(b)]) + b
    return bytes(out + b"\0")


def txt_rdata(strings):
    out = bytearray()
    for s in strings:
        b = s.encode("utf-8")
        while True:  # a string over 255 bytes: several character-strings
            out += bytes([min(len(b), 255)]) + b[:255]
            b = b[255:]
            if not b:
                break
    return bytes(out)


def rec(name, rtype, rdata=b"", kind=DATA, ttl_min=1):
    return (name, TYPES.index(rtype), kind | (ttl_min << 4), rdata)


def encode(host, mailfrom, helo, records, flags=0):
    ip = ipaddress.ip_address(host)
    if ip.version == 6:
        if ip.ipv4_mapped is not None and flags & F_MAPPED:
            ip = ip.ipv4_mapped
        else:
            flags |= F_IPV6
    out = bytearray([flags]) + ip.packed
    out += enc_str("<%s>" % mailfrom) + enc_str(helo)
    for name, t, kind, rdata in records:
        out += enc_str(name) + bytes([t, kind]) + enc_str(rdata)
    return bytes(out)


def zone_records(zonedata):
    """The suite's zonedata as records, in the order they answer."""
    records, aliases = [], []
    for name, entries in (zonedata or {}).items():
        name = str(name)
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        generated, start = [], len(records)
        for e in entries:
            if e == "TIMEOUT":
                records.append(rec(name, "ANY", kind=TIMEOUT))
                generated = []
                break
            (rtype, value), = e.items()
            rtype = str(rtype).upper()
            if value == "TIMEOUT":
                if rtype in TYPES:
                    records.append(rec(name, rtype, kind=TIMEOUT))
                continue
            if rtype in ("TXT", "SPF"):
                strings = ([str(value)] if not isinstance(value, list)
                           else [str(v) for v in value])
                if rtype == "TXT" and strings == ["NONE"]:
                    continue
                if rtype == "SPF" and not has_txt:
                    generated.append(txt_rdata(strings))
                else:  # type 99 is never asked: it only makes the name
                    records.append(rec(name, rtype, txt_rdata(strings)))
            elif rtype == "MX":
                target = wire_name(str(value[1]))
                if target is not None:
                    prio = int(value[0])
                    records.append(rec(name, "MX",
                                       bytes([prio >> 8, prio & 255])
                                       + target))
            elif rtype in ("A", "AAAA"):
                records.append(rec(name, rtype,
                                   ipaddress.ip_address(str(value)).packed))
            elif rtype == "CNAME":
                aliases.append((name, str(value)))
            elif rtype == "PTR":
                target = wire_name(str(value))
                if target is not None:
                    records.append(rec(name, "PTR", target))
        records += [rec(name, "TXT", r) for r in generated]
        if len(records) == start:  # "TXT: NONE" alone: the name exists
            records.append(rec(name, "SPF"))
    # libunbound follows a CNAME and answers with the target's records:
    # the alias gets copies of them (chains resolved, loops dropped)
    for _ in range(len(aliases)):
        for alias, target in aliases:
            have = {(r[1], r[3]) for r in records if r[0] == alias}
            records += [(alias,) + r[1:] for r in records
                        if r[0].lower() == target.lower().rstrip(".")
                        and (r[1], r[3]) not in have]
    return records


def slug(s):
    return re.sub(r"[^a-z0-9]+", "-", s.lower()).strip("-")[:40]


def suite_seeds():
    with open(SUITE, "rb") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    for doc in docs:
        records = zone_records(doc.get("zonedata"))
        seen, picked = set(), 0
        for tname, t in (doc.get("tests") or {}).items():
            result = t["result"]
            result = tuple(result) if isinstance(result, list) else result
            if result in seen or picked == 2:
                continue
            try:
                data = encode(str(t["host"]), str(t["mailfrom"]),
                              str(t["helo"]), records)
            except ValueError:
                continue
            seen.add(result)
            picked += 1
            yield "%s--%s" % (slug(doc["description"]), tname), data


def hostile_seeds():
    txt = lambda s: txt_rdata([s])
    yield "lying-txt-length", encode(
        "192.0.2.1", "a@h.example", "h.example",
        [rec("h.example", "TXT", b"\x40v=spf1 -all"),
         rec("h.example", "TXT", txt("v=spf1 a -all") + b"\xff")])
    yield "short-a-and-aaaa", encode(
        "192.0.2.1", "a@h.example", "h.example",
        [rec("h.example", "TXT", txt("v=spf1 a mx/0 a//0 -all")),
         rec("h.example", "A", b"\xc0\x00\x02"),
         rec("h.example", "AAAA", b"\x20\x01" * 7),
         rec("h.example", "MX", b"\x00\x0a\x01m\xc0\x0c")])
    yield "compressed-ptr-names", encode(
        "192.0.2.1", "a@h.example", "h.example",
        [rec("h.example", "TXT", txt("v=spf1 ptr ptr:%{p} -all "
                                      "exp=e.h.example")),
         rec("1.2.0.192.in-addr.arpa", "PTR", b"\x01h\xc0\x0c"),
         rec("1.2.0.192.in-addr.arpa", "PTR", wire_name("h.example")),
         rec("e.h.example", "TXT", txt("%{p} %{i} not %{d} %{t}"))])
    yield "twelve-ptr-names", encode(
        "192.0.2.1", "a@h.example", "h.example",
        [rec("h.example", "TXT", txt("v=spf1 ptr:x.example -all"))]
        + [rec("1.2.0.192.in-addr.arpa", "PTR",
               wire_name("n%d.x.example" % i)) for i in range(12)]
        + [rec("n11.x.example", "A", bytes([192, 0, 2, 1]))])
    yield "servfail-bogus-refused", encode(
        "2001:db8::1", "a@h.example", "h.example",
        [rec("h.example", "TXT", txt("v=spf1 include:s.example "
                                      "a:b.example exists:r.example "
                                      "mx:t.example ~all")),
         rec("s.example", "ANY", kind=SERVFAIL),
         rec("b.example", "AAAA", bytes(16), kind=BOGUS),
         rec("r.example", "A", kind=REFUSED),
         rec("t.example", "ANY", kind=TIMEOUT)], flags=0)
    yield "uberror-helo", encode(
        "192.0.2.1", "", "h.example",
        [rec("h.example", "ANY", kind=UBERROR)])
    yield "budget-and-default-exp", encode(
        "::ffff:192.0.2.9", "x.y@h.example", "helo.example",
        [rec("h.example", "TXT", txt(
            "v=spf1 a:1.h.example a:2.h.example a:3.h.example "
            "mx:4.h.example include:i.h.example -all")),
         rec("i.h.example", "TXT", txt("v=spf1 a -all")),
         rec("1.h.example", "A", bytes([192, 0, 2, 1]))],
        flags=F_SNAP_B | F_MAPPED)
    yield "split-and-macro-redirect", encode(
        "198.51.100.7", "first.last@h.example", "h.example",
        [rec("h.example", "TXT", txt_rdata(
            ["v=spf1 " + " ".join("ip4:198.51.%d.0/24" % i
                                  for i in range(40)),
             " redirect=%{l1r.}.r.%{d2}"])),
         rec("first.r.h.example", "TXT", txt("v=spf1 +all")),
         rec("h.example", "SPF", txt("v=spf1 -all"), kind=NXDOMAIN)])


def write(outdir):
    os.makedirs(outdir, exist_ok=True)
    n = size = 0
    for name, data in list(suite_seeds()) + list(hostile_seeds()):
        with open(os.path.join(outdir, name), "wb") as f:
            f.write(data)
        n += 1
        size += len(data)
    print("%d seeds, %d bytes, in %s" % (n, size, outdir))


class Reader:
    def __init__(self, data):
        self.d, self.i = data, 0

    def left(self):
        return len(self.d) - self.i

    def byte(self):
        if self.i >= len(self.d):
            return 0
        self.i += 1
        return self.d[self.i - 1]

    def bytes(self):
        n = self.byte()
        if n == 0xFF:
            n = (self.byte() << 8) | self.byte()
        b = self.d[self.i:self.i + n]
        self.i += len(b)
        return b


def show_rdata(t, b):
    try:
        if t in ("TXT", "SPF"):
            out, i = [], 0
            while i < len(b):
                n = b[i]
                if i + 1 + n > len(b):
                    return "BROKEN %r" % b
                out.append(b[i + 1:i + 1 + n])
                i += 1 + n
            return " ".join(repr(s)[1:] for s in out)
        if t == "A" and len(b) == 4 or t == "AAAA" and len(b) == 16:
            return str(ipaddress.ip_address(b))
    except ValueError:
        pass
    return b.hex() or "-"


def decode(path):
    with open(path, "rb") as f:
        r = Reader(f.read())
    flags = r.byte()
    addr = bytes(r.byte() for _ in range(16 if flags & F_IPV6 else 4))
    print("%s: flags %d%s%s%s" % (path, flags,
                                   " ipv6" if flags & F_IPV6 else "",
                                   " snapshot-B" if flags & F_SNAP_B else "",
                                   " mapped" if flags & F_MAPPED else ""))
    print("  client %s" % ipaddress.ip_address(addr))
    print("  mail from %r" % r.bytes())
    print("  helo %r" % r.bytes())
    n = 0
    while r.left() > 0 and n < 64:
        name, t, kind = r.bytes(), TYPES[r.byte() % 7], r.byte()
        rdata = r.bytes()
        print("  %r %s %s%s ttl=%dm %s" % (
            name, t, KINDS[kind & 7], " secure" if kind & 8 else "",
            kind >> 4, show_rdata(t, rdata)))
        n += 1


def main(argv):
    if argv and argv[0] == "--decode":
        for p in argv[1:]:
            decode(p)
        return 0
    write(argv[0] if argv else os.path.join(HERE, "corpus", "spf"))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
