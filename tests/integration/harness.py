"""authgate integration-test harness.

Private Postfix and Sendmail instances, a DNS server, an SMTP sink, a
milter wire logger and a generic daemon wrapper, all on 127.0.0.1, all
state under one per-test temp dir.  Importing this module hooks into tap.py:
before each test a temp dir is created (ctx.tmpdir), after it every
component the test started and did not stop is stopped (by PID), leftover
processes are reported, and the temp dir is removed (kept when the test
failed and KEEP_TMP=1).  See README.md for the API and an example.
"""

import atexit
import fcntl
import glob
import json
import os
import random
import re
import secrets
import shutil
import signal
import smtplib
import socket
import ssl
import subprocess
import tempfile
import threading
import time

import dns_server
import smtp_sink
import tap

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
PYTHON = "/usr/bin/python3"
CACHE = os.environ.get("AUTHGATE_TEST_CACHE", "/var/cache/authgate-tests")
HOSTNAME = "mta.test.example"
RUN_TAG = "agit-" + secrets.token_hex(3)   # part of every temp dir name
TEST_NETS = "192.0.2.0/24 198.51.100.0/24 203.0.113.0/24"
TIMINGS = []                               # (component, event, seconds)
KILLED = []                                # (component, [pids]) SIGKILLed

# ---------------------------------------------------------------------------
# ports, temp dirs, processes


_ports_given = set()


def unfold(value):
    """A header value on one line (RFC 5322 2.2.3 unfolding)."""
    return re.sub(r"\r?\n[ \t]+", " ", value)


def free_port():
    """A TCP+UDP port on 127.0.0.1 that nothing listens on right now, outside
    the kernel's ephemeral range, never the same twice in one run."""
    for _ in range(500):
        port = random.randint(20000, 32000)
        if port in _ports_given:
            continue
        try:
            for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
                with socket.socket(socket.AF_INET, kind) as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        _ports_given.add(port)
        return port
    raise RuntimeError("no free port found")


_current_tmpdir = None


def new_tmpdir(name="test"):
    slug = re.sub(r"[^A-Za-z0-9]+", "-", name)[:24]
    path = tempfile.mkdtemp(prefix="%s-%s-" % (RUN_TAG, slug), dir="/tmp")
    os.chmod(path, 0o755)              # postfix daemons must traverse it
    return path


def test_tmpdir():
    """The current test's temp dir (created on demand outside tap)."""
    global _current_tmpdir
    if _current_tmpdir is None:
        _current_tmpdir = new_tmpdir()
    return _current_tmpdir


def _subdir(base, name):
    base = base or test_tmpdir()
    n = 1
    while os.path.exists(os.path.join(base, "%s%d" % (name, n))):
        n += 1
    path = os.path.join(base, "%s%d" % (name, n))
    os.makedirs(path)
    os.chmod(path, 0o755)
    return path


def _proc_stat(pid):
    """-> (state, ppid, pgrp, session) or None"""
    try:
        with open("/proc/%d/stat" % pid) as f:
            rest = f.read().rsplit(")", 1)[1].split()
        return rest[0], int(rest[1]), int(rest[2]), int(rest[3])
    except (OSError, IndexError, ValueError):
        return None


def _read(path):
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError:
        return b""


def _all_pids():
    me = os.getpid()
    return [int(p) for p in os.listdir("/proc") if p.isdigit()
            and int(p) != me]


def session_members(sid):
    """Live (non-zombie) processes of session sid."""
    out = []
    for pid in _all_pids():
        st = _proc_stat(pid)
        if st and st[3] == sid and st[0] != "Z":
            out.append(pid)
    return out


def processes_mentioning(text):
    """[(pid, cmdline)] of live processes whose cmdline or environment
    contains text (e.g. a temp dir path)."""
    needle, out = text.encode(), []
    for pid in _all_pids():
        st = _proc_stat(pid)
        if not st or st[0] == "Z":
            continue
        cmd = _read("/proc/%d/cmdline" % pid)
        if needle in cmd or needle in _read("/proc/%d/environ" % pid):
            out.append((pid, cmd.replace(b"\0", b" ").decode(
                errors="replace")))
    return out


def _kill_and_wait(pids, timeout=3.0):
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        alive = [p for p in pids if _proc_stat(p) and _proc_stat(p)[0] != "Z"]
        if not alive:
            return []
        time.sleep(0.02)
    return alive


# registry of running components: stopped after each test -----------------
_live = []
_sessions = set()                 # every session id started in this run


def _register(obj):
    _live.append(obj)


def _unregister(obj):
    if obj in _live:
        _live.remove(obj)


def stop_all():
    """Stop every running component, newest first; -> their names."""
    names, errors = [], []
    for obj in reversed(list(_live)):
        names.append(repr(obj))
        try:
            obj.stop()
        except Exception as e:                       # noqa: BLE001
            errors.append("%r: %s" % (obj, e))
        _unregister(obj)
    if errors:
        raise RuntimeError("; ".join(errors))
    return names


def leftover_processes():
    """Live processes of any session started in this run, or mentioning this
    run's temp dirs."""
    found = dict(processes_mentioning(RUN_TAG))
    for sid in _sessions:
        for pid in session_members(sid):
            found.setdefault(pid, _read("/proc/%d/cmdline" % pid)
                             .replace(b"\0", b" ").decode(errors="replace"))
    return sorted(found.items())


def _timing(component, event, seconds):
    TIMINGS.append((component, event, seconds))


def _before_test(ctx):
    global _current_tmpdir
    _current_tmpdir = ctx.tmpdir = new_tmpdir(ctx.name)


def _after_test(ctx):
    global _current_tmpdir
    try:
        for name in stop_all():
            tap.diag("teardown: stopped %s" % name)
        left = [p for p in processes_mentioning(ctx.tmpdir)]
        if left:
            _kill_and_wait([p for p, _ in left])
            raise RuntimeError("processes left behind (killed): %s" % left)
    finally:
        if ctx.failed and os.environ.get("KEEP_TMP") == "1":
            tap.diag("kept temp dir %s" % ctx.tmpdir)
        else:
            shutil.rmtree(ctx.tmpdir, ignore_errors=True)
        _current_tmpdir = None


tap.add_hooks(before=_before_test, after=_after_test)


