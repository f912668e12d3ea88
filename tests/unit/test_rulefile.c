/*
 * test_rulefile.c - the rule language (rulefile.c): every statement,
 * every error path with its file:line, redefinition across files, score
 * and describe resolution, meta expressions (precedence, arithmetic,
 * unknown names, cycles), return-code sets and the regex match limit.
 */
#include <glob.h>

#include "testlib.h"
#include "util/buf.h"
#include "rulefile.h"

/* load - one or two files; NULL when an error, with err kept */
static struct ruleset *
load(const char *a, const char *b, struct buf *err)
{
	struct ruleset *s = ruleset_new(0);
	int rc = ruleset_add_text(s, "a.rules", a, strlen(a), err);

	if (b != NULL && ruleset_add_text(s, "b.rules", b, strlen(b), err))
		rc = -1;
	if (ruleset_finish(s, err) == -1)
		rc = -1;
	if (rc == -1) {
		ruleset_free(s);
		return NULL;
	}
	return s;
}

static void
test_statements(void **state)
{
	struct buf err = BUF_INIT;
	struct ruleset *s;
	const struct rule *r;

	(void)state;
	s = load("# comment\n"
		 "\n"
		 "header H1 Subject =~ /free/i # trailing comment\n"
		 "header H2 From:addr !~ m{@example\\.com$}m [if-unset: none]\n"
		 "header H3 exists:X-Mailer\n"
		 "header H4 ALL =~ /^Received: /m\n"
		 "header H5 To:name =~ m!x\\!y!\n"
		 "body B1 /click here/i\n"
		 "rawbody R1 /<font/i\n"
		 "full F1 /^X-Foo:/m\n"
		 "uri U1 /\\.example\\/path/\n"
		 "eval E1 date_vs_received(48, 2)\n"
		 "eval E2 spf_result(fail, SoftFail)\n"
		 "dnsbl D1 zen.example.org. 127.0.0.2-127.0.0.11, 127.0.1.5\n"
		 "uribl D2 dbl.example.org &0x04\n"
		 "meta M1 H1 && (B1 || !R1) && E1 + E2 >= 1\n"
		 "meta __S H1\r\n"
		 "score H1 2.5\n"
		 "score B1 -1\n"
		 "describe H1 Subject # says free\n",
	    NULL, &err);
	if (s == NULL)
		fail_msg("%s", err.data);
	want_int("rules", s->n, 15);
	want_int("header", s->nheader, 5);
	want_int("meta", s->nmeta, 2);
	r = &s->rules[ruleset_find(s, "H1")];
	want_int("H1 score x10", r->score * 10, 25);
	want_str("H1 describe", r->describe, "Subject # says free");
	want_str("H1 file", r->file, "a.rules");
	want_int("H1 line", r->line, 3);
	r = &s->rules[ruleset_find(s, "H2")];
	want_int("H2 negate", r->negate, 1);
	want_int("H2 fmod", r->fmod, RULE_F_ADDR);
	want_str("H2 field", r->field, "From");
	want_str("H2 if-unset", r->if_unset, "none");
	want_int("H3 exists", s->rules[ruleset_find(s, "H3")].exists, 1);
	want_int("H4 all", s->rules[ruleset_find(s, "H4")].fmod, RULE_F_ALL);
	want_str("H5 pattern: \\! unescaped",
	    s->rules[ruleset_find(s, "H5")].re_text, "x!y");
	want_int("default score", s->rules[ruleset_find(s, "R1")].score, 1);
	want_int("negative score", s->rules[ruleset_find(s, "B1")].score, -1);
	want_int("sub-rule", s->rules[ruleset_find(s, "__S")].sub, 1);
	want_int("sub-rule score", s->rules[ruleset_find(s, "__S")].score, 0);
	r = &s->rules[ruleset_find(s, "E2")];
	want_int("E2 func", r->func, RF_SPF_RESULT);
	want_str("E2 arg lower-cased", r->args[1], "softfail");
	r = &s->rules[ruleset_find(s, "D1")];
	want_str("zone, final dot dropped", r->zone, "zen.example.org");
	want_int("codes", r->codes.n, 2);
	want_int("mask", s->rules[ruleset_find(s, "D2")].codes.mask, 4);
	/* metas come after what they read */
	want_int("order: last is a meta",
	    s->rules[s->order[s->norder - 1]].type, RULE_META);
	want_int("need_rdns", s->need_rdns, 0);
	ruleset_free(s);
	buf_release(&err);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *name, *text, *want;
	} rows[] = {
	    {"unknown statement", "frobnicate X /a/\n",
		"a.rules:1: unknown statement 'frobnicate'"},
	    {"no name", "header\n",
		"a.rules:1: header: a rule name is missing"},
	    {"bad name", "body X-Y /a/\n",
		"a.rules:1: body: a rule name is [A-Za-z0-9_], 1 to 64"},
	    {"long name",
		"body "
		"A234567890123456789012345678901234567890123456789012345678901"
		"2345 /a/\n",
		"a.rules:1: body: a rule name is"},
	    {"no regex", "body X\n", "a.rules:1: expected a regex"},
	    {"regex not closed", "\n\nbody X /abc\n",
		"a.rules:3: regex not closed (no '/')"},
	    {"bad flag", "body X /a/g\n", "a.rules:1: unknown regex flag 'g'"},
	    {"bad regex", "body X /a(/\n",
		"a.rules:1: bad regex at offset 2: missing closing "
		"parenthesis"},
	    {"text after regex", "body X /a/ junk\n",
		"a.rules:1: unexpected text after the regex: junk"},
	    {"header without op", "header X Subject /a/\n",
		"a.rules:1: expected =~ or !~ after Subject"},
	    {"header no field", "header X =~ /a/\n",
		"a.rules:1: header rule without a header name"},
	    {"bad modifier", "header X From:foo =~ /a/\n",
		"a.rules:1: unknown header modifier ':foo'"},
	    {"ALL with modifier", "header X ALL:raw =~ /a/\n",
		"a.rules:1: ALL takes no modifier"},
	    {"exists with text", "header X exists:To =~ /a/\n",
		"a.rules:1: text after exists:To"},
	    {"if-unset not closed", "header X To =~ /a/ [if-unset: x\n",
		"a.rules:1: [if-unset: not closed"},
	    {"twice in a file", "body X /a/\nbody X /b/\n",
		"a.rules:2: X is already defined at line 1"},
	    {"eval unknown", "eval X nosuch()\n",
		"a.rules:1: unknown eval function 'nosuch'"},
	    {"eval no parens", "eval X date_missing\n",
		"a.rules:1: eval wants function(arguments)"},
	    {"eval args count", "eval X date_vs_received(1)\n",
		"a.rules:1: date_vs_received takes 2 to 2 arguments, not 1"},
	    {"eval bad number", "eval X rcpt_count(many)\n",
		"a.rules:1: rcpt_count: 'many' is not a number >= 0"},
	    {"eval bad word", "eval X spf_result(passed)\n",
		"a.rules:1: spf_result: 'passed' is not one of"},
	    {"eval word prefix", "eval X dkim_result(pas)\n",
		"a.rules:1: dkim_result: 'pas' is not one of"},
	    {"eval empty arg", "eval X spf_result(fail,,none)\n",
		"a.rules:1: spf_result: empty argument"},
	    {"eval text after", "eval X html_only() x\n",
		"a.rules:1: unexpected text after ')'"},
	    {"dnsbl no zone", "dnsbl X\n", "a.rules:1: dnsbl wants a zone"},
	    {"dnsbl bad zone", "dnsbl X nodots\n",
		"a.rules:1: 'nodots' is not a DNS zone name"},
	    {"dnsbl bad code", "dnsbl X bl.example 10.0.0.2\n",
		"a.rules:1: bad return code '10.0.0.2'"},
	    {"dnsbl backwards", "dnsbl X bl.example 127.0.0.9-127.0.0.2\n",
		"a.rules:1: return-code range '127.0.0.9-127.0.0.2' is "
		"backwards"},
	    {"dnsbl bad mask", "uribl X bl.example &0\n",
		"a.rules:1: bad return-code mask '&0'"},
	    {"score not a number", "body X /a/\nscore X lots\n",
		"a.rules:2: score X: 'lots' is not one number"},
	    {"score two numbers", "body X /a/\nscore X 1 2\n",
		"a.rules:2: score X: '1' is not one number"},
	    {"score missing", "body X /a/\nscore X\n",
		"a.rules:2: score X: a number is missing"},
	    {"score unknown", "score NOPE 1\n",
		"a.rules:1: score for NOPE, which no rule file defines"},
	    {"score of a sub-rule", "body __X /a/\nscore __X 1\n",
		"a.rules:2: __X is a sub-rule (__): it has no score"},
	    {"describe unknown", "describe NOPE text\n",
		"a.rules:1: describe for NOPE, which no rule file defines"},
	    {"describe empty", "body X /a/\ndescribe X   \n",
		"a.rules:2: describe X: no text"},
	    {"meta unknown name", "meta X Y && Z\nbody Y /a/\n",
		"a.rules:1: meta X: no rule Z"},
	    {"meta syntax", "body Y /a/\nmeta X Y &&\n",
		"a.rules:2: meta: rule name or number expected at 'end of "
		"line'"},
	    {"meta paren", "body Y /a/\nmeta X (Y\n",
		"a.rules:2: meta: ')' expected"},
	    {"meta junk", "body Y /a/\nmeta X Y Y\n",
		"a.rules:2: meta: unexpected 'Y'"},
	    {"meta cycle", "meta X Y\nmeta Y X\n", "depends on itself"},
	    {"meta self", "meta X X || 1\n",
		"a.rules:1: meta X depends on itself"},
	    {"meta number too big", "meta X 10000000\n",
		"a.rules:1: meta: '10000000' is not a number"},
	    {"NUL byte", "body X /a\0b/\n", "a.rules:1: NUL byte in the line"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf err = BUF_INIT;
		struct ruleset *s = ruleset_new(0);
		size_t len = strlen(rows[i].text);
		int rc;

		if (strcmp(rows[i].name, "NUL byte") == 0)
			len = 13;
		rc = ruleset_add_text(s, "a.rules", rows[i].text, len, &err);
		if (ruleset_finish(s, &err) == -1)
			rc = -1;
		if (rc != -1)
			fail_msg("%s: accepted", rows[i].name);
		if (err.data == NULL || strstr(err.data, rows[i].want) == NULL)
			fail_msg("%s: got '%s', want '%s'", rows[i].name,
			    err.data ? err.data : "", rows[i].want);
		ruleset_free(s);
		buf_release(&err);
	}
}

