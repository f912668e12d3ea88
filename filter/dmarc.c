/*
 * dmarc.c - the DMARC check (see dmarc.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <idn2.h>

#include "util/arena.h"
#include "util/str.h"
#include "msgctx.h"
#include "rfc5322.h"
#include "dmarc_record.h"
#include "dmarc.h"

#define DMARC_WALK_MAX 8 /* queries of one walk (RFC 9989 4.10) */
#define DMARC_DOMAINS  4 /* From domains evaluated (11.5: a cap) */
#define DMARC_ID_WALKS 8 /* identifiers whose walk we do */

/* One DNS Tree Walk: its names, longest first, queried in parallel. */
struct dmarc_walk {
	const char *start;
	size_t n;
	const char *name[DMARC_WALK_MAX];
	struct dns_query *q[DMARC_WALK_MAX];
	bool read; /* the answers below are filled */
	/* what the answers say */
	bool err[DMARC_WALK_MAX]; /* temporary DNS error at this name */
	int nrec[DMARC_WALK_MAX]; /* DMARC records at this name */
	struct dmarc_record rec[DMARC_WALK_MAX]; /* valid when nrec == 1 */
	bool bad[DMARC_WALK_MAX]; /* that one record breaks the syntax */
	char why[DMARC_WALK_MAX][96];
	size_t stop;  /* index after the last name that counts */
	bool tainted; /* an error before the stop: the walk is unsure */
	const char *org;
};

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

/* dmarc_labels - how many labels a name has */
static size_t
dmarc_labels(const char *d)
{
	size_t n = *d ? 1 : 0;

	for (; *d; d++)
		if (*d == '.')
			n++;
	return n;
}

/* dmarc_suffix - the last k labels of d (k <= labels) */
static const char *
dmarc_suffix(const char *d, size_t k)
{
	size_t n = dmarc_labels(d);

	while (n > k) {
		d = strchr(d, '.') + 1;
		n--;
	}
	return d;
}

/*
 * dmarc_walk_start - the names of a walk from start (4.10 steps 1-7):
 * start itself, then with fewer labels one at a time, a name of 8 or more
 * labels going straight to its last 7; the TLD last. All are queried now.
 */
static void
dmarc_walk_start(struct msg *m, struct dmarc_walk *w, const char *start)
{
	const char *cur = start;
	size_t x;

	memset(w, 0, sizeof(*w));
	w->start = start;
	for (;;) {
		w->name[w->n] = cur;
		w->q[w->n] = msg_dns_start(
		    m, arena_printf(m->arena, "_dmarc.%s", cur), AG_DNS_T_TXT);
		w->n++;
		x = dmarc_labels(cur);
		if (x <= 1 || w->n >= DMARC_WALK_MAX)
			break;
		cur = dmarc_suffix(cur, x >= 8 ? 7 : x - 1);
	}
}

/* dmarc_walk_name - read the answer for one name of a walk */
static void
dmarc_walk_name(struct msg *m, struct dmarc_walk *w, size_t i)
{
	const struct dns_answer *a = NULL;
	enum ag_dns_rc rc;
	unsigned k;

	if (w->q[i] == NULL) {
		w->err[i] = true;
		return;
	}
	rc = dns_query_wait(w->q[i], &a);
	if (rc == AG_DNS_NXDOMAIN || rc == AG_DNS_NODATA ||
	    rc == AG_DNS_BADNAME)
		return;
	if (rc != AG_DNS_OK) {
		w->err[i] = true;
		return;
	}
	for (k = 0; k < a->nrr; k++) {
		struct dmarc_record r;
		size_t len;
		char *txt = dns_rr_txt(m->arena, &a->rr[k], &len);
		char why[96] = "";
		enum ag_dmarc_rec pr;

		if (txt == NULL)
			continue;
		/* strings joined (4.5); a NUL inside is not printable */
		pr = memchr(txt, '\0', len) ? AG_DMARC_REC_NOT
					    : dmarc_record_parse(m->arena, txt,
						  len, &r, why, sizeof(why));
		if (pr == AG_DMARC_REC_NOT)
			continue;
		if (++w->nrec[i] == 1) {
			w->rec[i] = r;
			w->bad[i] = (pr == AG_DMARC_REC_INVALID);
			snprintf(w->why[i], sizeof(w->why[i]), "%s", why);
		}
	}
}

