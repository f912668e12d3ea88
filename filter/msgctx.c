/*
 * msgctx.c - connections, messages, headers and the stage driver
 * (see msgctx.h).
 */
#include <sys/socket.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/cidr.h"
#include "util/str.h"
#include "checks.h"
#include "policy.h"
#include "msgctx.h"

#define AG_CONN_ARENA 2048
#define AG_MSG_ARENA  8192

static char msgctx_host[256];
static pthread_once_t msgctx_host_once = PTHREAD_ONCE_INIT;

/* msgctx_hostname_init - fill the cached host name */
static void
msgctx_hostname_init(void)
{
	if (gethostname(msgctx_host, sizeof(msgctx_host) - 1) == -1)
		msgctx_host[0] = '\0';
}

/* msgctx_hostname - this host's name, looked up once */
const char *
msgctx_hostname(void)
{
	pthread_once(&msgctx_host_once, msgctx_hostname_init);
	return msgctx_host[0] ? msgctx_host : "localhost";
}

/* conn_new - connection with a pinned snapshot */
struct conn *
conn_new(struct snapshot *s)
{
	struct arena *a;
	struct conn *c;

	if ((a = arena_new(AG_CONN_ARENA)) == NULL)
		return NULL;
	if ((c = arena_zalloc(a, sizeof(*c))) == NULL) {
		arena_free(a);
		return NULL;
	}
	c->arena = a;
	atomic_fetch_add(&s->refs, 1);
	c->snap = s;
	c->cfg = s->cfg;
	c->client_ip = "unknown";
	return c;
}

/* conn_free - release a connection */
void
conn_free(struct conn *c)
{
	struct snapshot *s;

	if (c == NULL)
		return;
	if (c->msg != NULL)
		msg_free(c->msg);
	s = c->snap;
	arena_free(c->arena);
	snapshot_release(s);
}

/* conn_dup - keep a copy of an MTA string in the connection arena */
static const char *
conn_dup(struct conn *c, const char *s)
{
	const char *d;

	if (s == NULL)
		return NULL;
	/* a lost fact would change results silently: fail the messages */
	if ((d = arena_strdup(c->arena, s)) == NULL) {
		c->failed = true;
		if (c->msg != NULL)
			c->msg->errors |= AG_ERR_INTERNAL;
	}
	return d;
}

/* conn_set_client - client address and name */
void
conn_set_client(
    struct conn *c, const struct sockaddr *sa, const char *ip, const char *name)
{
	char text[64];

	c->client_family = cidr_addr_from_sa(sa, c->client_addr);
	if (c->client_family == -1 && ip != NULL)
		c->client_family = cidr_addr_parse(ip, c->client_addr);
	if (c->client_family == -1) {
		c->client_family = 0;
		c->client_ip = "unknown";
	} else {
		cidr_addr_format(c->client_addr, text, sizeof(text));
		if ((c->client_ip = conn_dup(c, text)) == NULL)
			c->client_ip = "unknown";
		c->internal_ip =
		    cidr_set_match(c->cfg->internal_hosts, c->client_addr);
	}
	c->client_name = conn_dup(c, name);
}

/* conn_set_helo - HELO/EHLO argument (the last one wins) */
void
conn_set_helo(struct conn *c, const char *helo)
{
	c->helo = conn_dup(c, helo);
}

/* conn_set_authserv_id - the MTA's own name (macro j) */
void
conn_set_authserv_id(struct conn *c, const char *id)
{
	if (id != NULL && *id != '\0')
		c->authserv_id = conn_dup(c, id);
}

/* conn_set_daemon_name - {daemon_name} */
void
conn_set_daemon_name(struct conn *c, const char *name)
{
	c->daemon_name = conn_dup(c, name);
}

/* conn_set_tls - {tls_version}, {cipher} */
void
conn_set_tls(struct conn *c, const char *version, const char *cipher)
{
	if (version != NULL)
		c->tls_version = conn_dup(c, version);
	if (cipher != NULL)
		c->cipher = conn_dup(c, cipher);
}

