/*
 * ar.h - Authentication-Results (RFC 8601): build ours, read others' id.
 *
 * ar_build() renders a list of method results into one header value:
 * "authserv-id;" then one result per folded line, or "authserv-id; none"
 * when there is nothing to report. Property values are written as a
 * domain, local-part@domain or token when their syntax allows, otherwise
 * as a quoted-string; control characters (CR, LF, ...) never get through.
 * ar_parse_servid() reads only as far as the authserv-id and trusts
 * nothing after it. Everything is allocated in the arena given. No
 * globals; safe in any thread.
 */
#ifndef AG_AR_H
#define AG_AR_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

#define AG_AR_MAX_PROPS 6

struct ar_prop {
	const char *ptype; /* "smtp", "header", "policy", ... */
	const char *name;  /* "mailfrom", "d", ... */
	const char *value;
};

struct ar_result {
	const char *method;  /* "spf", "dkim", "dmarc", ... */
	const char *result;  /* "pass", "fail", ... */
	const char *reason;  /* optional: rendered as reason="..." */
	const char *comment; /* optional: rendered as (comment) */
	const char *logkey;  /* name in the log summary (default: method) */
	struct ar_prop props[AG_AR_MAX_PROPS];
	int nprops;
	struct ar_result *next;
};

/*
 * ar_build - the header value (without "Authentication-Results:").
 * eol is the folding line break ("\r\n" or "\n"), or NULL for one line.
 * Returns NULL when the arena is exhausted.
 */
char *ar_build(struct arena *, const char *servid,
    const struct ar_result *results, const char *eol);

/*
 * ar_parse_servid - the authserv-id of a received A-R header value,
 * unquoted, in the arena. Returns NULL when the value does not start with
 * a well-formed authserv-id (after optional comments and white space).
 */
char *ar_parse_servid(struct arena *, const char *value, size_t len);

/*
 * ar_is_ours - should this received A-R header go? True when its
 * authserv-id equals servid ignoring case, and also when the header is too
 * malformed to parse but mentions servid before its first ';' (a header we
 * cannot read must not be left for a laxer reader downstream).
 */
bool ar_is_ours(
    struct arena *, const char *value, size_t len, const char *servid);

/*
 * ar_quote_value - a property value as RFC 8601 allows it: unchanged when
 * it is a token, a domain name or local-part@domain; else a quoted-string.
 */
char *ar_quote_value(struct arena *, const char *);

#endif
