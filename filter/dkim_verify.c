/*
 * dkim_verify.c - DKIM verification with libopendkim (see dkim_verify.h).
 */
#include <sys/types.h>
#include <sys/time.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <opendkim/dkim.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "msgctx.h"
#include "dkim_verify.h"

struct dkimv_lib {
	DKIM_LIB *lib;
};

#define DKIMV_MAX_REFUSED 8 /* refused signatures reported one by one */

struct dkimv_msg {
	DKIM *h;
	unsigned nsigs; /* DKIM-Signature headers seen */
	bool done;	/* the body is no longer needed */
	/* signatures kept from libopendkim (a malformed i=), in header
	 * order; the first DKIMV_MAX_REFUSED are reported one by one */
	const struct hdr **refused;
	size_t nref, capref;
	struct dkim_outcome refused_o[DKIMV_MAX_REFUSED];
	size_t nrefused;
	unsigned more_refused;
	/* key names the message's DNS budget refused at their header: their
	 * signatures are not verified (libopendkim's own lookup at the end
	 * would go past the budget) */
	const char **nobudget;
	size_t nnobudget;
	unsigned more_nobudget;
};

#define DKIMV_NOBUDGET_WHY                         \
	"DNS query budget of the message used up " \
	"(dns_max_queries_per_message)"

/* One DNS query libopendkim started through our hooks. */
struct dkimv_query {
	struct dns_query *q;
	unsigned char *buf; /* where libopendkim wants the reply packet */
	size_t buflen;
	char name[AG_DNS_MAX_NAME + 2];
	int type;
};

/*
 * The budget of the message whose dkim_eom() runs in this thread:
 * libopendkim's DNS hooks get only the library's query service, and the
 * key it asks for is the one dkimv_on_header() started, so the hook must
 * ask under the message's budget to be answered from its memo.
 */
static __thread struct dns_budget *dkimv_budget;

/*
 * dkimv_qp_ok - is v valid dkim-quoted-printable (RFC 6376 2.11): every
 * "=" followed by two hex digits? libopendkim's decoder reads past the
 * end of a value that ends in "=" or "=X", so such a signature is never
 * handed to it.
 */
static bool
dkimv_qp_ok(const char *v)
{
	for (; v != NULL && *v; v++)
		if (*v == '=' &&
		    (strchr("0123456789ABCDEF", v[1]) == NULL || v[1] == '\0' ||
			strchr("0123456789ABCDEF", v[2]) == NULL ||
			v[2] == '\0'))
			return false;
	return true;
}

/* dkimv_feed_headers - every stored header as "Name:value" (the value as
 * the MTA sent it: leading space and CRLF folds kept) */
static DKIM_STAT
dkimv_feed_headers(DKIM *h, const struct msg *m)
{
	const struct hdr *hd;
	struct buf b = BUF_INIT;
	DKIM_STAT st = DKIM_STAT_OK, rc;

	size_t r = 0;

	for (hd = m->hdrs; hd != NULL; hd = hd->next) {
		/* refused ones are listed in header order */
		if (m->dkimv != NULL && r < m->dkimv->nref &&
		    m->dkimv->refused[r] == hd) {
			r++;
			continue;
		}
		buf_reset(&b);
		buf_add(&b, hd->name, hd->namelen);
		buf_addch(&b, ':');
		buf_add(&b, hd->value, hd->valuelen);
		rc = dkim_header(h, (unsigned char *)b.data, b.len);
		if (rc != DKIM_STAT_OK && st == DKIM_STAT_OK)
			st = rc;
	}
	buf_release(&b);
	return st;
}

/* dkim_handle_free - arena destructor */
static void
dkim_handle_free(void *arg)
{
	dkim_free(arg);
}

/* dkimv_handle_defer - free a handle with the message */
static int
dkimv_handle_defer(struct msg *m, DKIM *h)
{
	if (arena_defer(m->arena, dkim_handle_free, h) == -1) {
		dkim_free(h);
		return -1;
	}
	return 0;
}

