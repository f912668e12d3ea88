/*
 * spf_dns.c - libspf2's DNS layer on our resolver (see spf_eval.h).
 *
 * libspf2 asks three things of a DNS layer: lookup (A, AAAA, MX, PTR for
 * the terms it evaluates), get_spf (the compiled record of a domain, for
 * the first domain and for each include/redirect) and get_exp (the text of
 * an exp=). Every query goes through dns.c, under the message's query
 * budget and the evaluation's deadline; answers come from our cache when
 * the record was prefetched at MAIL FROM.
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <arpa/nameser.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <spf2/spf.h>
#include <spf2/spf_dns.h>

#include "util/arena.h"
#include "util/cidr.h"
#include "util/str.h"
#include "msgctx.h"
#include "spf_eval.h"

#define AG_SPF_HERR_OK 0   /* NETDB_SUCCESS */
#define AG_SPF_EXP_MAX 400 /* bytes of explanation in a reply */

/* spfd_now_ms - monotonic milliseconds */
static long long
spfd_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* spfd_limit - record the first limit exceeded (the result: permerror) */
static void
spfd_limit(struct spf_eval *ev, const char *why)
{
	if (ev->limit == NULL)
		ev->limit = why;
}

/* spfd_term - a DNS-querying term starts: count it; -1 past the limit */
static int
spfd_term(struct spf_eval *ev)
{
	/* RFC 7208 4.6.4: at most 10 terms that cause DNS queries */
	if (++ev->nterms > AG_SPF_MAX_DNS_TERMS) {
		spfd_limit(ev, "more than 10 DNS-querying terms");
		return -1;
	}
	return 0;
}

/*
 * spfd_query - one lookup through dns.c. Empty answers count as void
 * lookups (RFC 7208 4.6.4) unless this is the exp= text.
 */
static enum ag_dns_rc
spfd_query(struct spf_eval *ev, const char *name, int type,
    const struct dns_answer **ans, bool count_void)
{
	struct dns_query *q;
	enum ag_dns_rc rc;

	*ans = NULL;
	if (spfd_now_ms() > ev->deadline_ms) {
		ev->why = "SPF evaluation took longer than spf_timeout";
		ev->dns_error = true;
		return AG_DNS_TIMEOUT;
	}
	if ((q = msg_dns_start(ev->m, name, type)) == NULL) {
		ev->dns_error = true;
		return AG_DNS_SERVFAIL;
	}
	rc = dns_query_wait(q, ans);
	switch (rc) {
	case AG_DNS_OK:
		break;
	case AG_DNS_NODATA:
	case AG_DNS_NXDOMAIN:
	case AG_DNS_BADNAME:
		if (count_void && ++ev->nvoid > AG_SPF_MAX_VOID)
			spfd_limit(ev, "more than 2 void DNS lookups");
		break;
	case AG_DNS_BUDGET:
		ev->why = "DNS query budget of the message used up";
		ev->dns_error = true;
		break;
	default:
		ev->why = arena_printf(ev->m->arena, "DNS %s for %s",
		    dns_rc_name(rc), log_safe(ev->m, name));
		ev->dns_error = true;
		break;
	}
	return rc;
}

/* spfd_herrno - libspf2's view of a result */
static SPF_dns_stat_t
spfd_herrno(enum ag_dns_rc rc)
{
	switch (rc) {
	case AG_DNS_OK:
		return AG_SPF_HERR_OK;
	case AG_DNS_NODATA:
		return NO_DATA;
	case AG_DNS_NXDOMAIN:
	case AG_DNS_BADNAME:
		return HOST_NOT_FOUND;
	default:
		return TRY_AGAIN;
	}
}

/* spfd_rr_new - an answer object libspf2 will free */
static SPF_dns_rr_t *
spfd_rr_new(struct spf_eval *ev, const char *domain, ns_type type,
    SPF_dns_stat_t herrno)
{
	SPF_dns_rr_t *rr =
	    SPF_dns_rr_new_init(&ev->layer, domain, type, 0, herrno);

	if (rr == NULL) {
		/* libspf2 dereferences whatever we return: nothing to do */
		log_err("spf: out of memory in the DNS layer");
		abort();
	}
	return rr;
}

