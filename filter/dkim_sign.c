/*
 * dkim_sign.c - DKIM signing with libopendkim (see dkim_sign.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <opendkim/dkim.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "keys.h"
#include "msgctx.h"
#include "rfc5322.h"
#include "dkim_edsign.h"
#include "dkim_int.h"
#include "dkim_tables.h"
#include "dkim_sign.h"

struct dkims_lib {
	DKIM_LIB *lib;
	struct dkimt *tables;
	char **signhdrs;     /* NULL-terminated, for libopendkim */
	char **oversignhdrs; /* NULL-terminated */
};

struct dkims_msg {
	DKIM *h[AG_DKIM_MAX_SIGN];	    /* RSA: libopendkim */
	struct dkime *ed[AG_DKIM_MAX_SIGN]; /* Ed25519: dkim_edsign.c */
	const struct ag_key *key[AG_DKIM_MAX_SIGN];
	size_t n;
};

/* dkims_strv - a config list as a NULL-terminated vector */
static char **
dkims_strv(const struct strlist *l)
{
	char **v = xcalloc(l->n + 1, sizeof(*v));
	size_t i;

	for (i = 0; i < l->n; i++)
		v[i] = l->v[i];
	return v;
}

/* dkims_load - tables, keys and a libopendkim instance for signing */
static int
dkims_load(struct snapshot *s, struct buf *err)
{
	const struct config *cfg = s->cfg;
	struct dkims_lib *dl;
	uint64_t ttl = (uint64_t)(cfg->dkim_signature_ttl_ms / 1000);
	/* FIXCRLF: bare LF ends a line, a missing final CRLF is added, as
	 * dkim_edsign.c does (an MTA always delivers CRLF anyway) */
	unsigned flags = DKIM_LIBFLAGS_DEFAULT | DKIM_LIBFLAGS_FIXCRLF;
	/* keys.c judged the sizes already (dkim_min_key_bits) */
	unsigned minbits = (unsigned)cfg->dkim_min_key_bits;

	if (!cfg->dkim_sign)
		return 0;
	if (cfg->key_table[0] == '\0' && cfg->signing_table[0] == '\0')
		return 0; /* nothing to sign with: verify only */
	if (cfg->key_table[0] == '\0' || cfg->signing_table[0] == '\0') {
		buf_addf(err, "%s: key_table and signing_table go together\n",
		    cfg->file[0] ? cfg->file : "config");
		return -1;
	}
	dl = xcalloc(1, sizeof(*dl));
	if ((dl->tables = dkimt_load(cfg->key_table, cfg->signing_table,
		 (int)cfg->dkim_min_key_bits, err)) == NULL) {
		free(dl);
		return -1;
	}
	dl->signhdrs = dkims_strv(&cfg->dkim_sign_headers);
	dl->oversignhdrs = dkims_strv(&cfg->dkim_oversign_headers);
	if ((dl->lib = dkim_init(NULL, NULL)) == NULL ||
	    dkim_options(dl->lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
		sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(dl->lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS,
		&minbits, sizeof(minbits)) != DKIM_STAT_OK ||
	    dkim_options(dl->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
		dl->signhdrs, sizeof(char **)) != DKIM_STAT_OK ||
	    dkim_options(dl->lib, DKIM_OP_SETOPT, DKIM_OPTS_OVERSIGNHDRS,
		dl->oversignhdrs, sizeof(char **)) != DKIM_STAT_OK ||
	    (ttl > 0 &&
		dkim_options(dl->lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNATURETTL,
		    &ttl, sizeof(ttl)) != DKIM_STAT_OK)) {
		buf_addf(
		    err, "dkim: libopendkim refused the signing options\n");
		if (dl->lib)
			dkim_close(dl->lib);
		dkimt_free(dl->tables);
		free(dl->signhdrs);
		free(dl->oversignhdrs);
		free(dl);
		return -1;
	}
	s->dkims = dl;
	return 0;
}

/* dkims_unload - release */
static void
dkims_unload(struct snapshot *s)
{
	struct dkims_lib *dl = s->dkims;

	if (dl == NULL)
		return;
	dkim_close(dl->lib);
	dkimt_free(dl->tables);
	free(dl->signhdrs);
	free(dl->oversignhdrs);
	free(dl);
	s->dkims = NULL;
}

/* dkims_from - the first From: mailbox, or -1 */
static int
dkims_from(struct msg *m, struct rfc5322_addr *a)
{
	const struct hdr *h;
	struct rfc5322_addr list[4];

	for (h = m->hdrs; h != NULL; h = h->next)
		if (str_caseeq_len(h->name, h->namelen, "From"))
			break;
	if (h == NULL ||
	    rfc5322_addr_list(m->arena, h->value, h->valuelen, list, 4) < 1)
		return -1;
	*a = list[0];
	return 0;
}

/* dkims_start - one signing handle per key, fed the headers */
static void
dkims_start(struct msg *m, const struct ag_key *const *keys, size_t n)
{
	const struct dkims_lib *dl = m->conn->snap->dkims;
	int canon = m->cfg->dkim_canon;
	dkim_canon_t hc =
	    (canon & 0x10) ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	dkim_canon_t bc =
	    (canon & 0x01) ? DKIM_CANON_RELAXED : DKIM_CANON_SIMPLE;
	const char *qid = m->qid[0] ? m->qid : "NOQUEUE";
	DKIM_STAT st;
	size_t i;
	DKIM *h;

	struct dkime_opts eo = {
	    .hrelaxed = (canon & 0x10) != 0,
	    .brelaxed = (canon & 0x01) != 0,
	    .signhdrs = dl->signhdrs,
	    .oversign = dl->oversignhdrs,
	    .ttl = (uint64_t)(m->cfg->dkim_signature_ttl_ms / 1000),
	    .now = time(NULL),
	};
	char why[256];

	for (i = 0; i < n; i++) {
		if (keys[i]->type == AG_KEY_ED25519) {
			struct dkime *e = dkime_start(
			    m->arena, keys[i], m->hdrs, &eo, why, sizeof(why));

			if (e == NULL) {
				msg_error(m, AG_ERR_KEY,
				    "dkim: signing with "
				    "%s: %s",
				    keys[i]->name, why);
				continue;
			}
			m->dkims->ed[m->dkims->n] = e;
			m->dkims->key[m->dkims->n++] = keys[i];
			continue;
		}
		h = dkim_sign(dl->lib, (const unsigned char *)qid, NULL,
		    (unsigned char *)keys[i]->pem,
		    (unsigned char *)keys[i]->selector,
		    (unsigned char *)keys[i]->domain, hc, bc,
		    DKIM_SIGN_RSASHA256, -1, &st);
		if (h == NULL) {
			msg_error(m, AG_ERR_KEY,
			    "dkim: cannot sign with key "
			    "%s: %s",
			    keys[i]->name, dkim_getresultstr(st));
			continue;
		}
		if (dkimv_handle_defer(m, h) == -1) {
			msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
			return;
		}
		if (dkimv_feed_headers(h, m) != DKIM_STAT_OK ||
		    dkim_eoh(h) != DKIM_STAT_OK) {
			msg_error(m, AG_ERR_KEY, "dkim: signing with %s: %s",
			    keys[i]->name,
			    dkim_geterror(h) ? dkim_geterror(h) : "error");
			continue;
		}
		m->dkims->h[m->dkims->n] = h;
		m->dkims->key[m->dkims->n++] = keys[i];
	}
}

/* dkims_on_eoh - internal mail of a signing domain: start signing */
static int
dkims_on_eoh(struct msg *m)
{
	const struct dkims_lib *dl = m->conn->snap->dkims;
	const struct ag_key *keys[AG_DKIM_MAX_SIGN];
	struct rfc5322_addr from;
	size_t n;

	/* never an open signer: only internal clients are signed for */
	if (dl == NULL || !m->internal)
		return 0;
	if (dkims_from(m, &from) == -1) {
		log_msg(m, LOG_NOTICE,
		    "dkim: no usable From: address, not "
		    "signing");
		return 0;
	}
	if ((n = dkimt_match(dl->tables, from.local, from.domain, keys,
		 AG_DKIM_MAX_SIGN)) == 0)
		return 0;
	if ((m->dkims = arena_zalloc(m->arena, sizeof(*m->dkims))) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
		return -1;
	}
	dkims_start(m, keys, n);
	return 0;
}

/* dkims_on_body - every signing handle hashes the chunk */
static int
dkims_on_body(struct msg *m, const unsigned char *p, size_t len)
{
	size_t i;

	if (m->dkims == NULL)
		return 0;
	for (i = 0; i < m->dkims->n; i++)
		if (m->dkims->ed[i] != NULL)
			dkime_body(m->dkims->ed[i], p, len);
		else
			dkim_body(m->dkims->h[i], (unsigned char *)p, len);
	return 0;
}

/* dkims_header_value - libopendkim's folds ("\r\n\t") as the MTA wants
 * them ("\n\t": a CR would be kept as a stray byte) */
static char *
dkims_header_value(struct msg *m, const unsigned char *v, size_t len)
{
	char *out = arena_alloc(m->arena, len + 1);
	size_t i, n = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		if (v[i] != '\r')
			out[n++] = (char)v[i];
	out[n] = '\0';
	return out;
}

/* dkims_on_eom - the signatures */
static int
dkims_on_eom(struct msg *m)
{
	struct buf done = BUF_INIT;
	unsigned char *sig;
	size_t i, len;
	char *v;

	if (m->dkims == NULL)
		return 0;
	for (i = 0; i < m->dkims->n; i++) {
		DKIM *h = m->dkims->h[i];
		const struct ag_key *k = m->dkims->key[i];
		char why[256];

		if (m->dkims->ed[i] != NULL) {
			if ((v = dkime_finish(
				 m->dkims->ed[i], why, sizeof(why))) == NULL) {
				msg_error(m, AG_ERR_KEY,
				    "dkim: signing with %s "
				    "failed: %s",
				    k->name, why);
				continue;
			}
			msg_add_header(m, "DKIM-Signature", v);
			buf_addf(&done, "%s%s:%s", done.len ? "," : "",
			    k->domain, k->selector);
			continue;
		}
		if (dkim_eom(h, NULL) != DKIM_STAT_OK ||
		    dkim_getsighdr_d(h, strlen("DKIM-Signature: "), &sig,
			&len) != DKIM_STAT_OK) {
			msg_error(m, AG_ERR_KEY,
			    "dkim: signing with %s failed: "
			    "%s",
			    k->name,
			    dkim_geterror(h) ? dkim_geterror(h) : "error");
			continue;
		}
		if ((v = dkims_header_value(m, sig, len)) == NULL) {
			msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
			break;
		}
		msg_add_header(m, "DKIM-Signature", v);
		buf_addf(&done, "%s%s:%s", done.len ? "," : "", k->domain,
		    k->selector);
	}
	if (done.len)
		m->dkim_signed = arena_memdup(m->arena, done.data, done.len);
	buf_release(&done);
	return 0;
}

const struct check dkims_check = {
    .name = "dkim_sign",
    .load = dkims_load,
    .unload = dkims_unload,
    .on_eoh = dkims_on_eoh,
    .on_body = dkims_on_body,
    .on_eom = dkims_on_eom,
};