/* dkimv_wire_name - a name in DNS wire form; its length or -1 */
static int
dkimv_wire_name(const char *name, unsigned char *out, size_t outlen)
{
	size_t n = 0;

	while (*name) {
		const char *dot = strchr(name, '.');
		size_t l = dot ? (size_t)(dot - name) : strlen(name);

		if (l == 0 || l > 63 || n + l + 2 > outlen)
			return -1;
		out[n++] = (unsigned char)l;
		memcpy(out + n, name, l);
		n += l;
		name += l + (dot ? 1 : 0);
	}
	if (n + 1 > outlen)
		return -1;
	out[n++] = 0;
	return (int)n;
}

/* dkimv_put16 - big-endian 16 bits */
static void
dkimv_put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/*
 * dkimv_packet - the DNS reply libopendkim parses: header, the question,
 * and the answer's records (RFC 1035 4.1). -1 if it does not fit.
 */
static int
dkimv_packet(struct dkimv_query *q, const struct dns_answer *a, size_t *len)
{
	unsigned char *p = q->buf;
	size_t n = 12, i;
	int qn;
	unsigned rcode =
	    a->rc == AG_DNS_NXDOMAIN || a->rc == AG_DNS_BADNAME ? 3 : 0;
	unsigned ancount = a->rc == AG_DNS_OK ? a->nrr : 0;

	if (q->buflen < 12)
		return -1;
	memset(p, 0, 12);
	p[2] = 0x81;			      /* QR, RD */
	p[3] = (unsigned char)(0x80 | rcode); /* RA */
	dkimv_put16(p + 4, 1);
	dkimv_put16(p + 6, ancount);
	if ((qn = dkimv_wire_name(q->name, p + n, q->buflen - n)) == -1 ||
	    n + (size_t)qn + 4 > q->buflen)
		return -1;
	n += (size_t)qn;
	dkimv_put16(p + n, (unsigned)q->type);
	dkimv_put16(p + n + 2, 1); /* IN */
	n += 4;
	for (i = 0; i < ancount; i++) {
		const struct dns_rr *r = &a->rr[i];

		if (n + 12 + r->len > q->buflen || r->len > 65535)
			return -1;
		p[n] = 0xc0; /* the name: a pointer to the question's */
		p[n + 1] = 12;
		dkimv_put16(p + n + 2, (unsigned)q->type);
		dkimv_put16(p + n + 4, 1);
		p[n + 6] = (unsigned char)(a->ttl >> 24);
		p[n + 7] = (unsigned char)(a->ttl >> 16);
		p[n + 8] = (unsigned char)(a->ttl >> 8);
		p[n + 9] = (unsigned char)a->ttl;
		dkimv_put16(p + n + 10, (unsigned)r->len);
		memcpy(p + n + 12, r->data, r->len);
		n += 12 + r->len;
	}
	*len = n;
	return 0;
}

/* dkimv_dns_start - libopendkim's query_start hook: start it in dns.c */
static int
dkimv_dns_start(void *srv, int type, unsigned char *query, unsigned char *buf,
    size_t buflen, void **qh)
{
	struct dkimv_query *q = xcalloc(1, sizeof(*q));

	snprintf(q->name, sizeof(q->name), "%s", (char *)query);
	q->type = type;
	q->buf = buf;
	q->buflen = buflen;
	q->q = dns_query_start(srv, dkimv_budget, q->name, type);
	*qh = q;
	return DKIM_DNS_SUCCESS;
}

/* dkimv_dns_cancel - libopendkim is done with a query */
static int
dkimv_dns_cancel(void *srv, void *qh)
{
	struct dkimv_query *q = qh;

	(void)srv;
	dns_query_free(q->q);
	free(q);
	return DKIM_DNS_SUCCESS;
}

/* dkimv_dns_waitreply - the answer, as a packet; our deadline applies */
static int
dkimv_dns_waitreply(void *srv, void *qh, struct timeval *to, size_t *bytes,
    int *error, int *dnssec)
{
	struct dkimv_query *q = qh;
	const struct dns_answer *a;
	enum ag_dns_rc rc;

	(void)srv;
	(void)to; /* dns_timeout, enforced by dns_query_wait */
	rc = dns_query_wait(q->q, &a);
	if (error)
		*error = 0;
	if (dnssec)
		*dnssec = a->secure ? DKIM_DNSSEC_SECURE : DKIM_DNSSEC_UNKNOWN;
	switch (rc) {
	case AG_DNS_OK:
	case AG_DNS_NODATA:
	case AG_DNS_NXDOMAIN:
	case AG_DNS_BADNAME:
		/* an empty answer in a packet reads as "no key": permanent */
		return dkimv_packet(q, a, bytes) == 0 ? DKIM_DNS_SUCCESS
						      : DKIM_DNS_ERROR;
	case AG_DNS_TIMEOUT:
		return DKIM_DNS_EXPIRED;
	default:
		/* SERVFAIL and the like: the key is unknown for now */
		return DKIM_DNS_ERROR;
	}
}

