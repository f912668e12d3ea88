/*
 * fuzz_dkim_canon.c - libFuzzer target: our signer's canonicalization
 * (dkim_signer.c) against libopendkim's, and the DKIM-Signature header
 * it writes.
 *
 * Input: two flags bytes, split points, then a message as text.
 *   byte 0: bits 0-1 the canonicalization (0 simple/simple, 1
 *           simple/relaxed, 2 relaxed/simple, 3 relaxed/relaxed);
 *           bit 2: also sign every header name of the message made of
 *           letters, digits, '-' and '_' (libopendkim turns
 *           dkim_sign_headers into a regular expression, so other bytes
 *           would mean something else to it); bit 3: no oversigning
 *           (else dkim_oversign_headers' default); bits 4-6: number of
 *           body split points (0-7)
 *   byte 1: bit 0 our signer uses the RSA key (else Ed25519); bit 1 the
 *           body raw (see below)
 *   then 2 bytes per split point: an offset into the body (modulo its
 *           length + 1); the body goes in as the chunks between them,
 *           empty chunks left out (libmilter never sends one)
 *   rest:   header lines up to the first empty line, then the body.
 * Headers are made as the MTA hands them over (struct hdr in msgctx.h):
 * a line "Name:value" starts a header (the name printable, no ':' or
 * white space; other lines are dropped), a line starting with SP or TAB
 * continues it after a CRLF fold; the value keeps its leading space; CR
 * and NUL bytes are dropped from header lines. A message without a From:
 * gets one at the end (both signers need it). The body is made what an
 * MTA delivers (SMTP DATA; Postfix and Sendmail hand the milter CRLF
 * line ends): every LF not after a CR becomes CRLF, every CR not before
 * an LF is dropped, and a last line without its CRLF gets one. Trailing
 * spaces and tabs, empty lines, lines of white space only and the empty
 * body are all reachable. A raw body (byte 1, bit 1) goes in byte for
 * byte; bare LFs in it are compared too (both end a line there: the
 * daemon's libopendkim handles use DKIM_LIBFLAGS_FIXCRLF, and so does
 * this harness), but bh= and the verification below are not checked for
 * a raw body with a CR not before an LF, or without a line end at its
 * end, which no MTA delivers: there the two differ on bytes RFC 6376
 * leaves undefined (it canonicalizes lines that end in CRLF).
 * libopendkim with FIXCRLF makes a lone CR a line end, our signer keeps
 * it as content; and libopendkim's relaxed body canonicalization, for a
 * body whose last line lacks its CRLF and ends in white space, hashes
 * no CRLF at all, where RFC 6376 3.4.4 adds one (our signer does).
 *
 * The same message is signed by libopendkim (RSA-SHA256: dkim_sign,
 * dkim_header "Name:value" per header as dkim_verify.c feeds them,
 * dkim_eoh, dkim_body per chunk, dkim_eom, dkim_getsighdr_d) and by
 * signer_start, signer_body per chunk, signer_finish, with the same
 * header lists. Asserts, beyond "no crash, no leak":
 *   - h= of both is the same list, name for name;
 *   - bh= of both is the same (RFC 6376 3.4.3, 3.4.4: simple drops
 *     trailing empty lines and makes an empty body one CRLF; relaxed
 *     makes WSP runs one SP, drops WSP at line ends and trailing empty
 *     lines, and leaves an empty body empty);
 *   - our header value: printable ASCII, SP and TAB, LF only as a "\n\t"
 *     fold (no CR), lines of at most 998 bytes; a tag list whose tags
 *     occur once each, with v=1, the key's a=, the chosen c=, d= and s=
 *     of the key, a t=, bh= (base64 of 32 bytes), h= (folds only next to
 *     a colon, RFC 6376 3.5) and b= (base64 of a signature of the key's
 *     size);
 *   - libopendkim verifies our signature (the key record comes from its
 *     key lookup callback): header hash, b= and, once more, bh=. Not
 *     checked when the header canonicalization is relaxed and a header
 *     value holds a VT or FF byte: libopendkim's relaxed header
 *     canonicalization takes every isspace() byte for white space, RFC
 *     6376 3.4.2 only WSP (SP and HTAB, RFC 5234), which is what
 *     dkim_signer.c does, so libopendkim is the one that is wrong there.
 * libopendkim decodes the private key for every message it signs, which
 * is thousands of mallocs under ASan (130 execs/s when it signed every
 * input): its h= depends only on the header names and the two lists, so
 * it signs once per distinct set of those (a cache), and bh= is compared
 * through the verification on every input anyway.
 * Keys: fixed test keys made for this harness (RSA 1024 bits for speed,
 * Ed25519), never used anywhere else.
 * Bugs this found: dkim_canon-1, h= folded inside a first header name of
 * 78 bytes or more (fixed; crashes/README.md).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <opendkim/dkim.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "config.h"
#include "dkim_signer.h"
#include "keys.h"
#include "msgctx.h"
#include "fuzz_common.h"

#define AG_FUZZ_MAX_HDRS   64
#define AG_FUZZ_MAX_SPLITS 7
#define AG_FUZZ_MAX_TAGS   32
#define AG_FUZZ_HCACHE	   4096 /* libopendkim h= values remembered */
#define AG_FUZZ_DOMAIN	   "example.org"
#define AG_FUZZ_SELECTOR   "fuzz"

/* openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:1024 */
static const char fuzz_rsa_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MIICdwIBADANBgkqhkiG9w0BAQEFAASCAmEwggJdAgEAAoGBAPI1pUGjYuROjSfS\n"
    "rAN7KqbkOynA4Wp180F4HmjHfBYODDrrQoQS07HPAD740KU1bV7JSbiNwoJTXW+5\n"
    "Wdiv5GfP1cAHSXEcOfGjSJVRSZhfQf4YNi6eck3cFhP0k/cmwAAEcfEfTDIERiF6\n"
    "lvSJIhHZMYslDfh3qMSVyN1mFOw5AgMBAAECgYEAvCTnxeEBBI/wHisL63hVXWaU\n"
    "fo6Ri30sBIMmPAYZYZhv76Sn+qgVQV2mt0PX7z1dQ+/gEDguC8ZuIkc8f5HCPU69\n"
    "xgiEgCY+YWtfmzQd/uB6fxBQMQbX+n6+Uy1sorBqxHmzwlu/o6lEPHsj6KmQuW9d\n"
    "G5drd8bs7UFOCoc9o8ECQQD/VfEl7IcdX0AbZ7r66ns3MELd+z+IGH9sep/0jMJ4\n"
    "4D53tdvhNy8S0hdLC3/SfxoPkjuc/a2vD6zAlw+9EuDFAkEA8tb2F64X++zHPu/t\n"
    "C6OrfvU7Kb1pTyZTeytIp3bIExV/gsGx1oqlNDwSZUoQX7Gd0GNfwuyNZDjX4HuB\n"
    "KFAs5QJABKngLq4kRaAQvq9lVeHkgDyMbBuDrIuuACA5PbE4eBa4bV1P98wXOwPF\n"
    "UySRoBmcMz6bgiGMA4+IuzfHHM/0dQJBAMfgMtIu00LiEuU0qdFot6FZy4aBhopF\n"
    "K3U3nSdpVyiOC1Pehbfmii/COgnwuiVpllGNWaag+YfCWb1FKnu58hkCQHY/3+AF\n"
    "uPuI96/4JzSYnND+HYeFWFnzWcZfzsT/RCpV6SpWcq7cWF5z836wTgg0KeSDGro3\n"
    "Ju8omafrK9hsIh8=\n"
    "-----END PRIVATE KEY-----\n";

/* openssl genpkey -algorithm ED25519 */
static const char fuzz_ed_pem[] =
    "-----BEGIN PRIVATE KEY-----\n"
    "MC4CAQAwBQYDK2VwBCIEIB28zPium0/zKABc5mj7LZcOmW00PGnH69KQzNuKk4zf\n"
    "-----END PRIVATE KEY-----\n";

static struct ag_key key_rsa, key_ed;
static DKIM_LIB *lib_sign, *lib_verify;
static char ed_record[128];  /* "v=DKIM1; k=ed25519; p=..." */
static char rsa_record[512]; /* "v=DKIM1; k=rsa; p=..." */
/* the RSA key as base64 DER, which libopendkim decodes much faster than
 * PEM (d2i_PrivateKey_bio instead of OpenSSL 3's PEM decoder search) */
static char rsa_der_b64[1200];
static struct config *fuzz_cfg; /* the vectors below point into it */
static char **def_signhdrs, **def_oversign;

struct tag {
	const char *name; /* points into the value */
	size_t namelen;
	char *val;	 /* malloc'd, FWS removed */
	const char *raw; /* the value as written, FWS included */
	size_t rawlen;
};

/* fuzz_key - a key from PEM text, as keys_load would leave it */
static void
fuzz_key(struct ag_key *k, const char *pem, enum ag_key_type type, int bits)
{
	BIO *b = BIO_new_mem_buf(pem, -1);

	k->name = "fuzz";
	k->domain = AG_FUZZ_DOMAIN;
	k->selector = AG_FUZZ_SELECTOR;
	k->path = "-";
	k->type = type;
	k->bits = bits;
	if (b == NULL ||
	    (k->pkey = PEM_read_bio_PrivateKey(b, NULL, NULL, NULL)) == NULL)
		abort();
	BIO_free(b);
}

