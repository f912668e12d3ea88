/*
 * keyfile.c - DKIM private key files (keyfile.h).
 */
#include <sys/types.h>
#include <sys/stat.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "keyfile.h"

#define AG_ED25519_RAW	32 /* RFC 8032 5.1.5 */
#define AG_ED25519_SPKI 44 /* the raw key in a SubjectPublicKeyInfo */

/* keyfile_sslerr - the last OpenSSL error as text; clears the queue */
static const char *
keyfile_sslerr(char *buf, size_t len)
{
	unsigned long e = ERR_peek_last_error();

	if (e == 0)
		snprintf(buf, len, "unknown OpenSSL error");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return buf;
}

/* keyfile_type_name - k= name */
const char *
keyfile_type_name(enum keyfile_type t)
{
	return t == AG_KEYFILE_ED25519 ? "ed25519" : "rsa";
}

/* keyfile_type_parse - k= name to type */
int
keyfile_type_parse(const char *s, enum keyfile_type *t)
{
	if (str_casecmp(s, "rsa") == 0)
		*t = AG_KEYFILE_RSA;
	else if (str_casecmp(s, "ed25519") == 0)
		*t = AG_KEYFILE_ED25519;
	else
		return -1;
	return 0;
}

/* keyfile_generate - a fresh key pair */
EVP_PKEY *
keyfile_generate(enum keyfile_type t, int bits, char *why, size_t whylen)
{
	EVP_PKEY *pkey;
	char e[256];

	if (t == AG_KEYFILE_RSA)
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits);
	else
		pkey = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	if (pkey == NULL)
		snprintf(why, whylen, "cannot generate the %s key: %s",
		    keyfile_type_name(t), keyfile_sslerr(e, sizeof(e)));
	return pkey;
}

