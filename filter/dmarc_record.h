/*
 * dmarc_record.h - DMARC policy records (RFC 9989 4.7, 4.8): parsing a
 * TXT record into its tags. No DNS, no state: any thread.
 *
 * The rules the parser applies, each with its section:
 * - the record starts with the tag v (name in any case, optional white
 *   space around "=") whose value is exactly "DMARC1" (4.8 %s"DMARC1");
 *   anything else is not a DMARC record (4.7 v, the walk discards it);
 * - tag names are letters (4.8 1*ALPHA); unknown tags, and the removed
 *   pct, rf and ri (9.3), are ignored (4.7);
 * - a tag given twice makes the record invalid: DMARC uses DKIM's tag
 *   list (4.7 refers to RFC 6376 3.2), where that is an error;
 * - keyword values (none, quarantine, reject, r, s, y, n, u) match in any
 *   case (RFC 5234 2.3 string literals); URIs keep their case;
 * - a bad value for a tag with a default (adkim, aspf, t, psd, fo) falls
 *   back to the default (4.8); a missing or bad p, or a bad sp or np, is
 *   recorded so that policy discovery can apply 4.10.1 (p=none when rua
 *   has a valid URI, otherwise no DMARC).
 */
#ifndef AG_DMARC_RECORD_H
#define AG_DMARC_RECORD_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

enum ag_dmarc_policy {
	AG_DMARC_P_UNSET = 0, /* tag absent */
	AG_DMARC_P_NONE,
	AG_DMARC_P_QUARANTINE,
	AG_DMARC_P_REJECT,
	AG_DMARC_P_INVALID, /* tag present, value not a policy */
};

enum ag_dmarc_psd {
	AG_DMARC_PSD_U = 0, /* default: let the walk decide */
	AG_DMARC_PSD_Y,
	AG_DMARC_PSD_N,
};

enum ag_dmarc_rec {
	AG_DMARC_REC_OK,      /* a DMARC record, in *r */
	AG_DMARC_REC_NOT,     /* not a DMARC record (v missing, not first,
				 not "DMARC1"): discarded, not an error */
	AG_DMARC_REC_INVALID, /* a DMARC record that breaks the syntax */
};

#define AG_DMARC_MAX_URIS 8 /* rua/ruf URIs kept per record */

struct dmarc_record {
	enum ag_dmarc_policy p, sp, np;
	bool adkim_strict, aspf_strict;
	bool testing; /* t=y */
	enum ag_dmarc_psd psd;
	const char *rua[AG_DMARC_MAX_URIS]; /* valid URIs, as published */
	size_t nrua;
	const char *ruf[AG_DMARC_MAX_URIS];
	size_t nruf;
	const char *fo;	  /* as published (only meaningful with ruf) */
	const char *text; /* the whole record */
};

/*
 * dmarc_record_parse - parse one TXT record (its strings already joined)
 * into r, strings copied into the arena. AG_DMARC_REC_INVALID comes with
 * a reason in why.
 */
enum ag_dmarc_rec dmarc_record_parse(struct arena *, const char *txt,
    size_t len, struct dmarc_record *r, char *why, size_t whylen);

/* dmarc_policy_name - "none", "quarantine", "reject" ("" for unset) */
const char *dmarc_policy_name(enum ag_dmarc_policy);

/* dmarc_uri_valid - is s a URI (RFC 3986 scheme ":" ...) DMARC accepts in
 * rua/ruf (4.6: commas and "!" percent-encoded)? */
bool dmarc_uri_valid(const char *s, size_t len);

#endif
