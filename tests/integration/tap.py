"""Tiny TAP (version 12) test framework for the authgate integration tests.

    import tap

    @tap.test
    def something(t):
        t.eq(1 + 1, 2, "arithmetic")

    @tap.test(skip="needs IPv6")
    def other(t):
        ...

    if __name__ == "__main__":
        tap.main()

Tests run in definition order.  Each test gets a context `t` with
assertion helpers (they raise on failure and print got/want), `t.diag()`,
`t.skip()` and `t.defer(fn)` for teardown.  Deferred functions and the
registered after-hooks (harness.py stops every process a test started) run
in LIFO order even when the test raises.  Command line arguments select
tests whose name contains one of them.  Exit status: 0 if every test is ok
(skips count as ok), 1 otherwise.
"""

import re
import signal
import sys
import time
import traceback

_tests = []
_before_hooks = []
_after_hooks = []
_interrupted = False


class Failure(AssertionError):
    """An assertion helper failed; lines are printed as TAP diagnostics."""

    def __init__(self, msg, lines=()):
        super().__init__(msg)
        self.lines = list(lines)


class Skip(Exception):
    """Raised (via t.skip) to end a test as `ok ... # SKIP reason`."""


class Timeout(Exception):
    """The test exceeded its time limit."""


_held = None          # diagnostics held back during teardown


def diag(msg):
    lines = ["# " + line for line in str(msg).splitlines() or [""]]
    if _held is not None:
        _held.extend(lines)
    else:
        print("\n".join(lines), flush=True)


def _show(value, limit=2000):
    text = repr(value)
    return text if len(text) <= limit else text[:limit] + "...(truncated)"


class Context:
    """Per-test state passed to every test function."""

    def __init__(self, name):
        self.name = name
        self.failed = False
        self._deferred = []

    # teardown -----------------------------------------------------------
    def defer(self, fn, *args, **kwargs):
        """Run fn(*args, **kwargs) at the end of the test, LIFO."""
        self._deferred.append((fn, args, kwargs))
        return fn

    # output ---------------------------------------------------------------
    def diag(self, msg):
        diag(msg)

    def skip(self, reason):
        raise Skip(reason)

    # assertions ---------------------------------------------------------
    def fail(self, msg, *lines):
        raise Failure(msg, lines)

    def ok(self, cond, msg="condition is true", got=None):
        if not cond:
            lines = [] if got is None else ["  got: " + _show(got)]
            self.fail(msg, *lines)
        return cond

    def eq(self, got, want, msg="values are equal"):
        if got != want:
            self.fail(msg, "  got: " + _show(got), " want: " + _show(want))
        return got

    def ne(self, got, unwanted, msg="values differ"):
        if got == unwanted:
            self.fail(msg, "  got: " + _show(got), " want anything but it")
        return got

    def contains(self, haystack, needle, msg=None):
        if haystack is None or needle not in haystack:
            self.fail(msg or "contains %r" % (needle,),
                      "  got: " + _show(haystack),
                      " want: something containing " + _show(needle))
        return haystack

    def not_contains(self, haystack, needle, msg=None):
        if haystack is not None and needle in haystack:
            self.fail(msg or "does not contain %r" % (needle,),
                      "  got: " + _show(haystack),
                      " want: nothing containing " + _show(needle))
        return haystack

    def match(self, regex, text, msg=None):
        m = re.search(regex, text or "", re.M)
        if not m:
            self.fail(msg or "matches /%s/" % regex,
                      "  got: " + _show(text), " want: /%s/" % regex)
        return m

    def between(self, got, low, high, msg="value in range"):
        if got is None or not low <= got <= high:
            self.fail(msg, "  got: " + _show(got),
                      " want: %r <= value <= %r" % (low, high))
        return got

    def raises(self, exc_type, fn, *args, **kwargs):
        try:
            fn(*args, **kwargs)
        except exc_type as e:
            return e
        self.fail("raises %s" % exc_type.__name__,
                  "  got: no exception",
                  " want: " + exc_type.__name__)


def test(fn=None, *, name=None, skip=None, timeout=300):
    """Register a test.  Usable as @test or @test(name=, skip=, timeout=)."""
    def register(f):
        _tests.append((name or f.__name__, f, skip, timeout))
        return f
    return register(fn) if fn is not None else register


def add_hooks(before=None, after=None):
    """before(ctx) runs before each test; after(ctx) after it (LIFO)."""
    if before:
        _before_hooks.append(before)
    if after:
        _after_hooks.append(after)


def _on_alarm(signum, frame):
    raise Timeout("test timed out")


def _on_term(signum, frame):
    raise KeyboardInterrupt("signal %d" % signum)


def _run_one(num, name, fn, skip, timeout):
    global _interrupted, _held
    ctx = Context(name)
    status, reason, lines = "ok", None, []
    start = time.monotonic()
    if skip:
        print("ok %d - %s # SKIP %s" % (num, name, skip), flush=True)
        return True
    old = signal.signal(signal.SIGALRM, _on_alarm)
    try:
        for hook in _before_hooks:
            hook(ctx)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        fn(ctx)
    except Skip as e:
        status, reason = "skip", str(e)
    except Failure as e:
        status = "not ok"
        lines = ["FAILED: %s" % e] + e.lines
        tb = traceback.extract_tb(e.__traceback__)
        here = [f for f in tb if f.filename != __file__]
        if here:
            lines.append("at %s:%d" % (here[-1].filename, here[-1].lineno))
    except BaseException as e:       # noqa: B902 - report anything, incl. ^C
        status = "not ok"
        lines = traceback.format_exception(type(e), e, e.__traceback__)
        lines = "".join(lines).splitlines()
        if isinstance(e, KeyboardInterrupt):
            _interrupted = True
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)
    ctx.failed = status == "not ok"
    teardown = list(reversed(ctx._deferred))
    teardown += [(hook, (ctx,), {}) for hook in reversed(_after_hooks)]
    _held = []                       # print teardown output after the result
    for fn_, args, kwargs in teardown:
        try:
            fn_(*args, **kwargs)
        except BaseException as e:   # noqa: B902
            status, ctx.failed = "not ok", True
            lines.append("teardown error: %s: %s" % (type(e).__name__, e))
    held, _held = _held, None
    elapsed = time.monotonic() - start
    if status == "skip":
        print("ok %d - %s # SKIP %s" % (num, name, reason), flush=True)
    else:
        print("%s %d - %s" % (status, num, name), flush=True)
    for line in lines:
        diag(line)
    for line in held:
        print(line, flush=True)
    diag("time %s: %.2f s" % (name, elapsed))
    return status != "not ok"


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    selected = [t for t in _tests
                if not argv or any(a in t[0] for a in argv)]
    print("1..%d" % len(selected), flush=True)
    signal.signal(signal.SIGTERM, _on_term)
    failures = 0
    for num, (name, fn, skip, timeout) in enumerate(selected, 1):
        if not _run_one(num, name, fn, skip, timeout):
            failures += 1
            if _interrupted:
                diag("interrupted: remaining tests not run")
                failures += len(selected) - num
                break
    if failures:
        diag("failed %d/%d tests" % (failures, len(selected)))
    sys.exit(1 if failures else 0)
