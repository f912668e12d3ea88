#!/usr/bin/python3
"""test_spf_suite.py - the RFC 7208 SPF test suite through `authgate check`.

    /usr/bin/python3 tests/integration/test_spf_suite.py [-v] [--keep]
        [--engine authgate|pyspf] [-j N] [-o name=value]... [FILTER...]

Runs every test of tests/data/spf/rfc7208-tests.yml (the openspf.org suite
from pyspf, 203 tests) through authgate's whole pipeline: for each test an
in-process DnsServer on 127.0.0.1 serves the scenario's zonedata, and
`authgate check -o dns_servers=127.0.0.1@PORT ...` evaluates one message
with the test's client IP, HELO and MAIL FROM.  The spf= result of the
smtp.mailfrom identity in the Authentication-Results header must be the
test's `result` (one of them, when it is a list); when the test gives an
`explanation` and the result is fail, the verdict must be
`action: reject 550 5.7.23 <explanation>` (spf_fail_action = reject,
spf_default_explanation = DEFAULT, as pyspf's own driver sets it).  A
rejected message gets no header, so `action: reject 550 5.7.23 ...` without
an smtp.mailfrom result counts as the result fail (X.7.23 = "SPF validation
failed", RFC 7372; nothing else here is set to reject).

Output is TAP: one test point per suite test, named
`<scenario description>/<test name>`, in file order (the tests run -j at a
time).  Tests listed in tests/data/spf/expected-failures.txt still run and
are reported `not ok ... # TODO reason`; they count as failures (the list
is authgate's: --engine pyspf ignores it).  Exit status 0 only when every
selected test passed.

  FILTER         run the tests whose name contains one of these (any case)
  -v             also show each test's description, DNS queries and engine
                 output for failures, and the time of every test
  --keep         keep the temp dir, and for each failing test print the exact
                 engine command line and how to serve its zone again
  --engine pyspf run tests/integration/pyspf_check.py (pyspf, the suite's
                 reference) instead of authgate: validates this driver
  -o name=value  extra setting for the engine (repeatable)
  -j N           tests at a time (default 4)
  --timeout S    kill an engine run after S seconds (default 30): a failure
Environment: AUTHGATE_BIN (default <repo>/build/filter/authgate).

Zonedata rules (the suite's file header, and pyspf's test/testspf.py, which
is the reference driver):
* TXT/SPF value: a string, or a list of strings = ONE record of several
  character-strings (`[]` = one record with no strings); `TXT: NONE` = no TXT
  record (but the entry still counts as "the name has a TXT entry").
* SPF (type 99) records are also served as TXT, but only when the name has
  no TXT entry at all (not even `TXT: NONE`), and after all other entries.
* MX `[prio, host]`; A, AAAA, PTR, CNAME as text.
* a bare `TIMEOUT` entry: every query for that name (exact name, not below
  it) times out, except queries of a type that has a record listed BEFORE
  the TIMEOUT entry, which are answered; records listed after it, and the
  generated TXT copies of SPF records, are never served.  `TYPE: TIMEOUT`:
  queries of that type time out.  A timeout here = the server never answers
  (DnsServer `drop`), so the engine's own dns_timeout decides how long.
Served as a real authoritative server would, which pyspf's driver (a fake
DNSLookup) does not: a name the zonedata lacks is NXDOMAIN, an existing name
without the type is NODATA; answers over 512 bytes are truncated on UDP (TC,
retry over TCP); owner names come back lower-case; a CNAME loop
(ptr-cname-loop) is answered SERVFAIL.  YAML "\x96" in a record is the code
point U+0096, served UTF-8 encoded (bytes C2 96), as pyspf's driver does.

Exit status: 0 all selected tests passed, 1 some failed (or interrupted, or
no authgate binary), 2 bad suite file, expected-failures.txt or FILTER.
--engine pyspf fails ptr-cname-loop (temperror): pyspf lets a DNS error of
the A lookup in PTR validation end the check, RFC 7208 5.5/7 says skip the
name; pyspf's own driver hides this by returning the loop as data.
"""

import argparse
import concurrent.futures
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback

sys.dont_write_bytecode = True
HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)

import yaml  # noqa: E402  (python3-yaml)
from dnslib import QTYPE  # noqa: E402  (python3-dnslib)

import dns_server  # noqa: E402

