/*
 * dmarc.c - the DMARC check (see dmarc.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <idn2.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "config.h"
#include "msgctx.h"
#include "rfc5322.h"
#include "snapshot.h"
#include "dmarc_history.h"
#include "dmarc_record.h"
#include "dmarc_walk.h"
#include "dmarc.h"

#define DMARC_DOMAINS  8 /* From domains evaluated (11.5: a cap) */
#define DMARC_ID_WALKS 8 /* identifiers whose walk we do */

struct dmarc_author {
	const char *domain;
	struct dmarc_walk walk;
	struct dns_query *exist; /* the existence test (np) */
};

struct dmarc_msg {
	unsigned nfrom; /* From: headers seen */
	bool unusable;	/* a From: we could not use */
	struct dmarc_author author[DMARC_DOMAINS];
	size_t nauthor;
	unsigned more; /* distinct domains past DMARC_DOMAINS */
	struct dmarc_walk *ids[DMARC_ID_WALKS]; /* identifiers' walks */
	size_t nids;
};

static const char *const dmarc_names[] = {
    "none", "pass", "fail", "temperror", "permerror"};

/* dmarc_result_name - text of a result */
const char *
dmarc_result_name(int r)
{
	return (r >= 0 && r <= AG_DMARC_PERMERROR) ? dmarc_names[r] : "none";
}

/* dmarc_wanted - is this message's DMARC evaluated? */
static bool
dmarc_wanted(const struct msg *m)
{
	return m->cfg->dmarc_enable && !m->internal;
}

/*
 * dmarc_domain - the A-label, lowercase form of a From: domain, or NULL
 * when it is not a domain DMARC can use
 */
static const char *
dmarc_domain(struct msg *m, const char *d)
{
	char *ascii = NULL, *out;
	size_t i;
	bool plain = true;

	for (i = 0; d[i]; i++)
		if ((unsigned char)d[i] >= 0x80)
			plain = false;
	if (*d == '[')
		return NULL; /* a domain literal: no DNS name */
	if (!plain) {
		/* RFC 9989 5.3.1: U-labels become A-labels (RFC 5890) */
		if (idn2_lookup_u8((const uint8_t *)d, (uint8_t **)&ascii,
			IDN2_NFC_INPUT | IDN2_NONTRANSITIONAL) != IDN2_OK)
			return NULL;
		out = arena_strdup(m->arena, ascii);
		idn2_free(ascii);
	} else
		out = arena_strdup(m->arena, d);
	if (out == NULL)
		return NULL;
	str_tolower(out);
	i = strlen(out);
	if (i > 0 && out[i - 1] == '.')
		out[i - 1] = '\0';
	return dns_name_valid(out) && strchr(out, '.') != NULL ? out : NULL;
}

/* dmarc_on_header - the From: header: Author Domains, walks started */
static int
dmarc_on_header(struct msg *m, const struct hdr *h)
{
	struct rfc5322_addr list[AG_R5322_MAX_ADDRS];
	struct dmarc_msg *d;
	int n, i;
	size_t k;

	if (!dmarc_wanted(m) || !str_caseeq_len(h->name, h->namelen, "From"))
		return 0;
	if ((d = m->dmarcm) == NULL &&
	    (d = m->dmarcm = arena_zalloc(m->arena, sizeof(*d))) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "dmarc: out of memory");
		return -1;
	}
	d->nfrom++;
	n = rfc5322_addr_list(
	    m->arena, h->value, h->valuelen, list, AG_R5322_MAX_ADDRS);
	if (n <= 0) {
		d->unusable = true; /* not an address list, or no mailbox */
		return 0;
	}
	for (i = 0; i < n; i++) {
		const char *dom = dmarc_domain(m, list[i].domain);

		if (dom == NULL) {
			d->unusable = true;
			continue;
		}
		for (k = 0; k < d->nauthor; k++)
			if (strcmp(d->author[k].domain, dom) == 0)
				break;
		if (k < d->nauthor)
			continue;
		if (d->nauthor == DMARC_DOMAINS) {
			d->more++;
			continue;
		}
		d->author[d->nauthor].domain = dom;
		dmarc_walk_start(m->arena, m->conn->snap->dns, &m->dns_budget,
		    &d->author[d->nauthor].walk, dom);
		/* any record at the name means it exists (A.4): an A query
		 * tells NXDOMAIN from NODATA */
		d->author[d->nauthor].exist = msg_dns_start(m, dom, AG_DNS_T_A);
		d->nauthor++;
	}
	return 0;
}

