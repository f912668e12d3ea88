/*
 * test_spf_record.c - the strict RFC 7208 validator, macro expansion
 * (RFC 7208 7.3 and its examples in 7.4) and lowering for libspf2.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "testlib.h"
#include "util/arena.h"
#include "util/cidr.h"
#include "spf_record.h"

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
test_valid(void **state)
{
	static const char *const ok[] = {
	    "v=spf1",
	    "v=spf1 ",
	    "V=SPF1 -ALL",
	    "v=spf1 +all",
	    "v=spf1 a mx ptr -all",
	    "v=spf1 a/24 mx//64 a:example.com/24//64 ~all",
	    "v=spf1 a:example.com. -all",
	    "v=spf1 ip4:192.0.2.0/24 ip4:0.0.0.0/0 ip6:2001:db8::/32 ?all",
	    "v=spf1 ip6:::ffff:1.2.3.4 ip6:::1/128",
	    "v=spf1 include:_spf.example.com exists:%{i}.bl.example.com",
	    "v=spf1 exists:%{ir}.%{l1r-+}._spf.%{d}",
	    "v=spf1 redirect=_spf.example.com",
	    "v=spf1 -all exp=explain.%{d2}",
	    "v=spf1 -all foo=bar moo.cow-far_out=man:dog/cat",
	    "v=spf1 a:macro%%percent%_%_space%-url-space.example.com",
	    "v=spf1 a:%{d}",
	    "v=spf1 a:foo.xn--zckzah",
	    "v=spf1 a:foo.123-456",
	    "v=spf1    a    -all   ",
	    NULL,
	};
	struct spf_rec r;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; ok[i] != NULL; i++)
		if (spf_record_parse(A, ok[i], strlen(ok[i]), &r, &why) != 0)
			fail_msg("'%s': rejected: %s", ok[i], why);
}

static void
test_invalid(void **state)
{
	static const struct {
		const char *rec, *why;
	} bad[] = {
	    {"v=spf10 -all", "not an SPF record"},
	    {"v=spf1 -all\t", "control character"},
	    {"v=spf1 a:b\xc3\xa9.example.com", "non-ASCII"},
	    {"v=spf1 foo", "unknown mechanism"},
	    {"v=spf1 -redirect=x.example.com", "unknown mechanism"},
	    {"v=spf1 all:x", "takes no argument"},
	    {"v=spf1 a:", "bad argument"},
	    {"v=spf1 include", "needs ':'"},
	    {"v=spf1 exists", "needs ':'"},
	    {"v=spf1 ptr/0", "needs ':'"},
	    {"v=spf1 a/33", "CIDR"},
	    {"v=spf1 a//129", "CIDR"},
	    {"v=spf1 a/024", "CIDR"},
	    {"v=spf1 ip4:192.0.2.0/024", "CIDR"},
	    {"v=spf1 ip4:192.0.2.00", "bad ip4"},
	    {"v=spf1 ip4:192.0.2", "bad ip4"},
	    {"v=spf1 ip4:256.0.0.1", "bad ip4"},
	    {"v=spf1 ip4:192.0.2.1/", "bad ip4"},
	    {"v=spf1 ip6:1.2.3.4", "bad ip6"},
	    {"v=spf1 ip6:::1/129", "CIDR"},
	    {"v=spf1 a:example", "top-level label"},
	    {"v=spf1 a:example.", "top-level label"},
	    {"v=spf1 a:foo.-bar", "top-level label"},
	    {"v=spf1 a:foo.123", "top-level label"},
	    {"v=spf1 a:foo.example.com/", "top-level label"},
	    {"v=spf1 exists:%(ir).sbl.example.com", "'%' not followed"},
	    {"v=spf1 exists:foo%.example.com", "'%' not followed"},
	    {"v=spf1 a:%{x}.example.com", "unknown macro letter"},
	    {"v=spf1 a:%{c}.example.com", "unknown macro letter"},
	    {"v=spf1 a:%{d0}.example.com", "zero"},
	    {"v=spf1 a:%{d2.example.com", "malformed macro"},
	    {"v=spf1 redirect=a.example.com redirect=b.example.com",
		"more than one redirect"},
	    {"v=spf1 exp=a.example.com exp=b.example.com", "more than one exp"},
	    {"v=spf1 redirect=", "empty domain-spec"},
	    {"v=spf1 foo=%x", "'%' not followed"},
	    {"v=spf1 1foo=bar", "unknown mechanism"},
	};
	struct spf_rec r;
	const char *why;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		why = "";
		if (spf_record_parse(
			A, bad[i].rec, strlen(bad[i].rec), &r, &why) == 0)
			fail_msg("'%s': accepted, want '%s'", bad[i].rec,
			    bad[i].why);
		if (strstr(why, bad[i].why) == NULL)
			fail_msg("'%s': got '%s', want '%s'", bad[i].rec, why,
			    bad[i].why);
	}
}

static void
test_parsed(void **state)
{
	const char *t = "v=spf1 -a:example.com/24//64 ~mx ip4:192.0.2.1/0 "
			"ip6:2001:db8::/48 redirect=_spf.%{d} exp=e.%{d2}";
	struct spf_rec r;
	const char *why;

	(void)state;
	assert_int_equal(spf_record_parse(A, t, strlen(t), &r, &why), 0);
	assert_int_equal(r.nterms, 4);
	assert_int_equal(r.terms[0].qual, '-');
	assert_int_equal(r.terms[0].mech, AG_SPF_M_A);
	assert_string_equal(r.terms[0].spec, "example.com");
	assert_int_equal(r.terms[0].cidr4, 24);
	assert_int_equal(r.terms[0].cidr6, 64);
	assert_int_equal(r.terms[1].qual, '~');
	assert_null(r.terms[1].spec);
	assert_int_equal(r.terms[1].cidr4, -1);
	assert_int_equal(r.terms[2].cidr4, 0);
	assert_int_equal(r.terms[3].cidr6, 48);
	assert_string_equal(r.redirect, "_spf.%{d}");
	assert_string_equal(r.exp, "e.%{d2}");
}

/* env - the RFC 7208 7.4 example environment */
static struct spf_macro_env
env4(unsigned char ip[16])
{
	struct spf_macro_env e;

	cidr_addr_parse("192.0.2.3", ip);
	memset(&e, 0, sizeof(e));
	e.sender = "strong-bad@email.example.com";
	e.domain = "email.example.com";
	e.ip = ip;
	e.family = 4;
	e.helo = "mx.example.org";
	e.receiver = "mx.example.net";
	e.now = 1700000000;
	return e;
}

