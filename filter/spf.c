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
#include "spf_eval.h"
#include "spf.h"

struct spf_msg {
	bool evaluated;
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
 * spf_query - SPF_request_query_mailfrom() without its first step: libspf2
 * answers pass, without a lookup, for any client in 127.0.0.0/8 or ::1
 * ("localhost is always allowed"). RFC 7208 has no such exception, and a
 * loopback client SPF is asked about (spf_check_internal, or
 * internal_hosts without loopback) must not pass for every domain. The
 * rest is what libspf2 does: the record of the current domain (through
 * our get_spf, which set the result when there is none), then its
 * interpretation. NULL when out of memory.
 */
static SPF_response_t *
spf_query(SPF_server_t *server, SPF_request_t *req)
{
	SPF_response_t *resp = SPF_response_new(req);
	SPF_record_t *rec = NULL;

	if (resp == NULL)
		return NULL;
	req->cur_dom = req->use_helo ? req->helo_dom : req->env_from_dp;
	if (SPF_server_get_record(server, req, resp, &rec) != SPF_E_SUCCESS) {
		if (rec != NULL)
			SPF_record_free(rec);
		return resp;
	}
	resp->spf_record_exp = rec;
	SPF_record_interpret(rec, req, resp, 0);
	SPF_record_free(rec);
	return resp;
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
	resp = spf_query(server, req);
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
	    str_casecmp(m->conn->helo, domain) != 0)
		msg_dns_start(m, m->conn->helo, AG_DNS_T_TXT);
	return 0;
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
	spf_check_host(m, sender, domain, &m->spf_mailfrom);
	if (m->spf_mailfrom.result == AG_SPF_TEMPERROR)
		msg_error(m, AG_ERR_DNS, "spf: temperror for %s: %s",
		    log_safe(m, domain),
		    m->spf_mailfrom.reason ? m->spf_mailfrom.reason : "");
	if (!m->cfg->spf_helo || helo == NULL || *helo == '\0')
		return;
	if (m->mail_from[0] == '\0') /* the same identity: same answer */
		m->spf_helo = m->spf_mailfrom;
	else
		spf_check_host(m, arena_printf(m->arena, "postmaster@%s", helo),
		    helo, &m->spf_helo);
}

/* spf_on_eoh - evaluate while the body is still coming */
static int
spf_on_eoh(struct msg *m)
{
	spf_evaluate(m);
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
	buf_addf(&b, "%s (%s: domain of %s ", msg_spf_result_name(o->result),
	    log_safe(m, recv), log_safe(m, o->identity));
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
    .on_eom = spf_on_eom,
};
