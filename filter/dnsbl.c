/*
 * dnsbl.c - DNSBL, URIBL and client rDNS lookups (see dnsbl.h).
 */
#include <stdio.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"
#include "dnsbl.h"
#include "mime.h"
#include "msgctx.h"
#include "rulefile.h"

/* One started lookup: rule index (or -1 for the PTR) and its query. */
struct dnsbl_q {
	long rule;
	struct dns_query *q;
	struct dnsbl_q *next;
};

#define DNSBL_RDNS_NAMES 4 /* PTR names whose addresses are checked */

struct dnsbl_conn {
	struct dnsbl_q *qs; /* dnsbl rules */
	struct dns_query *ptr;
	/* the PTR names' address lookups, started once the PTR is in */
	struct dns_query *fwd[DNSBL_RDNS_NAMES];
	const char *fwd_name[DNSBL_RDNS_NAMES];
	unsigned nfwd;
	enum ag_dns_rc ptr_rc;
	bool fwd_started;
	bool rdns_done;
};

struct dnsbl_msg {
	struct dnsbl_q *qs; /* uribl rules, one per (name, rule) */
	const char *names[DNSBL_MAX_NAMES];
	size_t nnames;
	const struct mime_uri *last; /* the last URI looked at */
};

int
dnsbl_reverse(const unsigned char a[16], int family, const char *zone,
    char *out, size_t outlen)
{
	static const char hex[] = "0123456789abcdef";
	size_t off = 0;
	int i, n;

	if (family == 4) {
		n = snprintf(out, outlen, "%u.%u.%u.%u.%s", a[15], a[14], a[13],
		    a[12], zone);
		return n < 0 || (size_t)n >= outlen ? -1 : 0;
	}
	if (outlen < 64 + strlen(zone) + 1)
		return -1;
	for (i = 15; i >= 0; i--) {
		out[off++] = hex[a[i] & 15];
		out[off++] = '.';
		out[off++] = hex[a[i] >> 4];
		out[off++] = '.';
	}
	memcpy(out + off, zone, strlen(zone) + 1);
	return 0;
}

/* dnsbl_ptr_name - the in-addr.arpa / ip6.arpa name of the client */
static int
dnsbl_ptr_name(const struct conn *c, char *out, size_t outlen)
{
	return dnsbl_reverse(c->client_addr, c->client_family,
	    c->client_family == 4 ? "in-addr.arpa" : "ip6.arpa", out, outlen);
}

void
dnsbl_conn_start(struct conn *c, const struct ruleset *rs, bool rdns)
{
	struct dnsbl_conn *d;
	char name[AG_DNS_MAX_NAME + 64];
	size_t i;

	if (c->internal_ip || c->client_family == 0 || c->dnsblc != NULL)
		return;
	if ((d = arena_zalloc(c->arena, sizeof(*d))) == NULL)
		return;
	c->dnsblc = d;
	if (rdns && dnsbl_ptr_name(c, name, sizeof(name)) == 0) {
		d->ptr =
		    dns_query_start(c->snap->dns, NULL, name, AG_DNS_T_PTR);
		if (dns_query_defer(c->arena, d->ptr) == -1)
			d->ptr = NULL;
	}
	for (i = 0; rs != NULL && i < rs->n; i++) {
		struct dnsbl_q *q;

		if (rs->rules[i].type != RULE_DNSBL ||
		    dnsbl_reverse(c->client_addr, c->client_family,
			rs->rules[i].zone, name, sizeof(name)) == -1)
			continue;
		if ((q = arena_zalloc(c->arena, sizeof(*q))) == NULL)
			return;
		q->rule = (long)i;
		q->q = dns_query_start(c->snap->dns, NULL, name, AG_DNS_T_A);
		if (dns_query_defer(c->arena, q->q) == -1)
			return;
		q->next = d->qs;
		d->qs = q;
	}
}

/* dnsbl_add_name - a name to ask the URIBLs about, once */
static void
dnsbl_add_name(struct msg *m, const struct ruleset *rs, const char *name)
{
	struct dnsbl_msg *d = m->dnsblm;
	char qname[AG_DNS_MAX_NAME + 64];
	size_t i;

	if (d->nnames >= DNSBL_MAX_NAMES || strchr(name, '.') == NULL ||
	    !dns_name_valid(name))
		return;
	for (i = 0; i < d->nnames; i++)
		if (strcmp(d->names[i], name) == 0)
			return;
	if ((d->names[d->nnames] = arena_strdup(m->arena, name)) == NULL)
		return;
	d->nnames++;
	for (i = 0; i < rs->n; i++) {
		struct dnsbl_q *q;
		int n;

		if (rs->rules[i].type != RULE_URIBL)
			continue;
		n = snprintf(
		    qname, sizeof(qname), "%s.%s", name, rs->rules[i].zone);
		if (n < 0 || (size_t)n >= sizeof(qname) ||
		    (q = arena_zalloc(m->arena, sizeof(*q))) == NULL)
			continue;
		q->rule = (long)i;
		q->q = dns_query_start(
		    m->conn->snap->dns, NULL, qname, AG_DNS_T_A);
		if (dns_query_defer(m->arena, q->q) == -1)
			return;
		q->next = d->qs;
		d->qs = q;
	}
}

/* dnsbl_labels - the last n labels of host, or NULL when it has fewer */
static const char *
dnsbl_labels(const char *host, int n)
{
	const char *p = host + strlen(host);
	int dots = 0;

	while (p > host) {
		if (p[-1] == '.' && ++dots == n)
			return p;
		p--;
	}
	return NULL;
}

void
dnsbl_uri_start(
    struct msg *m, const struct ruleset *rs, const struct mime_uri *uris)
{
	struct dnsbl_msg *d = m->dnsblm;
	const struct mime_uri *u;

