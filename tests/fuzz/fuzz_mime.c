/*
 * fuzz_mime.c - libFuzzer target: the streaming MIME walker (mime*.c)
 * and mime_decode_header().
 *
 * Input: four flag bytes, then a message as text. Byte 0: chunk size
 * (1, 2, 3, 7, 64, 4096 or pseudo-random sizes from 1 to 300); byte 1:
 * scan_limit (0: none, else byte * 61); byte 2: max_parts (bits 0-1: 0,
 * 1, 3, 50) and max_uris (bits 2-3: 0, 1, 5, 200), bit 4 allocation
 * failures; byte 3: the allocation that fails first. The message's header
 * section is split with rfc5322_next_field() and every field handed to
 * mime_header() (name and value cut at a NUL, as the MTA's strings are);
 * the rest is the body.
 * Asserts, beyond "no crash, no leak" (the iconv descriptor included):
 *   - the body fed in chunks gives the same result as fed whole: flags,
 *     counts, every part's fields, text, raw, every URI; and so does a
 *     walk that hands text and raw to an output function (pieces that
 *     start at a character) instead of keeping them;
 *   - text and raw are NUL-terminated at textlen/rawlen, valid UTF-8, at
 *     most 3 * scan_limit + 4096 bytes; text is joined as mime.h says
 *     (no white space but single spaces and "\n" ends of paragraphs, no
 *     empty paragraph) unless it was cut at its cap;
 *   - body_bytes is min(body, scan_limit) and MIME_F_TRUNCATED is set
 *     when the body was longer; only known flags are set;
 *   - nparts is the length of the list and at most max_parts; depths
 *     0..MIME_MAX_DEPTH, types "a/b" in lower case; text_parts +
 *     html_parts and attachments at most nparts;
 *   - nuris is the length of the list, at most max_uris, each URI once,
 *     non-empty valid UTF-8 of at most 2048 bytes; hosts valid UTF-8
 *     without upper-case ASCII, white space, '/', '\', '?', '#' or '@';
 *     an IP literal's host is an address inet_pton reads; a URI from
 *     text has a host; mime_uri_count() agrees;
 *   - mime_decode_header() of every value: valid UTF-8 with no CR, LF
 *     or NUL and no white space at either end; a value with no "=?",
 *     CR, LF or NUL that is valid UTF-8 comes back only trimmed;
 *   - with allocation failures (with an output function or without):
 *     -1 and NULL only, never a crash or a leak.
 */
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "rfc5322.h"
#include "mime.h"
#include "fuzz_common.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* utf8_ok - is s[0..n) valid UTF-8 (RFC 3629)? Written apart from the
 * walker's own check on purpose. */
static bool
utf8_ok(const char *str, size_t n)
{
	const unsigned char *s = (const unsigned char *)str;
	size_t i = 0, k, need;
	uint32_t cp;

	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if (s[i] >= 0xc2 && s[i] <= 0xdf)
			need = 1;
		else if (s[i] >= 0xe0 && s[i] <= 0xef)
			need = 2;
		else if (s[i] >= 0xf0 && s[i] <= 0xf4)
			need = 3;
		else
			return false;
		cp = s[i] & (0x7f >> (need + 1));
		if (n - i <= need)
			return false;
		for (k = 1; k <= need; k++) {
			if ((s[i + k] & 0xc0) != 0x80)
				return false;
			cp = (cp << 6) | (s[i + k] & 0x3f);
		}
		if ((need == 2 && cp < 0x800) || (need == 3 && cp < 0x10000) ||
		    cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
			return false;
		i += need + 1;
	}
	return true;
}

struct hdr {
	char *name, *value;
};

/* What mime_set_output's function got. */
struct sink {
	char *p[2];
	size_t n[2];
};

/* sink_out - keep a piece of text or raw; it ends at a character */
static void
sink_out(void *ctx, int which, const char *s, size_t n)
{
	struct sink *k = ctx;

	FUZZ_CHECK((which == MIME_OUT_TEXT || which == MIME_OUT_RAW) && n > 0 &&
		(s[0] & 0xc0) != 0x80,
	    "output %d of %zu bytes", which, n);
	if ((k->p[which] = realloc(k->p[which], k->n[which] + n + 1)) == NULL)
		abort();
	memcpy(k->p[which] + k->n[which], s, n);
	k->n[which] += n;
	k->p[which][k->n[which]] = '\0';
}

/* run - one walk over the headers and body, its text and raw handed to
 * k when it is not NULL; NULL when it failed */
