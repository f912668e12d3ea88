#!/usr/bin/python3
"""test_contrib.py - the MTA snippets in contrib/ work as written.

contrib/postfix/main.cf.snippet and master.cf.snippet are applied to the
harness's private Postfix (main.cf settings as given; the submission
service of master.cf as given, on a loopback port), contrib/sendmail/
authgate.mc goes into the private Sendmail's .mc in place of the harness's
own milter lines. Only the milter address is changed, to the test's
authgate. Through each MTA a message must arrive with our
Authentication-Results header, and an SMTP AUTH client's login must reach
authgate ({auth_authen}: `auth=` in its log line). A static check keeps
the snippets' macro lists in step with the macros filter/milter.c asks
for.
"""
import os
import re
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402
import tap  # noqa: E402

SRC = os.environ.get("AUTHGATE_SRCDIR") or H.REPO
CONTRIB = os.path.join(SRC, "contrib")
SNIPPET_MILTER_PF = "inet:127.0.0.1:8894"
SNIPPET_MILTER_SM = "inet:8894@127.0.0.1"


def read(*path):
    with open(os.path.join(CONTRIB, *path)) as f:
        return f.read()


def main_cf_settings(text):
    """{name: value} of a main.cf fragment (comments, continuation lines)."""
    out, last = {}, None
    for line in text.splitlines():
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        if line[0] in " \t":
            out[last] += " " + line.strip()
            continue
        name, _, value = line.partition("=")
        last = name.strip()
        out[last] = value.strip()
    return out


def milter_macros():
    """{stage: [macro]} that filter/milter.c asks the MTA for."""
    with open(os.path.join(SRC, "filter", "milter.c")) as f:
        code = f.read()
    got = {}
    for stage, names in re.findall(
            r'smfi_setsymlist\(\s*ctx,\s*SMFIM_(\w+),\s*"([^"]*)"\)', code):
        got[stage] = names.split()
    return got


PF_STAGE = {"CONNECT": "connect", "HELO": "helo", "ENVFROM": "mail",
            "ENVRCPT": "rcpt", "EOH": "end_of_header", "EOM": "end_of_data"}


class SnippetPostfix(H.Postfix):
    """The harness's Postfix with its submission service replaced by
    contrib/postfix/master.cf.snippet (service name -> the loopback port,
    chroot off as every service of the private instance, milter address
    -> the test's authgate)."""

    def __init__(self, milter_spec, **kw):
        super().__init__(**kw)
        self.snippet_milter = milter_spec

    def master_cf(self):
        lines = super().master_cf().splitlines(True)
        sub = "127.0.0.1:%d " % self.submission_port
        start = next(i for i, ln in enumerate(lines) if ln.startswith(sub))
        end = start + 1
        while end < len(lines) and lines[end][:1] in (" ", "\t"):
            end += 1
        entry = []
        for ln in read("postfix", "master.cf.snippet").splitlines(True):
            if ln.startswith("#") or not ln.strip():
                continue
            if ln.startswith("submission "):
                f = ln.split()
                f[0], f[4] = sub.strip(), "n"
                ln = " ".join(f) + "\n"
            entry.append(ln.replace(SNIPPET_MILTER_PF, self.snippet_milter))
        return "".join(lines[:start] + entry + lines[end:])


class SnippetSendmail(H.Sendmail):
    """The harness's Sendmail with contrib/sendmail/authgate.mc in place of
    its own milter macro lists and INPUT_MAIL_FILTER (milter address ->
    the test's authgate)."""

    def __init__(self, milter_spec, **kw):
        super().__init__(milter=None, **kw)
        self.snippet_milter = milter_spec

    def start(self):
        mc = read("sendmail", "authgate.mc").replace(SNIPPET_MILTER_SM,
                                                     self.snippet_milter)
        mc = mc.replace("{", "{{").replace("}", "}}")  # str.format template
        template = "".join(
            ln for ln in H.SENDMAIL_MC.splitlines(True)
            if not ln.startswith("define(`confMILTER_MACROS_"))
        template = template.replace("{tls}{milter}", "{tls}" + mc + "{milter}")
        saved, H.SENDMAIL_MC = H.SENDMAIL_MC, template
        try:
            return super().start()
        finally:
            H.SENDMAIL_MC = saved

    def cf_line(self, regex):
        with open(os.path.join(self.dir, "test.cf")) as f:
            return [ln for ln in f if re.search(regex, ln)]

    def cf_option(self, name):
        with open(os.path.join(self.dir, "test.cf")) as f:
            for line in f:
                if line.startswith("O %s=" % name):
                    return line.split("=", 1)[1].strip()
        return None


def ar_of(msg):
    return [H.unfold(v) for v in msg.get_all("Authentication-Results") or []]