/* fuzz_key_lookup - libopendkim's key lookup: our Ed25519 key's record */
static DKIM_CBSTAT
fuzz_key_lookup(DKIM *d, DKIM_SIGINFO *sig, u_char *buf, size_t buflen)
{
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;

	(void)d;
	dkim_sig_getsignalg(sig, &alg);
	snprintf((char *)buf, buflen, "%s",
	    alg == DKIM_SIGN_ED25519SHA256 ? ed_record : rsa_record);
	return DKIM_CBSTAT_CONTINUE;
}

/* fuzz_strv - a config list as a NULL-terminated vector (shared strings) */
static char **
fuzz_strv(const struct strlist *l)
{
	char **v = calloc(l->n + 1, sizeof(*v));
	size_t i;

	if (v == NULL)
		abort();
	for (i = 0; i < l->n; i++)
		v[i] = l->v[i];
	return v;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	unsigned char pub[32], *der = NULL;
	size_t publen = sizeof(pub);
	char b64[64], rb64[400];
	int derlen;
	/* the flags of the daemon's libopendkim handles (dkim_verify.c) */
	unsigned flags = DKIM_LIBFLAGS_FIXCRLF, minbits = 0;
	unsigned vflags = DKIM_LIBFLAGS_BADSIGHANDLES | DKIM_LIBFLAGS_FIXCRLF;
	struct buf err = BUF_INIT;

	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	/* the daemon's default header lists */
	if ((fuzz_cfg = config_load("/dev/null", NULL, 0, &err)) == NULL) {
		fprintf(stderr, "fuzz_dkim_canon: config: %s", err.data);
		abort();
	}
	buf_release(&err);
	def_signhdrs = fuzz_strv(&fuzz_cfg->dkim_sign_headers);
	def_oversign = fuzz_strv(&fuzz_cfg->dkim_oversign_headers);
	fuzz_key(&key_rsa, fuzz_rsa_pem, AG_KEY_RSA, 1024);
	fuzz_key(&key_ed, fuzz_ed_pem, AG_KEY_ED25519, 256);
	if (EVP_PKEY_get_raw_public_key(key_ed.pkey, pub, &publen) != 1 ||
	    EVP_EncodeBlock((unsigned char *)b64, pub, (int)publen) <= 0)
		abort();
	snprintf(ed_record, sizeof(ed_record), "v=DKIM1; k=ed25519; p=%s", b64);
	if ((derlen = i2d_PUBKEY(key_rsa.pkey, &der)) <= 0 ||
	    (size_t)derlen > sizeof(rb64) / 4 * 3 - 3 ||
	    EVP_EncodeBlock((unsigned char *)rb64, der, derlen) <= 0)
		abort();
	OPENSSL_free(der);
	der = NULL;
	if ((derlen = i2d_PrivateKey(key_rsa.pkey, &der)) <= 0 ||
	    (size_t)derlen > sizeof(rsa_der_b64) / 4 * 3 - 3 ||
	    EVP_EncodeBlock((unsigned char *)rsa_der_b64, der, derlen) <= 0)
		abort();
	OPENSSL_free(der);
	snprintf(rsa_record, sizeof(rsa_record), "v=DKIM1; k=rsa; p=%s", rb64);
	if ((lib_sign = dkim_init(NULL, NULL)) == NULL ||
	    dkim_options(lib_sign, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
		sizeof(flags)) != DKIM_STAT_OK)
		abort();
	if ((lib_verify = dkim_init(NULL, NULL)) == NULL ||
	    dkim_options(lib_verify, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &vflags,
		sizeof(vflags)) != DKIM_STAT_OK ||
	    dkim_options(lib_verify, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS,
		&minbits, sizeof(minbits)) != DKIM_STAT_OK ||
	    dkim_set_key_lookup(lib_verify, fuzz_key_lookup) != DKIM_STAT_OK)
		abort();
	return 0;
}

struct msgin {
	struct hdr hdrs[AG_FUZZ_MAX_HDRS + 1];
	size_t nhdrs;
	unsigned char *body;
	size_t bodylen;
	bool mta_like; /* no lone CR, ends with a line end or is empty */
	size_t cuts[AG_FUZZ_MAX_SPLITS + 2]; /* chunk boundaries */
	size_t ncuts;
	char *signv[AG_FUZZ_MAX_HDRS + 64]; /* sign list, NULL-terminated */
	char **oversign;
	struct buf text; /* header names and values */
};