/* dkimv_dns_close - libopendkim would res_nclose() its service handle;
 * ours is the snapshot's resolver, which the snapshot owns */
static void
dkimv_dns_close(void *srv)
{
	(void)srv;
}

/* dkimv_dns_init - nothing to set up: the resolver exists already */
static int
dkimv_dns_init(void **srv)
{
	(void)srv;
	return 0;
}

/* dkimv_dns_config - libopendkim's resolver settings do not apply */
static int
dkimv_dns_config(void *srv, const char *conf)
{
	(void)srv;
	(void)conf;
	return 0;
}

/* dkimv_own - a signature judged here, reported after libopendkim's;
 * false when the list is full (the caller counts it) */
static bool
dkimv_own(struct dkimv_msg *v, const char *d, const char *s, const char *reason)
{
	struct dkim_outcome *o;

	if (v->nrefused == DKIMV_MAX_REFUSED)
		return false;
	o = &v->refused_o[v->nrefused++];
	memset(o, 0, sizeof(*o));
	o->result = AG_DKIM_PERMERROR;
	o->domain = d;
	o->selector = s;
	o->l = -1;
	o->reason = reason;
	return true;
}

/* dkimv_over_budget - was this signature's key refused by the budget? */
static bool
dkimv_over_budget(struct msg *m, const char *d, const char *s)
{
	const struct dkimv_msg *v = m->dkimv;
	const char *name;
	size_t i;

	if (v->nnobudget == 0 || d == NULL || s == NULL ||
	    (name = arena_printf(m->arena, "%s._domainkey.%s", s, d)) == NULL)
		return false;
	for (i = 0; i < v->nnobudget; i++)
		if (str_casecmp(v->nobudget[i], name) == 0)
			return true;
	return false;
}

/* dkimv_prescreen - verify at most dkim_max_signatures, the rest not, and
 * none whose key lookup the message's DNS budget refused */
static DKIM_CBSTAT
dkimv_prescreen(DKIM *h, DKIM_SIGINFO **sigs, int nsigs)
{
	struct msg *m = dkim_get_user_context(h);
	const char *d, *s;
	int i;

	for (i = 0; i < nsigs; i++) {
		if (i >= (int)m->cfg->dkim_max_signatures) {
			dkim_sig_ignore(sigs[i]);
			m->dkim_unchecked++;
			continue;
		}
		d = (const char *)dkim_sig_getdomain(sigs[i]);
		s = (const char *)dkim_sig_getselector(sigs[i]);
		if (!dkimv_over_budget(m, d, s))
			continue;
		dkim_sig_ignore(sigs[i]);
		if (!dkimv_own(m->dkimv, arena_strdup(m->arena, d),
			arena_strdup(m->arena, s), DKIMV_NOBUDGET_WHY))
			m->dkimv->more_nobudget++;
	}
	return DKIM_CBSTAT_CONTINUE;
}

