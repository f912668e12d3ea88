/*
 * mime_conv.c - the MIME walker's decoders (see mime_int.h): quoted-
 * printable and base64 that take their input split anywhere, charsets to
 * valid UTF-8 (UTF-8 and windows-1252 built in, the rest through glibc's
 * iconv), and mime_decode_header() for RFC 2047 encoded-words.
 */
#include <errno.h>
#include <iconv.h>
#include <stdint.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"
#include "mime_int.h"

/* windows-1252 0x80-0x9f; the five holes map to C1 controls (WHATWG) */
static const uint16_t cp1252_hi[32] = {0x20ac, 0x0081, 0x201a, 0x0192, 0x201e,
    0x2026, 0x2020, 0x2021, 0x02c6, 0x2030, 0x0160, 0x2039, 0x0152, 0x008d,
    0x017d, 0x008f, 0x0090, 0x2018, 0x2019, 0x201c, 0x201d, 0x2022, 0x2013,
    0x2014, 0x02dc, 0x2122, 0x0161, 0x203a, 0x0153, 0x009d, 0x017e, 0x0178};

/* mime_cp1252 - the code point of a windows-1252 byte */
uint32_t
mime_cp1252(unsigned char c)
{
	return c >= 0x80 && c < 0xa0 ? cp1252_hi[c - 0x80] : c;
}

/* mime_utf8_put - code point as UTF-8 (bad ones as U+FFFD) */
size_t
mime_utf8_put(uint32_t cp, char *out)
{
	if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
		cp = 0xfffd;
	if (cp < 0x80) {
		out[0] = (char)cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char)(0xc0 | (cp >> 6));
		out[1] = (char)(0x80 | (cp & 0x3f));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char)(0xe0 | (cp >> 12));
		out[1] = (char)(0x80 | ((cp >> 6) & 0x3f));
		out[2] = (char)(0x80 | (cp & 0x3f));
		return 3;
	}
	out[0] = (char)(0xf0 | (cp >> 18));
	out[1] = (char)(0x80 | ((cp >> 12) & 0x3f));
	out[2] = (char)(0x80 | ((cp >> 6) & 0x3f));
	out[3] = (char)(0x80 | (cp & 0x3f));
	return 4;
}

/* mime_buf_fit - the part of s that fits before max */
size_t
mime_buf_fit(const struct mime_buf *b, const void *src, size_t n)
{
	const unsigned char *s = src;

	if (n > b->max - b->len) {
		n = b->max - b->len;
		while (n > 0 && (s[n] & 0xc0) == 0x80)
			n--; /* s[n] starts the character not kept */
	}
	return n;
}

/* mime_buf_add - append, cut at max; the buffer grows by doubling, in
 * place once it is big (arena_realloc), so no old copies pile up */
int
mime_buf_add(struct arena *a, struct mime_buf *b, const void *src, size_t n)
{
	const unsigned char *s = src;
	size_t cap, k = mime_buf_fit(b, src, n);
	int rc = k < n;
	char *p;

	n = k;
	if (b->p == NULL || b->len + n >= b->cap) {
		cap = b->cap ? b->cap : 256;
		while (cap <= b->len + n)
			cap *= 2; /* len + n <= max < SIZE_MAX / 4 */
		if ((p = arena_realloc(a, b->p, b->cap, cap)) == NULL)
			return -1;
		b->p = p;
		b->cap = cap;
	}
	if (n)
		memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
	return rc;
}

/*
 * UTF-8 checking (RFC 3629: no overlong forms, no surrogates, nothing past
 * U+10FFFF). Invalid input is replaced per maximal subpart (Unicode 15,
 * 3.9): one U+FFFD for each, or for AUTO each byte read as windows-1252.
 */

/* u8_check - >0: a valid character of that length at s; 0: a valid but
 * incomplete start; -k: the first k bytes are invalid */