/* name_ok - a header name the MTA would hand over */
static bool
name_ok(const char *p, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)p[i] <= 0x20 ||
		    (unsigned char)p[i] >= 0x7f || p[i] == ':')
			return false;
	return true;
}

/* name_plain - letters, digits, '-' and '_' only */
static bool
name_plain(const char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (!str_isalnum((unsigned char)p[i]) && p[i] != '-' &&
		    p[i] != '_')
			return false;
	return len > 0;
}

/* line_add - append a header line's bytes without CR and NUL */
static void
line_add(struct buf *b, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != '\r' && p[i] != '\0')
			buf_addch(b, (char)p[i]);
}

/*
 * parse_headers - header lines into m->text as "name\0value\0" pairs
 * (offsets recorded), up to the empty line; returns where the body
 * starts.
 */
static size_t
parse_headers(
    struct msgin *m, const uint8_t *p, size_t n, size_t *offs, size_t *nameends)
{
	size_t i = 0;
	bool open = false;

	while (i < n) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - p) : n, len = end - i;
		const uint8_t *colon;

		if (len > 0 && p[end - 1] == '\r')
			len--;
		if (len == 0) /* the empty line */
			return nl ? end + 1 : n;
		if ((p[i] == ' ' || p[i] == '\t') && open) {
			buf_add(&m->text, "\r\n", 2);
			line_add(&m->text, p + i, len);
		} else {
			if (open)
				buf_addch(&m->text, '\0');
			open = false;
			colon = memchr(p + i, ':', len);
			if (colon != NULL && m->nhdrs < AG_FUZZ_MAX_HDRS &&
			    name_ok((const char *)p + i,
				(size_t)(colon - (p + i)))) {
				offs[m->nhdrs] = m->text.len;
				buf_add(
				    &m->text, p + i, (size_t)(colon - (p + i)));
				nameends[m->nhdrs] = m->text.len;
				buf_addch(&m->text, '\0');
				line_add(&m->text, colon + 1,
				    len - (size_t)(colon + 1 - (p + i)));
				m->nhdrs++;
				open = true;
			}
		}
		i = nl ? end + 1 : n;
	}
	if (open)
		buf_addch(&m->text, '\0');
	return n;
}

/* build - the message of the input */
static void
build(struct msgin *m, const uint8_t *p, size_t n, unsigned flags, bool raw,
    const uint16_t *splits, size_t nsplits)
{
	size_t offs[AG_FUZZ_MAX_HDRS + 1], nameends[AG_FUZZ_MAX_HDRS + 1];
	size_t body, i, j, nsign = 0;
	bool from = false;

	body = parse_headers(m, p, n, offs, nameends);
	for (i = 0; i < m->nhdrs; i++)
		if (str_caseeq_len((const char *)m->text.data + offs[i],
			nameends[i] - offs[i], "From"))
			from = true;
	if (!from) {
		offs[m->nhdrs] = m->text.len;
		buf_addstr(&m->text, "From");
		nameends[m->nhdrs] = m->text.len;
		buf_add(&m->text, "\0 fuzz@example.org\0", 19);
		m->nhdrs++;
	}
	for (i = 0; i < m->nhdrs; i++) {
		struct hdr *h = &m->hdrs[i];

		h->name = m->text.data + offs[i];
		h->namelen = nameends[i] - offs[i];
		h->value = m->text.data + nameends[i] + 1;
		h->valuelen = strlen(h->value);
		h->next = i + 1 < m->nhdrs ? &m->hdrs[i + 1] : NULL;
	}
	/* the body as the MTA delivers it, or raw (see the top comment) */
	m->body = malloc(2 * (n - body) + 3);
	if (m->body == NULL)
		abort();
	for (i = body; i < n; i++) {
		if (raw) {
			m->body[m->bodylen++] = p[i];
			continue;
		}
		if (p[i] == '\r') {
			if (i + 1 < n && p[i + 1] == '\n')
				m->body[m->bodylen++] = '\r';
			continue;
		}
		if (p[i] == '\n' && (i == body || p[i - 1] != '\r'))
			m->body[m->bodylen++] = '\r';
		m->body[m->bodylen++] = p[i];
	}
	if (!raw && m->bodylen > 0 && m->body[m->bodylen - 1] != '\n') {
		m->body[m->bodylen++] = '\r';
		m->body[m->bodylen++] = '\n';
	}
	/* what an MTA can deliver: no lone CR, a line end at the end */
	m->mta_like = m->bodylen == 0 || m->body[m->bodylen - 1] == '\n';
	for (i = 0; i < m->bodylen && m->mta_like; i++)
		if (m->body[i] == '\r' &&
		    (i + 1 == m->bodylen || m->body[i + 1] != '\n'))
			m->mta_like = false;
	/* chunk boundaries: 0, the split points sorted, the end */
	m->cuts[m->ncuts++] = 0;
	for (i = 0; i < nsplits; i++) {
		size_t c = splits[i] % (m->bodylen + 1);

		for (j = m->ncuts; j > 1 && m->cuts[j - 1] > c; j--)
			m->cuts[j] = m->cuts[j - 1];
		m->cuts[j] = c;
		m->ncuts++;
	}
	m->cuts[m->ncuts++] = m->bodylen;
	/* header lists: the defaults, maybe every plain name too */
	for (i = 0; def_signhdrs[i] != NULL; i++)
		m->signv[nsign++] = def_signhdrs[i];
	if (flags & 4)
		for (i = 0; i < m->nhdrs; i++)
			if (name_plain(m->hdrs[i].name, m->hdrs[i].namelen))
				m->signv[nsign++] = (char *)m->hdrs[i].name;
	m->signv[nsign] = NULL;
	m->oversign = (flags & 8) ? NULL : def_oversign;
}

