/*
 * test_rfc5322.c - header section splitting: folding, LF and CRLF, WSP
 * before the colon, a non-header line starting the body, no body.
 */
#include "testlib.h"
#include "rfc5322.h"

/* split - "name=[value]" per field, then "|body=[...]" */
static void
split(const char *msg, char *out, size_t outlen)
{
	struct rfc5322_field f;
	size_t off = 0, n = 0, len = strlen(msg);

	out[0] = '\0';
	while (rfc5322_next_field(msg, len, &off, &f) == AG_R5322_FIELD)
		n += (size_t)snprintf(out + n, outlen - n, "%.*s=[%.*s]",
		    (int)f.namelen, f.name, (int)f.valuelen, f.value);
	snprintf(out + n, outlen - n, "|body=[%s]", msg + off);
}

static void
test_split(void **state)
{
	static const struct {
		const char *name, *in, *want;
	} rows[] = {
	    {"simple", "A: 1\nB: 2\n\nbody\n", "A=[ 1]B=[ 2]|body=[body\n]"},
	    {"crlf", "A: 1\r\nB:2\r\n\r\nbody\r\n",
		"A=[ 1]B=[2]|body=[body\r\n]"},
	    {"folded", "Subject: a\n\tb\n  c\nX: y\n\nz",
		"Subject=[ a\n\tb\n  c]X=[ y]|body=[z]"},
	    {"folded crlf", "Subject: a\r\n b\r\n\r\n",
		"Subject=[ a\r\n b]|body=[]"},
	    {"wsp before colon", "Subject : x\n\n", "Subject=[ x]|body=[]"},
	    {"no body", "A: 1\n", "A=[ 1]|body=[]"},
	    {"no newline at end", "A: 1", "A=[ 1]|body=[]"},
	    {"empty value", "A:\nB:\r\n\r\n", "A=[]B=[]|body=[]"},
	    {"not a header", "A: 1\nthis is body\nB: 2\n",
		"A=[ 1]|body=[this is body\nB: 2\n]"},
	    {"leading space first", " A: 1\n\nx", "|body=[ A: 1\n\nx]"},
	    {"colon only", ": x\n", "|body=[: x\n]"},
	    {"empty", "", "|body=[]"},
	    {"8bit name", "N\xc3\xa9: x\n\n", "|body=[N\xc3\xa9: x\n\n]"},
	};
	char out[512];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		split(rows[i].in, out, sizeof(out));
		want_str(rows[i].name, out, rows[i].want);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split),
	};

	return AG_RUN(tests);
}
