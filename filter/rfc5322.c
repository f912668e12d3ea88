/*
 * rfc5322.c - header section splitting (see rfc5322.h).
 */
#include <stdbool.h>
#include <string.h>

#include "util/arena.h"
#include "rfc5322.h"

/* rfc5322_line_end - offset just past the line that starts at off */
static size_t
rfc5322_line_end(const char *data, size_t len, size_t off)
{
	const char *nl = memchr(data + off, '\n', len - off);

	return nl ? (size_t)(nl - data) + 1 : len;
}

/* rfc5322_next_field - one field, or the start of the body */
enum ag_r5322
rfc5322_next_field(
    const char *data, size_t len, size_t *off, struct rfc5322_field *f)
{
	size_t p = *off, name_end, end, vend;

	if (p >= len)
		return AG_R5322_BODY;
	/* Empty line: the body follows it. */
	if (data[p] == '\n' ||
	    (data[p] == '\r' && p + 1 < len && data[p + 1] == '\n')) {
		*off = p + (data[p] == '\r' ? 2 : 1);
		return AG_R5322_BODY;
	}
	/* RFC 5322 3.6.8 field name: printable US-ASCII except ':' */
	name_end = p;
	while (name_end < len && data[name_end] > 32 && data[name_end] < 127 &&
	    data[name_end] != ':')
		name_end++;
	end = name_end;
	while (end < len && (data[end] == ' ' || data[end] == '\t'))
		end++; /* obsolete syntax: WSP before the colon */
	if (name_end == p || end >= len || data[end] != ':')
		return AG_R5322_BODY; /* not a field: the body starts here */
	f->name = data + p;
	f->namelen = name_end - p;
	f->value = data + end + 1;
	end = rfc5322_line_end(data, len, end + 1);
	while (end < len && (data[end] == ' ' || data[end] == '\t'))
		end = rfc5322_line_end(data, len, end);
	vend = end;
	if (vend > 0 && data[vend - 1] == '\n')
		vend--;
	if (vend > 0 && data[vend - 1] == '\r' &&
	    vend > (size_t)(f->value - data))
		vend--;
	f->valuelen = vend - (size_t)(f->value - data);
	*off = end;
	return AG_R5322_FIELD;
}

/*
 * Address lists. A tokenizer turns the value into atoms, quoted strings,
 * domain literals and specials (comments and white space are dropped);
 * the parser walks the tokens: phrase? '<' route? addr-spec '>' | addr-spec,
 * groups "name: list ;", separated by commas (empty members allowed, as
 * the obsolete syntax does).
 */
enum r5322_tok {
	R5322_END,
	R5322_ATOM, /* atom or dot-atom text, dots included */
	R5322_QUOTED,
	R5322_LITERAL, /* [domain literal] */
	R5322_SPECIAL, /* one of < > @ , : ; . */
	R5322_BAD,
};

struct r5322_lex {
	const char *s;
	size_t len, off;
	struct arena *a;
	const char *text; /* token text (unescaped for quoted strings) */
	size_t tlen;
	int ch; /* the special */
};

/* r5322_atext - RFC 5322 atext, and '.' for dot-atoms */
static bool
r5322_atext(unsigned char c)
{
	return c > 0x20 && c != 0x7f && strchr("()<>[]:;@\\,\"", c) == NULL;
}

/* r5322_skip_cfws - white space and comments; false on an open comment */
static bool
r5322_skip_cfws(struct r5322_lex *lx)
{
	int depth = 0;

	while (lx->off < lx->len) {
		char c = lx->s[lx->off];

		if (depth > 0) {
			if (c == '\\')
				lx->off++;
			else if (c == '(')
				depth++;
			else if (c == ')')
				depth--;
			lx->off++;
			continue;
		}
		if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
			lx->off++;
		else if (c == '(') {
			depth = 1;
			lx->off++;
		} else
			break;
	}
	return depth == 0;
}