/* dmarc_id_walk - the walk of an identifier (started on first use) */
static struct dmarc_walk *
dmarc_id_walk(struct msg *m, const char *id)
{
	struct dmarc_msg *d = m->dmarcm;
	struct dmarc_walk *w;
	size_t i;

	for (i = 0; i < d->nauthor; i++)
		if (strcmp(d->author[i].domain, id) == 0)
			return &d->author[i].walk;
	for (i = 0; i < d->nids; i++)
		if (strcmp(d->ids[i]->start, id) == 0)
			return d->ids[i];
	if (d->nids == DMARC_ID_WALKS ||
	    (w = arena_zalloc(m->arena, sizeof(*w))) == NULL)
		return NULL;
	dmarc_walk_start(m->arena, m->conn->snap->dns, &m->dns_budget, w, id);
	d->ids[d->nids++] = w;
	return w;
}

/* dmarc_lower - an identifier in the form From domains have */
static const char *
dmarc_lower(struct msg *m, const char *s)
{
	char *c;
	size_t l;

	if (s == NULL || (c = arena_strdup(m->arena, s)) == NULL)
		return NULL;
	str_tolower(c);
	l = strlen(c);
	if (l > 0 && c[l - 1] == '.')
		c[l - 1] = '\0';
	return c;
}

/* dmarc_under - is name equal to, or below, domain? */
static bool
dmarc_under(const char *name, const char *domain)
{
	size_t n = strlen(name), d = strlen(domain);

	return n == d ? strcmp(name, domain) == 0
		      : n > d && name[n - d - 1] == '.' &&
		strcmp(name + n - d, domain) == 0;
}

/* dmarc_common_labels - how many trailing labels a and b share */
static size_t
dmarc_common_labels(const char *a, const char *b)
{
	size_t la = dmarc_walk_labels(a), lb = dmarc_walk_labels(b), k;

	for (k = la < lb ? la : lb; k > 0; k--)
		if (strcmp(dmarc_walk_suffix(a, k), dmarc_walk_suffix(b, k)) ==
		    0)
			return k;
	return 0;
}

/*
 * dmarc_aligned - does identifier id align with the author's domain?
 * Strict: equal; relaxed: the same Organizational Domain. -1 when a DNS
 * error leaves the identifier's Organizational Domain unknown.
 */
static int
dmarc_aligned(
    struct msg *m, struct dmarc_author *au, const char *id, bool strict)
{
	struct dmarc_walk *w;

	if (id == NULL || *id == '\0')
		return 0;
	if (strcmp(id, au->domain) == 0)
		return 1;
	if (strict)
		return 0;
	dmarc_walk_read(m->arena, &au->walk);
	/* An Organizational Domain is the name itself or a parent (4.10.2):
	 * an identifier outside the author's Organizational Domain (or, when
	 * that is unknown, sharing no label with the author) cannot align,
	 * whatever its own walk says, so a failure there changes nothing. */
	if (!au->walk.tainted ? !dmarc_under(id, au->walk.org)
			      : dmarc_common_labels(id, au->domain) == 0)
		return 0;
	if ((w = dmarc_id_walk(m, id)) == NULL)
		return -1;
	dmarc_walk_read(m->arena, w);
	/* a walk with a DNS error may have missed the record that decides
	 * the Organizational Domain: no answer either way (5.3.6) */
	if (w->tainted || au->walk.tainted)
		return -1;
	return strcmp(w->org, au->walk.org) == 0;
}