/* spfd_rr_add - one record of an answer; -1 when out of memory */
static int
spfd_rr_add(SPF_dns_rr_t *rr, const void *data, size_t len)
{
	if (SPF_dns_rr_buf_realloc(rr, rr->num_rr, len + 1) != SPF_E_SUCCESS)
		return -1;
	memcpy(rr->rr[rr->num_rr], data, len);
	((char *)rr->rr[rr->num_rr])[len] = '\0';
	rr->num_rr++;
	return 0;
}

/* spfd_secondary - the names of an MX/PTR answer: their lookups follow */
static void
spfd_secondary(struct spf_eval *ev, const char *name)
{
	if (ev->nsecondary < AG_SPF_MAX_SECONDARY)
		ev->secondary[ev->nsecondary++] = name;
}

/* spfd_is_secondary - a lookup for a name an MX/PTR answer gave */
static bool
spfd_is_secondary(struct spf_eval *ev, const char *name)
{
	unsigned i;

	for (i = 0; i < ev->nsecondary; i++)
		if (ev->secondary[i] != NULL &&
		    str_casecmp(ev->secondary[i], name) == 0) {
			ev->secondary[i] = NULL;
			return true;
		}
	return false;
}

/* spfd_fill - copy a dns.c answer into libspf2's form */
static void
spfd_fill(
    struct spf_eval *ev, SPF_dns_rr_t *rr, const struct dns_answer *a, int type)
{
	char name[AG_DNS_MAX_NAME + 2];
	unsigned i, max = a->nrr;
	unsigned char addr[16];

	if (type == AG_DNS_T_PTR && max > AG_SPF_MAX_PTR)
		max = AG_SPF_MAX_PTR; /* RFC 7208 4.6.4: ignore the rest */
	if (type == AG_DNS_T_MX || type == AG_DNS_T_PTR) {
		ev->nsecondary = 0;
		ev->secondary_ptr = (type == AG_DNS_T_PTR);
	}
	for (i = 0; i < max; i++) {
		const struct dns_rr *r = &a->rr[i];
		int ok = 0;

		switch (type) {
		case AG_DNS_T_A:
			if (dns_rr_addr(r, type, addr) == 4)
				ok = spfd_rr_add(rr, addr + 12, 4) == 0;
			break;
		case AG_DNS_T_AAAA:
			if (dns_rr_addr(r, type, addr) == 6)
				ok = spfd_rr_add(rr, addr, 16) == 0;
			break;
		case AG_DNS_T_MX:
		case AG_DNS_T_PTR:
			if (dns_rr_name(r, type == AG_DNS_T_MX ? 2 : 0, name,
				sizeof(name)) == 0) {
				ok = spfd_rr_add(rr, name, strlen(name)) == 0;
				spfd_secondary(
				    ev, arena_strdup(ev->m->arena, name));
			}
			break;
		default: {
			size_t len;
			char *txt = dns_rr_txt(ev->m->arena, r, &len);

			if (txt != NULL)
				ok = spfd_rr_add(rr, txt, strlen(txt)) == 0;
			break;
		}
		}
		(void)ok; /* a malformed record is skipped */
	}
	if (rr->num_rr == 0 && rr->herrno == AG_SPF_HERR_OK)
		rr->herrno = NO_DATA;
}

/* spfd_synth_find - the stand-in entry behind a name, or NULL */
static struct spf_synth *
spfd_synth_find(struct spf_eval *ev, const char *name)
{
	size_t len = strlen(name), slen = strlen(AG_SPF_SYNTH_SUFFIX);
	unsigned long long idx;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len <= slen + 1 || name[0] != 's' ||
	    !str_ncaseeq(name + len - slen, AG_SPF_SYNTH_SUFFIX, slen) ||
	    str_parse_uint(name + 1, len - slen - 1, ev->nsynth, &idx) == -1 ||
	    idx >= ev->nsynth)
		return NULL;
	return &ev->synth[idx];
}

/* spfd_synth_add - spf_record_lower's callback: a stand-in name */
static const char *
spfd_synth_add(void *ctx, enum ag_spf_synth kind, const char *target)
{
	struct spf_eval *ev = ctx;

	if (ev->nsynth == AG_SPF_MAX_SYNTH) {
		spfd_limit(ev, "record needs too many rewritten terms");
		return "s0" AG_SPF_SYNTH_SUFFIX;
	}
	ev->synth[ev->nsynth].kind = kind;
	ev->synth[ev->nsynth].target = target;
	ev->synth[ev->nsynth].domain = ev->env.domain;
	ev->synth[ev->nsynth].family = ev->env.family;
	return arena_printf(
	    ev->m->arena, "s%u%s", ev->nsynth++, AG_SPF_SYNTH_SUFFIX);
}

