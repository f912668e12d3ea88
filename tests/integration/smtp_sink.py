#!/usr/bin/python3
"""SMTP sink on loopback: accepts every message and stores it.

Each message is written atomically to OUTDIR/msg-<n>.eml (n = 1, 2, ...)
as received (CRLF line ends, dot-unstuffed), preceded by one
`X-Sink-Mail-From: <MAIL FROM argument>` line and one `X-Sink-Rcpt-To:`
line per recipient.

In-process:
    sink = Sink(outdir).start()      # sink.port
    ... sink.wait_for(1, timeout=10) -> [SinkMessage]; sink.stop()
CLI:
    smtp_sink.py --port P OUTDIR     (P=0 picks a port; it is printed)
"""

import argparse
import email.parser
import email.policy
import glob
import os
import re
import signal
import socketserver
import threading
import time


class SinkMessage:
    """One stored message: raw bytes plus an email.message (compat32)."""

    def __init__(self, path):
        self.path = path
        with open(path, "rb") as f:
            self.raw = f.read()
        head = self.raw.split(b"\r\n\r\n", 1)[0].decode("latin-1")
        self.mail_from = re.search(r"^X-Sink-Mail-From: (.*)\r$",
                                   head + "\r", re.M).group(1)
        self.rcpts = re.findall(r"^X-Sink-Rcpt-To: (.*)\r$", head + "\r",
                                re.M)
        lf = self.raw.replace(b"\r\n", b"\n")
        self.msg = email.parser.BytesParser(
            policy=email.policy.compat32).parsebytes(lf)
        self.body = self.raw.split(b"\r\n\r\n", 1)[1] \
            if b"\r\n\r\n" in self.raw else b""

    def __getitem__(self, name):
        return self.msg[name]

    def get_all(self, name):
        return self.msg.get_all(name) or []

    def headers(self):
        """[(name, value)] in order, values unfolded-as-stored (compat32)."""
        return list(self.msg.items())

    def __repr__(self):
        return "<SinkMessage %s from=%s to=%s>" % (
            os.path.basename(self.path), self.mail_from, self.rcpts)


def _num(path):
    return int(re.search(r"msg-(\d+)\.eml$", path).group(1))


def read_messages(outdir):
    """All messages in outdir, in arrival order."""
    paths = sorted(glob.glob(os.path.join(outdir, "msg-*.eml")), key=_num)
    return [SinkMessage(p) for p in paths]


class _Handler(socketserver.StreamRequestHandler):
    timeout = 120

    def reply(self, line):
        self.wfile.write(line.encode() + b"\r\n")
        self.wfile.flush()

    def handle(self):
        try:
            self._session()
        except OSError:          # client went away (e.g. MTA being stopped)
            pass

    def _session(self):
        sink = self.server.sink
        self.reply("220 sink.test.example ESMTP test sink")
        mail_from, rcpts = None, []
        while True:
            line = self.rfile.readline(65536)
            if not line:
                return
            cmd = line.decode("latin-1").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "EHLO":
                self.reply("250-sink.test.example\r\n250-PIPELINING\r\n"
                           "250-8BITMIME\r\n250-SIZE 104857600\r\n"
                           "250 SMTPUTF8")
            elif verb == "HELO":
                self.reply("250 sink.test.example")
            elif verb == "MAIL" and cmd[5:10].upper() == "FROM:":
                mail_from, rcpts = cmd[10:].strip(), []
                self.reply("250 2.1.0 Ok")
            elif verb == "RCPT" and cmd[5:8].upper() == "TO:":
                if mail_from is None:
                    self.reply("503 5.5.1 need MAIL")
                    continue
                rcpts.append(cmd[8:].strip())
                self.reply("250 2.1.5 Ok")
            elif verb == "DATA":
                if not rcpts:
                    self.reply("503 5.5.1 need RCPT")
                    continue
                self.reply("354 End data with <CR><LF>.<CR><LF>")
                data = self._read_data()
                if data is None:
                    return
                n = sink.store(mail_from, rcpts, data)
                self.reply("250 2.0.0 Ok: queued as sink%d" % n)
                mail_from, rcpts = None, []
            elif verb == "RSET":
                mail_from, rcpts = None, []
                self.reply("250 2.0.0 Ok")
            elif verb == "NOOP":
                self.reply("250 2.0.0 Ok")
            elif verb == "QUIT":
                self.reply("221 2.0.0 Bye")
                return
            else:
                self.reply("502 5.5.2 command not implemented")

    def _read_data(self):
        lines = []
        while True:
            line = self.rfile.readline(1 << 20)
            if not line:
                return None
            if line in (b".\r\n", b".\n"):
                return b"".join(lines)
            lines.append(line[1:] if line.startswith(b".") else line)


class Sink:
    """Threaded SMTP sink on 127.0.0.1 writing OUTDIR/msg-<n>.eml."""

    def __init__(self, outdir, port=0, address="127.0.0.1"):
        self.outdir, self.port, self.address = outdir, port, address
        self._n, self._lock = 0, threading.Lock()
        self._server = None
        self.pid = os.getpid()

    def store(self, mail_from, rcpts, data):
        with self._lock:
            self._n += 1
            n = self._n
        head = "X-Sink-Mail-From: %s\r\n" % mail_from
        head += "".join("X-Sink-Rcpt-To: %s\r\n" % r for r in rcpts)
        tmp = os.path.join(self.outdir, ".tmp-msg-%d" % n)
        with open(tmp, "wb") as f:
            f.write(head.encode("latin-1") + data)
        os.rename(tmp, os.path.join(self.outdir, "msg-%d.eml" % n))
        return n

    def start(self):
        os.makedirs(self.outdir, exist_ok=True)
        self._n = max([_num(p) for p in glob.glob(
            os.path.join(self.outdir, "msg-*.eml"))] or [0])

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((self.address, self.port), _Handler)
        self._server.sink = self
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, args=(0.05,),
                         daemon=True).start()
        return self

    def stop(self):
        if self._server:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def alive(self):
        return self._server is not None

    def messages(self):
        return read_messages(self.outdir)

    def wait_for(self, n, timeout=10.0):
        """Wait until at least n messages arrived; return all of them.
        Raises TimeoutError (with what did arrive) otherwise."""
        return wait_for(self.outdir, n, timeout)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def wait_for(outdir, n, timeout=10.0):
    deadline = time.monotonic() + timeout
    while True:
        msgs = read_messages(outdir)
        if len(msgs) >= n:
            return msgs
        if time.monotonic() > deadline:
            raise TimeoutError("sink %s: %d message(s) after %.1f s, "
                               "wanted %d" % (outdir, len(msgs), timeout, n))
        time.sleep(0.02)


def main():
    ap = argparse.ArgumentParser(description="SMTP sink for tests")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--address", default="127.0.0.1")
    ap.add_argument("outdir")
    args = ap.parse_args()
    sink = Sink(args.outdir, args.port, args.address).start()
    print("smtp_sink: listening on %s port %d, writing %s"
          % (args.address, sink.port, args.outdir), flush=True)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *a: stop.set())
    stop.wait()
    sink.stop()


if __name__ == "__main__":
    main()
