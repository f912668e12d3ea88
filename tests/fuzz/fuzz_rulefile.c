/*
 * fuzz_rulefile.c - libFuzzer target: the rule language (rulefile.c),
 * which parses policies/*.rules and every admin's local rule files.
 *
 * Input: up to two rule files separated by a NUL byte ("a.rules", then
 * "b.rules", so redefinitions across files are exercised), the first
 * byte choosing the match limit.
 * Asserts, beyond "no crash, no leak":
 *   - a refused set has at least one error line, and every line starts
 *     with "a.rules:N: " or "b.rules:N: " where N is a line of that file
 *     (or "FILE: too many errors" at the cap);
 *   - a finished set: rule names valid and unique; regex rules compiled;
 *     meta programs reference existing rules and leave exactly one value
 *     on the stack; the order holds every rule once, every non-meta
 *     before the metas, each meta after the metas it reads; counts per
 *     type add up to n; dnsbl/uribl zones non-empty and lower case;
 *   - evaluating every meta over all-zero and all-one hits, and every
 *     regex over the input itself, terminates (match limit) without a
 *     PCRE2 error other than the limits.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"
#include "rulefile.h"
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* lines_in - number of lines of a text (a last line without LF counts) */
static long
lines_in(const char *t, size_t n)
{
	long lines = 0;
	size_t i;

	for (i = 0; i < n; i++)
		lines += t[i] == '\n';
	return lines + (n > 0 && t[n - 1] != '\n');
}

/* check_errors - every line names a file and one of its lines */
static void
check_errors(const struct buf *err, long la, long lb)
{
	const char *p = err->data, *nl;

	FUZZ_CHECK(err->len > 0, "refused without an error");
	for (; *p; p = nl + 1) {
		long line;
		char *end;
		long max;

		nl = strchr(p, '\n');
		FUZZ_CHECK(nl != NULL, "error without a final newline");
		if (strncmp(p, "a.rules:", 8) == 0)
			max = la;
		else if (strncmp(p, "b.rules:", 8) == 0)
			max = lb;
		else {
			FUZZ_CHECK(0, "error line without a file: %.*s",
			    (int)(nl - p), p);
			return;
		}
		if (strncmp(p + 8, " too many errors", 16) == 0)
			continue;
		line = strtol(p + 8, &end, 10);
		FUZZ_CHECK(
		    end > p + 8 && *end == ':' && line >= 1 && line <= max,
		    "error line %ld of %ld: %.*s", line, max, (int)(nl - p), p);
	}
}

/* meta_depth - stack depth after the program (must be 1) */
static int
meta_depth(const struct ruleset *s, const struct rule *r)
{
	int d = 0;
	size_t k;

	for (k = 0; k < r->nprog; k++) {
		const struct rule_op *o = &r->prog[k];

		if (o->op == ROP_RULE) {
			FUZZ_CHECK(o->v >= 0 && (size_t)o->v < s->n,
			    "meta %s reads rule %ld of %zu", r->name, o->v,
			    s->n);
			d++;
		} else if (o->op == ROP_NUM)
			d++;
		else if (o->op != ROP_NOT)
			d--;
		FUZZ_CHECK(d >= 1, "meta %s: stack underflow", r->name);
	}
	return d;
}

