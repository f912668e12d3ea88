#!/usr/bin/python3
"""Scriptable authoritative DNS server on loopback (UDP + TCP) for tests.

In-process:
    srv = DnsServer(port=0).start()          # srv.port is the chosen port
    srv.add("test.example.", "TXT", "v=spf1 -all", ttl=5)
    srv.behave("slow.test.example.", delay=1.5)
    ... srv.count("test.example.", "TXT") ... srv.stop()

CLI (zone file re-read whenever its mtime/size changes, checked per query):
    dns_server.py --port P --zone zone.json --querylog FILE

zone.json:
    {"ttl": 60,
     "records": [["test.example.", "TXT", "v=spf1 -all"],
                 ["multi.test.example.", "TXT", ["one", "two"], 5],
                 {"name": "mx.test.example.", "type": "A",
                  "value": "127.0.0.1"}],
     "behaviour": {"slow.test.example.": {"delay": 1.5},
                   "fail.test.example.": {"rcode": "SERVFAIL",
                                          "types": ["TXT"]}}}

Record values: A/AAAA/PTR/CNAME/NS "text"; MX "10 mx.example." or [10, "mx."];
TXT "text" or ["s1", "s2"] (each string auto-split into 255-byte pieces);
SOA "mname rname serial refresh retry expire minimum"; other types in zone
file syntax.  Behaviours per name (exact, or "*.suffix." for any name below
it), optionally limited to "types": delay (seconds, applied first), rcode
(SERVFAIL, REFUSED, NXDOMAIN, ...), drop (never answer), truncate (TC=1 on
UDP, full answer on TCP), garbage (malformed reply bytes), cut (the real
answer cut after that many bytes, no TC flag: a datagram or TCP message
that ends inside a record; on TCP the length prefix says the cut length).
Query log lines: "<unix time> <udp|tcp> <name> <type> <outcome>" where the
outcome is NOERROR/<answers>, NXDOMAIN, SERVFAIL, REFUSED, TC, drop,
garbage, cut or FORMERR.
"""

import argparse
import collections
import json
import os
import signal
import socketserver
import struct
import sys
import threading
import time

from dnslib import (A, AAAA, CNAME, EDNS0, MX, NS, PTR, QTYPE, RCODE, RR,
                    SOA, TXT, DNSRecord)

Query = collections.namedtuple("Query", "time proto name type outcome")

_SIMPLE = {"A": A, "AAAA": AAAA, "PTR": PTR, "CNAME": CNAME, "NS": NS}


def norm(name):
    """Lower-case, absolute, and in dnslib's text form of a query name:
    bytes outside 33..126 (space, control, non-ASCII) as \\DDD, so that a
    name like "a b.example." matches the query for it."""
    name = "".join(c if 33 <= ord(c) <= 126 else
                   "".join("\\%03d" % b for b in c.encode())
                   for c in str(name).strip()).lower()
    return name if name.endswith(".") else name + "."


def _txt_strings(value):
    values = [value] if isinstance(value, (str, bytes)) else list(value)
    out = []
    for v in values:
        b = v.encode() if isinstance(v, str) else bytes(v)
        out += [b[i:i + 255] for i in range(0, len(b), 255)] or [b""]
    return out


def make_rdata(rtype, value, name="x.", ttl=60):
    rtype = rtype.upper()
    if rtype in _SIMPLE:
        return _SIMPLE[rtype](str(value))
    if rtype in ("TXT", "SPF"):          # SPF (type 99): TXT's RDATA format
        return TXT(_txt_strings(value))
    if rtype == "MX":
        pref, host = value.split() if isinstance(value, str) else value
        return MX(str(host), int(pref))
    if rtype == "SOA":
        f = value.split() if isinstance(value, str) else list(value)
        return SOA(f[0], f[1], tuple(int(x) for x in f[2:7]))
    return RR.fromZone("%s %d IN %s %s" % (name, ttl, rtype, value))[0].rdata


