/*
 * reports_xml.c - records, XML, gzip and MIME of one aggregate report
 * (see reports_xml.h).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zlib.h>

#include "util/buf.h"
#include "util/xalloc.h"
#include "dmarc_history.h"
#include "reports_xml.h"

#define RXML_NS "urn:ietf:params:xml:ns:dmarc-2.0"

/* The fields that make a record (3.1.1.7: one per IP, result and
 * authentication identifiers), in the order they are hashed. */
enum {
	RX_IP,
	RX_DISP,
	RX_DKIM_AL,
	RX_SPF_AL,
	RX_REASON,
	RX_COMMENT,
	RX_FROM,
	RX_ENV_FROM,
	RX_ENV_TO,
	RX_SPF_DOMAIN,
	RX_SPF_RESULT,
	RX_DKIM,
	RX_NF
};

struct rxml_rec {
	const char *f[RX_NF]; /* into data */
	unsigned long long count;
	uint64_t hash;
	char data[];
};

struct rxml {
	char *policy_domain;
	struct rxml_rec **recs; /* first-seen order */
	size_t n, alloc;
	size_t *slots; /* open addressing: index + 1, 0 is empty */
	size_t nslots;
	unsigned long long rows;
	struct dhist_row latest;
	bool have_latest;
};

/* The schema's lists (Appendix A). */
static const char *const rxml_policies[] = {
    "none", "quarantine", "reject", NULL};
static const char *const rxml_dispositions[] = {
    "none", "pass", "quarantine", "reject", NULL};
static const char *const rxml_alignments[] = {"r", "s", NULL};
static const char *const rxml_testing[] = {"n", "y", NULL};
static const char *const rxml_reasons[] = {"local_policy", "mailing_list",
    "other", "policy_test_mode", "trusted_forwarder", NULL};
static const char *const rxml_dkim_results[] = {"none", "pass", "fail",
    "policy", "neutral", "temperror", "permerror", NULL};
static const char *const rxml_spf_results[] = {"none", "pass", "fail",
    "softfail", "policy", "neutral", "temperror", "permerror", NULL};

/* rxml_word - v when the list has it, else fallback */
static const char *
rxml_word(const char *v, const char *const *list, const char *fallback)
{
	for (; *list != NULL; list++)
		if (strcmp(v, *list) == 0)
			return *list;
	return fallback;
}

/* ---- grouping ----------------------------------------------------------- */

/* rxml_new - an empty report */
struct rxml *
rxml_new(const char *policy_domain)
{
	struct rxml *r = xcalloc(1, sizeof(*r));

	r->policy_domain = xstrdup(policy_domain);
	r->nslots = 64;
	r->slots = xcalloc(r->nslots, sizeof(*r->slots));
	return r;
}

/* rxml_free - records, table, report */
void
rxml_free(struct rxml *r)
{
	size_t i;

	if (r == NULL)
		return;
	for (i = 0; i < r->n; i++)
		free(r->recs[i]);
	free(r->recs);
	free(r->slots);
	free(r->policy_domain);
	free(r);
}

/* rxml_fields - the tuple of a row */
static void
rxml_fields(const struct dhist_row *row, const char *f[RX_NF])
{
	f[RX_IP] = row->source_ip;
	f[RX_DISP] = row->disposition;
	f[RX_DKIM_AL] = row->dkim_aligned ? "1" : "0";
	f[RX_SPF_AL] = row->spf_aligned ? "1" : "0";
	f[RX_REASON] = row->reason_type;
	f[RX_COMMENT] = row->reason_comment;
	f[RX_FROM] = row->header_from;
	f[RX_ENV_FROM] = row->envelope_from;
	f[RX_ENV_TO] = row->envelope_to;
	f[RX_SPF_DOMAIN] = row->spf_domain;
	f[RX_SPF_RESULT] = row->spf_result;
	f[RX_DKIM] = row->dkim;
}

/* rxml_hash - FNV-1a over the fields, each ended by its NUL */
static uint64_t
rxml_hash(const char *const f[RX_NF])
{
	uint64_t h = 14695981039346656037ULL;
	const unsigned char *p;
	size_t i;

	for (i = 0; i < RX_NF; i++) {
		for (p = (const unsigned char *)f[i];; p++) {
			h = (h ^ *p) * 1099511628211ULL;
			if (*p == '\0')
				break;
		}
	}
	return h;
}