@atexit.register
def _at_exit():
    """Scripts using the harness outside tap.py: never leave processes."""
    try:
        stop_all()
    except Exception as e:                           # noqa: BLE001
        print("harness: teardown at exit: %s" % e)
    if _current_tmpdir and os.environ.get("KEEP_TMP") != "1":
        shutil.rmtree(_current_tmpdir, ignore_errors=True)


# ---------------------------------------------------------------------------
# generic daemon


class StartError(RuntimeError):
    pass


def listening(port=None, path=None):
    """Is a TCP socket listening on port (any local address), or a unix
    socket at path?  Read from /proc/net, so the check itself makes no
    connection (a probe connection would show up as a milter/SMTP session
    in the logs of the thing under test)."""
    if path:
        for line in _read("/proc/net/unix").decode().splitlines()[1:]:
            f = line.split()            # flags 00010000: __SO_ACCEPTCON
            if len(f) >= 8 and f[-1] == path and f[3] == "00010000":
                return True
        return False
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in _read(table).decode().splitlines()[1:]:
            f = line.split()
            if f[3] == "0A" and int(f[1].rsplit(":", 1)[1], 16) == port:
                return True
    return False


class Daemon:
    """A process started in its own session, stopped by PID.

    stdout and stderr go to files in logdir (default: the test's temp dir);
    start() waits until ready_port (TCP on 127.0.0.1) or ready_path (unix
    socket) accepts connections.  stop(): SIGTERM, `grace` seconds, SIGKILL,
    then SIGKILL for anything left in the session; raises if something
    survives."""

    def __init__(self, argv, ready_port=None, ready_path=None, env=None,
                 name=None, logdir=None, cwd=None, timeout=15, grace=5):
        self.argv = [str(a) for a in argv]
        self.ready_port, self.ready_path = ready_port, ready_path
        self.env, self.cwd = env, cwd
        self.name = name or os.path.basename(self.argv[0])
        self.logdir, self.timeout, self.grace = logdir, timeout, grace
        self.proc = None
        self.returncode = None

    def __repr__(self):
        return "%s(pid=%s%s)" % (self.name, self.pid, ", port=%s"
                                 % self.ready_port if self.ready_port else "")

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        logdir = self.logdir or test_tmpdir()
        base = os.path.join(logdir, re.sub(r"[^\w.-]", "_", self.name))
        n = 1
        while os.path.exists("%s.%d.err" % (base, n)):
            n += 1
        self.stdout_path = "%s.%d.out" % (base, n)
        self.stderr_path = "%s.%d.err" % (base, n)
        env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
        env.update(self.env or {})
        t0 = time.monotonic()
        with open(self.stdout_path, "wb") as out, \
                open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(
                self.argv, stdin=subprocess.DEVNULL, stdout=out, stderr=err,
                env=env, cwd=self.cwd, start_new_session=True)
        _sessions.add(self.proc.pid)
        _register(self)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise
        self.start_time = time.monotonic() - t0
        _timing(self.name, "start", self.start_time)
        return self

    def _wait_ready(self):
        if not (self.ready_port or self.ready_path):
            return
        deadline = time.monotonic() + self.timeout
        while True:
            if self.proc.poll() is not None:
                raise StartError("%s exited with status %s before it was "
                                 "ready; stderr:\n%s" % (
                                     self.name, self.proc.returncode,
                                     self.stderr()[-3000:]))
            if listening(self.ready_port, self.ready_path):
                return
            if time.monotonic() > deadline:
                raise StartError("%s not ready after %.0f s; stderr:\n%s" % (
                    self.name, self.timeout, self.stderr()[-3000:]))
            time.sleep(0.02)

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def signal(self, sig):
        self.proc.send_signal(sig)

    def stop(self):
        """Stop the process and everything in its session; -> exit status."""
        if self.proc is None:
            return None
        t0 = time.monotonic()
        killed = []
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(self.grace)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
                killed.append(self.proc.pid)
        self.returncode = self.proc.returncode
        try:                  # give the rest of the session a moment
            wait_until(lambda: not session_members(self.proc.pid),
                        min(self.grace, 2), "")
        except TimeoutError:
            pass
        rest = session_members(self.proc.pid)
        survivors = _kill_and_wait(rest)
        if killed or rest:
            KILLED.append((self.name, killed + rest))
        _unregister(self)
        self.stop_time = time.monotonic() - t0
        _timing(self.name, "stop", self.stop_time)
        if survivors:
            raise RuntimeError("%r: processes survive SIGKILL: %s"
                               % (self, survivors))
        return self.returncode

    def stderr(self):
        return _read(self.stderr_path).decode(errors="replace")

    def stdout(self):
        return _read(self.stdout_path).decode(errors="replace")

    def grep(self, regex):
        """Lines of stderr matching regex."""
        return [ln for ln in self.stderr().splitlines()
                if re.search(regex, ln)]

    def wait_stderr(self, regex, timeout=10):
        return wait_until(lambda: self.grep(regex), timeout,
                           "%s stderr never matched /%s/" % (self.name, regex))


def wait_until(fn, timeout, what="condition"):
    """Poll fn() every 50 ms until it returns something true (returned) or
    timeout seconds pass (TimeoutError(what))."""
    deadline = time.monotonic() + timeout
    while True:
        got = fn()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError(what)
        time.sleep(0.05)


def milter_spec(target, style="postfix"):
    """Normalise a milter address (int port, object with .port,
    "inet:HOST:PORT", "inet:PORT@HOST", "unix:/p", "local:/p") to Postfix
    ("inet:127.0.0.1:PORT") or Sendmail ("inet:PORT@127.0.0.1") syntax."""
    if hasattr(target, "port"):
        target = target.port
    if isinstance(target, int):
        host, port = "127.0.0.1", target
    elif re.match(r"(unix|local):", target):
        path = target.split(":", 1)[1]
        return ("unix:" if style == "postfix" else "local:") + path
    else:
        m = re.match(r"inet:(\d+)@(.+)$", target) or \
            re.match(r"inet:(.+):(\d+)$", target)
        if not m:
            raise ValueError("bad milter address %r" % target)
        a, b = m.groups()
        host, port = (b, a) if a.isdigit() else (a, b)
    if style == "postfix":
        return "inet:%s:%s" % (host, port)
    return "inet:%s@%s" % (port, host)