static const struct mime_result *
run(struct arena *a, const struct hdr *h, size_t nh, const uint8_t *body,
    size_t blen, size_t chunk, size_t limit, size_t mp, size_t mu,
    struct sink *k)
{
	struct mime *m = mime_new(a, limit, mp, mu);
	size_t i, off = 0, seed = blen, last = 0, n;

	if (m == NULL)
		return NULL;
	if (k != NULL)
		mime_set_output(m, sink_out, k);
	for (i = 0; i < nh; i++)
		if (mime_header(m, h[i].name, h[i].value) == -1)
			return NULL;
	while (off < blen) {
		n = chunk;
		if (n == 0) { /* pseudo-random sizes, the same every run */
			seed = seed * 1103515245 + 12345;
			n = 1 + (seed >> 8) % 300;
		}
		if (n > blen - off)
			n = blen - off;
		if (mime_body(m, body + off, n) == -1)
			return NULL;
		FUZZ_CHECK(mime_uri_count(m) >= last, "URI count went down");
		last = mime_uri_count(m);
		off += n;
	}
	return mime_end(m);
}

/* check_text - the paragraph joining of mime.h */
static void
check_text(const char *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)t[i];

		FUZZ_CHECK(c != '\t' && c != '\r' && c != '\f' && c != '\v',
		    "white space 0x%02x in text at %zu", c, i);
		if (c == ' ')
			FUZZ_CHECK(i > 0 && t[i - 1] != ' ' &&
				t[i - 1] != '\n' && i + 1 < n &&
				t[i + 1] != '\n',
			    "space not between words at %zu: '%s'", i,
			    fuzz_escape(t, n));
		if (c == '\n')
			FUZZ_CHECK(i > 0 && t[i - 1] != '\n',
			    "empty paragraph at %zu: '%s'", i,
			    fuzz_escape(t, n));
	}
	FUZZ_CHECK(n == 0 || t[n - 1] == '\n', "text does not end a paragraph");
}

/* check_result - what a result must be */
static void
check_result(const struct mime_result *r, size_t blen, size_t limit, size_t mp,
    size_t mu)
{
	size_t cap = limit ? 3 * limit + 4096 : SIZE_MAX, n = 0;
	const struct mime_part *p;
	const struct mime_uri *u, *v;
	unsigned char addr[16];

	FUZZ_CHECK(r->text != NULL && strlen(r->text) == r->textlen,
	    "text length %zu", r->textlen);
	FUZZ_CHECK(r->raw != NULL && strlen(r->raw) == r->rawlen,
	    "raw length %zu", r->rawlen);
	FUZZ_CHECK(utf8_ok(r->text, r->textlen), "text not UTF-8: '%s'",
	    fuzz_escape(r->text, r->textlen));
	FUZZ_CHECK(utf8_ok(r->raw, r->rawlen), "raw not UTF-8: '%s'",
	    fuzz_escape(r->raw, r->rawlen));
	FUZZ_CHECK(r->textlen <= cap && r->rawlen <= cap,
	    "text %zu, raw %zu past the cap %zu", r->textlen, r->rawlen, cap);
	if (r->textlen + 16 < cap)
		check_text(r->text, r->textlen);
	FUZZ_CHECK(r->body_bytes == (limit && blen > limit ? limit : blen),
	    "body_bytes %zu of %zu (limit %zu)", r->body_bytes, blen, limit);
	FUZZ_CHECK(!(limit && blen > limit) || (r->flags & MIME_F_TRUNCATED),
	    "not truncated");
	FUZZ_CHECK((r->flags & ~0x7ffu) == 0, "flags %#x", r->flags);
	for (p = r->parts; p != NULL; p = p->next, n++) {
		FUZZ_CHECK(p->depth >= 0 && p->depth <= MIME_MAX_DEPTH,
		    "depth %d", p->depth);
		FUZZ_CHECK(p->type != NULL && strchr(p->type, '/') != NULL,
		    "type '%s'", p->type ? p->type : "(null)");
		FUZZ_CHECK(p->encoding != NULL, "no encoding");
		FUZZ_CHECK(p->filename == NULL ||
			utf8_ok(p->filename, strlen(p->filename)),
		    "filename not UTF-8");
	}
	FUZZ_CHECK(n == r->nparts && (mp == 0 || n <= mp),
	    "%zu parts listed, nparts %zu, max %zu", n, r->nparts, mp);
	FUZZ_CHECK(r->text_parts + r->html_parts <= n && r->attachments <= n,
	    "text %zu html %zu attachments %zu of %zu parts", r->text_parts,
	    r->html_parts, r->attachments, n);
	for (n = 0, u = r->uris; u != NULL; u = u->next, n++) {
		size_t ul = strlen(u->uri), hl = strlen(u->host), i;

		FUZZ_CHECK(ul > 0 && ul <= 2048 && utf8_ok(u->uri, ul),
		    "uri '%s'", fuzz_escape(u->uri, ul));
		FUZZ_CHECK(utf8_ok(u->host, hl), "host not UTF-8 '%s'",
		    fuzz_escape(u->host, hl));
		for (i = 0; i < hl; i++)
			FUZZ_CHECK(!(u->host[i] >= 'A' && u->host[i] <= 'Z') &&
				(unsigned char)u->host[i] > ' ' &&
				strchr("/\\?#@", u->host[i]) == NULL,
			    "host '%s' of '%s'", fuzz_escape(u->host, hl),
			    fuzz_escape(u->uri, ul));
		if (u->ip_literal)
			FUZZ_CHECK(inet_pton(AF_INET, u->host, addr) == 1 ||
				inet_pton(AF_INET6, u->host, addr) == 1,
			    "IP literal '%s'", u->host);
		if (!u->from_html)
			FUZZ_CHECK(hl > 0, "URI from text without a host: '%s'",
			    fuzz_escape(u->uri, ul));
		for (v = u->next; v != NULL; v = v->next)
			FUZZ_CHECK(strcmp(u->uri, v->uri) != 0,
			    "URI twice: '%s'", fuzz_escape(u->uri, ul));
	}
	FUZZ_CHECK(n == r->nuris && (mu == 0 || n <= mu),
	    "%zu URIs listed, nuris %zu, max %zu", n, r->nuris, mu);
}

