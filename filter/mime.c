/*
 * mime.c - streaming MIME walk of one message body (see mime.h): the API,
 * line splitting, boundaries, part headers and their parameters. The
 * decoders are in mime_conv.c, the text and HTML in mime_text.c, the
 * URIs in mime_uri.c.
 *
 * Lines are split as they stream in; a line longer than the buffer
 * (AG_MIME_LINE_CAP) goes on in pieces, so memory does not grow with it,
 * and every decision is made the same way wherever the chunks were cut
 * (the fuzz target checks that). A boundary line is one of any open
 * multipart, innermost first (see bnd_match); one of an outer multipart
 * closes the inner ones (RFC 2046 5.1.2).
 */
#include <stdint.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"
#include "mime_int.h"

/* The part headers that matter, as indexes into hv[] and top[]. */
enum {
	HV_TYPE,
	HV_CTE,
	HV_DISP
};

static const char *const common_values[] = {"text/plain", "text/html",
    "multipart/mixed", "multipart/alternative", "multipart/related",
    "multipart/report", "message/rfc822", "application/octet-stream",
    "application/pdf", "image/png", "image/jpeg", "image/gif", "7bit", "8bit",
    "binary", "base64", "quoted-printable", "utf-8", "us-ascii", "iso-8859-1",
    "windows-1252"};

/* intern - a part's value: a shared copy when common or the same as
 * the previous part's (100 000 parts need not cost 100 000 copies) */
static const char *
intern(struct mime *w, const char *s, const char *prev)
{
	const char *p;
	size_t i;

	for (i = 0; i < sizeof(common_values) / sizeof(common_values[0]); i++)
		if (strcmp(s, common_values[i]) == 0)
			return common_values[i];
	if (prev != NULL && strcmp(prev, s) == 0)
		return prev;
	if ((p = arena_strdup(w->a, s)) == NULL)
		w->failed = true;
	return p;
}

/* hdr_kind - HV_* for a header name, 3 for MIME-Version, -1 otherwise */
static int
hdr_kind(const char *name, size_t len)
{
	if (str_caseeq_len(name, len, "content-type"))
		return HV_TYPE;
	if (str_caseeq_len(name, len, "content-transfer-encoding"))
		return HV_CTE;
	if (str_caseeq_len(name, len, "content-disposition"))
		return HV_DISP;
	if (str_caseeq_len(name, len, "mime-version"))
		return 3;
	return -1;
}

/* part_filename - filename= of the disposition, else name= of the
 * type, decoded to UTF-8 (RFC 2231 charset, or RFC 2047 words) */
static const char *
part_filename(struct mime *w)
{
	struct mime_pbuf o;
	char cs[AG_MIME_CS_NAME];
	const char *v;
	char *f;
	int k;

	for (k = 0; k < 2; k++) {
		v = w->hv[k == 0 ? HV_DISP : HV_TYPE];
		if (v == NULL ||
		    !mime_param_get(v, strlen(v), k == 0 ? "filename" : "name",
			&o, cs, sizeof(cs)) ||
		    o.n == 0)
			continue;
		f = cs[0] != '\0' ? mime_conv_str(w->a, cs, o.b, o.n)
				  : mime_decode_header(w->a, o.b, o.n);
		if (f == NULL)
			w->failed = true;
		return f != NULL && *f != '\0' ? f : NULL;
	}
	return NULL;
}