static int
u8_check(const unsigned char *s, size_t n)
{
	unsigned c = s[0], lo = 0x80, hi = 0xbf;
	size_t need, i;

	if (c < 0x80)
		return 1;
	if (c < 0xc2)
		return -1;
	if (c < 0xe0)
		need = 1;
	else if (c < 0xf0) {
		need = 2;
		if (c == 0xe0)
			lo = 0xa0;
		else if (c == 0xed)
			hi = 0x9f;
	} else if (c < 0xf5) {
		need = 3;
		if (c == 0xf0)
			lo = 0x90;
		else if (c == 0xf4)
			hi = 0x8f;
	} else
		return -1;
	for (i = 1; i <= need; i++) {
		if (i >= n)
			return 0;
		if (s[i] < lo || s[i] > hi)
			return -(int)i;
		lo = 0x80;
		hi = 0xbf;
	}
	return (int)need + 1;
}

/* mime_utf8_valid - is s[0..n) valid UTF-8? */
bool
mime_utf8_valid(const char *s, size_t n)
{
	size_t i = 0;
	int r;

	while (i < n) {
		if ((unsigned char)s[i] < 0x80) {
			i++;
			continue;
		}
		if ((r = u8_check((const unsigned char *)s + i, n - i)) <= 0)
			return false;
		i += (size_t)r;
	}
	return true;
}

/* conv_bad - replace invalid bytes */
static void
conv_bad(struct mime_conv *c, const unsigned char *s, size_t n)
{
	char u[4 * 16];
	size_t i, k = 0;

	if (c->mode != AG_MIME_CS_AUTO) {
		c->bad = true;
		c->emit(c->ctx, "\xef\xbf\xbd", 3);
		return;
	}
	for (i = 0; i < n; i++) {
		k += mime_utf8_put(mime_cp1252(s[i]), u + k);
		if (k + 4 > sizeof(u)) {
			c->emit(c->ctx, u, k);
			k = 0;
		}
	}
	if (k)
		c->emit(c->ctx, u, k);
}

/* u8_feed - pass valid UTF-8 on, replace the rest; an incomplete
 * character at the end waits for the next call unless final */
static void
u8_feed(struct mime_conv *c, const unsigned char *s, size_t n, bool final)
{
	size_t i = 0, start = 0;
	int r;

	while (c->u8len > 0 && n > 0) {
		c->u8[c->u8len++] = *s++;
		n--;
		if ((r = u8_check(c->u8, c->u8len)) == 0)
			continue;
		if (r > 0)
			c->emit(c->ctx, (const char *)c->u8, (size_t)r);
		else {
			/* the byte just taken broke it: read it again */
			conv_bad(c, c->u8, (size_t)-r);
			s--;
			n++;
		}
		c->u8len = 0;
	}
	while (i < n) {
		if (s[i] < 0x80) {
			i++;
			continue;
		}
		if ((r = u8_check(s + i, n - i)) > 0) {
			i += (size_t)r;
			continue;
		}
		if (i > start)
			c->emit(c->ctx, (const char *)s + start, i - start);
		if (r == 0) {
			memcpy(c->u8, s + i, n - i);
			c->u8len = n - i;
			start = i = n;
			break;
		}
		conv_bad(c, s + i, (size_t)-r);
		i += (size_t)-r;
		start = i;
	}
	if (i > start)
		c->emit(c->ctx, (const char *)s + start, i - start);
	if (final && c->u8len > 0) {
		conv_bad(c, c->u8, c->u8len);
		c->u8len = 0;
	}
}

/* cp1252_feed - windows-1252 to UTF-8 */
static void
cp1252_feed(struct mime_conv *c, const unsigned char *s, size_t n)
{
	size_t i = 0, start = 0;
	char u[3];

	for (; i < n; i++) {
		if (s[i] < 0x80)
			continue;
		if (i > start)
			c->emit(c->ctx, (const char *)s + start, i - start);
		c->emit(c->ctx, u, mime_utf8_put(mime_cp1252(s[i]), u));
		start = i + 1;
	}
	if (i > start)
		c->emit(c->ctx, (const char *)s + start, i - start);
}

