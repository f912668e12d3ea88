/*
 * mime_text.c - what a text part's decoded UTF-8 becomes (see mime.h):
 * raw gets it with CRLF as "\n"; text gets plain text joined into
 * paragraphs, or HTML with tags, comments, <script> and <style> removed,
 * entities decoded, block tags ending paragraphs, and the link targets
 * of <a>, <img>, <area>, <form>, <iframe> and <frame> handed to the URI
 * collector. The HTML tokenizer follows the WHATWG states closely enough
 * to agree with browsers on where text starts and ends (comments closed
 * by "-->" or "--!>", "<!-->" empty, raw text to its end tag), one byte
 * at a time so that input split anywhere gives the same result.
 */
#include <stdint.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"
#include "mime_int.h"

/* HTML tokenizer states */
enum {
	H_TEXT,	   /* text */
	H_ENT,	   /* after '&' in text */
	H_LT,	   /* after '<' */
	H_LTSL,	   /* after "</" */
	H_TAG,	   /* tag name */
	H_ATTRS,   /* between attributes */
	H_ANAME,   /* attribute name */
	H_AEQ,	   /* after an attribute name */
	H_AVSTART, /* after '=' */
	H_AVQ,	   /* quoted value */
	H_AVU,	   /* unquoted value */
	H_BANG,	   /* after "<!" */
	H_BANG1,   /* after "<!-" */
	H_COMMENT, /* inside <!-- */
	H_CEXCL,   /* "--!" inside a comment */
	H_BOGUS,   /* <!DOCTYPE ...>, <?...>: to '>' */
	H_RAW,	   /* <script> or <style> content */
};

/* mime_out - bytes to text (which 0) or raw (1), up to its cap (then
 * MIME_F_TRUNCATED): kept in its buffer, or handed to the output
 * function; text also goes to the URI scan */
void
mime_out(struct mime *w, int which, const char *s, size_t n)
{
	struct mime_buf *b = which == MIME_OUT_TEXT ? &w->text : &w->raw;
	size_t k = mime_buf_fit(b, s, n);

	if (k < n)
		w->res.flags |= MIME_F_TRUNCATED;
	if (k == 0)
		return;
	if (w->out != NULL) {
		b->len += k;
		w->out(w->outctx, which, s, k);
	} else if (mime_buf_add(w->a, b, s, k) == -1) {
		w->failed = true;
		return;
	}
	if (which == MIME_OUT_TEXT)
		mime_uri_text(w, s, k);
	else
		w->rawlast = s[k - 1];
}

/* text_add - bytes to text */
static void
text_add(struct mime *w, const char *s, size_t n)
{
	mime_out(w, MIME_OUT_TEXT, s, n);
}

/* tx_para - end the paragraph */
static void
tx_para(struct mime *w)
{
	struct mime_tx *t = &w->tx;

	if (t->para)
		text_add(w, "\n", 1);
	t->para = t->space = t->line = false;
	t->brs = 0;
	mime_uri_scan(w);
}

/* tx_space - white space between words */
static void
tx_space(struct mime *w)
{
	w->tx.space = w->tx.para;
}

/* tx_word_end - a word of text is complete: its URIs are looked for at
 * once, so lookups can start while the body streams. Done at a place in
 * the text, not at a chunk's end: the order of the URIs must not depend
 * on where the MTA cut the body. */
static void
tx_word_end(struct mime *w)
{
	mime_uri_scan(w);
}

/* tx_ws - ASCII white space of text */
static bool
tx_ws(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	    c == '\v';
}

/* tx_put - visible text: white space runs become one space; in plain
 * text a line with nothing but white space ends the paragraph */
static void
tx_put(struct mime *w, const char *s, size_t n)
{
	struct mime_tx *t = &w->tx;
	size_t i = 0, j;

	while (i < n) {
		if (s[i] == '\n' && !t->html) {
			if (!t->line)
				tx_para(w);
			else
				t->space = t->para;
			t->line = false;
			tx_word_end(w);
			i++;
			continue;
		}
		if (tx_ws((unsigned char)s[i])) {
			t->space = t->para;
			tx_word_end(w);
			i++;
			continue;
		}
		for (j = i; j < n && !tx_ws((unsigned char)s[j]); j++)
			;
		if (t->space)
			text_add(w, " ", 1);
		text_add(w, s + i, j - i);
		t->space = false;
		t->para = t->line = true;
		t->brs = 0;
		i = j;
	}
}