/* rxml_same - has record rec exactly these fields? */
static bool
rxml_same(const struct rxml_rec *rec, uint64_t h, const char *const f[RX_NF])
{
	size_t i;

	if (rec->hash != h)
		return false;
	for (i = 0; i < RX_NF; i++)
		if (strcmp(rec->f[i], f[i]) != 0)
			return false;
	return true;
}

/* rxml_slot - the slot of the record with these fields, or the empty slot
 * where it would go */
static size_t
rxml_slot(const struct rxml *r, uint64_t h, const char *const f[RX_NF])
{
	size_t mask = r->nslots - 1, i = (size_t)h & mask;

	while (r->slots[i] != 0 && !rxml_same(r->recs[r->slots[i] - 1], h, f))
		i = (i + 1) & mask;
	return i;
}

/* rxml_grow - twice the slots, records placed again */
static void
rxml_grow(struct rxml *r)
{
	size_t k, i, mask;

	free(r->slots);
	r->nslots *= 2;
	r->slots = xcalloc(r->nslots, sizeof(*r->slots));
	mask = r->nslots - 1;
	for (k = 0; k < r->n; k++) {
		i = (size_t)r->recs[k]->hash & mask;
		while (r->slots[i] != 0)
			i = (i + 1) & mask;
		r->slots[i] = k + 1;
	}
}

/* rxml_rec_new - a record holding copies of the fields */
static struct rxml_rec *
rxml_rec_new(uint64_t h, const char *const f[RX_NF])
{
	size_t len[RX_NF], total = 0, i;
	struct rxml_rec *rec;
	char *p;

	for (i = 0; i < RX_NF; i++)
		total += (len[i] = strlen(f[i])) + 1;
	rec = xmalloc(sizeof(*rec) + total);
	rec->hash = h;
	rec->count = 0;
	for (p = rec->data, i = 0; i < RX_NF; i++) {
		memcpy(p, f[i], len[i] + 1);
		rec->f[i] = p;
		p += len[i] + 1;
	}
	return rec;
}

/* rxml_add - one row into its record */
int
rxml_add(void *arg, const struct dhist_row *row)
{
	struct rxml *r = arg;
	const char *f[RX_NF];
	uint64_t h;
	size_t i;

	if (strcmp(row->policy_domain, r->policy_domain) != 0)
		return 0;
	rxml_fields(row, f);
	h = rxml_hash(f);
	i = rxml_slot(r, h, f);
	if (r->slots[i] == 0) {
		if (r->n == r->alloc) {
			r->alloc = r->alloc ? 2 * r->alloc : 16;
			r->recs =
			    xreallocarray(r->recs, r->alloc, sizeof(*r->recs));
		}
		r->recs[r->n++] = rxml_rec_new(h, f);
		r->slots[i] = r->n;
		if (2 * r->n > r->nslots)
			rxml_grow(r);
		i = rxml_slot(r, h, f);
	}
	r->recs[r->slots[i] - 1]->count++;
	r->rows++;
	if (!r->have_latest || row->t >= r->latest.t) {
		r->latest = *row;
		r->have_latest = true;
	}
	return 0;
}

/* rxml_rows - rows counted */
unsigned long long
rxml_rows(const struct rxml *r)
{
	return r->rows;
}

/* rxml_records - records formed */
size_t
rxml_records(const struct rxml *r)
{
	return r->n;
}

/* rxml_latest - the newest row */
const struct dhist_row *
rxml_latest(const struct rxml *r)
{
	return r->have_latest ? &r->latest : NULL;
}

/* ---- XML ---------------------------------------------------------------- */

/* rxml_utf8 - length of the valid UTF-8 sequence of an XML Char at s, or
 * 0 (RFC 3629 4: no overlong forms, no surrogates; XML 1.0 2.2: not
 * U+FFFE, U+FFFF) */
static size_t
rxml_utf8(const unsigned char *s)
{
	unsigned long c;
	size_t n, i;

	if (s[0] < 0xc2)
		return 0;
	n = s[0] < 0xe0 ? 2 : s[0] < 0xf0 ? 3 : s[0] < 0xf5 ? 4 : 0;
	if (n == 0)
		return 0;
	c = s[0] & (0x7f >> n);
	for (i = 1; i < n; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		c = (c << 6) | (s[i] & 0x3f);
	}
	if ((n == 3 && c < 0x800) || (n == 4 && c < 0x10000) ||
	    (c >= 0xd800 && c <= 0xdfff) || c == 0xfffe || c == 0xffff ||
	    c > 0x10ffff)
		return 0;
	return n;
}

