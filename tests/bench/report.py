#!/usr/bin/python3
"""report.py RAW OPENSSL - the table and ratios of the milter benchmark.

RAW holds milter.sh's lines: "RUN key=value..." (one miltc --load run)
and "MEM sys= size= start_kb=|end_kb=".  Figures per (system, mode,
transport, connections) are medians over the rounds; every ratio is
between medians of this one run, so a noisy host moves both sides.
"""

import re
import statistics
import sys


def kv(line):
    return dict(re.findall(r"(\w+)=(\S+)", line))


def main():
    runs, mem = [], []
    for line in open(sys.argv[1]):
        if line.startswith("RUN "):
            runs.append(kv(line))
        elif line.startswith("MEM "):
            mem.append(kv(line))
    ossl = open(sys.argv[2]).read() if len(sys.argv) > 2 else ""

    groups = {}
    for r in runs:
        if "rate" not in r:
            continue
        key = (r["sys"], r["mode"], r["tr"], int(r["conns"]))
        groups.setdefault(key, []).append(r)
    med = {}
    for key, rs in groups.items():
        f = lambda k: statistics.median(float(x[k]) for x in rs)
        med[key] = {"rate": f("rate"), "p50": f("p50_ms"), "p99": f("p99_ms"),
                    "rss": max(int(x["rss_kb"]) for x in rs),
                    "n": len(rs), "msgs": sum(int(x["msgs"]) for x in rs),
                    "ok": sum(int(x["accept"]) for x in rs),
                    "bad": sum(int(x["reject"]) + int(x["tempfail"]) +
                               int(x["other"]) + int(x["errors"]) for x in rs),
                    "hdrs": sum(int(x.get("addh", 0)) + int(x.get("insh", 0))
                                for x in rs)}

    order = ["nullmilter", "opendkim", "opendmarc", "chain", "authgate"]
    print("%-10s %-13s %-5s %5s %9s %8s %8s %8s %5s %s" % (
        "system", "mode", "sock", "conns", "msgs/s", "p50 ms", "p99 ms",
        "RSS MB", "runs", "check"))
    for key in sorted(med, key=lambda k: (k[1].startswith("mem"),
                                          k[1] == "dns50", k[2], k[3],
                                          order.index(k[0]), k[1])):
        m = med[key]
        check = "ok" if m["bad"] == 0 and m["ok"] == m["msgs"] else \
            "%d of %d not accepted" % (m["msgs"] - m["ok"], m["msgs"])
        check += ", %.1f hdrs/msg" % (m["hdrs"] / max(1, m["msgs"]))
        print("%-10s %-13s %-5s %5d %9.1f %8.2f %8.2f %8.1f %5d %s" % (
            key[0], key[1], key[2], key[3], m["rate"], m["p50"], m["p99"],
            m["rss"] / 1024.0, m["n"], check))

    def get(s, mode, tr, n, what="rate"):
        m = med.get((s, mode, tr, n))
        return m[what] if m else None

    def ratio(a, b):
        return "%.2f" % (a / b) if a and b else "n/a"

    conns = sorted({k[3] for k in med if k[1] == "verify"})
    print()
    print("# ratios (medians of this run)")
    for n in conns:
        for tr in ("unix", "inet"):
            ag, ch = get("authgate", "verify", tr, n), get("chain", "verify", tr, n)
            nl = get("nullmilter", "verify", tr, n)
            print("authgate/chain     verify %s %2d conns: %s (target >= 3)"
                  % (tr, n, ratio(ag, ch)))
            print("authgate/null      verify %s %2d conns: %s (target >= 0.8)"
                  % (tr, n, ratio(ag, nl)))
        nls = get("nullmilter", "sign", "unix", n)
        for mode in ("sign-rsa", "sign-ed", "sign-dual"):
            print("authgate/null   %9s unix %2d conns: %s (target >= 0.8)"
                  % (mode, n, ratio(get("authgate", mode, "unix", n), nls)))
        print("authgate/opendkim  sign-rsa unix %2d conns: %s" % (n, ratio(
            get("authgate", "sign-rsa", "unix", n),
            get("opendkim", "sign-rsa", "unix", n))))
        print("authgate/opendkim  sign-ed  unix %2d conns: %s" % (n, ratio(
            get("authgate", "sign-ed", "unix", n),
            get("opendkim", "sign-ed", "unix", n))))
        for s, mode in (("authgate", "verify"), ("authgate", "sign-dual"),
                        ("nullmilter", "verify"), ("chain", "verify")):
            print("inet/unix p50 %10s %9s %2d conns: %s (target <= 1.2)" % (
                s, mode, n, ratio(get(s, mode, "inet", n, "p50"),
                                  get(s, mode, "unix", n, "p50"))))
    for n in (1, 8):
        print("50 ms DNS, TTL 0, %d conns: p50 authgate %s ms (target <= 65),"
              " chain %s ms" % (n, get("authgate", "dns50", "unix", n, "p50"),
                                get("chain", "dns50", "unix", n, "p50")))

    # the crypto ceiling: openssl speed is one thread on one core
    rsa = re.search(r"rsa 2048 bits\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", ossl)
    ed = re.search(r"\(Ed25519\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", ossl)
    if rsa and ed:
        rs, rv, es, ev = (float(rsa.group(1)), float(rsa.group(2)),
                          float(ed.group(1)), float(ed.group(2)))
        print("# crypto ceiling, one core: RSA-2048 %.0f sign/s %.0f verify/s,"
              " Ed25519 %.0f sign/s %.0f verify/s" % (rs, rv, es, ev))
        for n in conns:
            ceil = {"sign-rsa": rs, "sign-ed": es,
                    "sign-dual": 1 / (1 / rs + 1 / es),
                    "verify": 1 / (1 / rv + 1 / ev)}
            for s, mode in (("authgate", "sign-rsa"), ("authgate", "sign-ed"),
                            ("authgate", "sign-dual"), ("authgate", "verify"),
                            ("opendkim", "sign-rsa"), ("opendkim", "sign-ed"),
                            ("opendkim", "verify")):
                v = get(s, mode, "unix", n)
                if v:
                    print("crypto %-9s %-9s unix %2d conns: %5.1f%% of one core's"
                          " %.0f/s" % (s, mode, n, 100 * v / ceil[mode],
                                       ceil[mode]))

    # memory: fresh daemons, 32 connections, 4 KB then 1 MB messages
    peak = {}
    for r in runs:
        if r["mode"].startswith("mem"):
            peak[(r["sys"], r["mode"])] = int(r["rss_kb"])
    for m in mem:
        if "end_kb" in m:
            peak[(m["sys"], "mem-" + m["size"])] = int(m["end_kb"])
    print("# memory: peak RSS (VmHWM), fresh daemon, 32 connections")
    for s in ("nullmilter", "opendkim", "opendmarc", "chain", "authgate"):
        for mode in ("mem", "mem-sign"):
            a, b = peak.get((s, mode + "-4k")), peak.get((s, mode + "-1m"))
            if a and b:
                print("memory %-10s %-8s 4 KB %7.1f MB, 1 MB %7.1f MB: %+.0f KB"
                      " per connection (target < 64)" % (
                          s, mode, a / 1024, b / 1024, (b - a) / 32))


if __name__ == "__main__":
    main()
