/*
 * spf.c - the SPF check (see spf.h and spf_eval.h).
 */
#include <sys/types.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <spf2/spf.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "msgctx.h"
#include "spf_record.h"
#include "spf_eval.h"
#include "spf.h"

struct spf_msg {
	bool evaluated;
	bool pf_mailfrom, pf_helo; /* spf_prefetch done for the identity */
};

/* spf_domain_ok - RFC 7208 4.3: a multi-label name with sane labels */
static bool
spf_domain_ok(const char *d)
{
	size_t len, label = 0, labels = 0, i;

	if (d == NULL || *d == '\0' || *d == '[')
		return false;
	len = strlen(d);
	if (d[len - 1] == '.')
		len--;
	if (len == 0 || len > AG_DNS_MAX_NAME)
		return false;
	for (i = 0; i <= len; i++) {
		if (i == len || d[i] == '.') {
			if (label == 0 || label > 63)
				return false;
			labels++;
			label = 0;
			continue;
		}
		label++;
	}
	return labels >= 2;
}

/* spf_now_ms - monotonic milliseconds */
static long long
spf_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* spf_map - libspf2's result, then ours where we decided */
static enum ag_spf_result
spf_map(const struct spf_eval *ev, SPF_response_t *resp)
{
	if (ev->limit != NULL)
		return AG_SPF_PERMERROR;
	switch (SPF_response_result(resp)) {
	case SPF_RESULT_PASS:
		return AG_SPF_PASS;
	case SPF_RESULT_FAIL:
		return AG_SPF_FAIL;
	case SPF_RESULT_SOFTFAIL:
		return AG_SPF_SOFTFAIL;
	case SPF_RESULT_NEUTRAL:
		return AG_SPF_NEUTRAL;
	case SPF_RESULT_NONE:
		return AG_SPF_NONE;
	case SPF_RESULT_TEMPERROR:
		return AG_SPF_TEMPERROR;
	case SPF_RESULT_PERMERROR:
		return AG_SPF_PERMERROR;
	default:
		/* SPF_RESULT_INVALID: an error libspf2 did not classify */
		return (SPF_response_errcode(resp) == SPF_E_DNS_ERROR ||
			   ev->dns_error)
		    ? AG_SPF_TEMPERROR
		    : AG_SPF_PERMERROR;
	}
}

/*
 * spf_query - SPF_request_query_mailfrom() without its free pass: libspf2
 * answers "pass" for any domain when the client is a loopback address
 * (SPF_REASON_LOCALHOST). RFC 7208 has no such rule, and a loopback
 * client that internal_hosts leaves out is an ordinary client: with the
 * free pass, any local process could claim any domain's SPF (and so its
 * DMARC). The steps are the library's own, minus that shortcut.
 */
static SPF_errcode_t
spf_query(SPF_server_t *server, SPF_request_t *req, SPF_response_t **respp)
{
	SPF_record_t *rec = NULL;
	SPF_errcode_t err;

	if ((*respp = SPF_response_new(req)) == NULL)
		return SPF_E_NO_MEMORY;
	req->cur_dom = req->use_helo ? req->helo_dom : req->env_from_dp;
	err = SPF_server_get_record(server, req, *respp, &rec);
	if (err != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		return err;
	}
	(*respp)->spf_record_exp = rec;
	err = SPF_record_interpret(rec, req, *respp, 0);
	(*respp)->spf_record_exp = NULL;
	SPF_record_free(rec);
	return err;
}

/* spf_check_host - RFC 7208 4: evaluate one identity with libspf2 */
static void
spf_check_host(struct msg *m, const char *sender, const char *domain,
    struct spf_outcome *o)
{
	const struct conn *c = m->conn;
	struct spf_eval *ev;
	SPF_server_t *server = NULL;
	SPF_request_t *req = NULL;
	SPF_response_t *resp = NULL;
	struct in_addr a4;
	struct in6_addr a6;