/* part_new - the part whose header section ended, from hv[] */
static struct mime_part *
part_new(struct mime *w)
{
	const struct mime_part *prev = w->tail;
	struct mime_part *p;
	char buf[128], cs[AG_MIME_CS_NAME];
	struct mime_pbuf o;
	size_t i;

	if ((p = arena_zalloc(w->a, sizeof(*p))) == NULL) {
		w->failed = true;
		return NULL;
	}
	p->depth = w->hdepth;
	p->type = w->hv[HV_TYPE] != NULL &&
		mime_ct_type(w->hv[HV_TYPE], buf, sizeof(buf))
	    ? intern(w, buf, prev ? prev->type : NULL)
	    : w->deftype;
	if (w->hv[HV_TYPE] != NULL &&
	    mime_param_get(w->hv[HV_TYPE], strlen(w->hv[HV_TYPE]), "charset",
		&o, cs, sizeof(cs))) {
		/* a charset name is one word; "utf-8 (comment)" is utf-8 */
		for (i = 0; i < o.n && i + 1 < sizeof(buf) &&
		     !str_isspace((unsigned char)o.b[i]) && o.b[i] != '(';
		     i++)
			buf[i] = (char)str_lower((unsigned char)o.b[i]);
		buf[i] = '\0';
		if (i > 0)
			p->charset =
			    intern(w, buf, prev ? prev->charset : NULL);
	}
	p->encoding = "7bit";
	if (w->hv[HV_CTE] != NULL &&
	    mime_first_token(w->hv[HV_CTE], buf, sizeof(buf)))
		p->encoding = intern(w, buf, prev ? prev->encoding : NULL);
	if (w->hv[HV_DISP] != NULL &&
	    mime_first_token(w->hv[HV_DISP], buf, sizeof(buf)))
		p->attachment = strcmp(buf, "attachment") == 0;
	p->filename = part_filename(w);
	return w->failed ? NULL : p;
}

/* part_end - the leaf part whose body streams is over at offset off;
 * complete: ended by a boundary or the end of the body, not cut short by
 * scan_limit. That is known from where the part ended, never from
 * whether the limit was reached by then: a chunk that reaches it is
 * known to before its lines are read (mime-1). */
static void
part_end(struct mime *w, size_t off, bool complete)
{
	struct mime_dec *d = &w->dec;

	if (w->st == AG_MIME_ST_TEXT) {
		mime_dec_end(d, complete);
		mime_text_end(w);
		w->res.flags |= d->flags;
		if (d->conv.bad)
			w->res.flags |= MIME_F_BAD_CHARSET;
		if (d->cte == AG_MIME_CTE_B64 && !d->high && d->decoded > 0)
			w->res.flags |= MIME_F_TEXT_BASE64;
		w->cur->text_bytes = w->text.len - w->text0;
	}
	if (w->cur != NULL)
		w->cur->bytes = off - w->cur_start;
	w->cur = NULL;
	w->st = AG_MIME_ST_SKIP;
}

/* frames_end - close the containers from k up; a multipart among them
 * that had no close delimiter is flagged unless bad is false */
static void
frames_end(struct mime *w, size_t k, size_t off, bool bad)
{
	while (w->nfr > k) {
		struct mime_frame *f = &w->fr[--w->nfr];

		f->part->bytes = off - f->start;
		if (bad && f->b != NULL)
			w->res.flags |= MIME_F_BAD_BOUNDARY;
	}
}

/* part_open - a part starts: its header section comes next */
static void
part_open(struct mime *w, int depth, const char *deftype)
{
	w->cur = NULL;
	if (w->max_parts != 0 && w->res.nparts >= w->max_parts) {
		w->res.flags |= MIME_F_TOO_MANY;
		w->st = AG_MIME_ST_SKIP;
		return;
	}
	w->st = AG_MIME_ST_HDR;
	w->hdepth = depth;
	w->deftype = deftype;
	w->hv[0] = w->hv[1] = w->hv[2] = NULL;
	w->infield = false;
	w->fldlen = 0;
	w->fldkind = -1;
}

/* push - a container opens at depth d; false when too deep */
static bool
push(struct mime *w, struct mime_part *p, const struct mime_pbuf *b,
    size_t start)
{
	struct mime_frame *f;

	if (p->depth + 1 > MIME_MAX_DEPTH || w->nfr >= MIME_MAX_DEPTH) {
		w->res.flags |= MIME_F_TOO_DEEP;
		return false;
	}
	f = &w->fr[w->nfr];
	f->part = p;
	f->start = start;
	f->b = NULL;
	f->blen = 0;
	f->digest = strcmp(p->type, "multipart/digest") == 0;
	if (b != NULL) {
		if ((f->b = arena_memdup(w->a, b->b, b->n)) == NULL) {
			w->failed = true;
			return false;
		}
		f->blen = b->n;
	}
	w->nfr++;
	return true;
}