/* conn_connected - connect stage */
void
conn_connected(struct conn *c)
{
	const struct check *const *ck;

	for (ck = c->snap->checks; *ck != NULL; ck++)
		if ((*ck)->on_connect != NULL && (*ck)->on_connect(c) == -1)
			log_warn("%s: connect stage failed for %s", (*ck)->name,
			    c->client_ip);
}

/* msg_new - a message on a connection */
struct msg *
msg_new(struct conn *c)
{
	struct arena *a;
	struct msg *m;

	if (c->msg != NULL)
		msg_free(c->msg);
	if ((a = arena_new(AG_MSG_ARENA)) == NULL)
		return NULL;
	if ((m = arena_zalloc(a, sizeof(*m))) == NULL) {
		arena_free(a);
		return NULL;
	}
	m->arena = a;
	m->conn = c;
	m->cfg = c->cfg;
	m->mail_from = "";
	m->internal = c->internal_ip;
	m->dns_budget.max = (unsigned)c->cfg->dns_max_queries;
	clock_gettime(CLOCK_MONOTONIC, &m->t_start);
	c->msg = m;
	c->nmsgs++;
	if (c->failed)
		msg_error(m, AG_ERR_INTERNAL, "out of memory (connection)");
	return m;
}

/* msg_free - end a message */
void
msg_free(struct msg *m)
{
	if (m == NULL)
		return;
	if (m->conn->msg == m)
		m->conn->msg = NULL;
	dns_budget_release(&m->dns_budget);
	arena_free(m->arena);
}

/* msg_error - record a failure class */
void
msg_error(struct msg *m, unsigned cls, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if ((m->errors & cls) == 0)
		log_msg(m, cls == AG_ERR_INTERNAL ? LOG_ERR : LOG_NOTICE, "%s",
		    line);
	m->errors |= cls;
}

/* msg_set_qid - the MTA's queue id (macro i) */
void
msg_set_qid(struct msg *m, const char *qid)
{
	if (qid != NULL && *qid != '\0')
		snprintf(m->qid, sizeof(m->qid), "%s", qid);
}

/* msg_set_auth - SMTP AUTH identity: makes the client internal */
void
msg_set_auth(struct msg *m, const char *user)
{
	if (user == NULL || *user == '\0')
		return;
	if ((m->auth_user = arena_strdup(m->arena, user)) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "out of memory (auth user)");
		return;
	}
	if (m->cfg->internal_auth)
		m->internal = true;
}

/* msg_mail - envelope sender; then the mail stage */
void
msg_mail(struct msg *m, const char *from)
{
	const struct check *const *ck;
	size_t len = strlen(from);
	const char *at;
	char *addr;

	while (len > 0 && str_isspace((unsigned char)*from)) {
		from++;
		len--;
	}
	if (len >= 2 && from[0] == '<' && from[len - 1] == '>') {
		from++;
		len -= 2;
	}
	if ((addr = arena_strndup(m->arena, from, len)) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "out of memory (mail from)");
		return;
	}
	m->mail_from = addr;
	if ((at = strrchr(addr, '@')) != NULL && at[1] != '\0')
		m->mail_domain = at + 1;
	for (ck = m->conn->snap->checks; *ck != NULL; ck++)
		if ((*ck)->on_mail != NULL && (*ck)->on_mail(m) == -1)
			msg_error(m, AG_ERR_INTERNAL, "%s: mail stage failed",
			    (*ck)->name);
}

/* msg_rcpt - one envelope recipient */
void
msg_rcpt(struct msg *m, const char *rcpt)
{
	if (m->nrcpts == m->rcpt_alloc) {
		size_t n = m->rcpt_alloc ? m->rcpt_alloc * 2 : 8;
		const char **v = arena_allocarray(m->arena, n, sizeof(*v));

		if (v == NULL) {
			msg_error(m, AG_ERR_INTERNAL, "out of memory (rcpt)");
			return;
		}
		if (m->nrcpts)
			memcpy(v, m->rcpts, m->nrcpts * sizeof(*v));
		m->rcpts = v;
		m->rcpt_alloc = n;
	}
	if ((m->rcpts[m->nrcpts] = arena_strdup(m->arena, rcpt)) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "out of memory (rcpt)");
		return;
	}
	m->nrcpts++;
}

