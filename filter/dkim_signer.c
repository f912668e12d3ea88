/*
 * dkim_signer.c - DKIM signing, RSA-SHA256 and Ed25519-SHA256 (see
 * dkim_signer.h).
 */
#include <stdio.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/rsa.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "keys.h"
#include "msgctx.h"
#include "dkim_signer.h"

#define SIGNER_OUTBUF 4096 /* canonical body bytes hashed at once */
#define SIGNER_WIDTH  78   /* fold the header before this column */

struct signer {
	struct arena *arena;
	const struct ag_key *key;
	struct signer_opts o;
	EVP_MD_CTX *hh;	  /* header hash: the signed headers so far */
	EVP_MD_CTX *bh;	  /* body hash */
	struct buf hlist; /* the h= value */
	/* body canonicalization state */
	size_t held_crlf; /* line ends not hashed yet (maybe trailing) */
	bool cr;	  /* a CR was last, its LF may follow */
	bool wsp;	  /* relaxed: white space not hashed yet */
	bool any;	  /* some body content was hashed */
	unsigned char out[SIGNER_OUTBUF];
	size_t outlen;
	bool failed;
};

/* signer_ctx_free - arena destructor of an OpenSSL digest context */
static void
signer_ctx_free(void *ctx)
{
	EVP_MD_CTX_free(ctx);
}

/* signer_buf_free - arena destructor of a buf inside the signer */
static void
signer_buf_free(void *b)
{
	buf_release(b);
}

/* signer_sha256 - a new SHA-256 context released with the arena */
static EVP_MD_CTX *
signer_sha256(struct arena *a)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (c == NULL)
		return NULL;
	if (arena_defer(a, signer_ctx_free, c) == -1) {
		EVP_MD_CTX_free(c);
		return NULL;
	}
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) != 1)
		return NULL;
	return c;
}

/*
 * signer_canon_header - one header as the header hash takes it (RFC 6376
 * 3.4.1 simple: unchanged; 3.4.2 relaxed: name lowercased, unfolded, runs
 * of white space made one space, none at the ends of the value).
 */
static void
signer_canon_header(struct buf *out, bool relaxed, const char *name,
    size_t namelen, const char *value, size_t valuelen)
{
	size_t i;
	bool sp = false, started = false;

	if (!relaxed) {
		buf_add(out, name, namelen);
		buf_addch(out, ':');
		buf_add(out, value, valuelen);
		buf_add(out, "\r\n", 2);
		return;
	}
	for (i = 0; i < namelen; i++)
		if (!str_isspace((unsigned char)name[i]))
			buf_addch(out, str_lower((unsigned char)name[i]));
	buf_addch(out, ':');
	for (i = 0; i < valuelen; i++) {
		unsigned char c = (unsigned char)value[i];

		if (c == '\r' || c == '\n')
			continue;
		if (c == ' ' || c == '\t') {
			sp = started;
			continue;
		}
		if (sp)
			buf_addch(out, ' ');
		sp = false;
		started = true;
		buf_addch(out, c);
	}
	buf_add(out, "\r\n", 2);
}

/* signer_listed - is a header name in a NULL-terminated list? */
static bool
signer_listed(char *const *list, const char *name, size_t len)
{
	for (; list != NULL && *list != NULL; list++)
		if (str_caseeq_len(name, len, *list))
			return true;
	return false;
}

/*
 * signer_headers - choose the headers (every instance of a listed name,
 * From always), write h=, and hash them: each h= entry takes the lowest
 * instance of its name not taken yet (RFC 6376 5.4.2); an oversigned
 * name's extra entry finds none and adds nothing.
 */