/* dmarc_exists - does the Author Domain exist (A.4)? -1 unknown */
static int
dmarc_exists(struct dmarc_author *au)
{
	const struct dns_answer *a;
	enum ag_dns_rc rc;

	if (au->exist == NULL)
		return -1;
	rc = dns_query_wait(au->exist, &a);
	if (rc == AG_DNS_NXDOMAIN)
		return 0;
	if (rc == AG_DNS_OK || rc == AG_DNS_NODATA)
		return 1;
	return -1;
}

/* dmarc_policy - p, sp or np for this author (4.10.1, 4.7); t=y */
static int
dmarc_policy(
    struct msg *m, struct dmarc_author *au, int sel, struct dmarc_outcome *o)
{
	const struct dmarc_record *r = &au->walk.rec[sel];
	int p = r->p, exists;

	o->policy_tag = "p";
	if (sel > 0) {
		/* a subdomain of the record's domain: sp if it exists, np if
		 * it does not (each falls back as 4.7 says) */
		/* only np depends on it: without np, sp or p applies either
		 * way (4.7) */
		if ((exists = dmarc_exists(au)) == -1 &&
		    r->np != AG_DMARC_P_UNSET) {
			o->reason = "existence of the From: domain unknown "
				    "(DNS error)";
			return -1;
		}
		if (exists == 0 && r->np != AG_DMARC_P_UNSET) {
			p = r->np;
			o->policy_tag = "np";
		} else if (r->sp != AG_DMARC_P_UNSET) {
			p = r->sp;
			o->policy_tag = "sp";
		}
	}
	(void)m;
	o->published = p;
	o->policy = p;
	/* t=y: one level below what is published (4.7 t) */
	if (r->testing && p == AG_DMARC_P_REJECT)
		o->policy = AG_DMARC_P_QUARANTINE;
	else if (r->testing && p == AG_DMARC_P_QUARANTINE)
		o->policy = AG_DMARC_P_NONE;
	return 0;
}

/* dmarc_spf_id - the SPF-authenticated domain: MAIL FROM's, or for the
 * null sender postmaster@HELO's (RFC 9989 3.2.4 via RFC 7208 2.4); only
 * a pass authenticates. The HELO check itself never counts. */
static const char *
dmarc_spf_id(struct msg *m)
{
	if (!m->spf_mailfrom.checked || m->spf_mailfrom.result != AG_SPF_PASS)
		return NULL;
	return dmarc_lower(m, m->spf_mailfrom.domain);
}

/* dmarc_align - SPF and every passing DKIM signature against the author */
static int
dmarc_align(struct msg *m, struct dmarc_author *au, struct dmarc_outcome *o,
    const struct dmarc_record *r)
{
	const char *spf = dmarc_spf_id(m);
	bool unsure = false;
	size_t i;
	int a;

	o->spf_domain = spf;
	if (spf != NULL) {
		a = dmarc_aligned(m, au, spf, r->aspf_strict);
		o->spf_aligned = (a == 1);
		unsure |= (a == -1);
	}
	for (i = 0; i < m->ndkim; i++) {
		const char *d;

		if (m->dkim[i].result != AG_DKIM_PASS)
			continue;
		d = dmarc_lower(m, m->dkim[i].domain);
		if (o->dkim_domain == NULL)
			o->dkim_domain = d;
		a = dmarc_aligned(m, au, d, r->adkim_strict);
		unsure |= (a == -1);
		if (a == 1) {
			o->dkim_aligned = true;
			o->dkim_domain = d;
			break;
		}
	}
	if (o->spf_aligned || o->dkim_aligned)
		return AG_DMARC_PASS;
	return unsure ? AG_DMARC_TEMPERROR : AG_DMARC_FAIL;
}