	o->checked = true;
	o->identity = sender;
	o->domain = domain;
	if (!spf_domain_ok(domain)) {
		o->result = AG_SPF_NONE; /* RFC 7208 4.3 */
		o->reason = "not a valid domain name";
		return;
	}
	if ((ev = arena_zalloc(m->arena, sizeof(*ev))) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "spf: out of memory");
		o->result = AG_SPF_TEMPERROR;
		return;
	}
	ev->m = m;
	ev->env.sender = sender;
	ev->env.domain = domain;
	ev->env.ip = c->client_addr;
	ev->env.family = c->client_family;
	ev->env.helo = c->helo ? c->helo : "";
	ev->env.receiver = msg_authserv_id(m);
	ev->env.now = (long long)time(NULL);
	ev->default_exp = m->cfg->spf_default_explanation;
	ev->deadline_ms = spf_now_ms() + m->cfg->spf_timeout_ms;
	spfd_init(ev);
	if ((server = SPF_server_new_dns(&ev->layer, 0)) == NULL ||
	    (req = SPF_request_new(server)) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "spf: libspf2 setup failed");
		o->result = AG_SPF_TEMPERROR;
		goto out;
	}
	ev->req = req;
	if (c->client_family == 4) {
		memcpy(&a4, c->client_addr + 12, 4);
		SPF_request_set_ipv4(req, a4);
	} else {
		memcpy(&a6, c->client_addr, 16);
		SPF_request_set_ipv6(req, a6);
	}
	SPF_request_set_helo_dom(req, c->helo && *c->helo ? c->helo : domain);
	if (SPF_request_set_env_from(req, sender) != 0) {
		o->result = AG_SPF_NONE;
		o->reason = "unusable sender address";
		goto out;
	}
	spf_query(server, req, &resp);
	o->result = resp ? spf_map(ev, resp) : AG_SPF_TEMPERROR;
	if (o->result == AG_SPF_PERMERROR || o->result == AG_SPF_TEMPERROR)
		o->reason = ev->limit ? ev->limit
		    : ev->why	      ? ev->why
		    : resp	      ? SPF_strerror(SPF_response_errcode(resp))
				      : "error";
	if (o->result == AG_SPF_FAIL)
		o->explanation = ev->exp_text;
out:
	if (resp != NULL)
		SPF_response_free(resp);
	if (req != NULL)
		SPF_request_free(req);
	if (server != NULL)
		SPF_server_free(server);
}

/* spf_sender - the MAIL FROM identity: local@domain, postmaster@helo */
static const char *
spf_sender(struct msg *m, const char **domainp)
{
	const char *from = m->mail_from, *at = strrchr(from, '@');
	const char *helo = m->conn->helo ? m->conn->helo : "";

	if (*from == '\0') { /* RFC 7208 2.4: the null sender */
		*domainp = helo;
		return arena_printf(m->arena, "postmaster@%s", helo);
	}
	if (at == NULL) { /* no domain: the whole thing is one */
		*domainp = from;
		return arena_printf(m->arena, "postmaster@%s", from);
	}
	*domainp = at + 1;
	if (at == from) /* RFC 7208 4.3: no local-part */
		return arena_printf(m->arena, "postmaster%s", from);
	return from;
}

/* spf_wanted - is this message SPF-checked at all? */
static bool
spf_wanted(const struct msg *m)
{
	return m->cfg->spf_enable && m->conn->client_family != 0 &&
	    (!m->internal || m->cfg->spf_check_internal);
}

/*
 * spf_helo_kept - the HELO result an earlier message of this connection
 * got for the same HELO name (one client address, one HELO: one answer
 * for the length of a connection), or NULL. Temporary errors are not
 * kept.
 */
static const struct spf_outcome *
spf_helo_kept(const struct msg *m)
{
	const struct conn *c = m->conn;

	return c->spf_helo != NULL && c->helo != NULL &&
		c->spf_helo_for == c->helo
	    ? c->spf_helo
	    : NULL;
}

