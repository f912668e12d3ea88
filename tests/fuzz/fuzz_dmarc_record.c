/*
 * fuzz_dmarc_record.c - libFuzzer target: DMARC policy records
 * (dmarc_record.c), the parser every _dmarc TXT answer passes, and the
 * rua/ruf URI check.
 *
 * Input: a record as the tree walk hands it over (the TXT strings
 * joined, no NUL: dmarc_walk.c drops a record with one).
 * Asserts, beyond "no crash, no leak":
 *   - the same input parses the same way twice;
 *   - a record is a DMARC record only when its first tag is v=DMARC1
 *     (white space around "=" and at the ends allowed, the value exact);
 *   - a refused (invalid) record comes with a reason;
 *   - a parsed record: p/sp/np/psd in their enums, its text the input,
 *     at most AG_DMARC_MAX_URIS rua and ruf, each a URI dmarc_uri_valid
 *     accepts, without white space, ',' or '!' (4.6);
 *   - dmarc_uri_valid on the input never accepts white space or a comma.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "dmarc_record.h"
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* starts_v - does the text start with WSP* "v" WSP* "=" WSP* "DMARC1"
 * WSP* (";" or end)? (tag names in any case, the value exact) */
static bool
starts_v(const char *t, size_t len)
{
	size_t i = 0;

	while (i < len && (t[i] == ' ' || t[i] == '\t'))
		i++;
	if (i >= len || (t[i] != 'v' && t[i] != 'V'))
		return false;
	for (i++; i < len && (t[i] == ' ' || t[i] == '\t'); i++)
		;
	if (i >= len || t[i] != '=')
		return false;
	for (i++; i < len && (t[i] == ' ' || t[i] == '\t'); i++)
		;
	if (len - i < 6 || memcmp(t + i, "DMARC1", 6) != 0)
		return false;
	for (i += 6; i < len && (t[i] == ' ' || t[i] == '\t'); i++)
		;
	return i == len || t[i] == ';';
}

/* check_uris - every kept URI is one the checker accepts */
static void
check_uris(const char *const *u, size_t n, const char *what)
{
	size_t i;

	FUZZ_CHECK(n <= AG_DMARC_MAX_URIS, "%zu %s URIs kept", n, what);
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(u[i] != NULL && dmarc_uri_valid(u[i], strlen(u[i])),
		    "%s URI '%s' kept but not valid", what,
		    u[i] ? fuzz_escape(u[i], strlen(u[i])) : "(null)");
		FUZZ_CHECK(strpbrk(u[i], " \t,!") == NULL,
		    "%s URI '%s' has white space, ',' or '!'", what,
		    fuzz_escape(u[i], strlen(u[i])));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a;
	struct dmarc_record r1, r2;
	char why1[128] = "", why2[128] = "";
	enum ag_dmarc_rec rc1, rc2;
	const char *t = (const char *)data;

	if (memchr(data, '\0', size) != NULL)
		return 0; /* never reaches the parser */
	if ((a = arena_new(0)) == NULL)
		abort();
	rc1 = dmarc_record_parse(a, t, size, &r1, why1, sizeof(why1));
	rc2 = dmarc_record_parse(a, t, size, &r2, why2, sizeof(why2));
	FUZZ_CHECK(rc1 == rc2 && strcmp(why1, why2) == 0,
	    "two parses differ: %d '%s' / %d '%s'", rc1, why1, rc2, why2);
	FUZZ_CHECK((rc1 != AG_DMARC_REC_NOT) == starts_v(t, size),
	    "DMARC record %s, but v=DMARC1 %s first: '%s'",
	    rc1 != AG_DMARC_REC_NOT ? "yes" : "no",
	    starts_v(t, size) ? "is" : "is not", fuzz_escape(t, size));
	if (rc1 == AG_DMARC_REC_INVALID)
		FUZZ_CHECK(why1[0] != '\0', "invalid record without a reason");
	if (rc1 == AG_DMARC_REC_OK) {
		FUZZ_CHECK(r1.p <= AG_DMARC_P_INVALID &&
			r1.sp <= AG_DMARC_P_INVALID &&
			r1.np <= AG_DMARC_P_INVALID && r1.psd <= AG_DMARC_PSD_N,
		    "values out of range: p %d sp %d np %d psd %d", r1.p, r1.sp,
		    r1.np, r1.psd);
		FUZZ_CHECK(r1.text != NULL && strlen(r1.text) == size &&
			memcmp(r1.text, t, size) == 0,
		    "record text is not the input");
		FUZZ_CHECK(r1.p == r2.p && r1.sp == r2.sp && r1.np == r2.np &&
			r1.nrua == r2.nrua && r1.testing == r2.testing,
		    "two parses differ in their values");
		check_uris(r1.rua, r1.nrua, "rua");
		check_uris(r1.ruf, r1.nruf, "ruf");
	}
	if (dmarc_uri_valid(t, size))
		FUZZ_CHECK(memchr(t, ' ', size) == NULL &&
			memchr(t, ',', size) == NULL,
		    "URI with a space or comma accepted: '%s'",
		    fuzz_escape(t, size));
	arena_free(a);
	return 0;
}
