/*
 * reports_xml.h - one DMARC aggregate report (RFC 9990) for
 * authgate-reports: the history rows of a period grouped into records,
 * the XML document, its gzip form, and the mail that carries it.
 *
 * Rows with the same (source IP, disposition, aligned DKIM and SPF,
 * reason, identifiers, auth results) become one record with their count
 * (3.1.1.7); records keep the order of their first row. Every text value
 * is escaped, and values that the schema restricts to a list are checked
 * against it, so any row, even from a shared database, gives a valid
 * document. No DNS, no store, no globals; memory from xalloc (aborts when
 * exhausted); one thread per struct rxml.
 */
#ifndef AG_REPORTS_XML_H
#define AG_REPORTS_XML_H

#include <stddef.h>

struct buf;
struct dhist_row;

/* What report_metadata says (3.1.1.3). */
struct rxml_meta {
	const char *org_name;
	const char *email;
	const char *report_id;
	const char *generator;
	long long begin, end; /* date_range, Unix seconds */
};

/* The message a report travels in (3.5.2). */
struct rxml_mail {
	const char *from;
	const char *to;
	const char *subject;
	const char *message_id; /* without the angle brackets */
	const char *filename;	/* of the attachment */
	const char *text;	/* the human-readable part */
	long long date;
};

struct rxml;

/* rxml_new - an empty report for policy_domain */
struct rxml *rxml_new(const char *policy_domain);

/* rxml_free - release it; NULL is a no-op */
void rxml_free(struct rxml *);

/*
 * rxml_add - count one row: into the record with the same tuple, or a new
 * one. Rows of another policy domain are ignored. Returns 0 (a callback
 * for dhist_rows(), whose arg is the struct rxml).
 */
int rxml_add(void *rxml, const struct dhist_row *);

/* rxml_rows, rxml_records - rows counted, records they formed */
unsigned long long rxml_rows(const struct rxml *);
size_t rxml_records(const struct rxml *);

/* rxml_latest - the newest row (policy_published, rua), NULL when none */
const struct dhist_row *rxml_latest(const struct rxml *);

/*
 * rxml_render - the XML document (namespace dmarc-2.0, version 1.0) of
 * the report, appended to out. policy_published comes from the newest
 * row, with each unset tag at its default (sp = p, np = sp).
 */
void rxml_render(const struct rxml *, const struct rxml_meta *, struct buf *);

/* rxml_gzip - data compressed as a gzip file (RFC 1952) into out;
 * -1 with a reason in err */
int rxml_gzip(
    const void *data, size_t len, struct buf *out, char *err, size_t errlen);

/*
 * rxml_mail - an RFC 5322 message with MIME (RFC 2045): headers, the text
 * part and the gzip attachment in base64, lines ending in LF (the local
 * submission form sendmail -t reads), appended to out. Header values must
 * be printable ASCII (the caller checks addresses and domains).
 */
void rxml_mail(
    const struct rxml_mail *, const void *gz, size_t gzlen, struct buf *out);

/* rxml_escape - s as XML character data: markup escaped, bytes that are
 * not valid XML 1.0 UTF-8 replaced by '?' */
void rxml_escape(struct buf *, const char *s);

#endif