/* dmarc_evaluate - the result for one Author Domain */
static void
dmarc_evaluate(struct msg *m, struct dmarc_author *au, struct dmarc_outcome *o)
{
	struct dmarc_walk *w = &au->walk;
	const struct dmarc_record *r;
	int sel;
	size_t i;

	o->from_domain = au->domain;
	dmarc_walk_read(m->arena, w);
	o->org_domain = w->org;
	sel = dmarc_walk_select(w);
	/* Unless the Author Domain's own record applies, a DNS error in the
	 * walk could hide the record that should (5.3.6: then the message
	 * neither passes nor fails). */
	for (i = 0; sel != 0 && i < w->stop; i++)
		if (w->err[i]) {
			o->result = AG_DMARC_TEMPERROR;
			o->reason = arena_printf(m->arena,
			    "DNS error looking up "
			    "_dmarc.%s",
			    w->name[i]);
			return;
		}
	if (sel == -1) {
		o->result = AG_DMARC_NONE;
		return;
	}
	r = &w->rec[sel];
	o->record = r;
	o->policy_domain = w->name[sel];
	if (w->bad[sel]) {
		/* 9.2: an improperly formatted record is a permerror */
		o->result = AG_DMARC_PERMERROR;
		o->reason = arena_printf(m->arena, "DMARC record of %s: %s",
		    w->name[sel], w->why[sel]);
		return;
	}
	if (r->p == AG_DMARC_P_UNSET || r->p == AG_DMARC_P_INVALID ||
	    r->sp == AG_DMARC_P_INVALID || r->np == AG_DMARC_P_INVALID) {
		/* 4.10.1: act as p=none if rua has a valid URI, else no DMARC */
		if (r->nrua == 0) {
			o->result = AG_DMARC_NONE;
			o->reason = arena_printf(m->arena,
			    "DMARC record of %s "
			    "has no valid p, sp or np and no rua: ignored",
			    w->name[sel]);
			o->record = NULL;
			return;
		}
		o->published = o->policy = AG_DMARC_P_NONE;
		o->policy_tag = "p";
	} else if (dmarc_policy(m, au, sel, o) == -1) {
		o->result = AG_DMARC_TEMPERROR;
		return;
	}
	o->result = dmarc_align(m, au, o, r);
	if (o->result == AG_DMARC_TEMPERROR)
		o->reason = "DNS error finding an Organizational Domain";
}

/* dmarc_ar - the A-R result of one outcome */
static void
dmarc_ar(struct msg *m, struct dmarc_outcome *o)
{
	struct ar_result *r;
	bool evaluated = o->record != NULL &&
	    (o->result == AG_DMARC_PASS || o->result == AG_DMARC_FAIL);

	if ((r = msg_ar_new(m, "dmarc", dmarc_result_name(o->result))) == NULL)
		return;
	r->reason = o->reason;
	if (evaluated)
		r->comment = arena_printf(m->arena, "%s=%s%s", o->policy_tag,
		    dmarc_policy_name(o->published),
		    o->record->testing ? " t=y" : "");
	msg_ar_prop(m, r, "header", "from", o->from_domain);
	if (evaluated)
		msg_ar_prop(
		    m, r, "policy", "dmarc", dmarc_policy_name(o->policy));
	o->ar = r;
	msg_ar_add(m, r);
}