/* rxml_escape - character data */
void
rxml_escape(struct buf *b, const char *s)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n;

	while (*p != '\0') {
		switch (*p) {
		case '&':
			buf_addstr(b, "&amp;");
			break;
		case '<':
			buf_addstr(b, "&lt;");
			break;
		case '>':
			buf_addstr(b, "&gt;");
			break;
		case '"':
			buf_addstr(b, "&quot;");
			break;
		case '\'':
			buf_addstr(b, "&apos;");
			break;
		default:
			if (*p >= 0x80) {
				if ((n = rxml_utf8(p)) == 0) {
					buf_addch(b, '?');
					break;
				}
				buf_add(b, p, n);
				p += n;
				continue;
			}
			/* XML 1.0 2.2: of the controls only tab, LF, CR */
			buf_addch(b,
			    *p < 0x20 && *p != '\t' && *p != '\n' && *p != '\r'
				? '?'
				: *p);
			break;
		}
		p++;
	}
}

/* rxml_elem - <name>value</name> on a line of its own */
static void
rxml_elem(struct buf *b, int depth, const char *name, const char *value)
{
	buf_addf(b, "%*s<%s>", 2 * depth, "", name);
	rxml_escape(b, value);
	buf_addf(b, "</%s>\n", name);
}

/* rxml_open, rxml_close - a parent element */
static void
rxml_open(struct buf *b, int depth, const char *name)
{
	buf_addf(b, "%*s<%s>\n", 2 * depth, "", name);
}

static void
rxml_close(struct buf *b, int depth, const char *name)
{
	buf_addf(b, "%*s</%s>\n", 2 * depth, "", name);
}

/* rxml_metadata - report_metadata (3.1.1.3) */
static void
rxml_metadata(struct buf *b, const struct rxml_meta *m)
{
	char t[24];

	rxml_open(b, 1, "report_metadata");
	rxml_elem(b, 2, "org_name", m->org_name);
	rxml_elem(b, 2, "email", m->email);
	rxml_elem(b, 2, "report_id", m->report_id);
	rxml_open(b, 2, "date_range");
	snprintf(t, sizeof(t), "%lld", m->begin);
	rxml_elem(b, 3, "begin", t);
	snprintf(t, sizeof(t), "%lld", m->end);
	rxml_elem(b, 3, "end", t);
	rxml_close(b, 2, "date_range");
	if (m->generator != NULL && m->generator[0] != '\0')
		rxml_elem(b, 2, "generator", m->generator);
	rxml_close(b, 1, "report_metadata");
}

/* rxml_policy - policy_published (3.1.1.5): "Unspecified tags have their
 * default values" (RFC 9989 4.7: sp defaults to p, np to sp) */
static void
rxml_policy(struct buf *b, const char *domain, const struct dhist_row *l)
{
	const char *p = rxml_word(l->p, rxml_policies, "none");
	const char *sp = rxml_word(l->sp, rxml_policies, p);
	const char *np = rxml_word(l->np, rxml_policies, sp);

	rxml_open(b, 1, "policy_published");
	rxml_elem(b, 2, "domain", domain);
	rxml_elem(b, 2, "p", p);
	rxml_elem(b, 2, "sp", sp);
	rxml_elem(b, 2, "np", np);
	rxml_elem(b, 2, "adkim", rxml_word(l->adkim, rxml_alignments, "r"));
	rxml_elem(b, 2, "aspf", rxml_word(l->aspf, rxml_alignments, "r"));
	rxml_elem(b, 2, "discovery_method", "treewalk");
	if (l->fo[0] != '\0')
		rxml_elem(b, 2, "fo", l->fo);
	rxml_elem(b, 2, "testing", rxml_word(l->testing, rxml_testing, "n"));
	rxml_close(b, 1, "policy_published");
}

/* rxml_dkim - one auth_results/dkim per "domain selector result" entry of
 * the row's list (';' between entries), in the order stored (3.1.3) */