static void
test_expand_rfc_examples(void **state)
{
	static const struct {
		const char *in, *want;
	} rows[] = {
	    /* RFC 7208 7.4 */
	    {"%{s}", "strong-bad@email.example.com"},
	    {"%{o}", "email.example.com"},
	    {"%{d}", "email.example.com"},
	    {"%{d4}", "email.example.com"},
	    {"%{d3}", "email.example.com"},
	    {"%{d2}", "example.com"},
	    {"%{d1}", "com"},
	    {"%{dr}", "com.example.email"},
	    {"%{d2r}", "example.email"},
	    {"%{l}", "strong-bad"},
	    {"%{l-}", "strong.bad"},
	    {"%{lr}", "strong-bad"},
	    {"%{lr-}", "bad.strong"},
	    {"%{l1r-}", "strong"},
	    {"%{ir}.%{v}._spf.%{d2}", "3.2.0.192.in-addr._spf.example.com"},
	    {"%{lr-}.lp._spf.%{d2}", "bad.strong.lp._spf.example.com"},
	    {"%{lr-}.lp.%{ir}.%{v}._spf.%{d2}",
		"bad.strong.lp.3.2.0.192.in-addr._spf.example.com"},
	    {"%{ir}.%{v}.%{l1r-}.lp._spf.%{d2}",
		"3.2.0.192.in-addr.strong.lp._spf.example.com"},
	    {"%{d2}.trusted-domains.example.net",
		"example.com.trusted-domains.example.net"},
	    /* escapes, upper case, exp-only letters */
	    {"%%%_%-", "% %20"},
	    {"%{L}", "strong-bad"},
	    {"%{S}", "strong-bad%40email.example.com"},
	    {"%{c}", "192.0.2.3"},
	    {"%{r}", "mx.example.net"},
	    {"%{t}", "1700000000"},
	    {"%{h}", "mx.example.org"},
	    {"%{p}", "unknown"},
	    {"%{d99}", "email.example.com"},
	};
	unsigned char ip[16];
	struct spf_macro_env e = env4(ip);
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++)
		want_str(rows[i].in, spf_macro_expand(A, rows[i].in, &e, false),
		    rows[i].want);
}

