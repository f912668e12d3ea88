/*
 * mime_hdr.c - header values for the MIME walker: parameters of
 * Content-Type and Content-Disposition (RFC 2045 5.1, RFC 2231), and
 * mime_decode_header() for RFC 2047 encoded-words (see mime.h).
 */
#include <stdint.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"
#include "mime_int.h"

/*
 * Parameters (RFC 2045 5.1, RFC 2231): ";" name "=" (token | quoted-
 * string), comments allowed around them. Values without quotes are read
 * to the next ';' (senders put spaces in them); extended values
 * (name*=charset'lang'%XX) and continuations (name*0, name*1*, ...) are
 * put together.
 */
struct param {
	const char *name, *val;
	size_t nlen, vlen;
	bool quoted;
};

/* skip_quoted - past the quoted string starting at v[i] ('"') */
static size_t
skip_quoted(const char *v, size_t len, size_t i)
{
	for (i++; i < len && v[i] != '"'; i++)
		if (v[i] == '\\')
			i++;
	return i < len ? i + 1 : len;
}

/* skip_comment - past the comment starting at v[i] ('(') */
static size_t
skip_comment(const char *v, size_t len, size_t i)
{
	size_t depth = 0;

	for (; i < len; i++) {
		if (v[i] == '\\')
			i++;
		else if (v[i] == '(')
			depth++;
		else if (v[i] == ')' && --depth == 0)
			return i + 1;
	}
	return len;
}

/* skip_cfws - past white space and comments */
static size_t
skip_cfws(const char *v, size_t len, size_t i)
{
	while (i < len) {
		if (str_isspace((unsigned char)v[i]))
			i++;
		else if (v[i] == '(')
			i = skip_comment(v, len, i);
		else
			break;
	}
	return i;
}

/* param_next - the next parameter after *off; false at the end */
static bool
param_next(const char *v, size_t len, size_t *off, struct param *p)
{
	size_t i = *off, s;

	for (;;) {
		while (i < len && v[i] != ';') {
			if (v[i] == '"')
				i = skip_quoted(v, len, i);
			else if (v[i] == '(')
				i = skip_comment(v, len, i);
			else
				i++;
		}
		if (i >= len) {
			*off = len;
			return false;
		}
		i = skip_cfws(v, len, i + 1);
		for (s = i; i < len && v[i] != '=' && v[i] != ';' &&
		     !str_isspace((unsigned char)v[i]);
		     i++)
			;
		p->name = v + s;
		p->nlen = i - s;
		i = skip_cfws(v, len, i);
		if (i >= len || v[i] != '=' || p->nlen == 0)
			continue; /* no value: the next ';' */
		i = skip_cfws(v, len, i + 1);
		p->quoted = i < len && v[i] == '"';
		if (p->quoted) {
			s = i + 1;
			i = skip_quoted(v, len, i);
			p->val = v + s;
			p->vlen = i - s - (v[i - 1] == '"' && i - 1 >= s);
		} else {
			for (s = i; i < len && v[i] != ';'; i++)
				;
			p->val = v + s;
			p->vlen = i - s;
			while (p->vlen > 0 &&
			    str_isspace((unsigned char)p->val[p->vlen - 1]))
				p->vlen--;
		}
		*off = i;
		return true;
	}
}

/* pbuf_add - a raw or quoted piece (backslashes of quoted ones go) */
static void
pbuf_add(struct mime_pbuf *o, const char *s, size_t n, bool quoted)
{
	size_t i;

	for (i = 0; i < n && o->n < AG_MIME_PARAM_MAX; i++) {
		if (quoted && s[i] == '\\' && i + 1 < n)
			i++;
		o->b[o->n++] = s[i];
	}
}

/* pbuf_pct - an RFC 2231 extended piece, %XX decoded */
static void
pbuf_pct(struct mime_pbuf *o, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	const char *h1, *h2;
	size_t i;

	for (i = 0; i < n && o->n < AG_MIME_PARAM_MAX; i++) {
		if (s[i] == '%' && i + 2 < n && s[i + 1] != '\0' &&
		    s[i + 2] != '\0' &&
		    (h1 = strchr(hex, str_lower((unsigned char)s[i + 1]))) &&
		    (h2 = strchr(hex, str_lower((unsigned char)s[i + 2])))) {
			o->b[o->n++] = (char)((h1 - hex) * 16 + (h2 - hex));
			i += 2;
		} else
			o->b[o->n++] = s[i];
	}
}

/* ext_len - an extended value is a token (RFC 2231 7): it ends at
 * white space or a comment */
