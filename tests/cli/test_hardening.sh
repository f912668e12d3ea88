#!/bin/sh
# test_hardening.sh - the programs of this build carry the hardening that
# configure.ac turns on by default (--disable-hardening turns it off):
# position-independent (PIE), full RELRO (a GNU_RELRO segment and
# BIND_NOW: the GOT is read-only once loaded), no executable stack, the
# stack protector (__stack_chk_fail) and FORTIFY (__*_chk functions).
# The sanitizer build leaves FORTIFY out on purpose (ASan intercepts
# those functions itself): there the check is that no __*_chk is called.
. "$(dirname "$0")/lib.sh"

ok "readelf (binutils) is installed" command -v readelf

# readelf_of BINARY OPTION - readelf's output, or nothing
readelf_of() { readelf -W "$2" "$1" 2>/dev/null; }

for b in filter/authgate filter/authgate-reports keys/authgate-keys; do
	bin="$AUTHGATE_BUILDDIR/$b"
	name=$(basename "$b")
	if [ ! -x "$bin" ]; then
		_report 1 "$name: built" "no $bin"
		continue
	fi
	type=$(readelf_of "$bin" -h | grep 'Type:')
	flags=$(readelf_of "$bin" -d | grep -E '\((FLAGS|FLAGS_1|BIND_NOW)\)')
	seg=$(readelf_of "$bin" -l | grep -E '^ *GNU_(RELRO|STACK) ')
	syms=$(readelf_of "$bin" --dyn-syms |
	    grep -Eo ' __(stack_chk_fail|asan_init|[a-z0-9_]+_chk)(@|$)' |
	    tr -d ' @' | sort -u)
	like "$name: PIE" "$type" 'DYN \(Position-Independent Executable'
	like "$name: PIE in FLAGS_1" "$flags" 'FLAGS_1\).*PIE'
	like "$name: RELRO segment" "$seg" '^ *GNU_RELRO '
	like "$name: BIND_NOW (full RELRO)" "$flags" \
	    '\(FLAGS\).*BIND_NOW|\(BIND_NOW\)|FLAGS_1\).* NOW'
	like "$name: a stack segment" "$seg" '^ *GNU_STACK '
	unlike "$name: stack not executable" "$seg" '^ *GNU_STACK .* RWE '
	like "$name: stack protector" "$syms" '^__stack_chk_fail$'
	chk=$(printf '%s\n' "$syms" | grep -v '^__stack_chk_fail$' |
	    grep '_chk$' | tr '\n' ' ')
	if printf '%s\n' "$syms" | grep -q '^__asan_init$'; then
		# configure.ac: -fsanitize replaces FORTIFY, it does not add
		is "$name: FORTIFY as configured (none with sanitizers)" \
		    "$chk" ""
	else
		like "$name: FORTIFY as configured (none with sanitizers)" \
		    "$chk" \
		    '__[a-z]*(printf|memcpy|memset|read|strcpy|snprintf)[a-z]*_chk'
	fi
done
done_testing