PYTHON = "/usr/bin/python3"
DATA = os.path.join(TOP, "tests", "data", "spf")
SUITE = os.path.join(DATA, "rfc7208-tests.yml")
XFAIL = os.path.join(DATA, "expected-failures.txt")
AUTHSERV_ID = "suite.test"
SETTINGS = [("authserv_id", AUTHSERV_ID),
            ("dns_timeout", "1s"),
            ("spf_fail_action", "reject"),
            ("spf_default_explanation", "DEFAULT")]
RESULTS = ("none", "neutral", "pass", "fail", "softfail", "temperror",
           "permerror")
ALL_QTYPES = frozenset(QTYPE.forward.values())
MESSAGE = (b"From: SPF suite <sender@suite.invalid>\r\n"
           b"To: <rcpt@suite.test>\r\n"
           b"Subject: RFC 7208 test suite\r\n"
           b"Date: Mon, 23 Nov 2026 10:00:00 +0000\r\n"
           b"Message-ID: <spf-suite@suite.invalid>\r\n"
           b"\r\n"
           b"SPF test message.\r\n")


# ---------------------------------------------------------------------------
# the suite


class SuiteError(Exception):
    """The suite file or expected-failures.txt cannot be used."""


class Test:
    def __init__(self, scenario, name, data):
        self.scenario, self.id, self.data = scenario, name, data
        self.name = "%s/%s" % (scenario.description, name)
        for key in ("helo", "host", "mailfrom", "result"):
            if key not in data:
                raise SuiteError("%s: no %s" % (self.name, key))
        self.helo = str(data["helo"])
        self.host = str(data["host"])
        self.mailfrom = str(data["mailfrom"])
        want = data["result"]
        self.want = [str(r) for r in (want if isinstance(want, list)
                                      else [want])]
        exp = data.get("explanation")
        self.explanation = None if exp is None else str(exp)
        self.spec = data.get("spec")


class Scenario:
    def __init__(self, num, doc):
        self.num = num
        self.description = " ".join(str(doc.get("description",
                                                "scenario %d" % num)).split())
        self.zone = zone_from_zonedata(doc.get("zonedata") or {},
                                       self.description)
        self.tests = [Test(self, name, data)
                      for name, data in (doc.get("tests") or {}).items()]


def load_suite(path):
    with open(path, "rb") as f:
        docs = [d for d in yaml.safe_load_all(f) if d]
    scenarios = [Scenario(n, d) for n, d in enumerate(docs, 1)]
    names = [t.name for s in scenarios for t in s.tests]
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise SuiteError("duplicate test names: %s" % ", ".join(dup))
    return scenarios


def zone_from_zonedata(zonedata, where):
    """The suite's zonedata -> a dns_server zone dict (zone.json format)."""
    records, behaviour = [], {}
    for name, entries in zonedata.items():
        name = str(name)
        if not isinstance(entries, list):
            raise SuiteError("%s: zonedata %s: not a list" % (where, name))
        has_txt = any(isinstance(e, dict) and "TXT" in e for e in entries)
        served, generated = set(), []
        typed_timeouts, timeout_all = set(), False
        for e in entries:
            if e == "TIMEOUT":
                timeout_all = True      # later entries are never reached
                break
            if not isinstance(e, dict) or len(e) != 1:
                raise SuiteError("%s: zonedata %s: bad entry %r"
                                 % (where, name, e))
            (rtype, value), = e.items()
            rtype = str(rtype).upper()
            if value == "TIMEOUT":
                typed_timeouts.add(rtype)
                continue
            if rtype in ("TXT", "SPF"):
                value = ([str(value)] if not isinstance(value, list)
                         else [str(v) for v in value])
                if rtype == "TXT" and value == ["NONE"]:
                    continue            # no record; still "has a TXT entry"
                if rtype == "SPF" and not has_txt:
                    generated.append(value)
            elif rtype == "MX":
                if not isinstance(value, list) or len(value) != 2:
                    raise SuiteError("%s: zonedata %s: MX %r"
                                     % (where, name, value))
                value = [int(value[0]), str(value[1])]
            elif rtype in ("A", "AAAA", "PTR", "CNAME"):
                value = str(value)
            else:
                raise SuiteError("%s: zonedata %s: unknown type %s"
                                 % (where, name, rtype))
            records.append([name, rtype, value])
            served.add(rtype)
        if timeout_all:
            drop = ALL_QTYPES - served
            behaviour[name] = ({"drop": True, "types": sorted(drop)}
                               if served else {"drop": True})
        else:
            records += [[name, "TXT", v] for v in generated]
            if typed_timeouts:
                behaviour[name] = {"drop": True,
                                   "types": sorted(typed_timeouts)}
    return {"ttl": 60, "records": records, "behaviour": behaviour}