/* check_set - the invariants of a finished set */
static void
check_set(const struct ruleset *s, const char *text, size_t len)
{
	unsigned char *seen = calloc(s->n + 1, 1), *ones = malloc(s->n + 1),
		      *zeros = calloc(s->n + 1, 1), *pos = calloc(s->n + 1, 1);
	struct rule_matcher *md = ruleset_matcher_new(s);
	size_t i, k, counted;
	bool metas = false;

	memset(ones, 1, s->n + 1);
	FUZZ_CHECK(
	    s->norder == s->n, "order holds %zu of %zu", s->norder, s->n);
	for (k = 0; k < s->norder; k++) {
		i = s->order[k];
		FUZZ_CHECK(i < s->n && !seen[i], "order: %zu twice", i);
		seen[i] = 1;
		if (s->rules[i].type == RULE_META)
			metas = true;
		else
			FUZZ_CHECK(
			    !metas, "order: %s after a meta", s->rules[i].name);
		pos[i] = 1;
		if (s->rules[i].type == RULE_META) {
			const struct rule *r = &s->rules[i];
			size_t j;

			for (j = 0; j < r->nprog; j++)
				if (r->prog[j].op == ROP_RULE)
					FUZZ_CHECK(pos[r->prog[j].v],
					    "meta %s before %s", r->name,
					    s->rules[r->prog[j].v].name);
		}
	}
	counted = s->nheader + s->nbody + s->nrawbody + s->nfull + s->nuri +
	    s->nmeta + s->neval + s->ndnsbl + s->nuribl;
	FUZZ_CHECK(
	    counted == s->n, "counts add up to %zu of %zu", counted, s->n);
	for (i = 0; i < s->n; i++) {
		const struct rule *r = &s->rules[i];
		bool limited = false;
		size_t j;

		FUZZ_CHECK(r->name[0] != '\0' && strlen(r->name) <= 64,
		    "rule name '%s'", r->name);
		for (j = 0; r->name[j]; j++)
			FUZZ_CHECK(str_isalnum((unsigned char)r->name[j]) ||
				r->name[j] == '_',
			    "rule name '%s'", r->name);
		FUZZ_CHECK(ruleset_find(s, r->name) == (long)i, "rule %s twice",
		    r->name);
		switch (r->type) {
		case RULE_HEADER:
			FUZZ_CHECK(r->field != NULL && r->field[0] != '\0',
			    "header %s without a field", r->name);
			FUZZ_CHECK(r->exists || r->re != NULL,
			    "header %s without a regex", r->name);
			break;
		case RULE_BODY:
		case RULE_RAWBODY:
		case RULE_FULL:
		case RULE_URI:
			FUZZ_CHECK(
			    r->re != NULL, "%s without a regex", r->name);
			break;
		case RULE_META:
			FUZZ_CHECK(meta_depth(s, r) == 1,
			    "meta %s leaves a bad stack", r->name);
			(void)ruleset_meta(r, zeros);
			(void)ruleset_meta(r, ones);
			break;
		case RULE_EVAL:
			FUZZ_CHECK((unsigned)r->func < RF_MAX,
			    "eval %s: function %d", r->name, (int)r->func);
			break;
		case RULE_DNSBL:
		case RULE_URIBL:
			FUZZ_CHECK(r->zone != NULL && r->zone[0] != '\0',
			    "%s without a zone", r->name);
			for (j = 0; r->zone[j]; j++)
				FUZZ_CHECK(
				    !(r->zone[j] >= 'A' && r->zone[j] <= 'Z'),
				    "zone %s not lower case", r->zone);
			break;
		}
		if (r->re != NULL && md != NULL)
			(void)ruleset_match(s, r, text, len, md, &limited);
	}
	ruleset_matcher_free(md);
	free(seen);
	free(ones);
	free(zeros);
	free(pos);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct buf err = BUF_INIT;
	struct ruleset *s;
	const char *a, *b = NULL, *nul;
	size_t alen, blen = 0;
	int rc;

	if (size < 1)
		return 0;
	s = ruleset_new(1000 + (unsigned long)data[0] * 100);
	a = (const char *)data + 1;
	alen = size - 1;
	if ((nul = memchr(a, '\0', alen)) != NULL) {
		b = nul + 1;
		blen = alen - (size_t)(b - a);
		alen = (size_t)(nul - a);
	}
	rc = ruleset_add_text(s, "a.rules", a, alen, &err);
	if (b != NULL && ruleset_add_text(s, "b.rules", b, blen, &err) == -1)
		rc = -1;
	if (ruleset_finish(s, &err) == -1)
		rc = -1;
	if (rc == -1)
		check_errors(&err, lines_in(a, alen), lines_in(b, blen));
	else {
		FUZZ_CHECK(err.len == 0, "accepted with errors: %s", err.data);
		check_set(s, a, alen);
	}
	ruleset_free(s);
	buf_release(&err);
	return 0;
}