class TestMilter(Daemon):
    """tests/integration/test_milter.py as a daemon; see that file."""

    def __init__(self, tmpdir=None, port=None, leadspc=False,
                 name="test-milter"):
        self.port = port or free_port()
        self.log_path = os.path.join(tmpdir or test_tmpdir(),
                                     "%s-%d.jsonl" % (name, self.port))
        argv = [PYTHON, os.path.join(HERE, "test_milter.py"),
                "--port", self.port, "--log", self.log_path]
        super().__init__(argv + (["--leadspc"] if leadspc else []),
                         ready_port=self.port, name=name, logdir=tmpdir,
                         grace=0.5)     # libmilter is slow to exit: kill it

    @property
    def spec(self):
        return milter_spec(self.port)

    def entries(self, cb=None):
        out = []
        for line in _read(self.log_path).decode().splitlines():
            e = json.loads(line)
            if cb is None or e["cb"] == cb:
                out.append(e)
        return out


# ---------------------------------------------------------------------------
# milter wire logger

SMFIC = {"A": "abort", "B": "body", "C": "connect", "D": "macro",
         "E": "eom", "H": "helo", "K": "quit_nc", "L": "header",
         "M": "mail", "N": "eoh", "O": "optneg", "Q": "quit", "R": "rcpt",
         "T": "data", "U": "unknown"}
SMFIR = {"+": "addrcpt", "-": "delrcpt", "2": "addrcpt_par", "4": "shutdown",
         "a": "accept", "b": "replbody", "c": "continue", "d": "discard",
         "e": "chgfrom", "f": "connfail", "h": "addheader", "i": "insheader",
         "l": "setsymlist", "m": "chgheader", "p": "progress",
         "q": "quarantine", "r": "reject", "s": "skip", "t": "tempfail",
         "y": "replycode", "O": "optneg"}


class MilterTap:
    """Transparent TCP proxy MTA -> milter that records every milter packet.

    Point the MTA at tap.spec; packets() returns dicts {"conn", "dir"
    ("mta" or "milter"), "cmd", "name", "data" (bytes)} in arrival order;
    a JSON-lines copy goes to logdir/milter-tap-PORT.jsonl."""

    def __init__(self, upstream, logdir=None, port=0):
        self.upstream = upstream.port if hasattr(upstream, "port") \
            else int(upstream)
        self.logdir, self.port = logdir, port
        self._packets, self._lock = [], threading.Lock()
        self._socks, self._listener = [], None
        self._conn_no = 0
        self.pid = os.getpid()

    def __repr__(self):
        return "MilterTap(port=%s -> %s)" % (self.port, self.upstream)

    @property
    def spec(self):
        return milter_spec(self.port)

    def start(self):
        self._listener = socket.create_server(("127.0.0.1", self.port))
        self.port = self._listener.getsockname()[1]
        self.log_path = os.path.join(self.logdir or test_tmpdir(),
                                     "milter-tap-%d.jsonl" % self.port)
        threading.Thread(target=self._accept, daemon=True).start()
        _register(self)
        return self

    def _accept(self):
        while True:
            try:
                mta, _ = self._listener.accept()
            except OSError:
                return
            try:
                milter = socket.create_connection(("127.0.0.1",
                                                   self.upstream), 5)
                milter.settimeout(None)
            except OSError:
                mta.close()
                continue
            with self._lock:
                self._conn_no += 1
                conn = self._conn_no
                self._socks += [mta, milter]
            for src, dst, d in ((mta, milter, "mta"), (milter, mta, "milter")):
                threading.Thread(target=self._pump, args=(src, dst, d, conn),
                                 daemon=True).start()

    def _pump(self, src, dst, direction, conn):
        buf = b""
        names = SMFIC if direction == "mta" else SMFIR
        while True:
            try:
                data = src.recv(65536)
            except OSError:
                data = b""
            if not data:
                for s in (src, dst):
                    try:
                        s.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass
                return
            buf += data
            while len(buf) >= 4 and len(buf) >= 4 + int.from_bytes(buf[:4],
                                                                  "big"):
                n = int.from_bytes(buf[:4], "big")
                pkt, buf = buf[4:4 + n], buf[4 + n:]
                cmd = chr(pkt[0]) if pkt else ""
                self._add(dict(conn=conn, dir=direction, cmd=cmd,
                               name=names.get(cmd, "?"), data=pkt[1:]))
            try:
                dst.sendall(data)
            except OSError:
                return

    def _add(self, p):
        with self._lock:
            p["t"] = time.time()
            self._packets.append(p)
            entry = dict(p, data=p["data"].decode("latin-1"))
            with open(self.log_path, "a") as f:
                f.write(json.dumps(entry) + "\n")

    def packets(self, conn=None, direction=None, name=None):
        with self._lock:
            pk = list(self._packets)
        return [p for p in pk if (conn is None or p["conn"] == conn)
                and (direction is None or p["dir"] == direction)
                and (name is None or p["name"] == name)]

    def macros(self, conn=None):
        """[(stage name, {macro: value})] from the MTA's SMFIC_MACRO packets,
        in order (stage = the command the macros belong to)."""
        out = []
        for p in self.packets(conn, "mta", "macro"):
            stage = SMFIC.get(chr(p["data"][0]), "?") if p["data"] else "?"
            f = p["data"][1:].split(b"\0")
            out.append((stage, {f[i].decode("latin-1"):
                                f[i + 1].decode("latin-1")
                                for i in range(0, len(f) - 1, 2)}))
        return out

    def headers(self, conn=None):
        """[(name, value bytes)] as sent by the MTA (SMFIC_HEADER)."""
        out = []
        for p in self.packets(conn, "mta", "header"):
            name, value = p["data"].split(b"\0")[:2]
            out.append((name.decode("latin-1"), value))
        return out

    def body(self, conn=None):
        return b"".join(p["data"] for p in self.packets(conn, "mta", "body"))

    def connections(self):
        return sorted({p["conn"] for p in self.packets()})

    def stop(self):
        if self._listener:
            self._listener.close()
            self._listener = None
        with self._lock:
            for s in self._socks:
                try:
                    s.close()
                except OSError:
                    pass
            self._socks = []
        _unregister(self)

    def alive(self):
        return self._listener is not None


# ---------------------------------------------------------------------------
# in-process DNS server and sink, registered for teardown


class DnsServer(dns_server.DnsServer):
    """dns_server.DnsServer that the harness stops after the test."""

    def __repr__(self):
        return "DnsServer(port=%s)" % self.port

    def start(self):
        t0 = time.monotonic()
        super().start()
        _register(self)
        _timing("dns", "start", time.monotonic() - t0)
        return self

    def stop(self):
        t0 = time.monotonic()
        super().stop()
        _unregister(self)
        _timing("dns", "stop", time.monotonic() - t0)


