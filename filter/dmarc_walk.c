/*
 * dmarc_walk.c - the DNS Tree Walk (see dmarc_walk.h).
 */
#include <stdio.h>
#include <string.h>

#include "util/arena.h"
#include "dns.h"
#include "dmarc_record.h"
#include "dmarc_walk.h"

/* dmarc_walk_labels - how many labels a name has */
size_t
dmarc_walk_labels(const char *d)
{
	size_t n = *d ? 1 : 0;

	for (; *d; d++)
		if (*d == '.')
			n++;
	return n;
}

/* dmarc_walk_suffix - the last k labels of d (k <= labels) */
const char *
dmarc_walk_suffix(const char *d, size_t k)
{
	size_t n = dmarc_walk_labels(d);

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
void
dmarc_walk_start(struct arena *a, struct dns *dns, struct dns_budget *budget,
    struct dmarc_walk *w, const char *start)
{
	const char *cur = start;
	char *name;
	size_t x;

	memset(w, 0, sizeof(*w));
	w->start = start;
	for (;;) {
		w->name[w->n] = cur;
		name = arena_printf(a, "_dmarc.%s", cur);
		w->q[w->n] = name == NULL
		    ? NULL
		    : dns_query_start(dns, budget, name, AG_DNS_T_TXT);
		if (w->q[w->n] != NULL && dns_query_defer(a, w->q[w->n]) == -1)
			w->q[w->n] = NULL; /* freed: reads as a DNS error */
		w->n++;
		x = dmarc_walk_labels(cur);
		if (x <= 1 || w->n >= DMARC_WALK_MAX)
			break;
		cur = dmarc_walk_suffix(cur, x >= 8 ? 7 : x - 1);
	}
}

/* dmarc_walk_name - read the answer for one name of a walk */
static void
dmarc_walk_name(struct arena *ar, struct dmarc_walk *w, size_t i)
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
		char *txt = dns_rr_txt(ar, &a->rr[k], &len);
		char why[96] = "";
		enum ag_dmarc_rec pr;

		if (txt == NULL)
			continue;
		/* strings joined (4.5); a NUL inside is not printable */
		pr = memchr(txt, '\0', len)
		    ? AG_DMARC_REC_NOT
		    : dmarc_record_parse(ar, txt, len, &r, why, sizeof(why));
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
void
dmarc_walk_read(struct arena *ar, struct dmarc_walk *w)
{
	size_t i, fewest = (size_t)-1;

	if (w->read)
		return;
	w->read = true;
	w->stop = w->n;
	w->org = NULL;
	for (i = 0; i < w->n; i++) {
		dmarc_walk_name(ar, w, i);
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
				w->org = dmarc_walk_suffix(w->start,
				    dmarc_walk_labels(w->name[i]) + 1);
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
 * dmarc_walk_select - the record to apply (4.10.1): the Author Domain's own,
 * else its Organizational Domain's, else the PSD's that stopped the walk.
 * Returns the walk index, or -1 for none.
 */
int
dmarc_walk_select(const struct dmarc_walk *w)
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