static void
rxml_dkim(struct buf *b, const char *list)
{
	const char *e = list, *end, *sp1, *sp2;
	char *entry, *sel, *res;

	while (*e != '\0') {
		end = strchr(e, ';');
		if (end == NULL)
			end = e + strlen(e);
		entry = xstrndup(e, (size_t)(end - e));
		sp1 = strchr(entry, ' ');
		sp2 = sp1 ? strchr(sp1 + 1, ' ') : NULL;
		if (sp2 != NULL) {
			sel = entry + (sp1 - entry);
			res = entry + (sp2 - entry);
			*sel++ = '\0';
			*res++ = '\0';
			rxml_open(b, 3, "dkim");
			rxml_elem(b, 4, "domain", entry);
			rxml_elem(b, 4, "selector", sel);
			rxml_elem(b, 4, "result",
			    rxml_word(res, rxml_dkim_results, "permerror"));
			rxml_close(b, 3, "dkim");
		}
		free(entry);
		e = *end ? end + 1 : end;
	}
}

/* rxml_record - one record (3.1.1.7 - 3.1.1.14) */
static void
rxml_record(struct buf *b, const struct rxml_rec *r)
{
	char n[24];

	rxml_open(b, 1, "record");
	rxml_open(b, 2, "row");
	rxml_elem(b, 3, "source_ip", r->f[RX_IP]);
	snprintf(n, sizeof(n), "%llu", r->count);
	rxml_elem(b, 3, "count", n);
	rxml_open(b, 3, "policy_evaluated");
	rxml_elem(b, 4, "disposition",
	    rxml_word(r->f[RX_DISP], rxml_dispositions, "none"));
	rxml_elem(b, 4, "dkim", r->f[RX_DKIM_AL][0] == '1' ? "pass" : "fail");
	rxml_elem(b, 4, "spf", r->f[RX_SPF_AL][0] == '1' ? "pass" : "fail");
	if (r->f[RX_REASON][0] != '\0') {
		rxml_open(b, 4, "reason");
		rxml_elem(b, 5, "type",
		    rxml_word(r->f[RX_REASON], rxml_reasons, "other"));
		if (r->f[RX_COMMENT][0] != '\0')
			rxml_elem(b, 5, "comment", r->f[RX_COMMENT]);
		rxml_close(b, 4, "reason");
	}
	rxml_close(b, 3, "policy_evaluated");
	rxml_close(b, 2, "row");
	rxml_open(b, 2, "identifiers");
	rxml_elem(b, 3, "header_from", r->f[RX_FROM]);
	if (r->f[RX_ENV_FROM][0] != '\0')
		rxml_elem(b, 3, "envelope_from", r->f[RX_ENV_FROM]);
	if (r->f[RX_ENV_TO][0] != '\0')
		rxml_elem(b, 3, "envelope_to", r->f[RX_ENV_TO]);
	rxml_close(b, 2, "identifiers");
	rxml_open(b, 2, "auth_results");
	rxml_dkim(b, r->f[RX_DKIM]);
	/* 3.1.1.13: only the MAIL FROM identity, scope mfrom */
	if (r->f[RX_SPF_RESULT][0] != '\0') {
		rxml_open(b, 3, "spf");
		rxml_elem(b, 4, "domain", r->f[RX_SPF_DOMAIN]);
		rxml_elem(b, 4, "scope", "mfrom");
		rxml_elem(b, 4, "result",
		    rxml_word(r->f[RX_SPF_RESULT], rxml_spf_results, "none"));
		rxml_close(b, 3, "spf");
	}
	rxml_close(b, 2, "auth_results");
	rxml_close(b, 1, "record");
}