/* keyfile_write_all - write(2) until done */
static int
keyfile_write_all(int fd, const void *data, size_t len)
{
	const char *p = data;
	ssize_t n;

	while (len > 0) {
		if ((n = write(fd, p, len)) == -1) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* keyfile_put - create a file with exactly mode, atomically if replacing */
int
keyfile_put(const char *path, const void *data, size_t len, mode_t mode,
    bool replace, char *why, size_t whylen)
{
	char *tmp = replace ? xasprintf("%s.tmp%ld", path, (long)getpid())
			    : xstrdup(path);
	const char *step = "cannot create";
	int fd, saved;

	/* the mode is given at creation: no moment with more access */
	fd = open(
	    tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, mode);
	if (fd == -1)
		goto fail;
	step = "cannot write";
	/* the umask can only have taken bits away: set exactly mode */
	if (fchmod(fd, mode) == -1 || keyfile_write_all(fd, data, len) == -1 ||
	    fsync(fd) == -1)
		goto fail_unlink;
	if (close(fd) == -1) {
		fd = -1;
		goto fail_unlink;
	}
	fd = -1;
	step = "cannot replace";
	if (replace && rename(tmp, path) == -1)
		goto fail_unlink;
	free(tmp);
	return 0;

fail_unlink:
	saved = errno;
	if (fd != -1)
		close(fd);
	unlink(tmp);
	errno = saved;
fail:
	saved = errno;
	snprintf(why, whylen, "%s %s: %s", step, path, strerror(saved));
	free(tmp);
	errno = saved;
	return -1;
}

/* keyfile_write - PKCS#8 PEM, mode 0600 */
int
keyfile_write(
    const char *path, EVP_PKEY *pkey, bool replace, char *why, size_t whylen)
{
	BIO *bio;
	char *pem, e[256];
	long len;
	int rc = -1;

	/* secure-heap BIO: the key text is cleared when it is freed */
	if ((bio = BIO_new(BIO_s_secmem())) == NULL ||
	    !PEM_write_bio_PrivateKey(bio, pkey, NULL, NULL, 0, NULL, NULL) ||
	    (len = BIO_get_mem_data(bio, &pem)) <= 0) {
		snprintf(why, whylen, "cannot encode the key for %s: %s", path,
		    keyfile_sslerr(e, sizeof(e)));
	} else
		rc = keyfile_put(
		    path, pem, (size_t)len, 0600, replace, why, whylen);
	BIO_free(bio);
	return rc;
}

/* keyfile_nopass - never prompt for a pass phrase (we are not a tty tool) */
static int
keyfile_nopass(char *buf, int size, int rwflag, void *u)
{
	(void)buf;
	(void)size;
	(void)rwflag;
	(void)u;
	return -1;
}

/* keyfile_read - the file's bytes, after the mode checks */
static char *
keyfile_read(const char *path, bool others_fatal, mode_t *modep, size_t *lenp,
    struct buf *warn, char *why, size_t whylen)
{
	struct stat st;
	const char *who;
	char *data = NULL;
	size_t len = 0;
	ssize_t n;
	int fd;

	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) ==
	    -1) {
		snprintf(
		    why, whylen, "cannot read %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) == -1) {
		snprintf(
		    why, whylen, "cannot read %s: %s", path, strerror(errno));
		goto fail;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s is not a regular file", path);
		goto fail;
	}
	*modep = st.st_mode & 07777;
	/* who else can sign with it, or swap it for theirs (as filter/keys.c) */
	if (st.st_mode & (S_IROTH | S_IWOTH | S_IRGRP | S_IWGRP)) {
		who = "writable by its group";
		if (st.st_mode & S_IROTH)
			who = "readable by others";
		else if (st.st_mode & S_IWOTH)
			who = "writable by others";
		else if (st.st_mode & S_IRGRP)
			who = "readable by its group";
		snprintf(why, whylen,
		    "%s is %s (mode %04o): chmod 600 it, and replace the key "
		    "if others may have read it",
		    path, who, (unsigned)*modep);
		if (others_fatal)
			goto fail;
		buf_addf(warn, "%s\n", why);
	}
	if (st.st_size > AG_KEYFILE_MAX_SIZE) {
		snprintf(why, whylen, "%s is not a private key (%lld bytes)",
		    path, (long long)st.st_size);
		goto fail;
	}
	data = xmalloc(AG_KEYFILE_MAX_SIZE + 1);
	while (len <= AG_KEYFILE_MAX_SIZE &&
	    (n = read(fd, data + len, AG_KEYFILE_MAX_SIZE + 1 - len)) != 0) {
		if (n == -1 && errno == EINTR)
			continue;
		if (n == -1) {
			snprintf(why, whylen, "cannot read %s: %s", path,
			    strerror(errno));
			goto fail;
		}
		len += (size_t)n;
	}
	if (len > AG_KEYFILE_MAX_SIZE) {
		snprintf(
		    why, whylen, "%s is not a private key (too big)", path);
		goto fail;
	}
	data[len] = '\0';
	close(fd);
	*lenp = len;
	return data;

fail:
	if (data != NULL) {
		OPENSSL_cleanse(data, AG_KEYFILE_MAX_SIZE + 1);
		free(data);
	}
	close(fd);
	return NULL;
}

/* keyfile_decode - a PEM private key; why tells what else it is */
static EVP_PKEY *
keyfile_decode(
    const char *path, const char *data, size_t len, char *why, size_t whylen)
{
	EVP_PKEY *pkey = NULL;
	BIO *bio;

	if (memmem(data, len, "ENCRYPTED PRIVATE KEY-----", 26) != NULL ||
	    memmem(data, len, "Proc-Type: 4,ENCRYPTED", 22) != NULL) {
		snprintf(why, whylen,
		    "%s: the key is encrypted; authgate needs it unencrypted "
		    "(protect it with the file's owner and mode instead)",
		    path);
		return NULL;
	}
	if ((bio = BIO_new_mem_buf(data, (int)len)) != NULL) {
		pkey = PEM_read_bio_PrivateKey_ex(
		    bio, NULL, keyfile_nopass, NULL, NULL, NULL);
		BIO_free(bio);
	}
	ERR_clear_error();
	if (pkey != NULL)
		return pkey;
	if (memmem(data, len, "-----BEGIN PUBLIC KEY-----", 26) != NULL ||
	    memmem(data, len, "-----BEGIN RSA PUBLIC KEY-----", 30) != NULL)
		snprintf(
		    why, whylen, "%s is a public key, not a private key", path);
	else if (memmem(data, len, "-----BEGIN CERTIFICATE-----", 27) != NULL)
		snprintf(why, whylen, "%s is a certificate, not a private key",
		    path);
	else
		snprintf(why, whylen,
		    "%s is not a private key (no PEM \"BEGIN PRIVATE KEY\" "
		    "block OpenSSL can read)",
		    path);
	return NULL;
}

/* keyfile_load - read, decode and check a private key file */
int
keyfile_load(const char *path, bool others_fatal, int min_bits,
    struct keyfile *kf, struct buf *warn, char *why, size_t whylen)
{
	char *data;
	size_t len;

	memset(kf, 0, sizeof(*kf));
	if ((data = keyfile_read(path, others_fatal, &kf->mode, &len, warn, why,
		 whylen)) == NULL)
		return -1;
	kf->pkey = keyfile_decode(path, data, len, why, whylen);
	OPENSSL_cleanse(data, len);
	free(data);
	if (kf->pkey == NULL)
		return -1;
	if (EVP_PKEY_is_a(kf->pkey, "RSA")) {
		kf->type = AG_KEYFILE_RSA;
		kf->bits = EVP_PKEY_get_bits(kf->pkey);
		if (kf->bits < AG_KEYFILE_RSA_MIN_BITS) {
			snprintf(why, whylen,
			    "%s: an rsa key of %d bits is too weak: RFC 8301 "
			    "3.2 requires at least %d (use %d)",
			    path, kf->bits, AG_KEYFILE_RSA_MIN_BITS,
			    AG_KEYFILE_RSA_DEF_BITS);
			goto fail;
		}
		if (kf->bits < min_bits) {
			snprintf(why, whylen,
			    "%s: an rsa key of %d bits is too short: "
			    "dkim_min_key_bits is %d, authgate would refuse it",
			    path, kf->bits, min_bits);
			goto fail;
		}
	} else if (EVP_PKEY_is_a(kf->pkey, "ED25519")) {
		kf->type = AG_KEYFILE_ED25519;
		kf->bits = AG_KEYFILE_ED25519_BITS;
	} else {
		snprintf(why, whylen,
		    "%s: a key of type %s; DKIM keys are rsa or ed25519", path,
		    EVP_PKEY_get0_type_name(kf->pkey));
		goto fail;
	}
	return 0;

fail:
	keyfile_release(kf);
	return -1;
}

/* keyfile_release - free the key */
void
keyfile_release(struct keyfile *kf)
{
	EVP_PKEY_free(kf->pkey);
	kf->pkey = NULL;
}

/* keyfile_base64 - base64 without line breaks, xmalloc'd */
static char *
keyfile_base64(const unsigned char *in, size_t len)
{
	char *out = xmalloc((len + 2) / 3 * 4 + 1);

	EVP_EncodeBlock((unsigned char *)out, in, (int)len);
	return out;
}

/* keyfile_dns_key - the p= value */
char *
keyfile_dns_key(EVP_PKEY *pkey, enum keyfile_type t)
{
	unsigned char *der = NULL, raw[AG_ED25519_RAW];
	size_t rawlen = sizeof(raw);
	char *out;
	int len;

	if (t == AG_KEYFILE_ED25519) {
		if (!EVP_PKEY_get_raw_public_key(pkey, raw, &rawlen) ||
		    rawlen != AG_ED25519_RAW) {
			ERR_clear_error();
			return NULL;
		}
		return keyfile_base64(raw, rawlen);
	}
	if ((len = i2d_PUBKEY(pkey, &der)) <= 0) {
		ERR_clear_error();
		return NULL;
	}
	out = keyfile_base64(der, (size_t)len);
	OPENSSL_free(der);
	return out;
}

/* keyfile_rsa_pub - p= as an RSA SubjectPublicKeyInfo */
static EVP_PKEY *
keyfile_rsa_pub(const unsigned char *p, size_t plen, char *why, size_t whylen)
{
	const unsigned char *q = p;
	EVP_PKEY *pub;

	if ((pub = d2i_PUBKEY(NULL, &q, (long)plen)) == NULL) {
		q = p;
		if ((pub = d2i_PublicKey(EVP_PKEY_RSA, NULL, &q, (long)plen)) !=
		    NULL)
			snprintf(why, whylen,
			    "p= is a bare RSAPublicKey (PKCS#1); verifiers "
			    "expect a SubjectPublicKeyInfo");
		else
			snprintf(why, whylen,
			    "p= is not a DER public key (%zu bytes)", plen);
		EVP_PKEY_free(pub);
		ERR_clear_error();
		return NULL;
	}
	if (q != p + plen) {
		snprintf(why, whylen, "p= has %zu bytes after the key",
		    (size_t)(p + plen - q));
		EVP_PKEY_free(pub);
		return NULL;
	}
	if (!EVP_PKEY_is_a(pub, "RSA")) {
		snprintf(why, whylen, "p= holds a %s key, not an rsa key",
		    EVP_PKEY_get0_type_name(pub));
		EVP_PKEY_free(pub);
		return NULL;
	}
	return pub;
}

/* keyfile_ed25519_pub - p= as a raw Ed25519 key (RFC 8463 4.2) */
static EVP_PKEY *
keyfile_ed25519_pub(
    const unsigned char *p, size_t plen, char *why, size_t whylen)
{
	EVP_PKEY *pub;

	if (plen == AG_ED25519_SPKI) {
		snprintf(why, whylen,
		    "p= is %d bytes, a SubjectPublicKeyInfo: RFC 8463 4.2 "
		    "publishes the bare %d-byte ed25519 key",
		    AG_ED25519_SPKI, AG_ED25519_RAW);
		return NULL;
	}
	if (plen != AG_ED25519_RAW) {
		snprintf(why, whylen,
		    "p= is %zu bytes, an ed25519 key is %d (RFC 8463 4.2)",
		    plen, AG_ED25519_RAW);
		return NULL;
	}
	pub = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, p, plen);
	if (pub == NULL) {
		snprintf(why, whylen, "p= is not an ed25519 key");
		ERR_clear_error();
	}
	return pub;
}

/* keyfile_compare - published key against the key file */
enum keyfile_cmp
keyfile_compare(const struct keyfile *kf, const unsigned char *p, size_t plen,
    char *why, size_t whylen)
{
	EVP_PKEY *pub;
	int eq;

	if (kf->type == AG_KEYFILE_RSA)
		pub = keyfile_rsa_pub(p, plen, why, whylen);
	else
		pub = keyfile_ed25519_pub(p, plen, why, whylen);
	if (pub == NULL)
		return AG_KEYFILE_BADDATA;
	eq = EVP_PKEY_eq(pub, kf->pkey);
	if (eq != 1) {
		if (kf->type == AG_KEYFILE_RSA)
			snprintf(why, whylen,
			    "published: %d-bit rsa, file: %d-bit rsa",
			    EVP_PKEY_get_bits(pub), kf->bits);
		else
			snprintf(
			    why, whylen, "published: ed25519, file: ed25519");
	}
	EVP_PKEY_free(pub);
	ERR_clear_error();
	return eq == 1 ? AG_KEYFILE_SAME : AG_KEYFILE_DIFFERENT;
}