/* spf_helo_keep - keep m's HELO result for the connection */
static void
spf_helo_keep(struct msg *m)
{
	struct conn *c = m->conn;
	const struct spf_outcome *o = &m->spf_helo;
	struct spf_outcome *k;

	if (!o->checked || o->result == AG_SPF_TEMPERROR)
		return;
	if ((k = c->spf_helo) == NULL &&
	    (k = arena_zalloc(c->arena, sizeof(*k))) == NULL)
		return;
	*k = *o;
	k->identity = o->identity ? arena_strdup(c->arena, o->identity) : NULL;
	k->domain = o->domain ? arena_strdup(c->arena, o->domain) : NULL;
	k->reason = o->reason ? arena_strdup(c->arena, o->reason) : NULL;
	k->explanation =
	    o->explanation ? arena_strdup(c->arena, o->explanation) : NULL;
	c->spf_helo = k;
	c->spf_helo_for = c->helo;
}

/* spf_on_mail - start the record lookups as soon as the sender is known */
static int
spf_on_mail(struct msg *m)
{
	const char *domain;

	if (!spf_wanted(m))
		return 0;
	if ((m->spf = arena_zalloc(m->arena, sizeof(*m->spf))) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "spf: out of memory");
		return -1;
	}
	spf_sender(m, &domain);
	if (spf_domain_ok(domain))
		msg_dns_start(m, domain, AG_DNS_T_TXT);
	if (m->cfg->spf_helo && spf_domain_ok(m->conn->helo) &&
	    str_casecmp(m->conn->helo, domain) != 0 && spf_helo_kept(m) == NULL)
		msg_dns_start(m, m->conn->helo, AG_DNS_T_TXT);
	return 0;
}

/* spf_term_covers - does an ip4/ip6 term match the client address? */
static bool
spf_term_covers(const struct spf_term *t, const unsigned char *ip, int family)
{
	int bits = t->mech == AG_SPF_M_IP4 ? (t->cidr4 < 0 ? 32 : t->cidr4) + 96
					   : (t->cidr6 < 0 ? 128 : t->cidr6);
	int i;

	if ((t->mech == AG_SPF_M_IP4) != (family == 4))
		return false;
	for (i = 0; i < bits; i++)
		if (((ip[i / 8] ^ t->addr[i / 8]) >> (7 - i % 8)) & 1)
			return false;
	return true;
}

/* spf_record_of - the one SPF record of a TXT answer, parsed, or -1 */
static int
spf_record_of(struct msg *m, const struct dns_answer *a, struct spf_rec *rec)
{
	const char *txt = NULL, *why;
	size_t len = 0, i, n;
	char *t;

	for (i = 0; i < a->nrr; i++) {
		if ((t = dns_rr_txt(m->arena, &a->rr[i], &n)) == NULL)
			return -1;
		if (!spf_record_is_spf(t, n))
			continue;
		if (txt != NULL)
			return -1; /* two records: permerror, nothing to fetch */
		txt = t;
		len = n;
	}
	if (txt == NULL)
		return -1;
	return spf_record_parse(m->arena, txt, len, rec, &why);
}

/*
 * spf_prefetch - once domain's record (asked at MAIL FROM) is in, start
 * the lookups its terms will need up to the first one that matches the
 * client for sure: include and redirect targets' TXT, a's address, mx's
 * MX, exists' A, names without macros only, no more than the 10 that RFC
 * 7208 4.6.4 allows. With wait, block for the record; without, do nothing
 * until it is there. Returns true once done (or nothing to do). The
 * message keeps the answers (see dns_budget): the evaluation finds them,
 * and the second round trips of both identities overlap each other and
 * the DNSBL lookups the body starts.
 */