/* iconv_run - convert what waits in c->in; an incomplete character at
 * the end stays for the next call unless final */
static void
iconv_run(struct mime_conv *c, bool final)
{
	char out[1024], *ip = (char *)c->in, *op;
	size_t il = c->inlen, ol, r;
	int e;

	while (il > 0) {
		op = out;
		ol = sizeof(out);
		r = iconv(c->cd, &ip, &il, &op, &ol);
		e = errno;
		if (op > out)
			u8_feed(
			    c, (unsigned char *)out, (size_t)(op - out), false);
		if (r != (size_t)-1 || e == E2BIG)
			continue;
		if (e == EINVAL && !final && il < 16)
			break; /* the rest of a character is still to come */
		/* EILSEQ, or a character cut by the end: skip one byte */
		u8_feed(c, NULL, 0, true);
		c->bad = true;
		c->emit(c->ctx, "\xef\xbf\xbd", 3);
		ip++;
		il--;
	}
	memmove(c->in, ip, il);
	c->inlen = il;
	if (final) {
		op = out;
		ol = sizeof(out);
		iconv(c->cd, NULL, NULL, &op,
		    &ol); /* back to the initial shift */
		if (op > out)
			u8_feed(
			    c, (unsigned char *)out, (size_t)(op - out), false);
		u8_feed(c, NULL, 0, true);
		iconv(c->cd, NULL, NULL, NULL, NULL);
	}
}

/* mime_conv_init - a converter with nothing open */
void
mime_conv_init(
    struct mime_conv *c, void (*emit)(void *, const char *, size_t), void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->cd = (iconv_t)-1;
	c->mode = AG_MIME_CS_AUTO;
	c->emit = emit;
	c->ctx = ctx;
}

/* Charset names that mean one of the built-in modes, and the names
 * mail uses for sets glibc knows under a larger name (WHATWG Encoding:
 * what browsers, hence mail readers, decode them as). */
static const struct {
	const char *name, *as;
} cs_alias[] = {
    {"utf-8", ""},
    {"utf8", ""},
    {"us-ascii", ""},
    {"ascii", ""},
    {"ansi_x3.4-1968", ""},
    {"iso646-us", ""},
    {"us", ""},
    {"csascii", ""},
    {"unicode-1-1-utf-8", ""},
    {"iso-8859-1", "1252"},
    {"iso8859-1", "1252"},
    {"iso_8859-1", "1252"},
    {"iso_8859-1:1987", "1252"},
    {"latin1", "1252"},
    {"latin-1", "1252"},
    {"l1", "1252"},
    {"cp819", "1252"},
    {"ibm819", "1252"},
    {"iso-ir-100", "1252"},
    {"csisolatin1", "1252"},
    {"windows-1252", "1252"},
    {"cp1252", "1252"},
    {"x-cp1252", "1252"},
    {"gb2312", "GB18030"},
    {"gbk", "GB18030"},
    {"x-gbk", "GB18030"},
    {"cp936", "GB18030"},
    {"csgb2312", "GB18030"},
    {"euc-cn", "GB18030"},
    {"ks_c_5601-1987", "CP949"},
    {"ks_c_5601-1989", "CP949"},
    {"ksc5601", "CP949"},
    {"euc-kr", "CP949"},
    {"windows-949", "CP949"},
    {"shift_jis", "CP932"},
    {"shift-jis", "CP932"},
    {"sjis", "CP932"},
    {"x-sjis", "CP932"},
    {"ms_kanji", "CP932"},
    {"csshiftjis", "CP932"},
    {"windows-31j", "CP932"},
    {"tis-620", "CP874"},
    {"iso-8859-11", "CP874"},
    {"windows-874", "CP874"},
    {"iso-8859-9", "CP1254"},
    {"latin5", "CP1254"},
    {"big5", "BIG5-HKSCS"},
};

/* cs_name_ok - a name worth handing to iconv_open: glibc gives '/' and
 * ',' a meaning of their own (//TRANSLIT, //IGNORE) */