static size_t
ext_len(const struct param *p)
{
	size_t n = 0;

	if (p->quoted)
		return p->vlen;
	while (n < p->vlen && !str_isspace((unsigned char)p->val[n]) &&
	    p->val[n] != '(')
		n++;
	return n;
}

/* pbuf_ext - charset'language'value: the charset into cs, the value */
static void
pbuf_ext(struct mime_pbuf *o, const struct param *p, char *cs, size_t cssize)
{
	size_t k, vlen = ext_len(p);
	const char *q1 = memchr(p->val, '\'', vlen), *q2 = NULL;

	if (q1 != NULL)
		q2 = memchr(q1 + 1, '\'', vlen - (size_t)(q1 + 1 - p->val));
	if (q2 == NULL) {
		pbuf_pct(o, p->val, vlen);
		return;
	}
	for (k = 0; k < (size_t)(q1 - p->val) && k + 1 < cssize; k++)
		cs[k] = (char)str_lower((unsigned char)p->val[k]);
	cs[k] = '\0';
	pbuf_pct(o, q2 + 1, vlen - (size_t)(q2 + 1 - p->val));
}

#define AG_MIME_SEGS 32 /* RFC 2231 continuations put together */

/* mime_param_get - parameter name of a header value into o: name*= first,
 * then name*0..., then name=; false when absent. cs gets the RFC 2231
 * charset ("" when none). */
bool
mime_param_get(const char *v, size_t len, const char *name, struct mime_pbuf *o,
    char *cs, size_t cssize)
{
	struct param p, plain = {0}, ext = {0}, seg[AG_MIME_SEGS];
	bool segext[AG_MIME_SEGS] = {false}, have[AG_MIME_SEGS] = {false};
	size_t off = 0, nl = strlen(name), k, i;
	const char *r;

	o->n = 0;
	cs[0] = '\0';
	while (param_next(v, len, &off, &p)) {
		if (p.nlen < nl || !str_ncaseeq(p.name, name, nl))
			continue;
		if (p.nlen == nl) {
			if (plain.name == NULL)
				plain = p;
			continue;
		}
		if (p.name[nl] != '*')
			continue;
		r = p.name + nl + 1;
		k = p.nlen - nl - 1;
		if (k == 0) {
			if (ext.name == NULL)
				ext = p;
			continue;
		}
		for (i = 0; k > 0 && str_isdigit((unsigned char)*r) && i < 100;
		     r++, k--)
			i = i * 10 + (size_t)(*r - '0');
		if (i >= AG_MIME_SEGS || (k != 0 && !(k == 1 && *r == '*')) ||
		    have[i])
			continue;
		have[i] = true;
		segext[i] = k == 1;
		seg[i] = p;
	}
	if (ext.name != NULL) {
		pbuf_ext(o, &ext, cs, cssize);
		return true;
	}
	if (have[0]) {
		for (i = 0; i < AG_MIME_SEGS && have[i]; i++) {
			if (segext[i] && i == 0)
				pbuf_ext(o, &seg[i], cs, cssize);
			else if (segext[i])
				pbuf_pct(o, seg[i].val, ext_len(&seg[i]));
			else
				pbuf_add(
				    o, seg[i].val, seg[i].vlen, seg[i].quoted);
		}
		return true;
	}
	if (plain.name == NULL)
		return false;
	pbuf_add(o, plain.val, plain.vlen, plain.quoted);
	return true;
}

/* mime_first_token - the first token of a header value, lower case, into
 * out; false when there is none */
bool
mime_first_token(const char *v, char *out, size_t size)
{
	size_t i = skip_cfws(v, strlen(v), 0), n = 0;

	for (; v[i] != '\0' && v[i] != ';' &&
	     !str_isspace((unsigned char)v[i]) && v[i] != '(' && v[i] != '"';
	     i++)
		if (n + 1 < size)
			out[n++] = (char)str_lower((unsigned char)v[i]);
	out[n] = '\0';
	return n > 0 && n + 1 < size;
}

/* mime_ct_type - "type/subtype" of a Content-Type value (RFC 2045 5.1:
 * tokens around '/'), lower case; false when malformed */
bool
mime_ct_type(const char *v, char *out, size_t size)
{
	static const char tspecials[] = "()<>@,;:\\\"/[]?=";
	char *slash;
	size_t i;

	if (!mime_first_token(v, out, size) ||
	    (slash = strchr(out, '/')) == NULL || slash == out ||
	    slash[1] == '\0')
		return false;
	for (i = 0; out[i] != '\0'; i++)
		if ((unsigned char)out[i] < 0x21 ||
		    (unsigned char)out[i] > 0x7e ||
		    (out + i != slash && strchr(tspecials, out[i]) != NULL))
			return false;
	return true;
}