def load_expected_failures(path, names):
    """-> {test name: reason}; SuiteError for a bad line or unknown name."""
    out = {}
    if not os.path.exists(path):
        return out
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.rstrip("\n")
            if not line.strip() or line.lstrip().startswith("#"):
                continue
            name, tab, reason = line.partition("\t")
            name, reason = name.strip(), " ".join(reason.split())
            if not tab or not reason:
                raise SuiteError("%s:%d: expected SCENARIO/TEST<TAB>REASON"
                                 % (path, n))
            if name not in names:
                raise SuiteError("%s:%d: no such test: %r" % (path, n, name))
            if name in out:
                raise SuiteError("%s:%d: listed twice: %r" % (path, n, name))
            out[name] = reason.replace("#", "No.")
    return out


# ---------------------------------------------------------------------------
# reading the engine's output


def split_results(value):
    """A-R header value -> its ';'-separated parts, comments removed, ';' in
    quoted-strings and comments kept in place (RFC 8601 syntax)."""
    parts, cur, depth, quoted, i = [], [], 0, False, 0
    while i < len(value):
        c = value[i]
        if quoted:
            cur.append(c)
            if c == "\\" and i + 1 < len(value):
                cur.append(value[i + 1])
                i += 1
            elif c == '"':
                quoted = False
        elif depth:
            if c == "\\":
                i += 1
            elif c == "(":
                depth += 1
            elif c == ")":
                depth -= 1
                if not depth:
                    cur.append(" ")
        elif c == '"':
            quoted = True
            cur.append(c)
        elif c == "(":
            depth = 1
        elif c == ";":
            parts.append("".join(cur).strip())
            cur = []
        else:
            cur.append(c)
        i += 1
    parts.append("".join(cur).strip())
    return parts


PAIR = re.compile(r'([A-Za-z0-9_.-]+(?:/[0-9]+)?)\s*=\s*'
                  r'((?:"(?:[^"\\]|\\.)*"|[^\s"])*)')


def spf_results(stdout):
    """-> [(result, {property: value})] of every spf= resinfo of every
    Authentication-Results line."""
    out = []
    for line in stdout.splitlines():
        name, colon, value = line.partition(":")
        if not colon or name.strip().lower() != "authentication-results":
            continue
        for part in split_results(value)[1:]:     # [0] is the authserv-id
            pairs = PAIR.findall(part)
            if not pairs or not re.fullmatch(r"spf(/[0-9]+)?",
                                             pairs[0][0].lower()):
                continue
            props = {k.lower(): v for k, v in pairs[1:]}
            out.append((pairs[0][1].lower(), props))
    return out


def action_of(stdout):
    lines = [ln for ln in stdout.splitlines() if ln.startswith("action:")]
    return lines[-1][len("action:"):].strip() if lines else None


# ---------------------------------------------------------------------------
# running one test


class Outcome:
    def __init__(self, test):
        self.test = test
        self.ok = False
        self.problems = []        # why it failed
        self.got = None           # mailfrom result, or None
        self.cmd = None
        self.port = None
        self.stdout = self.stderr = ""
        self.rc = None
        self.queries = []
        self.elapsed = 0.0


