/*
 * rules.h - the rules check: evaluates the compiled rule set (see
 * rulefile.h, authgate-rules(5)) against each message and sums the
 * scores of the rules that hit into m->score and m->hits. policy.c
 * turns the score into an action with the spam_* thresholds.
 *
 * Inputs: the headers, the body through the MIME walk (mime.c), the
 * results of the checks before it in the table (SPF, DKIM, DMARC), the
 * SMTP facts, and the DNSBL/URIBL/rDNS answers (dnsbl.c). Mail of
 * internal clients is not scored unless rules_internal says so.
 */
#ifndef AG_RULES_H
#define AG_RULES_H

#include <stddef.h>
#include <time.h>

extern const struct check rules_check;

/* The default rule set, compiled in from the policies/ rule files at build time
 * (rules_builtin.c, generated). */
struct rules_builtin_file {
	const char *name;
	const char *text;
};
extern const struct rules_builtin_file rules_builtin_files[];
extern const size_t rules_builtin_nfiles;

/* rules_parse_date - an RFC 5322 date-time (obsolete forms and zone
 * names included) into *t; -1 when it is not one. */
int rules_parse_date(const char *s, time_t *t);

#endif
