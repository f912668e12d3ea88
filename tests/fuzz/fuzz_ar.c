/*
 * fuzz_ar.c - libFuzzer target: Authentication-Results (ar.c).
 *
 * The input is read two ways:
 *   1. as a received A-R header value, up to its first NUL (the milter
 *      hands values over as C strings):
 *      ar_parse_servid(), and ar_is_ours() with a fixed authserv-id and
 *      with the id decoded from the input (2.);
 *   2. as a template for ar_build(): split on ';' into records; record 0
 *      is the authserv-id, each further record is one result whose words
 *      (split on ' ') are "method=result", "reason=...", "(comment" and
 *      "ptype.name=value". %XX decodes to any byte (%0D%0A, %22, %00 cuts)
 *      in the id, reason, comment and values - the parts that can carry
 *      network data. method, result, ptype and name are the callers'
 *      constants by contract (ar.h): a word that is not a keyword
 *      ([A-Za-z0-9_-]+) is replaced by one from a fixed list.
 * Asserts, beyond "no crash, no leak":
 *   - ar_build() with eol NULL, "\n" and "\r\n": CR and LF appear only as
 *     the fold eol + TAB; no other control or 8-bit byte is written;
 *   - unfolding (eol + TAB -> SP) gives exactly the one-line (NULL) form:
 *     folding never changes the content;
 *   - round trip: ar_parse_servid() of a built header returns the
 *     authserv-id that was built in when the id is an RFC 2045 token
 *     (and ar_is_ours() recognises our own header for any printable
 *     id);
 *   - ar_quote_value(): an unchanged value holds no white space, quote,
 *     parenthesis, ';' or backslash; a quoted one is a well-formed
 *     quoted-string whose unescaped content is the value with control
 *     and 8-bit bytes turned into '?';
 *   - ar_parse_servid() of the raw input: a non-empty id, and
 *     ar_is_ours() agrees with it (ids equal ignoring case).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"
#include "ar.h"
#include "fuzz_common.h"

#define AG_FUZZ_MAX_RESULTS 16
#define AG_FUZZ_SERVID	    "mx.authgate.test"

static const char *const fuzz_keywords[] = {
    "spf",
    "dkim",
    "dmarc",
    "arc",
    "iprev",
    "auth",
    "pass",
    "fail",
    "softfail",
    "neutral",
    "none",
    "temperror",
    "permerror",
    "policy",
    "smtp",
    "header",
    "mailfrom",
    "helo",
    "d",
    "i",
    "b",
    "from",
};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* is_keyword - [A-Za-z0-9_-]+ */
static bool
is_keyword(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!str_isalnum((unsigned char)*s) && *s != '-' && *s != '_')
			return false;
	return true;
}

/* is_token - RFC 2045 token */
static bool
is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++) {
		unsigned char c = (unsigned char)*s;

		if (c <= 0x20 || c >= 0x7f ||
		    strchr("()<>@,;:\\\"/[]?=", c) != NULL)
			return false;
	}
	return true;
}

/* is_printable - printable US-ASCII (space included) */
static bool
is_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* hexval - one hex digit, -1 if none */
static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = str_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* decode - %XX-decode [p, p+len) into the arena (NUL cuts the string) */
static char *
decode(struct arena *a, const char *p, size_t len)
{
	char *out = arena_alloc(a, len + 1);
	size_t i, n = 0;

	if (out == NULL)
		abort();
	for (i = 0; i < len; i++) {
		int hi, lo;

		if (p[i] == '%' && i + 2 < len &&
		    (hi = hexval((unsigned char)p[i + 1])) != -1 &&
		    (lo = hexval((unsigned char)p[i + 2])) != -1) {
			out[n++] = (char)(hi * 16 + lo);
			i += 2;
		} else
			out[n++] = p[i];
	}
	out[n] = '\0';
	return out;
}

/* keyword - the word if it is a keyword, else one from the list */
static const char *
keyword(struct arena *a, const char *p, size_t len)
{
	char *w = arena_strndup(a, p, len);

	if (w == NULL)
		abort();
	if (is_keyword(w))
		return w;
	return fuzz_keywords[(len + (len ? (unsigned char)p[0] : 0)) %
	    (sizeof(fuzz_keywords) / sizeof(fuzz_keywords[0]))];
}

