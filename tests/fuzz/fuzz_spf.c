/*
 * fuzz_spf.c - libFuzzer target: SPF evaluation against a DNS zone the
 * input describes: spf.c (the check), spf_dns.c (libspf2's DNS layer on
 * our resolver), spf_record.c (selection, validation, lowering, macros),
 * libspf2 itself (compile, interpret, include/redirect recursion) and
 * dns.c (its answer conversion), through the message pipeline.
 *
 * No network: dns_test_resolver() makes dns.c ask zone_answer() below
 * where it would ask libunbound, and zone_answer() builds the result
 * libunbound would deliver from the input's records, raw rdata included
 * (so TXT strings whose length bytes lie, A records of 3 bytes, MX names
 * with compression pointers, 300 PTR names... reach the adapter). The
 * snapshots have dns_cache_size = 0, so one input's answers never serve
 * the next.
 *
 * Input (tests/fuzz/gen_spf_seeds.py writes it from the RFC 7208 suite,
 * and decodes any input):
 *   byte 0: flags: bit 0 IPv6 client (else IPv4); bit 1 snapshot B
 *           (budget of 10 queries, no HELO identity, a default
 *           explanation with macros); bit 2 an IPv4 client as an
 *           IPv4-mapped IPv6 socket address
 *   4 or 16 bytes: the client address
 *   string: MAIL FROM, as the MTA gives it (with or without <>)
 *   string: HELO
 *   then records until the input ends, at most ZONE_MAX:
 *     string: owner name (compared without case and final dot)
 *     byte:   type: index into TYPES (TXT A AAAA MX PTR SPF ANY) mod 7;
 *             ANY answers a query of every type
 *     byte:   kind: bits 0-2 what the record is: 1 NXDOMAIN, 2 SERVFAIL,
 *             3 REFUSED, 4 a libunbound error, 5 DNSSEC-bogus data,
 *             6 no answer (a timeout, given at once), else data; bit 3
 *             DNSSEC-secure; bits 4-7 TTL in minutes
 *     string: rdata, wire form, taken as is
 *   A string is a length byte (0xff: a 2-byte big-endian length follows)
 *   and that many bytes; MAIL FROM and HELO are cut at a NUL.
 * A query is answered by the first record of its name whose type is the
 * query's (or ANY): an error kind answers with that error, a data record
 * with every data record of the name of that type (or ANY); a name with
 * records but none for the type is NODATA, an unknown name NXDOMAIN.
 *
 * Each input runs twice, each time a new connection and message (MAIL
 * FROM, RCPT, a header, eoh, eom) with the SPF check alone. Asserts,
 * beyond "no crash, no leak":
 *   - both runs ask the same queries in the same order and reach the
 *     same results, reasons and explanations (no state kept between
 *     evaluations; explanations only when no record uses %{t});
 *   - every result is an enum ag_spf_result; permerror and temperror
 *     carry a reason; an explanation only with fail, at most 403 bytes;
 *   - pass, fail, softfail, neutral or permerror only after some TXT
 *     answer held "v=spf1"; temperror only after a DNS error answer
 *     (SERVFAIL, REFUSED, libunbound error, bogus, timeout) or with the
 *     query budget used up;
 *   - the RFC 7208 4.6.4 limits bound the queries: at most QUERIES_MAX
 *     per message (two prefetches, then per identity the record, 10
 *     terms of at most 1 + 10 lookups, the %{p} names, explanations);
 *   - the inserted headers (A-R, Received-SPF) carry no CR, LF only as
 *     "\n\t" folds and no other control byte; a reject or tempfail has
 *     its 5xx/4xx reply.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <unbound.h>

#include "util/buf.h"
#include "util/str.h"
#include "config.h"
#include "dns.h"
#include "msgctx.h"
#include "snapshot.h"
#include "spf.h"
#include "fuzz_common.h"

#define ZONE_MAX 64
/* 2 prefetches + 2 identities x (record + 10 x (1 + 10) + %{p}: 1 + 10
 * + an explanation per record fetched: 11) */
#define QUERIES_MAX (2 + 2 * (1 + 10 * 11 + 11 + 11))

static const int types[] = {AG_DNS_T_TXT, AG_DNS_T_A, AG_DNS_T_AAAA,
    AG_DNS_T_MX, AG_DNS_T_PTR, AG_DNS_T_SPF, 0 /* ANY */};

enum zone_kind {
	K_DATA = 0,
	K_NXDOMAIN = 1,
	K_SERVFAIL = 2,
	K_REFUSED = 3,
	K_UBERROR = 4,
	K_BOGUS = 5,
	K_TIMEOUT = 6,
};

struct zone_rec {
	const uint8_t *name;
	size_t namelen;
	int type; /* 0: any */
	enum zone_kind kind;
	bool secure;
	unsigned ttl;
	const uint8_t *rdata;
	size_t rdlen;
};