/* dmarc_on_eom - one result per From domain */
static int
dmarc_on_eom(struct msg *m)
{
	struct dmarc_msg *d = m->dmarcm;
	struct dmarc_outcome *o;
	struct ar_result *r;
	size_t i;

	if (!dmarc_wanted(m))
		return 0;
	if (d == NULL || d->nauthor == 0) {
		/* 5.3.1: no Author Domain, DMARC is not possible */
		m->dmarc_from_bad = true;
		if ((r = msg_ar_new(m, "dmarc", "permerror")) != NULL) {
			r->reason = d == NULL ? "no From: header"
					      : "no usable From: domain";
			msg_ar_add(m, r);
		}
		return 0;
	}
	m->dmarc_from_bad =
	    d->nfrom > 1 || d->unusable || d->nauthor > 1 || d->more > 0;
	m->dmarc_incomplete = d->more > 0;
	if ((m->dmarc = arena_allocarray(
		 m->arena, d->nauthor, sizeof(*m->dmarc))) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "dmarc: out of memory");
		return -1;
	}
	for (i = 0; i < d->nauthor; i++) {
		o = &m->dmarc[m->ndmarc++];
		memset(o, 0, sizeof(*o));
		dmarc_evaluate(m, &d->author[i], o);
		if (o->result == AG_DMARC_TEMPERROR)
			msg_error(m, AG_ERR_DNS, "dmarc: %s: %s",
			    o->from_domain,
			    o->reason ? o->reason : "temperror");
		if (d->more > 0 && o->reason == NULL)
			o->reason = arena_printf(m->arena,
			    "%u more From: "
			    "domains not evaluated",
			    d->more);
		dmarc_ar(m, o);
	}
	return 0;
}

/* dmarc_load - the report history, when configured */
static int
dmarc_load(struct snapshot *s, struct buf *err)
{
	const struct config *cfg = s->cfg;
	char why[512];

	if (!cfg->dmarc_enable || cfg->dmarc_history[0] == '\0')
		return 0;
	if ((s->dhist = dhist_acquire(cfg->dmarc_history,
		 (size_t)cfg->dmarc_history_queue, why, sizeof(why))) == NULL) {
		buf_addf(err, "%s: dmarc_history: %s\n",
		    cfg->file[0] ? cfg->file : "config", why);
		return -1;
	}
	return 0;
}

/* dmarc_unload - let go of the history */
static void
dmarc_unload(struct snapshot *s)
{
	dhist_release(s->dhist);
	s->dhist = NULL;
}

/* dmarc_domain_of - the domain part of an address (for the report) */
static const char *
dmarc_domain_of(const char *addr)
{
	const char *at = addr ? strrchr(addr, '@') : NULL;

	return at ? at + 1 : "";
}

/* dmarc_row_dkim - the signatures for the report, in RFC 9990 3.1.3's
 * order: aligned passes, other passes, the rest */
static void
dmarc_row_dkim(
    const struct msg *m, const struct dmarc_outcome *o, struct dhist_row *r)
{
	size_t i, n = 0, len = 0;
	int pass;

	for (pass = 2; pass >= 0; pass--)
		for (i = 0; i < m->ndkim && n < 100; i++) {
			const struct dkim_outcome *d = &m->dkim[i];
			bool ok = d->result == AG_DKIM_PASS;
			bool al = ok && o->dkim_aligned && o->dkim_domain &&
			    d->domain &&
			    str_casecmp(d->domain, o->dkim_domain) == 0;

			if ((pass == 2 && !al) || (pass == 1 && (!ok || al)) ||
			    (pass == 0 && ok))
				continue;
			len += (size_t)snprintf(r->dkim + len,
			    len < sizeof(r->dkim) ? sizeof(r->dkim) - len : 0,
			    "%s%s %s %s", n ? ";" : "",
			    d->domain ? d->domain : "",
			    d->selector ? d->selector : "",
			    msg_dkim_result_name(d->result));
			n++;
		}
	if (len >= sizeof(r->dkim)) {
		/* never half an entry: cut at the last whole one */
		char *semi = strrchr(r->dkim, ';');

		if (semi)
			*semi = '\0';
	}
}

static const char *const dmarc_dis_names[] = {"none", "quarantine", "reject"};

/* dmarc_on_verdict - an evaluation whose domain asks for reports goes
 * into the history (RFC 9989 4.7: no rua, no report) */
