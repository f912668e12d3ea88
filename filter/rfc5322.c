/*
 * rfc5322.c - header section splitting (see rfc5322.h).
 */
#include <string.h>

#include "rfc5322.h"

/* rfc5322_line_end - offset just past the line that starts at off */
static size_t
rfc5322_line_end(const char *data, size_t len, size_t off)
{
	const char *nl = memchr(data + off, '\n', len - off);

	return nl ? (size_t)(nl - data) + 1 : len;
}

/* rfc5322_next_field - one field, or the start of the body */
enum ag_r5322
rfc5322_next_field(
    const char *data, size_t len, size_t *off, struct rfc5322_field *f)
{
	size_t p = *off, name_end, end, vend;

	if (p >= len)
		return AG_R5322_BODY;
	/* Empty line: the body follows it. */
	if (data[p] == '\n' ||
	    (data[p] == '\r' && p + 1 < len && data[p + 1] == '\n')) {
		*off = p + (data[p] == '\r' ? 2 : 1);
		return AG_R5322_BODY;
	}
	/* RFC 5322 3.6.8 field name: printable US-ASCII except ':' */
	name_end = p;
	while (name_end < len && data[name_end] > 32 && data[name_end] < 127 &&
	    data[name_end] != ':')
		name_end++;
	end = name_end;
	while (end < len && (data[end] == ' ' || data[end] == '\t'))
		end++; /* obsolete syntax: WSP before the colon */
	if (name_end == p || end >= len || data[end] != ':')
		return AG_R5322_BODY; /* not a field: the body starts here */
	f->name = data + p;
	f->namelen = name_end - p;
	f->value = data + end + 1;
	end = rfc5322_line_end(data, len, end + 1);
	while (end < len && (data[end] == ' ' || data[end] == '\t'))
		end = rfc5322_line_end(data, len, end);
	vend = end;
	if (vend > 0 && data[vend - 1] == '\n')
		vend--;
	if (vend > 0 && data[vend - 1] == '\r' &&
	    vend > (size_t)(f->value - data))
		vend--;
	f->valuelen = vend - (size_t)(f->value - data);
	*off = end;
	return AG_R5322_FIELD;
}
