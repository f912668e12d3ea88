/*
 * fuzz_tables.c - libFuzzer target: OpenDKIM-format KeyTable and
 * SigningTable (dkim_tables.c), which an admin's migrated setup feeds
 * the signer.
 *
 * Input: a flags byte (bit 0: the SigningTable is "refile:" globs), then
 * the KeyTable text, a NUL, the SigningTable text, a NUL, and addresses to
 * look up (one per line). In the tables "@R" and "@E" stand for the paths
 * of a real RSA-1024 and Ed25519 key made at start (mode 0600 in a private
 * temp dir), so the fuzzer reaches past the key loading. Those two are
 * loaded for real once and then handed out as copies (see
 * __wrap_keys_load); any other path is loaded for real every time.
 * Asserts, beyond "no crash, no leak":
 *   - a refused pair has errors, every line starting with the KeyTable's
 *     or the SigningTable's path and a ':';
 *   - loaded tables: dkimt_match gives at most AG_DKIM_MAX_SIGN keys, no
 *     key twice, each with a name, a domain and a selector and one of the
 *     two key files; the same address matches the same keys twice, and a
 *     smaller room gives a prefix of the same list.
 */
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util/buf.h"
#include "dkim_tables.h"
#include "keys.h"
#include "fuzz_common.h"

static char dir[64], rsa_path[96], ed_path[96];
static struct stat rsa_st, ed_st;
static int kt_fd = -1, st_fd = -1;
static char kt_path[64], st_path[64], st_spec[80];

/* write_key - a private key of this type into path, mode 0600 */
static void
write_key(int type, int bits, const char *path)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_id(type, NULL);
	EVP_PKEY *k = NULL;
	FILE *fp;

	if (c == NULL || EVP_PKEY_keygen_init(c) <= 0 ||
	    (bits && EVP_PKEY_CTX_set_rsa_keygen_bits(c, bits) <= 0) ||
	    EVP_PKEY_keygen(c, &k) <= 0 || (fp = fopen(path, "w")) == NULL) {
		fprintf(stderr, "fuzz_tables: cannot make %s\n", path);
		abort();
	}
	fchmod(fileno(fp), 0600);
	PEM_write_PrivateKey(fp, k, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	EVP_PKEY_free(k);
	EVP_PKEY_CTX_free(c);
}

/* cleanup - remove the keys and their directory */
static void
cleanup(void)
{
	unlink(rsa_path);
	unlink(ed_path);
	rmdir(dir);
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	snprintf(dir, sizeof(dir), "/tmp/authgate-fuzz-keys-XXXXXX");
	if (mkdtemp(dir) == NULL) {
		perror("mkdtemp");
		abort();
	}
	snprintf(rsa_path, sizeof(rsa_path), "%s/rsa.key", dir);
	snprintf(ed_path, sizeof(ed_path), "%s/ed.key", dir);
	write_key(EVP_PKEY_RSA, 1024, rsa_path);
	write_key(EVP_PKEY_ED25519, 0, ed_path);
	if (stat(rsa_path, &rsa_st) == -1 || stat(ed_path, &ed_st) == -1)
		abort();
	atexit(cleanup);
	kt_fd = fuzz_memfd("KeyTable", kt_path, sizeof(kt_path));
	st_fd = fuzz_memfd("SigningTable", st_path, sizeof(st_path));
	return 0;
}

/*
 * __wrap_keys_load - keys_load as dkim_tables.c calls it (fuzz.mk links
 * this target with -Wl,--wrap=keys_load). The two key files made at start
 * never change, so their first real load is kept and each later load of
 * them gets a copy of it: OpenSSL's PEM decoding costs thousands of
 * allocations under ASan and took most of the time of an input, which is
 * about the tables, not about OpenSSL. Any other path (missing, not a
 * key, another file) goes to the real keys_load every time.
 */
int __real_keys_load(const char *path, int min_rsa_bits, struct ag_key *k,
    char *why, size_t whylen);
int __wrap_keys_load(const char *path, int min_rsa_bits, struct ag_key *k,
    char *why, size_t whylen);

int
__wrap_keys_load(const char *path, int min_rsa_bits, struct ag_key *k,
    char *why, size_t whylen)
{
	static struct ag_key loaded[2];
	static int min_bits[2];
	int i = strcmp(path, rsa_path) == 0 ? 0
	    : strcmp(path, ed_path) == 0    ? 1
					    : -1;

	if (i == -1)
		return __real_keys_load(path, min_rsa_bits, k, why, whylen);
	if (loaded[i].pkey == NULL || min_bits[i] != min_rsa_bits) {
		keys_release(&loaded[i]);
		if (__real_keys_load(
			path, min_rsa_bits, &loaded[i], why, whylen) == -1)
			return -1;
		min_bits[i] = min_rsa_bits;
	}
	memset(k, 0, sizeof(*k));
	k->type = loaded[i].type;
	k->bits = loaded[i].bits;
	if ((k->path = strdup(path)) == NULL ||
	    EVP_PKEY_up_ref(loaded[i].pkey) != 1)
		abort();
	k->pkey = loaded[i].pkey;
	return 0;
}