/* tags_free - release parse_tags' values */
static void
tags_free(struct tag *t, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(t[i].val);
}

/* tag_get - the value of a tag, or NULL */
static struct tag *
tag_get(struct tag *t, size_t n, const char *name)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (str_caseeq_len(t[i].name, t[i].namelen, name) &&
		    strlen(name) == t[i].namelen)
			return &t[i];
	return NULL;
}

/* is_fws - folding white space byte of a header value */
static bool
is_fws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/*
 * parse_tags - a DKIM tag-list (RFC 6376 3.2) into t[]; values with all
 * FWS removed. -1 when a tag-spec has no '=' or a bad name.
 */
static int
parse_tags(const char *v, size_t len, struct tag *t, size_t *nt)
{
	size_t i = 0, n = 0;

	*nt = 0;
	while (i < len) {
		size_t s, e, vs, k;

		while (i < len && is_fws(v[i]))
			i++;
		if (i == len)
			break; /* a final ';' may be followed by FWS only */
		s = i;
		while (i < len &&
		    (str_isalnum((unsigned char)v[i]) || v[i] == '_'))
			i++;
		e = i;
		while (i < len && is_fws(v[i]))
			i++;
		if (e == s || !str_isalpha((unsigned char)v[s]) || i == len ||
		    v[i] != '=' || n == AG_FUZZ_MAX_TAGS)
			return -1;
		vs = ++i;
		while (i < len && v[i] != ';')
			i++;
		t[n].name = v + s;
		t[n].namelen = e - s;
		t[n].raw = v + vs;
		t[n].rawlen = i - vs;
		if ((t[n].val = malloc(i - vs + 1)) == NULL)
			abort();
		for (k = 0; vs < i; vs++)
			if (!is_fws(v[vs]))
				t[n].val[k++] = v[vs];
		t[n].val[k] = '\0';
		*nt = ++n;
		if (i < len)
			i++; /* the ';' */
	}
	return 0;
}

/* b64_len - the decoded length of a base64 string, -1 if not base64 */
static int
b64_len(const char *s)
{
	size_t n = strlen(s), i, pad = 0;

	if (n == 0 || n % 4 != 0)
		return -1;
	for (i = 0; i < n; i++) {
		char c = s[i];

		if (c == '=') {
			if (i < n - 2)
				return -1;
			pad++;
		} else if (pad > 0 ||
		    !(str_isalnum((unsigned char)c) || c == '+' || c == '/'))
			return -1;
	}
	return (int)(n / 4 * 3 - pad);
}