static void
test_expand_ip6_and_escape(void **state)
{
	unsigned char ip[16];
	struct spf_macro_env e = env4(ip);

	(void)state;
	cidr_addr_parse("2001:db8::cb01", ip);
	e.family = 6;
	/* RFC 7208 7.4 */
	assert_string_equal(
	    spf_macro_expand(A, "%{ir}.%{v}._spf.%{d2}", &e, false),
	    "1.0.B.C.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.B.D.0.1.0.0.2."
	    "ip6._spf.example.com");
	assert_string_equal(
	    spf_macro_expand(A, "%{c}", &e, false), "2001:db8::cb01");
	e.sender = "~jack&jill=up-a_b3.c@e8.example.com";
	assert_string_equal(spf_macro_expand(A, "l=%{L}", &e, false),
	    "l=~jack%26jill%3Dup-a_b3.c");
}

static void
test_truncation(void **state)
{
	unsigned char ip[16];
	struct spf_macro_env e = env4(ip);
	char spec[400], *out;

	(void)state;
	e.sender = "x@somewhat.long.exp.example.com";
	snprintf(spec, sizeof(spec),
	    "foobar.%%{o}.%%{o}.%%{o}.%%{o}.%%{o}."
	    "%%{o}.%%{o}.%%{o}.example.com");
	out = spf_macro_expand(A, spec, &e, true);
	assert_true(strlen(out) <= 253);
	/* whole labels were dropped from the left */
	assert_int_equal(strncmp(out, "somewhat.long", 13), 0);
	assert_string_equal(out + strlen(out) - 12, ".example.com");
	out = spf_macro_expand(A, "example.com.", &e, true);
	assert_string_equal(out, "example.com");
}

/* synth - records the stand-ins asked for */
static const char *
synth(void *ctx, enum ag_spf_synth kind, const char *target)
{
	char *log = ctx;

	snprintf(log + strlen(log), 256 - strlen(log), "%d:%s;", kind, target);
	return arena_printf(A, "s%d.x.invalid", kind);
}

static void
test_lower(void **state)
{
	static const struct {
		const char *rec;
		int family;
		const char *want, *want_synth;
	} rows[] = {
	    {"v=spf1 a mx -all", 4, "v=spf1 +a:e.example +mx:e.example -all",
		""},
	    {"v=spf1 ip4:192.0.2.1/32 ip4:192.0.2.0/24 ip4:1.2.3.4/0", 4,
		"v=spf1 +ip4:192.0.2.1 +ip4:192.0.2.0/24 +ip4:0.0.0.0/1 "
		"+ip4:128.0.0.0/1",
		""},
	    {"v=spf1 -ip6:2001:db8::/0 ip6:::ffff:1.2.3.4/128", 6,
		"v=spf1 -ip6:::/1 -ip6:8000::/1 +ip6:::ffff:1.2.3.4", ""},
	    {"v=spf1 a/0 -all", 4, "v=spf1 +exists:s0.x.invalid -all",
		"0:e.example;"},
	    {"v=spf1 a/0 -all", 6, "v=spf1 +a:e.example -all", ""},
	    {"v=spf1 mx:m.example//0", 6, "v=spf1 +exists:s1.x.invalid",
		"1:m.example;"},
	    {"v=spf1 a:%{d}/24//64", 4, "v=spf1 +a:e.example/24", ""},
	    {"v=spf1 a:%{d}/24//64", 6, "v=spf1 +a:e.example//64", ""},
	    {"v=spf1 ~include:_i.%{d} redirect=r.%{d} exp=x.%{d}", 4,
		"v=spf1 ~include:_i.e.example redirect=r.e.example "
		"exp=x.e.example",
		""},
	    {"v=spf1 a:macro%%percent%_space.example.com unknown=mod", 4,
		"v=spf1 +a:s2.x.invalid", "2:macro%percent space.example.com;"},
	    {"v=spf1 exists:%{l}.example.com", 4, "v=spf1 +exists:s2.x.invalid",
		"2:a/24.example.com;"},
	};
	unsigned char ip[16];
	struct spf_macro_env e = env4(ip);
	struct spf_rec r;
	const char *why;
	char log[256];
	size_t i;

	(void)state;
	e.domain = "e.example";
	e.sender = "a/24@e.example";
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		log[0] = '\0';
		e.family = rows[i].family;
		if (spf_record_parse(
			A, rows[i].rec, strlen(rows[i].rec), &r, &why) != 0)
			fail_msg("%s: %s", rows[i].rec, why);
		want_str(rows[i].rec,
		    spf_record_lower(A, &r, &e, synth, log, &why),
		    rows[i].want);
		want_str(rows[i].rec, log, rows[i].want_synth);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_valid),
	    cmocka_unit_test(test_invalid),
	    cmocka_unit_test(test_parsed),
	    cmocka_unit_test(test_expand_rfc_examples),
	    cmocka_unit_test(test_expand_ip6_and_escape),
	    cmocka_unit_test(test_truncation),
	    cmocka_unit_test(test_lower),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