/* boundary_ok - a boundary that can be matched: 1 to 200 bytes, all on
 * one line */
static bool
boundary_ok(const struct mime_pbuf *b)
{
	return b->n > 0 && b->n <= AG_MIME_BOUNDARY_MAX &&
	    memchr(b->b, '\n', b->n) == NULL &&
	    memchr(b->b, '\r', b->n) == NULL;
}

/* headers_end - the part's header section is over; its body starts at
 * offset start: a container to walk into, a text to decode, or a body
 * to skip */
static void
headers_end(struct mime *w, size_t start)
{
	struct mime_part *p;
	struct mime_pbuf b;
	char cs[AG_MIME_CS_NAME];
	bool text;

	w->st = AG_MIME_ST_SKIP;
	if ((p = part_new(w)) == NULL)
		return;
	if (w->tail != NULL)
		w->tail->next = p;
	else
		w->res.parts = p;
	w->tail = p;
	w->res.nparts++;
	if (p->attachment || p->filename != NULL)
		w->res.attachments++;
	w->cur = p;
	w->cur_start = start;
	if (strncmp(p->type, "multipart/", 10) == 0) {
		if (w->hv[HV_TYPE] != NULL &&
		    mime_param_get(w->hv[HV_TYPE], strlen(w->hv[HV_TYPE]),
			"boundary", &b, cs, sizeof(cs)) &&
		    boundary_ok(&b)) {
			if (push(w, p, &b, start))
				w->cur = NULL; /* the preamble: skipped */
			return;
		}
		/* no boundary: read it as text, which it most likely is */
		w->res.flags |= MIME_F_BAD_BOUNDARY;
		text = !p->attachment;
	} else if ((strcmp(p->type, "message/rfc822") == 0 ||
		       strcmp(p->type, "message/global") == 0) &&
	    (strcmp(p->encoding, "7bit") == 0 ||
		strcmp(p->encoding, "8bit") == 0 ||
		strcmp(p->encoding, "binary") == 0)) {
		/* the enclosed message's header section follows */
		if (push(w, p, NULL, start))
			part_open(w, p->depth + 1, "text/plain");
		return;
	} else
		text = !p->attachment &&
		    (strcmp(p->type, "text/plain") == 0 ||
			strcmp(p->type, "text/html") == 0);
	if (!text)
		return;
	w->st = AG_MIME_ST_TEXT;
	if (strcmp(p->type, "text/html") == 0)
		w->res.html_parts++;
	else
		w->res.text_parts++;
	w->text0 = w->text.len;
	w->eol = false;
	mime_dec_start(&w->dec, p->encoding);
	mime_conv_start(&w->dec.conv, p->charset);
	mime_text_start(w, strcmp(p->type, "text/html") == 0);
}

/* field_end - the header field read so far is complete */
static void
field_end(struct mime *w)
{
	if (w->infield && w->fldkind >= 0) {
		if (w->hv[w->fldkind] != NULL)
			w->res.flags |= MIME_F_BAD_HEADER; /* given twice */
		else if ((w->hv[w->fldkind] = arena_strndup(
			      w->a, w->fld, w->fldlen)) == NULL)
			w->failed = true;
	}
	w->infield = false;
	w->fldlen = 0;
	w->fldkind = -1;
}

/* field_add - more of the field's value (folds joined) */
static void
field_add(struct mime *w, const char *s, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if ((unsigned char)s[i] >= 0x80) {
			w->res.flags |= MIME_F_8BIT_HEADERS;
			break;
		}
	if (w->fldkind < 0)
		return;
	if (n > AG_MIME_HDR_CAP - w->fldlen)
		n = AG_MIME_HDR_CAP - w->fldlen;
	memcpy(w->fld + w->fldlen, s, n);
	w->fldlen += n;
}

