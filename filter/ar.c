/*
 * ar.c - Authentication-Results build and authserv-id parse (see ar.h).
 */
#include <stdint.h>
#include <string.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "ar.h"

#define AG_AR_FOLD 78

/* ar_tspecial - RFC 2045 tspecials */
static bool
ar_tspecial(int c)
{
	return strchr("()<>@,;:\\\"/[]?=", c) != NULL;
}

/* ar_token_char - RFC 2045 token character */
static bool
ar_token_char(int c)
{
	return c > 0x20 && c < 0x7f && !ar_tspecial(c);
}

/* ar_is_token - every byte a token character, non-empty */
static bool
ar_is_token(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s; s++)
		if (!ar_token_char((unsigned char)*s))
			return false;
	return true;
}

/* ar_atext - RFC 5322 atext */
static bool
ar_atext(int c)
{
	return str_isalnum(c) || (c != 0 && strchr("!#$%&'*+-/=?^_`{|}~", c));
}

/* ar_is_dot_atom - RFC 5322 dot-atom-text over [s, s+len) */
static bool
ar_is_dot_atom(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		if (s[i] == '.') {
			if (s[i + 1] == '.')
				return false;
			continue;
		}
		if (!ar_atext((unsigned char)s[i]))
			return false;
	}
	return true;
}

/* ar_is_domain - letters, digits, hyphens, underscores and dots */
static bool
ar_is_domain(const char *s, size_t len)
{
	size_t i;

	if (len == 0 || s[0] == '.' || s[len - 1] == '.')
		return false;
	for (i = 0; i < len; i++) {
		int c = (unsigned char)s[i];

		if (c == '.' && s[i + 1] == '.')
			return false;
		if (!str_isalnum(c) && c != '-' && c != '_' && c != '.')
			return false;
	}
	return true;
}

/* ar_quote_value - render a pvalue */
char *
ar_quote_value(struct arena *a, const char *v)
{
	const char *at = strrchr(v, '@');
	size_t len = strlen(v), i, n = 0;
	char *out;

	if (ar_is_token(v) || ar_is_domain(v, len))
		return (char *)v;
	if (at != NULL && ar_is_domain(at + 1, strlen(at + 1)) &&
	    (at == v || ar_is_dot_atom(v, (size_t)(at - v))))
		return (char *)v;
	if (len > (SIZE_MAX - 3) / 2 ||
	    (out = arena_alloc(a, 2 * len + 3)) == NULL)
		return NULL;
	out[n++] = '"';
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c < 0x20 || c >= 0x7f)
			c = '?'; /* never CR/LF: no smuggled header lines */
		if (c == '"' || c == '\\')
			out[n++] = '\\';
		out[n++] = (char)c;
	}
	out[n++] = '"';
	out[n] = '\0';
	return out;
}

/* ar_comment_add - append (comment) with parentheses and controls tamed */
static void
ar_comment_add(struct buf *b, const char *c)
{
	buf_addch(b, '(');
	for (; *c; c++) {
		unsigned char ch = (unsigned char)*c;

		if (ch < 0x20 || ch >= 0x7f)
			ch = '?';
		if (ch == '(' || ch == ')' || ch == '\\')
			buf_addch(b, '\\');
		buf_addch(b, ch);
	}
	buf_addch(b, ')');
}

/* ar_render_one - "method=result reason=... (comment) ptype.prop=value" */
static int
ar_render_one(struct arena *a, const struct ar_result *r, struct buf *b)
{
	int i;
	char *q;

	buf_addf(b, "%s=%s", r->method, r->result);
	if (r->reason != NULL) {
		if ((q = ar_quote_value(a, r->reason)) == NULL)
			return -1;
		/* reason is always a quoted-string for the reader's sake */
		if (q[0] != '"') {
			buf_addstr(b, " reason=\"");
			buf_addstr(b, q);
			buf_addch(b, '"');
		} else {
			buf_addstr(b, " reason=");
			buf_addstr(b, q);
		}
	}
	if (r->comment != NULL) {
		buf_addch(b, ' ');
		ar_comment_add(b, r->comment);
	}
	for (i = 0; i < r->nprops; i++) {
		if ((q = ar_quote_value(a, r->props[i].value)) == NULL)
			return -1;
		buf_addf(
		    b, " %s.%s=%s", r->props[i].ptype, r->props[i].name, q);
	}
	return 0;
}

/* ar_word_len - length of the next word: a space inside a quoted-string
 * does not end it (folding there would change the string once unfolded;
 * in a comment it would not, so comments may fold) */