static void
test_many_errors_capped(void **state)
{
	struct buf err = BUF_INIT, text = BUF_INIT;
	struct ruleset *s = ruleset_new(0);
	size_t i, lines = 0;

	(void)state;
	for (i = 0; i < 500; i++)
		buf_addf(&text, "bogus%zu\n", i);
	assert_int_equal(
	    ruleset_add_text(s, "a.rules", text.data, text.len, &err), -1);
	for (i = 0; i < err.len; i++)
		lines += err.data[i] == '\n';
	want_int("error lines (50 and a last one)", lines, 51);
	ruleset_free(s);
	buf_release(&err);
	buf_release(&text);
}

static void
test_later_file(void **state)
{
	struct buf err = BUF_INIT;
	struct ruleset *s;
	const struct rule *r;

	(void)state;
	s = load("body X /a/\nscore X 3\ndescribe X first\nbody Y /b/\n",
	    "body X /c/\nscore Y 0\ndescribe X second\n", &err);
	if (s == NULL)
		fail_msg("%s", err.data);
	r = &s->rules[ruleset_find(s, "X")];
	want_str("X redefined", r->re_text, "c");
	want_str("X redefined where", r->file, "b.rules");
	want_int("X keeps its score line", r->score, 3);
	want_str("last describe wins", r->describe, "second");
	want_int("Y turned off", s->rules[ruleset_find(s, "Y")].score, 0);
	want_int("no duplicate", s->n, 2);
	ruleset_free(s);
	buf_release(&err);
}