/* spfd_any_address - does name have an address of the client's family? */
static enum ag_dns_rc
spfd_any_address(struct spf_eval *ev, const char *name)
{
	const struct dns_answer *a;
	enum ag_dns_rc rc;

	rc = spfd_query(ev, name,
	    ev->env.family == 4 ? AG_DNS_T_A : AG_DNS_T_AAAA, &a, true);
	return (rc == AG_DNS_OK && a->nrr > 0) ? AG_DNS_OK : rc;
}

/* spfd_mx_any - mx/0: does some MX host (10 at most) have an address? */
static enum ag_dns_rc
spfd_mx_any(struct spf_eval *ev, const char *target)
{
	const struct dns_answer *a;
	char host[AG_DNS_MAX_NAME + 2];
	enum ag_dns_rc rc, hrc;
	unsigned i;

	rc = spfd_query(ev, target, AG_DNS_T_MX, &a, true);
	if (rc != AG_DNS_OK)
		return rc;
	if (a->nrr > AG_SPF_MAX_MX) {
		spfd_limit(ev, "more than 10 MX records");
		return AG_DNS_NXDOMAIN;
	}
	for (i = 0; i < a->nrr; i++) {
		if (dns_rr_name(&a->rr[i], 2, host, sizeof(host)) == -1)
			continue;
		hrc = spfd_any_address(ev, host);
		if (hrc == AG_DNS_OK || dns_rc_temporary(hrc))
			return hrc;
	}
	return AG_DNS_NODATA;
}

/* spfd_synth_lookup - answer a stand-in name */
static SPF_dns_rr_t *
spfd_synth_lookup(struct spf_eval *ev, const struct spf_synth *sy,
    const char *domain, ns_type type)
{
	static const unsigned char yes[4] = {127, 0, 0, 2};
	const struct dns_answer *a;
	SPF_dns_rr_t *rr;
	enum ag_dns_rc rc;

	switch (sy->kind) {
	case AG_SPF_SYN_ALIAS:
		rc = spfd_query(ev, sy->target, (int)type, &a, true);
		rr = spfd_rr_new(ev, domain, type, spfd_herrno(rc));
		if (rc == AG_DNS_OK)
			spfd_fill(ev, rr, a, (int)type);
		return rr;
	case AG_SPF_SYN_A_ANY:
	case AG_SPF_SYN_MX_ANY:
		rc = sy->kind == AG_SPF_SYN_A_ANY
		    ? spfd_any_address(ev, sy->target)
		    : spfd_mx_any(ev, sy->target);
		rr = spfd_rr_new(ev, domain, type, spfd_herrno(rc));
		if (rc == AG_DNS_OK && type == ns_t_a &&
		    spfd_rr_add(rr, yes, 4) == -1)
			rr->herrno = TRY_AGAIN;
		return rr;
	default:
		return spfd_rr_new(ev, domain, type, HOST_NOT_FOUND);
	}
}

/* spfd_lookup - libspf2's lookup hook */
static SPF_dns_rr_t *
spfd_lookup(
    SPF_dns_server_t *srv, const char *domain, ns_type type, int should_cache)
{
	struct spf_eval *ev = srv->hook;
	const struct spf_synth *sy;
	const struct dns_answer *a;
	SPF_dns_rr_t *rr;
	enum ag_dns_rc rc;

	bool secondary;

	(void)should_cache;
	log_msg(ev->m, LOG_DEBUG, "spf: lookup %s type %d (terms %u, void %u)",
	    log_safe(ev->m, domain), (int)type, ev->nterms, ev->nvoid);
	if (ev->limit != NULL) /* the result is decided: ask nothing more */
		return spfd_rr_new(ev, domain, type, HOST_NOT_FOUND);
	/* A/AAAA for the hosts of the last MX/PTR answer: same term */
	secondary = (type == ns_t_a || type == ns_t_aaaa) &&
	    spfd_is_secondary(ev, domain);
	if (!secondary && spfd_term(ev) == -1)
		return spfd_rr_new(ev, domain, type, HOST_NOT_FOUND);
	if ((sy = spfd_synth_find(ev, domain)) != NULL)
		return spfd_synth_lookup(ev, sy, domain, type);
	rc = spfd_query(ev, domain, (int)type, &a, true);
	/* RFC 7208 5.5: a PTR name whose address lookup fails is skipped */
	if (secondary && ev->secondary_ptr && rc != AG_DNS_OK)
		return spfd_rr_new(ev, domain, type, HOST_NOT_FOUND);
	if (rc == AG_DNS_OK && type == ns_t_mx && a->nrr > AG_SPF_MAX_MX) {
		/* RFC 7208 4.6.4: more than 10 MX names: permerror */
		spfd_limit(ev, "more than 10 MX records");
		return spfd_rr_new(ev, domain, type, HOST_NOT_FOUND);
	}
	rr = spfd_rr_new(ev, domain, type, spfd_herrno(rc));
	if (rc == AG_DNS_OK)
		spfd_fill(ev, rr, a, (int)type);
	return rr;
}

