#!/usr/bin/python3
"""test_metrics.py - the Prometheus endpoint of a running authgate behind
the private Postfix: counters move with the mail that passes (actions,
SPF/DKIM/DMARC results, rule hits, DNS), reloads are counted by outcome,
histograms are consistent, and the endpoint answers only /metrics.
"""
import os
import re
import sys
import urllib.error
import urllib.request

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import tap  # noqa: E402

ID = "mx.authgate.test"
CLIENT = "198.51.100.25"


def scrape(port):
    # the endpoint opens a moment after the milter port the harness waits for
    H.wait_until(lambda: _connects(port), 10, "metrics port %d" % port)
    with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % port,
                                timeout=5) as r:
        ctype = r.headers.get("Content-Type")
        text = r.read().decode()
    values = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            values[name] = float(value)
    return ctype, text, values


def _connects(port):
    import socket
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True
    except OSError:
        return False


@tap.test
def counters_move(t):
    dns = H.DnsServer().start()
    dns.add("example.org.", "TXT", "v=spf1 ip4:198.51.100.0/24 -all", ttl=60)
    sink = H.Sink().start()
    rules = os.path.join(H.test_tmpdir(), "m.rules")
    with open(rules, "w") as f:
        f.write("header M_BLOCK Subject =~ /BLOCK-ME/\nscore M_BLOCK 30\n")
    os.chmod(rules, 0o644)
    mport = H.free_port()
    settings = {"authserv_id": ID, "dns_timeout": "2s",
                "rules_files": rules,
                "metrics_listen": "127.0.0.1:%d" % mport}
    ag = H.Authgate(settings=settings, dns=dns).start()
    pf = H.Postfix(milter=ag, relay_port=sink).start()

    ctype, text, v0 = scrape(mport)
    t.eq(ctype, "text/plain; version=0.0.4; charset=utf-8")
    t.eq(v0['authgate_messages_total{action="accept"}'], 0)
    t.match(r"(?m)^# TYPE authgate_message_seconds histogram$", text)

    for subject in ("hello", "hello again", "BLOCK-ME"):
        msg = H.make_message(frm="alice@example.org", to="bob@example.net",
                             subject=subject)
        r = pf.send("alice@example.org", ["bob@example.net"], msg,
                    xclient={"ADDR": CLIENT, "HELO": "mail.example.org"})
        t.eq(r.code, 550 if subject == "BLOCK-ME" else 250, subject)
    sink.wait_for(2, timeout=20)
    ag.wait_stderr(r"action=reject")
    _, text, v = scrape(mport)
    t.eq(v['authgate_messages_total{action="accept"}'], 2)
    t.eq(v['authgate_messages_total{action="reject"}'], 1)
    t.eq(v['authgate_results_total{method="spf",result="pass"}'], 3)
    t.eq(v['authgate_results_total{method="dkim",result="none"}'], 3)
    t.eq(v['authgate_results_total{method="dmarc",result="none"}'], 3)
    t.eq(v['authgate_rule_hits_total{rule="M_BLOCK"}'], 1)
    t.eq(v['authgate_scored_total{spam="yes"}'], 1)
    t.eq(v['authgate_message_seconds_count'], 3)
    t.eq(v['authgate_message_seconds_bucket{le="+Inf"}'], 3)
    t.eq(v['authgate_stage_seconds_count{stage="eom"}'], 3)
    t.ok(v['authgate_dns_queries_total'] >= 1, "DNS queries counted")
    t.ok(v['authgate_dns_cache_hits_total'] >= 1,
         "the second message's SPF record came from the cache")
    # buckets are cumulative
    b = [v[k] for k in sorted(
        (k for k in v if k.startswith("authgate_message_seconds_bucket")
         and "+Inf" not in k),
        key=lambda k: float(re.search(r'le="([^"]+)"', k).group(1)))]
    t.eq(b, sorted(b), "cumulative buckets")

    ag.reload()
    ag.wait_stderr(r"configuration reloaded")
    with open(rules, "w") as f:
        f.write("header BROKEN Subject =~ /(/\n")
    ag.reload()
    ag.wait_stderr(r"reload failed")
    _, _, v = scrape(mport)
    t.eq(v['authgate_reloads_total{result="ok"}'], 1)
    t.eq(v['authgate_reloads_total{result="failed"}'], 1)
    t.eq(v['authgate_config_generation'], 2)

    try:
        urllib.request.urlopen("http://127.0.0.1:%d/" % mport, timeout=5)
        t.ok(False, "/ answered")
    except urllib.error.HTTPError as e:
        t.eq(e.code, 404, "only /metrics")


@tap.test
def dashboard_queries_served_metrics(t):
    """contrib/grafana/authgate.json asks only for metrics authgate has"""
    import json
    here = os.path.dirname(os.path.abspath(__file__))
    with open(os.path.join(here, "..", "..", "contrib", "grafana",
                           "authgate.json")) as f:
        dash = json.load(f)
    mport = H.free_port()
    H.Authgate(settings={"metrics_listen": "127.0.0.1:%d" % mport}).start()
    _, text, _ = scrape(mport)
    served = set(re.findall(r"(?m)^# TYPE (\S+) ", text))
    exprs = [tg["expr"] for p in dash["panels"] for tg in p["targets"]]
    t.ok(len(exprs) >= 10, "the dashboard has its panels")
    for e in exprs:
        for name in re.findall(r"authgate_[a-z_]+", e):
            base = re.sub(r"_(bucket|sum|count)$", "", name)
            t.ok(name in served or base in served, "%s is served" % name)


@tap.test
def bad_listen_address(t):
    ag = H.Authgate(settings={"metrics_listen": "localhost:99999"})
    try:
        ag.start()
        t.ok(False, "started with a bad metrics_listen")
    except H.StartError:
        pass
    t.match(r"metrics_listen: 'localhost:99999' is not ADDRESS:PORT",
            ag.stderr())


if __name__ == "__main__":
    tap.main()
