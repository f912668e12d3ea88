/*
 * dmarc.h - the DMARC check (RFC 9989).
 *
 * At the From: header the Author Domain(s) are taken from the address
 * list (IDN U-labels become A-labels) and the DNS Tree Walk of each
 * starts at once: every _dmarc name of the walk (at most 8, 4.10) and
 * the Author Domain's existence test (for np) go out in parallel. At
 * eom, with SPF and DKIM known, the walk is read in order: the applied
 * record (the Author Domain's own, else its Organizational Domain's,
 * else the PSD's: 4.10.1), the Organizational Domain (4.10.2), and the
 * alignment of the SPF-authenticated domain and of each passing DKIM d=
 * (relaxed: same Organizational Domain, found by each identifier's own
 * walk; strict: equal). One result per From domain goes into m->dmarc
 * and the A-R (dmarc=... header.from=... policy.dmarc=...). policy.c
 * enforces. Internal clients are not evaluated.
 */
#ifndef AG_DMARC_H
#define AG_DMARC_H

#include "checks.h"

extern const struct check dmarc_check;

/* dmarc_result_name - "none", "pass", "fail", "temperror", "permerror" */
const char *dmarc_result_name(int);

#endif