class Runner:
    def __init__(self, args, tmpdir):
        self.args, self.tmpdir = args, tmpdir
        self.msgfile = os.path.join(tmpdir, "message.eml")
        with open(self.msgfile, "wb") as f:
            f.write(MESSAGE)
        self.conf = os.path.join(tmpdir, "authgate.conf")
        with open(self.conf, "w") as f:
            f.write("# empty: everything comes from -o (test_spf_suite.py)\n")
        if args.engine == "pyspf":
            self.base = [PYTHON, os.path.join(HERE, "pyspf_check.py")]
        else:
            self.base = [os.environ.get("AUTHGATE_BIN", os.path.join(
                TOP, "build", "filter", "authgate"))]
        self.lock = threading.Lock()
        self.procs = {}           # pid -> Popen, running engine processes
        self.servers = set()      # running DnsServers
        self.stoppers = []        # threads stopping DnsServers
        self.stopping = False

    def command(self, test, port):
        cmd = self.base + ["check", "-c", self.conf,
                           "-o", "dns_servers=127.0.0.1@%d" % port]
        for name, value in SETTINGS:
            cmd += ["-o", "%s=%s" % (name, value)]
        for o in self.args.option:
            cmd += ["-o", o]
        cmd += ["--client-ip", test.host, "--helo", test.helo,
                "--mail-from", test.mailfrom, "--rcpt", "rcpt@suite.test",
                self.msgfile]
        return cmd

    def run(self, test):
        try:
            return self.run1(test)
        except Exception:                            # noqa: BLE001
            out = Outcome(test)
            out.problems.append("driver error:")
            out.problems += traceback.format_exc().splitlines()
            return out

    def run1(self, test):
        out = Outcome(test)
        t0 = time.monotonic()
        dns = dns_server.DnsServer(port=0, zone=test.scenario.zone)
        with self.lock:
            if self.stopping:
                out.problems.append("not run: interrupted")
                return out
            dns.start()
            self.servers.add(dns)
        try:
            out.port = dns.port
            out.cmd = self.command(test, dns.port)
            self.execute(out)
            out.queries = dns.queries()
        finally:
            # stopping takes ~50 ms (socketserver's poll interval): do it
            # beside the next test
            th = threading.Thread(target=self.stop_dns, args=(dns,))
            th.start()
            with self.lock:
                self.stoppers.append(th)
        out.elapsed = time.monotonic() - t0
        judge(out)
        return out

    def stop_dns(self, dns):
        dns.stop()
        with self.lock:
            self.servers.discard(dns)

    def stop_servers(self):
        """Wait for the DnsServers being stopped; stop any still running."""
        with self.lock:
            stoppers, self.stoppers = self.stoppers, []
        for th in stoppers:
            th.join()
        with self.lock:
            servers = list(self.servers)
        for dns in servers:
            self.stop_dns(dns)

    def execute(self, out):
        try:
            proc = subprocess.Popen(out.cmd, stdin=subprocess.DEVNULL,
                                    stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE,
                                    start_new_session=True)
        except OSError as e:
            out.problems.append("cannot run %s: %s" % (out.cmd[0], e))
            return
        with self.lock:
            self.procs[proc.pid] = proc
        try:
            try:
                so, se = proc.communicate(timeout=self.args.timeout)
            except subprocess.TimeoutExpired:
                kill_group(proc)
                so, se = proc.communicate()
                out.problems.append("engine still running after %g s: "
                                    "killed" % self.args.timeout)
        finally:
            with self.lock:
                self.procs.pop(proc.pid, None)
        out.rc = proc.returncode
        out.stdout = so.decode("utf-8", "replace")
        out.stderr = se.decode("utf-8", "replace")

    def stop_all(self):
        """After ^C/SIGTERM: no new tests; kill running engines by PID."""
        with self.lock:
            self.stopping = True
            procs = list(self.procs.values())
        for p in procs:
            kill_group(p)


def kill_group(proc):
    """SIGKILL an engine process (its own session, so its group too)."""
    for kill in (lambda: os.killpg(proc.pid, signal.SIGKILL),
                 lambda: os.kill(proc.pid, signal.SIGKILL)):
        try:
            kill()
        except (ProcessLookupError, PermissionError):
            pass


def judge(out):
    t = out.test
    if out.problems:
        return
    if out.rc != 0:
        out.problems.append("engine exit status %s (want 0)" % out.rc)
        return
    res = spf_results(out.stdout)
    mf = [r for r, p in res if "smtp.mailfrom" in p]
    helo = [r for r, p in res if "smtp.helo" in p]
    act = action_of(out.stdout)
    spf_reject = bool(re.match(r"reject\s+550\s+5\.7\.23(\s|$)", act or ""))
    if spf_reject and any(r != "fail" for r in mf):
        out.problems.append("action %r (SPF fail) but the A-R says spf=%s"
                            % (act, ",".join(mf)))
        return
    if not mf and spf_reject:
        # A rejected message gets no header.  With spf_fail_action = reject
        # (and no other spf_*_action), 550 5.7.23 ("SPF validation failed",
        # RFC 7372) is the MAIL FROM identity's fail.
        mf = ["fail"]
    if not mf:
        out.problems.append(
            "no spf result for smtp.mailfrom in Authentication-Results"
            + (" (smtp.helo: spf=%s)" % ",".join(helo) if helo else ""))
        return
    if len(mf) > 1:
        out.problems.append("%d spf results for smtp.mailfrom: %s"
                            % (len(mf), ", ".join(mf)))
        return
    out.got = mf[0]
    if out.got not in RESULTS:
        out.problems.append("result: got %r, not an SPF result name "
                            "(RFC 8601 2.7.2)" % out.got)
        return
    if out.got not in t.want:
        out.problems.append("result: got %s, want %s"
                            % (out.got, " or ".join(t.want)))
        return
    if t.explanation is not None and out.got == "fail":
        want = "reject 550 5.7.23 %s" % t.explanation
        if act != want:
            note = ""
            if act and " ".join(act.split()) == " ".join(want.split()):
                note = " (differs in white space only)"
            out.problems.append("explanation: got action %r, want %r%s"
                                % (act, want, note))
            return
    out.ok = True


