/*
 * fuzz_addr.c - libFuzzer target: From:/To: address lists
 * (rfc5322_addr_list), which DMARC uses to find the Author Domain and the
 * rules use for :addr, from_name_has_address and header_rcpt_count; and
 * RFC 2047 header decoding (mime_decode_header), which every header rule
 * reads through.
 *
 * Input: a header value as received (folds, comments, groups, quotes,
 * encoded words, any bytes but NUL).
 * Asserts, beyond "no crash, no leak":
 *   - rfc5322_addr_list returns -1 or 0 <= n <= max; with less room the
 *     same n and entries when they fit, else -1 (the parse does not
 *     depend on the room given);
 *   - every filled entry has a local part and a domain (possibly empty)
 *     without CR or LF, and a domain without white space or '@';
 *   - the same input parses the same way twice;
 *   - mime_decode_header returns valid UTF-8 with no CR or LF, no longer
 *     than 4 times the input plus 16 bytes (each byte at most one 3-byte
 *     U+FFFD or a 4-byte sequence).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "mime.h"
#include "rfc5322.h"
#include "fuzz_common.h"

#define MAX 16

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* utf8_valid - is s[0..n) well-formed UTF-8 (RFC 3629)? */
static bool
utf8_valid(const unsigned char *s, size_t n)
{
	size_t i = 0;

	while (i < n) {
		unsigned c = s[i];
		size_t k, len;
		unsigned cp;

		if (c < 0x80) {
			i++;
			continue;
		}
		if (c >= 0xc2 && c <= 0xdf)
			len = 2, cp = c & 0x1f;
		else if (c >= 0xe0 && c <= 0xef)
			len = 3, cp = c & 0x0f;
		else if (c >= 0xf0 && c <= 0xf4)
			len = 4, cp = c & 0x07;
		else
			return false;
		if (i + len > n)
			return false;
		for (k = 1; k < len; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((len == 3 &&
			(cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
		    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
			return false;
		i += len;
	}
	return true;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new(4096);
	struct rfc5322_addr x[MAX], y[MAX], z[4];
	char *v;
	const char *d;
	int n, n2, n3, i;

	if (a == NULL)
		return 0;
	if ((v = arena_strndup(a, (const char *)data, size)) == NULL) {
		arena_free(a);
		return 0;
	}
	size = strlen(v); /* the MTA hands over values without NUL */
	n = rfc5322_addr_list(a, v, size, x, MAX);
	n2 = rfc5322_addr_list(a, v, size, y, MAX);
	n3 = rfc5322_addr_list(a, v, size, z, 4);
	FUZZ_CHECK(n >= -1, "returned %d", n);
	FUZZ_CHECK(n == n2, "two parses: %d then %d", n, n2);
	FUZZ_CHECK(n <= MAX, "%d entries in room for %d", n, MAX);
	FUZZ_CHECK(n3 == (n <= 4 ? n : -1), "room 4 gave %d, room %d gave %d",
	    n3, MAX, n);
	for (i = 0; i < n && i < MAX; i++) {
		FUZZ_CHECK(x[i].local != NULL && x[i].domain != NULL,
		    "entry %d without parts", i);
		FUZZ_CHECK(strcmp(x[i].local, y[i].local) == 0 &&
			strcmp(x[i].domain, y[i].domain) == 0,
		    "entry %d differs between parses", i);
		if (i < 4)
			FUZZ_CHECK(strcmp(x[i].local, z[i].local) == 0 &&
				strcmp(x[i].domain, z[i].domain) == 0,
			    "entry %d depends on the room", i);
		FUZZ_CHECK(strpbrk(x[i].local, "\r\n") == NULL,
		    "CR/LF in local part %d", i);
		FUZZ_CHECK(strpbrk(x[i].domain, "\r\n\t @") == NULL ||
			x[i].domain[0] == '[',
		    "bad domain %d: '%s'", i, x[i].domain);
	}
	if ((d = mime_decode_header(a, v, size)) != NULL) {
		size_t dl = strlen(d);

		FUZZ_CHECK(utf8_valid((const unsigned char *)d, dl),
		    "decoded header is not UTF-8");
		FUZZ_CHECK(strpbrk(d, "\r\n") == NULL, "CR/LF in decoded");
		FUZZ_CHECK(dl <= 4 * size + 16, "decoded %zu from %zu bytes",
		    dl, size);
	}
	arena_free(a);
	return 0;
}
