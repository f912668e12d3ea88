#!/bin/sh
# test_code_rules.sh - the rules of STYLE.md that a machine can check:
# no symbol in a namespace a linked library owns (interposition), no
# banned string functions, malloc only in util/xalloc.c and util/arena.c,
# includes by layer, size ceilings for files and functions.
. "$(dirname "$0")/lib.sh"
F="$AUTHGATE_SRCDIR/filter"
B="$AUTHGATE_BUILDDIR/filter"

# 1. symbols we define must not use a library's prefix
bad=$(nm --defined-only "$B/libauthgate.a" "$B/authgate" \
	"$B/authgate-reports" 2>/dev/null |
	awk '$2 ~ /^[TDBR]$/ {print $3}' |
	grep -E '^(dkim_|SPF_|smfi_|ub_|pcre2_|sqlite3_|mi_|PQ|MHD_)' | sort -u)
is "no symbols in libraries' namespaces" "$bad" ""

# 2. banned functions in our C sources
bad=$(grep -nE '\b(strcpy|strcat|sprintf|vsprintf|strtok|gets)\s*\(' \
	"$F"/*.c "$F"/util/*.c 2>/dev/null)
is "no strcpy/strcat/sprintf/strtok/gets" "$bad" ""
# (a buffer a library allocates and frees itself is marked AG_LIB_ALLOC
# on the line before, and is the only exception)
bad=$(grep -nE -B1 '\b(malloc|calloc|realloc)\s*\(' "$F"/*.c "$F"/util/*.c |
	grep -vE '^[^:]*/util/(xalloc|arena)\.c[:-]' |
	awk '/AG_LIB_ALLOC/ {skip=1; next} /^--$/ {next}
	    /-[0-9]+-/ {next} {if (!skip) print; skip=0}')
is "malloc only in util/xalloc.c and util/arena.c" "$bad" ""

# 3. includes by layer (lowest first): util < mail < core < checks < adapters
out=$(/usr/bin/python3 - "$F" <<'PY'
import os, re, sys
root = sys.argv[1]
layer = {}
for f in os.listdir(os.path.join(root, "util")):
    layer["util/" + f.rsplit(".", 1)[0]] = 0
for m in ("log", "rfc5322", "ar", "dns", "spf_record", "dmarc_record", "dmarc_walk",
          "mime", "mime_int", "mime_conv", "mime_hdr", "mime_text",
          "mime_uri", "rulefile"):
    layer[m] = 1
for m in ("config", "snapshot", "msgctx", "checks", "policy"):
    layer[m] = 2
for m in ("spf", "spf_dns", "spf_eval", "dkim_verify", "dkim_sign",
          "dkim_tables", "dkim_signer", "keys", "dmarc",
          "dmarc_history", "rules", "rules_eval", "dnsbl", "metrics"):
    layer[m] = 3
for m in ("milter", "cli", "main", "reports", "reports_xml"):
    layer[m] = 4
bad = []
srcs = [os.path.join(d, f) for d in (root, os.path.join(root, "util"))
        for f in os.listdir(d) if f.endswith((".c", ".h"))]
for path in srcs:
    mod = os.path.relpath(path, root).rsplit(".", 1)[0]
    # checks.c is THE table: it includes every check's header
    mylayer = 3 if path.endswith("/checks.c") else layer.get(mod)
    if mod not in layer:
        bad.append("%s: module not placed in a layer" % mod)
        continue
    for n, line in enumerate(open(path, encoding="utf-8"), 1):
        m = re.match(r'#include "([^"]+)\.h"', line)
        if m:
            inc = m.group(1)
            if inc == "autoconf":
                continue
            if inc not in layer:
                bad.append("%s:%d: unknown header %s.h" % (mod, n, inc))
            elif layer[inc] > mylayer:
                bad.append("%s:%d: layer %d includes %s.h (layer %d)" %
                           (mod, n, mylayer, inc, layer[inc]))
            # checks never include another check's or an adapter's header
            elif layer[mod] == 3 and layer[inc] == 3 and inc != mod and \
                    inc.split("_")[0] != mod.split("_")[0] and \
                    not (mod, inc) in {("dkim_sign", "keys"), ("dkim_verify", "keys"),
                                     ("dkim_tables", "keys"), ("dkim_signer", "keys"),
                                     ("rules", "dnsbl"),
                                     ("metrics", "dmarc_history")}:
                bad.append("%s:%d: check includes %s.h" % (mod, n, inc))
        if re.match(r"#include <libmilter/", line) and mod not in ("milter", "main"):
            bad.append("%s:%d: libmilter outside the adapter" % (mod, n))
print("\n".join(bad))
PY
)
is "includes follow the layers" "$out" ""

# 4. size ceilings: 1500 lines per .c file, 150 lines per function
out=$(/usr/bin/python3 - "$F" <<'PY'
import os, sys
root = sys.argv[1]
bad = []
for d in (root, os.path.join(root, "util")):
    for f in sorted(os.listdir(d)):
        if not f.endswith(".c"):
            continue
        lines = open(os.path.join(d, f), encoding="utf-8").read().split("\n")
        if len(lines) > 1500:
            bad.append("%s: %d lines" % (f, len(lines)))
        start = None
        for i, l in enumerate(lines):
            if l == "{":
                start = i
            elif l == "}" and start is not None:
                if i - start > 150:
                    bad.append("%s:%d: function of %d lines" % (f, start, i - start))
                start = None
print("\n".join(bad))
PY
)
is "files under 1500 lines, functions under 150" "$out" ""

done_testing
