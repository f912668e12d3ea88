/*
 * keys.h - loading and checking DKIM private keys (OpenSSL only here).
 *
 * keys_load() reads a key file the way the daemon will use it and refuses
 * what must not be used: a file others can read or write, something that
 * is not a private key, RSA under the minimum size (RFC 8301: 1024 bits),
 * key types DKIM does not have. The key is kept parsed, for
 * dkim_signer.c. Reloads load keys afresh, so a key replaced or
 * deleted on disk is seen at the next SIGHUP. Thread-safe (no globals).
 */
#ifndef AG_KEYS_H
#define AG_KEYS_H

#include <stddef.h>

enum ag_key_type {
	AG_KEY_RSA,
	AG_KEY_ED25519,
};

struct ag_key {
	char *name; /* KeyTable name */
	char *domain;
	char *selector;
	char *path;
	char *pem;  /* PEM text of the private key */
	void *pkey; /* the parsed key (EVP_PKEY), shared read-only */
	enum ag_key_type type;
	int bits;
};

/*
 * keys_load - read and check the private key in path into k (path,
 * pkey, type, bits; the caller sets name/domain/selector). Returns 0, or -1
 * with a reason naming the file in why.
 */
int keys_load(const char *path, int min_rsa_bits, struct ag_key *k, char *why,
    size_t whylen);

/* keys_release - free what keys_load and the caller put in k. */
void keys_release(struct ag_key *k);

/* keys_type_name - "rsa", "ed25519" (the k= of the DNS record) */
const char *keys_type_name(enum ag_key_type);

#endif