/* dkimv_load - a libopendkim instance for this configuration */
static int
dkimv_load(struct snapshot *s, struct buf *err)
{
	const struct config *cfg = s->cfg;
	/* no FIXCRLF: a bare CR inside a line is content (RFC 6376 3.4.4
	 * counts CRLF only), as for dkimpy and our signer */
	/* DELAYSIGPROC: keys are fetched and signatures checked in
	 * dkim_eom(), not dkim_eoh(): waiting for a key at the end of the
	 * headers held up the body, and the DNSBL lookups of its URIs */
	unsigned flags =
	    DKIM_LIBFLAGS_BADSIGHANDLES | DKIM_LIBFLAGS_DELAYSIGPROC;
	unsigned secs = (unsigned)((cfg->dns_timeout_ms + 999) / 1000);
	unsigned minbits = 0;
	DKIM_LIB *lib;

	if (!cfg->dkim_verify)
		return 0;
	if ((lib = dkim_init(NULL, NULL)) == NULL) {
		buf_addf(err, "dkim: cannot start libopendkim\n");
		return -1;
	}
	/* we judge key sizes ourselves (dkim_min_key_bits, dkim_weak_key) */
	if (dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_FLAGS, &flags,
		sizeof(flags)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_MINKEYBITS, &minbits,
		sizeof(minbits)) != DKIM_STAT_OK ||
	    dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_TIMEOUT, &secs,
		sizeof(secs)) != DKIM_STAT_OK) {
		buf_addf(err, "dkim: libopendkim refused an option\n");
		dkim_close(lib);
		return -1;
	}
	/* every lookup through dns.c: none of libopendkim's resolver */
	dkim_dns_set_init(lib, dkimv_dns_init);
	dkim_dns_set_close(lib, dkimv_dns_close);
	dkim_dns_set_config(lib, dkimv_dns_config);
	dkim_dns_set_nslist(lib, dkimv_dns_config);
	dkim_dns_set_trustanchor(lib, dkimv_dns_config);
	dkim_dns_set_query_service(lib, s->dns);
	dkim_dns_set_query_start(lib, dkimv_dns_start);
	dkim_dns_set_query_cancel(lib, dkimv_dns_cancel);
	dkim_dns_set_query_waitreply(lib, dkimv_dns_waitreply);
	dkim_set_prescreen(lib, dkimv_prescreen);
	s->dkimv = xcalloc(1, sizeof(*s->dkimv));
	s->dkimv->lib = lib;
	return 0;
}

/* dkimv_unload - close the instance */
static void
dkimv_unload(struct snapshot *s)
{
	if (s->dkimv == NULL)
		return;
	dkim_close(s->dkimv->lib);
	free(s->dkimv);
	s->dkimv = NULL;
}

/* dkimv_wanted - is this message's DKIM verified? */
static bool
dkimv_wanted(const struct msg *m)
{
	return m->conn->snap->dkimv != NULL && !m->internal;
}

/* dkimv_tag - the value of tag t in a tag list (RFC 6376 3.2), arena copy */
static char *
dkimv_tag(struct msg *m, const char *v, size_t len, const char *t)
{
	size_t i = 0, tl = strlen(t);

	while (i < len) {
		size_t start, vs, ve;

		while (i < len &&
		    (str_isspace((unsigned char)v[i]) || v[i] == ';'))
			i++;
		start = i;
		while (i < len && v[i] != '=' && v[i] != ';')
			i++;
		if (i >= len || v[i] != '=') {
			while (i < len && v[i] != ';')
				i++;
			continue;
		}
		ve = i;
		while (ve > start && str_isspace((unsigned char)v[ve - 1]))
			ve--;
		vs = ++i;
		while (i < len && v[i] != ';')
			i++;
		if (ve - start == tl && memcmp(v + start, t, tl) == 0) {
			const char *p = v + vs;
			size_t pl = i - vs;

			str_trim(&p, &pl);
			return arena_strndup(m->arena, p, pl);
		}
	}
	return NULL;
}

/* dkimv_i_ok - at most one i= and it is dkim-quoted-printable (RFC 6376
 * 3.2: no tag twice; 2.11); libopendkim would decode the last one */
static bool
dkimv_i_ok(struct msg *m, const char *v, size_t len)
{
	size_t i = 0, n = 0;

	while (i < len) {
		size_t start, vs, ve;

		while (i < len &&
		    (str_isspace((unsigned char)v[i]) || v[i] == ';'))
			i++;
		start = i;
		while (i < len && v[i] != '=' && v[i] != ';')
			i++;
		if (i >= len || v[i] != '=') {
			while (i < len && v[i] != ';')
				i++;
			continue;
		}
		ve = i;
		while (ve > start && str_isspace((unsigned char)v[ve - 1]))
			ve--;
		vs = ++i;
		while (i < len && v[i] != ';')
			i++;
		if (ve - start == 1 && v[start] == 'i') {
			const char *p = v + vs;
			size_t pl = i - vs;

			str_trim(&p, &pl);
			if (++n > 1 ||
			    !dkimv_qp_ok(arena_strndup(m->arena, p, pl)))
				return false;
		}
	}
	return true;
}