/* spfd_reverse_name - the PTR name of the client address */
static char *
spfd_reverse_name(struct spf_eval *ev)
{
	static const char hex[] = "0123456789abcdef";
	const unsigned char *ip = ev->env.ip;
	char buf[80];
	size_t n = 0;
	int k;

	if (ev->env.family == 4)
		return arena_printf(ev->m->arena, "%u.%u.%u.%u.in-addr.arpa",
		    ip[15], ip[14], ip[13], ip[12]);
	for (k = 15; k >= 0; k--) {
		buf[n++] = hex[ip[k] & 15];
		buf[n++] = '.';
		buf[n++] = hex[ip[k] >> 4];
		buf[n++] = '.';
	}
	memcpy(buf + n, "ip6.arpa", 9);
	return arena_strdup(ev->m->arena, buf);
}

/* spfd_validated - RFC 7208 5.5: names whose addresses include the client */
static void
spfd_validated(struct spf_eval *ev)
{
	const struct dns_answer *a, *b;
	char name[AG_DNS_MAX_NAME + 2];
	const char *rev;
	unsigned i, j, n;
	unsigned char addr[16];

	if (ev->validated_done)
		return;
	ev->validated_done = true;
	if ((rev = spfd_reverse_name(ev)) == NULL ||
	    spfd_query(ev, rev, AG_DNS_T_PTR, &a, true) != AG_DNS_OK)
		return;
	n = a->nrr < AG_SPF_MAX_PTR ? a->nrr : AG_SPF_MAX_PTR;
	ev->validated = arena_allocarray(ev->m->arena, n + 1, sizeof(char *));
	if (ev->validated == NULL)
		return;
	for (i = 0; i < n; i++) {
		if (dns_rr_name(&a->rr[i], 0, name, sizeof(name)) == -1)
			continue;
		if (spfd_query(ev, name,
			ev->env.family == 4 ? AG_DNS_T_A : AG_DNS_T_AAAA, &b,
			true) != AG_DNS_OK)
			continue;
		for (j = 0; j < b->nrr; j++)
			if (dns_rr_addr(&b->rr[j], b->rrtype, addr) != -1 &&
			    memcmp(addr, ev->env.ip, 16) == 0) {
				ev->validated[ev->nvalidated++] =
				    arena_strdup(ev->m->arena, name);
				break;
			}
	}
}

/* spfd_choose_p - %{p} for domain d (RFC 7208 7.3) */
static const char *
spfd_choose_p(struct spf_eval *ev, const char *d)
{
	size_t dl = strlen(d);
	unsigned i;

	for (i = 0; i < ev->nvalidated; i++)
		if (str_casecmp(ev->validated[i], d) == 0)
			return ev->validated[i];
	for (i = 0; i < ev->nvalidated; i++) {
		size_t l = strlen(ev->validated[i]);

		if (l > dl && ev->validated[i][l - dl - 1] == '.' &&
		    str_casecmp(ev->validated[i] + l - dl, d) == 0)
			return ev->validated[i];
	}
	return ev->nvalidated ? ev->validated[0] : NULL;
}

/* spfd_record_uses_p - does any domain-spec of the record use %{p}? */
static bool
spfd_record_uses_p(const struct spf_rec *rec)
{
	size_t i;

	for (i = 0; i < rec->nterms; i++)
		if (rec->terms[i].spec &&
		    spf_macro_uses(rec->terms[i].spec, 'p'))
			return true;
	return (rec->redirect && spf_macro_uses(rec->redirect, 'p')) ||
	    (rec->exp && spf_macro_uses(rec->exp, 'p'));
}

