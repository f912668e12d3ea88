/*
 * metrics.c - Prometheus counters and histograms (see metrics.h).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include <microhttpd.h>

#include "util/buf.h"
#include "util/cidr.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "ar.h"
#include "checks.h"
#include "config.h"
#include "dmarc_history.h"
#include "dns.h"
#include "metrics.h"
#include "msgctx.h"
#include "snapshot.h"

#define MX_NACTIONS  5
#define MX_NBUCKETS  12
#define MX_MAX_NAMES 4096 /* distinct rules / signing keys tracked */

/* indexed by enum ag_action */
static const char *const mx_actions[MX_NACTIONS] = {
    [AG_ACT_ACCEPT] = "accept",
    [AG_ACT_TEMPFAIL] = "tempfail",
    [AG_ACT_REJECT] = "reject",
    [AG_ACT_QUARANTINE] = "quarantine",
    [AG_ACT_DISCARD] = "discard",
};

/* The results we count, per method (A-R method or log key). */
static const struct {
	const char *method;
	const char *const results[8];
} mx_methods[] = {
    {"spf",
	{"none", "neutral", "pass", "fail", "softfail", "temperror",
	    "permerror", NULL}},
    {"spf_helo",
	{"none", "neutral", "pass", "fail", "softfail", "temperror",
	    "permerror", NULL}},
    {"dkim",
	{"none", "pass", "fail", "policy", "neutral", "temperror", "permerror",
	    NULL}},
    {"dmarc", {"none", "pass", "fail", "temperror", "permerror", NULL}},
};
#define MX_NMETHODS (sizeof(mx_methods) / sizeof(mx_methods[0]))

/* Upper bounds in seconds (the last bucket is +Inf). */
static const double mx_bounds[MX_NBUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};

struct mx_hist {
	atomic_ullong bucket[MX_NBUCKETS + 1];
	atomic_ullong count;
	atomic_ullong sum_us;
};

enum {
	MX_STAGE_HEADERS,
	MX_STAGE_BODY,
	MX_STAGE_EOM,
	MX_NSTAGES
};
static const char *const mx_stages[MX_NSTAGES] = {"headers", "body", "eom"};

/* A counter per name (rule, signing key): a small open hash table. */
struct mx_names {
	pthread_mutex_t lock;
	char *name[MX_MAX_NAMES];
	unsigned long long n[MX_MAX_NAMES];
	unsigned used;
};

static struct {
	atomic_ullong actions[MX_NACTIONS];
	atomic_ullong results[MX_NMETHODS][8];
	atomic_ullong scored, spam;
	atomic_ullong reloads_ok, reloads_failed;
	struct mx_hist message;
	struct mx_hist stage[MX_NSTAGES];
	struct mx_names rules, keys;
	time_t started;
} mx = {
    .rules = {.lock = PTHREAD_MUTEX_INITIALIZER},
    .keys = {.lock = PTHREAD_MUTEX_INITIALIZER},
};

static struct MHD_Daemon *mx_daemon;

/* mx_observe - one duration into a histogram */
static void
mx_observe(struct mx_hist *h, double seconds)
{
	size_t i;

	if (seconds < 0)
		seconds = 0;
	for (i = 0; i < MX_NBUCKETS && seconds > mx_bounds[i]; i++)
		;
	atomic_fetch_add(&h->bucket[i], 1);
	atomic_fetch_add(&h->count, 1);
	atomic_fetch_add(&h->sum_us, (unsigned long long)(seconds * 1e6));
}

/* mx_count_name - add one to the counter of name (len bytes) */
static void
mx_count_name(struct mx_names *t, const char *name, size_t len)
{
	unsigned long h = 5381;
	size_t i, k;

	for (i = 0; i < len; i++)
		h = h * 33 + (unsigned char)name[i];
	pthread_mutex_lock(&t->lock);
	for (k = 0; k < MX_MAX_NAMES; k++) {
		size_t slot = (h + k) % MX_MAX_NAMES;

		if (t->name[slot] == NULL) {
			if (t->used >= MX_MAX_NAMES / 2)
				break; /* full enough: new names not tracked */
			t->name[slot] = xstrndup(name, len);
			t->used++;
		}
		if (strlen(t->name[slot]) == len &&
		    memcmp(t->name[slot], name, len) == 0) {
			t->n[slot]++;
			break;
		}
	}
	pthread_mutex_unlock(&t->lock);
}