/* hdr_line - a line of a part's header section; false when it is not a
 * header line (it ends the section and is the body's first line) */
static bool
hdr_line(
    struct mime *w, const char *s, size_t n, bool bol, size_t off, size_t eol)
{
	size_t i, e;

	if (!bol) {
		field_add(w, s, n); /* the rest of a long line */
		return true;
	}
	if (n == 0) {
		field_end(w);
		headers_end(w, off + eol);
		return true;
	}
	if (s[0] == ' ' || s[0] == '\t') {
		if (!w->infield)
			w->res.flags |= MIME_F_BAD_HEADER;
		else
			field_add(w, s, n);
		return true;
	}
	field_end(w);
	/* RFC 5322 2.2: printable ASCII but ':', then ':' */
	for (i = 0; i < n && s[i] > 32 && s[i] < 127 && s[i] != ':'; i++)
		;
	for (e = i; e < n && (s[e] == ' ' || s[e] == '\t'); e++)
		;
	if (i == 0 || e >= n || s[e] != ':') {
		w->res.flags |= MIME_F_BAD_HEADER;
		headers_end(w, off);
		return false;
	}
	w->infield = true;
	w->fldkind = hdr_kind(s, i);
	if (w->fldkind > HV_DISP)
		w->fldkind = -1;
	field_add(w, s + e + 1, n - e - 1);
	return true;
}

/* bnd_match - 0: the line is not a delimiter of f; 1: it is one; 2: it
 * is the close delimiter. RFC 2046 5.1.1: "--", the boundary, then only
 * white space, or "--" after it for the close delimiter (tolerated with
 * anything after it). Not a prefix match as in Postfix's mime_state.c:
 * that makes "--b10" a delimiter of boundary "b1". A piece of a longer
 * line (eol 0) can only be a close delimiter. */
static int
bnd_match(const struct mime_frame *f, const char *s, size_t n, size_t eol)
{
	size_t i;

	if (f->b == NULL || n < 2 + f->blen ||
	    memcmp(s + 2, f->b, f->blen) != 0)
		return 0;
	i = 2 + f->blen;
	if (n - i >= 2 && s[i] == '-' && s[i + 1] == '-')
		return 2;
	if (eol == 0)
		return 0;
	for (; i < n; i++)
		if (s[i] != ' ' && s[i] != '\t')
			return 0;
	return 1;
}

/* boundary - is the line a delimiter of an open multipart (the
 * innermost first)? Then end what it ends and start what it starts */
static bool
boundary(struct mime *w, const char *s, size_t n, size_t off, size_t eol)
{
	struct mime_frame *f;
	size_t k = w->nfr;
	int m;

	while (k-- > 0) {
		f = &w->fr[k];
		if ((m = bnd_match(f, s, n, eol)) == 0)
			continue;
		w->skipline = eol == 0;
		if (w->st == AG_MIME_ST_HDR)
			headers_end(w, off); /* a part without a body */
		part_end(w, off, true);
		frames_end(w, k + 1, off, true);
		if (m == 2)
			frames_end(w, k, off, false); /* then its epilogue */
		else
			part_open(w, f->part->depth + 1,
			    f->digest ? "message/rfc822" : "text/plain");
		return true;
	}
	return false;
}

/* text_line - a line of a text part's body; its line end is passed on
 * only when the next line comes, for the one before a boundary belongs
 * to the boundary (RFC 2046 5.1.1) */
static void
text_line(struct mime *w, const char *s, size_t n, bool bol, size_t eol)
{
	if (bol && w->eol)
		mime_dec_eol(&w->dec);
	w->eol = eol > 0;
	if (n > 0)
		mime_dec_bytes(&w->dec, s, n);
}

/* do_line - one line without its line end (eol: its length), or a piece
 * of a long one (eol 0; bol: the piece starts the line) */
