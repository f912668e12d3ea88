#!/usr/bin/python3
"""pyspf_check.py - a stand-in for `authgate check`, SPF part only, on pyspf.

The reference engine for test_spf_suite.py (`--engine pyspf`): the same
command line and output format as `authgate check`, with the SPF results
computed by pyspf (python3-spf), the implementation the RFC 7208 test suite
comes from.  It validates the suite driver independently of authgate.

    pyspf_check.py [-c FILE] [-o name=value]... check [-c FILE] [-o ...]
        --client-ip IP [--helo NAME] [--mail-from ADDR] [--rcpt ADDR]...
        [MESSAGE_FILE|-]

Settings (config file `name = value` lines, then -o, the later wins):
authserv_id, dns_servers (`ADDR[@PORT]`, the first one is used),
dns_timeout (`1s`, `500ms`; per lookup), spf_fail_action
(none|reject|tempfail; default none), spf_default_explanation.  Any other
name is a usage error, as in authgate.

Output, one header per line, then the verdict:
    Authentication-Results: ID; spf=R smtp.helo=H; spf=R
        reason="..." smtp.mailfrom=M          (on one line)
    action: accept
or, for a fail of the MAIL FROM identity with spf_fail_action = reject (a
rejected message gets no header):
    action: reject 550 5.7.23 <explanation>
The HELO result comes first on purpose, so that a driver that takes the
first spf= result instead of the smtp.mailfrom one is caught.  Exit 0 for
any verdict, 2 for usage/config errors, 1 if pyspf itself crashed.

DNS: pyspf's own dnspython lookup code (spf.DNSLookup_dnspython) runs
unchanged; only dnspython's default resolver is replaced by one that asks
ADDR port PORT, and pyspf's per-lookup timeout is set to dns_timeout.
"""

import os
import re
import sys

sys.dont_write_bytecode = True
# dnspython imports httpx and requests for DNS over HTTPS: 0.25 s of the
# 0.5 s a run costs.  Plain DNS does not need them.
for _mod in ("httpx", "requests"):
    sys.modules.setdefault(_mod, None)

import dns.resolver  # noqa: E402  (python3-dnspython)
import spf  # noqa: E402  (python3-spf)

KNOWN = ("authserv_id", "dns_servers", "dns_timeout", "spf_fail_action",
         "spf_default_explanation")
ACTIONS = ("none", "accept", "reject", "tempfail")
OLD_RESULTS = {"unknown": "permerror", "error": "temperror"}


def usage(msg):
    print("pyspf_check: %s" % msg, file=sys.stderr)
    sys.exit(2)


def parse_time(text):
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*", text)
    if not m:
        usage("bad time value %r" % text)
    mult = {"ms": 0.001, "s": 1, None: 1, "m": 60, "h": 3600, "d": 86400}
    return float(m.group(1)) * mult[m.group(2)]


def read_config(path, settings):
    try:
        with open(path) as f:
            lines = f.read().splitlines()
    except OSError as e:
        usage("%s: %s" % (path, e.strerror))
    for n, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if "=" not in line:
            usage("%s:%d: expected name = value" % (path, n))
        name, value = line.split("=", 1)
        set_param(settings, name.strip(), value.strip(), "%s:%d" % (path, n))


def set_param(settings, name, value, where):
    if name not in KNOWN:
        usage("%s: unknown parameter '%s'" % (where, name))
    settings[name] = value


