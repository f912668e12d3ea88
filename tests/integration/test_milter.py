#!/usr/bin/python3
"""Test milter (python3-milter / libmilter) used by the harness self-tests.

    test_milter.py --port P --log FILE [--leadspc]

Behaviour:
* RCPT containing "eom-reject" / "eom-tempfail": 550 5.7.1 / 451 4.7.1 at
  end of message; else containing "reject": 550 5.7.1 at RCPT; "tempfail":
  451 4.7.1 at RCPT; "quarantine": smfi_quarantine at end of message.
* At end of message: adds `X-Test-Milter: auth=<{auth_authen}>
  daemon=<{daemon_name}> tls=<{tls_version}> client=<{client_addr}>`,
  deletes every X-Delete-Me header (highest index first), then runs the
  operations of an `X-Test-Ops:` header, `;`-separated, in order:
      del NAME IDX            smfi_chgheader(NAME, IDX, NULL)
      chg NAME IDX VALUE      smfi_chgheader(NAME, IDX, VALUE)
      ins IDX NAME VALUE      smfi_insheader(IDX, NAME, VALUE)
      add NAME VALUE          smfi_addheader(NAME, VALUE)
  (VALUE may use \\r \\n \\t escapes.)
* --leadspc negotiates SMFIP_HDR_LEADSPC.
* Every callback is logged to FILE as one JSON line: {"conn", "cb",
  "args": [repr(arg)...], "macros": {name: value} (what smfi_getsymval
  returns at that point), ...}.
"""

import argparse
import itertools
import json
import re
import threading
import time

import Milter

MACROS = ["j", "_", "i", "v", "{daemon_name}", "{daemon_addr}",
          "{daemon_port}", "{if_name}", "{if_addr}", "{client_addr}",
          "{client_port}", "{client_name}", "{client_ptr}",
          "{client_resolve}", "{tls_version}", "{cipher}", "{cipher_bits}",
          "{cert_subject}", "{cert_issuer}", "{auth_type}", "{auth_authen}",
          "{auth_author}", "{auth_ssf}", "{mail_addr}", "{mail_host}",
          "{mail_mailer}", "{rcpt_addr}", "{rcpt_host}", "{rcpt_mailer}",
          "{msg_id}"]

_log_lock = threading.Lock()
_log_file = None
_conn_ids = itertools.count(1)


def log(entry):
    entry["t"] = round(time.time(), 3)
    line = json.dumps(entry, ensure_ascii=True)
    with _log_lock:
        with open(_log_file, "a") as f:
            f.write(line + "\n")


def unescape(s):
    return s.replace("\\r", "\r").replace("\\n", "\n").replace("\\t", "\t")


class TestMilter(Milter.Base):

    def __init__(self):
        super().__init__()
        self.conn = next(_conn_ids)
        self.seen = {}

    def _log(self, cb, *args, **extra):
        macros = {}
        for m in MACROS:
            v = self.getsymval(m)
            if v is not None:
                macros[m] = v
        self.seen.update(macros)
        log(dict(conn=self.conn, cb=cb, args=[repr(a) for a in args],
                 macros=macros, **extra))

    def negotiate(self, opts):
        offered = list(opts)
        rc = super().negotiate(opts)
        log(dict(conn=self.conn, cb="negotiate", offered=offered,
                 protocol=self._protocol,
                 leadspc=bool(self._protocol & Milter.P_HDR_LEADSPC)))
        return rc

    def connect(self, hostname, family, hostaddr):
        self._log("connect", hostname, hostaddr)
        return Milter.CONTINUE

    def hello(self, heloname):
        self._log("helo", heloname)
        return Milter.CONTINUE

    def envfrom(self, mailfrom, *params):
        self.rcpts, self.headers, self.action = [], [], None
        self._log("envfrom", mailfrom, *params)
        return Milter.CONTINUE

    def envrcpt(self, to, *params):
        self._log("envrcpt", to, *params)
        low = to.lower()
        if "eom-reject" in low or "eom-tempfail" in low:
            self.action = "eom-reject" if "reject" in low else "eom-tempfail"
        elif "reject" in low:
            self.setreply("550", "5.7.1", "authgate-test: rejected by milter")
            return Milter.REJECT
        elif "tempfail" in low:
            self.setreply("451", "4.7.1", "authgate-test: try again later")
            return Milter.TEMPFAIL
        elif "quarantine" in low:
            self.action = "quarantine"
        self.rcpts.append(to)
        return Milter.CONTINUE

    def data(self):
        self._log("data")
        return Milter.CONTINUE

    def header(self, name, value):
        if isinstance(name, bytes):
            name = name.decode("latin-1")
        self.headers.append((name, value))
        self._log("header", name, value)
        return Milter.CONTINUE
    header.error_strategy = "bytes"          # get the value as raw bytes

    def eoh(self):
        self._log("eoh")
        return Milter.CONTINUE

    def body(self, chunk):
        self._log("body", chunk, size=len(chunk))
        return Milter.CONTINUE

    def eom(self):
        self._log("eom")
        if self.action == "eom-reject":
            self.setreply("550", "5.7.1", "authgate-test: rejected at eom")
            return Milter.REJECT
        if self.action == "eom-tempfail":
            self.setreply("451", "4.7.1", "authgate-test: tempfail at eom")
            return Milter.TEMPFAIL
        s = self.seen
        self.addheader("X-Test-Milter", "auth=<%s> daemon=<%s> tls=<%s> "
                       "client=<%s>" % (s.get("{auth_authen}", ""),
                                        s.get("{daemon_name}", ""),
                                        s.get("{tls_version}", ""),
                                        s.get("{client_addr}", "")))
        dels = [h for h in self.headers if h[0].lower() == "x-delete-me"]
        for idx in range(len(dels), 0, -1):
            self.chgheader("X-Delete-Me", idx, None)
        for name, value in self.headers:
            if name.lower() == "x-test-ops":
                self._ops(value.decode("latin-1"))
        if self.action == "quarantine":
            self.quarantine("authgate-test: quarantined")
        return Milter.CONTINUE

    def _ops(self, spec):
        for op in filter(None, (o.strip() for o in spec.split(";"))):
            f = op.split(None, 3)
            if f[0] == "del":
                self.chgheader(f[1], int(f[2]), None)
            elif f[0] == "chg":
                self.chgheader(f[1], int(f[2]), unescape(f[3]))
            elif f[0] == "ins":
                self.addheader(f[2], unescape(f[3]), int(f[1]))
            elif f[0] == "add":      # value: everything after one space
                name, value = re.match(r"add\s+(\S+) (.*)$", op).groups()
                self.addheader(name, unescape(value))
            log(dict(conn=self.conn, cb="op", op=op))

    def abort(self):
        self._log("abort")
        return Milter.CONTINUE

    def close(self):
        log(dict(conn=self.conn, cb="close"))
        return Milter.CONTINUE


def main():
    global _log_file
    ap = argparse.ArgumentParser(description="authgate harness test milter")
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--log", required=True)
    ap.add_argument("--leadspc", action="store_true",
                    help="negotiate SMFIP_HDR_LEADSPC")
    args = ap.parse_args()
    _log_file = args.log
    cls = TestMilter
    if args.leadspc:
        cls = Milter.header_leading_space(
            type("TestMilterLeadspc", (TestMilter,), {}))
    Milter.factory = cls
    Milter.runmilter("testmilter", "inet:%d@127.0.0.1" % args.port, 30)


if __name__ == "__main__":
    main()