static int
signer_headers(struct signer *e, const struct hdr *hdrs)
{
	const struct hdr **v;
	bool *used;
	struct buf c = BUF_INIT;
	const struct hdr *h;
	size_t n = 0, i, j;
	char *const *o;
	int rc = 0;

	for (h = hdrs; h != NULL; h = h->next)
		n++;
	v = arena_allocarray(e->arena, n + 1, sizeof(*v));
	used = arena_zalloc(e->arena, n + 1);
	if (v == NULL || used == NULL)
		return -1;
	for (i = 0, h = hdrs; h != NULL; h = h->next)
		v[i++] = h;
	for (i = 0; i < n; i++) {
		if (!signer_listed(e->o.signhdrs, v[i]->name, v[i]->namelen) &&
		    !str_caseeq_len(v[i]->name, v[i]->namelen, "From"))
			continue;
		if (e->hlist.len)
			buf_addch(&e->hlist, ':');
		buf_add(&e->hlist, v[i]->name, v[i]->namelen);
		/* the lowest unused instance of this name */
		for (j = n; j-- > 0;)
			if (!used[j] && v[j]->namelen == v[i]->namelen &&
			    str_ncaseeq(v[j]->name, v[i]->name, v[i]->namelen))
				break;
		used[j] = true;
		buf_reset(&c);
		signer_canon_header(&c, e->o.hrelaxed, v[j]->name,
		    v[j]->namelen, v[j]->value, v[j]->valuelen);
		if (EVP_DigestUpdate(e->hh, c.data, c.len) != 1)
			rc = -1;
	}
	for (o = e->o.oversign; o != NULL && *o != NULL; o++) {
		if (**o == '\0')
			continue;
		if (e->hlist.len)
			buf_addch(&e->hlist, ':');
		buf_addstr(&e->hlist, *o);
	}
	buf_release(&c);
	return rc;
}

/* signer_start - a signer, the headers hashed already */
struct signer *
signer_start(struct arena *a, const struct ag_key *k, const struct hdr *hdrs,
    const struct signer_opts *o, char *why, size_t whylen)
{
	struct signer *e = arena_zalloc(a, sizeof(*e));

	if (e == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	e->arena = a;
	e->key = k;
	e->o = *o;
	e->hlist = (struct buf)BUF_INIT;
	if (arena_defer(a, signer_buf_free, &e->hlist) == -1 ||
	    (e->hh = signer_sha256(a)) == NULL ||
	    (e->bh = signer_sha256(a)) == NULL) {
		snprintf(why, whylen, "cannot set up SHA-256");
		return NULL;
	}
	if (signer_headers(e, hdrs) == -1) {
		snprintf(why, whylen, "cannot hash the headers");
		return NULL;
	}
	return e;
}

/* signer_flush - hash what the body canonicalization wrote */
static void
signer_flush(struct signer *e)
{
	if (e->outlen > 0 && EVP_DigestUpdate(e->bh, e->out, e->outlen) != 1)
		e->failed = true;
	e->outlen = 0;
}

/* signer_put - bytes of canonical body */
static void
signer_put(struct signer *e, const void *p, size_t len)
{
	if (e->outlen + len > sizeof(e->out))
		signer_flush(e);
	memcpy(e->out + e->outlen, p, len);
	e->outlen += len;
}

/*
 * signer_char - a byte of a line's content: the line ends held back are
 * not trailing after all, and relaxed white space before it becomes one
 * space.
 */
static void
signer_char(struct signer *e, unsigned char c)
{
	if (e->o.brelaxed && (c == ' ' || c == '\t')) {
		e->wsp = true;
		return;
	}
	for (; e->held_crlf > 0; e->held_crlf--)
		signer_put(e, "\r\n", 2);
	if (e->wsp)
		signer_put(e, " ", 1);
	e->wsp = false;
	e->any = true;
	signer_put(e, &c, 1);
}

/* signer_body - canonicalize and hash a piece of the body */
void
signer_body(struct signer *e, const unsigned char *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = p[i];

		if (e->cr) {
			e->cr = false;
			if (c == '\n') {
				e->wsp = false; /* relaxed: none at line end */
				e->held_crlf++;
				continue;
			}
			signer_char(e, '\r'); /* a lone CR is content */
		}
		if (c == '\r')
			e->cr = true;
		else if (c == '\n') { /* a bare LF ends a line too */
			e->wsp = false;
			e->held_crlf++;
		} else
			signer_char(e, c);
	}
}

