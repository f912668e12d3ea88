#!/usr/bin/python3
"""test_reports_pg.py - authgate-reports on a PostgreSQL history shared by
two MX hosts.

A private PostgreSQL 15 (Debian's initdb/pg_ctl, run as user postgres) in
the test's temp dir, listening on 127.0.0.1 only, on a free port; stopped
by the PID of its postmaster at the end of the test, failed or not. Two
writers (tests/tools/dhist_fill: dhist_open with a writer thread, as the
daemon's history is) record the evaluations of one domain at the same
time, as two MX hosts would. One authgate-reports run must then send ONE
report with the rows of both hosts, and a second run nothing.
"""
import gzip
import os
import signal
import subprocess
import sys
import time
import xml.etree.ElementTree as E

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import tap  # noqa: E402

PGBIN = "/usr/lib/postgresql/15/bin"
HERE = os.path.dirname(os.path.abspath(__file__))
SRCDIR = os.environ.get("AUTHGATE_SRCDIR") or os.path.dirname(
    os.path.dirname(HERE))
BUILDDIR = os.environ.get("AUTHGATE_BUILDDIR") or os.path.join(
    SRCDIR, "build")
REPORTS = os.path.join(BUILDDIR, "filter", "authgate-reports")
FILL = os.path.join(BUILDDIR, "tests", "tools", "dhist_fill")
XSD = os.path.join(SRCDIR, "tests", "data", "dmarc", "rfc9990.xsd")
NS = "{urn:ietf:params:xml:ns:dmarc-2.0}"
DAY = 86400


def as_postgres(argv, **kw):
    return subprocess.run(["runuser", "-u", "postgres", "--"] + argv,
                          capture_output=True, text=True, **kw)


def stop_postgres(t, pidfile):
    """SIGINT (fast shutdown) to the postmaster by its PID, SIGKILL if it
    is still there after 30 s."""
    try:
        with open(pidfile) as f:
            pid = int(f.readline())
    except (OSError, ValueError):
        return
    try:
        os.kill(pid, signal.SIGINT)
    except ProcessLookupError:
        return
    end = time.monotonic() + 30
    while time.monotonic() < end:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.1)
    t.diag("postgres %d did not stop: SIGKILL" % pid)
    os.kill(pid, signal.SIGKILL)


def start_postgres(t):
    """A private server; returns (port, psql(sql) -> output)."""
    for prog in ("initdb", "pg_ctl", "psql"):
        if not os.access(os.path.join(PGBIN, prog), os.X_OK):
            t.fail("%s/%s missing: install postgresql "
                   "(contrib/setup.sh deps test)" % (PGBIN, prog))
    base = os.path.join(t.tmpdir, "pg")
    os.makedirs(base)
    subprocess.run(["chown", "postgres:postgres", base], check=True)
    data = os.path.join(base, "data")
    r = as_postgres([PGBIN + "/initdb", "-D", data, "-U", "postgres",
                     "--auth=trust", "-E", "UTF8", "--no-sync"])
    t.eq(r.returncode, 0, "initdb: " + r.stdout[-500:] + r.stderr[-500:])
    port = H.free_port()
    t.defer(stop_postgres, t, os.path.join(data, "postmaster.pid"))
    r = as_postgres([PGBIN + "/pg_ctl", "-D", data, "-l",
                     os.path.join(base, "log"), "-w", "-o",
                     "-c listen_addresses=127.0.0.1 -p %d "
                     "-c unix_socket_directories=%s -c fsync=off"
                     % (port, base), "start"])
    if r.returncode != 0:
        log = H._read(os.path.join(base, "log")).decode(errors="replace")
        t.fail("pg_ctl start failed", r.stdout, r.stderr, log[-2000:])

    def psql(sql, db="authgate"):
        out = subprocess.run([PGBIN + "/psql", "-X", "-A", "-t", "-h",
                              "127.0.0.1", "-p", str(port), "-U",
                              "postgres", "-d", db, "-c", sql],
                             capture_output=True, text=True)
        if out.returncode != 0:
            t.fail("psql %r: %s" % (sql, out.stderr))
        return out.stdout.strip()

    psql("CREATE DATABASE authgate", db="postgres")
    return port, psql