/* same - two results agree in everything */
static void
same(const struct mime_result *a, const struct mime_result *b, size_t chunk)
{
	const struct mime_part *p, *q;
	const struct mime_uri *u, *v;

	FUZZ_CHECK(a->flags == b->flags && a->nparts == b->nparts &&
		a->nuris == b->nuris && a->text_parts == b->text_parts &&
		a->html_parts == b->html_parts &&
		a->attachments == b->attachments &&
		a->html_images == b->html_images &&
		a->html_links == b->html_links &&
		a->body_bytes == b->body_bytes,
	    "chunks of %zu: flags %#x/%#x parts %zu/%zu uris %zu/%zu", chunk,
	    a->flags, b->flags, a->nparts, b->nparts, a->nuris, b->nuris);
	FUZZ_CHECK(a->textlen == b->textlen && strcmp(a->text, b->text) == 0,
	    "chunks of %zu: text '%s' / '%s'", chunk,
	    fuzz_escape(a->text, a->textlen), fuzz_escape(b->text, b->textlen));
	FUZZ_CHECK(a->rawlen == b->rawlen && strcmp(a->raw, b->raw) == 0,
	    "chunks of %zu: raw '%s' / '%s'", chunk,
	    fuzz_escape(a->raw, a->rawlen), fuzz_escape(b->raw, b->rawlen));
	for (p = a->parts, q = b->parts; p && q; p = p->next, q = q->next)
		FUZZ_CHECK(strcmp(p->type, q->type) == 0 &&
			strcmp(p->encoding, q->encoding) == 0 &&
			(p->charset == NULL) == (q->charset == NULL) &&
			(!p->charset || strcmp(p->charset, q->charset) == 0) &&
			(p->filename == NULL) == (q->filename == NULL) &&
			(!p->filename ||
			    strcmp(p->filename, q->filename) == 0) &&
			p->depth == q->depth &&
			p->attachment == q->attachment &&
			p->bytes == q->bytes && p->text_bytes == q->text_bytes,
		    "chunks of %zu: part %s differs", chunk, p->type);
	for (u = a->uris, v = b->uris; u && v; u = u->next, v = v->next)
		FUZZ_CHECK(strcmp(u->uri, v->uri) == 0 &&
			strcmp(u->host, v->host) == 0 &&
			u->ip_literal == v->ip_literal &&
			u->from_html == v->from_html,
		    "chunks of %zu: URI '%s' / '%s'", chunk, u->uri, v->uri);
}