/* parse_word - one word of a result record into r */
static void
parse_word(struct arena *a, struct ar_result *r, const char *w, size_t len)
{
	const char *eq = memchr(w, '=', len), *dot;

	if (len > 0 && w[0] == '(') {
		size_t clen = len - 1;

		if (clen > 0 && w[len - 1] == ')')
			clen--;
		r->comment = decode(a, w + 1, clen);
		return;
	}
	if (eq == NULL)
		return;
	if ((size_t)(eq - w) == 6 && memcmp(w, "reason", 6) == 0) {
		r->reason = decode(a, eq + 1, len - 7);
		return;
	}
	dot = memchr(w, '.', (size_t)(eq - w));
	if (dot == NULL || r->nprops >= AG_AR_MAX_PROPS)
		return;
	r->props[r->nprops].ptype = keyword(a, w, (size_t)(dot - w));
	r->props[r->nprops].name = keyword(a, dot + 1, (size_t)(eq - dot - 1));
	r->props[r->nprops].value =
	    decode(a, eq + 1, len - (size_t)(eq + 1 - w));
	r->nprops++;
}

/* parse_result - "method=result word word ..." */
static struct ar_result *
parse_result(struct arena *a, const char *p, size_t len)
{
	struct ar_result *r = arena_zalloc(a, sizeof(*r));
	size_t i = 0;
	bool first = true;

	if (r == NULL)
		abort();
	while (i < len) {
		size_t w;

		while (i < len && p[i] == ' ')
			i++;
		for (w = 0; i + w < len && p[i + w] != ' '; w++)
			;
		if (w == 0)
			break;
		if (first) {
			const char *eq = memchr(p + i, '=', w);
			size_t mlen = eq ? (size_t)(eq - (p + i)) : w;

			r->method = keyword(a, p + i, mlen);
			r->result =
			    eq ? keyword(a, eq + 1, w - mlen - 1) : "none";
			first = false;
		} else
			parse_word(a, r, p + i, w);
		i += w;
	}
	if (first) {
		r->method = "spf";
		r->result = "none";
	}
	return r;
}

/* check_quote - ar_quote_value() contract */
static void
check_quote(struct arena *a, const char *v)
{
	const char *q = ar_quote_value(a, v);
	size_t qlen, i, n = 0, vlen = strlen(v);

	FUZZ_CHECK(q != NULL, "ar_quote_value returned NULL");
	if (q == v) {
		for (i = 0; i < vlen; i++) {
			unsigned char c = (unsigned char)v[i];

			FUZZ_CHECK(c > 0x20 && c < 0x7f &&
				strchr("\"();\\", c) == NULL,
			    "unquoted value holds byte 0x%02x: '%s'", c,
			    fuzz_escape(v, vlen));
		}
		return;
	}
	qlen = strlen(q);
	FUZZ_CHECK(qlen >= 2 && q[0] == '"' && q[qlen - 1] == '"',
	    "not a quoted-string: '%s'", fuzz_escape(q, qlen));
	for (i = 1; i + 1 < qlen; i++, n++) {
		unsigned char c = (unsigned char)q[i], want;

		FUZZ_CHECK(c >= 0x20 && c < 0x7f,
		    "control byte in quoted value: '%s'", fuzz_escape(q, qlen));
		FUZZ_CHECK(
		    c != '"', "unescaped quote in '%s'", fuzz_escape(q, qlen));
		if (c == '\\') {
			FUZZ_CHECK(i + 2 < qlen, "dangling backslash in '%s'",
			    fuzz_escape(q, qlen));
			c = (unsigned char)q[++i];
		}
		FUZZ_CHECK(n < vlen, "quoted value longer than '%s'",
		    fuzz_escape(v, vlen));
		want = (unsigned char)v[n];
		if (want < 0x20 || want >= 0x7f)
			want = '?';
		FUZZ_CHECK(c == want, "quoted '%s' does not unquote to '%s'",
		    fuzz_escape(q, qlen), fuzz_escape(v, vlen));
	}
	FUZZ_CHECK(
	    n == vlen, "quoted value shorter than '%s'", fuzz_escape(v, vlen));
}

/* check_folds - CR/LF only as the fold, no other control bytes */
static void
check_folds(const char *h, const char *eol)
{
	size_t len = strlen(h), elen = eol ? strlen(eol) : 0, i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)h[i];

		if (eol != NULL && strncmp(h + i, eol, elen) == 0) {
			FUZZ_CHECK(h[i + elen] == '\t',
			    "fold without a TAB at %zu: '%s'", i,
			    fuzz_escape(h, len));
			i += elen; /* the TAB */
			continue;
		}
		FUZZ_CHECK(c >= 0x20 && c < 0x7f,
		    "byte 0x%02x at %zu outside a fold (eol %s): '%s'", c, i,
		    eol == NULL		 ? "none"
			: eol[0] == '\r' ? "CRLF"
					 : "LF",
		    fuzz_escape(h, len));
	}
}

