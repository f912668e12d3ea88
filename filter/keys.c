/*
 * keys.c - DKIM private keys (see keys.h).
 */
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "util/buf.h"
#include "util/xalloc.h"
#include "keys.h"

#define AG_KEY_FILE_MAX 65536

/* keys_type_name - the DNS record's k= for a type */
const char *
keys_type_name(enum ag_key_type t)
{
	return t == AG_KEY_ED25519 ? "ed25519" : "rsa";
}

/* keys_exposed - who besides the owner may read or change the file */
static const char *
keys_exposed(mode_t mode)
{
	if (mode & S_IROTH)
		return "readable by others";
	if (mode & S_IWOTH)
		return "writable by others";
	if (mode & S_IRGRP)
		return "readable by its group";
	if (mode & S_IWGRP)
		return "writable by its group";
	return NULL;
}

/* keys_read - the file's bytes, after checking who may read it */
static int
keys_read(const char *path, struct buf *b, char *why, size_t whylen)
{
	struct stat st;
	const char *who;
	char chunk[4096];
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_NOCTTY)) == -1) {
		snprintf(why, whylen, "%s: cannot read the key: %s", path,
		    strerror(errno));
		return -1;
	}
	if (fstat(fd, &st) == -1 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s: not a regular file", path);
		close(fd);
		return -1;
	}
	/*
	 * A private key anyone may read is a key anyone may sign with, and
	 * one its group may read is readable by whoever joins that group
	 * (the MTA's user joins ours for a unix milter socket).
	 */
	if ((who = keys_exposed(st.st_mode)) != NULL) {
		snprintf(why, whylen,
		    "%s: private key is %s (mode %04o): chmod 600 it", path,
		    who, (unsigned)(st.st_mode & 07777));
		close(fd);
		return -1;
	}
	while ((n = read(fd, chunk, sizeof(chunk))) > 0) {
		if (b->len + (size_t)n > AG_KEY_FILE_MAX) {
			snprintf(why, whylen, "%s: too big for a key", path);
			close(fd);
			return -1;
		}
		buf_add(b, chunk, (size_t)n);
	}
	close(fd);
	if (n == -1) {
		snprintf(why, whylen, "%s: %s", path, strerror(errno));
		return -1;
	}
	return 0;
}

/* keys_no_passphrase - OpenSSL's pass phrase callback: never ask (an
 * encrypted key is refused, the daemon must not prompt on a terminal) */
static int
keys_no_passphrase(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* keys_load - read, parse and judge a private key */
int
keys_load(const char *path, int min_rsa_bits, struct ag_key *k, char *why,
    size_t whylen)
{
	struct buf b = BUF_INIT;
	EVP_PKEY *pk = NULL;
	BIO *bio = NULL;
	int rc = -1;

	if (keys_read(path, &b, why, whylen) == -1)
		goto done;
	if ((bio = BIO_new_mem_buf(b.data, (int)b.len)) == NULL ||
	    (pk = PEM_read_bio_PrivateKey(
		 bio, NULL, keys_no_passphrase, NULL)) == NULL) {
		snprintf(why, whylen,
		    "%s: not a PEM private key (or it is "
		    "encrypted)",
		    path);
		goto done;
	}
	switch (EVP_PKEY_get_base_id(pk)) {
	case EVP_PKEY_RSA:
		k->type = AG_KEY_RSA;
		k->bits = EVP_PKEY_get_bits(pk);
		if (k->bits < min_rsa_bits) {
			snprintf(why, whylen,
			    "%s: RSA key of %d bits, at least "
			    "%d are needed (RFC 8301)",
			    path, k->bits, min_rsa_bits);
			goto done;
		}
		break;
	case EVP_PKEY_ED25519:
		k->type = AG_KEY_ED25519;
		k->bits = 256;
		break;
	default:
		snprintf(why, whylen,
		    "%s: key type %s cannot sign DKIM (RSA "
		    "or Ed25519)",
		    path, OBJ_nid2sn(EVP_PKEY_get_base_id(pk)));
		goto done;
	}
	k->path = xstrdup(path);
	k->pkey = pk; /* signing only reads it: safe in every thread */
	pk = NULL;
	rc = 0;
done:
	/* the file's bytes held a private key: do not leave them around */
	if (b.alloc)
		OPENSSL_cleanse(b.data, b.len);
	buf_release(&b);
	BIO_free(bio);
	EVP_PKEY_free(pk);
	return rc;
}

/* keys_release - free a key */
void
keys_release(struct ag_key *k)
{
	EVP_PKEY_free(k->pkey);
	free(k->name);
	free(k->domain);
	free(k->selector);
	free(k->path);
	memset(k, 0, sizeof(*k));
}