/* check_decode - mime_decode_header() of a value */
static void
check_decode(const char *v, size_t len)
{
	struct arena *a = arena_new(0);
	char *d = a ? mime_decode_header(a, v, len) : NULL;
	size_t n, s, e;

	if (a == NULL)
		abort();
	FUZZ_CHECK(d != NULL, "decode failed");
	n = strlen(d);
	FUZZ_CHECK(utf8_ok(d, n), "decoded '%s' not UTF-8", fuzz_escape(d, n));
	FUZZ_CHECK(strpbrk(d, "\r\n") == NULL, "decoded has CR/LF");
	FUZZ_CHECK(n == 0 ||
		(d[0] != ' ' && d[0] != '\t' && d[n - 1] != ' ' &&
		    d[n - 1] != '\t'),
	    "decoded '%s' not trimmed", fuzz_escape(d, n));
	if (memmem(v, len, "=?", 2) == NULL && memchr(v, '\r', len) == NULL &&
	    memchr(v, '\n', len) == NULL && memchr(v, '\0', len) == NULL &&
	    utf8_ok(v, len)) {
		for (s = 0; s < len && (v[s] == ' ' || v[s] == '\t'); s++)
			;
		for (e = len; e > s && (v[e - 1] == ' ' || v[e - 1] == '\t');
		     e--)
			;
		FUZZ_CHECK(n == e - s && memcmp(d, v + s, n) == 0,
		    "plain value '%s' came back as '%s'", fuzz_escape(v, len),
		    fuzz_escape(d, n));
	}
	arena_free(a);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[] = {1, 2, 3, 7, 64, 4096, 0, 0};
	static const size_t mps[] = {0, 1, 3, 50}, mus[] = {0, 1, 5, 200};
	struct fuzz_reader fr = {data, size};
	struct rfc5322_field f;
	struct hdr h[64];
	size_t nh = 0, off = 0, chunk, limit, mp, mu, i, len;
	const struct mime_result *r1, *r2;
	struct mime_result handed;
	struct sink sk = {{NULL, NULL}, {0, 0}};
	struct arena *a1, *a2;
	uint8_t b0 = fr_byte(&fr), b1 = fr_byte(&fr), b2 = fr_byte(&fr),
		b3 = fr_byte(&fr);
	const char *msg = (const char *)fr.p;

	chunk = chunks[b0 & 7];
	limit = (size_t)b1 * 61;
	mp = mps[b2 & 3];
	mu = mus[(b2 >> 2) & 3];
	len = fr.n;
	while (nh < 64 &&
	    rfc5322_next_field(msg, len, &off, &f) == AG_R5322_FIELD) {
		h[nh].name = strndup(f.name, f.namelen);
		h[nh].value = strndup(f.value, f.valuelen);
		if (h[nh].name == NULL || h[nh].value == NULL)
			abort();
		check_decode(f.value, f.valuelen);
		nh++;
	}
	if (nh == 64)
		off = len; /* no body: too many fields to keep */
	if (b2 & 0x10) {
		/* allocation failures: only -1/NULL, no crash, no leak */
		arena_test_fail_after((unsigned long)b3 + 1);
		a1 = arena_new(0);
		arena_test_fail_after(0);
		if (a1 == NULL)
			abort();
		r1 = run(a1, h, nh, (const uint8_t *)msg + off, len - off,
		    chunk, limit, mp, mu, (b3 & 1) ? &sk : NULL);
		if (r1 != NULL && !(b3 & 1))
			check_result(r1, len - off, limit, mp, mu);
		arena_free(a1);
		free(sk.p[0]);
		free(sk.p[1]);
	} else {
		if ((a1 = arena_new(0)) == NULL || (a2 = arena_new(0)) == NULL)
			abort();
		r1 = run(a1, h, nh, (const uint8_t *)msg + off, len - off,
		    len - off + 1, limit, mp, mu, NULL);
		FUZZ_CHECK(r1 != NULL, "walk failed");
		check_result(r1, len - off, limit, mp, mu);
		r2 = run(a2, h, nh, (const uint8_t *)msg + off, len - off,
		    chunk, limit, mp, mu, NULL);
		FUZZ_CHECK(r2 != NULL, "chunked walk failed");
		same(r1, r2, chunk);
		arena_free(a2);
		/* text and raw handed over, not kept: the same */
		if ((a2 = arena_new(0)) == NULL)
			abort();
		r2 = run(a2, h, nh, (const uint8_t *)msg + off, len - off,
		    chunk, limit, mp, mu, &sk);
		FUZZ_CHECK(r2 != NULL && r2->text == NULL && r2->raw == NULL &&
			r2->textlen == sk.n[0] && r2->rawlen == sk.n[1],
		    "output walk: text %zu/%zu raw %zu/%zu",
		    r2 ? r2->textlen : 0, sk.n[0], r2 ? r2->rawlen : 0,
		    sk.n[1]);
		handed = *r2;
		handed.text = sk.p[0] ? sk.p[0] : "";
		handed.raw = sk.p[1] ? sk.p[1] : "";
		same(r1, &handed, chunk);
		free(sk.p[0]);
		free(sk.p[1]);
		arena_free(a2);
		arena_free(a1);
	}
	for (i = 0; i < nh; i++) {
		free(h[i].name);
		free(h[i].value);
	}
	return 0;
}
