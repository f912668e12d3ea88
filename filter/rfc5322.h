/*
 * rfc5322.h - header section splitting (RFC 5322 2.2, 3.6).
 *
 * rfc5322_next_field() walks a header section held in memory, one field at
 * a time, as an MTA would: a field is a name of printable characters,
 * optional white space, ':' and a value with its continuation lines; the
 * section ends at an empty line, or at the first line that is not a field
 * (which then starts the body). Line ends may be CRLF or LF. Nothing is
 * allocated; returned pointers point into the caller's data. Thread-safe.
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

#endif