/* fill - the table text with @R/@E replaced, into the memfd */
static void
fill(int fd, const char *t, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		if (t[i] == '@' && i + 1 < n &&
		    (t[i + 1] == 'R' || t[i + 1] == 'E')) {
			buf_addstr(&b, t[i + 1] == 'R' ? rsa_path : ed_path);
			i++;
			continue;
		}
		buf_addch(&b, t[i]);
	}
	if (ftruncate(fd, 0) == -1 ||
	    (b.len && pwrite(fd, b.data, b.len, 0) != (ssize_t)b.len)) {
		perror("memfd write");
		abort();
	}
	buf_release(&b);
}

/* is_key_file - one of the two key files, under whatever name ("//tmp/x"
 * names the file "/tmp/x" does) */
static bool
is_key_file(const char *path)
{
	struct stat st;

	return path != NULL && stat(path, &st) == 0 &&
	    ((st.st_dev == rsa_st.st_dev && st.st_ino == rsa_st.st_ino) ||
		(st.st_dev == ed_st.st_dev && st.st_ino == ed_st.st_ino));
}

/* check_match - one address against loaded tables */
static void
check_match(const struct dkimt *t, const char *addr)
{
	const struct ag_key *k[AG_DKIM_MAX_SIGN + 1], *k2[AG_DKIM_MAX_SIGN + 1],
	    *k1[1];
	const char *at = strrchr(addr, '@');
	char local[256];
	const char *domain;
	size_t n, n2, n1, i, j;

	if (at == NULL || (size_t)(at - addr) >= sizeof(local))
		return;
	memcpy(local, addr, (size_t)(at - addr));
	local[at - addr] = '\0';
	domain = at + 1;
	n = dkimt_match(t, local, domain, k, AG_DKIM_MAX_SIGN);
	n2 = dkimt_match(t, local, domain, k2, AG_DKIM_MAX_SIGN);
	n1 = dkimt_match(t, local, domain, k1, 1);
	FUZZ_CHECK(n <= AG_DKIM_MAX_SIGN, "%zu keys", n);
	FUZZ_CHECK(n == n2, "%zu then %zu keys for %s", n, n2, addr);
	FUZZ_CHECK(n1 == (n ? 1 : 0), "room 1 gave %zu of %zu", n1, n);
	FUZZ_CHECK(n1 == 0 || k1[0] == k[0], "room 1 gave another first key");
	for (i = 0; i < n; i++) {
		FUZZ_CHECK(k[i] == k2[i], "key %zu differs between lookups", i);
		FUZZ_CHECK(k[i]->name && *k[i]->name && k[i]->domain &&
			*k[i]->domain && k[i]->selector && *k[i]->selector,
		    "key %zu without name, domain or selector", i);
		FUZZ_CHECK(is_key_file(k[i]->path), "key %zu from '%s'", i,
		    k[i]->path ? k[i]->path : "");
		for (j = 0; j < i; j++)
			FUZZ_CHECK(k[i] != k[j], "key %zu twice", i);
	}
}

/* check_errors - every line names one of the two tables */
static void
check_errors(const struct buf *err)
{
	const char *p = err->data, *nl;

	FUZZ_CHECK(err->len > 0, "refused without an error");
	for (; *p; p = nl + 1) {
		nl = strchr(p, '\n');
		FUZZ_CHECK(nl != NULL, "error without a final newline");
		FUZZ_CHECK((strncmp(p, kt_path, strlen(kt_path)) == 0 &&
			       p[strlen(kt_path)] == ':') ||
			(strncmp(p, st_path, strlen(st_path)) == 0 &&
			    p[strlen(st_path)] == ':'),
		    "error line without a table: %.*s", (int)(nl - p), p);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *kt, *st, *addrs, *e1, *e2, *end;
	struct buf err = BUF_INIT;
	struct dkimt *t;

	if (size < 1)
		return 0;
	kt = (const char *)data + 1;
	end = (const char *)data + size;
	if ((e1 = memchr(kt, '\0', (size_t)(end - kt))) == NULL)
		return 0;
	st = e1 + 1;
	if ((e2 = memchr(st, '\0', (size_t)(end - st))) == NULL)
		e2 = end;
	addrs = e2 < end ? e2 + 1 : end;
	fill(kt_fd, kt, (size_t)(e1 - kt));
	fill(st_fd, st, (size_t)(e2 - st));
	snprintf(st_spec, sizeof(st_spec), "%s%s", data[0] & 1 ? "refile:" : "",
	    st_path);
	t = dkimt_load(kt_path, st_spec, 1024, &err);
	if (t == NULL)
		check_errors(&err);
	else {
		const char *p = addrs;

		FUZZ_CHECK(err.len == 0, "loaded with errors: %s", err.data);
		while (p < end) {
			const char *nl = memchr(p, '\n', (size_t)(end - p));
			size_t n = nl ? (size_t)(nl - p) : (size_t)(end - p);
			char a[512];

			if (n < sizeof(a) && memchr(p, '\0', n) == NULL) {
				memcpy(a, p, n);
				a[n] = '\0';
				check_match(t, a);
			}
			p += n + 1;
		}
		check_match(t, "alice@example.com");
		dkimt_free(t);
	}
	buf_release(&err);
	return 0;
}