def fill(t, uri, name, rows):
    """A writer: dhist_fill URI with rows on stdin (started, not waited)."""
    path = os.path.join(t.tmpdir, name + ".rows")
    with open(path, "w") as f:
        f.write("".join("\t".join(r) + "\n" for r in rows))
    with open(path) as rows_in:
        return subprocess.Popen([FILL, uri], stdin=rows_in,
                                stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)


def records(path):
    root = E.fromstring(gzip.open(path).read())
    out = []
    for rec in root.findall(NS + "record"):
        out.append((rec.find(NS + "row/" + NS + "source_ip").text,
                    int(rec.find(NS + "row/" + NS + "count").text)))
    return root, sorted(out)


def run_reports(conf, outdir):
    return subprocess.run([REPORTS, "-c", conf, "--out", outdir],
                          capture_output=True, text=True)


@tap.test
def two_mx_hosts_one_report(t):
    for prog in (REPORTS, FILL):
        if not os.access(prog, os.X_OK):
            t.fail("%s not built (make, make check)" % prog)
    port, psql = start_postgres(t)
    uri = "postgresql://postgres@127.0.0.1:%d/authgate" % port
    today = int(time.time()) // DAY * DAY
    d1 = today - DAY
    # two MX hosts writing at once; 192.0.2.1 is seen by both
    mx1 = fill(t, uri, "mx1", [["host=mx1", "t=%d" % (d1 + 100 + i),
                      "source_ip=192.0.2.1"] for i in range(3)])
    mx2 = fill(t, uri, "mx2", [["host=mx2", "t=%d" % (d1 + 200), "count=2",
                      "source_ip=192.0.2.1"],
                     ["host=mx2", "t=%d" % (d1 + 300),
                      "source_ip=198.51.100.2"]])
    for name, p, want in (("mx1", mx1, 3), ("mx2", mx2, 3)):
        out, err = p.communicate()
        t.eq((p.returncode, out.strip()), (0, "recorded %d" % want),
             "%s wrote its rows (%s)" % (name, err.strip()))
    t.eq(psql("SELECT host, COUNT(*) FROM dmarc_eval GROUP BY host "
              "ORDER BY host"), "mx1|3\nmx2|3",
         "the shared history has the rows of both hosts")

    conf = os.path.join(t.tmpdir, "authgate.conf")
    with open(conf, "w") as f:
        f.write("dmarc_history = %s\n"
                "dmarc_report_from = dmarc-reports@receiver.example\n"
                "dmarc_report_org = Receiver\n"
                # no DNS is needed (rua on the policy domain); a dead
                # server makes any query fail rather than leave the host
                "dns_servers = 127.0.0.1@%d\n"
                "dns_timeout = 1s\n" % (uri, H.free_port()))
    outdir = os.path.join(t.tmpdir, "out")
    os.makedirs(outdir)
    r = run_reports(conf, outdir)
    t.eq(r.returncode, 0, "authgate-reports: exit 0 (%s)" % r.stderr)
    gz = sorted(f for f in os.listdir(outdir) if f.endswith(".xml.gz"))
    t.eq(len(gz), 1, "one report for the domain and day, not one per host")
    t.match(r"^receiver\.example!example\.com!%d!%d![A-Za-z0-9]+\.xml\.gz$"
            % (d1, d1 + DAY - 1), gz[0], "the report's file name")
    path = os.path.join(outdir, gz[0])
    x = subprocess.run("gzip -dc '%s' | xmllint --noout --schema '%s' -"
                       % (path, XSD), shell=True, capture_output=True,
                       text=True)
    t.eq(x.returncode, 0, "the report validates: " + x.stderr)
    root, recs = records(path)
    t.eq(recs, [("192.0.2.1", 5), ("198.51.100.2", 1)],
         "the rows of both hosts, the same tuple counted once")
    t.match(r"^sent: example\.com \S+ report \S+ \(6 messages\) to "
            r"dmarc@example\.com$", r.stdout, "it says what it sent")
    t.eq(psql("SELECT COUNT(*) FROM dmarc_sent") + " " +
         psql("SELECT COUNT(*) FROM dmarc_done"), "1 1",
         "the history knows it was sent and the day is done")

    before = sorted(os.listdir(outdir))
    r = run_reports(conf, outdir)
    t.eq((r.returncode, r.stdout, r.stderr), (0, "", ""),
         "a second run: exit 0, nothing said")
    t.eq(sorted(os.listdir(outdir)), before, "a second run sends nothing")


if __name__ == "__main__":
    tap.main()