class Sink(smtp_sink.Sink):
    """smtp_sink.Sink writing into tmpdir/sinkN, stopped after the test."""

    def __init__(self, tmpdir=None, port=0):
        super().__init__(_subdir(tmpdir, "sink"), port)

    def __repr__(self):
        return "Sink(port=%s)" % self.port

    def start(self):
        t0 = time.monotonic()
        super().start()
        _register(self)
        _timing("sink", "start", time.monotonic() - t0)
        return self

    def stop(self):
        t0 = time.monotonic()
        super().stop()
        _unregister(self)
        _timing("sink", "stop", time.monotonic() - t0)


# ---------------------------------------------------------------------------
# SMTP client


class SendResult:
    """Outcome of send(): the stage it ended at (connect, ehlo, starttls,
    xclient, auth, mail, rcpt, data, end-of-data), that reply's code/text,
    the queue id when accepted, every RCPT reply, and a transcript."""

    def __init__(self):
        self.stage, self.code, self.text, self.queue_id = None, None, "", None
        self.rcpts, self.transcript = [], []

    @property
    def ok(self):
        return self.stage == "end-of-data" and self.code is not None and \
            200 <= self.code < 300

    def __repr__(self):
        return "<SendResult %s %s %r qid=%s>" % (self.stage, self.code,
                                                  self.text, self.queue_id)


def _eols(data):
    return re.sub(rb"\r?\n|\r", b"\r\n", data)


def send(host, port, mail_from, rcpts, message, xclient=None, auth=None,
         starttls=False, ehlo="client.test.example", timeout=60,
         mail_options=(), fix_eols=True):
    """One SMTP transaction; -> SendResult (never raises for SMTP errors).

    xclient: dict sent as `XCLIENT K=V ...` (Postfix) after EHLO [and
    STARTTLS], followed by a new EHLO (with xclient["HELO"] if given).
    auth: (user, password).  message: bytes or str; bare LF become CRLF
    unless fix_eols=False; dot-stuffing is done here."""
    if isinstance(rcpts, str):
        rcpts = [rcpts]
    if isinstance(message, str):
        message = message.encode()
    res = SendResult()
    smtp = smtplib.SMTP(timeout=timeout)
    smtp._host = host                  # smtplib uses it as the TLS SNI name
    stage = "connect"

    def reply(code, text):
        text = text.decode(errors="replace") if isinstance(text, bytes) \
            else str(text)
        res.stage, res.code, res.text = stage, code, text
        res.transcript.append("%s: %s %s" % (stage, code, text))
        return code

    try:
        if reply(*smtp.connect(host, port)) != 220:
            return res
        stage = "ehlo"
        if reply(*smtp.ehlo(ehlo)) != 250:
            return res
        if starttls:
            stage = "starttls"
            ctx = ssl.create_default_context()
            ctx.check_hostname, ctx.verify_mode = False, ssl.CERT_NONE
            if not smtp.has_extn("starttls"):
                reply(None, "STARTTLS not offered")
                return res
            if reply(*smtp.starttls(context=ctx)) != 220:
                return res
            stage = "ehlo"
            if reply(*smtp.ehlo(ehlo)) != 250:
                return res
        if xclient:
            stage = "xclient"
            args = " ".join("%s=%s" % kv for kv in xclient.items())
            if reply(*smtp.docmd("XCLIENT", args)) != 220:
                return res
            stage = "ehlo"
            if reply(*smtp.ehlo(xclient.get("HELO", ehlo))) != 250:
                return res
        if auth:
            stage = "auth"
            try:
                reply(*smtp.login(*auth))
            except smtplib.SMTPAuthenticationError as e:
                reply(e.smtp_code, e.smtp_error)
                return res
            except smtplib.SMTPNotSupportedError:
                reply(None, "AUTH not offered")
                return res
        stage = "mail"
        if reply(*smtp.mail(mail_from, list(mail_options))) != 250:
            return res
        stage = "rcpt"
        for rcpt in rcpts:
            code, text = smtp.rcpt(rcpt)
            reply(code, text)
            res.rcpts.append((rcpt, code, res.text))
        if not any(200 <= c < 300 for _, c, _ in res.rcpts):
            return res
        stage = "data"
        if reply(*smtp.docmd("DATA")) != 354:
            return res
        stage = "end-of-data"
        data = _eols(message) if fix_eols else message
        if not data.endswith(b"\r\n"):
            data += b"\r\n"
        data = re.sub(rb"(?m)^\.", b"..", data)
        smtp.send(data + b".\r\n")
        if 200 <= reply(*smtp.getreply()) < 300:
            m = re.search(r"queued as (\S+)", res.text) or \
                re.match(r"\d\.\d\.\d+ (\S+) Message accepted", res.text)
            res.queue_id = m.group(1) if m else None
        try:
            smtp.quit()
        except (smtplib.SMTPException, OSError):
            pass
    except smtplib.SMTPServerDisconnected as e:
        reply(None, "disconnected: %s" % e)
    except (OSError, smtplib.SMTPException) as e:
        reply(None, "%s: %s" % (type(e).__name__, e))
    finally:
        smtp.close()
    return res


def make_message(frm="alice@test.example", to="bob@example.net",
                 subject="test message", body="Hello.\r\n", headers=(),
                 date="Mon, 23 Nov 2026 12:00:00 +0000", msgid=None):
    """A small RFC 5322 message as CRLF bytes.  headers: [(name, value)]
    added after the standard ones (value used verbatim, may be folded)."""
    msgid = msgid or "<%s@test.example>" % secrets.token_hex(8)
    lines = ["From: %s" % frm, "To: %s" % to, "Subject: %s" % subject,
             "Date: %s" % date, "Message-ID: %s" % msgid]
    lines += ["%s: %s" % h for h in headers]
    text = "\r\n".join(lines) + "\r\n\r\n" + body
    return _eols(text.encode())


# ---------------------------------------------------------------------------
# MTAs


def write_json(path, data):
    """Write JSON atomically (readers such as dns_server.py --zone never see
    a half-written file)."""
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.rename(tmp, path)


def _run(argv, **kw):
    return subprocess.run([str(a) for a in argv], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, check=False, **kw)