/* r5322_next - the next token */
static enum r5322_tok
r5322_next(struct r5322_lex *lx)
{
	size_t start, n = 0;
	char *out;

	if (!r5322_skip_cfws(lx))
		return R5322_BAD;
	if (lx->off >= lx->len)
		return R5322_END;
	start = lx->off;
	switch (lx->s[start]) {
	case '"':
		if ((out = arena_alloc(lx->a, lx->len - start + 1)) == NULL)
			return R5322_BAD;
		for (lx->off++; lx->off < lx->len && lx->s[lx->off] != '"';
		     lx->off++) {
			if (lx->s[lx->off] == '\\' && lx->off + 1 < lx->len)
				lx->off++;
			/* folding inside the quotes, escaped or not: a CR or
			 * LF never reaches an address */
			if (lx->s[lx->off] == '\r' || lx->s[lx->off] == '\n')
				continue;
			out[n++] = lx->s[lx->off];
		}
		if (lx->off >= lx->len)
			return R5322_BAD;
		lx->off++;
		out[n] = '\0';
		lx->text = out;
		lx->tlen = n;
		return R5322_QUOTED;
	case '[':
		while (lx->off < lx->len && lx->s[lx->off] != ']') {
			if (lx->s[lx->off] == '\\')
				lx->off++;
			lx->off++;
		}
		if (lx->off >= lx->len)
			return R5322_BAD;
		lx->off++;
		lx->text = lx->s + start;
		lx->tlen = lx->off - start;
		return R5322_LITERAL;
	case '<':
	case '>':
	case '@':
	case ',':
	case ':':
	case ';':
		lx->ch = lx->s[lx->off++];
		return R5322_SPECIAL;
	default:
		while (lx->off < lx->len &&
		    (r5322_atext((unsigned char)lx->s[lx->off]) ||
			lx->s[lx->off] == '.'))
			lx->off++;
		if (lx->off == start) {
			lx->off++; /* a stray byte: skip it, flag the list */
			return R5322_BAD;
		}
		lx->text = lx->s + start;
		lx->tlen = lx->off - start;
		return R5322_ATOM;
	}
}

/* r5322_word - the text of an atom or quoted string, NUL-terminated */
static const char *
r5322_word(struct r5322_lex *lx, enum r5322_tok t)
{
	char *w;
	size_t i, n = 0;

	if (t == R5322_QUOTED)
		return lx->text;
	if ((w = arena_alloc(lx->a, lx->tlen + 1)) == NULL)
		return NULL;
	/* a domain literal may be folded: its CR and LF are dropped */
	for (i = 0; i < lx->tlen; i++)
		if (lx->text[i] != '\r' && lx->text[i] != '\n')
			w[n++] = lx->text[i];
	w[n] = '\0';
	return w;
}

/* rfc5322_addr_list - the mailboxes of an address list */
int
rfc5322_addr_list(struct arena *a, const char *value, size_t len,
    struct rfc5322_addr *out, size_t max)
{
	struct r5322_lex lx = {value, len, 0, a, NULL, 0, 0};
	const char *words[2];
	enum r5322_tok t, prev = R5322_END;
	size_t n = 0, nwords = 0, guard = 0;
	bool angle = false, ingroup = false, at = false, route = false;
	const char *local = NULL;

	for (;;) {
		if (++guard > len + 8)
			return -1; /* every token consumes input: cannot happen */
		t = r5322_next(&lx);
		if (t == R5322_BAD)
			return -1;
		if (t == R5322_ATOM || t == R5322_QUOTED ||
		    t == R5322_LITERAL) {
			if (route) { /* a domain of an obsolete source route */
				prev = t;
				continue;
			}
			if (at) {
				/* the domain after '@' */
				if (t == R5322_QUOTED || n >= max ||
				    n >= AG_R5322_MAX_ADDRS)
					return -1;
				out[n].local = local ? local : "";
				out[n].domain = r5322_word(
				    &lx, t == R5322_LITERAL ? R5322_ATOM : t);
				if (out[n].domain == NULL)
					return -1;
				n++;
				at = false;
				local = NULL;
				nwords = 0;
			} else {
				if (nwords < 2)
					words[nwords] = r5322_word(&lx, t);
				nwords++;
			}
			prev = t;
			continue;
		}
		if (t == R5322_END)
			break;
		switch (lx.ch) {
		case '@':
			if (angle && nwords == 0 && !at) {
				route =
				    true; /* "<@relay1,@relay2:user@host>" */
				break;
			}
			/* exactly one word, the local part, before '@' */
			if (at || route || nwords != 1 ||
			    prev == R5322_SPECIAL || (local = words[0]) == NULL)
				return -1;
			at = true;
			break;
		case '<':
			if (angle)
				return -1;
			angle = true;
			nwords = 0; /* the display name is done */
			break;
		case '>':
			if (!angle || at)
				return -1;
			angle = false;
			break;
		case ':':
			if (angle) {
				if (!route)
					return -1;
				route = false; /* end of the source route */
				nwords = 0;
				break;
			}
			if (ingroup)
				return -1;
			ingroup = true; /* "name:" starts a group */
			nwords = 0;
			break;
		case ';':
			if (!ingroup || angle || at)
				return -1;
			ingroup = false;
			nwords = 0;
			break;
		case ',':
			if (angle) { /* only inside a route list "@a,@b:" */
				if (!route)
					return -1;
				break;
			}
			if (at)
				return -1;
			if (nwords > 0)
				return -1; /* a word that was no address */
			break;
		}
		prev = t;
	}
	if (angle || at || route || ingroup || nwords > 0)
		return -1;
	return (int)n;
}
