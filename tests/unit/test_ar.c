/*
 * test_ar.c - Authentication-Results: building (quoting, folding, no
 * header injection) and reading the authserv-id of hostile headers.
 */
#include "testlib.h"
#include "util/arena.h"
#include "ar.h"

static struct arena *A;

static int
setup(void **state)
{
	(void)state;
	A = arena_new(0);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	arena_free(A);
	return 0;
}

static void
test_build_none(void **state)
{
	(void)state;
	assert_string_equal(
	    ar_build(A, "mx.example.com", NULL, NULL), "mx.example.com; none");
	assert_string_equal(
	    ar_build(A, "mx.example.com", NULL, "\n"), "mx.example.com; none");
}

static void
test_build_results(void **state)
{
	struct ar_result r1 = {0}, r2 = {0};

	(void)state;
	r1.method = "spf";
	r1.result = "pass";
	r1.props[0] = (struct ar_prop){"smtp", "mailfrom", "user@example.com"};
	r1.nprops = 1;
	r1.next = &r2;
	r2.method = "dkim";
	r2.result = "fail";
	r2.reason = "signature verification failed";
	r2.comment = "2048-bit key";
	r2.props[0] = (struct ar_prop){"header", "d", "example.com"};
	r2.props[1] = (struct ar_prop){"header", "s", "sel 1"};
	r2.nprops = 2;
	assert_string_equal(ar_build(A, "mx.example.com", &r1, NULL),
	    "mx.example.com; spf=pass smtp.mailfrom=user@example.com; "
	    "dkim=fail reason=\"signature verification failed\" "
	    "(2048-bit key) header.d=example.com header.s=\"sel 1\"");
	assert_string_equal(ar_build(A, "mx.example.com", &r1, "\n"),
	    "mx.example.com;\n\tspf=pass smtp.mailfrom=user@example.com;\n"
	    "\tdkim=fail reason=\"signature verification failed\" (2048-bit "
	    "key)\n"
	    "\theader.d=example.com header.s=\"sel 1\"");
}

static void
test_quote(void **state)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
	    {"example.com", "example.com"},
	    {"user@example.com", "user@example.com"},
	    {"@example.com", "@example.com"},
	    {"first.last+tag@example.com", "first.last+tag@example.com"},
	    {"a b", "\"a b\""},
	    {"x;spf=pass", "\"x;spf=pass\""},
	    {"evil\r\nX-Injected: 1", "\"evil??X-Injected: 1\""},
	    {"quote\"back\\slash", "\"quote\\\"back\\\\slash\""},
	    {"(comment)", "\"(comment)\""},
	    {"", "\"\""},
	    {"d\xc3\xa9j\xc3\xa0.example", "\"d??j??.example\""},
	    {"a..b@example.com", "\"a..b@example.com\""},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		want_str(
		    rows[i].in, ar_quote_value(A, rows[i].in), rows[i].want);
}

static void
test_comment_and_servid_hostile(void **state)
{
	struct ar_result r = {0};
	const char *h;

	(void)state;
	r.method = "spf";
	r.result = "none";
	r.comment = "a)(b\r\nc";
	h = ar_build(A, "mx\r\n.example", &r, NULL);
	assert_null(strchr(h, '\r'));
	assert_null(strchr(h, '\n'));
	assert_string_equal(h, "\"mx??.example\"; spf=none (a\\)\\(b??c)");
}

static void
test_fold_long(void **state)
{
	struct ar_result r = {0};
	const char *h, *line;

	(void)state;
	r.method = "dkim";
	r.result = "pass";
	r.props[0] = (struct ar_prop){"header", "d",
	    "a-very-long-subdomain-name.of-a-very-long-domain.example.com"};
	r.props[1] = (struct ar_prop){"header", "s", "selector2026november"};
	r.props[2] = (struct ar_prop){"header", "a", "rsa-sha256"};
	r.props[3] = (struct ar_prop){"header", "b", "AbCdEfGh"};
	r.nprops = 4;
	r.comment =
	    "a comment long enough (nested parts) that it may be folded";
	r.reason = "a quoted reason string that is long enough to be folded";
	h = ar_build(A, "mx.example.com", &r, "\r\n");
	for (line = h; line != NULL;) {
		const char *nl = strstr(line, "\r\n");
		size_t len = nl ? (size_t)(nl - line) : strlen(line);

		if (len > 78)
			fail_msg("line over 78: %.*s", (int)len, line);
		line = nl ? nl + 2 : NULL;
	}
	assert_non_null(strstr(h, "header.b=AbCdEfGh"));
	/* never folded inside the quoted-string */
	assert_non_null(strstr(h,
	    "\"a quoted reason string that is long enough "
	    "to be folded\""));
}

static void
test_parse_servid(void **state)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
	    {"mx.example.com; spf=pass", "mx.example.com"},
	    {" mx.example.com;spf=pass", "mx.example.com"},
	    {"mx.example.com 1; spf=pass", "mx.example.com"},
	    {"MX.Example.COM ; none", "MX.Example.COM"},
	    {"(comment) mx.example.com; none", "mx.example.com"},
	    {"(nested (comment) \\) here) mx.example.com; none",
		"mx.example.com"},
	    {"\r\n\tmx.example.com\r\n\t; none", "mx.example.com"},
	    {"\"mx.example.com\"; none", "mx.example.com"},
	    {"\"mx.exa\\mple.com\" ; none", "mx.example.com"},
	    {"mx.example.com", "mx.example.com"},
	    {"mx.example.com (trailing comment); none", "mx.example.com"},
	    {"", NULL},
	    {"   ", NULL},
	    {"; spf=pass", NULL},
	    {"(unterminated mx.example.com; spf=pass", NULL},
	    {"\"unterminated; spf=pass", NULL},
	    {"mx.example.com/x; spf=pass", NULL},
	    {"mx.example.com spf=pass", NULL},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		want_str(rows[i].in,
		    ar_parse_servid(A, rows[i].in, strlen(rows[i].in)),
		    rows[i].want);
}

static void
test_is_ours(void **state)
{
	static const struct {
		const char *in;
		bool want;
	} rows[] = {
	    {"mx.example.com; spf=pass", true},
	    {"MX.EXAMPLE.COM; spf=pass", true},
	    {"(x) \"Mx.Example.Com\" ; dkim=pass", true},
	    {"mx.example.com.evil; spf=pass", false},
	    {"evil.mx.example.com; spf=pass", false},
	    {"other.example (via mx.example.com); spf=pass", false},
	    {"other.example; spf=pass smtp.mailfrom=mx.example.com", false},
	    /* unreadable but naming us before ';': removed */
	    {"(unterminated mx.example.com; spf=pass", true},
	    {"mx.example.com/x; spf=pass", true},
	    /* unreadable and not naming us: kept */
	    {"(unterminated other; spf=pass", false},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		want_int(rows[i].in,
		    ar_is_ours(
			A, rows[i].in, strlen(rows[i].in), "mx.example.com"),
		    rows[i].want);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_build_none),
	    cmocka_unit_test(test_build_results),
	    cmocka_unit_test(test_quote),
	    cmocka_unit_test(test_comment_and_servid_hostile),
	    cmocka_unit_test(test_fold_long),
	    cmocka_unit_test(test_parse_servid),
	    cmocka_unit_test(test_is_ours),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