/* mx_seconds - b - a */
static double
mx_seconds(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) +
	    (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

/* mx_result - count one A-R result by its method (or log key) */
static void
mx_result(const char *method, const char *result)
{
	size_t i, k;

	for (i = 0; i < MX_NMETHODS; i++) {
		if (strcmp(mx_methods[i].method, method) != 0)
			continue;
		for (k = 0; mx_methods[i].results[k] != NULL; k++)
			if (strcmp(mx_methods[i].results[k], result) == 0) {
				atomic_fetch_add(&mx.results[i][k], 1);
				return;
			}
	}
}

/* metrics_message - on_verdict: count one finished message */
static void
metrics_message(struct msg *m)
{
	const struct ar_result *r;
	struct timespec now;
	const char *p, *e;
	size_t i;

	if ((unsigned)m->verdict.action < MX_NACTIONS)
		atomic_fetch_add(&mx.actions[m->verdict.action], 1);
	for (r = m->ar; r != NULL; r = r->next)
		mx_result(r->logkey ? r->logkey : r->method, r->result);
	if (m->scored) {
		atomic_fetch_add(&mx.scored, 1);
		if (m->score >= m->cfg->spam_header_score)
			atomic_fetch_add(&mx.spam, 1);
	}
	for (i = 0; i < m->nhits; i++)
		mx_count_name(
		    &mx.rules, m->hits[i].name, strlen(m->hits[i].name));
	for (p = m->dkim_signed; p != NULL && *p; p = *e ? e + 1 : e) {
		e = strchr(p, ',');
		if (e == NULL)
			e = p + strlen(p);
		if (e > p)
			mx_count_name(&mx.keys, p, (size_t)(e - p));
	}
	clock_gettime(CLOCK_MONOTONIC, &now);
	mx_observe(&mx.message, mx_seconds(&m->t_start, &now));
	if (m->t_eoh.tv_sec) {
		mx_observe(&mx.stage[MX_STAGE_HEADERS],
		    mx_seconds(&m->t_start, &m->t_eoh));
		if (m->t_eom.tv_sec) {
			mx_observe(&mx.stage[MX_STAGE_BODY],
			    mx_seconds(&m->t_eoh, &m->t_eom));
			mx_observe(&mx.stage[MX_STAGE_EOM],
			    mx_seconds(&m->t_eom, &now));
		}
	}
}

const struct check metrics_check = {
    .name = "metrics",
    .on_verdict = metrics_message,
};

void
metrics_reload(bool ok)
{
	atomic_fetch_add(ok ? &mx.reloads_ok : &mx.reloads_failed, 1);
}

/* mx_hist_render - one histogram, labels ("" or `stage="eom",`) */
static void
mx_hist_render(
    struct buf *b, const char *name, const char *labels, struct mx_hist *h)
{
	unsigned long long cum = 0;
	size_t i;

	for (i = 0; i <= MX_NBUCKETS; i++) {
		cum += atomic_load(&h->bucket[i]);
		if (i < MX_NBUCKETS)
			buf_addf(b, "%s_bucket{%sle=\"%g\"} %llu\n", name,
			    labels, mx_bounds[i], cum);
		else
			buf_addf(b, "%s_bucket{%sle=\"+Inf\"} %llu\n", name,
			    labels, cum);
	}
	buf_addf(b, "%s_sum%s%.*s%s %.6f\n", name, *labels ? "{" : "",
	    *labels ? (int)strlen(labels) - 1 : 0, labels, *labels ? "}" : "",
	    (double)atomic_load(&h->sum_us) / 1e6);
	buf_addf(b, "%s_count%s%.*s%s %llu\n", name, *labels ? "{" : "",
	    *labels ? (int)strlen(labels) - 1 : 0, labels, *labels ? "}" : "",
	    atomic_load(&h->count));
}

/* mx_names_render - a labelled counter per tracked name */
static void
mx_names_render(
    struct buf *b, struct mx_names *t, const char *metric, const char *label)
{
	size_t i;

	pthread_mutex_lock(&t->lock);
	for (i = 0; i < MX_MAX_NAMES; i++)
		if (t->name[i] != NULL) {
			const char *p;

			buf_addf(b, "%s{%s=\"", metric, label);
			/* label values: escape \ " and newline */
			for (p = t->name[i]; *p; p++) {
				if (*p == '\\' || *p == '"')
					buf_addch(b, '\\');
				buf_addch(b, *p == '\n' ? ' ' : *p);
			}
			buf_addf(b, "\"} %llu\n", t->n[i]);
		}
	pthread_mutex_unlock(&t->lock);
}

/* mx_counter - one unlabelled counter with its HELP and TYPE lines */
static void
mx_counter(
    struct buf *b, const char *name, const char *help, unsigned long long v)
{
	buf_addf(b, "# HELP %s %s\n# TYPE %s counter\n%s %llu\n", name, help,
	    name, name, v);
}

/* mx_snapshot_render - the resolver's and the history's counters */
static void
mx_snapshot_render(struct buf *b)
{
	struct snapshot *s = snapshot_acquire();
	struct dns_stats st;
	unsigned long long written = 0, dropped = 0;

	/* before the first snapshot is in force: zeros, every name served */
	memset(&st, 0, sizeof(st));
	if (s != NULL)
		dns_stats(s->dns, &st);
	mx_counter(b, "authgate_dns_queries_total",
	    "Queries sent to the resolver library (cache misses).", st.queries);
	mx_counter(b, "authgate_dns_cache_hits_total",
	    "Answers from authgate's DNS cache.", st.cache_hits);
	mx_counter(b, "authgate_dns_memo_hits_total",
	    "Names asked again within one message, answered as the first time.",
	    st.memo_hits);
	mx_counter(b, "authgate_dns_joined_total",
	    "Lookups that joined one already in flight.", st.joined);
	mx_counter(b, "authgate_dns_timeouts_total",
	    "Lookups past dns_timeout.", st.timeouts);
	mx_counter(b, "authgate_dns_servfails_total",
	    "SERVFAIL and garbled answers.", st.servfails);
	if (s != NULL && s->dhist != NULL)
		dhist_stats(s->dhist, &written, &dropped);
	buf_addstr(b,
	    "# HELP authgate_dmarc_history_rows_total DMARC "
	    "history rows, by outcome.\n"
	    "# TYPE authgate_dmarc_history_rows_total counter\n");
	buf_addf(b,
	    "authgate_dmarc_history_rows_total{outcome=\"written\"} %llu\n"
	    "authgate_dmarc_history_rows_total{outcome=\"dropped\"} %llu\n",
	    written, dropped);
	buf_addstr(b,
	    "# HELP authgate_config_generation Configuration "
	    "generation in force (1 at start, +1 per reload).\n"
	    "# TYPE authgate_config_generation gauge\n");
	buf_addf(b, "authgate_config_generation %lu\n",
	    s != NULL ? s->generation : 0UL);
	snapshot_release(s);
}

void
metrics_render(struct buf *b)
{
	size_t i, k;
	char labels[32];

	buf_addstr(b,
	    "# HELP authgate_messages_total Messages by the action "
	    "taken.\n# TYPE authgate_messages_total counter\n");
	for (i = 0; i < MX_NACTIONS; i++)
		buf_addf(b, "authgate_messages_total{action=\"%s\"} %llu\n",
		    mx_actions[i], atomic_load(&mx.actions[i]));
	buf_addstr(b,
	    "# HELP authgate_results_total Authentication results "
	    "by method.\n# TYPE authgate_results_total counter\n");
	for (i = 0; i < MX_NMETHODS; i++)
		for (k = 0; mx_methods[i].results[k] != NULL; k++)
			buf_addf(b,
			    "authgate_results_total{method=\"%s\",result=\"%"
			    "s\"}"
			    " %llu\n",
			    mx_methods[i].method, mx_methods[i].results[k],
			    atomic_load(&mx.results[i][k]));
	buf_addstr(b,
	    "# HELP authgate_scored_total Messages scored by the "
	    "rules, and those at or over spam_header_score.\n"
	    "# TYPE authgate_scored_total counter\n");
	buf_addf(b, "authgate_scored_total{spam=\"no\"} %llu\n",
	    atomic_load(&mx.scored) - atomic_load(&mx.spam));
	buf_addf(b, "authgate_scored_total{spam=\"yes\"} %llu\n",
	    atomic_load(&mx.spam));
	buf_addstr(b,
	    "# HELP authgate_rule_hits_total Messages each rule "
	    "hit.\n# TYPE authgate_rule_hits_total counter\n");
	mx_names_render(b, &mx.rules, "authgate_rule_hits_total", "rule");
	buf_addstr(b,
	    "# HELP authgate_dkim_signed_total Signatures added, "
	    "by domain:selector.\n"
	    "# TYPE authgate_dkim_signed_total counter\n");
	mx_names_render(b, &mx.keys, "authgate_dkim_signed_total", "key");
	buf_addstr(b,
	    "# HELP authgate_reloads_total Reloads (SIGHUP) by "
	    "outcome.\n# TYPE authgate_reloads_total counter\n");
	buf_addf(b,
	    "authgate_reloads_total{result=\"ok\"} %llu\n"
	    "authgate_reloads_total{result=\"failed\"} %llu\n",
	    atomic_load(&mx.reloads_ok), atomic_load(&mx.reloads_failed));
	buf_addstr(b,
	    "# HELP authgate_message_seconds Time from MAIL FROM to "
	    "the verdict.\n"
	    "# TYPE authgate_message_seconds histogram\n");
	mx_hist_render(b, "authgate_message_seconds", "", &mx.message);
	buf_addstr(b,
	    "# HELP authgate_stage_seconds Time per stage: headers "
	    "(MAIL FROM to end of headers), body (to end of "
	    "message), eom (the checks' final work, DNS waits "
	    "included, that the MTA waits for).\n"
	    "# TYPE authgate_stage_seconds histogram\n");
	for (i = 0; i < MX_NSTAGES; i++) {
		snprintf(labels, sizeof(labels), "stage=\"%s\",", mx_stages[i]);
		mx_hist_render(
		    b, "authgate_stage_seconds", labels, &mx.stage[i]);
	}
	mx_snapshot_render(b);
	buf_addstr(b,
	    "# HELP authgate_start_time_seconds Start time of the "
	    "process (Unix time).\n"
	    "# TYPE authgate_start_time_seconds gauge\n");
	buf_addf(
	    b, "authgate_start_time_seconds %lld\n", (long long)mx.started);
}

/* mx_free_buf - libmicrohttpd's free callback for a response body */
static void
mx_free_buf(void *p)
{
	free(p);
}

/* mx_handler - GET /metrics; everything else 404 or 405 */
static enum MHD_Result
mx_handler(void *cls, struct MHD_Connection *c, const char *url,
    const char *method, const char *version, const char *upload,
    size_t *upload_size, void **con_cls)
{
	struct MHD_Response *resp;
	struct buf b = BUF_INIT;
	enum MHD_Result ret;
	unsigned code = MHD_HTTP_OK;
	char *body;
	size_t len;

	(void)cls, (void)version, (void)upload, (void)upload_size;
	(void)con_cls;
	if (strcmp(method, "GET") != 0 && strcmp(method, "HEAD") != 0) {
		code = MHD_HTTP_METHOD_NOT_ALLOWED;
		buf_addstr(&b, "only GET\n");
	} else if (strcmp(url, "/metrics") != 0) {
		code = MHD_HTTP_NOT_FOUND;
		buf_addstr(&b, "see /metrics\n");
	} else
		metrics_render(&b);
	body = buf_detach(&b, &len);
	resp = MHD_create_response_from_buffer_with_free_callback(
	    len, body, mx_free_buf);
	if (resp == NULL) {
		free(body);
		return MHD_NO;
	}
	MHD_add_response_header(resp, "Content-Type",
	    code == MHD_HTTP_OK ? "text/plain; version=0.0.4; charset=utf-8"
				: "text/plain");
	ret = MHD_queue_response(c, code, resp);
	MHD_destroy_response(resp);
	return ret;
}

int
metrics_start(const char *listen, char *err, size_t errlen)
{
	struct sockaddr_storage ss;

	mx.started = time(NULL);
	if (listen == NULL || *listen == '\0')
		return 0;
	if (cidr_hostport_parse(listen, &ss) == -1) {
		snprintf(err, errlen,
		    "metrics_listen '%s' is not "
		    "ADDRESS:PORT",
		    listen);
		return -1;
	}
	mx_daemon = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD |
		(ss.ss_family == AF_INET6 ? MHD_USE_IPv6 : 0),
	    0, NULL, NULL, mx_handler, NULL, MHD_OPTION_SOCK_ADDR,
	    (struct sockaddr *)&ss, MHD_OPTION_CONNECTION_LIMIT, (unsigned)16,
	    MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)10, MHD_OPTION_END);
	if (mx_daemon == NULL) {
		snprintf(err, errlen, "cannot serve metrics on %s (in use?)",
		    listen);
		return -1;
	}
	return 0;
}

void
metrics_stop(void)
{
	if (mx_daemon != NULL)
		MHD_stop_daemon(mx_daemon);
	mx_daemon = NULL;
}