static size_t
ar_word_len(const char *s, size_t len)
{
	size_t w = 0;
	bool quoted = false;

	for (; w < len; w++) {
		char c = s[w];

		if (quoted && c == '\\' && w + 1 < len) {
			w++;
			continue;
		}
		if (c == '"')
			quoted = !quoted;
		else if (c == ' ' && !quoted)
			break;
	}
	return w;
}

/* ar_fold_into - append one result, folding at spaces past 78 columns */
static void
ar_fold_into(
    struct buf *out, const char *s, size_t len, const char *eol, size_t *col)
{
	size_t i = 0;

	while (i < len) {
		size_t w = ar_word_len(s + i, len - i);

		if (*col + w + 1 > AG_AR_FOLD && *col > 8 && eol != NULL) {
			buf_addstr(out, eol);
			buf_addch(out, '\t');
			*col = 8;
		} else if (i > 0) {
			buf_addch(out, ' ');
			(*col)++;
		}
		buf_add(out, s + i, w);
		*col += w;
		i += w;
		while (i < len && s[i] == ' ')
			i++;
	}
}

/* ar_build - the whole header value */
char *
ar_build(struct arena *a, const char *servid, const struct ar_result *r,
    const char *eol)
{
	struct buf out = BUF_INIT, one = BUF_INIT;
	size_t col;
	char *res, *sid;

	if ((sid = ar_quote_value(a, servid)) == NULL)
		return NULL;
	buf_addf(&out, "%s;", sid);
	col = strlen("Authentication-Results: ") + out.len;
	if (r == NULL)
		buf_addstr(&out, " none");
	for (; r != NULL; r = r->next) {
		buf_reset(&one);
		if (ar_render_one(a, r, &one) == -1) {
			buf_release(&one);
			buf_release(&out);
			return NULL;
		}
		if (eol != NULL) {
			buf_addstr(&out, eol);
			buf_addch(&out, '\t');
			col = 8;
		} else {
			buf_addch(&out, ' ');
		}
		ar_fold_into(&out, one.data, one.len, eol, &col);
		if (r->next != NULL)
			buf_addch(&out, ';');
	}
	res = arena_memdup(a, out.data, out.len);
	buf_release(&one);
	buf_release(&out);
	return res;
}

/* ar_skip_cfws - skip white space, line breaks and nested comments */
static size_t
ar_skip_cfws(const char *s, size_t len, size_t i, bool *bad)
{
	int depth = 0;

	while (i < len) {
		char c = s[i];

		if (depth > 0) {
			if (c == '\\')
				i++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			i++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			i++;
		else if (c == '(') {
			depth = 1;
			i++;
		} else
			break;
	}
	if (depth > 0)
		*bad = true;
	return i;
}

/* ar_parse_servid - extract the authserv-id */
char *
ar_parse_servid(struct arena *a, const char *s, size_t len)
{
	bool bad = false;
	size_t i = ar_skip_cfws(s, len, 0, &bad), start;
	char *out;
	size_t n = 0;

	if (bad || i >= len)
		return NULL;
	if (s[i] == '"') {
		if ((out = arena_alloc(a, len - i + 1)) == NULL)
			return NULL;
		for (i++; i < len && s[i] != '"'; i++) {
			if (s[i] == '\\' && i + 1 < len)
				i++;
			if (s[i] == '\r' || s[i] == '\n')
				continue; /* folded quoted-string */
			out[n++] = s[i];
		}
		if (i >= len || n == 0)
			return NULL;
		out[n] = '\0';
		i++;
	} else {
		start = i;
		while (i < len && ar_token_char((unsigned char)s[i]))
			i++;
		if (i == start)
			return NULL;
		if ((out = arena_memdup(a, s + start, i - start)) == NULL)
			return NULL;
	}
	/* What follows must be CFWS, a version, or ';' - else not an A-R. */
	i = ar_skip_cfws(s, len, i, &bad);
	if (bad)
		return NULL;
	if (i < len && s[i] != ';' && !str_isdigit((unsigned char)s[i]))
		return NULL;
	return out;
}

/* ar_is_ours - forged-header test */
bool
ar_is_ours(struct arena *a, const char *value, size_t len, const char *servid)
{
	const char *semi;
	char *id;

	if ((id = ar_parse_servid(a, value, len)) != NULL)
		return str_casecmp(id, servid) == 0;
	/* Unreadable: drop it if it names us anywhere before the first ';' */
	semi = memchr(value, ';', len);
	return str_casestr(
		   value, semi ? (size_t)(semi - value) : len, servid) != NULL;
}
