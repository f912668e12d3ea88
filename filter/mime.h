/*
 * mime.h - streaming MIME walk of one message body (layer 1).
 *
 * The rules engine feeds the top-level Content-Type and
 * Content-Transfer-Encoding, then the body in chunks of any size as the
 * MTA sends them (CRLF line ends; a lone LF is accepted too). The walker
 * follows the multipart structure as it streams (nested boundaries,
 * part headers), decodes quoted-printable and base64 in text parts,
 * converts them to UTF-8 from their charset, strips HTML tags (keeping
 * the visible text and the link targets) and collects the URIs. Nothing
 * is buffered whole: output grows only up to scan_limit bytes of body
 * looked at, then the walk stops and MIME_F_TRUNCATED is set; with an
 * output function (mime_set_output) the text is not kept at all, and
 * the walker's memory does not grow with the body.
 *
 * Broken MIME (a boundary never closed, bad base64, an unknown charset,
 * too many parts) is reported in flags and the walk goes on as well as
 * it can; it never fails on input. Memory comes from the caller's arena
 * (the message arena); -1 returns mean that arena is exhausted.
 * One walker per message, one thread at a time.
 */
#ifndef AG_MIME_H
#define AG_MIME_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

/* Message-wide findings (mime_result.flags). */
#define MIME_F_TRUNCATED 0x0001 /* stopped at scan_limit */
#define MIME_F_BAD_BOUNDARY \
	0x0002			   /* multipart without a usable boundary,
				       or a boundary never closed */
#define MIME_F_BAD_BASE64   0x0004 /* invalid characters or length */
#define MIME_F_BAD_QP	    0x0008 /* "=" not followed by two hex digits */
#define MIME_F_BAD_CHARSET  0x0010 /* unknown charset, or invalid bytes */
#define MIME_F_TOO_MANY	    0x0020 /* more than max_parts parts */
#define MIME_F_TOO_DEEP	    0x0040 /* nesting past 20 levels */
#define MIME_F_BAD_HEADER   0x0080 /* part header without a colon, ... */
#define MIME_F_8BIT_HEADERS 0x0100 /* raw 8-bit bytes in part headers */
#define MIME_F_TEXT_BASE64 \
	0x0200		      /* a text part in base64 whose decoded
				       text is all 7-bit (no reason for it) */
#define MIME_F_NO_MIME 0x0400 /* no MIME-Version, single part */

/*
 * MIME_F_NO_MIME only reports the missing header: Content-Type is
 * followed anyway, as mail readers do, so a multipart without
 * MIME-Version cannot hide its text. MIME_F_TRUNCATED is also set when
 * text or raw reach their cap (below) before scan_limit does.
 */

#define MIME_MAX_DEPTH 20 /* parts nested deeper: MIME_F_TOO_DEEP */

/* One part (multiparts included), in the order they start. */
struct mime_part {
	const char *type;     /* "text/plain" (lower case; the default) */
	const char *charset;  /* lower case, or NULL */
	const char *encoding; /* "7bit", "base64", "quoted-printable", ... */
	const char *filename; /* name= or filename=, or NULL */
	int depth;	      /* 0 for the message itself */
	bool attachment;      /* Content-Disposition: attachment */
	size_t bytes;	      /* encoded body bytes of this part */
	size_t text_bytes;    /* decoded text it added (text parts) */
	struct mime_part *next;
};

/* One URI found in text or HTML (each distinct URI once). */
struct mime_uri {
	const char *uri;  /* as written, entities and %XX of the host decoded */
	const char *host; /* lower case, no port/userinfo; "" when none */
	bool ip_literal;  /* host is an IPv4/IPv6 address (any notation) */
	bool from_html;	  /* an href/src attribute */
	struct mime_uri *next;
};
/*
 * URIs in text: http://, https://, ftp://, mailto: (host: the domain
 * after '@') and bare www. names, at most 2048 bytes each. In HTML: the
 * href of <a> and <area>, the src of <img>, <iframe> and <frame>, the
 * action of <form>, any value but an empty one (relative ones have host
 * ""). An IPv4 host in any notation a browser accepts (3232235777,
 * 0xc0.0xa8.1.1, 0300.0250.1.1, ...) is given as a dotted quad, an IPv6
 * one without brackets in its canonical form. uri and host are valid
 * UTF-8.
 */