static void
do_line(struct mime *w, const char *s, size_t n, bool bol, size_t eol)
{
	size_t off = w->off;

	w->off += n + eol;
	if (w->skipline) {
		w->skipline = eol == 0;
		return;
	}
	if (bol && w->nfr > 0 && n >= 2 && s[0] == '-' && s[1] == '-' &&
	    boundary(w, s, n, off, eol))
		return;
	/* a line that is not a header is the first line of the body (of
	 * an enclosed message, maybe, whose header section then ends) */
	while (w->st == AG_MIME_ST_HDR)
		if (hdr_line(w, s, n, bol, off, eol))
			return;
	if (w->st == AG_MIME_ST_TEXT)
		text_line(w, s, n, bol, eol);
}

/* split_line - a line with its '\n' (len >= 1) */
static void
split_line(struct mime *w, const char *s, size_t len, bool bol)
{
	size_t eol = len >= 2 && s[len - 2] == '\r' ? 2 : 1;

	do_line(w, s, len - eol, bol, eol);
}

/* split - cut the body into lines; one longer than AG_MIME_LINE_CAP
 * goes in pieces of that size (one less when a CR would end a piece:
 * it may start a CRLF) */
static void
split(struct mime *w, const char *s, size_t n)
{
	const char *nl;
	size_t k, room;

	while (n > 0 && !w->failed) {
		if (w->linelen == 0) {
			/* nothing buffered: lines straight from the chunk */
			k = n < AG_MIME_LINE_CAP ? n : AG_MIME_LINE_CAP;
			if ((nl = memchr(s, '\n', k)) != NULL) {
				k = (size_t)(nl - s) + 1;
				split_line(w, s, k, w->bol);
				w->bol = true;
			} else if (n >= AG_MIME_LINE_CAP) {
				k = AG_MIME_LINE_CAP - (s[k - 1] == '\r');
				do_line(w, s, k, w->bol, 0);
				w->bol = false;
			} else {
				memcpy(w->line, s, n);
				w->linelen = k = n;
			}
			s += k;
			n -= k;
			continue;
		}
		room = AG_MIME_LINE_CAP - w->linelen;
		k = n < room ? n : room;
		if ((nl = memchr(s, '\n', k)) != NULL)
			k = (size_t)(nl - s) + 1;
		memcpy(w->line + w->linelen, s, k);
		w->linelen += k;
		s += k;
		n -= k;
		if (nl != NULL) {
			split_line(w, w->line, w->linelen, w->bol);
			w->linelen = 0;
			w->bol = true;
		} else if (w->linelen == AG_MIME_LINE_CAP) {
			k = AG_MIME_LINE_CAP -
			    (w->line[AG_MIME_LINE_CAP - 1] == '\r');
			do_line(w, w->line, k, w->bol, 0);
			w->bol = false;
			memmove(w->line, w->line + k, AG_MIME_LINE_CAP - k);
			w->linelen = AG_MIME_LINE_CAP - k;
		}
	}
}

/* mime_cleanup - arena destructor: the iconv descriptor, on every path */
static void
mime_cleanup(void *arg)
{
	struct mime *w = arg;

	mime_conv_close(&w->dec.conv);
}

/* mime_new - a walker */
struct mime *
mime_new(struct arena *a, size_t scan_limit, size_t max_parts, size_t max_uris)
{
	struct mime *w;
	size_t max = SIZE_MAX / 4;

	if ((w = arena_zalloc(a, sizeof(*w))) == NULL ||
	    (w->line = arena_alloc(a, AG_MIME_LINE_CAP)) == NULL ||
	    (w->fld = arena_alloc(a, AG_MIME_HDR_CAP)) == NULL ||
	    (w->ub = arena_alloc(a, AG_MIME_URI_BUF)) == NULL)
		return NULL;
	w->uprev = ' ';
	w->a = a;
	w->scan_limit = scan_limit;
	w->max_parts = max_parts;
	w->max_uris = max_uris;
	w->bol = true;
	w->st = AG_MIME_ST_SKIP;
	w->fldkind = -1;
	if (scan_limit != 0 && scan_limit < (SIZE_MAX / 4 - 4096) / 3)
		max = 3 * scan_limit + 4096;
	w->text.max = w->raw.max = max;
	mime_conv_init(&w->dec.conv, mime_emit, w);
	if (arena_defer(a, mime_cleanup, w) == -1)
		return NULL;
	return w;
}