static bool
cs_name_ok(const char *s)
{
	size_t n = 0;

	for (; s[n] != '\0'; n++)
		if (!str_isalnum((unsigned char)s[n]) &&
		    strchr("-_.:+()", s[n]) == NULL)
			return false;
	return n > 0 && n < AG_MIME_CS_NAME;
}

/* mime_conv_start - convert from this charset (lower case; NULL: not
 * declared) until mime_conv_end; false when it is unknown (then UTF-8) */
bool
mime_conv_start(struct mime_conv *c, const char *cs)
{
	const char *as = cs;
	size_t i;

	c->inlen = c->u8len = 0;
	c->bad = false;
	if (cs == NULL || *cs == '\0') {
		c->mode = AG_MIME_CS_AUTO;
		return true;
	}
	for (i = 0; i < sizeof(cs_alias) / sizeof(cs_alias[0]); i++)
		if (strcmp(cs, cs_alias[i].name) == 0) {
			as = cs_alias[i].as;
			break;
		}
	c->mode = AG_MIME_CS_UTF8;
	if (*as == '\0')
		return true;
	if (strcmp(as, "1252") == 0) {
		c->mode = AG_MIME_CS_1252;
		return true;
	}
	if (c->cd != (iconv_t)-1 && strcmp(c->name, as) == 0) {
		/* the same as the last part's: reuse it, reset */
		iconv(c->cd, NULL, NULL, NULL, NULL);
		c->mode = AG_MIME_CS_ICONV;
		return true;
	}
	mime_conv_close(c);
	if (!cs_name_ok(as) ||
	    (c->cd = iconv_open("UTF-8", as)) == (iconv_t)-1) {
		c->bad = true;
		return false;
	}
	memcpy(c->name, as, strlen(as) + 1);
	c->mode = AG_MIME_CS_ICONV;
	return true;
}

/* mime_conv_feed - bytes in the charset */
void
mime_conv_feed(struct mime_conv *c, const unsigned char *s, size_t n)
{
	size_t k;

	switch (c->mode) {
	case AG_MIME_CS_UTF8:
	case AG_MIME_CS_AUTO:
		u8_feed(c, s, n, false);
		break;
	case AG_MIME_CS_1252:
		cp1252_feed(c, s, n);
		break;
	case AG_MIME_CS_ICONV:
		while (n > 0) {
			k = sizeof(c->in) - c->inlen;
			if (k > n)
				k = n;
			memcpy(c->in + c->inlen, s, k);
			c->inlen += k;
			s += k;
			n -= k;
			if (c->inlen == sizeof(c->in))
				iconv_run(c, false);
		}
		break;
	}
}

/* mime_conv_end - end of the text: flush what waits */
void
mime_conv_end(struct mime_conv *c)
{
	if (c->mode == AG_MIME_CS_ICONV)
		iconv_run(c, true);
	else
		u8_feed(c, NULL, 0, true);
	c->inlen = c->u8len = 0;
}

/* mime_conv_close - release the iconv descriptor */
void
mime_conv_close(struct mime_conv *c)
{
	if (c->cd != (iconv_t)-1)
		iconv_close(c->cd);
	c->cd = (iconv_t)-1;
	c->name[0] = '\0';
	if (c->mode == AG_MIME_CS_ICONV)
		c->mode = AG_MIME_CS_UTF8;
}

/*
 * Transfer encodings. Output is collected in a small buffer and handed to
 * the charset converter in runs.
 */
struct dec_out {
	struct mime_dec *d;
	unsigned char b[512];
	size_t n;
};

/* dec_flush - decoded bytes to the converter */
static void
dec_flush(struct dec_out *o)
{
	size_t i;

	if (o->n == 0)
		return;
	for (i = 0; i < o->n && !o->d->high; i++)
		if (o->b[i] >= 0x80)
			o->d->high = true;
	o->d->decoded += o->n;
	mime_conv_feed(&o->d->conv, o->b, o->n);
	o->n = 0;
}