/* signer_b64 - base64 of len bytes into the arena */
static char *
signer_b64(struct arena *a, const unsigned char *p, size_t len)
{
	char *out = arena_alloc(a, 4 * ((len + 2) / 3) + 1);

	if (out != NULL)
		EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

/* Folding: tags separated by "; ", a line break before one that would
 * pass SIGNER_WIDTH; h= may break after a colon, b= anywhere. */
struct signer_fold {
	struct buf *b;
	size_t col;
};

/* signer_fold_break - continue on a new line */
static void
signer_fold_break(struct signer_fold *f)
{
	buf_add(f->b, "\r\n\t", 3);
	f->col = 8;
}

/* signer_fold_tag - "; " or a fold, then the tag */
static void
signer_fold_tag(struct signer_fold *f, const char *tag)
{
	size_t len = strlen(tag);

	if (f->b->len > 0) {
		buf_addch(f->b, ';');
		f->col++;
		if (f->col + 1 + len > SIGNER_WIDTH)
			signer_fold_break(f);
		else {
			buf_addch(f->b, ' ');
			f->col++;
		}
	}
	buf_add(f->b, tag, len);
	f->col += len;
}

/* signer_fold_hlist - "h=" and the names, breaking after colons */
static void
signer_fold_hlist(struct signer_fold *f, const char *list)
{
	const char *p = list;
	struct buf first = BUF_INIT;
	size_t len = strcspn(p, ":");

	/* "h=" stays with the first name and its colon, however long (FWS
	 * may stand only around the colons: RFC 6376 3.5 h=) */
	if (p[len] == ':')
		len++;
	buf_add(&first, "h=", 2);
	buf_add(&first, p, len);
	buf_addch(&first, '\0');
	signer_fold_tag(f, first.data);
	buf_release(&first);
	p += len;
	while (*p) {
		const char *colon = strchr(p, ':');
		size_t len = colon ? (size_t)(colon - p) + 1 : strlen(p);

		if (f->col + len > SIGNER_WIDTH && f->col > 8 + 2)
			signer_fold_break(f);
		buf_add(f->b, p, len);
		f->col += len;
		p += len;
	}
}

/*
 * signer_sign - the signature of a SHA-256 hash: RSASSA-PKCS1-v1_5 with
 * the SHA-256 DigestInfo (RFC 6376 3.3.1), or PureEdDSA over the hash
 * (RFC 8463 3). siglen is the buffer's size in, the signature's out.
 */
static int
signer_sign(const struct ag_key *k, const unsigned char *hash, unsigned hashlen,
    unsigned char *sig, size_t *siglen)
{
	EVP_PKEY_CTX *pc = NULL;
	EVP_MD_CTX *mc = NULL;
	int rc = -1;

	if ((size_t)EVP_PKEY_get_size(k->pkey) > *siglen)
		return -1;
	if (k->type == AG_KEY_ED25519) {
		if ((mc = EVP_MD_CTX_new()) != NULL &&
		    EVP_DigestSignInit(mc, NULL, NULL, NULL, k->pkey) == 1 &&
		    EVP_DigestSign(mc, sig, siglen, hash, hashlen) == 1)
			rc = 0;
		EVP_MD_CTX_free(mc);
		return rc;
	}
	if ((pc = EVP_PKEY_CTX_new(k->pkey, NULL)) != NULL &&
	    EVP_PKEY_sign_init(pc) == 1 &&
	    EVP_PKEY_CTX_set_rsa_padding(pc, RSA_PKCS1_PADDING) == 1 &&
	    EVP_PKEY_CTX_set_signature_md(pc, EVP_sha256()) == 1 &&
	    EVP_PKEY_sign(pc, sig, siglen, hash, hashlen) == 1)
		rc = 0;
	EVP_PKEY_CTX_free(pc);
	return rc;
}

/* signer_finish - bh=, the signature header, b= */
char *
signer_finish(struct signer *e, char *why, size_t whylen)
{
	unsigned char bh[EVP_MAX_MD_SIZE], hash[EVP_MAX_MD_SIZE];
	unsigned char sig[1024]; /* RSA up to 8192 bits, Ed25519 64 bytes */
	unsigned bhlen = 0, hashlen = 0;
	size_t siglen = sizeof(sig), i, n;
	struct buf h = BUF_INIT, v = BUF_INIT, c = BUF_INIT;
	struct signer_fold f = {&h, strlen("DKIM-Signature: ")};
	bool ed = e->key->type == AG_KEY_ED25519;
	char *tag, *b64, *out = NULL;

	if (e->cr)
		signer_char(e, '\r');
	e->cr = false;
	/* the last line's end: relaxed only if the body has content;
	 * simple always (an empty body is one CRLF) */
	if (e->any || !e->o.brelaxed)
		signer_put(e, "\r\n", 2);
	signer_flush(e);
	if (e->failed || EVP_DigestFinal_ex(e->bh, bh, &bhlen) != 1) {
		snprintf(why, whylen, "body hash failed");
		goto done;
	}
	signer_fold_tag(&f, "v=1");
	signer_fold_tag(&f, ed ? "a=ed25519-sha256" : "a=rsa-sha256");
	signer_fold_tag(&f,
	    e->o.hrelaxed
		? (e->o.brelaxed ? "c=relaxed/relaxed" : "c=relaxed/simple")
		: (e->o.brelaxed ? "c=simple/relaxed" : "c=simple/simple"));
	signer_fold_tag(&f,
	    (tag = arena_printf(e->arena, "d=%s", e->key->domain)) ? tag
								   : "d=");
	signer_fold_tag(&f,
	    (tag = arena_printf(e->arena, "s=%s", e->key->selector)) ? tag
								     : "s=");
	signer_fold_tag(&f,
	    (tag = arena_printf(
		 e->arena, "t=%llu", (unsigned long long)e->o.now))
		? tag
		: "t=0");
	if (e->o.ttl > 0 &&
	    (tag = arena_printf(e->arena, "x=%llu",
		 (unsigned long long)e->o.now + e->o.ttl)) != NULL)
		signer_fold_tag(&f, tag);
	if ((b64 = signer_b64(e->arena, bh, bhlen)) == NULL ||
	    (tag = arena_printf(e->arena, "bh=%s", b64)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto done;
	}
	signer_fold_tag(&f, tag);
	buf_addch(&e->hlist, '\0');
	signer_fold_hlist(&f, e->hlist.data);
	signer_fold_tag(&f, "b=");
	/* the header hash ends with this header, b= empty, no CRLF */
	buf_addch(&v, ' ');
	buf_add(&v, h.data, h.len);
	signer_canon_header(
	    &c, e->o.hrelaxed, "DKIM-Signature", 14, v.data, v.len);
	if (EVP_DigestUpdate(e->hh, c.data, c.len - 2) != 1 ||
	    EVP_DigestFinal_ex(e->hh, hash, &hashlen) != 1) {
		snprintf(why, whylen, "header hash failed");
		goto done;
	}
	if (signer_sign(e->key, hash, hashlen, sig, &siglen) == -1) {
		snprintf(
		    why, whylen, "%s signing failed", ed ? "Ed25519" : "RSA");
		goto done;
	}
	if ((b64 = signer_b64(e->arena, sig, siglen)) == NULL) {
		snprintf(why, whylen, "out of memory");
		goto done;
	}
	for (i = 0, n = strlen(b64); i < n;) {
		size_t room = f.col < SIGNER_WIDTH ? SIGNER_WIDTH - f.col : 0;

		if (room == 0) {
			signer_fold_break(&f);
			continue;
		}
		if (room > n - i)
			room = n - i;
		buf_add(&h, b64 + i, room);
		f.col += room;
		i += room;
	}
	/* the MTA wants "\n\t" folds: a CR would stay as a stray byte */
	if ((out = arena_alloc(e->arena, h.len + 1)) != NULL) {
		for (i = 0, n = 0; i < h.len; i++)
			if (h.data[i] != '\r')
				out[n++] = h.data[i];
		out[n] = '\0';
	} else
		snprintf(why, whylen, "out of memory");
done:
	buf_release(&h);
	buf_release(&v);
	buf_release(&c);
	return out;
}
