/*
 * dmarc_walk.h - the DNS Tree Walk of RFC 9989 (4.10): the _dmarc names
 * of a domain and its parents, asked in parallel, read in order, and what
 * they say: the record that applies to the domain (4.10.1) and its
 * Organizational Domain (4.10.2). The daemon's DMARC check and
 * authgate-reports (checking report destinations) both use it. A walk
 * lives in an arena, its queries are freed with it; one thread at a time.
 */
#ifndef AG_DMARC_WALK_H
#define AG_DMARC_WALK_H

#include <stdbool.h>
#include <stddef.h>

#include "dmarc_record.h"

struct arena;
struct dns;
struct dns_budget;
struct dns_query;

#define DMARC_WALK_MAX 8 /* queries of one walk (4.10) */

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

/*
 * dmarc_walk_start - ask every name of the walk from start (a lowercase
 * domain without the final dot): start itself, then shorter ones, a name
 * of 8 or more labels going straight to its last 7, the TLD last.
 */
void dmarc_walk_start(struct arena *, struct dns *, struct dns_budget *,
    struct dmarc_walk *, const char *start);

/*
 * dmarc_walk_read - wait for the answers (in order, up to where the walk
 * stops) and fill in records, errors and the Organizational Domain.
 * Calling it again does nothing.
 */
void dmarc_walk_read(struct arena *, struct dmarc_walk *);

/* dmarc_walk_select - the index of the record that applies to the start
 * domain (4.10.1), or -1 for none; after dmarc_walk_read */
int dmarc_walk_select(const struct dmarc_walk *);

/* dmarc_walk_labels - the number of labels of a name */
size_t dmarc_walk_labels(const char *);

/* dmarc_walk_suffix - the last k labels of a name (k <= its labels) */
const char *dmarc_walk_suffix(const char *, size_t k);

#endif