def parse_args(argv):
    settings, ident = {}, {"rcpt": []}
    conf, overrides, rest, seen_check = None, [], [], False
    i = 0
    while i < len(argv):
        a = argv[i]

        def arg():
            if i + 1 >= len(argv):
                usage("%s needs an argument" % a)
            return argv[i + 1]
        if a == "check" and not seen_check:
            seen_check = True
        elif a == "-c":
            conf = arg()
            i += 1
        elif a == "-o":
            overrides.append(arg())
            i += 1
        elif a in ("--client-ip", "--helo", "--mail-from", "--rcpt"):
            key = a[2:].replace("-", "_")
            if key == "rcpt":
                ident["rcpt"].append(arg())
            else:
                ident[key] = arg()
            i += 1
        elif a.startswith("-") and a != "-":
            usage("unknown option %s" % a)
        else:
            rest.append(a)
        i += 1
    if not seen_check:
        usage("only the check command is implemented")
    if conf:
        read_config(conf, settings)
    for o in overrides:
        if "=" not in o:
            usage("-o %s: expected name=value" % o)
        name, value = o.split("=", 1)
        set_param(settings, name.strip(), value.strip(), "-o")
    if "client_ip" not in ident:
        usage("check: --client-ip is required")
    if len(rest) > 1:
        usage("check: one message file at most")
    return settings, ident, (rest[0] if rest else "-")


def setup_dns(settings):
    """Point dnspython's default resolver (which pyspf uses) at dns_servers;
    -> the per-lookup timeout for spf.query()."""
    timeout = parse_time(settings.get("dns_timeout", "5s"))
    servers = settings.get("dns_servers", "").replace(",", " ").split()
    if servers:
        addr, _, port = servers[0].partition("@")
        res = dns.resolver.Resolver(configure=False)
        res.nameservers = [addr]
        res.port = int(port) if port else 53
        res.timeout = res.lifetime = timeout
        dns.resolver.default_resolver = res
    return timeout


def quote(value):
    """An A-R value: a token as is, anything else as a quoted-string."""
    if re.fullmatch(r"[A-Za-z0-9!#$%&'*+.^_`{|}~@-]+", value or "-"):
        return value
    return '"%s"' % re.sub(r'(["\\])', r"\\\1", value)


def spf_check(ip, mail_from, helo, receiver, timeout, default_exp):
    q = spf.query(i=ip, s=mail_from, h=helo, receiver=receiver,
                  timeout=timeout)
    q.set_default_explanation(default_exp)
    res, code, exp = q.check()
    return OLD_RESULTS.get(res, res), exp


def main(argv):
    settings, ident, msgfile = parse_args(argv)
    action = settings.get("spf_fail_action", "none")
    if action not in ACTIONS:
        usage("spf_fail_action: expected one of %s" % ", ".join(ACTIONS))
    if msgfile == "-":
        sys.stdin.buffer.read()
    else:
        try:
            with open(msgfile, "rb") as f:
                f.read()
        except OSError as e:
            usage("%s: %s" % (msgfile, e.strerror))
    timeout = setup_dns(settings)
    authserv = settings.get("authserv_id") or os.uname().nodename
    default_exp = settings.get("spf_default_explanation",
                               spf.EXPLANATIONS["fail"])
    ip, helo = ident["client_ip"], ident.get("helo", "")
    mail_from = ident.get("mail_from")

    results = []
    if helo:
        h_res, h_exp = spf_check(ip, "", helo, authserv, timeout, default_exp)
        results.append("spf=%s smtp.helo=%s" % (h_res, quote(helo)))
    verdict = "accept"
    if mail_from is not None:
        if mail_from == "" and helo:       # RFC 7208 2.4: postmaster@HELO
            m_res, exp = h_res, h_exp
            who = "postmaster@" + helo
        else:
            m_res, exp = spf_check(ip, mail_from, helo, authserv, timeout,
                                   default_exp)
            who = mail_from
        results.append('spf=%s reason="pyspf; %s" smtp.mailfrom=%s'
                       % (m_res, m_res, quote(who)))
        if m_res == "fail" and action == "reject":
            verdict = "reject 550 5.7.23 %s" % exp
        elif m_res == "fail" and action == "tempfail":
            verdict = "tempfail 451 4.7.23 %s" % exp
    if verdict == "accept":             # a rejected message gets no header
        print("Authentication-Results: %s; %s"
              % (authserv, "; ".join(results) if results else "none"))
    print("action: %s" % verdict)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