/* meta_of - evaluate meta M with the hits given by name */
static bool
meta_of(const char *text, const char *hit)
{
	struct buf err = BUF_INIT;
	struct ruleset *s = load(text, NULL, &err);
	unsigned char hits[16] = {0};
	const char *p;
	bool v;

	if (s == NULL)
		fail_msg("%s", err.data);
	for (p = hit; *p; p++) {
		char n[2] = {*p, 0};

		hits[ruleset_find(s, n)] = 1;
	}
	v = ruleset_meta(&s->rules[ruleset_find(s, "M")], hits);
	ruleset_free(s);
	buf_release(&err);
	return v;
}

static void
test_meta(void **state)
{
	static const char rules[] = "body A /a/\nbody B /b/\nbody C /c/\n"
				    "body D /d/\n";
	static const struct {
		const char *expr, *hits;
		bool want;
	} rows[] = {
	    {"A", "A", true},
	    {"A", "", false},
	    {"!A", "", true},
	    {"A && B", "A", false},
	    {"A && B", "AB", true},
	    {"A || B", "B", true},
	    {"A || B && C", "A", true}, /* && binds tighter */
	    {"(A || B) && C", "A", false},
	    {"A + B + C >= 2", "AC", true},
	    {"A + B + C >= 2", "C", false},
	    {"(A + B + C + D) == 4", "ABCD", true},
	    {"A + B > 1 || D", "D", true},
	    {"A - B < 1", "AB", true},
	    {"!(A || B)", "", true},
	    {"!!A", "A", true},
	    {"A != B", "A", true},
	    {"A <= 0", "", true},
	    {"2 > A + B", "AB", false},
	    {"3", "", true},
	    {"0 || 0", "", false},
	};
	size_t i;
	char text[256];

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(
		    text, sizeof(text), "%smeta M %s\n", rules, rows[i].expr);
		if (meta_of(text, rows[i].hits) != rows[i].want)
			fail_msg("'%s' with hits '%s': want %s", rows[i].expr,
			    rows[i].hits, rows[i].want ? "true" : "false");
	}
}