/* One run's view of the DNS, shared with the hook (it has no context). */
static struct {
	struct zone_rec rec[ZONE_MAX];
	size_t nrec;
	unsigned queries;
	unsigned long long qhash; /* of the names and types asked, in order */
	bool spf_served;	  /* a TXT answer held "v=spf1" */
	bool error_served;	  /* SERVFAIL, REFUSED, error, bogus, timeout */
	bool t_macro;		  /* some rdata has "{t" or "{T" */
} zone;

static struct snapshot *snap_a, *snap_b;
static const struct check *const table[] = {&spf_check, NULL};

/* name_eq - a query name and an owner name, without case and final dot */
static bool
name_eq(const char *q, const uint8_t *o, size_t olen)
{
	size_t qlen = strlen(q);

	if (qlen > 0 && q[qlen - 1] == '.')
		qlen--;
	if (olen > 0 && o[olen - 1] == '.')
		olen--;
	return qlen == olen && strncasecmp(q, (const char *)o, qlen) == 0 &&
	    memchr(o, '\0', olen) == NULL;
}

/* has_spf - does rdata hold "v=spf1" anywhere (any case)? */
static bool
has_spf(const uint8_t *p, size_t n)
{
	size_t i;

	for (i = 0; i + 6 <= n; i++)
		if (strncasecmp((const char *)p + i, "v=spf1", 6) == 0)
			return true;
	return false;
}

/* xmalloc0 - zeroed memory as libunbound allocates it (it frees it) */
static void *
xmalloc0(size_t n)
{
	void *p = calloc(1, n ? n : 1);

	if (p == NULL)
		abort();
	return p;
}

/* zone_answer - dns_test_resolver's hook: the input's zone */
static int
zone_answer(const char *name, int rrtype, struct ub_result **resp)
{
	struct ub_result *res;
	const struct zone_rec *first = NULL;
	size_t i, n = 0;
	bool known = false;
	const char *p;

	zone.queries++;
	for (p = name; *p; p++)
		zone.qhash = zone.qhash * 131 + (unsigned char)str_lower(*p);
	zone.qhash = zone.qhash * 131 + (unsigned)rrtype;
	for (i = 0; i < zone.nrec; i++) {
		const struct zone_rec *r = &zone.rec[i];

		if (!name_eq(name, r->name, r->namelen))
			continue;
		known = true;
		if (first == NULL && (r->type == 0 || r->type == rrtype))
			first = r;
	}
	if (first != NULL &&
	    (first->kind == K_UBERROR || first->kind == K_TIMEOUT)) {
		zone.error_served = true;
		return first->kind == K_UBERROR ? UB_SERVFAIL
						: AG_DNS_TEST_TIMEOUT;
	}
	res = xmalloc0(sizeof(*res));
	res->qname = xmalloc0(strlen(name) + 1);
	memcpy(res->qname, name, strlen(name));
	res->qtype = rrtype;
	res->qclass = 1;
	res->data = xmalloc0((ZONE_MAX + 1) * sizeof(char *));
	res->len = xmalloc0((ZONE_MAX + 1) * sizeof(int));
	*resp = res;
	if (!known) {
		res->rcode = 3;
		res->nxdomain = 1;
		return 0;
	}
	if (first == NULL)
		return 0; /* NODATA */
	res->ttl = (int)first->ttl;
	res->secure = first->secure;
	switch (first->kind) {
	case K_NXDOMAIN:
		res->rcode = 3;
		res->nxdomain = 1;
		return 0;
	case K_SERVFAIL:
	case K_REFUSED:
		res->rcode = first->kind == K_SERVFAIL ? 2 : 5;
		zone.error_served = true;
		return 0;
	case K_BOGUS:
		res->bogus = 1;
		res->secure = 0;
		zone.error_served = true;
		break;
	default:
		break;
	}
	/* every data record of the type, from the first on */
	for (i = (size_t)(first - zone.rec); i < zone.nrec; i++) {
		const struct zone_rec *r = &zone.rec[i];

		if (!name_eq(name, r->name, r->namelen) ||
		    (r->type != 0 && r->type != rrtype) ||
		    (r->kind != K_DATA && r->kind != K_BOGUS))
			continue;
		res->data[n] = xmalloc0(r->rdlen);
		memcpy(res->data[n], r->rdata, r->rdlen);
		res->len[n] = (int)r->rdlen;
		if (rrtype == AG_DNS_T_TXT && has_spf(r->rdata, r->rdlen))
			zone.spf_served = true;
		n++;
	}
	res->havedata = n > 0;
	return 0;
}