/* msg_value_copy - value with lone LF turned into CRLF, capped */
static char *
msg_value_copy(struct msg *m, const char *v, size_t *lenp)
{
	size_t len = strlen(v), lf = 0, i, n = 0, cap;
	char *out;

	for (i = 0; i < len; i++)
		if (v[i] == '\n' && (i == 0 || v[i - 1] != '\r'))
			lf++;
	cap = (size_t)m->cfg->header_size_limit;
	if (len + lf > cap) {
		m->flags |= AG_MSG_TRUNC_HEADER;
		log_msg(m, LOG_NOTICE,
		    "header over header_size_limit "
		    "(%zu bytes), truncated",
		    len + lf);
	}
	if ((out = arena_alloc(
		 m->arena, (len + lf < cap ? len + lf : cap) + 1)) == NULL)
		return NULL;
	for (i = 0; i < len && n < cap; i++) {
		if (v[i] == '\n' && (i == 0 || v[i - 1] != '\r')) {
			if (n + 2 > cap)
				break;
			out[n++] = '\r';
		}
		out[n++] = v[i];
	}
	out[n] = '\0';
	*lenp = n;
	return out;
}

/* msg_ar_check - note a received A-R header that claims to be ours */
static void
msg_ar_check(struct msg *m, const char *value)
{
	int *v;

	m->nar_seen++;
	if (!ar_is_ours(m->arena, value, strlen(value), msg_authserv_id(m)))
		return;
	if (m->nar_remove == m->ar_remove_alloc) {
		size_t n = m->ar_remove_alloc ? m->ar_remove_alloc * 2 : 4;

		if ((v = arena_allocarray(m->arena, n, sizeof(*v))) == NULL) {
			msg_error(m, AG_ERR_INTERNAL, "out of memory (A-R)");
			return;
		}
		if (m->nar_remove)
			memcpy(v, m->ar_remove, m->nar_remove * sizeof(*v));
		m->ar_remove = v;
		m->ar_remove_alloc = n;
	}
	m->ar_remove[m->nar_remove++] = (int)m->nar_seen;
	log_msg(m, LOG_NOTICE,
	    "removing Authentication-Results #%zu that "
	    "claims our authserv-id",
	    m->nar_seen);
}

/* msg_header - store one header and run the header stage */
void
msg_header(struct msg *m, const char *name, const char *value)
{
	const struct check *const *ck;
	struct hdr *h;

	/* Forged results are looked for in every header, past any cap. */
	if (str_casecmp(name, "Authentication-Results") == 0)
		msg_ar_check(m, value);
	if (m->nhdrs >= (size_t)m->cfg->max_headers) {
		if (!(m->flags & AG_MSG_TRUNC_HEADERS))
			log_msg(m, LOG_NOTICE,
			    "more than %lld headers; the "
			    "rest are not checked",
			    m->cfg->max_headers);
		m->flags |= AG_MSG_TRUNC_HEADERS;
		return;
	}
	if ((h = arena_zalloc(m->arena, sizeof(*h))) == NULL ||
	    (h->name = arena_strdup(m->arena, name)) == NULL ||
	    (h->value = msg_value_copy(m, value, &h->valuelen)) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "out of memory (header)");
		return;
	}
	h->namelen = strlen(name);
	if (m->hdr_tail)
		m->hdr_tail->next = h;
	else
		m->hdrs = h;
	m->hdr_tail = h;
	m->nhdrs++;
	for (ck = m->conn->snap->checks; *ck != NULL; ck++)
		if ((*ck)->on_header != NULL && (*ck)->on_header(m, h) == -1)
			msg_error(m, AG_ERR_INTERNAL, "%s: header stage failed",
			    (*ck)->name);
}