def _subnames(name):
    """'a.b.c.' -> ['a.b.c.', 'b.c.', 'c.', '.']"""
    labels = name.rstrip(".").split(".")
    return [".".join(labels[i:]) + "." for i in range(len(labels))] + ["."]


class Zone:
    """Thread-safe record and behaviour store with the lookup logic."""

    def __init__(self, ttl=60):
        self.lock = threading.RLock()
        self.ttl = ttl
        self.records = {}          # name -> [(TYPE, rdata, ttl|None)]
        self.behaviour = {}        # name -> dict
        self._exists = None

    def add(self, name, rtype, value, ttl=None):
        name = norm(name)
        rr = (rtype.upper(), make_rdata(rtype, value, name, ttl or 60), ttl)
        with self.lock:
            self.records.setdefault(name, []).append(rr)
            self._exists = None

    def remove(self, name, rtype=None):
        name = norm(name)
        with self.lock:
            keep = [r for r in self.records.get(name, [])
                    if rtype is not None and r[0] != rtype.upper()]
            if keep:
                self.records[name] = keep
            else:
                self.records.pop(name, None)
            self._exists = None

    def set(self, name, rtype, values, ttl=None):
        """Replace every rtype record of name.  values: a list of record
        values, or one value that is not a list (so one TXT record with two
        strings is [["s1", "s2"]])."""
        if not isinstance(values, list):
            values = [values]
        with self.lock:
            self.remove(name, rtype)
            for v in values:
                self.add(name, rtype, v, ttl)

    def behave(self, name, **kw):
        """Set (or, without keywords, clear) the behaviour of a name."""
        name = norm(name)
        with self.lock:
            if kw:
                self.behaviour[name] = kw
            else:
                self.behaviour.pop(name, None)

    def clear(self):
        with self.lock:
            self.records, self.behaviour, self._exists = {}, {}, None

    def load(self, data):
        """Replace everything by a zone.json-style dict."""
        new = Zone(data.get("ttl", 60))
        for r in data.get("records", []):
            if isinstance(r, dict):
                new.add(r["name"], r["type"], r["value"], r.get("ttl"))
            else:
                new.add(*r)
        for name, b in data.get("behaviour", {}).items():
            new.behave(name, **b)
        with self.lock:
            self.ttl, self.records = new.ttl, new.records
            self.behaviour, self._exists = new.behaviour, None

    def behaviour_for(self, qname, qtype):
        with self.lock:
            for key in [qname] + ["*." + s for s in _subnames(qname)[1:]]:
                b = self.behaviour.get(key)
                if b and (not b.get("types") or qtype in b["types"]):
                    return b
        return {}

    def _existing(self):
        if self._exists is None:
            ex = set()
            for owner in self.records:
                ex.update(_subnames(owner))
            self._exists = ex
        return self._exists

    def _node(self, qname):
        """Records at qname (wildcard-expanded), or None for NXDOMAIN."""
        if qname in self.records:
            return self.records[qname]
        if qname in self._existing():
            return []                                  # empty non-terminal
        for parent in _subnames(qname)[1:]:
            wild = "*." + parent
            if wild in self.records:
                return self.records[wild]
            if parent in self._existing():
                return None
        return None

    def _rr(self, owner, rtype, rdata, ttl):
        return RR(owner, getattr(QTYPE, rtype), rdata=rdata,
                  ttl=self.ttl if ttl is None else ttl)

    def lookup(self, qname, qtype):
        """-> (rcode, answer RRs, authority RRs)"""
        with self.lock:
            answers, name = [], qname
            for _ in range(8):                         # CNAME chain limit
                node = self._node(name)
                if node is None:
                    return RCODE.NXDOMAIN, answers, self._soa(qname)
                match = [r for r in node if qtype in (r[0], "ANY")]
                cname = [r for r in node if r[0] == "CNAME"]
                if match or not cname:
                    answers += [self._rr(name, *r) for r in match]
                    return (RCODE.NOERROR, answers,
                            [] if answers else self._soa(qname))
                answers.append(self._rr(name, *cname[0]))
                name = norm(str(cname[0][1].label))
            return RCODE.SERVFAIL, [], []

    def _soa(self, qname):
        for parent in _subnames(qname):
            for rtype, rdata, ttl in self.records.get(parent, []):
                if rtype == "SOA":
                    ttl = self.ttl if ttl is None else ttl
                    return [RR(parent, QTYPE.SOA, rdata=rdata,
                               ttl=min(ttl, rdata.times[4]))]
        return []


