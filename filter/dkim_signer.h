/*
 * dkim_signer.h - DKIM signatures (RFC 6376): RSA-SHA256 and
 * Ed25519-SHA256 (RFC 8463), canonicalized and signed by authgate itself.
 *
 * Why not libopendkim (which verifies for us): its signing API takes the
 * key as PEM text and decodes it for every message, and OpenSSL 3's
 * decoder plus a fresh RSA key's precomputation cost several times the
 * RSA signature itself (measured: 190 signatures/s against OpenSSL's
 * 1,130 RSA-2048 signs/s on the same machine). Here one parsed key
 * (keys.c) serves every message. And Debian 12's libopendkim
 * (2.11.0~beta2) leaks each Ed25519 signature's OpenSSL objects
 * (dkim_free() releases them only for RSA), about 1.3 KB per message.
 *
 * The output matches libopendkim's: tags v, a, c, d, s, t, [x], bh, h, b;
 * h= names the signed headers top to bottom, then each oversigned name
 * once more. The body is hashed as it streams (RFC 6376 3.4.3, 3.4.4),
 * never kept. Lines end in CRLF; a bare CR is content, as RFC 6376 and
 * every verifier read it (a bare LF, which no MTA delivers, ends a line;
 * a missing final CRLF is added, as 3.4.3 and 3.4.4 say). One signer per message
 * and key, one thread at a time; the key may be shared by all threads.
 */
#ifndef AG_DKIM_SIGNER_H
#define AG_DKIM_SIGNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

struct arena;
struct ag_key;
struct hdr;
struct signer;

struct signer_opts {
	bool hrelaxed;	       /* header canonicalization relaxed */
	bool brelaxed;	       /* body canonicalization relaxed */
	char *const *signhdrs; /* NULL-terminated names to sign */
	char *const *oversign; /* NULL-terminated names to oversign */
	uint64_t ttl;	       /* x= is t= + ttl seconds; 0: no x= */
	time_t now;	       /* t= */
};

/*
 * signer_start - a signer for key k over the headers hdrs (values as the
 * MTA sent them, CRLF folds); its memory lives in the arena. NULL with a
 * reason in why when OpenSSL fails.
 */
struct signer *signer_start(struct arena *, const struct ag_key *k,
    const struct hdr *hdrs, const struct signer_opts *o, char *why,
    size_t whylen);

/* signer_body - the next piece of the body (CRLF line ends) */
void signer_body(struct signer *, const unsigned char *p, size_t len);

/*
 * signer_finish - the DKIM-Signature header's value (after "DKIM-Signature:
 * ", folded with "\n\t" as the MTA wants it), or NULL with a reason.
 */
char *signer_finish(struct signer *, char *why, size_t whylen);

#endif
