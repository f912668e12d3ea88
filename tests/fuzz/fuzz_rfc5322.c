/*
 * fuzz_rfc5322.c - libFuzzer target: header section splitting (rfc5322.c).
 *
 * Feeds the input as a whole message to rfc5322_next_field(), field after
 * field, until it says BODY - the loop cli.c runs for `authgate check`.
 * The input buffer is exactly the message, so ASan sees any read past it.
 * Asserts, beyond "no crash":
 *   - progress: each FIELD moves the offset strictly forward and never
 *     past the end; BODY moves it by 0, or past exactly one empty line
 *     ("\n" or "\r\n"), and never past the end;
 *   - the field: name starts at the old offset, is non-empty and has no
 *     ':', white space or control byte; only SP/TAB lie between it and
 *     the ':' that starts the value; the value lies inside the bytes the
 *     field consumed and does not include the final line end (LF, CRLF,
 *     or a CR that is the last byte of the input); every LF
 *     inside the value is followed by SP or TAB (a fold), so a value
 *     never swallows the next field;
 *   - the sum of the bytes consumed by all steps equals the body offset.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "rfc5322.h"
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* check_field - one FIELD result consumed [old, off) */
static void
check_field(const char *d, size_t len, size_t old, size_t off,
    const struct rfc5322_field *f)
{
	size_t i, vstart, vend;

	FUZZ_CHECK(off > old && off <= len,
	    "offset %zu -> %zu not strictly forward within %zu", old, off, len);
	FUZZ_CHECK(f->name == d + old && f->namelen > 0,
	    "name at %td (len %zu), field starts at %zu", f->name - d,
	    f->namelen, old);
	for (i = 0; i < f->namelen; i++) {
		unsigned char c = (unsigned char)f->name[i];

		FUZZ_CHECK(c > 0x20 && c < 0x7f && c != ':',
		    "byte 0x%02x in field name '%s'", c,
		    fuzz_escape(f->name, f->namelen));
	}
	FUZZ_CHECK(f->value > f->name + f->namelen && f->value <= d + off,
	    "value at %td outside the field [%zu, %zu)", f->value - d, old,
	    off);
	vstart = (size_t)(f->value - d);
	FUZZ_CHECK(d[vstart - 1] == ':', "value does not follow a ':'");
	for (i = old + f->namelen; i < vstart - 1; i++)
		FUZZ_CHECK(d[i] == ' ' || d[i] == '\t',
		    "byte 0x%02x between name and ':'", (unsigned char)d[i]);
	vend = vstart + f->valuelen;
	FUZZ_CHECK(
	    vend <= off, "value end %zu past the field end %zu", vend, off);
	/* What follows the value up to off is the line end, if any. */
	FUZZ_CHECK(
	    off - vend <= 2, "%zu bytes lost after the value", off - vend);
	if (off - vend == 2)
		FUZZ_CHECK(d[vend] == '\r' && d[vend + 1] == '\n',
		    "value does not end at CRLF");
	/* A CR as the very last byte is half a CRLF cut off: a line end. */
	if (off - vend == 1)
		FUZZ_CHECK(d[vend] == '\n' || (d[vend] == '\r' && off == len),
		    "value does not end at LF");
	if (off - vend == 0)
		FUZZ_CHECK(
		    off == len, "field ends without a line end at %zu", off);
	for (i = vstart; i < vend; i++)
		if (d[i] == '\n')
			FUZZ_CHECK(i + 1 < vend + (off - vend) &&
				(d[i + 1] == ' ' || d[i + 1] == '\t'),
			    "LF at %zu inside a value, not a fold", i);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *d = (const char *)data;
	struct rfc5322_field f;
	size_t off = 0, old, consumed = 0, nfields = 0;

	for (;;) {
		old = off;
		memset(&f, 0, sizeof(f));
		if (rfc5322_next_field(d, size, &off, &f) == AG_R5322_BODY)
			break;
		check_field(d, size, old, off, &f);
		consumed += off - old;
		nfields++;
		FUZZ_CHECK(nfields <= size, "more fields than bytes");
	}
	FUZZ_CHECK(off >= old && off <= size,
	    "BODY offset %zu from %zu outside [0, %zu]", off, old, size);
	FUZZ_CHECK(off - old == 0 || (off - old == 1 && d[old] == '\n') ||
		(off - old == 2 && d[old] == '\r' && d[old + 1] == '\n'),
	    "BODY skipped %zu bytes that are not one empty line", off - old);
	consumed += off - old;
	FUZZ_CHECK(consumed == off, "consumed %zu bytes, body offset %zu",
	    consumed, off);
	return 0;
}