/* unfold - eol + TAB -> SP */
static char *
unfold(const char *h, const char *eol)
{
	size_t len = strlen(h), elen = strlen(eol), i, n = 0;
	char *out = malloc(len + 1);

	if (out == NULL)
		abort();
	for (i = 0; i < len; i++) {
		if (strncmp(h + i, eol, elen) == 0 && h[i + elen] == '\t') {
			out[n++] = ' ';
			i += elen;
		} else
			out[n++] = h[i];
	}
	out[n] = '\0';
	return out;
}

/* check_build - render, and check folds, unfolding and round trip */
static void
check_build(struct arena *a, const char *servid, const struct ar_result *r)
{
	static const char *const eols[] = {"\n", "\r\n"};
	const char *flat = ar_build(a, servid, r, NULL);
	size_t i;

	FUZZ_CHECK(flat != NULL, "ar_build(eol NULL) returned NULL");
	check_folds(flat, NULL);
	for (i = 0; i < 2; i++) {
		const char *h = ar_build(a, servid, r, eols[i]);
		char *u, *id;

		FUZZ_CHECK(h != NULL, "ar_build returned NULL");
		check_folds(h, eols[i]);
		u = unfold(h, eols[i]);
		FUZZ_CHECK(strcmp(u, flat) == 0,
		    "unfolded header differs from the one-line form:\n"
		    "folded:   %s\n",
		    fuzz_escape(h, strlen(h)));
		free(u);
		FUZZ_CHECK(!is_printable(servid) ||
			ar_is_ours(a, h, strlen(h), servid),
		    "our own header is not ours: id '%s', header '%s'",
		    fuzz_escape(servid, strlen(servid)),
		    fuzz_escape(h, strlen(h)));
		if (!is_token(servid))
			continue;
		id = ar_parse_servid(a, h, strlen(h));
		FUZZ_CHECK(id != NULL && strcmp(id, servid) == 0,
		    "round trip: built with id '%s', parsed '%s' from '%s'",
		    servid, id ? fuzz_escape(id, strlen(id)) : "(null)",
		    fuzz_escape(h, strlen(h)));
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct arena *a = arena_new(4096);
	const char *p = (const char *)data, *semi;
	struct ar_result *head = NULL, **tail = &head;
	char *servid, *id;
	size_t off, len, nres = 0;
	int i;

	if (a == NULL)
		abort();

	/* 1. as a received header: a C string, as msg_header() gets it */
	len = strnlen(p, size);
	id = ar_parse_servid(a, p, len);
	if (id != NULL) {
		FUZZ_CHECK(id[0] != '\0', "empty authserv-id from '%s'",
		    fuzz_escape(p, len));
		FUZZ_CHECK(ar_is_ours(a, p, len, id),
		    "ar_is_ours false for its own parsed id '%s'",
		    fuzz_escape(id, strlen(id)));
		FUZZ_CHECK(ar_is_ours(a, p, len, AG_FUZZ_SERVID) ==
			(str_casecmp(id, AG_FUZZ_SERVID) == 0),
		    "ar_is_ours disagrees with parsed id '%s'",
		    fuzz_escape(id, strlen(id)));
	} else
		(void)ar_is_ours(a, p, len, AG_FUZZ_SERVID);

	/* 2. as a template: record 0 is the authserv-id */
	semi = memchr(p, ';', size);
	len = semi ? (size_t)(semi - p) : size;
	servid = decode(a, p, len);
	(void)ar_is_ours(a, p, strnlen(p, size), servid);
	check_quote(a, servid);
	off = semi ? len + 1 : size;
	while (off < size && nres < AG_FUZZ_MAX_RESULTS) {
		struct ar_result *r;

		semi = memchr(p + off, ';', size - off);
		len = semi ? (size_t)(semi - (p + off)) : size - off;
		r = parse_result(a, p + off, len);
		if (r->reason)
			check_quote(a, r->reason);
		for (i = 0; i < r->nprops; i++)
			check_quote(a, r->props[i].value);
		*tail = r;
		tail = &r->next;
		nres++;
		off += len + 1;
	}
	check_build(a, servid, head);
	arena_free(a);
	return 0;
}
