/*
 * rfc5322.h - header section splitting (RFC 5322 2.2, 3.6).
 *
 * rfc5322_next_field() walks a header section held in memory, one field at
 * a time, as an MTA would: a field is a name of printable characters,
 * optional white space, ':' and a value with its continuation lines; the
 * section ends at an empty line, or at the first line that is not a field
 * (which then starts the body). Line ends may be CRLF or LF. Nothing is
 * allocated; returned pointers point into the caller's data.
 * rfc5322_addr_list() reads the mailboxes of an address header, bounded
 * and hostile-input safe (no recursion, every loop advances). Thread-safe.
 */
#ifndef AG_RFC5322_H
#define AG_RFC5322_H

#include <stddef.h>

struct rfc5322_field {
	const char *name;
	size_t namelen;
	const char *value; /* after ':', leading space kept, folds kept */
	size_t valuelen;   /* without the final line end */
};

enum ag_r5322 {
	AG_R5322_FIELD, /* *f filled, *off past the field */
	AG_R5322_BODY,	/* section over, *off at the first body byte */
};

enum ag_r5322 rfc5322_next_field(
    const char *data, size_t len, size_t *off, struct rfc5322_field *f);

struct arena;

/* One mailbox of an address list: local-part unquoted, domain as written
 * (a domain literal keeps its brackets). */
struct rfc5322_addr {
	const char *local;
	const char *domain; /* "" when the address has none */
};

#define AG_R5322_MAX_ADDRS 64 /* more addresses than this: -1 */

/*
 * rfc5322_addr_list - the mailboxes of an address-list header value
 * (From, Sender, Reply-To; RFC 5322 3.4 with the obsolete forms of 4.4:
 * display names, quoted strings, nested comments, groups, source routes).
 * Returns the number of mailboxes (0 for an empty group), or -1 when the
 * value is not an address list or holds more than max (or
 * AG_R5322_MAX_ADDRS) mailboxes; out gets them (copies in the arena).
 */
int rfc5322_addr_list(struct arena *, const char *value, size_t len,
    struct rfc5322_addr *out, size_t max);

#endif