static void
test_codes(void **state)
{
	struct buf err = BUF_INIT;
	struct ruleset *s =
	    load("dnsbl D bl.example\n"
		 "dnsbl R bl.example 127.0.0.2, 127.0.0.10-127.0.0.11\n"
		 "dnsbl K bl.example &0x06\n",
		NULL, &err);
	static const unsigned char a2[4] = {127, 0, 0, 2},
				   a3[4] = {127, 0, 0, 3},
				   a10[4] = {127, 0, 0, 10},
				   aerr[4] = {127, 255, 255, 254},
				   a4[4] = {127, 0, 0, 4},
				   a9[4] = {127, 0, 0, 9},
				   other[4] = {10, 0, 0, 2};
	const struct rule_codes *d, *r, *k;

	(void)state;
	if (s == NULL)
		fail_msg("%s", err.data);
	d = &s->rules[ruleset_find(s, "D")].codes;
	r = &s->rules[ruleset_find(s, "R")].codes;
	k = &s->rules[ruleset_find(s, "K")].codes;
	want_int("default: 127.0.0.2", ruleset_codes_match(d, a2), 1);
	want_int("default: error code", ruleset_codes_match(d, aerr), 0);
	want_int("default: not 127/8", ruleset_codes_match(d, other), 0);
	want_int("list: .2", ruleset_codes_match(r, a2), 1);
	want_int("list: .3", ruleset_codes_match(r, a3), 0);
	want_int("list: .10 in range", ruleset_codes_match(r, a10), 1);
	want_int("mask: 4 & 6", ruleset_codes_match(k, a4), 1);
	want_int("mask: 9 & 6", ruleset_codes_match(k, a9), 0);
	want_int("mask: 2 & 6", ruleset_codes_match(k, a2), 1);
	ruleset_free(s);
	buf_release(&err);
}