# ---------------------------------------------------------------------------
# output


def tap_name(name):
    return name.replace("#", "No.").replace("\n", " ")


def diag(lines):
    for line in lines:
        print("# " + line if line else "#")


def report(num, out, xfail, args, tmpdir):
    t = out.test
    reason = xfail.get(t.name)
    todo = " # TODO %s" % reason if reason else ""
    print("%s %d - %s%s" % ("ok" if out.ok else "not ok", num,
                            tap_name(t.name), todo))
    lines = []
    if out.ok and reason:
        lines.append("  passes although listed in expected-failures.txt: "
                     "remove it from there")
    if not out.ok:
        lines += ["  " + p for p in out.problems]
        lines.append("  spec %s; client %s, helo %r, mail from %r"
                     % (t.spec, t.host, t.helo, t.mailfrom))
        if out.stderr.strip() and (args.verbose or out.got is None):
            lines.append("  engine stderr:")
            lines += ["    " + ln for ln in out.stderr.splitlines()[:20]]
        if args.verbose:
            for key in ("description", "comment"):
                if t.data.get(key):
                    lines.append("  %s: %s" % (key, " ".join(
                        str(t.data[key]).split())))
            lines.append("  engine output:")
            lines += ["    " + ln for ln in out.stdout.splitlines()]
            lines.append("  DNS queries (%d):" % len(out.queries))
            lines += ["    %s %s %s %s" % (q.proto, q.name, q.type, q.outcome)
                      for q in out.queries]
        if args.keep and out.cmd:
            zone = os.path.join(tmpdir, "zone-%02d.json" % t.scenario.num)
            lines.append("  rerun: %s %s --port %d --zone %s &"
                         % (PYTHON, os.path.join(HERE, "dns_server.py"),
                            out.port, zone))
            lines.append("         " + shlex.join(out.cmd))
    if args.verbose:
        lines.append("  time %s: %.2f s" % (t.name, out.elapsed))
    diag(lines)
    sys.stdout.flush()


# ---------------------------------------------------------------------------