static void
dmarc_on_verdict(struct msg *m)
{
	struct dhist *h = m->conn->snap->dhist;
	size_t i, k;

	for (i = 0; h != NULL && i < m->ndmarc; i++) {
		const struct dmarc_outcome *o = &m->dmarc[i];
		const struct dmarc_record *rec = o->record;
		struct dhist_row r;
		size_t len = 0;

		if (rec == NULL || rec->nrua == 0 ||
		    (o->result != AG_DMARC_PASS && o->result != AG_DMARC_FAIL))
			continue;
		memset(&r, 0, sizeof(r));
		r.t = (long long)time(NULL);
		snprintf(r.host, sizeof(r.host), "%s", msgctx_hostname());
		snprintf(r.policy_domain, sizeof(r.policy_domain), "%s",
		    o->policy_domain);
		snprintf(
		    r.header_from, sizeof(r.header_from), "%s", o->from_domain);
		snprintf(r.source_ip, sizeof(r.source_ip), "%s",
		    m->conn->client_ip ? m->conn->client_ip : "");
		snprintf(r.envelope_from, sizeof(r.envelope_from), "%s",
		    m->spf_mailfrom.domain ? m->spf_mailfrom.domain
					   : dmarc_domain_of(m->mail_from));
		snprintf(r.envelope_to, sizeof(r.envelope_to), "%s",
		    m->nrcpts ? dmarc_domain_of(m->rcpts[0]) : "");
		snprintf(r.p, sizeof(r.p), "%s", dmarc_policy_name(rec->p));
		snprintf(r.sp, sizeof(r.sp), "%s", dmarc_policy_name(rec->sp));
		snprintf(r.np, sizeof(r.np), "%s", dmarc_policy_name(rec->np));
		r.adkim[0] = rec->adkim_strict ? 's' : 'r';
		r.aspf[0] = rec->aspf_strict ? 's' : 'r';
		r.testing[0] = rec->testing ? 'y' : 'n';
		snprintf(r.fo, sizeof(r.fo), "%s", rec->fo ? rec->fo : "");
		for (k = 0; k < rec->nrua; k++)
			len += (size_t)snprintf(r.rua + len,
			    len < sizeof(r.rua) ? sizeof(r.rua) - len : 0,
			    "%s%s", k ? "," : "", rec->rua[k]);
		if (len >= sizeof(r.rua))
			continue; /* a list this long is not sent anywhere */
		/* RFC 9990: pass = passed under an enforcing policy */
		snprintf(r.disposition, sizeof(r.disposition), "%s",
		    o->result == AG_DMARC_PASS
			? (o->policy != AG_DMARC_P_NONE ? "pass" : "none")
			: dmarc_dis_names[o->disposition]);
		r.dkim_aligned = o->dkim_aligned;
		r.spf_aligned = o->spf_aligned;
		snprintf(r.reason_type, sizeof(r.reason_type), "%s",
		    o->override ? o->override : "");
		if (m->spf_mailfrom.checked) {
			snprintf(r.spf_domain, sizeof(r.spf_domain), "%s",
			    m->spf_mailfrom.domain ? m->spf_mailfrom.domain
						   : "");
			snprintf(r.spf_result, sizeof(r.spf_result), "%s",
			    msg_spf_result_name(m->spf_mailfrom.result));
		}
		dmarc_row_dkim(m, o, &r);
		if (!dhist_record(h, &r))
			log_msg(m, LOG_WARNING,
			    "dmarc: history queue full, "
			    "report row for %s dropped",
			    o->policy_domain);
	}
}

const struct check dmarc_check = {
    .name = "dmarc",
    .load = dmarc_load,
    .unload = dmarc_unload,
    .on_header = dmarc_on_header,
    .on_eom = dmarc_on_eom,
    .on_verdict = dmarc_on_verdict,
};