static void
test_match_limit(void **state)
{
	struct buf err = BUF_INIT;
	struct ruleset *s = ruleset_new(1000);
	static const char text[] = "body X /^(a+)+$/\nbody Y /a{3}b/\n";
	struct rule_matcher *md;
	char subject[64];
	bool limited = false;

	(void)state;
	assert_int_equal(
	    ruleset_add_text(s, "a.rules", text, strlen(text), &err), 0);
	assert_int_equal(ruleset_finish(s, &err), 0);
	md = ruleset_matcher_new(s);
	memset(subject, 'a', 40);
	subject[40] = '!';
	subject[41] = '\0';
	/* catastrophic backtracking stops at the limit: no match, flagged */
	want_int("pathological: no match",
	    ruleset_match(s, &s->rules[0], subject, 41, md, &limited), 0);
	want_int("pathological: limited", limited, 1);
	limited = false;
	want_int("plain: match",
	    ruleset_match(s, &s->rules[1], "xaaab", 5, md, &limited), 1);
	want_int("plain: not limited", limited, 0);
	/* a long subject scanned linearly is not cut by the limit */
	{
		char *big = malloc(1000001);

		memset(big, 'x', 1000000);
		memcpy(big + 999990, "aaab", 4);
		big[1000000] = '\0';
		limited = false;
		want_int("1 MB subject: match",
		    ruleset_match(s, &s->rules[1], big, 1000000, md, &limited),
		    1);
		want_int("1 MB subject: not limited", limited, 0);
		free(big);
	}
	/* invalid UTF-8 in a subject is matched, never an error */
	want_int("invalid UTF-8",
	    ruleset_match(s, &s->rules[1],
		"\xff\xfe"
		"aaab",
		6, md, &limited),
	    1);
	want_int("invalid UTF-8: not limited", limited, 0);
	ruleset_matcher_free(md);
	ruleset_free(s);
	buf_release(&err);
}

static void
test_file(void **state)
{
	struct buf err = BUF_INIT;
	struct ruleset *s = ruleset_new(0);
	char *path = tl_write_file("body X /a/\nbody Y /(/\n");

	(void)state;
	want_int("file with an error", ruleset_add_file(s, path, &err), -1);
	if (strstr(err.data, path) == NULL || strstr(err.data, ":2: ") == NULL)
		fail_msg("error does not name %s:2: %s", path, err.data);
	buf_reset(&err);
	want_int("missing file",
	    ruleset_add_file(s, "/nonexistent/x.rules", &err), -1);
	want_str("missing file: message", err.data,
	    "/nonexistent/x.rules: No such file or directory\n");
	unlink(path);
	free(path);
	ruleset_free(s);
	buf_release(&err);
}