/* A mime_buf as the target of a converter. */
struct conv_out {
	struct arena *a;
	struct mime_buf b;
	bool nomem;
};

/* out_emit - append converted text; NUL, CR and LF become spaces (the
 * result is one line of C string) */
static void
out_emit(void *ctx, const char *s, size_t n)
{
	struct conv_out *o = ctx;
	size_t i, start = 0;

	for (i = 0; i <= n; i++) {
		if (i < n && s[i] != '\0' && s[i] != '\r' && s[i] != '\n')
			continue;
		if (i > start &&
		    mime_buf_add(o->a, &o->b, s + start, i - start) == -1)
			o->nomem = true;
		if (i < n && mime_buf_add(o->a, &o->b, " ", 1) == -1)
			o->nomem = true;
		start = i + 1;
	}
}

/* mime_conv_str - bytes in a charset as a UTF-8 string in the arena (an
 * unknown charset: UTF-8 where valid, windows-1252 elsewhere) */
char *
mime_conv_str(struct arena *a, const char *cs, const char *s, size_t n)
{
	struct conv_out o = {a, {NULL, 0, 0, SIZE_MAX / 4}, false};
	struct mime_conv c;

	mime_conv_init(&c, out_emit, &o);
	if (!mime_conv_start(&c, cs))
		c.mode = AG_MIME_CS_AUTO;
	mime_conv_feed(&c, (const unsigned char *)s, n);
	mime_conv_end(&c);
	mime_conv_close(&c);
	if (!o.nomem && o.b.p == NULL && mime_buf_add(a, &o.b, "", 0) == -1)
		o.nomem = true;
	return o.nomem ? NULL : o.b.p;
}

/*
 * RFC 2047 encoded-words in header values. Readers decode words that
 * break the rules (inside a longer word, with white space in them, B
 * without padding), so this does too: what a reader shows is what the
 * rules must see.
 */
struct ew {
	char cs[AG_MIME_CS_NAME];
	char enc;	  /* 'b' or 'q' */
	const char *text; /* encoded text */
	size_t tlen;
	size_t len; /* the whole word */
};

#define AG_MIME_EW_TEXT 4096 /* longest encoded text decoded */

/* ew_parse - "=?charset[*lang]?B|Q?text?=" at s */
static bool
ew_parse(const char *s, size_t n, struct ew *w)
{
	size_t i, k = 0, t;
	bool lang = false;

	if (n < 8 || s[0] != '=' || s[1] != '?')
		return false;
	for (i = 2; i < n && s[i] != '?'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c <= ' ' || c >= 0x7f || c == '=')
			return false;
		if (c == '*')
			lang = true; /* RFC 2231 language: dropped */
		if (lang)
			continue;
		if (k + 1 >= sizeof(w->cs))
			return false;
		w->cs[k++] = (char)str_lower(c);
	}
	if (k == 0 || i + 3 > n || s[i + 2] != '?')
		return false;
	w->cs[k] = '\0';
	w->enc = (char)str_lower((unsigned char)s[i + 1]);
	if (w->enc != 'b' && w->enc != 'q')
		return false;
	t = i + 3;
	for (i = t; i < n && s[i] != '?' && i - t < AG_MIME_EW_TEXT; i++)
		;
	if (i + 1 >= n || s[i] != '?' || s[i + 1] != '=')
		return false;
	w->text = s + t;
	w->tlen = i - t;
	w->len = i + 2;
	return true;
}

/* ew_decode - the bytes of the encoded text into out (>= tlen bytes);
 * -1 when B text holds characters outside the alphabet */
static long
ew_decode(const struct ew *w, unsigned char *out)
{
	const unsigned char *t = (const unsigned char *)w->text;
	size_t i, n = 0;
	uint32_t q = 0;
	int k = 0, v;

	for (i = 0; i < w->tlen; i++) {
		if (w->enc == 'q') {
			if (t[i] == '_')
				out[n++] = ' ';
			else if (t[i] == '=' && i + 2 < w->tlen &&
			    mime_hexval(t[i + 1]) >= 0 &&
			    mime_hexval(t[i + 2]) >= 0) {
				out[n++] =
				    (unsigned char)(mime_hexval(t[i + 1]) * 16 +
					mime_hexval(t[i + 2]));
				i += 2;
			} else
				out[n++] = t[i];
			continue;
		}
		if ((v = mime_b64val(t[i])) >= 0) {
			q = (q << 6) | (uint32_t)v;
			if (++k == 4) {
				out[n++] = (unsigned char)(q >> 16);
				out[n++] = (unsigned char)(q >> 8);
				out[n++] = (unsigned char)q;
				k = 0;
				q = 0;
			}
		} else if (v == AG_MIME_B64_BAD)
			return -1;
	}
	if (k == 2)
		out[n++] = (unsigned char)(q >> 4);
	else if (k == 3) {
		out[n++] = (unsigned char)(q >> 10);
		out[n++] = (unsigned char)(q >> 2);
	}
	return (long)n;
}