/*
 * Entities. Numeric ones in decimal or hex, with or without ';' (as
 * browsers read them; 0x80-0x9f as windows-1252, as HTML 5 says), and
 * the named ones mail uses; the first seven are also read without ';'
 * (HTML's legacy names).
 */
static const struct {
	const char *name;
	uint32_t cp;
} ent_names[] = {
    {"amp", '&'},
    {"lt", '<'},
    {"gt", '>'},
    {"quot", '"'},
    {"nbsp", 0xa0},
    {"copy", 0xa9},
    {"reg", 0xae},
    {"apos", '\''},
    {"hellip", 0x2026},
    {"mdash", 0x2014},
    {"ndash", 0x2013},
    {"lsquo", 0x2018},
    {"rsquo", 0x2019},
    {"ldquo", 0x201c},
    {"rdquo", 0x201d},
    {"laquo", 0xab},
    {"raquo", 0xbb},
    {"euro", 0x20ac},
    {"pound", 0xa3},
    {"trade", 0x2122},
    {"bull", 0x2022},
    {"middot", 0xb7},
    {"times", 0xd7},
    {"deg", 0xb0},
    {"shy", 0xad},
    {"zwnj", 0x200c},
    {"zwj", 0x200d},
};
#define AG_MIME_ENT_LEGACY 7

/* ent_char - may c be part of an entity after '&' (e[0..n) so far)? */
static bool
ent_char(const char *e, size_t n, unsigned char c)
{
	if (n == 0)
		return c == '#' || str_isalnum(c);
	if (e[0] != '#')
		return str_isalnum(c);
	if (n == 1)
		return str_isdigit(c) || c == 'x' || c == 'X';
	if (e[1] == 'x' || e[1] == 'X')
		return str_isdigit(c) ||
		    (str_lower(c) >= 'a' && str_lower(c) <= 'f');
	return str_isdigit(c);
}

/* ent_value - the code point of the entity e[0..n) (after '&'; semi:
 * ';' follows); false when it is not one */
static bool
ent_value(const char *e, size_t n, bool semi, uint32_t *cp)
{
	uint32_t v = 0;
	size_t i, k = 1;
	bool hex;

	if (n >= 2 && e[0] == '#') {
		hex = e[1] == 'x' || e[1] == 'X';
		if (hex)
			k = 2;
		if (k >= n)
			return false;
		for (i = k; i < n; i++) {
			int d = str_isdigit((unsigned char)e[i])
			    ? e[i] - '0'
			    : str_lower((unsigned char)e[i]) - 'a' + 10;

			if (v < 0x110000)
				v = v * (hex ? 16 : 10) + (uint32_t)d;
		}
		if (v == 0 || v >= 0x110000 || (v >= 0xd800 && v <= 0xdfff))
			v = 0xfffd;
		*cp = v >= 0x80 && v < 0xa0 ? mime_cp1252((unsigned char)v) : v;
		return true;
	}
	for (i = 0; i < sizeof(ent_names) / sizeof(ent_names[0]); i++)
		if (str_caseeq_len(e, n, ent_names[i].name) &&
		    (semi || i < AG_MIME_ENT_LEGACY)) {
			*cp = ent_names[i].cp;
			return true;
		}
	return false;
}

/* html_text_ent - the entity in h->ent ends (semi: with ';'); true when
 * it was one and the ';' is used up */
static bool
html_text_ent(struct mime *w, bool semi)
{
	struct mime_html *h = &w->h;
	uint32_t cp;
	char u[4];

	if (!ent_value(h->ent, h->nent, semi, &cp)) {
		tx_put(w, "&", 1);
		tx_put(w, h->ent, h->nent);
		return false;
	}
	if (cp == 0xa0)
		tx_put(w, " ", 1); /* &nbsp; separates words */
	else
		tx_put(w, u, mime_utf8_put(cp, u));
	return semi;
}

/* attr_decode - decode entities of an attribute value in place (the
 * result is never longer), drop ASCII tab and line ends (as URL parsers
 * do) and trim white space and controls */
static size_t
attr_decode(char *v, size_t n)
{
	size_t i = 0, o = 0, k, s;
	uint32_t cp;
	char u[4];

	while (i < n) {
		if (v[i] == '\t' || v[i] == '\r' || v[i] == '\n') {
			i++;
			continue;
		}
		if (v[i] != '&') {
			v[o++] = v[i++];
			continue;
		}
		for (k = i + 1; k < n && k - i <= 32 &&
		     ent_char(v + i + 1, k - i - 1, (unsigned char)v[k]);
		     k++)
			;
		if (k > i + 1 &&
		    ent_value(
			v + i + 1, k - i - 1, k < n && v[k] == ';', &cp)) {
			s = mime_utf8_put(cp, u);
			i = k < n && v[k] == ';' ? k + 1 : k;
			memcpy(v + o, u, s);
			o += s;
		} else
			v[o++] = v[i++];
	}
	for (s = 0; s < o && (unsigned char)v[s] <= ' '; s++)
		;
	while (o > s && (unsigned char)v[o - 1] <= ' ')
		o--;
	memmove(v, v + s, o - s);
	return o - s;
}