/* sample ASCII texts that reach into many default rules */
static const char *const ascii_texts[] = {
    "Dear Friend,\nCLICK HERE to claim your prize!!! You have WON $1,000,000 "
    "in the lottery. 100% FREE, no obligation, act now. Call 1-800-555-1234.",
    "Make $500 a day working from home. Be your own boss! Lowest rates on "
    "mortgage refinancing, debt consolidation. Viagra, cialis: online "
    "pharmacy.",
    "I need your assistance with a business proposal: transfer of the sum "
    "of US$ 25,500,000 to a foreign account; next of kin. Reply urgently.",
    "To be removed from our list, reply with REMOVE in the subject. This is "
    "not spam: you opted in. Bill s. 1618 title iii. One-time mailing.",
    "verify your account. your webcam was hacked, pay in bitcoin to this "
    "wallet address. f.r.e.e m-o-n-e-y v1agra c!alis",
    "<html><body bgcolor=\"#ffffff\"><font size=\"+5\" color=\"white\">"
    "hidden</font><center><table><b>x</b>te<!-- c -->xt</body></html>",
    "Hi Bob,\n\nthe meeting is moved to Tuesday; see the notes attached. "
    "Thanks, Alice\n-- \nAlice Example, Example Corp",
    "$$$ !!! AMAZING SECRET REVEALED NOW ONLY TODAY FOR YOU\n\n\n\n",
};

/*
 * Every default rule's ASCII variant gives the answer its UTF one gives on
 * ASCII texts, and a text with bytes past 127 is matched by the UTF one.
 */
static void
test_ascii_variant(void **state)
{
	const char *src = getenv("AUTHGATE_SRCDIR");
	struct buf err = BUF_INIT;
	struct ruleset *s = ruleset_new(0);
	pcre2_match_data *md = pcre2_match_data_create(1, NULL);
	struct rule_matcher *x;
	char path[1024];
	size_t i, k, n = 0, hits = 0;
	glob_t g;

	(void)state;
	snprintf(path, sizeof(path), "%s/policies/*.rules", src ? src : "..");
	assert_int_equal(glob(path, 0, NULL, &g), 0);
	for (i = 0; i < g.gl_pathc; i++)
		if (ruleset_add_file(s, g.gl_pathv[i], &err) == -1)
			fail_msg("%s", err.data);
	globfree(&g);
	assert_int_equal(ruleset_finish(s, &err), 0);
	for (i = 0; i < s->n; i++) {
		const struct rule *r = &s->rules[i];

		if (r->re == NULL || r->re_ascii == NULL)
			continue;
		n++;
		for (k = 0; k < sizeof(ascii_texts) / sizeof(ascii_texts[0]);
		     k++) {
			const char *t = ascii_texts[k];
			int a = pcre2_match(
			    r->re, (PCRE2_SPTR)t, strlen(t), 0, 0, md, NULL);
			int b = pcre2_match(r->re_ascii, (PCRE2_SPTR)t,
			    strlen(t), 0, 0, md, NULL);

			if ((a >= 0) != (b >= 0))
				fail_msg("%s on text %zu: UTF %d, ASCII %d",
				    r->name, k, a, b);
			hits += a >= 0;
		}
	}
	if (n < 50 || hits < 30)
		fail_msg("only %zu rules with a variant, %zu hits", n, hits);
	ruleset_free(s);

	/* \w is a letter of any script for (*UCP): "cafe" with an e-acute
	 * has four word characters only when read as UTF-8 */
	s = load("body U /(*UCP)^\\w{4}$/\n", NULL, &err);
	assert_non_null(s);
	x = ruleset_matcher_new(s);
	want_int("non-ASCII text: the UTF pattern",
	    ruleset_match(s, &s->rules[0], "caf\xc3\xa9", 5, x, NULL), 1);
	want_int("ASCII text",
	    ruleset_match(s, &s->rules[0], "cafe", 4, x, NULL), 1);
	ruleset_matcher_free(x);
	ruleset_free(s);
	pcre2_match_data_free(md);
	buf_release(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_statements),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_many_errors_capped),
	    cmocka_unit_test(test_later_file),
	    cmocka_unit_test(test_meta),
	    cmocka_unit_test(test_codes),
	    cmocka_unit_test(test_match_limit),
	    cmocka_unit_test(test_file),
	    cmocka_unit_test(test_ascii_variant),
	};

	return AG_RUN(tests);
}