static bool
spf_prefetch(struct msg *m, const char *domain, bool wait)
{
	const struct conn *c = m->conn;
	const struct dns_answer *a;
	struct dns_query *q;
	struct spf_rec rec;
	const char *name;
	size_t i, n = 0;
	int type;

	if (!spf_domain_ok(domain) ||
	    (q = msg_dns_start(m, domain, AG_DNS_T_TXT)) == NULL)
		return true;
	if (!wait && !dns_query_ready(q))
		return false;
	if (dns_query_wait(q, &a) != AG_DNS_OK ||
	    spf_record_of(m, a, &rec) == -1)
		return true;
	for (i = 0; i < rec.nterms && n < 10; i++) {
		const struct spf_term *t = &rec.terms[i];

		if (t->mech == AG_SPF_M_ALL ||
		    ((t->mech == AG_SPF_M_IP4 || t->mech == AG_SPF_M_IP6) &&
			spf_term_covers(t, c->client_addr, c->client_family)))
			return true; /* evaluation ends here */
		switch (t->mech) {
		case AG_SPF_M_INCLUDE:
			type = AG_DNS_T_TXT;
			break;
		case AG_SPF_M_A:
			type =
			    c->client_family == 6 ? AG_DNS_T_AAAA : AG_DNS_T_A;
			break;
		case AG_SPF_M_MX:
			type = AG_DNS_T_MX;
			break;
		case AG_SPF_M_EXISTS:
			type = AG_DNS_T_A;
			break;
		default:
			continue;
		}
		name = t->spec ? t->spec : domain;
		if (strchr(name, '%') == NULL && msg_dns_start(m, name, type))
			n++;
	}
	if (rec.redirect != NULL && n < 10 && strchr(rec.redirect, '%') == NULL)
		msg_dns_start(m, rec.redirect, AG_DNS_T_TXT);
	return true;
}

/* spf_advance - prefetch for both identities, each once */
static void
spf_advance(struct msg *m, bool wait)
{
	const char *domain, *helo = m->conn->helo;

	if (m->spf == NULL)
		return;
	if (!m->spf->pf_mailfrom && spf_sender(m, &domain) != NULL)
		m->spf->pf_mailfrom = spf_prefetch(m, domain, wait);
	if (!m->spf->pf_helo) {
		m->spf->pf_helo = !m->cfg->spf_helo || helo == NULL ||
		    m->mail_from[0] == '\0' || spf_helo_kept(m) != NULL ||
		    spf_prefetch(m, helo, wait);
	}
}

/* spf_evaluate - both identities, once */
static void
spf_evaluate(struct msg *m)
{
	const char *domain, *sender;
	const char *helo = m->conn->helo;

	if (m->spf == NULL || m->spf->evaluated)
		return;
	m->spf->evaluated = true;
	if ((sender = spf_sender(m, &domain)) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "spf: out of memory");
		return;
	}
	spf_advance(m, true);
	spf_check_host(m, sender, domain, &m->spf_mailfrom);
	if (m->spf_mailfrom.result == AG_SPF_TEMPERROR)
		msg_error(m, AG_ERR_DNS, "spf: temperror for %s: %s",
		    log_safe(m, domain),
		    m->spf_mailfrom.reason ? m->spf_mailfrom.reason : "");
	if (!m->cfg->spf_helo || helo == NULL || *helo == '\0')
		return;
	if (m->mail_from[0] == '\0') /* the same identity: same answer */
		m->spf_helo = m->spf_mailfrom;
	else if (spf_helo_kept(m) != NULL)
		m->spf_helo = *spf_helo_kept(m);
	else {
		spf_check_host(m, arena_printf(m->arena, "postmaster@%s", helo),
		    helo, &m->spf_helo);
		if (m->spf_helo.result != AG_SPF_TEMPERROR)
			spf_helo_keep(m);
	}
}

/*
 * spf_on_eoh, spf_on_body - while the rest of the message comes, start
 * the next lookups as soon as a record is in, never waiting for one: the
 * DNSBL lookups of the body's URIs must not wait behind SPF's answers.
 */
static int
spf_on_eoh(struct msg *m)
{
	spf_advance(m, false);
	return 0;
}

static int
spf_on_body(struct msg *m, const unsigned char *p, size_t len)
{
	(void)p;
	(void)len;
	if (m->spf != NULL && (!m->spf->pf_mailfrom || !m->spf->pf_helo))
		spf_advance(m, false);
	return 0;
}

/* spf_ar - one A-R result for an identity */
static void
spf_ar(struct msg *m, const struct spf_outcome *o, bool helo)
{
	struct ar_result *r;

	if (!o->checked ||
	    (r = msg_ar_new(m, "spf", msg_spf_result_name(o->result))) == NULL)
		return;
	r->logkey = helo ? "spf_helo" : "spf";
	if (o->result == AG_SPF_PERMERROR || o->result == AG_SPF_TEMPERROR)
		r->reason = o->reason;
	if (helo)
		msg_ar_prop(m, r, "smtp", "helo", m->conn->helo);
	else
		msg_ar_prop(m, r, "smtp", "mailfrom", o->identity);
	msg_ar_add(m, r);
}