@tap.test
def snippets_ask_for_every_macro_authgate_reads(t):
    want = milter_macros()
    t.ok(want.get("CONNECT") and want.get("ENVFROM"),
         "found the macro requests in filter/milter.c: %r" % want)
    pf = main_cf_settings(read("postfix", "main.cf.snippet"))
    mc = read("sendmail", "authgate.mc")
    for stage, names in sorted(want.items()):
        pf_list = pf.get("milter_%s_macros" % PF_STAGE[stage], "").split()
        m = re.search(r"define\(`confMILTER_MACROS_%s', `([^']*)'\)" % stage,
                      mc)
        sm_list = [x.strip() for x in m.group(1).split(",")] if m else []
        for name in names:
            t.contains(pf_list, name, "main.cf.snippet milter_%s_macros has %s"
                       % (PF_STAGE[stage], name))
            t.contains(sm_list, name, "authgate.mc confMILTER_MACROS_%s has %s"
                       % (stage, name))


@tap.test
def postfix_snippets(t):
    sink = H.Sink().start()
    ag = H.Authgate(settings={"spf_enable": False,
                              "dmarc_enable": False}).start()
    main = main_cf_settings(read("postfix", "main.cf.snippet"))
    t.eq(main.get("smtpd_milters"), SNIPPET_MILTER_PF,
         "main.cf.snippet names authgate's default socket")
    main["smtpd_milters"] = ag.spec
    pf = SnippetPostfix(ag.spec, relay_port=sink, main=main).start()
    t.eq(pf.postconf("milter_default_action", "milter_protocol"),
         ["tempfail", "6"], "the snippet's settings are in force")

    # inbound, port 25 (client address set with XCLIENT)
    r = pf.send("alice@example.org", ["bob@example.net"], H.make_message(),
                xclient={"ADDR": "198.51.100.7", "HELO": "client.example"})
    t.eq((r.stage, r.code), ("end-of-data", 250), "inbound: accepted")
    m = sink.wait_for(1, timeout=20)[0]
    t.eq(ar_of(m), ["%s; dkim=none" % H.HOSTNAME],
         "inbound: our A-R, authserv-id from the j macro")
    t.ok(ag.wait_stderr(r"%s: ip=198\.51\.100\.7 helo=client\.example "
                        r"from=<alice@example\.org> rcpts=1 internal=no"
                        % re.escape(r.queue_id or "?")),
         "inbound: {client_addr} and i reached authgate")

    # submission, port 587: STARTTLS + AUTH through the master.cf snippet
    r = pf.submit("alice@test.example", ["bob@example.net"],
                  H.make_message(frm="alice@test.example",
                                 subject="submitted"))
    t.eq((r.stage, r.code), ("end-of-data", 250), "submission: accepted")
    t.ok(ag.wait_stderr(r"%s: .*auth=alice@test\.example internal=yes"
                        % re.escape(r.queue_id or "?")),
         "submission: {auth_authen} reached authgate")
    m = [x for x in sink.wait_for(2, timeout=20)
         if x["Subject"] == "submitted"][0]
    t.eq(len(ar_of(m)), 1, "submission: our A-R")
    t.match(r"^%s; " % re.escape(H.HOSTNAME), ar_of(m)[0])
    t.ok(pf.log_lines(r"postfix/submission/smtpd\[\d+\]: %s: client="
                      % re.escape(r.queue_id)),
         "the mail went through the snippet's submission service")

    # without AUTH the submission service refuses to relay
    r = pf.submit("mallory@example.org", ["bob@example.net"],
                  H.make_message(), auth=False)
    t.ok(r.code and r.code >= 500, "submission without AUTH refused: %r" % r)


@tap.test
def sendmail_snippet(t):
    sink = H.Sink().start()
    ag = H.Authgate(settings={"spf_enable": False,
                              "dmarc_enable": False}).start()
    sm = SnippetSendmail(H.milter_spec(ag, "sendmail"),
                         relay_port=sink).start()
    t.eq(sm.cf_option("Milter.macros.connect"),
         "j, _, {daemon_name}, {if_name}, {if_addr}, {client_addr}, "
         "{client_name}", "the snippet's connect macros are in sendmail.cf")
    t.eq(sm.cf_option("InputMailFilters"), "authgate",
         "the snippet's milter is in sendmail.cf")
    t.ok(sm.cf_line(r"^Xauthgate, S=%s, F=T, T=" % re.escape(sm.snippet_milter)),
         "with the snippet's F=T")

    r = sm.send("alice@example.org", ["bob@example.net"], H.make_message())
    t.eq((r.stage, r.code), ("end-of-data", 250), "inbound: accepted")
    m = sink.wait_for(1, timeout=30)[0]
    t.eq(ar_of(m), ["%s; none" % H.HOSTNAME],
         "inbound: our A-R, authserv-id from the j macro")
    t.ok(ag.wait_stderr(r"%s: ip=127\.0\.0\.1 .*internal=yes"
                        % re.escape(r.queue_id or "?")),
         "inbound: i and {client_addr} reached authgate")

    r = sm.submit("alice@test.example", ["bob@example.net"],
                  H.make_message(frm="alice@test.example"))
    t.eq((r.stage, r.code), ("end-of-data", 250), "submission: accepted")
    t.ok(ag.wait_stderr(r"%s: .*auth=alice@test\.example internal=yes"
                        % re.escape(r.queue_id or "?")),
         "submission: {auth_authen} reached authgate")
    sink.wait_for(2, timeout=30)


if __name__ == "__main__":
    tap.main()