class DnsServer:
    """UDP + TCP authoritative server for a Zone on address:port."""

    def __init__(self, port=0, address="127.0.0.1", zone=None,
                 querylog=None, zone_file=None, ttl=60):
        self.address, self.port = address, port
        self.zone = Zone(ttl)
        if zone:
            self.zone.load(zone)
        self.zone_file, self._zone_stat = zone_file, None
        self.querylog = querylog
        self._log, self._log_lock = [], threading.Lock()
        self._servers, self._threads = [], []
        self.pid = os.getpid()

    # zone editing (thread-safe, effective for the next query) ------------
    def add(self, name, rtype, value, ttl=None):
        self.zone.add(name, rtype, value, ttl)
        return self

    def set(self, name, rtype, values, ttl=None):
        self.zone.set(name, rtype, values, ttl)
        return self

    def remove(self, name, rtype=None):
        self.zone.remove(name, rtype)
        return self

    def behave(self, name, **kw):
        self.zone.behave(name, **kw)
        return self

    def load(self, data):
        self.zone.load(data)
        return self

    def clear(self):
        self.zone.clear()
        return self

    # query log ---------------------------------------------------------------
    def queries(self, name=None, qtype=None, proto=None):
        with self._log_lock:
            log = list(self._log)
        return [q for q in log
                if (name is None or q.name == norm(name))
                and (qtype is None or q.type == qtype)
                and (proto is None or q.proto == proto)]

    def count(self, name, qtype=None, proto=None):
        return len(self.queries(name, qtype, proto))

    def clear_log(self):
        with self._log_lock:
            self._log = []

    def _record(self, t, proto, name, qtype, outcome):
        q = Query(t, proto, name, qtype, outcome)
        with self._log_lock:
            self._log.append(q)
            if self.querylog:
                with open(self.querylog, "a") as f:
                    f.write("%.3f %s %s %s %s\n" % q)

    # serving -----------------------------------------------------------------
    def _maybe_reload(self):
        if not self.zone_file:
            return
        try:
            st = os.stat(self.zone_file)
            key = (st.st_mtime_ns, st.st_size, st.st_ino)
            if key == self._zone_stat:
                return
            with open(self.zone_file) as f:
                data = json.load(f)
            self.zone.load(data)
            self._zone_stat = key
        except (OSError, ValueError, KeyError, TypeError) as e:
            print("dns_server: zone %s not loaded: %s" % (self.zone_file, e),
                  file=sys.stderr, flush=True)

    def answer(self, data, proto):
        """-> reply bytes, or None for no reply.  Runs in a worker thread."""
        now = time.time()
        try:
            req = DNSRecord.parse(data)
            qname = norm(req.q.qname)
            qtype = QTYPE.get(req.q.qtype, str(req.q.qtype))
        except Exception:                             # noqa: BLE001
            self._record(now, proto, "-", "-", "FORMERR")
            return None
        self._maybe_reload()
        b = self.zone.behaviour_for(qname, qtype)
        if b.get("delay"):
            time.sleep(float(b["delay"]))
        if b.get("drop"):
            self._record(now, proto, qname, qtype, "drop")
            return None
        if b.get("garbage"):
            self._record(now, proto, qname, qtype, "garbage")
            return data[:2] + b"\x85\x80\x00\x01\x00\x05\x00\x00\x00\x00\x03"
        reply = req.reply()
        reply.header.ra = req.header.rd
        opt = [r for r in req.ar if r.rtype == QTYPE.OPT]
        if opt:
            reply.add_ar(EDNS0(udp_len=4096))
        if b.get("rcode"):
            rcode = b["rcode"]
            rcode = getattr(RCODE, rcode) if isinstance(rcode, str) else rcode
            answers, auth = [], []
        else:
            rcode, answers, auth = self.zone.lookup(qname, qtype)
        reply.header.rcode = rcode
        for rr in answers:
            reply.add_answer(rr)
        for rr in auth:
            reply.add_auth(rr)
        wire = reply.pack()
        limit = max(512, opt[0].rclass if opt else 512)
        if proto == "udp" and (b.get("truncate") or len(wire) > limit):
            short = req.reply()
            short.header.ra, short.header.tc = req.header.rd, 1
            self._record(now, proto, qname, qtype, "TC")
            return short.pack()
        if b.get("cut"):
            self._record(now, proto, qname, qtype, "cut")
            return wire[:int(b["cut"])]
        outcome = RCODE.get(rcode, str(rcode))
        if rcode == RCODE.NOERROR:
            outcome += "/%d" % len(answers)
        self._record(now, proto, qname, qtype, outcome)
        return wire

    def start(self):
        srv = self

        class Udp(socketserver.BaseRequestHandler):
            def handle(self):
                data, sock = self.request
                out = srv.answer(data, "udp")
                if out is not None:
                    try:
                        sock.sendto(out, self.client_address)
                    except OSError:
                        pass

        class Tcp(socketserver.BaseRequestHandler):
            def handle(self):
                f = self.request.makefile("rb")
                while True:
                    head = f.read(2)
                    if len(head) < 2:
                        return
                    data = f.read(struct.unpack("!H", head)[0])
                    out = srv.answer(data, "tcp")
                    if out is None:          # drop: hold until client quits
                        while f.read(1):
                            pass
                        return
                    try:
                        self.request.sendall(struct.pack("!H", len(out)) + out)
                    except OSError:
                        return

        class UdpServer(socketserver.ThreadingUDPServer):
            daemon_threads = True

        class TcpServer(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._maybe_reload()
        for _ in range(50):
            udp = UdpServer((self.address, self.port), Udp)
            try:
                tcp = TcpServer((self.address, udp.server_address[1]), Tcp)
            except OSError:
                udp.server_close()
                if self.port:
                    raise
                continue
            break
        else:
            raise OSError("no port free for both UDP and TCP")
        self.port = udp.server_address[1]
        self._servers = [udp, tcp]
        for s in self._servers:
            t = threading.Thread(target=s.serve_forever, args=(0.05,),
                                 daemon=True)
            t.start()
            self._threads.append(t)
        return self

    def stop(self):
        for s in self._servers:
            s.shutdown()
            s.server_close()
        self._servers, self._threads = [], []

    def alive(self):
        return bool(self._servers)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def read_querylog(path):
    """Parse a --querylog file into Query tuples."""
    out = []
    try:
        with open(path) as f:
            for line in f:
                t, proto, name, qtype, outcome = line.split()
                out.append(Query(float(t), proto, name, qtype, outcome))
    except FileNotFoundError:
        pass
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("--zone", help="JSON zone file (hot-reloaded)")
    ap.add_argument("--querylog", help="append one line per query here")
    ap.add_argument("--ttl", type=int, default=60, help="default TTL")
    ap.add_argument("--port-file", help="write the chosen port here")
    args = ap.parse_args()
    srv = DnsServer(args.port, args.address, querylog=args.querylog,
                    zone_file=args.zone, ttl=args.ttl).start()
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % srv.port)
        os.rename(tmp, args.port_file)
    print("dns_server: listening on %s port %d" % (args.address, srv.port),
          flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: stop.set())
    stop.wait()
    srv.stop()


if __name__ == "__main__":
    main()