/* zone_read - the records of the input, until it ends */
static void
zone_read(struct fuzz_reader *r)
{
	zone.nrec = 0;
	while (r->n > 0 && zone.nrec < ZONE_MAX) {
		struct zone_rec *z = &zone.rec[zone.nrec++];
		uint8_t kind;

		z->name = fr_bytes(r, &z->namelen);
		z->type =
		    types[fr_byte(r) % (sizeof(types) / sizeof(types[0]))];
		kind = fr_byte(r);
		z->kind = (enum zone_kind)(kind & 7);
		if (z->kind > K_TIMEOUT)
			z->kind = K_DATA;
		z->secure = (kind & 8) != 0;
		z->ttl = (unsigned)(kind >> 4) * 60;
		z->rdata = fr_bytes(r, &z->rdlen);
		if (z->rdlen >= 2 &&
		    (memmem(z->rdata, z->rdlen, "{t", 2) != NULL ||
			memmem(z->rdata, z->rdlen, "{T", 2) != NULL))
			zone.t_macro = true;
	}
}

/* fuzz_snapshot - config from overrides, the SPF check alone */
static struct snapshot *
fuzz_snapshot(const char *const *ov, size_t n)
{
	struct buf err = BUF_INIT;
	struct config *cfg = config_load("/dev/null", ov, n, &err);
	struct snapshot *s;

	if (cfg == NULL) {
		fprintf(stderr, "fuzz_spf: config: %s", err.data);
		abort();
	}
	if ((s = snapshot_build(cfg, NULL, table, &err)) == NULL) {
		fprintf(stderr, "fuzz_spf: snapshot: %s", err.data);
		abort();
	}
	buf_release(&err);
	return s;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	/* 127.0.0.1@9 is never asked: the hook answers first */
	static const char *const a[] = {
	    "authserv_id = mx.authgate.test",
	    "dns_servers = 127.0.0.1@9",
	    "dns_cache_size = 0",
	    "dns_max_queries_per_message = 1000",
	    "spf_check_internal = yes",
	    "spf_received_header = yes",
	    "spf_fail_action = reject",
	    "spf_softfail_action = tempfail",
	    "spf_permerror_action = reject",
	};
	static const char *const b[] = {
	    "dns_servers = 127.0.0.1@9",
	    "dns_cache_size = 0",
	    "dns_max_queries_per_message = 10",
	    "spf_check_internal = yes",
	    "spf_helo = no",
	    "spf_fail_action = reject",
	    "spf_default_explanation = %{S} via %{i} (%{h}) not for %{d}, "
	    "see %{r} %{l1r-}.%{o}",
	};

	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	dns_test_resolver(zone_answer);
	snap_a = fuzz_snapshot(a, sizeof(a) / sizeof(a[0]));
	snap_b = fuzz_snapshot(b, sizeof(b) / sizeof(b[0]));
	return 0;
}

/* What one run found, kept for the comparison with the other. */
struct run_out {
	enum ag_spf_result result[2];
	char reason[2][256];
	char exp[2][512];
	unsigned queries;
	unsigned long long qhash;
};

/* check_value - an inserted header value: folds only, no controls */
static void
check_value(const char *v)
{
	size_t len = strlen(v), i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '\n') {
			FUZZ_CHECK(v[i + 1] == '\t',
			    "LF not followed by TAB at %zu: '%s'", i,
			    fuzz_escape(v, len));
			continue;
		}
		FUZZ_CHECK(c == '\t' || (c >= 0x20 && c < 0x7f),
		    "byte 0x%02x at %zu of an inserted value: '%s'", c, i,
		    fuzz_escape(v, len));
	}
}

/* check_outcome - one identity's result against what the zone served */
static void
check_outcome(const struct msg *m, const struct spf_outcome *o,
    const char *which, int slot, struct run_out *out)
{
	const char *why = o->reason ? o->reason : "";

	if (!o->checked)
		return;
	FUZZ_CHECK(o->result >= AG_SPF_NONE && o->result <= AG_SPF_PERMERROR,
	    "%s: result %d", which, (int)o->result);
	FUZZ_CHECK(o->reason != NULL ||
		(o->result != AG_SPF_PERMERROR &&
		    o->result != AG_SPF_TEMPERROR),
	    "%s: %s without a reason", which, msg_spf_result_name(o->result));
	FUZZ_CHECK(o->explanation == NULL || o->result == AG_SPF_FAIL,
	    "%s: an explanation with %s", which,
	    msg_spf_result_name(o->result));
	FUZZ_CHECK(o->explanation == NULL || strlen(o->explanation) <= 403,
	    "%s: explanation of %zu bytes", which, strlen(o->explanation));
	if (o->result != AG_SPF_NONE && o->result != AG_SPF_TEMPERROR)
		FUZZ_CHECK(zone.spf_served,
		    "%s: %s (%s) but no TXT answer held v=spf1", which,
		    msg_spf_result_name(o->result),
		    fuzz_escape(why, strlen(why)));
	if (o->result == AG_SPF_TEMPERROR)
		FUZZ_CHECK(zone.error_served ||
			m->dns_budget.used >= m->dns_budget.max,
		    "%s: temperror (%s) without a DNS error (%u of %u "
		    "queries)",
		    which, fuzz_escape(why, strlen(why)), m->dns_budget.used,
		    m->dns_budget.max);
	out->result[slot] = o->result;
	snprintf(out->reason[slot], sizeof(out->reason[slot]), "%s", why);
	snprintf(out->exp[slot], sizeof(out->exp[slot]), "%s",
	    o->explanation ? o->explanation : "");
}