/* dkimv_refuse - keep a signature from libopendkim, report it ourselves */
static int
dkimv_refuse(struct msg *m, const struct hdr *h, const char *d, const char *s)
{
	struct dkimv_msg *v = m->dkimv;

	if (v->nref == v->capref) {
		size_t cap = v->capref ? 2 * v->capref : 8;
		const struct hdr **n =
		    arena_allocarray(m->arena, cap, sizeof(*n));

		if (n == NULL)
			return -1;
		if (v->nref > 0)
			memcpy(n, v->refused, v->nref * sizeof(*n));
		v->refused = n;
		v->capref = cap;
	}
	v->refused[v->nref++] = h;
	if (!dkimv_own(v, d, s,
		"i= given twice or not dkim-quoted-printable (RFC 6376 "
		"3.2, 2.11)"))
		v->more_refused++;
	return 0;
}

/* dkimv_budget_refused - did the budget refuse this key lookup? (the
 * others are left running: their answers are ready at eom) */
static bool
dkimv_budget_refused(struct dns_query *q)
{
	const struct dns_answer *a;

	return q != NULL && dns_query_ready(q) &&
	    dns_query_wait(q, &a) == AG_DNS_BUDGET;
}

/* dkimv_note_nobudget - remember a key name the budget refused */
static void
dkimv_note_nobudget(struct msg *m, const char *name)
{
	struct dkimv_msg *v = m->dkimv;

	if (v->nobudget == NULL &&
	    (v->nobudget = arena_allocarray(m->arena,
		 (size_t)m->cfg->dkim_max_signatures, sizeof(*v->nobudget))) ==
		NULL) {
		msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
		return;
	}
	if (v->nnobudget < (size_t)m->cfg->dkim_max_signatures)
		v->nobudget[v->nnobudget++] = name;
}

/* dkimv_on_header - note signatures, start their key lookups now */
static int
dkimv_on_header(struct msg *m, const struct hdr *h)
{
	char *d, *s, *name;

	if (!dkimv_wanted(m) ||
	    !str_caseeq_len(h->name, h->namelen, "DKIM-Signature"))
		return 0;
	if (m->dkimv == NULL &&
	    (m->dkimv = arena_zalloc(m->arena, sizeof(*m->dkimv))) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
		return -1;
	}
	d = dkimv_tag(m, h->value, h->valuelen, "d");
	s = dkimv_tag(m, h->value, h->valuelen, "s");
	if (!dkimv_i_ok(m, h->value, h->valuelen)) {
		if (dkimv_refuse(m, h, d, s) == -1) {
			msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
			return -1;
		}
		return 0;
	}
	if (++m->dkimv->nsigs > m->cfg->dkim_max_signatures)
		return 0;
	if (d != NULL && s != NULL && *d && *s &&
	    (name = arena_printf(m->arena, "%s._domainkey.%s", s, d)) != NULL &&
	    dkimv_budget_refused(msg_dns_start(m, name, AG_DNS_T_TXT)))
		dkimv_note_nobudget(m, name);
	return 0;
}

/* dkimv_on_eoh - a handle, fed the headers, if the message is signed */
static int
dkimv_on_eoh(struct msg *m)
{
	DKIM_STAT st;
	DKIM *h;

	if (!dkimv_wanted(m) || m->dkimv == NULL)
		return 0;
	h = dkim_verify(m->conn->snap->dkimv->lib,
	    (unsigned char *)(m->qid[0] ? m->qid : "NOQUEUE"), NULL, &st);
	if (h == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "dkim: dkim_verify: %s",
		    dkim_getresultstr(st));
		return -1;
	}
	if (dkimv_handle_defer(m, h) == -1) {
		msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
		return -1;
	}
	dkim_set_user_context(h, m);
	m->dkimv->h = h;
	dkimv_feed_headers(h, m);
	dkimv_budget = &m->dns_budget;
	st = dkim_eoh(h);
	dkimv_budget = NULL;
	if (st != DKIM_STAT_OK)
		m->dkimv->done = true; /* no usable signature: eom reports */
	return 0;
}

