/*
 * keyrec.h - DKIM key records in DNS (RFC 6376 3.6.1, RFC 8463 4.2).
 *
 * keyrec_value() and keyrec_zone() build the TXT record authgate-keys
 * publishes; keyrec_is_dkim() and keyrec_parse() read what DNS returns.
 * No OpenSSL and no I/O here: the key bytes in p= are compared with a key
 * file by keyfile.h. Parse results live in the arena given (valid until
 * it is freed); nothing is global, every function is thread-safe.
 */
#ifndef AG_KEYREC_H
#define AG_KEYREC_H

#include <stdbool.h>
#include <stddef.h>

struct arena;
struct buf;

#define AG_TXT_STRING_MAX  255	/* RFC 1035 3.3.14: one character-string */
#define AG_KEYREC_TTL	   3600 /* TTL of the record we suggest */
#define AG_KEYREC_MAX_TAGS 32	/* more is not a key record but an attack */

/* One parsed key record; every pointer points into the arena. */
struct keyrec {
	const char *k;		/* k=, lowercased; "rsa" when absent */
	const unsigned char *p; /* p= decoded; NULL when revoked */
	size_t plen;
	bool revoked;	   /* p= present but empty (RFC 6376 3.6.1) */
	bool has_h;	   /* h= present ... */
	bool h_sha256;	   /* ... and lists sha256 */
	bool has_s;	   /* s= present ... */
	bool s_email;	   /* ... and lists email or * */
	bool t_testing;	   /* t=y */
	bool t_strict;	   /* t=s */
	const char *h, *s; /* the h= and s= values as published, or NULL */
};

/*
 * keyrec_value - the record text "v=DKIM1; k=<k>; p=<p64>" in out
 * (appended). k is "rsa" or "ed25519", p64 the base64 key data.
 */
void keyrec_value(struct buf *out, const char *k, const char *p64);

/*
 * keyrec_zone - the record in zone-file form, appended to out with a final
 * newline: with an owner name (absolute, with the final dot),
 * "<owner> 3600 IN TXT ( "..." "..." )"; with owner NULL only the quoted
 * strings. Every string holds at most 255 bytes (RFC 6376 3.6.2.2). value
 * must not contain '"' or '\' (a key record never does).
 */
void keyrec_zone(struct buf *out, const char *owner, const char *value);

/*
 * keyrec_is_dkim - would a verifier take this TXT record for a DKIM key
 * record? True when it starts with v=DKIM1, or has no v= first and a p=
 * tag. A record starting with another v= is discarded by verifiers (RFC
 * 6376 3.6.1) and so is not one.
 */
bool keyrec_is_dkim(const char *txt, size_t len);

/*
 * keyrec_parse - parse a key record (tag list, RFC 6376 3.2 and 3.6.1).
 * Parameters: txt, len: the TXT strings joined (may hold NULs, which are
 * an error). Unknown tags are ignored; white space inside p= is allowed.
 * Return value: 0, or -1 with *why saying what is malformed (in the arena).
 * A revoked key (empty p=) is not an error: r->revoked is set.
 */
int keyrec_parse(struct arena *, const char *txt, size_t len, struct keyrec *r,
    const char **why);

/*
 * keyrec_base64_decode - RFC 4648 base64 with white space allowed between
 * characters (RFC 6376 base64string), padding optional; the result in the
 * arena. -1 with *why when a character or the length is wrong.
 */
int keyrec_base64_decode(struct arena *, const char *s, size_t len,
    unsigned char **out, size_t *outlen, const char **why);

#endif