/* check_verdict - the reply and the inserted headers */
static void
check_verdict(const struct msg *m)
{
	const struct verdict *v = &m->verdict;
	const struct hdr_edit *e;

	if (v->action == AG_ACT_TEMPFAIL || v->action == AG_ACT_REJECT) {
		char want = v->action == AG_ACT_TEMPFAIL ? '4' : '5';

		FUZZ_CHECK(v->rcode && v->xcode && v->text &&
			v->rcode[0] == want && v->xcode[0] == want,
		    "%s without a %cxx reply", config_action_name(v->action),
		    want);
	}
	for (e = v->edits; e != NULL; e = e->next)
		if (e->op == AG_EDIT_INSERT) {
			FUZZ_CHECK(e->value != NULL, "INSERT of %s, no value",
			    e->name);
			check_value(e->value);
		}
}

/* run - one connection and message against the zone */
static void
run(struct snapshot *snap, const struct sockaddr *sa, const char *from,
    const char *helo, struct run_out *out)
{
	struct conn *c;
	struct msg *m;

	zone.queries = 0;
	zone.qhash = 0;
	zone.spf_served = zone.error_served = false;
	memset(out, 0, sizeof(*out));
	if ((c = conn_new(snap)) == NULL)
		abort();
	conn_set_client(c, sa, NULL, NULL);
	conn_set_helo(c, helo);
	conn_connected(c);
	if ((m = msg_new(c)) == NULL)
		abort();
	msg_mail(m, from);
	msg_rcpt(m, "<postmaster@mx.authgate.test>");
	msg_header(m, "From", " a@example.org");
	msg_eoh(m);
	msg_eom(m);
	check_outcome(m, &m->spf_mailfrom, "mailfrom", 0, out);
	check_outcome(m, &m->spf_helo, "helo", 1, out);
	check_verdict(m);
	FUZZ_CHECK(zone.queries <= QUERIES_MAX,
	    "%u queries for one message (at most %d)", zone.queries,
	    QUERIES_MAX);
	out->queries = zone.queries;
	out->qhash = zone.qhash;
	msg_free(m);
	conn_free(c);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_reader r = {data, size};
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	uint8_t flags = fr_byte(&r), addr[16];
	static struct run_out one, two;
	char *from, *helo;
	size_t i;
	int k;

	memset(&ss, 0, sizeof(ss));
	for (i = 0; i < ((flags & 1) ? 16u : 4u); i++)
		addr[i] = fr_byte(&r);
	if (flags & 1) {
		s6->sin6_family = AF_INET6;
		memcpy(&s6->sin6_addr, addr, 16);
	} else if (flags & 4) {
		s6->sin6_family = AF_INET6;
		s6->sin6_addr.s6_addr[10] = s6->sin6_addr.s6_addr[11] = 0xff;
		memcpy(&s6->sin6_addr.s6_addr[12], addr, 4);
	} else {
		s4->sin_family = AF_INET;
		memcpy(&s4->sin_addr, addr, 4);
	}
	from = fr_str(&r);
	helo = fr_str(&r);
	zone.t_macro = false;
	zone_read(&r);

	run((flags & 2) ? snap_b : snap_a, (const struct sockaddr *)&ss, from,
	    helo, &one);
	run((flags & 2) ? snap_b : snap_a, (const struct sockaddr *)&ss, from,
	    helo, &two);
	FUZZ_CHECK(one.queries == two.queries && one.qhash == two.qhash,
	    "the second run asked other queries (%u then %u)", one.queries,
	    two.queries);
	for (k = 0; k < 2; k++) {
		FUZZ_CHECK(one.result[k] == two.result[k] &&
			strcmp(one.reason[k], two.reason[k]) == 0,
		    "%s: %s (%s), then %s (%s)", k ? "helo" : "mailfrom",
		    msg_spf_result_name(one.result[k]), one.reason[k],
		    msg_spf_result_name(two.result[k]), two.reason[k]);
		FUZZ_CHECK(zone.t_macro || strcmp(one.exp[k], two.exp[k]) == 0,
		    "explanation '%s', then '%s'", one.exp[k], two.exp[k]);
	}
	free(from);
	free(helo);
	return 0;
}