/* dkimv_on_body - hash as it streams */
static int
dkimv_on_body(struct msg *m, const unsigned char *p, size_t len)
{
	DKIM_STAT st;

	if (m->dkimv == NULL || m->dkimv->h == NULL || m->dkimv->done)
		return 0;
	st = dkim_body(m->dkimv->h, (unsigned char *)p, len);
	if (st == DKIM_STAT_CBREJECT || st == DKIM_STAT_INVALID)
		m->dkimv->done = true;
	return 0;
}

/* dkimv_sig_error - one signature's error, as a result and a reason */
static enum ag_dkim_result
dkimv_sig_error(int e, const char **why)
{
	*why = dkim_sig_geterrorstr(e);
	switch (e) {
	case DKIM_SIGERROR_BADSIG:
		return AG_DKIM_FAIL;
	case DKIM_SIGERROR_KEYFAIL:
		return AG_DKIM_TEMPERROR;
	case DKIM_SIGERROR_NOKEY:
	case DKIM_SIGERROR_KEYREVOKED:
	case DKIM_SIGERROR_KEYDECODE:
	case DKIM_SIGERROR_KEYTYPEMISSING:
	case DKIM_SIGERROR_KEYTYPEUNKNOWN:
	case DKIM_SIGERROR_KEYVERSION:
	case DKIM_SIGERROR_KEYUNKNOWNHASH:
	case DKIM_SIGERROR_KEYHASHMISMATCH:
	case DKIM_SIGERROR_NOTEMAILKEY:
	case DKIM_SIGERROR_DNSSYNTAX:
	case DKIM_SIGERROR_MULTIREPLY:
		return AG_DKIM_PERMERROR;
	case DKIM_SIGERROR_KEYTOOSMALL:
		return AG_DKIM_POLICY;
	case DKIM_SIGERROR_TOOLARGE_L:
		return AG_DKIM_FAIL;
	default:
		/* syntax of the signature, expired, future, ... */
		return AG_DKIM_NEUTRAL;
	}
}

/*
 * dkimv_key_fits - does the key record's k= (default rsa) name the key
 * type of the signature's algorithm? libopendkim decodes the key by the
 * signature's a= alone, so an "ed25519" record holding an RSA key would
 * pass without this.
 */
static bool
dkimv_key_fits(DKIM_SIGINFO *sig, dkim_alg_t alg)
{
	const char *k =
	    (const char *)dkim_sig_gettagvalue(sig, true, (unsigned char *)"k");

	if (k == NULL || *k == '\0')
		k = "rsa";
	if (alg == DKIM_SIGN_ED25519SHA256)
		return str_casecmp(k, "ed25519") == 0;
	return str_casecmp(k, "rsa") == 0;
}

