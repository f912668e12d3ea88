/*
 * dkim_sign.c - the DKIM signing check (see dkim_sign.h); the signatures
 * are made by dkim_signer.c.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "keys.h"
#include "msgctx.h"
#include "rfc5322.h"
#include "dkim_signer.h"
#include "dkim_tables.h"
#include "dkim_sign.h"

struct dkims_lib {
	struct dkimt *tables;
	char **signhdrs;     /* NULL-terminated */
	char **oversignhdrs; /* NULL-terminated */
};

struct dkims_msg {
	struct signer *sig[AG_DKIM_MAX_SIGN];
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

/* dkims_load - tables and keys for signing */
static int
dkims_load(struct snapshot *s, struct buf *err)
{
	const struct config *cfg = s->cfg;
	struct dkims_lib *dl;

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

/* dkims_start - one signer per key, the headers hashed */
static void
dkims_start(struct msg *m, const struct ag_key *const *keys, size_t n)
{
	const struct dkims_lib *dl = m->conn->snap->dkims;
	int canon = m->cfg->dkim_canon;
	struct signer_opts o = {
	    .hrelaxed = (canon & 0x10) != 0,
	    .brelaxed = (canon & 0x01) != 0,
	    .signhdrs = dl->signhdrs,
	    .oversign = dl->oversignhdrs,
	    .ttl = (uint64_t)(m->cfg->dkim_signature_ttl_ms / 1000),
	    .now = time(NULL),
	};
	char why[256];
	size_t i;

	for (i = 0; i < n; i++) {
		struct signer *sg = signer_start(
		    m->arena, keys[i], m->hdrs, &o, why, sizeof(why));

		if (sg == NULL) {
			msg_error(m, AG_ERR_KEY, "dkim: signing with %s: %s",
			    keys[i]->name, why);
			continue;
		}
		m->dkims->sig[m->dkims->n] = sg;
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

/* dkims_on_body - every signer hashes the chunk */
static int
dkims_on_body(struct msg *m, const unsigned char *p, size_t len)
{
	size_t i;

	if (m->dkims == NULL)
		return 0;
	for (i = 0; i < m->dkims->n; i++)
		signer_body(m->dkims->sig[i], p, len);
	return 0;
}

/* dkims_on_eom - the signatures */
static int
dkims_on_eom(struct msg *m)
{
	struct buf done = BUF_INIT;
	char why[256], *v;
	size_t i;

	if (m->dkims == NULL)
		return 0;
	for (i = 0; i < m->dkims->n; i++) {
		const struct ag_key *k = m->dkims->key[i];

		if ((v = signer_finish(m->dkims->sig[i], why, sizeof(why))) ==
		    NULL) {
			msg_error(m, AG_ERR_KEY,
			    "dkim: signing with %s failed: "
			    "%s",
			    k->name, why);
			continue;
		}
		msg_add_header(m, "DKIM-Signature", v);
		buf_addf(&done, "%s%s:%s", done.len ? "," : "", k->domain,
		    k->selector);
	}
	if (done.len)
		m->dkim_signed =
		    arena_memdup(m->arena, done.data, done.len + 1);
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