/* Block tags: each starts and ends a paragraph. */
static const char *const block_tags[] = {"p", "div", "tr", "li", "ul", "ol",
    "table", "h1", "h2", "h3", "h4", "h5", "h6", "blockquote", "hr", "pre",
    "dl", "dt", "dd", "section", "article", "header", "footer", "nav", "aside",
    "form", "title", "center", "address", "fieldset", "figure", "figcaption",
    "main", "body", "html", "head", "caption", "option", "textarea", "details",
    "summary", "menu", "frameset"};

/* Tags whose attribute holds a link target. */
static const struct {
	const char *tag, *attr;
} link_tags[] = {
    {"a", "href"},
    {"area", "href"},
    {"img", "src"},
    {"iframe", "src"},
    {"frame", "src"},
    {"form", "action"},
};

/* tag_in - is tag one of list[0..n)? */
static bool
tag_in(const char *tag, const char *const *list, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (strcmp(tag, list[i]) == 0)
			return true;
	return false;
}

/* html_tag_named - the tag's name is read: which attribute to keep */
static void
html_tag_named(struct mime_html *h)
{
	size_t i;

	h->want = NULL;
	h->have = h->capture = false;
	h->nval = 0;
	h->tag[h->ntag] = '\0';
	for (i = 0; i < sizeof(link_tags) / sizeof(link_tags[0]) && !h->end;
	     i++)
		if (strcmp(h->tag, link_tags[i].tag) == 0)
			h->want = link_tags[i].attr;
}

/* html_attr_name - the attribute's name is read */
static void
html_attr_name(struct mime_html *h)
{
	h->an[h->nan] = '\0';
	/* the first of duplicate attributes counts (HTML 13.2.5.33) */
	h->capture = h->want != NULL && !h->have && h->nan > 0 &&
	    strcmp(h->an, h->want) == 0 && h->val != NULL;
	if (h->capture) {
		h->have = true;
		h->nval = 0;
	}
}

/* html_val - bytes of an attribute value */
static void
html_val(struct mime_html *h, const char *s, size_t n)
{
	if (!h->capture)
		return;
	if (n > AG_MIME_URI_MAX - h->nval)
		n = AG_MIME_URI_MAX - h->nval;
	memcpy(h->val + h->nval, s, n);
	h->nval += n;
}

/* html_tag_end - '>' of a tag: counts, links, paragraphs */
static void
html_tag_end(struct mime *w)
{
	struct mime_html *h = &w->h;
	const char *t = h->tag;
	size_t n;

	h->st = H_TEXT;
	if (h->ntag == 0)
		return;
	if (!h->end) {
		if (strcmp(t, "img") == 0)
			w->res.html_images++;
		if (strcmp(t, "a") == 0 && h->have)
			w->res.html_links++;
		if (h->have && (n = attr_decode(h->val, h->nval)) > 0)
			mime_uri_add(w, h->val, n, true);
		if (strcmp(t, "script") == 0 || strcmp(t, "style") == 0) {
			/* raw text to the end tag (HTML 13.2.5.3) */
			h->raw =
			    strcmp(t, "script") == 0 ? "</script" : "</style";
			h->kraw = 0;
			h->st = H_RAW;
		}
	}
	if (strcmp(t, "br") == 0) {
		if (w->tx.brs++ >= 1)
			tx_para(w);
		else
			tx_space(w);
	} else if (strcmp(t, "td") == 0 || strcmp(t, "th") == 0)
		tx_space(w);
	else if (tag_in(
		     t, block_tags, sizeof(block_tags) / sizeof(block_tags[0])))
		tx_para(w);
}

/* html_raw - inside <script>/<style>: look for its end tag; the bytes
 * used */