	if (rs == NULL || rs->nuribl == 0 || m->internal)
		return;
	if (d == NULL) {
		if ((d = arena_zalloc(m->arena, sizeof(*d))) == NULL)
			return;
		m->dnsblm = d;
	}
	u = d->last ? d->last->next : uris;
	for (; u != NULL && d->nnames < DNSBL_MAX_NAMES; u = u->next) {
		const char *h = u->host, *p;

		d->last = u;
		if (u->ip_literal || h == NULL || *h == '\0')
			continue;
		if (strncmp(h, "www.", 4) == 0)
			h += 4;
		dnsbl_add_name(m, rs, h);
		if ((p = dnsbl_labels(h, 2)) != NULL)
			dnsbl_add_name(m, rs, p);
		if ((p = dnsbl_labels(h, 3)) != NULL)
			dnsbl_add_name(m, rs, p);
	}
}

/* dnsbl_listed - does an A answer carry a return code of the rule? */
static bool
dnsbl_listed(struct dns_query *q, const struct rule *r)
{
	const struct dns_answer *a;
	unsigned char addr[16];
	unsigned i;

	if (dns_query_wait(q, &a) != AG_DNS_OK)
		return false;
	for (i = 0; i < a->nrr; i++)
		if (dns_rr_addr(&a->rr[i], AG_DNS_T_A, addr) == 4 &&
		    ruleset_codes_match(&r->codes, addr + 12))
			return true;
	return false;
}

/*
 * dnsbl_rdns_fwd - once the PTR answer is in (with wait: block for it),
 * start the address lookups of its names, all at once, under the budget
 * of the message at hand (a HELO name's SPF check may ask the same).
 * Connection state: done once per connection.
 */
static void
dnsbl_rdns_fwd(
    struct conn *c, struct dnsbl_conn *d, struct dns_budget *b, bool wait)
{
	int type = c->client_family == 4 ? AG_DNS_T_A : AG_DNS_T_AAAA;
	const struct dns_answer *a;
	char name[AG_DNS_MAX_NAME + 2];
	unsigned i;

	if (d->fwd_started || d->ptr == NULL ||
	    (!wait && !dns_query_ready(d->ptr)))
		return;
	d->fwd_started = true;
	if ((d->ptr_rc = dns_query_wait(d->ptr, &a)) != AG_DNS_OK)
		return;
	for (i = 0; i < a->nrr && d->nfwd < DNSBL_RDNS_NAMES; i++) {
		struct dns_query *q;

		if (dns_rr_name(&a->rr[i], 0, name, sizeof(name)) == -1)
			continue;
		q = dns_query_start(c->snap->dns, b, name, type);
		if (dns_query_defer(c->arena, q) == -1)
			return;
		d->fwd_name[d->nfwd] = arena_strdup(c->arena, name);
		d->fwd[d->nfwd++] = q;
	}
}

void
dnsbl_advance(struct msg *m)
{
	if (m->conn->dnsblc != NULL)
		dnsbl_rdns_fwd(m->conn, m->conn->dnsblc, &m->dns_budget, false);
}

/* dnsbl_rdns - the PTR's names (up to 4) and their addresses: FCrDNS */
static void
dnsbl_rdns(struct msg *m, struct dnsbl_conn *d)
{
	struct conn *c = m->conn;
	int type = c->client_family == 4 ? AG_DNS_T_A : AG_DNS_T_AAAA;
	enum ag_dns_rc rc;
	unsigned i, k;
	bool temp = false;

	d->rdns_done = true;
	if (d->ptr == NULL)
		return;
	dnsbl_rdns_fwd(c, d, &m->dns_budget, true);
	if (d->ptr_rc == AG_DNS_NXDOMAIN || d->ptr_rc == AG_DNS_NODATA) {
		c->rdns = AG_RDNS_NONE;
		return;
	}
	if (d->ptr_rc != AG_DNS_OK) {
		c->rdns = AG_RDNS_TEMPERROR;
		return;
	}
	c->rdns = AG_RDNS_MISMATCH;
	for (i = 0; i < d->nfwd; i++) {
		const struct dns_answer *fa;
		unsigned char addr[16];

		if (c->rdns_name == NULL)
			c->rdns_name = d->fwd_name[i];
		rc = dns_query_wait(d->fwd[i], &fa);
		if (dns_rc_temporary(rc))
			temp = true;
		for (k = 0; rc == AG_DNS_OK && k < fa->nrr; k++) {
			/* both sides in 16 bytes, IPv4 mapped */
			if (dns_rr_addr(&fa->rr[k], type, addr) != -1 &&
			    memcmp(addr, c->client_addr, 16) == 0) {
				c->rdns = AG_RDNS_OK;
				c->rdns_name = d->fwd_name[i];
				return;
			}
		}
	}
	if (temp)
		c->rdns = AG_RDNS_TEMPERROR;
}

void
dnsbl_collect(struct msg *m, const struct ruleset *rs, unsigned char *hits)
{
	struct dnsbl_conn *dc = m->conn->dnsblc;
	const struct dnsbl_q *q;

	if (dc != NULL && !dc->rdns_done)
		dnsbl_rdns(m, dc);
	if (m->internal)
		return;
	for (q = dc ? dc->qs : NULL; q != NULL; q = q->next)
		if (!hits[q->rule] && dnsbl_listed(q->q, &rs->rules[q->rule]))
			hits[q->rule] = 1;
	for (q = m->dnsblm ? m->dnsblm->qs : NULL; q != NULL; q = q->next)
		if (!hits[q->rule] && dnsbl_listed(q->q, &rs->rules[q->rule]))
			hits[q->rule] = 1;
}