/*
 * dmarc_walk_read - the answers of a walk up to where it stops (a single
 * valid record with psd=y or psd=n), and the Organizational Domain of its
 * start (4.10.2): the name of a psd=n record; one label below a psd=y
 * record (not one at the start); else the valid record with the fewest
 * labels; else the start itself.
 */
static void
dmarc_walk_read(struct msg *m, struct dmarc_walk *w)
{
	size_t i, fewest = (size_t)-1;

	if (w->read)
		return;
	w->read = true;
	w->stop = w->n;
	w->org = NULL;
	for (i = 0; i < w->n; i++) {
		dmarc_walk_name(m, w, i);
		if (w->err[i])
			w->tainted = true;
		if (w->nrec[i] != 1 || w->bad[i])
			continue; /* none, or several: all discarded (step 2) */
		if (w->rec[i].psd == AG_DMARC_PSD_N) {
			w->org = w->name[i];
			w->stop = i + 1;
			break;
		}
		if (w->rec[i].psd == AG_DMARC_PSD_Y) {
			w->stop = i + 1;
			if (i > 0) {
				w->org = dmarc_suffix(
				    w->start, dmarc_labels(w->name[i]) + 1);
				break;
			}
			/* a PSD record at the start name: the start is a PSD,
			 * its own Organizational Domain */
			w->org = w->name[i];
			break;
		}
		fewest = i;
	}
	if (w->org == NULL)
		w->org = fewest != (size_t)-1 ? w->name[fewest] : w->start;
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
		dmarc_walk_start(m, &d->author[d->nauthor].walk, dom);
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
	dmarc_walk_start(m, w, id);
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
	dmarc_walk_read(m, &au->walk);
	if ((w = dmarc_id_walk(m, id)) == NULL)
		return -1;
	dmarc_walk_read(m, w);
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

/*
 * dmarc_select - the record to apply (4.10.1): the Author Domain's own,
 * else its Organizational Domain's, else the PSD's that stopped the walk.
 * Returns the walk index, or -1 for none.
 */
static int
dmarc_select(struct dmarc_walk *w)
{
	size_t i;

	if (w->nrec[0] == 1)
		return 0;
	for (i = 1; i < w->stop; i++)
		if (w->nrec[i] == 1 && !w->bad[i] &&
		    strcmp(w->name[i], w->org) == 0)
			return (int)i;
	i = w->stop - 1;
	if (w->stop > 0 && w->nrec[i] == 1 && !w->bad[i] &&
	    w->rec[i].psd == AG_DMARC_PSD_Y)
		return (int)i;
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
		if ((exists = dmarc_exists(au)) == -1 &&
		    (r->np != AG_DMARC_P_UNSET || r->sp != AG_DMARC_P_UNSET)) {
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
	dmarc_walk_read(m, w);
	o->org_domain = w->org;
	sel = dmarc_select(w);
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

	if ((r = msg_ar_new(m, "dmarc", dmarc_result_name(o->result))) == NULL)
		return;
	r->reason = o->reason;
	if (o->record != NULL && o->result != AG_DMARC_PERMERROR)
		r->comment = arena_printf(m->arena, "%s=%s%s", o->policy_tag,
		    dmarc_policy_name(o->published),
		    o->record->testing ? " t=y" : "");
	msg_ar_prop(m, r, "header", "from", o->from_domain);
	if (o->record != NULL && o->result != AG_DMARC_PERMERROR)
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

const struct check dmarc_check = {
    .name = "dmarc",
    .on_header = dmarc_on_header,
    .on_eom = dmarc_on_eom,
};