struct mime_result {
	struct mime_part *parts;
	size_t nparts;
	/*
	 * Visible text of the text/plain and text/html parts (not
	 * attachments), decoded, UTF-8, HTML tags, comments, <script> and
	 * <style> removed, entities decoded. Paragraphs (text between blank
	 * lines; for HTML also between block tags such as <p>, <br><br>,
	 * <div>, <tr>) are joined into one line, runs of white space
	 * collapsed to one space; one "\n" ends each paragraph.
	 * NUL-terminated (a NUL in the input becomes a space).
	 */
	const char *text;
	size_t textlen;
	/* The same parts decoded and in UTF-8 but not HTML-stripped, lines
	 * as they were (CRLF -> "\n"). NUL-terminated. */
	const char *raw;
	size_t rawlen;
	struct mime_uri *uris;
	size_t nuris;
	unsigned flags;	    /* MIME_F_* */
	size_t text_parts;  /* text/plain parts (not attachments) */
	size_t html_parts;  /* text/html parts (not attachments) */
	size_t attachments; /* parts with a filename or disposition */
	size_t html_images; /* <img> tags */
	size_t html_links;  /* <a href> tags */
	size_t body_bytes;  /* body bytes looked at */
};
/*
 * text and raw are always valid UTF-8 (the rules engine runs PCRE2 in
 * UTF mode): invalid sequences in a UTF-8, US-ASCII or unknown charset
 * become U+FFFD (and MIME_F_BAD_CHARSET), an undeclared charset is
 * UTF-8 where valid and windows-1252 elsewhere, ISO-8859-1 is read as
 * windows-1252 (as browsers do). A NUL becomes a space in raw too.
 * Each holds at most 3 * scan_limit + 4096 bytes (charset conversion can
 * make text longer than its bytes on the wire). A text part goes into
 * them unless its Content-Disposition is attachment; its text_bytes
 * counts what it added to text; in raw each part ends with a line end.
 * A message/rfc822 part (not base64 or QP) is walked as a message: its
 * header section as part headers, then its body, one level deeper. A
 * multipart without a usable boundary is read as text/plain.
 */

struct mime;

/*
 * mime_new - a walker. scan_limit: body bytes looked at (0: no limit);
 * max_parts: parts followed (more set MIME_F_TOO_MANY and are skipped);
 * max_uris: distinct URIs kept. NULL when the arena is exhausted.
 */
struct mime *mime_new(
    struct arena *, size_t scan_limit, size_t max_parts, size_t max_uris);
/* (0 for max_parts or max_uris means no limit, as for scan_limit;
 * nparts counts the message itself, so it is at most max_parts.) */

/*
 * mime_set_output - hand the text (which: MIME_OUT_TEXT) and raw
 * (MIME_OUT_RAW) to fn as they are made, in pieces of any size that end
 * at character boundaries, instead of keeping them. mime_result's text
 * and raw are then NULL; textlen and rawlen still count what fn got
 * (the caps below apply as well). Call it before the first mime_body().
 */
#define MIME_OUT_TEXT 0
#define MIME_OUT_RAW  1
void mime_set_output(struct mime *,
    void (*fn)(void *ctx, int which, const char *, size_t), void *ctx);

/*
 * mime_header - a top-level header of the message (only Content-Type,
 * Content-Transfer-Encoding, Content-Disposition and MIME-Version
 * matter; others are ignored). value as received: folds kept.
 */
int mime_header(struct mime *, const char *name, const char *value);

/* mime_body - the next body chunk (any size, split anywhere). */
int mime_body(struct mime *, const unsigned char *, size_t);

/* mime_uri_count - URIs found so far (for lookups started while the
 * body streams); mime_uris - the list so far (new ones are appended). */
size_t mime_uri_count(const struct mime *);
const struct mime_uri *mime_uris(const struct mime *);

/* mime_end - end of body: flush and return the result (valid for the
 * arena's life). NULL only when the arena is exhausted. */
const struct mime_result *mime_end(struct mime *);

/*
 * mime_decode_header - a header value for matching: unfolded (CRLF +
 * WSP -> the WSP), RFC 2047 encoded-words decoded to UTF-8 (B and Q, any
 * charset iconv knows; white space between adjacent encoded-words
 * dropped), leading and trailing white space removed. An encoded-word
 * that does not decode is kept as written. NULL when out of memory.
 */
/* (The result is valid UTF-8 on one line: raw 8-bit bytes are read as
 * UTF-8 where valid, else as windows-1252; CR, LF and NUL inside decoded
 * words become spaces. Adjacent words in one charset are converted
 * together, so a character split between them survives.) */
char *mime_decode_header(struct arena *, const char *value, size_t len);

#endif
