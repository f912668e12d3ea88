/*
 * mime_int.h - internals of the MIME walker, shared by its five files:
 * mime.c (the API, line splitting, boundaries, part headers), mime_conv.c
 * (quoted-printable, base64, charsets to UTF-8), mime_hdr.c (header
 * parameters, RFC 2047 words), mime_text.c (the paragraph joiner and the
 * HTML stripper) and mime_uri.c (URIs in text and attributes). Not an interface: only mime*.c include
 * it. Everything here works on one walker, one thread at a time.
 */
#ifndef AG_MIME_INT_H
#define AG_MIME_INT_H

#include <iconv.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mime.h"

#define AG_MIME_LINE_CAP     4096 /* longer lines are walked in pieces */
#define AG_MIME_HDR_CAP	     8192 /* one part header field, unfolded */
#define AG_MIME_BOUNDARY_MAX 200  /* RFC 2046 5.1.1 allows 70 */
#define AG_MIME_PARAM_MAX    1024 /* a parameter value (filename, ...) */
#define AG_MIME_URI_MAX	     2048 /* longer URIs are cut */
#define AG_MIME_URI_BUF	     (AG_MIME_URI_MAX + 64) /* text kept to scan */
#define AG_MIME_CS_IN	     256 /* bytes handed to iconv at a time */
#define AG_MIME_CS_NAME	     48	 /* longest charset name tried */

/* mime_buf - output that grows geometrically in the arena (resized in
 * place, see arena_realloc); it holds at most max bytes (plus a NUL),
 * cut at a UTF-8 character boundary */
struct mime_buf {
	char *p;
	size_t len, cap, max;
};

/* mime_buf_add - append; 0, 1 when cut at max, -1 when the arena fails */
int mime_buf_add(struct arena *, struct mime_buf *, const void *, size_t);
/* mime_buf_fit - how much of s[0..n) fits before max, cut at a UTF-8
 * character boundary (n when all of it) */
size_t mime_buf_fit(const struct mime_buf *, const void *s, size_t n);

/* How a charset becomes UTF-8. */
enum ag_mime_cs {
	AG_MIME_CS_UTF8,  /* UTF-8 (or US-ASCII): invalid bytes -> U+FFFD */
	AG_MIME_CS_AUTO,  /* undeclared: UTF-8 where valid, else cp1252 */
	AG_MIME_CS_1252,  /* windows-1252 and ISO-8859-1, built in */
	AG_MIME_CS_ICONV, /* anything else glibc knows */
};

/* mime_conv - a streaming converter to UTF-8; emit() gets valid UTF-8
 * in whole characters */
struct mime_conv {
	enum ag_mime_cs mode;
	iconv_t cd; /* (iconv_t)-1 when none is open */
	char name[AG_MIME_CS_NAME];
	unsigned char in[AG_MIME_CS_IN]; /* bytes waiting for iconv */
	size_t inlen;
	unsigned char u8[4]; /* an incomplete UTF-8 sequence */
	size_t u8len;
	bool bad; /* invalid bytes, or an unknown charset */
	void (*emit)(void *, const char *, size_t);
	void *ctx;
};

void mime_conv_init(
    struct mime_conv *, void (*)(void *, const char *, size_t), void *);
bool mime_conv_start(struct mime_conv *, const char *charset);
void mime_conv_feed(struct mime_conv *, const unsigned char *, size_t);
void mime_conv_end(struct mime_conv *);
void mime_conv_close(struct mime_conv *);
/* mime_conv_str - bytes in a charset as a UTF-8 string (mime_hdr.c) */
char *mime_conv_str(struct arena *, const char *charset, const char *, size_t);

/* mime_hexval - value of a hex digit, or -1 */
int mime_hexval(unsigned char);
/* mime_b64val - value of a base64 character, or one of these */
#define AG_MIME_B64_WS	-1 /* white space: skipped */
#define AG_MIME_B64_PAD -2 /* '=' */
#define AG_MIME_B64_BAD -3 /* not base64 */
int mime_b64val(unsigned char);

/* mime_hdr.c: parameters of header values */
struct mime_pbuf {
	char b[AG_MIME_PARAM_MAX + 1];
	size_t n;
};
/* mime_param_get - parameter name of a header value, RFC 2231 pieces
 * put together and %XX decoded (not converted: cs gets their charset) */
bool mime_param_get(const char *v, size_t len, const char *name,
    struct mime_pbuf *, char *cs, size_t cssize);
/* mime_first_token - the first token, lower case */
bool mime_first_token(const char *v, char *out, size_t size);
/* mime_ct_type - "type/subtype" of a Content-Type, lower case */
bool mime_ct_type(const char *v, char *out, size_t size);

/* mime_utf8_put - code point as UTF-8 into out[4]; its length */
size_t mime_utf8_put(uint32_t cp, char *out);
/* mime_cp1252 - the code point of a windows-1252 byte */
uint32_t mime_cp1252(unsigned char);
/* mime_utf8_valid - is it valid UTF-8? */
bool mime_utf8_valid(const char *, size_t);

enum ag_mime_cte {
	AG_MIME_CTE_IDENT, /* 7bit, 8bit, binary and unknown ones */
	AG_MIME_CTE_QP,
	AG_MIME_CTE_B64,
};

