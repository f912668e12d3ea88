/*
 * dkim_edsign.h - Ed25519-SHA256 DKIM signatures (RFC 6376, RFC 8463)
 * made by authgate itself.
 *
 * Why not libopendkim: Debian 12's libopendkim (2.11.0~beta2) signs with
 * Ed25519 but dkim_free() releases a signature's OpenSSL objects only for
 * RSA keys, so every Ed25519 signature leaks the parsed key, a BIO and the
 * output buffer (about 1.3 KB per message, seen under ASan). RSA signing
 * and all verification stay with libopendkim.
 *
 * The output matches libopendkim's: tags v, a, c, d, s, t, [x], bh, h, b;
 * h= names the signed headers top to bottom, then each oversigned name
 * once more. The body is hashed as it streams (RFC 6376 3.4.3, 3.4.4),
 * never kept. One signer per message and key; one thread at a time.
 */
#ifndef AG_DKIM_EDSIGN_H
#define AG_DKIM_EDSIGN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct arena;
struct ag_key;
struct hdr;
struct dkime;

struct dkime_opts {
	bool hrelaxed;	       /* header canonicalization relaxed */
	bool brelaxed;	       /* body canonicalization relaxed */
	char *const *signhdrs; /* NULL-terminated names to sign */
	char *const *oversign; /* NULL-terminated names to oversign */
	uint64_t ttl;	       /* x= is t= + ttl seconds; 0: no x= */
	time_t now;	       /* t= */
};

/*
 * dkime_start - a signer for key k over the headers hdrs (values as the
 * MTA sent them, CRLF folds); its memory lives in the arena. NULL with a
 * reason in why when OpenSSL fails.
 */
struct dkime *dkime_start(struct arena *, const struct ag_key *k,
    const struct hdr *hdrs, const struct dkime_opts *o, char *why,
    size_t whylen);

/* dkime_body - the next piece of the body (CRLF line ends) */
void dkime_body(struct dkime *, const unsigned char *p, size_t len);

/*
 * dkime_finish - the DKIM-Signature header's value (after "DKIM-Signature:
 * ", folded with "\n\t" as the MTA wants it), or NULL with a reason.
 */
char *dkime_finish(struct dkime *, char *why, size_t whylen);

#endif
