#!/bin/sh
# test_docs.sh - the documentation matches the code: every parameter of
# the table is in authgate.conf(5) with its real built-in default, the man
# page lists nothing the daemon does not know, and the sample config
# parses and names every parameter.
. "$(dirname "$0")/lib.sh"
MAN="$AUTHGATE_BUILDDIR/filter/authgate.conf.5"
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
: > "$T/empty.conf"

"$AUTHGATE_BIN" -p -c "$T/empty.conf" | grep -v '^#' | sed 's/ *$//' | sort > "$T/code"
grep '^\.B [a-z_0-9]* =' "$MAN" | sed 's/^\.B //; s/ *$//' | sort > "$T/man"
is "authgate.conf(5) documents every parameter with its default" \
    "$(diff "$T/code" "$T/man")" ""
ok "authgate(8) exists" test -s "$AUTHGATE_BUILDDIR/filter/authgate.8"
SAMPLE="$AUTHGATE_SRCDIR/policies/authgate.conf"
out=$("$AUTHGATE_BIN" -n -c "$SAMPLE" 2>&1); rc=$?
is "the sample authgate.conf is valid" "$rc" 0
missing=$(cut -d' ' -f1 "$T/code" | while read -r p; do
	grep -Eq "^#? ?$p =" "$SAMPLE" || echo "$p"; done)
is "the sample authgate.conf mentions every parameter" "$missing" ""
done_testing
