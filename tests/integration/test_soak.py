#!/usr/bin/python3
"""test_soak.py - the short soak (soak.py) in the test suite: SOAK_MESSAGES
(default 2000) messages at SOAK_SESSIONS (default 16) SMTP sessions through
the private Postfix and authgate (signing, verifying, DMARC with history,
rules), SIGHUP every SOAK_RELOAD (3) seconds.  `make soak` runs the long
one (20 000 messages, 32 sessions).  What passes is soak.py's docstring:
nothing lost or duplicated, each message with its kind's outcome, VmRSS
within 10 % of its value after warm-up, no error line, every reload done.
"""
import os
import sys

sys.dont_write_bytecode = True
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import harness as H  # noqa: E402,F401  (teardown hooks)
import soak  # noqa: E402
import tap  # noqa: E402


@tap.test(timeout=240)
def soak_short(t):
    rep = soak.Soak(int(os.environ.get("SOAK_MESSAGES", "2000")),
                    int(os.environ.get("SOAK_SESSIONS", "16")),
                    float(os.environ.get("SOAK_RELOAD", "3")),
                    log=t.diag).run()
    t.eq(rep["delivered"] + rep["rejected"], rep["sent"],
         "delivered + rejected = sent")
    t.eq(rep["delivered"], rep["accepted"], "delivered = accepted")
    t.ok(rep["reloads"] >= 1, "reloaded at least once", got=rep["reloads"])
    t.eq(rep["problems"], [], "no problems")


if __name__ == "__main__":
    tap.main()