/* mime_set_output - text and raw to fn, not kept */
void
mime_set_output(struct mime *w,
    void (*fn)(void *ctx, int which, const char *, size_t), void *ctx)
{
	w->out = fn;
	w->outctx = ctx;
}

/* mime_header - a top-level header */
int
mime_header(struct mime *w, const char *name, const char *value)
{
	int k = hdr_kind(name, strlen(name));
	size_t i, n = 0, len;
	char *v;

	if (w->failed)
		return -1;
	if (w->started || k < 0)
		return 0;
	if (k == 3) {
		w->mime_version = true;
		return 0;
	}
	if (w->top[k] != NULL) {
		w->res.flags |= MIME_F_BAD_HEADER; /* given twice */
		return 0;
	}
	len = strlen(value);
	if (len > AG_MIME_HDR_CAP)
		len = AG_MIME_HDR_CAP;
	if ((v = arena_alloc(w->a, len + 1)) == NULL) {
		w->failed = true;
		return -1;
	}
	for (i = 0; i < len; i++) /* unfold */
		if (value[i] != '\r' && value[i] != '\n')
			v[n++] = value[i];
	v[n] = '\0';
	w->top[k] = v;
	return 0;
}

/* start - the top-level part, from the headers mime_header() saw */
static void
start(struct mime *w)
{
	w->started = true;
	if (!w->mime_version)
		w->res.flags |= MIME_F_NO_MIME;
	part_open(w, 0, "text/plain");
	if (w->st != AG_MIME_ST_HDR)
		return; /* not reached: nparts is 0, and max_parts 0 or more */
	memcpy(w->hv, w->top, sizeof(w->hv));
	headers_end(w, 0);
}

/* mime_body - the next body chunk */
int
mime_body(struct mime *w, const unsigned char *data, size_t n)
{
	if (w->failed)
		return -1;
	if (w->ended || w->stopped || n == 0)
		return 0;
	if (!w->started)
		start(w);
	if (w->scan_limit != 0 && n > w->scan_limit - w->res.body_bytes) {
		/* the rest of this and every later chunk is not looked at */
		n = w->scan_limit - w->res.body_bytes;
		w->stopped = true;
		w->res.flags |= MIME_F_TRUNCATED;
	}
	w->res.body_bytes += n;
	split(w, (const char *)data, n);
	return w->failed ? -1 : 0;
}

/* mime_uri_count - URIs found so far */
size_t
mime_uri_count(const struct mime *w)
{
	return w->res.nuris;
}

/* mime_uris - the URIs found so far */
const struct mime_uri *
mime_uris(const struct mime *w)
{
	return w->res.uris;
}

/* mime_end - end of body: flush, close what is open, the result */
const struct mime_result *
mime_end(struct mime *w)
{
	if (w->failed)
		return NULL;
	if (w->ended)
		return &w->res;
	if (!w->started)
		start(w);
	if (w->linelen > 0)
		do_line(w, w->line, w->linelen, w->bol, 0);
	w->linelen = 0;
	if (w->st == AG_MIME_ST_HDR)
		headers_end(w, w->off);
	part_end(w, w->off, !w->stopped);
	/* a multipart still open was never closed, unless cut short */
	frames_end(w, 0, w->off, !w->stopped);
	w->ended = true;
	mime_conv_close(&w->dec.conv);
	if (w->out == NULL &&
	    ((w->text.p == NULL && mime_buf_add(w->a, &w->text, "", 0) == -1) ||
		(w->raw.p == NULL && mime_buf_add(w->a, &w->raw, "", 0) == -1)))
		w->failed = true;
	w->res.text = w->text.p;
	w->res.textlen = w->text.len;
	w->res.raw = w->raw.p;
	w->res.rawlen = w->raw.len;
	return w->failed ? NULL : &w->res;
}