/* dkimv_judge - result of one signature, our policies applied */
static void
dkimv_judge(struct msg *m, DKIM *h, DKIM_SIGINFO *sig, struct dkim_outcome *o)
{
	const struct config *cfg = m->cfg;
	unsigned int bits = 0;
	unsigned int flags = dkim_sig_getflags(sig);
	int bh = dkim_sig_getbh(sig), e = dkim_sig_geterror(sig);
	dkim_alg_t alg = DKIM_SIGN_UNKNOWN;
	ssize_t msglen, canonlen, signlen = -1;

	dkim_sig_getsignalg(sig, &alg);
	if (dkim_sig_getkeysize(sig, &bits) == DKIM_STAT_OK)
		o->bits = (int)bits;
	if (dkim_sig_getcanonlen(h, sig, &msglen, &canonlen, &signlen) ==
		DKIM_STAT_OK &&
	    signlen >= 0)
		o->l = signlen;
	if ((flags & DKIM_SIGFLAG_IGNORE) != 0) {
		o->result = AG_DKIM_NONE;
		return;
	}
	if ((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MATCH) {
		o->result = AG_DKIM_PASS;
	} else if ((flags & DKIM_SIGFLAG_PASSED) && bh == DKIM_SIGBH_MISMATCH) {
		o->result = AG_DKIM_FAIL;
		o->reason = "body hash mismatch";
		return;
	} else if (e == DKIM_SIGERROR_OK || e == DKIM_SIGERROR_UNKNOWN) {
		o->result = (flags & DKIM_SIGFLAG_PROCESSED)
		    ? AG_DKIM_FAIL
		    : AG_DKIM_PERMERROR;
		o->reason = (flags & DKIM_SIGFLAG_PROCESSED)
		    ? "signature verification failed"
		    : "signature not processed";
		return;
	} else {
		o->result = dkimv_sig_error(e, &o->reason);
		return;
	}
	/* it verifies: now what this site accepts (RFC 8301, our config) */
	if (!dkimv_key_fits(sig, alg)) {
		/* RFC 6376 6.1.3 (6): the key is not for this algorithm */
		o->result = AG_DKIM_PERMERROR;
		o->reason = "key type (k=) does not match the algorithm";
	} else if (alg == DKIM_SIGN_RSASHA1) {
		o->result = cfg->dkim_sha1_fail ? AG_DKIM_FAIL : AG_DKIM_POLICY;
		o->reason = "rsa-sha1 is not accepted (RFC 8301)";
	} else if (alg != DKIM_SIGN_ED25519SHA256 &&
	    o->bits < cfg->dkim_min_key_bits) {
		o->result =
		    cfg->dkim_weak_key_fail ? AG_DKIM_FAIL : AG_DKIM_POLICY;
		o->reason = arena_printf(m->arena,
		    "%d-bit key is below "
		    "dkim_min_key_bits",
		    o->bits);
	} else if (o->l >= 0 && cfg->dkim_l_fail) {
		o->result = AG_DKIM_FAIL;
		o->reason = "body length limit (l=) not accepted";
	}
}

/* dkimv_ar - the A-R result of one signature */
static void
dkimv_ar(struct msg *m, const struct dkim_outcome *o)
{
	struct ar_result *r;

	if ((r = msg_ar_new(m, "dkim", msg_dkim_result_name(o->result))) ==
	    NULL)
		return;
	if (o->result != AG_DKIM_PASS)
		r->reason = o->reason;
	if (o->result == AG_DKIM_PASS && o->l >= 0)
		r->comment = arena_printf(m->arena,
		    "body length limited to "
		    "%lld bytes by l=",
		    o->l);
	else if (o->bits > 0 && o->result == AG_DKIM_PASS)
		r->comment = arena_printf(m->arena, "%d-bit key", o->bits);
	msg_ar_prop(m, r, "header", "d", o->domain);
	msg_ar_prop(m, r, "header", "i", o->identity);
	msg_ar_prop(m, r, "header", "s", o->selector);
	msg_ar_prop(m, r, "header", "a", o->algorithm);
	msg_ar_prop(m, r, "header", "b", o->b);
	msg_ar_add(m, r);
}

/* dkimv_b8 - the first 8 characters of b= (folding white space out),
 * enough to tell several signatures apart (RFC 6008) */
static const char *
dkimv_b8(struct msg *m, const char *bv)
{
	char out[9];
	size_t n = 0;

	if (bv == NULL)
		return NULL;
	for (; *bv && n < 8; bv++)
		if (!str_isspace((unsigned char)*bv))
			out[n++] = *bv;
	out[n] = '\0';
	return arena_strdup(m->arena, out);
}

/* dkimv_collect - every signature into m->dkim and A-R */
static void
dkimv_collect(struct msg *m, DKIM *h)
{
	DKIM_SIGINFO **sigs;
	unsigned char idbuf[256];
	int nsigs = 0, i;
	const char *bv;

	if (dkim_getsiglist(h, &sigs, &nsigs) != DKIM_STAT_OK || nsigs <= 0)
		return;
	m->dkim = arena_allocarray(m->arena, (size_t)nsigs, sizeof(*m->dkim));
	if (m->dkim == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
		return;
	}
	for (i = 0; i < nsigs; i++) {
		struct dkim_outcome *o = &m->dkim[m->ndkim];

		memset(o, 0, sizeof(*o));
		o->l = -1;
		dkimv_judge(m, h, sigs[i], o);
		if (o->result == AG_DKIM_NONE)
			continue; /* not checked: counted in dkim_unchecked */
		o->domain = (const char *)dkim_sig_getdomain(sigs[i]);
		o->selector = (const char *)dkim_sig_getselector(sigs[i]);
		/* the signature's own a=: libopendkim's algorithm is only
		 * meaningful once it parsed a= (it says rsa-sha1 otherwise) */
		o->algorithm = (const char *)dkim_sig_gettagvalue(
		    sigs[i], false, (unsigned char *)"a");
		bv = (const char *)dkim_sig_gettagvalue(
		    sigs[i], false, (unsigned char *)"b");
		o->b = dkimv_b8(m, bv);
		if (dkim_sig_getidentity(h, sigs[i], idbuf, sizeof(idbuf)) ==
			DKIM_STAT_OK &&
		    dkim_sig_gettagvalue(
			sigs[i], false, (unsigned char *)"i") != NULL)
			o->identity = arena_strdup(m->arena, (char *)idbuf);
		/* libopendkim's strings die with the handle: keep copies */
		o->domain =
		    o->domain ? arena_strdup(m->arena, o->domain) : NULL;
		o->selector =
		    o->selector ? arena_strdup(m->arena, o->selector) : NULL;
		o->algorithm =
		    o->algorithm ? arena_strdup(m->arena, o->algorithm) : NULL;
		if (o->result == AG_DKIM_TEMPERROR)
			msg_error(m, AG_ERR_DNS, "dkim: key of %s unavailable",
			    o->domain ? log_safe(m, o->domain) : "?");
		m->ndkim++;
	}
}

/* dkimv_add_refused - the signatures we kept from libopendkim, after
 * the ones it checked */
static void
dkimv_add_refused(struct msg *m)
{
	struct dkimv_msg *v = m->dkimv;
	struct dkim_outcome *all;

	all = arena_allocarray(m->arena, m->ndkim + v->nrefused, sizeof(*all));
	if (all == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "dkim: out of memory");
		return;
	}
	if (m->ndkim > 0)
		memcpy(all, m->dkim, m->ndkim * sizeof(*all));
	memcpy(all + m->ndkim, v->refused_o, v->nrefused * sizeof(*all));
	m->dkim = all;
	m->ndkim += v->nrefused;
}

