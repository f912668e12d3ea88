/*
 * keyrec.c - DKIM key records: build ours, parse what DNS has (keyrec.h).
 */
#include <stdarg.h>
#include <stdbool.h>
#include <string.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "keyrec.h"

/* One tag=value pair of a tag list, pointing into the record text. */
struct keyrec_tag {
	const char *name;
	size_t nlen;
	const char *val;
	size_t vlen;
};

/* keyrec_why - a reason in the arena (printf-like) */
static const char *keyrec_why(struct arena *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static const char *
keyrec_why(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return s != NULL ? s : "out of memory";
}

/* keyrec_fws - RFC 6376 3.2 folding white space in a TXT record */
static bool
keyrec_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* keyrec_trim - bounds of s without leading and trailing FWS */
static void
keyrec_trim(const char **s, size_t *len)
{
	while (*len > 0 && keyrec_fws((unsigned char)**s)) {
		(*s)++;
		(*len)--;
	}
	while (*len > 0 && keyrec_fws((unsigned char)(*s)[*len - 1]))
		(*len)--;
}

/* keyrec_value - the record text we publish */
void
keyrec_value(struct buf *out, const char *k, const char *p64)
{
	buf_addf(out, "v=DKIM1; k=%s; p=%s", k, p64);
}

/* keyrec_zone - zone-file form, strings of at most 255 bytes */
void
keyrec_zone(struct buf *out, const char *owner, const char *value)
{
	size_t len = strlen(value), off = 0, n;

	if (owner != NULL)
		buf_addf(out, "%s %d IN TXT ( ", owner, AG_KEYREC_TTL);
	do {
		n = len - off > AG_TXT_STRING_MAX ? AG_TXT_STRING_MAX
						  : len - off;
		if (off > 0)
			buf_addch(out, ' ');
		buf_addch(out, '"');
		buf_add(out, value + off, n);
		buf_addch(out, '"');
		off += n;
	} while (off < len);
	if (owner != NULL)
		buf_addstr(out, " )");
	buf_addch(out, '\n');
}

/* keyrec_spec_is - does tag-spec s start with tag name c and "="? */
static bool
keyrec_spec_is(const char *s, size_t len, int c, const char **val, size_t *vlen)
{
	size_t i = 1;

	if (len == 0 || s[0] != c)
		return false;
	while (i < len && keyrec_fws((unsigned char)s[i]))
		i++;
	if (i == len || s[i] != '=')
		return false;
	*val = s + i + 1;
	*vlen = len - i - 1;
	keyrec_trim(val, vlen);
	return true;
}

/* keyrec_is_dkim - a key record as a verifier would see it */
bool
keyrec_is_dkim(const char *txt, size_t len)
{
	const char *spec = txt, *semi, *val;
	size_t slen, vlen;
	bool first = true;

	for (;;) {
		semi = memchr(spec, ';', len - (size_t)(spec - txt));
		slen =
		    semi ? (size_t)(semi - spec) : len - (size_t)(spec - txt);
		keyrec_trim(&spec, &slen);
		if (first && keyrec_spec_is(spec, slen, 'v', &val, &vlen))
			return vlen == 5 && memcmp(val, "DKIM1", 5) == 0;
		if (keyrec_spec_is(spec, slen, 'p', &val, &vlen))
			return true;
		if (slen > 0)
			first = false;
		if (semi == NULL)
			return false;
		spec = semi + 1;
	}
}

/* keyrec_tag_check - one tag-spec's name and value characters (3.2) */
static int
keyrec_tag_check(struct arena *a, const struct keyrec_tag *t, const char **why)
{
	size_t i;

	for (i = 0; i < t->nlen; i++) {
		unsigned char c = (unsigned char)t->name[i];

		if (!(str_isalpha(c) ||
			(i > 0 && (str_isdigit(c) || c == '_'))))
			break;
	}
	if (t->nlen == 0 || i < t->nlen) {
		*why = keyrec_why(
		    a, "bad tag name '%s'", str_safe(a, t->name, t->nlen));
		return -1;
	}
	for (i = 0; i < t->vlen; i++) {
		unsigned char c = (unsigned char)t->val[i];

		/* VALCHAR = %x21-3A / %x3C-7E, with FWS between them */
		if (!keyrec_fws(c) && (c < 0x21 || c > 0x7e)) {
			*why = keyrec_why(a, "tag %s: byte 0x%02x not allowed",
			    str_safe(a, t->name, t->nlen), c);
			return -1;
		}
	}
	return 0;
}

/* keyrec_tags - split a tag list into t[]; -1 and *why on bad syntax */
static int
keyrec_tags(struct arena *a, const char *txt, size_t len, struct keyrec_tag *t,
    size_t *nt, const char **why)
{
	const char *spec = txt, *semi, *eq;
	size_t slen, n = 0, j;

	for (;;) {
		semi = memchr(spec, ';', len - (size_t)(spec - txt));
		slen =
		    semi ? (size_t)(semi - spec) : len - (size_t)(spec - txt);
		keyrec_trim(&spec, &slen);
		/* an empty tag-spec: the optional ";" at the end (3.2) */
		if (slen > 0) {
			if ((eq = memchr(spec, '=', slen)) == NULL) {
				*why = keyrec_why(a, "'%s' is not tag=value",
				    str_safe(a, spec, slen));
				return -1;
			}
			if (n == AG_KEYREC_MAX_TAGS) {
				*why = keyrec_why(
				    a, "more than %d tags", AG_KEYREC_MAX_TAGS);
				return -1;
			}
			t[n].name = spec;
			t[n].nlen = (size_t)(eq - spec);
			t[n].val = eq + 1;
			t[n].vlen = slen - t[n].nlen - 1;
			keyrec_trim(&t[n].name, &t[n].nlen);
			keyrec_trim(&t[n].val, &t[n].vlen);
			if (keyrec_tag_check(a, &t[n], why) == -1)
				return -1;
			for (j = 0; j < n; j++) {
				if (t[j].nlen == t[n].nlen &&
				    memcmp(t[j].name, t[n].name, t[n].nlen) ==
					0) {
					*why = keyrec_why(a,
					    "tag %s appears twice "
					    "(RFC 6376 3.2)",
					    str_safe(a, t[n].name, t[n].nlen));
					return -1;
				}
			}
			n++;
		}
		if (semi == NULL)
			break;
		spec = semi + 1;
	}
	*nt = n;
	return 0;
}

/* keyrec_has_token - does a colon-separated list hold word (any case)? */
static bool
keyrec_has_token(const char *v, size_t vlen, const char *word)
{
	const char *tok = v, *colon;
	size_t tlen;

	for (;;) {
		colon = memchr(tok, ':', vlen - (size_t)(tok - v));
		tlen = colon ? (size_t)(colon - tok) : vlen - (size_t)(tok - v);
		keyrec_trim(&tok, &tlen);
		if (str_caseeq_len(tok, tlen, word))
			return true;
		if (colon == NULL)
			return false;
		tok = colon + 1;
	}
}

/* keyrec_b64 - the value of one base64 character, or -1 */
static int
keyrec_b64(int c)
{
	if (c >= 'A' && c <= 'Z')
		return c - 'A';
	if (c >= 'a' && c <= 'z')
		return c - 'a' + 26;
	if (c >= '0' && c <= '9')
		return c - '0' + 52;
	if (c == '+')
		return 62;
	if (c == '/')
		return 63;
	return -1;
}

/* keyrec_base64_decode - base64string of RFC 6376 (FWS allowed) */
int
keyrec_base64_decode(struct arena *a, const char *s, size_t len,
    unsigned char **out, size_t *outlen, const char **why)
{
	unsigned char *o;
	unsigned acc = 0, bits = 0;
	size_t i, n = 0, nchars = 0, pad = 0;
	int v;

	if ((o = arena_alloc(a, len / 4 * 3 + 3)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (keyrec_fws(c))
			continue;
		if (c == '=') {
			if (++pad > 2) {
				*why = "not base64: more than two '='";
				return -1;
			}
			continue;
		}
		if (pad > 0) {
			*why = "not base64: data after the '=' padding";
			return -1;
		}
		if ((v = keyrec_b64(c)) == -1) {
			*why = keyrec_why(a,
			    c > 0x20 && c < 0x7f
				? "not base64: '%c' at offset %zu"
				: "not base64: byte 0x%02x at offset %zu",
			    c, i);
			return -1;
		}
		acc = ((acc << 6) | (unsigned)v) & 0xffffu;
		bits += 6;
		nchars++;
		if (bits >= 8) {
			bits -= 8;
			o[n++] = (unsigned char)(acc >> bits);
		}
	}
	if (nchars % 4 == 1 || (pad > 0 && (nchars + pad) % 4 != 0)) {
		*why = keyrec_why(a,
		    "not base64: %zu characters and %zu '=' do not make "
		    "whole bytes",
		    nchars, pad);
		return -1;
	}
	*out = o;
	*outlen = n;
	return 0;
}

/* keyrec_apply - one known tag into r; -1 and *why when it is wrong */
static int
keyrec_apply(struct arena *a, const struct keyrec_tag *t, size_t idx,
    struct keyrec *r, const char **why)
{
	unsigned char *p;
	char *s;

	if (t->nlen != 1)
		return 0; /* all key-record tags have one-letter names */
	switch (t->name[0]) {
	case 'v':
		if (idx != 0) {
			*why = "v= is not the first tag (RFC 6376 3.6.1)";
			return -1;
		}
		if (t->vlen != 5 || memcmp(t->val, "DKIM1", 5) != 0) {
			*why = keyrec_why(a, "v=%s, must be DKIM1",
			    str_safe(a, t->val, t->vlen));
			return -1;
		}
		break;
	case 'k':
		if (t->vlen == 0) {
			*why = "empty k=";
			return -1;
		}
		if ((s = arena_strndup(a, t->val, t->vlen)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		r->k = str_tolower(s);
		break;
	case 'p':
		if (t->vlen == 0) {
			r->revoked = true;
			break;
		}
		if (keyrec_base64_decode(
			a, t->val, t->vlen, &p, &r->plen, why) == -1) {
			*why = keyrec_why(a, "p= is %s", *why);
			return -1;
		}
		r->p = p;
		break;
	case 'h':
		r->has_h = true;
		r->h_sha256 = keyrec_has_token(t->val, t->vlen, "sha256");
		r->h = str_safe(a, t->val, t->vlen);
		break;
	case 's':
		r->has_s = true;
		r->s_email = keyrec_has_token(t->val, t->vlen, "email") ||
		    keyrec_has_token(t->val, t->vlen, "*");
		r->s = str_safe(a, t->val, t->vlen);
		break;
	case 't':
		r->t_testing = keyrec_has_token(t->val, t->vlen, "y");
		r->t_strict = keyrec_has_token(t->val, t->vlen, "s");
		break;
	}
	return 0;
}

/* keyrec_parse - a key record's tags into r (RFC 6376 3.6.1) */
int
keyrec_parse(struct arena *a, const char *txt, size_t len, struct keyrec *r,
    const char **why)
{
	struct keyrec_tag t[AG_KEYREC_MAX_TAGS];
	size_t nt, i;
	bool has_p = false;

	memset(r, 0, sizeof(*r));
	r->k = "rsa"; /* RFC 6376 3.6.1: k= defaults to rsa */
	if (keyrec_tags(a, txt, len, t, &nt, why) == -1)
		return -1;
	for (i = 0; i < nt; i++) {
		if (keyrec_apply(a, &t[i], i, r, why) == -1)
			return -1;
		if (t[i].nlen == 1 && t[i].name[0] == 'p')
			has_p = true;
	}
	if (!has_p) {
		*why = "no p= tag (required, RFC 6376 3.6.1)";
		return -1;
	}
	return 0;
}