/* The state of one mime_decode_header() call. */
struct hdec {
	struct conv_out o;
	struct mime_conv run; /* adjacent words in one charset, joined */
	char cs[AG_MIME_CS_NAME];
	bool active;
	struct mime_conv lit; /* text outside words */
};

/* hdec_flush - convert the words collected so far */
static void
hdec_flush(struct hdec *h)
{
	if (h->active)
		mime_conv_end(&h->run);
	h->active = false;
}

/*
 * hdec_word - decode the word at u[i] if it is one and its charset is
 * known; its length, or 0. White space between two words goes; the
 * bytes of adjacent words in one charset are converted together, as a
 * character may be split between them. [ws, wsend) is the white space
 * before u[i], if wsend == i.
 */
static size_t
hdec_word(struct hdec *h, const char *u, size_t m, size_t i, bool *last_ew,
    size_t ws, size_t wsend)
{
	unsigned char dec[AG_MIME_EW_TEXT];
	struct ew w;
	long k;

	if (!ew_parse(u + i, m - i, &w) || (k = ew_decode(&w, dec)) < 0)
		return 0;
	if (!(h->active && *last_ew && strcmp(h->cs, w.cs) == 0)) {
		hdec_flush(h);
		if (!mime_conv_start(&h->run, w.cs))
			return 0; /* unknown charset: kept as written */
		memcpy(h->cs, w.cs, strlen(w.cs) + 1);
		h->active = true;
	}
	if (!*last_ew && wsend == i && ws < wsend && h->o.b.len > 0)
		out_emit(&h->o, u + ws, wsend - ws);
	mime_conv_feed(&h->run, dec, (size_t)k);
	*last_ew = true;
	return w.len;
}

/* mime_decode_header - a header value for matching (see mime.h) */
char *
mime_decode_header(struct arena *a, const char *v, size_t len)
{
	struct hdec h = {.o = {a, {NULL, 0, 0, SIZE_MAX / 4}, false}};
	size_t i, j, m = 0, ws = 0, wsend = 0, k, s, e;
	bool last_ew = false;
	char *u;

	if (len == SIZE_MAX || (u = arena_alloc(a, len + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) /* unfold: CR and LF go, the WSP stays */
		if (v[i] != '\r' && v[i] != '\n')
			u[m++] = v[i] == '\0' ? ' ' : v[i];
	mime_conv_init(&h.run, out_emit, &h.o);
	mime_conv_init(&h.lit, out_emit, &h.o);
	for (i = 0; i < m && !h.o.nomem;) {
		if (u[i] == ' ' || u[i] == '\t') {
			if (wsend != i)
				ws = i;
			wsend = ++i;
			continue;
		}
		if (u[i] == '=' && i + 1 < m && u[i + 1] == '?' &&
		    (k = hdec_word(&h, u, m, i, &last_ew, ws, wsend)) > 0) {
			i += k;
			ws = wsend = i;
			continue;
		}
		/* literal text up to white space or a possible word */
		hdec_flush(&h);
		if (wsend == i && ws < wsend && h.o.b.len > 0)
			out_emit(&h.o, u + ws, wsend - ws);
		for (j = i + 1; j < m && u[j] != ' ' && u[j] != '\t' &&
		     !(u[j] == '=' && j + 1 < m && u[j + 1] == '?');
		     j++)
			;
		mime_conv_feed(&h.lit, (const unsigned char *)u + i, j - i);
		mime_conv_end(&h.lit);
		last_ew = false;
		i = ws = wsend = j;
	}
	hdec_flush(&h);
	mime_conv_close(&h.run);
	if (h.o.nomem ||
	    (h.o.b.p == NULL && mime_buf_add(a, &h.o.b, "", 0) == -1))
		return NULL;
	for (s = 0; s < h.o.b.len && (h.o.b.p[s] == ' ' || h.o.b.p[s] == '\t');
	     s++)
		;
	for (e = h.o.b.len;
	     e > s && (h.o.b.p[e - 1] == ' ' || h.o.b.p[e - 1] == '\t'); e--)
		;
	h.o.b.p[e] = '\0';
	return h.o.b.p + s;
}
