/*
 * keyfile.h - DKIM private key files: generate, write, load and check,
 * and the public half in the form DKIM publishes it.
 *
 * OpenSSL 3 EVP only. The key types are DKIM's: rsa (RFC 6376, at least
 * 1024 bits by RFC 8301 3.2) and ed25519 (RFC 8463). Keys are written as
 * PKCS#8 PEM ("BEGIN PRIVATE KEY") into files that have mode 0600 from
 * their creation on. Every message names the file it is about. What
 * keyfile_load() allows is what a signer should accept; it prints nothing
 * itself. No globals; thread-safe.
 */
#ifndef AG_KEYFILE_H
#define AG_KEYFILE_H

#include <sys/types.h>
#include <stdbool.h>
#include <stddef.h>

#include <openssl/evp.h>

struct buf;

enum keyfile_type {
	AG_KEYFILE_RSA,
	AG_KEYFILE_ED25519,
};

#define AG_KEYFILE_RSA_MIN_BITS 1024 /* RFC 8301 3.2 */
#define AG_KEYFILE_RSA_MAX_BITS 8192
#define AG_KEYFILE_RSA_DEF_BITS 2048
#define AG_KEYFILE_ED25519_BITS 256   /* what we report for an ed25519 key */
#define AG_KEYFILE_MAX_SIZE	65536 /* a larger file is not a key */

/* A loaded private key. */
struct keyfile {
	EVP_PKEY *pkey;
	enum keyfile_type type;
	int bits;    /* RSA modulus bits, AG_KEYFILE_ED25519_BITS for ed25519 */
	mode_t mode; /* permission bits of the file */
};

/* How a published key compares with a key file. */
enum keyfile_cmp {
	AG_KEYFILE_SAME,      /* the public half of the file */
	AG_KEYFILE_DIFFERENT, /* a valid key, but another one */
	AG_KEYFILE_BADDATA,   /* p= holds no usable key of the type */
};

/* keyfile_type_name - "rsa" or "ed25519", as in k= */
const char *keyfile_type_name(enum keyfile_type);

/* keyfile_type_parse - "rsa"/"ed25519" (any case); -1 otherwise */
int keyfile_type_parse(const char *, enum keyfile_type *);

/*
 * keyfile_generate - a new key; bits only for rsa, and the caller has
 * checked it against AG_KEYFILE_RSA_MIN_BITS/MAX_BITS. NULL with a reason in
 * why when OpenSSL fails.
 */
EVP_PKEY *keyfile_generate(enum keyfile_type, int bits, char *why, size_t);

/*
 * keyfile_put - write data to path with exactly this mode, set from the
 * file's creation on (open O_CREAT|O_EXCL, never a wider mode in
 * between). replace false: path must not exist (EEXIST otherwise).
 * replace true: a temporary file in the same directory is renamed over
 * path. Returns 0, or -1 with errno set and a reason naming the file in
 * why; a partly written file is removed.
 */
int keyfile_put(const char *path, const void *data, size_t len, mode_t mode,
    bool replace, char *why, size_t);

/*
 * keyfile_write - pkey as PKCS#8 PEM through keyfile_put() with mode
 * 0600. The PEM text is held only in memory OpenSSL clears on release.
 */
int keyfile_write(
    const char *path, EVP_PKEY *, bool replace, char *why, size_t);

/*
 * keyfile_load - read and check a private key file.
 * Parameters: others_fatal: a file its group or others may read or
 * write is an error (true) or a warning (false).
 * min_bits: the daemon's dkim_min_key_bits; RSA keys need at least that
 * and never less than 1024. warn gets one line per warning (the group's
 * or others' access when not fatal).
 * Return value: 0 and kf filled, or -1 with one line in why: unreadable,
 * not a regular file, too big, encrypted, not a PEM private key, a key
 * type DKIM does not use, an RSA key under 1024 or min_bits bits, its
 * group or others may read or write it (the daemon's rules,
 * filter/keys.c).
 */
int keyfile_load(const char *path, bool others_fatal, int min_bits,
    struct keyfile *kf, struct buf *warn, char *why, size_t);

/* keyfile_release - free what keyfile_load() filled in */
void keyfile_release(struct keyfile *);

/*
 * keyfile_dns_key - the p= value for pkey: base64 of the DER
 * SubjectPublicKeyInfo for rsa (RFC 6376 3.6.1), of the raw 32-byte key
 * for ed25519 (RFC 8463 4.2). xmalloc'd; NULL when OpenSSL fails.
 */
char *keyfile_dns_key(EVP_PKEY *, enum keyfile_type);

/*
 * keyfile_compare - is the decoded p= data the public half of kf (as a
 * key of kf's type)? why says how it differs or what is wrong with p=.
 */
enum keyfile_cmp keyfile_compare(const struct keyfile *kf,
    const unsigned char *p, size_t plen, char *why, size_t);

#endif