def make_cert(directory, cn=HOSTNAME, days=2):
    """Self-signed RSA-2048 cert.pem/key.pem (key mode 0600)."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    r = _run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes",
              "-days", str(days), "-subj", "/CN=" + cn, "-keyout", key,
              "-out", cert])
    if r.returncode:
        raise RuntimeError("openssl: " + r.stdout.decode())
    os.chmod(key, 0o600)
    return cert, key


def copy_cert(directory):
    """Copy the test certificate (CN=mta.test.example, made once and kept
    in CACHE/tls for a day; RSA key generation costs up to 1 s) into
    directory as cert.pem/key.pem."""
    src = os.path.join(CACHE, "tls")
    os.makedirs(src, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        cert = os.path.join(src, "cert.pem")
        if not os.path.exists(cert) or \
                time.time() - os.path.getmtime(cert) > 86400:
            make_cert(src, days=3)
    for name in ("cert.pem", "key.pem"):
        shutil.copy(os.path.join(src, name), os.path.join(directory, name))
    os.chmod(os.path.join(directory, "key.pem"), 0o600)


def _sasl_users(db, users, default_realm):
    for login, password in users.items():
        user, _, realm = login.partition("@")
        r = _run(["saslpasswd2", "-p", "-c", "-f", db, "-u",
                  realm or default_realm, user], input=password.encode())
        if r.returncode:
            raise RuntimeError("saslpasswd2: " + r.stdout.decode())


class _Mta:
    """Shared client side of Postfix and Sendmail."""

    def send(self, mail_from, rcpts, message, **kw):
        """send() to the plain SMTP port (see send())."""
        return send("127.0.0.1", self.port, mail_from, rcpts, message, **kw)

    def submit(self, mail_from, rcpts, message, auth=None, **kw):
        """send() to the submission port with STARTTLS (if tls) and AUTH as
        the first SASL user unless auth= is given."""
        if auth is None and self.sasl_users:
            auth = next(iter(self.sasl_users.items()))
        kw.setdefault("starttls", self.tls)
        return send("127.0.0.1", self.submission_port, mail_from, rcpts,
                    message, auth=auth, **kw)

    def __repr__(self):
        return "%s(pid=%s, port=%s)" % (type(self).__name__,
                                        self.daemon.pid if self.daemon
                                        else None, self.port)

    def alive(self):
        return bool(self.daemon and self.daemon.alive())


POSTFIX_MASTER_CF = """\
127.0.0.1:{port} inet n - n - - smtpd
  -o syslog_name=pf-test/smtp