/* check_ours - the syntax of our DKIM-Signature value (see the top) */
static void
check_ours(const char *v, unsigned canon, const struct ag_key *key,
    struct tag *t, size_t *nt)
{
	static const char *const cnames[] = {"simple/simple", "simple/relaxed",
	    "relaxed/simple", "relaxed/relaxed"};
	size_t len = strlen(v), i, col = 16, j, k;
	struct tag *x;
	const char *once[] = {"v", "a", "c", "d", "s", "t", "bh", "h", "b"};

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '\n') {
			FUZZ_CHECK(v[i + 1] == '\t' && i > 0,
			    "LF not a \"\\n\\t\" fold at %zu: '%s'", i,
			    fuzz_escape(v, len));
			col = 0;
			continue;
		}
		FUZZ_CHECK(c == '\t' || (c >= 0x20 && c < 0x7f),
		    "byte 0x%02x at %zu: '%s'", c, i, fuzz_escape(v, len));
		FUZZ_CHECK(++col <= 998, "line over 998 bytes: '%s'",
		    fuzz_escape(v, len));
	}
	FUZZ_CHECK(parse_tags(v, len, t, nt) == 0, "not a tag-list: '%s'",
	    fuzz_escape(v, len));
	for (i = 0; i < *nt; i++)
		for (j = i + 1; j < *nt; j++)
			FUZZ_CHECK(t[i].namelen != t[j].namelen ||
				memcmp(t[i].name, t[j].name, t[i].namelen) != 0,
			    "tag %.*s twice: '%s'", (int)t[i].namelen,
			    t[i].name, fuzz_escape(v, len));
	for (i = 0; i < sizeof(once) / sizeof(once[0]); i++)
		FUZZ_CHECK(tag_get(t, *nt, once[i]) != NULL, "no %s= in '%s'",
		    once[i], fuzz_escape(v, len));
	FUZZ_CHECK(strcmp(tag_get(t, *nt, "v")->val, "1") == 0 &&
		strcmp(tag_get(t, *nt, "a")->val,
		    key->type == AG_KEY_RSA ? "rsa-sha256"
					    : "ed25519-sha256") == 0 &&
		strcmp(tag_get(t, *nt, "c")->val, cnames[canon]) == 0 &&
		strcmp(tag_get(t, *nt, "d")->val, AG_FUZZ_DOMAIN) == 0 &&
		strcmp(tag_get(t, *nt, "s")->val, AG_FUZZ_SELECTOR) == 0,
	    "v, a, c (want %s), d or s wrong: '%s'", cnames[canon],
	    fuzz_escape(v, len));
	x = tag_get(t, *nt, "t");
	FUZZ_CHECK(
	    x->val[0] != '\0' && strspn(x->val, "0123456789") == strlen(x->val),
	    "t= '%s'", x->val);
	FUZZ_CHECK(b64_len(tag_get(t, *nt, "bh")->val) == 32,
	    "bh= is not base64 of 32 bytes: '%s'", tag_get(t, *nt, "bh")->val);
	FUZZ_CHECK(b64_len(tag_get(t, *nt, "b")->val) ==
		(key->type == AG_KEY_RSA ? key->bits / 8 : 64),
	    "b= is not base64 of a signature: '%s'", tag_get(t, *nt, "b")->val);
	/* RFC 6376 3.5: hdr-name *( *FWS ":" *FWS hdr-name ) */
	x = tag_get(t, *nt, "h");
	for (k = 0; k < x->rawlen; k++) {
		bool fws = is_fws(x->raw[k]);
		size_t a = k, b = k;

		if (!fws)
			continue;
		while (a > 0 && is_fws(x->raw[a - 1]))
			a--;
		while (b < x->rawlen && is_fws(x->raw[b]))
			b++;
		/* dkim_canon-1, fixed: a long first name was cut by a fold */
		FUZZ_CHECK(a == 0 || b == x->rawlen || x->raw[a - 1] == ':' ||
			x->raw[b] == ':',
		    "h= folded inside a header name: '%s'",
		    fuzz_escape(x->raw, x->rawlen));
		k = b;
	}
}

/* has_vt_ff - a header value with a byte only libopendkim calls space */
static bool
has_vt_ff(const struct msgin *m)
{
	size_t i;

	for (i = 0; i < m->nhdrs; i++)
		if (memchr(m->hdrs[i].value, '\v', m->hdrs[i].valuelen) ||
		    memchr(m->hdrs[i].value, '\f', m->hdrs[i].valuelen))
			return true;
	return false;
}

/* sign_opendkim - libopendkim's signature header, or NULL (malloc'd) */
static char *
sign_opendkim(const struct msgin *m, dkim_canon_t hc, dkim_canon_t bc)
{
	struct buf b = BUF_INIT;
	DKIM_STAT st;
	DKIM *d;
	unsigned char *sig;
	size_t len, i;
	char *out = NULL;

	d = dkim_sign(lib_sign, (const unsigned char *)"fuzz", NULL,
	    (unsigned char *)rsa_der_b64, (unsigned char *)key_rsa.selector,
	    (unsigned char *)key_rsa.domain, hc, bc, DKIM_SIGN_RSASHA256, -1,
	    &st);
	FUZZ_CHECK(d != NULL, "dkim_sign: %s", dkim_getresultstr(st));
	for (i = 0; i < m->nhdrs; i++) {
		buf_reset(&b);
		buf_add(&b, m->hdrs[i].name, m->hdrs[i].namelen);
		buf_addch(&b, ':');
		buf_add(&b, m->hdrs[i].value, m->hdrs[i].valuelen);
		if (dkim_header(d, (unsigned char *)b.data, b.len) !=
		    DKIM_STAT_OK)
			goto done;
	}
	if (dkim_eoh(d) != DKIM_STAT_OK)
		goto done;
	for (i = 0; i + 1 < m->ncuts; i++)
		if (m->cuts[i + 1] > m->cuts[i])
			dkim_body(d, m->body + m->cuts[i],
			    m->cuts[i + 1] - m->cuts[i]);
	if (dkim_eom(d, NULL) != DKIM_STAT_OK ||
	    dkim_getsighdr_d(d, strlen("DKIM-Signature: "), &sig, &len) !=
		DKIM_STAT_OK)
		goto done;
	if ((out = malloc(len + 1)) == NULL)
		abort();
	memcpy(out, sig, len);
	out[len] = '\0';
done:
	buf_release(&b);
	dkim_free(d);
	return out;
}