/* dec_put - one decoded byte */
static void
dec_put(struct dec_out *o, unsigned char c)
{
	if (o->n == sizeof(o->b))
		dec_flush(o);
	o->b[o->n++] = c;
}

/* dec_puts - decoded bytes */
static void
dec_puts(struct dec_out *o, const unsigned char *s, size_t n)
{
	while (n-- > 0)
		dec_put(o, *s++);
}

/* mime_hexval - value of a hex digit, or -1 */
int
mime_hexval(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = (unsigned char)str_lower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* mime_b64val - the value of a base64 character, or AG_MIME_B64_* */
int
mime_b64val(unsigned char c)
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
	if (c == '=')
		return AG_MIME_B64_PAD;
	if (c == ' ' || c == '\t' || c == '\r' || c == '\n')
		return AG_MIME_B64_WS;
	return AG_MIME_B64_BAD;
}

enum {
	QP_TEXT,
	QP_EQ,
	QP_EQWS,
	QP_HEX
};

/* qp_bytes - quoted-printable (RFC 2045 6.7): white space is held until
 * it is known not to end the line; a bad escape stays as written */
static void
qp_bytes(
    struct mime_dec *d, struct dec_out *o, const unsigned char *s, size_t n)
{
	size_t i = 0;
	unsigned char c;

	while (i < n) {
		c = s[i];
		switch (d->qst) {
		case QP_TEXT:
			i++;
			if (c == ' ' || c == '\t') {
				if (d->nws == sizeof(d->ws)) {
					dec_puts(o, d->ws, d->nws);
					d->nws = 0;
				}
				d->ws[d->nws++] = c;
				break;
			}
			dec_puts(o, d->ws, d->nws);
			d->nws = 0;
			if (c == '=')
				d->qst = QP_EQ;
			else
				dec_put(o, c);
			break;
		case QP_EQ:
			if (mime_hexval(c) >= 0) {
				d->qhex = c;
				d->qst = QP_HEX;
				i++;
			} else if (c == ' ' || c == '\t') {
				d->ws[d->nws++] = c; /* "=" WSP* CRLF */
				d->qst = QP_EQWS;
				i++;
			} else {
				d->flags |= MIME_F_BAD_QP;
				dec_put(o, '=');
				d->qst = QP_TEXT; /* c again, as text */
			}
			break;
		case QP_EQWS:
			if ((c == ' ' || c == '\t') && d->nws < sizeof(d->ws)) {
				d->ws[d->nws++] = c;
				i++;
				break;
			}
			d->flags |= MIME_F_BAD_QP;
			dec_put(o, '=');
			dec_puts(o, d->ws, d->nws);
			d->nws = 0;
			d->qst = QP_TEXT;
			break;
		case QP_HEX:
			if (mime_hexval(c) >= 0) {
				dec_put(o,
				    (unsigned char)(mime_hexval(d->qhex) * 16 +
					mime_hexval(c)));
				i++;
			} else {
				d->flags |= MIME_F_BAD_QP;
				dec_put(o, '=');
				dec_put(o, d->qhex);
			}
			d->qst = QP_TEXT;
			break;
		}
	}
}

/* qp_eol - a line end: trailing white space goes (6.7 rule 3), "=" at
 * the end is a soft line break; last: the part's last line, whose line
 * end belongs to the boundary */
static void
qp_eol(struct mime_dec *d, struct dec_out *o, bool last)
{
	if (d->qst == QP_HEX) {
		d->flags |= MIME_F_BAD_QP; /* "=4" CRLF: kept, a hard break */
		dec_put(o, '=');
		dec_put(o, d->qhex);
		d->qst = QP_TEXT;
	}
	if (d->qst == QP_TEXT && !last)
		dec_put(o, '\n');
	d->nws = 0;
	d->qst = QP_TEXT;
}

/* b64_bytes - base64 (RFC 2045 6.8): line ends and white space skipped,
 * other characters outside the alphabet flagged and skipped */