def parse_args(argv):
    ap = argparse.ArgumentParser(
        description="RFC 7208 SPF test suite through authgate check (TAP)")
    ap.add_argument("filter", nargs="*",
                    help="run tests whose name contains one of these")
    ap.add_argument("-v", "--verbose", action="store_true")
    ap.add_argument("--keep", action="store_true",
                    help="keep the temp dir, print commands of failures")
    ap.add_argument("--engine", choices=("authgate", "pyspf"),
                    default="authgate")
    ap.add_argument("-j", "--jobs", type=int, default=4)
    ap.add_argument("-o", "--option", action="append", default=[],
                    metavar="NAME=VALUE", help="extra engine setting")
    ap.add_argument("--timeout", type=float, default=30,
                    help="seconds per engine run (default 30)")
    ap.add_argument("--suite", default=SUITE, help=argparse.SUPPRESS)
    ap.add_argument("--expected-failures", default=XFAIL,
                    help=argparse.SUPPRESS)
    return ap.parse_args(argv)


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    try:
        scenarios = load_suite(args.suite)
        every = [t for s in scenarios for t in s.tests]
        xfail = load_expected_failures(args.expected_failures,
                                       {t.name for t in every})
        if args.engine != "authgate":
            xfail = {}                  # authgate's list (checked anyway)
    except (OSError, yaml.YAMLError, SuiteError) as e:
        print("Bail out! %s" % e, flush=True)
        return 2
    filters = [f.lower() for f in args.filter]
    tests = [t for t in every
             if not filters or any(f in t.name.lower() for f in filters)]
    if not tests:
        print("Bail out! no test name contains %s"
              % " or ".join(map(repr, args.filter)), flush=True)
        return 2
    if args.engine == "authgate":
        binary = os.environ.get("AUTHGATE_BIN", os.path.join(
            TOP, "build", "filter", "authgate"))
        if not os.access(binary, os.X_OK):
            print("1..%d\nBail out! no authgate binary at %s (build it, or "
                  "set AUTHGATE_BIN)" % (len(tests), binary), flush=True)
            return 1

    for s in scenarios:
        if any(t.scenario is s for t in tests):
            try:
                dns_server.Zone().load(s.zone)
            except Exception as e:                   # noqa: BLE001
                print("Bail out! %s: zonedata not servable: %s: %s"
                      % (s.description, type(e).__name__, e), flush=True)
                return 2

    tmpdir = tempfile.mkdtemp(prefix="spf-suite-")
    runner = Runner(args, tmpdir)
    if args.keep:
        for s in scenarios:
            with open(os.path.join(tmpdir, "zone-%02d.json" % s.num),
                      "w") as f:
                json.dump(s.zone, f, indent=1)
    print("1..%d" % len(tests), flush=True)
    print("# engine: %s; %d of %d tests; %d at a time"
          % (" ".join(runner.base), len(tests), len(every), args.jobs),
          flush=True)

    def on_term(signum, frame):
        raise KeyboardInterrupt("signal %d" % signum)
    old_term = signal.signal(signal.SIGTERM, on_term)
    start = time.monotonic()
    outcomes, interrupted, futures = [], False, []
    pool = concurrent.futures.ThreadPoolExecutor(max(1, args.jobs))
    try:
        futures += [pool.submit(runner.run, t) for t in tests]
        for num, fut in enumerate(futures, 1):
            out = fut.result()
            outcomes.append(out)
            report(num, out, xfail, args, tmpdir)
    except KeyboardInterrupt:
        interrupted = True
        runner.stop_all()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        runner.stop_all()
        runner.stop_servers()
        signal.signal(signal.SIGTERM, old_term)
        if args.keep:
            print("# kept temp dir %s" % tmpdir, flush=True)
        else:
            shutil.rmtree(tmpdir, ignore_errors=True)
    elapsed = time.monotonic() - start

    passed = [o for o in outcomes if o.ok]
    failed = [o for o in outcomes if not o.ok]
    if interrupted:
        print("Bail out! interrupted after %d of %d tests"
              % (len(outcomes), len(tests)), flush=True)
    lines = ["spf suite: %d passed, %d failed%s (%.1f s)"
             % (len(passed), len(failed),
                "" if len(outcomes) == len(tests)
                else ", %d not run" % (len(tests) - len(outcomes)),
                elapsed)]
    expected = [o for o in failed if o.test.name in xfail]
    if expected:
        lines.append("  %d of the failures are listed in "
                     "expected-failures.txt" % len(expected))
    stale = [o for o in passed if o.test.name in xfail]
    if stale:
        lines.append("  %d listed in expected-failures.txt now pass: %s"
                     % (len(stale), ", ".join(o.test.name for o in stale)))
    if failed:
        lines.append("failures (got / want):")
        for o in failed:
            want = " or ".join(o.test.want)
            if o.test.explanation is not None:
                want += ' "%s"' % o.test.explanation
            lines.append("  %s: %s / %s%s%s" % (
                o.test.name, o.got or "-", want,
                "" if o.got and o.got not in o.test.want
                else " (%s)" % "; ".join(o.problems),
                "  [expected: %s]" % xfail[o.test.name]
                if o.test.name in xfail else ""))
    slow = sorted(outcomes, key=lambda o: -o.elapsed)[:5]
    if slow:
        lines.append("slowest: " + ", ".join(
            "%s %.1f s" % (o.test.id, o.elapsed) for o in slow))
    diag(lines)
    sys.stdout.flush()
    # TAP says which failures are listed (TODO); the exit status is about
    # the others, and about a list that no longer matches (a listed test
    # that passes must be taken off the list).
    unexpected = [o for o in failed if o.test.name not in xfail]
    return 0 if not unexpected and not stale and not interrupted else 1


if __name__ == "__main__":
    sys.exit(main())