/* mime_dec - transfer decoding of one text part, then its charset */
struct mime_dec {
	enum ag_mime_cte cte;
	int qst;	      /* quoted-printable state */
	unsigned char qhex;   /* the first hex digit of an escape */
	unsigned char ws[64]; /* white space not yet known to be inner */
	size_t nws;
	uint32_t bq;	/* base64 bits of the current quartet */
	int bn;		/* base64 characters in it */
	bool bpad;	/* one more '=' is due */
	unsigned flags; /* MIME_F_BAD_QP, MIME_F_BAD_BASE64 */
	bool high;	/* a decoded byte >= 0x80 */
	size_t decoded;
	struct mime_conv conv;
};

void mime_dec_start(struct mime_dec *, const char *encoding);
void mime_dec_bytes(struct mime_dec *, const char *, size_t);
void mime_dec_eol(struct mime_dec *);
void mime_dec_end(struct mime_dec *, bool complete);

/* mime_tx - the paragraph joiner's state (see mime.h, text) */
struct mime_tx {
	bool html;  /* a line end is white space, not a paragraph hint */
	bool para;  /* the paragraph has text */
	bool space; /* a space is due before the next text */
	bool line;  /* plain text: this line has text */
	int brs;    /* <br> since the last text */
};

/* mime_html - the HTML stripper's state */
struct mime_html {
	int st;
	char tag[16]; /* tag name, lower case ("" when too long) */
	size_t ntag;
	bool end;    /* an end tag */
	char an[16]; /* attribute name, lower case */
	size_t nan;
	const char *want; /* the attribute that holds this tag's URI */
	bool capture;	  /* this attribute is the one */
	bool have;	  /* ... and its value is in val */
	char quote;
	char *val; /* AG_MIME_URI_MAX bytes, allocated once */
	size_t nval;
	char ent[33]; /* an entity after '&' */
	size_t nent;
	int dashes;	 /* '-' in a row inside a comment */
	const char *raw; /* "script" or "style": skip to its end tag */
	size_t kraw;	 /* bytes of "</name" matched */
};

/* One open container: a multipart (with its boundary) or a message. */
struct mime_frame {
	struct mime_part *part;
	const char *b; /* NULL for message/rfc822 */
	size_t blen;
	size_t start; /* body offset of its first body byte */
	bool digest;  /* multipart/digest: parts default to messages */
};

enum ag_mime_st {
	AG_MIME_ST_HDR,	 /* the header section of a part */
	AG_MIME_ST_TEXT, /* the body of a text part */
	AG_MIME_ST_SKIP, /* a body not looked at, preamble, epilogue */
};

struct mime {
	struct arena *a;
	size_t scan_limit, max_parts, max_uris;
	bool failed;  /* the arena is exhausted: -1 from now on */
	bool started; /* the top-level part is set up */
	bool ended;
	bool stopped; /* scan_limit reached */
	struct mime_result res;
	struct mime_part *tail;

	/* top-level headers: Content-Type, -Transfer-Encoding, -Disposition */
	char *top[3];
	bool mime_version;

	/* line splitting */
	char *line;
	size_t linelen;
	bool bol;      /* the buffered bytes start a line */
	bool skipline; /* the rest of a boundary line */
	size_t off;    /* body bytes split so far */

	/* structure */
	enum ag_mime_st st;
	struct mime_frame fr[MIME_MAX_DEPTH];
	size_t nfr;
	struct mime_part *cur; /* the leaf whose body streams, or NULL */
	size_t cur_start;

	/* the header section of the next part */
	int hdepth;
	const char *deftype;
	char *fld; /* the field being read, unfolded */
	size_t fldlen;
	int fldkind; /* index into hv, or -1 */
	bool infield;
	char *hv[3];

	/* the text part being decoded */
	bool html;
	bool eol; /* the last line's end is due, unless a boundary follows */
	bool cr;  /* a CR is held back (CRLF -> LF) */
	size_t text0;
	struct mime_dec dec;
	struct mime_tx tx;
	struct mime_html h;

	/* outputs: kept in text and raw, or handed to out (then text and
	 * raw only count their bytes) */
	struct mime_buf text, raw;
	void (*out)(void *, int, const char *, size_t);
	void *outctx;
	char rawlast; /* the last byte of raw */
	/* URIs: the text since the last word that was scanned (see
	 * mime_uri.c) */
	char *ub;
	size_t ubn;
	unsigned char uprev; /* the byte before ub[0] */
	bool uskip;	     /* in the rest of a URI cut at its maximum */
	struct mime_uri *uri_tail;
	struct mime_uri **uri_tab; /* open addressing, power of two */
	size_t uri_tabsize;
	bool uri_full;
};

/* mime_text.c */
void mime_text_start(struct mime *, bool html);
void mime_text_end(struct mime *);
void mime_emit(void *w, const char *, size_t);

/* mime_text.c: text (0) or raw (1) out, kept or handed on, capped */
void mime_out(struct mime *, int which, const char *, size_t);

/* mime_uri.c: text for the URI scan as it is made; the scan of what
 * came since the last one, at the end of a word or of a part */
void mime_uri_text(struct mime *, const char *, size_t);
void mime_uri_scan(struct mime *);
void mime_uri_add(struct mime *, const char *, size_t, bool html);

#endif