127.0.0.1:{submission_port} inet n - n - - smtpd
  -o syslog_name=pf-test/submission
  -o smtpd_sasl_auth_enable=yes
  -o smtpd_client_restrictions=permit_sasl_authenticated,reject
{submission_opts}pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
"""


class Postfix(_Mta):
    """A private Postfix instance (config, queue, data, log under one dir).

    port: plain SMTP (XCLIENT allowed from 127.0.0.0/8, TEST-NETs in
    mynetworks); submission_port: SMTP AUTH (Cyrus sasldb) required, with
    STARTTLS required when tls=True.  Mail is relayed to
    127.0.0.1:relay_port (e.g. a Sink's port).  main: extra main.cf
    settings (override the generated ones)."""

    def __init__(self, tmpdir=None, milter=None, default_action="tempfail",
                 sasl_users=None, tls=True, relay_port=None,
                 submission_daemon_name=None, main=None, milter_macros=None,
                 hostname=HOSTNAME):
        self.base = tmpdir
        self.milter = milter_spec(milter) if milter else ""
        self.default_action = default_action
        self.sasl_users = dict(sasl_users or {"alice@test.example": "secret"})
        self.tls, self.hostname = tls, hostname
        self.relay_port = relay_port.port if hasattr(relay_port, "port") \
            else relay_port
        self.submission_daemon_name = submission_daemon_name
        self.extra_main = dict(main or {})
        self.milter_macros = dict(milter_macros or {})
        self.daemon = None
        self.port = self.submission_port = None

    def main_cf(self):
        d = self.dir
        cf = {
            "compatibility_level": "3.6",
            "queue_directory": d + "/spool",
            "data_directory": d + "/data",
            "maillog_file": d + "/maillog",
            "maillog_file_prefixes": d,
            "syslog_name": "pf-test",
            "mail_owner": "postfix",
            "setgid_group": "postdrop",
            "daemon_directory": "/usr/lib/postfix/sbin",
            "command_directory": "/usr/sbin",
            "meta_directory": "/etc/postfix",
            "shlib_directory": "/usr/lib/postfix",
            "myhostname": self.hostname,
            "mydomain": self.hostname.split(".", 1)[-1],
            "myorigin": "$myhostname",
            "mydestination": "",
            "local_recipient_maps": "",
            "alias_maps": "",
            "alias_database": "",
            "relay_domains": "",
            "inet_interfaces": "127.0.0.1",
            "inet_protocols": "ipv4",
            "mynetworks": "127.0.0.0/8 " + TEST_NETS,
            "relayhost": "[127.0.0.1]:%d" % (self.relay_port or 9),
            "smtp_dns_support_level": "disabled",
            "smtp_tls_security_level": "none",
            "biff": "no",
            "smtpd_banner": "$myhostname ESMTP test",
            "smtpd_relay_restrictions": "permit_mynetworks, "
            "permit_sasl_authenticated, reject_unauth_destination",
            "smtpd_authorized_xclient_hosts": "127.0.0.0/8",
            "maximal_queue_lifetime": "1h",
            "bounce_queue_lifetime": "1h",
            "queue_run_delay": "1s",
            "minimal_backoff_time": "1s",
            "maximal_backoff_time": "5s",
            "smtpd_tls_cert_file": d + "/etc/cert.pem",
            "smtpd_tls_key_file": d + "/etc/key.pem",
            "smtpd_tls_security_level": "may" if self.tls else "none",
            "smtpd_sasl_type": "cyrus",
            "smtpd_sasl_path": "smtpd",
            "smtpd_sasl_auth_enable": "no",
            "smtpd_milters": self.milter,
            "non_smtpd_milters": "$smtpd_milters",
            "milter_default_action": self.default_action,
            "milter_protocol": "6",
            "milter_connect_timeout": "5s",
            "milter_command_timeout": "10s",
            "milter_content_timeout": "30s",
            "milter_connect_macros": "j {daemon_name} {daemon_addr} "
            "{daemon_port} v _ {client_addr} {client_port} {client_name} "
            "{client_ptr}",
            "milter_helo_macros": "{tls_version} {cipher} {cipher_bits} "
            "{cert_subject} {cert_issuer}",
            "milter_mail_macros": "i {auth_type} {auth_authen} {auth_author} "
            "{mail_addr} {mail_host} {mail_mailer}",
            "milter_rcpt_macros": "i {rcpt_addr} {rcpt_host} {rcpt_mailer}",
            "milter_end_of_data_macros": "i",
        }
        cf.update(("milter_%s_macros" % k, v)
                  for k, v in self.milter_macros.items())
        cf.update(self.extra_main)
        return "".join("%s = %s\n" % kv for kv in cf.items())

    def master_cf(self):
        opts = []
        if self.tls:
            opts += ["smtpd_tls_security_level=encrypt",
                     "smtpd_tls_auth_only=yes"]
        if self.submission_daemon_name:
            opts.append("milter_macro_daemon_name=%s"
                        % self.submission_daemon_name)
        return POSTFIX_MASTER_CF.format(
            port=self.port, submission_port=self.submission_port,
            submission_opts="".join("  -o %s\n" % o for o in opts))

    def start(self):
        t0 = time.monotonic()
        self.dir = _subdir(self.base, "postfix")
        self.etc = os.path.join(self.dir, "etc")
        os.makedirs(os.path.join(self.etc, "sasl"))
        self._make_dirs()
        self.port = self.port or free_port()
        self.submission_port = self.submission_port or free_port()
        copy_cert(self.etc)
        db = os.path.join(self.dir, "sasl", "sasldb2")
        with open(os.path.join(self.etc, "sasl", "smtpd.conf"), "w") as f:
            f.write("pwcheck_method: auxprop\nauxprop_plugin: sasldb\n"
                    "mech_list: PLAIN LOGIN\nsasldb_path: %s\n" % db)
        _sasl_users(db, self.sasl_users, self.hostname)
        if os.path.exists(db):
            shutil.chown(db, "postfix")
            os.chmod(db, 0o600)
        self._write_config()
        self.daemon = Daemon(["/usr/lib/postfix/sbin/master", "-c", self.etc,
                              "-d"], ready_port=self.port,
                             name="postfix-master", logdir=self.dir, grace=10)
        try:
            self.daemon.start()
        except StartError as e:        # `postfix check` tells why, on a tty
            r = _run(["script", "-qc", "postfix -c %s check" % self.etc,
                      "/dev/null"])
            raise StartError("%s\npostfix check: %s\nmaillog:\n%s" % (
                e, r.stdout.decode(errors="replace"), self.maillog()[-3000:]))
        _register(self)
        _unregister(self.daemon)       # stopped through self
        _timing("postfix", "start", time.monotonic() - t0)
        return self

    def _make_dirs(self):
        """What `postfix check` would create (from postfix-files), without
        its ~2.8 s: spool subdirs with their owners and modes."""
        dirs = {"data": ("postfix", None, 0o700),
                "spool": ("root", None, 0o755),
                "sasl": ("root", None, 0o755)}
        for d in ("active", "bounce", "corrupt", "defer", "deferred",
                  "flush", "hold", "incoming", "private", "saved", "trace"):
            dirs["spool/" + d] = ("postfix", None, 0o700)
        dirs["spool/maildrop"] = ("postfix", "postdrop", 0o730)
        dirs["spool/public"] = ("postfix", "postdrop", 0o710)
        dirs["spool/pid"] = ("root", None, 0o755)
        for d, (user, group, mode) in dirs.items():
            path = os.path.join(self.dir, d)
            os.makedirs(path, exist_ok=True)
            shutil.chown(path, user, group)
            os.chmod(path, mode)

    def _write_config(self):
        for name, text in (("main.cf", self.main_cf()),
                           ("master.cf", self.master_cf())):
            path = os.path.join(self.etc, name)
            with open(path, "w") as f:
                f.write(text)
            # Postfix re-reads a config file younger than ~2 s every 0.3 s
            # until it is older (2.1 s lost per start): backdate it.
            past = time.time() - 10
            os.utime(path, (past, past))

    def reconfigure(self, **settings):
        """Change main.cf settings and `postfix reload` (SIGHUP the master).
        Note: idle smtpd processes of the old config may serve one more
        client; prefer a fresh instance when that matters."""
        self.extra_main.update(settings)
        if "milter_default_action" in settings:
            self.default_action = settings["milter_default_action"]
        self._write_config()
        self.daemon.signal(signal.SIGHUP)

    def stop(self):
        if not self.daemon:
            return None
        t0 = time.monotonic()
        try:
            return self.daemon.stop()
        finally:
            _unregister(self)
            _timing("postfix", "stop", time.monotonic() - t0)

    # inspection ------------------------------------------------------------
    def maillog(self):
        return _read(os.path.join(self.dir, "maillog")).decode(
            errors="replace")

    def log_lines(self, regex):
        return [ln for ln in self.maillog().splitlines()
                if re.search(regex, ln)]

    def wait_log(self, regex, timeout=10):
        return wait_until(lambda: self.log_lines(regex), timeout,
                           "maillog never matched /%s/" % regex)

    def postconf(self, *names):
        r = _run(["postconf", "-c", self.etc, "-h"] + list(names))
        return r.stdout.decode().splitlines()

    def queue(self):
        """`postqueue -j`: [{"queue_name", "queue_id", "recipients", ...}]."""
        r = _run(["postqueue", "-c", self.etc, "-j"])
        return [json.loads(ln) for ln in r.stdout.decode().splitlines()
                if ln.startswith("{")]

    def queue_ids(self, queue="hold"):
        """Queue ids in spool/<queue> (hold, deferred, active, incoming)."""
        ids = []
        for _, _, files in os.walk(os.path.join(self.dir, "spool", queue)):
            ids += files
        return sorted(ids)

    def hold_queue(self):
        return self.queue_ids("hold")

    def wait_queue(self, queue_id, queue="hold", timeout=10):
        return wait_until(lambda: queue_id in self.queue_ids(queue),
                           timeout, "%s never in %s queue" % (queue_id, queue))

    def postcat(self, queue_id):
        """postcat -q output (envelope, headers, body) as text."""
        r = _run(["postcat", "-c", self.etc, "-q", queue_id])
        return r.stdout.decode(errors="replace")

    def inject(self, message, rcpts, sender="root@" + HOSTNAME):
        """Local submission with sendmail(1) (goes through non_smtpd_milters);
        -> (exit status, output)."""
        r = _run(["/usr/sbin/sendmail", "-C", self.etc, "-f", sender, "--"]
                 + list(rcpts), input=_eols(message) if isinstance(
                     message, bytes) else message.encode())
        return r.returncode, r.stdout.decode(errors="replace")


# ---------------------------------------------------------------------------
# Sendmail from unpacked .debs

SENDMAIL_DEBS = ["sendmail-bin", "sendmail-base", "sendmail-cf",
                 "liblockfile1", "libwrap0", "m4"]


def sendmail_root():
    """CACHE/sendmail-root: the sendmail .debs unpacked (downloaded once with
    apt-get download, under a lock), sendmail made non-setgid."""
    root = os.path.join(CACHE, "sendmail-root")
    stamp = os.path.join(root, ".complete")
    if os.path.exists(stamp):
        return root
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if os.path.exists(stamp):
            return root
        debs = os.path.join(CACHE, "debs")
        os.makedirs(debs, exist_ok=True)
        have = {os.path.basename(p).split("_")[0]
                for p in glob.glob(os.path.join(debs, "*.deb"))}
        missing = [p for p in SENDMAIL_DEBS if p not in have]
        if missing:
            r = _run(["apt-get", "download"] + missing, cwd=debs)
            if r.returncode:
                raise RuntimeError("apt-get download: " + r.stdout.decode())
        shutil.rmtree(root, ignore_errors=True)
        for deb in glob.glob(os.path.join(debs, "*.deb")):
            r = _run(["dpkg", "-x", deb, root])
            if r.returncode:
                raise RuntimeError("dpkg -x %s: %s" % (deb, r.stdout))
        os.chmod(os.path.join(root, "usr/libexec/sendmail/sendmail"), 0o755)
        open(stamp, "w").close()
    return root


SENDMAIL_MC = """\
include(`{root}/usr/share/sendmail/cf/m4/cf.m4')dnl
VERSIONID(`authgate-test')dnl
OSTYPE(`linux')dnl
define(`confDOMAIN_NAME', `{hostname}')dnl
define(`QUEUE_DIR', `{dir}/mqueue')dnl
define(`confPID_FILE', `{dir}/sendmail.pid')dnl
define(`STATUS_FILE', `{dir}/sendmail.st')dnl
define(`confHOST_STATUS_DIRECTORY', `')dnl
define(`confSERVICE_SWITCH_FILE', `{dir}/service.switch')dnl
define(`confCW_FILE', `{dir}/local-host-names')dnl
define(`confCT_FILE', `{dir}/trusted-users')dnl
define(`ALIAS_FILE', `{dir}/aliases')dnl
define(`confDEAD_LETTER_DROP', `{dir}/dead.letter')dnl
define(`confDONT_PROBE_INTERFACES', `True')dnl
define(`confBIND_OPTS', `-DNSRCH -DEFNAMES')dnl
define(`confLOG_LEVEL', `14')dnl
define(`confMILTER_LOG_LEVEL', `14')dnl
define(`confDELIVERY_MODE', `interactive')dnl
define(`confTO_IDENT', `0s')dnl
define(`SMART_HOST', `[127.0.0.1]')dnl
define(`RELAY_MAILER_ARGS', `TCP $h {relay_port}')dnl
define(`ESMTP_MAILER_ARGS', `TCP $h {relay_port}')dnl
define(`SMTP_MAILER_ARGS', `TCP $h {relay_port}')dnl
define(`confMILTER_MACROS_CONNECT', `j, _, {{daemon_name}}, {{daemon_addr}}, \
{{daemon_port}}, {{if_name}}, {{if_addr}}, {{client_addr}}, {{client_port}}, \
{{client_name}}, {{client_ptr}}')dnl
define(`confMILTER_MACROS_HELO', `{{tls_version}}, {{cipher}}, \
{{cipher_bits}}, {{cert_subject}}, {{cert_issuer}}')dnl
define(`confMILTER_MACROS_ENVFROM', `i, {{auth_type}}, {{auth_authen}}, \
{{auth_ssf}}, {{auth_author}}, {{mail_mailer}}, {{mail_host}}, \
{{mail_addr}}')dnl
define(`confMILTER_MACROS_ENVRCPT', `{{rcpt_mailer}}, {{rcpt_host}}, \
{{rcpt_addr}}')dnl
define(`confMILTER_MACROS_EOM', `{{msg_id}}, i')dnl
FEATURE(`nocanonify')dnl
FEATURE(`no_default_msa')dnl
FEATURE(`promiscuous_relay')dnl
FEATURE(`accept_unresolvable_domains')dnl
DAEMON_OPTIONS(`Port={port}, Addr=127.0.0.1, Name={daemon_name}')dnl
DAEMON_OPTIONS(`Port={submission_port}, Addr=127.0.0.1, Name=MSA, M=Ea')dnl
define(`confAUTH_MECHANISMS', `PLAIN LOGIN')dnl
TRUST_AUTH_MECH(`PLAIN LOGIN')dnl
define(`confDONT_BLAME_SENDMAIL', `TrustStickyBit')dnl
{tls}{milter}MAILER(`local')dnl
MAILER(`smtp')dnl
"""


class Sendmail(_Mta):
    """A private Sendmail 8.17 daemon (-bD) from the unpacked .debs, in its
    own UTS + mount namespace (hostname mta.test.example; DIR/sasldb2
    bind-mounted on /etc/sasldb2 there).  port: plain SMTP (Name=MTA,
    the {daemon_name}); submission_port: Name=MSA with AUTH required.
    milter_flags: INPUT_MAIL_FILTER F= ("T" tempfail, "R" reject, "" skip
    when the milter is unreachable).  No syslog on this box: Sendmail's own
    log is lost; use SMTP replies and the milter side."""

    def __init__(self, tmpdir=None, milter=None, milter_flags="T",
                 milter_timeouts="C:5s;S:10s;R:10s;E:30s", sasl_users=None,
                 tls=True, relay_port=None, hostname=HOSTNAME,
                 daemon_name="MTA"):
        self.base = tmpdir
        self.milter = milter_spec(milter, "sendmail") if milter else ""
        self.milter_flags, self.milter_timeouts = milter_flags, milter_timeouts
        self.sasl_users = dict(sasl_users or {"alice@test.example": "secret"})
        self.tls, self.hostname, self.daemon_name = tls, hostname, daemon_name
        self.relay_port = relay_port.port if hasattr(relay_port, "port") \
            else relay_port
        self.daemon = None
        self.port = self.submission_port = None

    def start(self):
        t0 = time.monotonic()
        root = sendmail_root()
        self.dir = _subdir(self.base, "sendmail")
        d = self.dir
        os.makedirs(d + "/mqueue", 0o700)
        files = {"service.switch": "hosts files\naliases files\n",
                 "local-host-names": "", "trusted-users": "", "aliases": ""}
        for name, text in files.items():
            with open(os.path.join(d, name), "w") as f:
                f.write(text)
        self.port = self.port or free_port()
        self.submission_port = self.submission_port or free_port()
        tls = ""
        if self.tls:
            copy_cert(d)
            tls = ("define(`confSERVER_CERT', `{0}/cert.pem')dnl\n"
                   "define(`confSERVER_KEY', `{0}/key.pem')dnl\n"
                   "define(`confCACERT', `{0}/cert.pem')dnl\n"
                   "define(`confCACERT_PATH', `{0}')dnl\n").format(d)
        milter = ""
        if self.milter:
            flags = ", F=%s" % self.milter_flags if self.milter_flags else ""
            milter = ("INPUT_MAIL_FILTER(`testmilter', `S=%s%s, T=%s')dnl\n"
                      % (self.milter, flags, self.milter_timeouts))
        mc = SENDMAIL_MC.format(root=root, dir=d, hostname=self.hostname,
                                relay_port=self.relay_port or 9,
                                port=self.port, daemon_name=self.daemon_name,
                                submission_port=self.submission_port,
                                tls=tls, milter=milter)
        with open(d + "/test.mc", "w") as f:
            f.write(mc)
        env = {"LD_LIBRARY_PATH": root + "/usr/lib/x86_64-linux-gnu"}
        r = subprocess.run([root + "/usr/bin/m4", d + "/test.mc"],
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           env=dict(os.environ, **env), check=False)
        if r.returncode:      # (stderr always has the open-relay warning)
            raise StartError("m4: " + r.stderr.decode())
        with open(d + "/test.cf", "wb") as f:
            f.write(r.stdout)
        mount = ""
        if self.sasl_users and os.path.exists("/etc/sasldb2"):
            _sasl_users(d + "/sasldb2", self.sasl_users, self.hostname)
            mount = "mount --bind %s/sasldb2 /etc/sasldb2 && " % d
        script = ("hostname %s && %sexec %s/usr/libexec/sendmail/sendmail "
                  "-C %s/test.cf -bD" % (self.hostname, mount, root, d))
        self.daemon = Daemon(["unshare", "--uts", "-m", "sh", "-c", script],
                             ready_port=self.port, env=env,
                             name="sendmail-daemon",
                             logdir=d, grace=10)
        self.daemon.start()
        _register(self)
        _unregister(self.daemon)
        _timing("sendmail", "start", time.monotonic() - t0)
        return self

    def stop(self):
        if not self.daemon:
            return None
        t0 = time.monotonic()
        try:
            return self.daemon.stop()
        finally:
            _unregister(self)
            _timing("sendmail", "stop", time.monotonic() - t0)

    def queue_ids(self, prefix="qf"):
        """Queue ids with a <prefix> file in mqueue (qf: queued, hf:
        quarantined)."""
        return sorted(f[2:] for f in os.listdir(self.dir + "/mqueue")
                      if f.startswith(prefix))

    def quarantined(self):
        return self.queue_ids("hf")


# ---------------------------------------------------------------------------
# authgate


def default_authgate_bin():
    return os.environ.get("AUTHGATE_BIN") or os.path.join(
        REPO, "build", "filter", "authgate")


class Authgate(Daemon):
    """authgate -f -c CONF -o milter_socket=inet:PORT@127.0.0.1
    [-o dns_servers=127.0.0.1@DNSPORT] [args...].

    settings: dict written to CONF as `name = value` lines (True/False ->
    yes/no, lists joined with ", ").  dns: a port or an object with .port
    (e.g. DnsServer).  Use .spec as the MTA's milter."""

    def __init__(self, tmpdir=None, binary=None, settings=None, port=None,
                 dns=None, args=(), env=None, grace=10, timeout=15):
        self.base = tmpdir or test_tmpdir()
        self.binary = binary or default_authgate_bin()
        self.settings = {}
        # Several instances may run at once: no shared pid file; as root,
        # an existing unprivileged user (tests must not create users).
        self.settings["pid_file"] = ""
        if os.getuid() == 0:
            self.settings["user"] = "nobody"
        self.settings.update(settings or {})
        self.port = port or free_port()
        self.conf = os.path.join(self.base, "authgate-%d.conf" % self.port)
        argv = [self.binary, "-f", "-c", self.conf, "-o",
                "milter_socket=inet:%d@127.0.0.1" % self.port]
        if dns is None:
            # Hermetic always: with no zone given, an empty server on
            # loopback answers every query (NXDOMAIN); the real DNS is
            # never reached.
            dns = DnsServer().start()
            self.own_dns = dns
        if dns is not None:
            argv += ["-o", "dns_servers=127.0.0.1@%d"
                     % (dns.port if hasattr(dns, "port") else dns)]
        super().__init__(argv + list(args), ready_port=self.port, env=env,
                         name="authgate", logdir=self.base, grace=grace,
                         timeout=timeout)

    @property
    def spec(self):
        return milter_spec(self.port)

    def write_config(self):
        lines = []
        for name, value in self.settings.items():
            if isinstance(value, bool):
                value = "yes" if value else "no"
            elif isinstance(value, (list, tuple)):
                value = ", ".join(str(v) for v in value)
            value = str(value)
            if "\n" in value:
                raise ValueError("newline in setting %s" % name)
            lines.append("%s = %s\n" % (name, value))
        with open(self.conf, "w") as f:
            f.write("".join(lines))

    def start(self):
        if not os.access(self.binary, os.X_OK):
            raise StartError("authgate binary %s not found (set AUTHGATE_BIN)"
                             % self.binary)
        self.write_config()
        return super().start()

    def reload(self, **settings):
        """Update settings, rewrite CONF and send SIGHUP."""
        self.settings.update(settings)
        self.write_config()
        self.signal(signal.SIGHUP)