/*
 * verify_ours - libopendkim verifies our signature value v over the
 * message (our header on top, folds as CRLF as the MTA writes them)
 */
static void
verify_ours(const struct msgin *m, const char *v)
{
	struct buf b = BUF_INIT;
	DKIM_SIGINFO **sigs;
	DKIM_STAT st;
	DKIM *d;
	int nsigs = 0, bh;
	size_t i;
	unsigned flags;

	d = dkim_verify(lib_verify, (const unsigned char *)"fuzz", NULL, &st);
	FUZZ_CHECK(d != NULL, "dkim_verify: %s", dkim_getresultstr(st));
	buf_addstr(&b, "DKIM-Signature: ");
	for (; *v; v++) {
		if (*v == '\n')
			buf_addch(&b, '\r');
		buf_addch(&b, *v);
	}
	st = dkim_header(d, (unsigned char *)b.data, b.len);
	FUZZ_CHECK(st == DKIM_STAT_OK, "dkim_header(our signature): %s",
	    dkim_getresultstr(st));
	for (i = 0; i < m->nhdrs; i++) {
		buf_reset(&b);
		buf_add(&b, m->hdrs[i].name, m->hdrs[i].namelen);
		buf_addch(&b, ':');
		buf_add(&b, m->hdrs[i].value, m->hdrs[i].valuelen);
		dkim_header(d, (unsigned char *)b.data, b.len);
	}
	st = dkim_eoh(d);
	FUZZ_CHECK(st == DKIM_STAT_OK, "dkim_eoh: %s (%s)",
	    dkim_getresultstr(st), dkim_geterror(d) ? dkim_geterror(d) : "");
	for (i = 0; i + 1 < m->ncuts; i++)
		if (m->cuts[i + 1] > m->cuts[i])
			dkim_body(d, m->body + m->cuts[i],
			    m->cuts[i + 1] - m->cuts[i]);
	st = dkim_eom(d, NULL);
	/* ours is the topmost: the first of the message's signatures */
	FUZZ_CHECK(dkim_getsiglist(d, &sigs, &nsigs) == DKIM_STAT_OK &&
		nsigs >= 1 && dkim_sig_getselector(sigs[0]) != NULL &&
		strcmp((const char *)dkim_sig_getselector(sigs[0]),
		    AG_FUZZ_SELECTOR) == 0,
	    "libopendkim does not see our signature first (%d signatures)",
	    nsigs);
	flags = dkim_sig_getflags(sigs[0]);
	bh = dkim_sig_getbh(sigs[0]);
	FUZZ_CHECK((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH,
	    "libopendkim does not verify our signature: %s, flags 0x%x, bh "
	    "%d, error %s (%s)",
	    dkim_getresultstr(st), flags, bh,
	    dkim_sig_geterrorstr(dkim_sig_geterror(sigs[0])),
	    dkim_geterror(d) ? dkim_geterror(d) : "");
	dkim_free(d);
	buf_release(&b);
}

/*
 * libopendkim_h - libopendkim's h= for this message (FWS removed), or
 * NULL when it does not sign it; libopendkim signs only on a cache miss.
 * h= depends on nothing but the header names in order and the two lists
 * (flags bits 2 and 3), so the cache, keyed by exactly those, changes no
 * result. Signing is what makes this target slow: libopendkim decodes
 * the private key for every message, thousands of mallocs under ASan.
 * On a miss, bh= is compared too (for an MTA-like body).
 */
static const char *
libopendkim_h(const struct msgin *m, unsigned flags, unsigned canon,
    struct tag *tags, size_t ntags)
{
	static struct {
		char *key;
		size_t keylen;
		char *h; /* NULL: libopendkim does not sign it */
	} cache[AG_FUZZ_HCACHE];
	struct buf k = BUF_INIT;
	struct tag ot[AG_FUZZ_MAX_TAGS];
	size_t i, not = 0;
	uint32_t hash = 2166136261u;
	char *theirs;
	unsigned slot;

	buf_addch(&k, (char)(flags & 0x0c));
	for (i = 0; i < m->nhdrs; i++)
		buf_add(&k, m->hdrs[i].name, m->hdrs[i].namelen + 1);
	for (i = 0; i < k.len; i++)
		hash = (hash ^ (unsigned char)k.data[i]) * 16777619u;
	slot = hash % AG_FUZZ_HCACHE;
	if (cache[slot].key != NULL && cache[slot].keylen == k.len &&
	    memcmp(cache[slot].key, k.data, k.len) == 0) {
		buf_release(&k);
		return cache[slot].h;
	}
	free(cache[slot].key);
	free(cache[slot].h);
	cache[slot].key = k.data; /* the buf's storage, now the cache's */
	cache[slot].keylen = k.len;
	cache[slot].h = NULL;
	if (dkim_options(lib_sign, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
		(char **)m->signv, sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(lib_sign, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
		m->oversign, sizeof(char **)) != DKIM_STAT_OK)
		return NULL; /* a list too long for libopendkim's regex */
	theirs = sign_opendkim(m,
	    (canon & 2) ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE,
	    (canon & 1) ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE);
	if (theirs == NULL)
		return NULL;
	FUZZ_CHECK(parse_tags(theirs, strlen(theirs), ot, &not ) == 0 &&
		tag_get(ot, not, "bh") != NULL && tag_get(ot, not, "h") != NULL,
	    "libopendkim's header: '%s'", fuzz_escape(theirs, strlen(theirs)));
	FUZZ_CHECK(!m->mta_like ||
		strcmp(tag_get(tags, ntags, "bh")->val,
		    tag_get(ot, not, "bh")->val) == 0,
	    "bh= differs: ours %s, libopendkim %s (canon %u, body '%s')",
	    tag_get(tags, ntags, "bh")->val, tag_get(ot, not, "bh")->val, canon,
	    fuzz_escape((const char *)m->body, m->bodylen));
	if ((cache[slot].h = strdup(tag_get(ot, not, "h")->val)) == NULL)
		abort();
	tags_free(ot, not );
	free(theirs);
	return cache[slot].h;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_reader r = {data, size};
	uint8_t flags = fr_byte(&r), flags2 = fr_byte(&r);
	unsigned canon = flags & 3, i;
	const struct ag_key *key = (flags2 & 1) ? &key_rsa : &key_ed;
	size_t nsplits = (flags >> 4) & 7, ntags = 0;
	uint16_t splits[AG_FUZZ_MAX_SPLITS];
	struct msgin *m = calloc(1, sizeof(*m));
	struct arena *a = arena_new(8192);
	struct tag tags[AG_FUZZ_MAX_TAGS];
	struct signer *e;
	char why[256], *ours;
	const char *theirs_h;
	struct signer_opts eo;

	if (m == NULL || a == NULL)
		abort();
	for (i = 0; i < nsplits; i++)
		splits[i] = (uint16_t)fr_u16(&r);
	m->text = (struct buf)BUF_INIT;
	build(m, r.p, r.n, flags, (flags2 & 2) != 0, splits, nsplits);

	memset(&eo, 0, sizeof(eo));
	eo.hrelaxed = (canon & 2) != 0;
	eo.brelaxed = (canon & 1) != 0;
	eo.signhdrs = m->signv;
	eo.oversign = m->oversign;
	eo.now = 1700000000;
	e = signer_start(a, key, m->hdrs, &eo, why, sizeof(why));
	FUZZ_CHECK(e != NULL, "signer_start: %s", why);
	for (i = 0; i + 1 < m->ncuts; i++)
		if (m->cuts[i + 1] > m->cuts[i])
			signer_body(e, m->body + m->cuts[i],
			    m->cuts[i + 1] - m->cuts[i]);
	ours = signer_finish(e, why, sizeof(why));
	FUZZ_CHECK(ours != NULL, "signer_finish: %s", why);
	check_ours(ours, canon, key, tags, &ntags);

	theirs_h = libopendkim_h(m, flags, canon, tags, ntags);
	FUZZ_CHECK(theirs_h == NULL ||
		strcmp(tag_get(tags, ntags, "h")->val, theirs_h) == 0,
	    "h= differs: ours '%s', libopendkim '%s'",
	    tag_get(tags, ntags, "h")->val, theirs_h);
	if (m->mta_like && (!eo.hrelaxed || !has_vt_ff(m)))
		verify_ours(m, ours);

	tags_free(tags, ntags);
	arena_free(a);
	buf_release(&m->text);
	free(m->body);
	free(m);
	return 0;
}
