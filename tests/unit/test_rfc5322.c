/*
 * test_rfc5322.c - header section splitting: folding, LF and CRLF, WSP
 * before the colon, a non-header line starting the body, no body.
 */
#include "testlib.h"
#include "util/arena.h"
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

/* addrs - "local@domain,..." or "ERR" */
static void
addrs(const char *v, char *out, size_t outlen)
{
	struct arena *a = arena_new(0);
	struct rfc5322_addr list[8];
	int n = rfc5322_addr_list(a, v, strlen(v), list, 8), i;
	size_t k = 0;

	out[0] = '\0';
	if (n < 0)
		snprintf(out, outlen, "ERR");
	for (i = 0; i < n; i++)
		k += (size_t)snprintf(out + k, outlen - k, "%s%s@%s",
		    i ? "," : "", list[i].local, list[i].domain);
	arena_free(a);
}

static void
test_addresses(void **state)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
	    {"a@example.com", "a@example.com"},
	    {" Alice <alice@example.org>", "alice@example.org"},
	    {"\"Doe, John\" <john@example.org>", "john@example.org"},
	    {"\"a@evil.example\" <real@example.org>", "real@example.org"},
	    {"=?utf-8?q?J=C3=B6rg?= <j@example.de>", "j@example.de"},
	    {"(comment (nested)) a@example.com (trailing)", "a@example.com"},
	    {"John Q. Public <jqp@example.com>", "jqp@example.com"},
	    {"first.last@Example.COM", "first.last@Example.COM"},
	    {"\"quoted local\"@example.com", "quoted local@example.com"},
	    {"a@example.com, b@example.net", "a@example.com,b@example.net"},
	    {"a@example.com,,b@example.net", "a@example.com,b@example.net"},
	    {"Undisclosed recipients:;", ""},
	    {"friends: a@x.example, b@y.example;", "a@x.example,b@y.example"},
	    {"<@relay.example,@r2.example:user@example.org>",
		"user@example.org"},
	    {"x@[192.0.2.1]", "x@[192.0.2.1]"},
	    {"Alice\r\n\t<alice@example.org>", "alice@example.org"},
	    /* folds inside literals and quoted strings (escaped or not) never
	     * leave a CR or LF in an address (fuzz_addr found the literal) */
	    {"[192\r\n 2.1]@example.org", "[192 2.1]@example.org"},
	    {"x@[192.0.2.1\r\n ]", "x@[192.0.2.1 ]"},
	    {"\"a\\\r\n b\"@example.org", "a b@example.org"},
	    {"", ""},
	    /* not address lists */
	    {"a@", "ERR"},
	    {"@example.com", "ERR"},
	    {"John Doe@example.com", "ERR"},
	    {"<a@example.com", "ERR"},
	    {"a@example.com>", "ERR"},
	    {"(open comment a@example.com", "ERR"},
	    {"\"open quote a@example.com", "ERR"},
	    {"a@b@c", "ERR"},
	    {"group: a@example.com", "ERR"},
	    {"just words", "ERR"},
	    {"<<a@example.com>>", "ERR"},
	};
	char out[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		addrs(rows[i].in, out, sizeof(out));
		want_str(rows[i].in, out, rows[i].want);
	}
}

static void
test_addresses_caps(void **state)
{
	struct arena *a = arena_new(0);
	struct rfc5322_addr list[4];
	char big[8192];
	size_t n = 0;
	int i;

	(void)state;
	/* more addresses than the caller has room for: refused */
	for (i = 0; i < 100 && n + 40 < sizeof(big); i++)
		n += (size_t)snprintf(
		    big + n, sizeof(big) - n, "u%d@example.com,", i);
	assert_int_equal(rfc5322_addr_list(a, big, n, list, 4), -1);
	/* a long run of comment openers: an open comment, bounded */
	memset(big, '(', sizeof(big));
	assert_int_equal(rfc5322_addr_list(a, big, sizeof(big), list, 4), -1);
	arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_split),
	    cmocka_unit_test(test_addresses),
	    cmocka_unit_test(test_addresses_caps),
	};

	return AG_RUN(tests);
}