/* spfd_fail - set the response for a record that cannot be evaluated */
static SPF_errcode_t
spfd_fail(SPF_response_t *resp, SPF_result_t result, SPF_errcode_t code,
    const char *why)
{
	resp->result = result;
	resp->reason = SPF_REASON_FAILURE;
	return SPF_response_add_error(resp, code, "%s", why);
}

/* spfd_select - the one SPF record among a name's TXT records */
static const char *
spfd_select(
    struct spf_eval *ev, const struct dns_answer *a, size_t *lenp, int *count)
{
	const char *found = NULL;
	unsigned i;

	*count = 0;
	for (i = 0; i < a->nrr; i++) {
		size_t len;
		char *txt = dns_rr_txt(ev->m->arena, &a->rr[i], &len);

		if (txt != NULL && spf_record_is_spf(txt, len)) {
			(*count)++;
			found = txt;
			*lenp = len;
		}
	}
	return found;
}

/* spfd_get_spf - libspf2's get_spf hook: select, validate, lower, compile */
static SPF_errcode_t
spfd_get_spf(SPF_server_t *server, SPF_request_t *req, SPF_response_t *resp,
    SPF_record_t **recp)
{
	struct spf_eval *ev = server->resolver->hook;
	const char *domain = req->cur_dom, *name = domain, *txt, *why;
	const struct spf_synth *sy;
	const struct dns_answer *a;
	struct spf_rec rec;
	enum ag_dns_rc rc;
	char *lowered;
	size_t len = 0;
	int count;

	*recp = NULL;
	sy = spfd_synth_find(ev, domain);
	if (sy != NULL && sy->kind == AG_SPF_SYN_CONT) {
		/* the rest of a record we split: no new term, no lookup */
		if (SPF_record_compile(server, resp, recp, sy->target) ==
		    SPF_E_SUCCESS)
			return SPF_E_SUCCESS;
		if (*recp != NULL)
			SPF_record_free(*recp);
		*recp = NULL;
		ev->why = "SPF record not understood";
		return spfd_fail(
		    resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX, ev->why);
	}
	if (ev->nfetch++ > 0 && spfd_term(ev) == -1) /* include, redirect */
		return spfd_fail(
		    resp, SPF_RESULT_PERMERROR, SPF_E_BIG_DNS, ev->limit);
	if (ev->limit != NULL)
		return spfd_fail(
		    resp, SPF_RESULT_PERMERROR, SPF_E_BIG_DNS, ev->limit);
	if (sy != NULL)
		name = sy->target;
	rc = spfd_query(ev, name, AG_DNS_T_TXT, &a, true);
	if (dns_rc_temporary(rc) || rc == AG_DNS_BUDGET || rc == AG_DNS_BOGUS)
		return spfd_fail(resp, SPF_RESULT_TEMPERROR, SPF_E_DNS_ERROR,
		    ev->why ? ev->why : "temporary DNS failure");
	if (rc != AG_DNS_OK || (txt = spfd_select(ev, a, &len, &count)) == NULL)
		return spfd_fail(
		    resp, SPF_RESULT_NONE, SPF_E_NOT_SPF, "no SPF record");
	if (count > 1) {
		ev->why = arena_printf(ev->m->arena,
		    "%s has more than one SPF record", log_safe(ev->m, name));
		return spfd_fail(
		    resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX, ev->why);
	}
	if (spf_record_parse(ev->m->arena, txt, len, &rec, &why) == -1) {
		ev->why = arena_printf(ev->m->arena, "SPF record of %s: %s",
		    log_safe(ev->m, name), why);
		return spfd_fail(
		    resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX, ev->why);
	}
	ev->env.domain = name;
	ev->env.validated = NULL;
	if (spfd_record_uses_p(&rec)) {
		spfd_validated(ev);
		ev->env.validated = spfd_choose_p(ev, name);
	}
	if (rec.exp == NULL) /* so get_exp is asked for every fail */
		rec.exp = spfd_synth_add(ev, AG_SPF_SYN_EXP_DEFAULT, name);
	lowered = spf_record_lower(
	    ev->m->arena, &rec, &ev->env, spfd_synth_add, ev, &why);
	if (lowered == NULL)
		return spfd_fail(
		    resp, SPF_RESULT_TEMPERROR, SPF_E_NO_MEMORY, why);
	log_msg(ev->m, LOG_DEBUG, "spf: record of %s as evaluated: %s",
	    log_safe(ev->m, name), log_safe(ev->m, lowered));
	if (SPF_record_compile(server, resp, recp, lowered) != SPF_E_SUCCESS) {
		/* our validator let through what libspf2 refuses: log it */
		log_msg(ev->m, LOG_WARNING,
		    "spf: libspf2 refused the record "
		    "of %s as rewritten: %s",
		    log_safe(ev->m, name), log_safe(ev->m, lowered));
		ev->why = "SPF record not understood";
		if (*recp != NULL)
			SPF_record_free(*recp);
		*recp = NULL;
		return spfd_fail(
		    resp, SPF_RESULT_PERMERROR, SPF_E_SYNTAX, ev->why);
	}
	return SPF_E_SUCCESS;
}