/* rxml_render - the document, elements in the schema's order */
void
rxml_render(const struct rxml *r, const struct rxml_meta *m, struct buf *b)
{
	static const struct dhist_row none;
	size_t i;

	buf_addstr(b, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n");
	buf_addstr(b, "<feedback xmlns=\"" RXML_NS "\">\n");
	rxml_elem(b, 1, "version", "1.0");
	rxml_metadata(b, m);
	rxml_policy(b, r->policy_domain, r->have_latest ? &r->latest : &none);
	for (i = 0; i < r->n; i++)
		rxml_record(b, r->recs[i]);
	buf_addstr(b, "</feedback>\n");
}

/* ---- gzip and mail -------------------------------------------------------- */

/* rxml_zalloc, rxml_zfree - zlib's memory through xalloc */
static voidpf
rxml_zalloc(voidpf opaque, uInt items, uInt size)
{
	(void)opaque;
	return xreallocarray(NULL, items, size);
}

static void
rxml_zfree(voidpf opaque, voidpf p)
{
	(void)opaque;
	free(p);
}

/* rxml_gzip - one deflate stream with a gzip wrapper (windowBits 16+15) */
int
rxml_gzip(
    const void *data, size_t len, struct buf *out, char *err, size_t errlen)
{
	z_stream z;
	size_t start = out->len, room;
	int rc;

	memset(&z, 0, sizeof(z));
	z.zalloc = rxml_zalloc;
	z.zfree = rxml_zfree;
	if (len > (size_t)1 << 30) {
		snprintf(err, errlen, "report of %zu bytes is too large", len);
		return -1;
	}
	if ((rc = deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + 15, 9,
		 Z_DEFAULT_STRATEGY)) != Z_OK) {
		snprintf(err, errlen, "zlib: deflateInit2: %d", rc);
		return -1;
	}
	room = deflateBound(&z, (uLong)len);
	buf_grow(out, room);
	z.next_in = (Bytef *)(uintptr_t)data;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out->data + start;
	z.avail_out = (uInt)room;
	rc = deflate(&z, Z_FINISH);
	if (rc != Z_STREAM_END) {
		snprintf(err, errlen, "zlib: deflate: %d %s", rc,
		    z.msg ? z.msg : "");
		deflateEnd(&z);
		return -1;
	}
	buf_setlen(out, start + (size_t)z.total_out);
	deflateEnd(&z);
	return 0;
}

/* rxml_base64 - RFC 2045 6.8: lines of 76 characters */
static void
rxml_base64(struct buf *b, const unsigned char *p, size_t len)
{
	static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
				  "abcdefghijklmnopqrstuvwxyz0123456789+/";
	size_t i, col = 0;
	unsigned long v;

	for (i = 0; i < len; i += 3) {
		v = (unsigned long)p[i] << 16;
		if (i + 1 < len)
			v |= (unsigned long)p[i + 1] << 8;
		if (i + 2 < len)
			v |= p[i + 2];
		buf_addch(b, tab[(v >> 18) & 63]);
		buf_addch(b, tab[(v >> 12) & 63]);
		buf_addch(b, i + 1 < len ? tab[(v >> 6) & 63] : '=');
		buf_addch(b, i + 2 < len ? tab[v & 63] : '=');
		if ((col += 4) == 76) {
			buf_addch(b, '\n');
			col = 0;
		}
	}
	if (col > 0)
		buf_addch(b, '\n');
}

/* rxml_mail - headers, the text part, the attachment */
void
rxml_mail(
    const struct rxml_mail *m, const void *gz, size_t gzlen, struct buf *b)
{
	time_t t = (time_t)m->date;
	char date[64], boundary[40];
	const unsigned char *p;
	uint64_t h = 14695981039346656037ULL;
	struct tm tm;

	/* a boundary base64 and our text cannot contain (RFC 2046 5.1.1) */
	for (p = (const unsigned char *)m->message_id; *p; p++)
		h = (h ^ *p) * 1099511628211ULL;
	snprintf(boundary, sizeof(boundary), "=_authgate_%016llx",
	    (unsigned long long)h);
	gmtime_r(&t, &tm);
	strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000", &tm);
	buf_addf(b, "From: %s\n", m->from);
	buf_addf(b, "To: %s\n", m->to);
	buf_addf(b, "Subject: %s\n", m->subject);
	buf_addf(b, "Date: %s\n", date);
	buf_addf(b, "Message-ID: <%s>\n", m->message_id);
	buf_addstr(b, "Auto-Submitted: auto-generated\n");
	buf_addstr(b, "MIME-Version: 1.0\n");
	buf_addf(
	    b, "Content-Type: multipart/mixed; boundary=\"%s\"\n\n", boundary);
	buf_addstr(b, "This is a multi-part message in MIME format.\n\n");
	buf_addf(b, "--%s\n", boundary);
	buf_addstr(b,
	    "Content-Type: text/plain; charset=us-ascii\n"
	    "Content-Transfer-Encoding: 7bit\n\n");
	buf_addstr(b, m->text);
	buf_addf(b, "\n--%s\n", boundary);
	buf_addf(b,
	    "Content-Type: application/gzip; name=\"%s\"\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment; filename=\"%s\"\n\n",
	    m->filename, m->filename);
	rxml_base64(b, gz, gzlen);
	buf_addf(b, "--%s--\n", boundary);
}