/* msg_eoh - end of headers */
void
msg_eoh(struct msg *m)
{
	const struct check *const *ck;

	m->eoh_done = true;
	clock_gettime(CLOCK_MONOTONIC, &m->t_eoh);
	for (ck = m->conn->snap->checks; *ck != NULL; ck++)
		if ((*ck)->on_eoh != NULL && (*ck)->on_eoh(m) == -1)
			msg_error(m, AG_ERR_INTERNAL, "%s: eoh stage failed",
			    (*ck)->name);
}

/* msg_body - one body chunk, streamed to the checks, never kept */
void
msg_body(struct msg *m, const unsigned char *p, size_t len)
{
	const struct check *const *ck;

	if (!m->eoh_done)
		msg_eoh(m);
	m->body_bytes += len;
	for (ck = m->conn->snap->checks; *ck != NULL; ck++)
		if ((*ck)->on_body != NULL && (*ck)->on_body(m, p, len) == -1)
			msg_error(m, AG_ERR_INTERNAL, "%s: body stage failed",
			    (*ck)->name);
}

/* msg_log_summary - the one line per message */
static void
msg_log_summary(struct msg *m)
{
	struct buf b = BUF_INIT;
	const struct ar_result *r;
	const struct verdict *v = &m->verdict;

	buf_addf(&b, "ip=%s helo=%s from=<%s> rcpts=%zu", m->conn->client_ip,
	    m->conn->helo ? log_safe(m, m->conn->helo) : "-",
	    log_safe(m, m->mail_from), m->nrcpts);
	if (m->auth_user)
		buf_addf(&b, " auth=%s", log_safe(m, m->auth_user));
	buf_addf(&b, " internal=%s", m->internal ? "yes" : "no");
	for (r = m->ar; r != NULL; r = r->next)
		buf_addf(
		    &b, " %s=%s", r->logkey ? r->logkey : r->method, r->result);
	if (m->dkim_signed)
		buf_addf(&b, " signed=%s", m->dkim_signed);
	if (m->nar_remove)
		buf_addf(&b, " removed_ar=%zu", m->nar_remove);
	if (m->scored) {
		size_t i;

		buf_addf(&b, " score=%.1f", m->score);
		for (i = 0; i < m->nhits; i++)
			buf_addf(
			    &b, "%s%s", i ? "," : " rules=", m->hits[i].name);
	}
	if (m->flags)
		buf_addf(&b, " flags=0x%x", m->flags);
	buf_addf(&b, " action=%s", config_action_name(v->action));
	if (v->rcode)
		buf_addf(
		    &b, " reply=\"%s %s %s\"", v->rcode, v->xcode, v->text);
	buf_addf(&b, " ms=%ld", msg_elapsed_ms(m));
	log_msg(m, LOG_INFO, "%s", b.data);
	buf_release(&b);
}

/* msg_eom - final stage and the verdict */
void
msg_eom(struct msg *m)
{
	const struct check *const *ck;

	if (!m->eoh_done)
		msg_eoh(m);
	clock_gettime(CLOCK_MONOTONIC, &m->t_eom);
	for (ck = m->conn->snap->checks; *ck != NULL; ck++)
		if ((*ck)->on_body_end != NULL && (*ck)->on_body_end(m) == -1)
			msg_error(m, AG_ERR_INTERNAL, "%s: eom stage failed",
			    (*ck)->name);
	for (ck = m->conn->snap->checks; *ck != NULL; ck++)
		if ((*ck)->on_eom != NULL && (*ck)->on_eom(m) == -1)
			msg_error(m, AG_ERR_INTERNAL, "%s: eom stage failed",
			    (*ck)->name);
	policy_decide(m);
	for (ck = m->conn->snap->checks; *ck != NULL; ck++)
		if ((*ck)->on_verdict != NULL)
			(*ck)->on_verdict(m);
	msg_log_summary(m);
}