/* spfd_exp_text - the expanded text of an exp= target, or NULL */
static const char *
spfd_exp_text(struct spf_eval *ev, const char *name, const char *cur)
{
	const struct dns_answer *a;
	struct spf_macro_env env = ev->env;
	const char *why;
	size_t len;
	char *txt;

	/* RFC 7208 6.2: one TXT record, valid syntax, else as if no exp= */
	if (spfd_query(ev, name, AG_DNS_T_TXT, &a, false) != AG_DNS_OK ||
	    a->nrr != 1 ||
	    (txt = dns_rr_txt(ev->m->arena, &a->rr[0], &len)) == NULL ||
	    strlen(txt) != len || spf_macro_check(txt, true, &why) == -1)
		return NULL;
	env.domain = cur;
	if (spf_macro_uses(txt, 'p')) {
		spfd_validated(ev);
		env.validated = spfd_choose_p(ev, cur);
	}
	return spf_macro_expand(ev->m->arena, txt, &env, false);
}

/* spfd_get_exp - libspf2's get_exp hook: the explanation is ours */
static SPF_errcode_t
spfd_get_exp(
    SPF_server_t *server, const char *domain, char **bufp, size_t *buflenp)
{
	struct spf_eval *ev = server->resolver->hook;
	const struct spf_synth *sy = spfd_synth_find(ev, domain);
	const char *cur =
	    ev->req && ev->req->cur_dom ? ev->req->cur_dom : ev->env.domain;
	const char *text = NULL, *name = domain;
	struct spf_macro_env env = ev->env;
	const struct spf_synth *cont = spfd_synth_find(ev, cur);
	size_t len;
	char *nb;

	if (cont != NULL && cont->kind == AG_SPF_SYN_CONT)
		cur = cont->domain; /* a chunk speaks for its record */
	if (sy != NULL) {
		name = sy->kind == AG_SPF_SYN_EXP_DEFAULT ? NULL : sy->target;
		if (sy->kind == AG_SPF_SYN_EXP_DEFAULT)
			cur = sy->target;
	}
	if (name != NULL)
		text = spfd_exp_text(ev, name, cur);
	if (text == NULL) {
		env.domain = cur;
		text = spf_macro_expand(
		    ev->m->arena, ev->default_exp, &env, false);
	}
	/* it becomes an SMTP reply: RFC 5321 4.5.3.1.5 caps a line at 512 */
	if (text != NULL && strlen(text) > AG_SPF_EXP_MAX)
		text =
		    arena_printf(ev->m->arena, "%.*s...", AG_SPF_EXP_MAX, text);
	ev->exp_text = text;
	if (text == NULL)
		text = "";
	len = strlen(text) + 1;
	if (*buflenp < len) {
		/* AG_LIB_ALLOC: libspf2 malloc'd this buffer and frees it */
		if ((nb = realloc(*bufp, len)) == NULL)
			return SPF_E_NO_MEMORY;
		*bufp = nb;
		*buflenp = len;
	}
	memcpy(*bufp, text, len);
	return SPF_E_SUCCESS;
}

/* spfd_destroy - libspf2 frees its resolver: ours lives in the arena */
static void
spfd_destroy(SPF_dns_server_t *srv)
{
	(void)srv;
}

/* spfd_init - wire the layer to the evaluation */
void
spfd_init(struct spf_eval *ev)
{
	memset(&ev->layer, 0, sizeof(ev->layer));
	ev->layer.destroy = spfd_destroy;
	ev->layer.lookup = spfd_lookup;
	ev->layer.get_spf = spfd_get_spf;
	ev->layer.get_exp = spfd_get_exp;
	ev->layer.name = "authgate";
	ev->layer.hook = ev;
}