/* dkimv_on_eom - the results */
static int
dkimv_on_eom(struct msg *m)
{
	struct ar_result *r;
	size_t i;

	if (!dkimv_wanted(m))
		return 0;
	if (m->dkimv != NULL && m->dkimv->h != NULL) {
		dkimv_budget = &m->dns_budget;
		dkim_eom(m->dkimv->h, NULL);
		dkimv_budget = NULL;
		dkimv_collect(m, m->dkimv->h);
	}
	if (m->dkimv != NULL && m->dkimv->nrefused > 0)
		dkimv_add_refused(m);
	for (i = 0; i < m->ndkim; i++)
		dkimv_ar(m, &m->dkim[i]);
	if (m->dkimv != NULL && m->dkimv->more_refused > 0 &&
	    (r = msg_ar_new(m, "dkim", "permerror")) != NULL) {
		r->reason = arena_printf(m->arena,
		    "%u more signatures with an i= given twice or not "
		    "dkim-quoted-printable",
		    m->dkimv->more_refused);
		msg_ar_add(m, r);
	}
	if (m->dkimv != NULL && m->dkimv->more_nobudget > 0 &&
	    (r = msg_ar_new(m, "dkim", "permerror")) != NULL) {
		r->reason = arena_printf(m->arena,
		    "%u more signatures not checked: " DKIMV_NOBUDGET_WHY,
		    m->dkimv->more_nobudget);
		msg_ar_add(m, r);
	}
	if (m->dkim_unchecked > 0 &&
	    (r = msg_ar_new(m, "dkim", "neutral")) != NULL) {
		r->reason = arena_printf(m->arena,
		    "%u more signatures not "
		    "checked (dkim_max_signatures)",
		    m->dkim_unchecked);
		msg_ar_add(m, r);
	}
	if (m->ndkim == 0 && m->dkim_unchecked == 0 &&
	    (m->dkimv == NULL ||
		(m->dkimv->more_refused == 0 &&
		    m->dkimv->more_nobudget == 0)) &&
	    (r = msg_ar_new(m, "dkim", "none")) != NULL)
		msg_ar_add(m, r); /* RFC 8601 2.7.1: not signed */
	return 0;
}

const struct check dkimv_check = {
    .name = "dkim",
    .load = dkimv_load,
    .unload = dkimv_unload,
    .on_header = dkimv_on_header,
    .on_eoh = dkimv_on_eoh,
    .on_body = dkimv_on_body,
    .on_eom = dkimv_on_eom,
};