static void
b64_bytes(
    struct mime_dec *d, struct dec_out *o, const unsigned char *s, size_t n)
{
	size_t i;
	int v;

	for (i = 0; i < n; i++) {
		if ((v = mime_b64val(s[i])) >= 0) {
			d->bpad = false;
			d->bq = (d->bq << 6) | (uint32_t)v;
			if (++d->bn == 4) {
				dec_put(o, (unsigned char)(d->bq >> 16));
				dec_put(o, (unsigned char)(d->bq >> 8));
				dec_put(o, (unsigned char)d->bq);
				d->bq = 0;
				d->bn = 0;
			}
		} else if (v == AG_MIME_B64_PAD) {
			if (d->bn == 2) {
				dec_put(o, (unsigned char)(d->bq >> 4));
				d->bpad = true; /* "xx==" */
			} else if (d->bn == 3) {
				dec_put(o, (unsigned char)(d->bq >> 10));
				dec_put(o, (unsigned char)(d->bq >> 2));
			} else if (d->bn == 0 && d->bpad)
				d->bpad = false;
			else
				d->flags |= MIME_F_BAD_BASE64;
			d->bq = 0;
			d->bn = 0;
		} else if (v == AG_MIME_B64_BAD)
			d->flags |= MIME_F_BAD_BASE64;
	}
}

/* mime_dec_start - decode a new part in this transfer encoding (lower
 * case; anything unknown is taken as it is) */
void
mime_dec_start(struct mime_dec *d, const char *enc)
{
	d->cte = AG_MIME_CTE_IDENT;
	if (enc != NULL && strcmp(enc, "quoted-printable") == 0)
		d->cte = AG_MIME_CTE_QP;
	else if (enc != NULL && strcmp(enc, "base64") == 0)
		d->cte = AG_MIME_CTE_B64;
	d->qst = QP_TEXT;
	d->nws = 0;
	d->bq = 0;
	d->bn = 0;
	d->bpad = false;
	d->flags = 0;
	d->high = false;
	d->decoded = 0;
}

/* mime_dec_bytes - encoded bytes of a line (without its line end) */
void
mime_dec_bytes(struct mime_dec *d, const char *s, size_t n)
{
	struct dec_out o = {.d = d};

	switch (d->cte) {
	case AG_MIME_CTE_IDENT:
		dec_puts(&o, (const unsigned char *)s, n);
		break;
	case AG_MIME_CTE_QP:
		qp_bytes(d, &o, (const unsigned char *)s, n);
		break;
	case AG_MIME_CTE_B64:
		b64_bytes(d, &o, (const unsigned char *)s, n);
		break;
	}
	dec_flush(&o);
}

/* mime_dec_eol - a line end that is part of the text */
void
mime_dec_eol(struct mime_dec *d)
{
	struct dec_out o = {.d = d};

	if (d->cte == AG_MIME_CTE_IDENT)
		dec_put(&o, '\n');
	else if (d->cte == AG_MIME_CTE_QP)
		qp_eol(d, &o, false);
	dec_flush(&o);
}

/* mime_dec_end - the part is over (complete: not cut by scan_limit, so
 * a base64 quartet left open is an error) */
void
mime_dec_end(struct mime_dec *d, bool complete)
{
	struct dec_out o = {.d = d};

	if (d->cte == AG_MIME_CTE_QP)
		qp_eol(d, &o, true);
	else if (d->cte == AG_MIME_CTE_B64 && d->bn > 0) {
		/* no padding: decode what there is, as readers do */
		if (d->bn == 2)
			dec_put(&o, (unsigned char)(d->bq >> 4));
		else if (d->bn == 3) {
			dec_put(&o, (unsigned char)(d->bq >> 10));
			dec_put(&o, (unsigned char)(d->bq >> 2));
		}
		if (complete)
			d->flags |= MIME_F_BAD_BASE64;
		d->bn = 0;
	}
	dec_flush(&o);
	mime_conv_end(&d->conv);
}