static size_t
html_raw(struct mime_html *h, const char *s, size_t n)
{
	size_t i, len = strlen(h->raw);
	unsigned char c;

	for (i = 0; i < n; i++) {
		c = (unsigned char)s[i];
		if (h->kraw == len) {
			if (tx_ws(c) || c == '/' || c == '>') {
				/* the end tag: read like any tag */
				memcpy(h->tag, h->raw + 2, len - 1);
				h->ntag = len - 2;
				h->end = true;
				html_tag_named(h);
				h->st = H_ATTRS;
				return i;
			}
			h->kraw = 0;
		}
		if ((unsigned char)str_lower(c) ==
		    (unsigned char)h->raw[h->kraw])
			h->kraw++;
		else
			h->kraw = c == '<' ? 1 : 0;
	}
	return n;
}

/* html_name_char - add to a tag or attribute name (too long: "") */
static void
html_name_char(char *name, size_t *len, size_t size, unsigned char c)
{
	if (*len + 1 < size)
		name[(*len)++] = (char)str_lower(c);
	else
		*len = size; /* too long: no name we know */
}

/* html_attr_step - one byte (or run) between a tag's name and its '>':
 * attribute names and values; the bytes used (0: the same byte again, in
 * the new state) */
static size_t
html_attr_step(struct mime *w, const char *s, size_t n)
{
	struct mime_html *h = &w->h;
	unsigned char c = (unsigned char)s[0];
	size_t k;

	switch (h->st) {
	case H_ATTRS:
		if (c == '>') {
			html_tag_end(w);
			return 1;
		}
		if (tx_ws(c) || c == '/')
			return 1;
		h->nan = 0;
		h->st = H_ANAME;
		html_name_char(h->an, &h->nan, sizeof(h->an), c);
		return 1;
	case H_ANAME:
		if (c == '=' || c == '>' || c == '/' || tx_ws(c)) {
			if (h->nan >= sizeof(h->an))
				h->nan = 0;
			html_attr_name(h);
			h->st = c == '=' ? H_AVSTART
			    : tx_ws(c)	 ? H_AEQ
					 : H_ATTRS;
			return c == '=' || tx_ws(c) ? 1 : 0;
		}
		html_name_char(h->an, &h->nan, sizeof(h->an), c);
		return 1;
	case H_AEQ:
		if (tx_ws(c))
			return 1;
		if (c == '=') {
			h->st = H_AVSTART;
			return 1;
		}
		h->capture = false; /* a name without a value */
		h->st = H_ATTRS;
		return 0;
	case H_AVSTART:
		if (tx_ws(c))
			return 1;
		if (c == '"' || c == '\'') {
			h->quote = (char)c;
			h->st = H_AVQ;
			return 1;
		}
		h->st = c == '>' ? H_ATTRS : H_AVU;
		return 0;
	case H_AVQ:
		for (k = 0; k < n && s[k] != h->quote; k++)
			;
		html_val(h, s, k);
		if (k < n) {
			h->capture = false;
			h->st = H_ATTRS;
			k++;
		}
		return k;
	case H_AVU:
		for (k = 0; k < n && !tx_ws((unsigned char)s[k]) && s[k] != '>';
		     k++)
			;
		html_val(h, s, k);
		if (k < n) {
			h->capture = false;
			h->st = H_ATTRS;
		}
		return k;
	}
	return 1;
}

/* html_step - one byte (or run) of HTML in a markup state; the bytes
 * used (0: the same byte again, in the new state) */
static size_t
html_step(struct mime *w, const char *s, size_t n)
{
	struct mime_html *h = &w->h;
	unsigned char c = (unsigned char)s[0];
	size_t k;

	switch (h->st) {
	case H_LT:
		if (str_isalpha(c)) {
			h->end = false;
			h->ntag = 0;
			h->st = H_TAG;
			return 0;
		}
		if (c == '/') {
			h->st = H_LTSL;
			return 1;
		}
		h->st = c == '!' ? H_BANG : c == '?' ? H_BOGUS : H_TEXT;
		if (h->st == H_TEXT) {
			tx_put(w, "<", 1);
			return 0;
		}
		return 1;
	case H_LTSL:
		if (str_isalpha(c)) {
			h->end = true;
			h->ntag = 0;
			h->st = H_TAG;
			return 0;
		}
		h->st = c == '>' ? H_TEXT : H_BOGUS; /* "</>" is nothing */
		return 1;
	case H_TAG:
		if (tx_ws(c) || c == '/' || c == '>') {
			if (h->ntag >= sizeof(h->tag))
				h->ntag = 0; /* too long: no tag we know */
			html_tag_named(h);
			h->st = H_ATTRS;
			return 0;
		}
		html_name_char(h->tag, &h->ntag, sizeof(h->tag), c);
		return 1;
	case H_BANG:
		h->st = c == '-' ? H_BANG1 : H_BOGUS;
		return c == '-' ? 1 : 0;
	case H_BANG1:
		if (c != '-') {
			h->st = H_BOGUS;
			return 0;
		}
		h->st = H_COMMENT;
		h->dashes = 2; /* so "<!-->" and "<!--->" end at once */
		return 1;
	case H_COMMENT:
		if (c == '>' && h->dashes >= 2)
			h->st = H_TEXT;
		else if (c == '!' && h->dashes >= 2)
			h->st = H_CEXCL;
		else
			h->dashes = c == '-' ? h->dashes + 1 : 0;
		if (h->dashes > 2)
			h->dashes = 2;
		return 1;
	case H_CEXCL:
		h->st = c == '>' ? H_TEXT : H_COMMENT;
		h->dashes = c == '-' ? 1 : 0;
		return 1;
	case H_BOGUS:
		for (k = 0; k < n && s[k] != '>'; k++)
			;
		if (k < n) {
			h->st = H_TEXT;
			k++;
		}
		return k;
	}
	return html_attr_step(w, s, n);
}