/* spf_kv - a Received-SPF value: dot-atom as is, else a quoted-string */
static void
spf_kv(struct buf *b, const char *key, const char *v)
{
	const char *p;
	bool atom = *v != '\0' && *v != '.';

	for (p = v; *p && atom; p++)
		atom = str_isalnum((unsigned char)*p) ||
		    strchr("!#$%&'*+-/=?^_`{|}~.@", *p) != NULL;
	buf_addf(b, " %s=", key);
	if (atom) {
		buf_addstr(b, v);
	} else {
		buf_addch(b, '"');
		for (p = v; *p; p++) {
			unsigned char c = (unsigned char)*p;

			if (c < 0x20 || c >= 0x7f)
				c = '?';
			if (c == '"' || c == '\\')
				buf_addch(b, '\\');
			buf_addch(b, c);
		}
		buf_addch(b, '"');
	}
	buf_addch(b, ';');
}

/*
 * spf_ctext - text inside the header's comment: '(', ')' and '\\' quoted
 * (RFC 5322 3.2.2), so a sender address such as "x) client-ip=..."@d
 * cannot close the comment early and pose as a key=value pair
 */
static void
spf_ctext(struct buf *b, const char *s)
{
	for (; *s; s++) {
		if (*s == '(' || *s == ')' || *s == '\\')
			buf_addch(b, '\\');
		buf_addch(b, *s);
	}
}

/* spf_received - RFC 7208 9.1 Received-SPF for the MAIL FROM identity */
static void
spf_received(struct msg *m)
{
	const struct spf_outcome *o = &m->spf_mailfrom;
	const char *recv = msg_authserv_id(m), *how;
	struct buf b = BUF_INIT;
	char *v;

	if (!o->checked)
		return;
	switch (o->result) {
	case AG_SPF_PASS:
		how = "designates %s as permitted sender";
		break;
	case AG_SPF_FAIL:
	case AG_SPF_SOFTFAIL:
		how = "does not designate %s as permitted sender";
		break;
	default:
		how = "gives no verdict on %s";
		break;
	}
	buf_addf(&b, "%s (", msg_spf_result_name(o->result));
	spf_ctext(&b, log_safe(m, recv));
	buf_addstr(&b, ": domain of ");
	spf_ctext(&b, log_safe(m, o->identity));
	buf_addch(&b, ' ');
	buf_addf(&b, how, m->conn->client_ip);
	buf_addch(&b, ')');
	spf_kv(&b, "receiver", recv);
	spf_kv(&b, "client-ip", m->conn->client_ip);
	spf_kv(&b, "envelope-from", o->identity);
	if (m->conn->helo)
		spf_kv(&b, "helo", m->conn->helo);
	if (o->reason &&
	    (o->result == AG_SPF_PERMERROR || o->result == AG_SPF_TEMPERROR))
		spf_kv(&b, "problem", o->reason);
	spf_kv(&b, "identity", "mailfrom");
	v = arena_memdup(m->arena, b.data, b.len);
	buf_release(&b);
	msg_add_header(m, "Received-SPF", v);
}

/* spf_on_eom - results into the A-R header (evaluating if not yet) */
static int
spf_on_eom(struct msg *m)
{
	if (m->spf == NULL)
		return 0;
	spf_evaluate(m);
	spf_ar(m, &m->spf_mailfrom, false);
	if (m->mail_from[0] != '\0' || !m->spf_mailfrom.checked)
		spf_ar(m, &m->spf_helo, true);
	if (m->cfg->spf_received_header)
		spf_received(m);
	return 0;
}

const struct check spf_check = {
    .name = "spf",
    .on_mail = spf_on_mail,
    .on_eoh = spf_on_eoh,
    .on_body = spf_on_body,
    .on_eom = spf_on_eom,
};
