/*
 * spf_eval.h - one SPF evaluation, shared by spf.c (the check) and
 * spf_dns.c (libspf2's DNS layer). Private to the SPF check.
 *
 * libspf2 evaluates terms; everything RFC 7208 asks that it gets wrong is
 * done here: record selection and strict syntax (spf_record.c), macros
 * expanded by us before libspf2 compiles a record, the 10-term and 2-void
 * limits counted in evaluation order as queries pass through the adapter,
 * PTR answers cut to 10 names, CIDR /0 and names libspf2's syntax cannot
 * carry answered through stand-in names, and the explanation built by us.
 * An evaluation lives in the message arena and is used by one thread.
 */
#ifndef AG_SPF_EVAL_H
#define AG_SPF_EVAL_H

#include <stdbool.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "spf_record.h"

struct msg;

#define AG_SPF_MAX_DNS_TERMS 10 /* RFC 7208 4.6.4 */
#define AG_SPF_MAX_VOID	     2	/* RFC 7208 4.6.4 */
#define AG_SPF_MAX_MX	     10 /* RFC 7208 4.6.4 */
#define AG_SPF_MAX_PTR	     10 /* RFC 7208 4.6.4 */
#define AG_SPF_MAX_SYNTH     64
#define AG_SPF_MAX_SECONDARY 16
#define AG_SPF_SYNTH_SUFFIX  ".authgate-spf.invalid"

struct spf_synth {
	enum ag_spf_synth kind;
	const char *target; /* the real name; CONT: the chunk's text */
	const char *domain; /* the domain of the record that asked for it */
	int family;
};

struct spf_eval {
	struct msg *m;
	SPF_dns_server_t layer;	  /* libspf2 calls us through this */
	SPF_request_t *req;	  /* for the current domain (macro %{d}) */
	struct spf_macro_env env; /* request values; domain set per record */
	long long deadline_ms;	  /* monotonic; past it: temperror */
	/* limits, in evaluation order */
	unsigned nterms, nvoid, nfetch;
	const char *limit; /* a limit was exceeded: permerror, and why */
	const char *why;   /* reason of a permerror/temperror we decided */
	bool dns_error;	   /* a lookup failed temporarily */
	/* names from the last MX/PTR answer: their lookups are the same term */
	const char *secondary[AG_SPF_MAX_SECONDARY];
	unsigned nsecondary;
	bool secondary_ptr; /* they came from a PTR answer */
	struct spf_synth synth[AG_SPF_MAX_SYNTH];
	unsigned nsynth;
	/* %{p}: validated names of the client, computed once */
	const char **validated;
	unsigned nvalidated;
	bool validated_done;
	/* explanation of the latest fail/softfail/neutral libspf2 decided */
	const char *exp_text;
	const char *default_exp; /* spf_default_explanation */
};

/* spfd_init - set up the DNS layer of an evaluation. */
void spfd_init(struct spf_eval *);

#endif