static const char *const msg_spf_names[] = {
    "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"};
static const char *const msg_dkim_names[] = {
    "none", "pass", "fail", "policy", "neutral", "temperror", "permerror"};

/* msg_spf_result_name - text of an SPF result (RFC 8601 2.7.2) */
const char *
msg_spf_result_name(int r)
{
	return (r >= 0 && r <= AG_SPF_PERMERROR) ? msg_spf_names[r] : "none";
}

/* msg_dkim_result_name - text of a DKIM result (RFC 8601 2.7.1) */
const char *
msg_dkim_result_name(int r)
{
	return (r >= 0 && r <= AG_DKIM_PERMERROR) ? msg_dkim_names[r] : "none";
}

/* msg_ar_new - an A-R result in the message arena */
struct ar_result *
msg_ar_new(struct msg *m, const char *method, const char *result)
{
	struct ar_result *r = arena_zalloc(m->arena, sizeof(*r));

	if (r == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "out of memory (A-R result)");
		return NULL;
	}
	r->method = method;
	r->result = result;
	return r;
}

/* msg_ar_add - append a result */
void
msg_ar_add(struct msg *m, struct ar_result *r)
{
	if (r == NULL)
		return;
	r->next = NULL;
	if (m->ar_tail)
		m->ar_tail->next = r;
	else
		m->ar = r;
	m->ar_tail = r;
}

/* msg_ar_prop - add a property to a result */
void
msg_ar_prop(struct msg *m, struct ar_result *r, const char *ptype,
    const char *name, const char *value)
{
	if (r == NULL || value == NULL)
		return;
	if (r->nprops >= AG_AR_MAX_PROPS) {
		log_msg(
		    m, LOG_WARNING, "A-R %s: too many properties", r->method);
		return;
	}
	r->props[r->nprops].ptype = ptype;
	r->props[r->nprops].name = name;
	r->props[r->nprops].value = value;
	r->nprops++;
}

/* msg_add_header - queue a header for policy.c to insert */
void
msg_add_header(struct msg *m, const char *name, const char *value)
{
	struct add_hdr *h;

	if (name == NULL || value == NULL ||
	    (h = arena_zalloc(m->arena, sizeof(*h))) == NULL) {
		msg_error(m, AG_ERR_INTERNAL, "out of memory (add header)");
		return;
	}
	h->name = name;
	h->value = value;
	if (m->add_tail)
		m->add_tail->next = h;
	else
		m->add_hdrs = h;
	m->add_tail = h;
}

/* msg_dns_start - a query under the message budget, freed with it */
struct dns_query *
msg_dns_start(struct msg *m, const char *name, int rrtype)
{
	struct dns_query *q;

	q = dns_query_start(m->conn->snap->dns, &m->dns_budget, name, rrtype);
	if (dns_query_defer(m->arena, q) == -1) {
		msg_error(m, AG_ERR_INTERNAL, "out of memory (dns)");
		return NULL;
	}
	return q;
}

/* msg_authserv_id - our authserv-id */
const char *
msg_authserv_id(const struct msg *m)
{
	if (m->cfg->authserv_id[0] != '\0')
		return m->cfg->authserv_id;
	if (m->conn->authserv_id != NULL)
		return m->conn->authserv_id;
	return msgctx_hostname();
}

/* log_msg - line with the queue id */
void
log_msg(const struct msg *m, int level, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, m ? m->qid : "", fmt, ap);
	va_end(ap);
}

/* log_safe - masked copy for a log line */
const char *
log_safe(const struct msg *m, const char *s)
{
	if (s == NULL)
		return "(null)";
	return str_safe(m->arena, s, strlen(s));
}

/* msg_elapsed_ms - time since MAIL FROM */
long
msg_elapsed_ms(const struct msg *m)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (long)((now.tv_sec - m->t_start.tv_sec) * 1000 +
	    (now.tv_nsec - m->t_start.tv_nsec) / 1000000);
}