/* html_feed - decoded HTML, any split */
static void
html_feed(struct mime *w, const char *s, size_t n)
{
	struct mime_html *h = &w->h;
	size_t i = 0, k;

	while (i < n && !w->failed) {
		switch (h->st) {
		case H_TEXT:
			for (k = i; k < n && s[k] != '<' && s[k] != '&'; k++)
				;
			if (k > i)
				tx_put(w, s + i, k - i);
			if (k < n) {
				h->st = s[k] == '<' ? H_LT : H_ENT;
				h->nent = 0;
				k++;
			}
			i = k;
			break;
		case H_ENT:
			if (h->nent < sizeof(h->ent) - 1 &&
			    ent_char(h->ent, h->nent, (unsigned char)s[i])) {
				h->ent[h->nent++] = s[i++];
				break;
			}
			if (html_text_ent(w, s[i] == ';'))
				i++;
			h->st = H_TEXT;
			break;
		case H_RAW:
			i += html_raw(h, s + i, n - i);
			break;
		default:
			i += html_step(w, s + i, n - i);
			break;
		}
	}
}

/* emit_raw - bytes to raw */
static void
emit_raw(struct mime *w, const char *s, size_t n)
{
	mime_out(w, MIME_OUT_RAW, s, n);
}

/* emit_run - normalized text to raw, and to text */
static void
emit_run(struct mime *w, const char *s, size_t n)
{
	if (n == 0)
		return;
	emit_raw(w, s, n);
	if (w->html)
		html_feed(w, s, n);
	else
		tx_put(w, s, n);
}

/* mime_emit - decoded UTF-8 of the text part (whole characters): CRLF
 * becomes "\n", a NUL a space; a lone CR stays */
void
mime_emit(void *ctx, const char *s, size_t n)
{
	struct mime *w = ctx;
	size_t i, start = 0;

	for (i = 0; i < n; i++) {
		if (w->cr) {
			w->cr = false; /* s[i] is the first byte after it */
			if (s[i] != '\n')
				emit_run(w, "\r", 1);
		}
		if (s[i] != '\r' && s[i] != '\0')
			continue;
		emit_run(w, s + start, i - start);
		if (s[i] == '\0')
			emit_run(w, " ", 1);
		else
			w->cr = true;
		start = i + 1;
	}
	emit_run(w, s + start, n - start);
}

/* mime_text_start - a text part begins (html: text/html) */
void
mime_text_start(struct mime *w, bool html)
{
	w->html = html;
	w->cr = false;
	memset(&w->tx, 0, sizeof(w->tx));
	w->tx.html = html;
	w->h.st = H_TEXT;
	w->h.raw = NULL;
	if (html && w->h.val == NULL &&
	    (w->h.val = arena_alloc(w->a, AG_MIME_URI_MAX)) == NULL)
		w->failed = true;
}

/* mime_text_end - the text part is over: what waits, the paragraph,
 * the URIs of its text */
void
mime_text_end(struct mime *w)
{
	if (w->cr) {
		w->cr = false;
		emit_run(w, "\r", 1);
	}
	if (w->html && w->h.st == H_ENT)
		html_text_ent(w, false);
	else if (w->html && w->h.st == H_LT)
		tx_put(w, "<", 1);
	w->h.st = H_TEXT;
	w->h.raw = NULL;
	tx_para(w);
	/* the part's last line end belonged to the boundary: raw still
	 * gets one, so that parts do not run into each other */
	if (w->raw.len > 0 && w->rawlast != '\n')
		emit_raw(w, "\n", 1);
	mime_uri_scan(w);
}
