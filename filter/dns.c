/*
 * dns.c - the one resolver (see dns.h).
 *
 * Structure: one ub_ctx in threaded async mode; a dispatcher thread polls
 * ub_fd() and runs ub_process(), which calls dns_ub_done() for finished
 * queries. Waiters sleep on a per-query condition variable with an
 * absolute CLOCK_MONOTONIC deadline. One mutex guards the cache and the
 * in-flight table; it is never held while calling into libunbound, so
 * there is no lock order to get wrong.
 */
#include <sys/types.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <unbound.h>

#include "util/arena.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "log.h"
#include "dns.h"

#define AG_DNS_KEY_MAX (AG_DNS_MAX_NAME + 8)

/* An answer shared by the cache and the handles that returned it. */
struct dns_ans {
	atomic_int refs; /* < 0: immortal (static error answers) */
	struct dns_answer pub;
	struct dns_rr rrs[];
};

/* A query outstanding at libunbound, possibly with several waiters. */
struct dns_pending {
	char key[AG_DNS_KEY_MAX];
	unsigned hash;
	int refs; /* waiters + 1 while libunbound owns it (under lock) */
	bool done;
	struct dns_ans *ans;
	pthread_cond_t cv;
	struct dns_pending *hnext;	   /* in-flight chain */
	struct dns_pending *anext, *aprev; /* all pendings, for dns_free */
	struct dns *dns;
};

/* A name asked under a budget, and its answer (see dns_budget). */
struct dns_memo {
	struct dns_memo *next;
	struct dns *dns;
	unsigned hash;
	struct dns_pending *p; /* one reference while the answer is unknown */
	struct dns_ans *ans;   /* one reference once it is known */
	char key[AG_DNS_KEY_MAX];
};

/* A budget keeps at most this many answers beyond its query count
 * (cache hits cost no query but are kept too). */
#define AG_DNS_MEMO_EXTRA 64

struct dns_centry {
	char key[AG_DNS_KEY_MAX];
	unsigned hash;
	long long expires; /* monotonic ms */
	struct dns_ans *ans;
	struct dns_centry *hnext;
	struct dns_centry *lprev, *lnext; /* LRU: head = newest */
};

struct dns_query {
	struct dns *dns;
	struct dns_pending *p; /* while waiting */
	struct dns_ans *ans;   /* once known */
	struct timespec deadline;
};

struct dns {
	atomic_int refs;
	struct ub_ctx *ub;
	pthread_t thr;
	int stopfd[2];
	pthread_mutex_t lock;
	/* cache */
	struct dns_centry **cbuckets;
	unsigned cmask;
	struct dns_centry *lru_head, *lru_tail;
	long long ncache;
	/* in flight */
	struct dns_pending **pbuckets;
	unsigned pmask;
	struct dns_pending *all;
	/* settings (kept to compare on reload) */
	struct dns_conf conf;
	char **servers;
	char *trust_anchor;
	/* counters */
	atomic_ullong st_queries, st_hits, st_memo, st_joined, st_timeouts,
	    st_servfails;
};

static struct dns_ans dns_err_timeout = {
    -1, {AG_DNS_TIMEOUT, 0, 0, NULL, 0, false}};
static struct dns_ans dns_err_badname = {
    -1, {AG_DNS_BADNAME, 0, 0, NULL, 0, false}};
static struct dns_ans dns_err_budget = {
    -1, {AG_DNS_BUDGET, 0, 0, NULL, 0, false}};
static struct dns_ans dns_err_servfail = {
    -1, {AG_DNS_SERVFAIL, 0, 0, NULL, 0, false}};

/*
 * Zones libunbound answers itself (RFC 6761/6303 special-use names and
 * private or documentation reverse zones), as libunbound 1.17 lists them;
 * 64-127.100.in-addr.arpa (100.64.0.0/10) are added in a loop. Loopback and
 * the unspecified address stay local.
 */
static const char *const dns_special_zones[] = {"test.", "invalid.", "onion.",
    "home.arpa.", "10.in-addr.arpa.", "16.172.in-addr.arpa.",
    "17.172.in-addr.arpa.", "18.172.in-addr.arpa.", "19.172.in-addr.arpa.",
    "20.172.in-addr.arpa.", "21.172.in-addr.arpa.", "22.172.in-addr.arpa.",
    "23.172.in-addr.arpa.", "24.172.in-addr.arpa.", "25.172.in-addr.arpa.",
    "26.172.in-addr.arpa.", "27.172.in-addr.arpa.", "28.172.in-addr.arpa.",
    "29.172.in-addr.arpa.", "30.172.in-addr.arpa.", "31.172.in-addr.arpa.",
    "168.192.in-addr.arpa.", "254.169.in-addr.arpa.", "2.0.192.in-addr.arpa.",
    "100.51.198.in-addr.arpa.", "113.0.203.in-addr.arpa.",
    "8.b.d.0.1.0.0.2.ip6.arpa.", "d.f.ip6.arpa.", "8.e.f.ip6.arpa.",
    "9.e.f.ip6.arpa.", "a.e.f.ip6.arpa.", "b.e.f.ip6.arpa.", NULL};

static dns_test_fn dns_test_fn_set; /* see dns_test_resolver */

/* dns_now_ms - monotonic milliseconds */
static long long
dns_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* dns_ans_ref - take a reference */
static struct dns_ans *
dns_ans_ref(struct dns_ans *a)
{
	if (atomic_load(&a->refs) >= 0)
		atomic_fetch_add(&a->refs, 1);
	return a;
}

/* dns_ans_unref - drop a reference */
static void
dns_ans_unref(struct dns_ans *a)
{
	if (a == NULL || atomic_load(&a->refs) < 0)
		return;
	if (atomic_fetch_sub(&a->refs, 1) == 1)
		free(a);
}

/* dns_hash - FNV-1a of the key */
static unsigned
dns_hash(const char *key)
{
	unsigned h = 2166136261u;

	while (*key)
		h = (h ^ (unsigned char)*key++) * 16777619u;
	return h;
}

/* dns_name_valid - lengths of a name whose labels may hold any byte */
bool
dns_name_valid(const char *name)
{
	size_t len = strlen(name), label = 0, i;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len == 0 || len > AG_DNS_MAX_NAME)
		return false;
	for (i = 0; i < len; i++) {
		if (name[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (++label > 63)
			return false;
	}
	return true;
}

/*
 * dns_presentation - the name as libunbound parses it: label bytes other
 * than letters, digits, '-' and '_' as \DDD (a space, '%' or '"' in a
 * label is legal in DNS; SPF macros produce them). -1 if it does not fit.
 */
static int
dns_presentation(const char *name, char *out, size_t outlen)
{
	size_t n = 0;

	for (; *name; name++) {
		unsigned char c = (unsigned char)*name;

		if (n + 5 >= outlen)
			return -1;
		if (str_isalnum(c) || c == '-' || c == '_' || c == '.')
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, outlen - n, "\\%03u", c);
	}
	out[n] = '\0';
	return 0;
}

/* dns_make_key - "lowercase-name/type" without the final dot */
static int
dns_make_key(const char *name, int rrtype, char *key, size_t keylen)
{
	size_t len = strlen(name), i;
	int n;

	if (len > 0 && name[len - 1] == '.')
		len--;
	if (len + 8 > keylen)
		return -1;
	for (i = 0; i < len; i++)
		key[i] = (char)str_lower((unsigned char)name[i]);
	n = snprintf(key + len, keylen - len, "/%d", rrtype);
	return (n < 0 || (size_t)n >= keylen - len) ? -1 : 0;
}

/* dns_lru_unlink - take an entry out of the LRU list */
static void
dns_lru_unlink(struct dns *d, struct dns_centry *e)
{
	if (e->lprev)
		e->lprev->lnext = e->lnext;
	else
		d->lru_head = e->lnext;
	if (e->lnext)
		e->lnext->lprev = e->lprev;
	else
		d->lru_tail = e->lprev;
	e->lprev = e->lnext = NULL;
}

/* dns_lru_push - make an entry the newest */
static void
dns_lru_push(struct dns *d, struct dns_centry *e)
{
	e->lprev = NULL;
	e->lnext = d->lru_head;
	if (d->lru_head)
		d->lru_head->lprev = e;
	d->lru_head = e;
	if (d->lru_tail == NULL)
		d->lru_tail = e;
}

/* dns_cache_remove - delete an entry (lock held) */
static void
dns_cache_remove(struct dns *d, struct dns_centry *e)
{
	struct dns_centry **pp = &d->cbuckets[e->hash & d->cmask];

	while (*pp != e)
		pp = &(*pp)->hnext;
	*pp = e->hnext;
	dns_lru_unlink(d, e);
	dns_ans_unref(e->ans);
	free(e);
	d->ncache--;
}

/* dns_cache_get - fresh answer for key, referenced, or NULL (lock held) */
static struct dns_ans *
dns_cache_get(struct dns *d, const char *key, unsigned hash)
{
	struct dns_centry *e;

	if (d->cbuckets == NULL)
		return NULL;
	for (e = d->cbuckets[hash & d->cmask]; e != NULL; e = e->hnext) {
		if (e->hash != hash || strcmp(e->key, key) != 0)
			continue;
		if (e->expires <= dns_now_ms()) {
			dns_cache_remove(d, e);
			return NULL;
		}
		dns_lru_unlink(d, e);
		dns_lru_push(d, e);
		return dns_ans_ref(e->ans);
	}
	return NULL;
}

/* dns_cache_put - insert or replace an answer for ttl_ms (lock held) */
static void
dns_cache_put(struct dns *d, const char *key, unsigned hash,
    struct dns_ans *ans, long long ttl_ms)
{
	struct dns_centry *e;

	if (d->cbuckets == NULL || ttl_ms <= 0)
		return;
	for (e = d->cbuckets[hash & d->cmask]; e != NULL; e = e->hnext)
		if (e->hash == hash && strcmp(e->key, key) == 0) {
			dns_cache_remove(d, e);
			break;
		}
	while (d->ncache >= d->conf.cache_size && d->lru_tail != NULL)
		dns_cache_remove(d, d->lru_tail);
	e = xcalloc(1, sizeof(*e));
	memcpy(e->key, key, strlen(key) + 1);
	e->hash = hash;
	e->expires = dns_now_ms() + ttl_ms;
	e->ans = dns_ans_ref(ans);
	e->hnext = d->cbuckets[hash & d->cmask];
	d->cbuckets[hash & d->cmask] = e;
	dns_lru_push(d, e);
	d->ncache++;
}

/* dns_ttl_ms - how long an answer may be cached */
static long long
dns_ttl_ms(const struct dns *d, const struct dns_ans *a)
{
	long long ttl;

	switch (a->pub.rc) {
	case AG_DNS_OK:
	case AG_DNS_NODATA:
	case AG_DNS_NXDOMAIN:
		ttl = (long long)a->pub.ttl * 1000;
		return ttl < d->conf.max_ttl_ms ? ttl : d->conf.max_ttl_ms;
	case AG_DNS_SERVFAIL:
	case AG_DNS_TIMEOUT:
	case AG_DNS_BOGUS:
		return d->conf.error_ttl_ms;
	default:
		return 0;
	}
}

/* dns_ans_from_ub - convert a libunbound result */
static struct dns_ans *
dns_ans_from_ub(int err, struct ub_result *res, int rrtype)
{
	struct dns_ans *a;
	size_t total = 0, n = 0, i;
	unsigned char *p;

	if (err != 0 || res == NULL)
		return &dns_err_servfail;
	if (res->havedata && res->data != NULL)
		for (n = 0; res->data[n] != NULL; n++)
			total += (size_t)res->len[n];
	a = xmalloc(sizeof(*a) + n * sizeof(struct dns_rr) + total);
	atomic_init(&a->refs, 1);
	a->pub.rrtype = rrtype;
	a->pub.nrr = (unsigned)n;
	a->pub.rr = a->rrs;
	a->pub.ttl = res->ttl > 0 ? (unsigned)res->ttl : 0;
	a->pub.secure = res->secure != 0;
	p = (unsigned char *)(a->rrs + n);
	for (i = 0; i < n; i++) {
		memcpy(p, res->data[i], (size_t)res->len[i]);
		a->rrs[i].data = p;
		a->rrs[i].len = (size_t)res->len[i];
		p += res->len[i];
	}
	if (res->bogus)
		a->pub.rc = AG_DNS_BOGUS;
	else if (res->rcode == 3)
		a->pub.rc = AG_DNS_NXDOMAIN;
	else if (res->rcode != 0)
		a->pub.rc = AG_DNS_SERVFAIL;
	else
		a->pub.rc = n > 0 ? AG_DNS_OK : AG_DNS_NODATA;
	return a;
}

/* dns_pending_release - drop one reference to a pending (lock held) */
static void
dns_pending_release(struct dns *d, struct dns_pending *p)
{
	if (--p->refs > 0)
		return;
	if (p->aprev)
		p->aprev->anext = p->anext;
	else
		d->all = p->anext;
	if (p->anext)
		p->anext->aprev = p->aprev;
	dns_ans_unref(p->ans);
	pthread_cond_destroy(&p->cv);
	free(p);
}

/* dns_inflight_unlink - remove a pending from the in-flight table */
static void
dns_inflight_unlink(struct dns *d, struct dns_pending *p)
{
	struct dns_pending **pp = &d->pbuckets[p->hash & d->pmask];

	while (*pp != NULL && *pp != p)
		pp = &(*pp)->hnext;
	if (*pp == p)
		*pp = p->hnext;
	p->hnext = NULL;
}

/* dns_complete - record the answer of a pending and wake its waiters */
static void
dns_complete(struct dns *d, struct dns_pending *p, struct dns_ans *a)
{
	pthread_mutex_lock(&d->lock);
	p->ans = a;
	p->done = true;
	dns_inflight_unlink(d, p);
	if (a->pub.rc == AG_DNS_SERVFAIL)
		atomic_fetch_add(&d->st_servfails, 1);
	dns_cache_put(d, p->key, p->hash, a, dns_ttl_ms(d, a));
	pthread_cond_broadcast(&p->cv);
	dns_pending_release(d, p); /* libunbound's reference */
	pthread_mutex_unlock(&d->lock);
}

/* dns_ub_done - libunbound callback, runs in the dispatcher thread */
static void
dns_ub_done(void *arg, int err, struct ub_result *res)
{
	struct dns_pending *p = arg;
	int rrtype = res ? res->qtype : 0;
	struct dns_ans *a = dns_ans_from_ub(err, res, rrtype);

	if (res != NULL)
		ub_resolve_free(res);
	dns_complete(p->dns, p, a);
}

/* dns_dispatch - worker: deliver libunbound's answers */
static void *
dns_dispatch(void *arg)
{
	struct dns *d = arg;
	struct pollfd pfd[2];

	pfd[0].fd = ub_fd(d->ub);
	pfd[0].events = POLLIN;
	pfd[1].fd = d->stopfd[0];
	pfd[1].events = POLLIN;
	for (;;) {
		if (poll(pfd, 2, -1) == -1) {
			if (errno == EINTR)
				continue;
			log_err("dns: poll: %s", strerror(errno));
			sleep(1);
			continue;
		}
		if (pfd[1].revents)
			break;
		if (pfd[0].revents && ub_process(d->ub) != 0)
			log_warn("dns: ub_process failed");
	}
	return NULL;
}

/* dns_ub_setup - apply the configuration to a fresh ub_ctx */
static int
dns_ub_setup(struct dns *d, const struct dns_conf *c, char *err, size_t errlen)
{
	int rc, i;
	size_t k;
	char v[128];

#define UBSET(opt, val)                                                  \
	if ((rc = ub_ctx_set_option(d->ub, opt, val)) != 0) {            \
		snprintf(err, errlen, "libunbound: %s %s: %s", opt, val, \
		    ub_strerror(rc));                                    \
		return -1;                                               \
	}

	if ((rc = ub_ctx_async(d->ub, 1)) != 0) {
		snprintf(err, errlen, "libunbound: async: %s", ub_strerror(rc));
		return -1;
	}
	/* A local resolver (127.0.0.53, a test server) is a normal setup. */
	UBSET("do-not-query-localhost:", "no");
	if (c->trust_anchor != NULL && c->trust_anchor[0] != '\0') {
		if ((rc = ub_ctx_add_ta_file(d->ub, c->trust_anchor)) != 0) {
			snprintf(err, errlen, "dns_trust_anchor %s: %s",
			    c->trust_anchor, ub_strerror(rc));
			return -1;
		}
	} else {
		UBSET("module-config:", "iterator");
	}
	if (c->nservers == 0) {
		if ((rc = ub_ctx_resolvconf(d->ub, NULL)) != 0)
			log_warn("dns: /etc/resolv.conf: %s; resolving from "
				 "the root",
			    ub_strerror(rc));
		return 0;
	}
	for (k = 0; k < c->nservers; k++) {
		if ((rc = ub_ctx_set_fwd(d->ub, c->servers[k])) != 0) {
			snprintf(err, errlen, "dns_servers: '%s': %s",
			    c->servers[k], ub_strerror(rc));
			return -1;
		}
	}
	/*
	 * XXX forwarding to servers the admin chose: let them answer the
	 * special-use and private reverse zones libunbound would otherwise
	 * answer NXDOMAIN itself (internal reverse zones, test setups).
	 * "nodefault" is ignored when set through ub_ctx_set_option (1.17);
	 * "transparent" without local data forwards every query.
	 */
	for (i = 0; dns_special_zones[i] != NULL; i++) {
		snprintf(v, sizeof(v), "%s transparent", dns_special_zones[i]);
		UBSET("local-zone:", v);
	}
	for (i = 64; i <= 127; i++) {
		snprintf(v, sizeof(v), "%d.100.in-addr.arpa. transparent", i);
		UBSET("local-zone:", v);
	}
#undef UBSET
	return 0;
}

/* dns_warm_done - the answer to dns_new's first query: not needed */
static void
dns_warm_done(void *arg, int err, struct ub_result *res)
{
	(void)arg;
	(void)err;
	if (res != NULL)
		ub_resolve_free(res);
}

/* dns_new - build the resolver */
struct dns *
dns_new(const struct dns_conf *c, char *err, size_t errlen)
{
	struct dns *d = xcalloc(1, sizeof(*d));
	size_t k;
	unsigned n;

	atomic_init(&d->refs, 1);
	d->conf = *c;
	d->servers = xcalloc(c->nservers + 1, sizeof(char *));
	for (k = 0; k < c->nservers; k++)
		d->servers[k] = xstrdup(c->servers[k]);
	d->conf.servers = (const char *const *)d->servers;
	d->trust_anchor = xstrdup(c->trust_anchor ? c->trust_anchor : "");
	d->conf.trust_anchor = d->trust_anchor;
	pthread_mutex_init(&d->lock, NULL);
	if (c->cache_size > 0) {
		for (n = 64; n < c->cache_size && n < (1u << 24); n <<= 1)
			;
		d->cbuckets = xcalloc(n, sizeof(*d->cbuckets));
		d->cmask = n - 1;
	}
	d->pbuckets = xcalloc(256, sizeof(*d->pbuckets));
	d->pmask = 255;
	d->stopfd[0] = d->stopfd[1] = -1;
	if ((d->ub = ub_ctx_create()) == NULL) {
		snprintf(err, errlen, "libunbound: cannot create a context");
		goto fail;
	}
	if (dns_ub_setup(d, c, err, errlen) == -1)
		goto fail;
	if (pipe(d->stopfd) == -1) {
		snprintf(err, errlen, "dns: pipe: %s", strerror(errno));
		goto fail;
	}
	/*
	 * libunbound starts its thread, with its event base and pipes, at the
	 * first query: ask one now (localhost is answered inside libunbound),
	 * so that it cannot fail later, when connections may hold every
	 * descriptor the process may open (libevent then exits the process).
	 */
	if (ub_resolve_async(
		d->ub, "localhost.", 1, 1, NULL, dns_warm_done, NULL) != 0) {
		snprintf(err, errlen, "dns: cannot start libunbound's thread");
		goto fail;
	}
	if (pthread_create(&d->thr, NULL, dns_dispatch, d) != 0) {
		snprintf(err, errlen, "dns: cannot start the worker thread");
		goto fail;
	}
	return d;
fail:
	if (d->stopfd[0] != -1) {
		close(d->stopfd[0]);
		close(d->stopfd[1]);
	}
	d->stopfd[0] = -1;
	if (d->ub)
		ub_ctx_delete(d->ub);
	d->ub = NULL;
	for (k = 0; k < c->nservers; k++)
		free(d->servers[k]);
	free(d->servers);
	free(d->trust_anchor);
	free(d->cbuckets);
	free(d->pbuckets);
	pthread_mutex_destroy(&d->lock);
	free(d);
	return NULL;
}

/* dns_ref - share */
struct dns *
dns_ref(struct dns *d)
{
	atomic_fetch_add(&d->refs, 1);
	return d;
}

/* dns_free - stop the worker, drop libunbound, free the tables */
static void
dns_free(struct dns *d)
{
	struct dns_centry *e, *en;
	struct dns_pending *p, *pn;
	size_t k;

	if (write(d->stopfd[1], "x", 1) != 1)
		log_warn("dns: cannot signal the worker");
	pthread_join(d->thr, NULL);
	/* No callback runs after ub_ctx_delete: pendings are ours now. */
	ub_ctx_delete(d->ub);
	close(d->stopfd[0]);
	close(d->stopfd[1]);
	for (e = d->lru_head; e != NULL; e = en) {
		en = e->lnext;
		dns_ans_unref(e->ans);
		free(e);
	}
	for (p = d->all; p != NULL; p = pn) {
		pn = p->anext;
		if (p->refs > 1)
			continue; /* a handle still points at it: leak, not crash */
		dns_ans_unref(p->ans);
		pthread_cond_destroy(&p->cv);
		free(p);
	}
	for (k = 0; k < d->conf.nservers; k++)
		free(d->servers[k]);
	free(d->servers);
	free(d->trust_anchor);
	free(d->cbuckets);
	free(d->pbuckets);
	pthread_mutex_destroy(&d->lock);
	free(d);
}

/* dns_unref - release; the last reference frees */
void
dns_unref(struct dns *d)
{
	if (d != NULL && atomic_fetch_sub(&d->refs, 1) == 1)
		dns_free(d);
}

/* dns_same_conf - compare settings that shape the resolver */
bool
dns_same_conf(const struct dns *d, const struct dns_conf *c)
{
	size_t k;

	if (d->conf.nservers != c->nservers ||
	    d->conf.timeout_ms != c->timeout_ms ||
	    d->conf.cache_size != c->cache_size ||
	    d->conf.max_ttl_ms != c->max_ttl_ms ||
	    d->conf.error_ttl_ms != c->error_ttl_ms ||
	    strcmp(d->trust_anchor, c->trust_anchor ? c->trust_anchor : "") !=
		0)
		return false;
	for (k = 0; k < c->nservers; k++)
		if (strcmp(d->servers[k], c->servers[k]) != 0)
			return false;
	return true;
}

/* dns_query_new - a handle with its deadline */
static struct dns_query *
dns_query_new(struct dns *d)
{
	struct dns_query *q = xcalloc(1, sizeof(*q));
	long long ms;

	q->dns = d;
	clock_gettime(CLOCK_MONOTONIC, &q->deadline);
	ms = d->conf.timeout_ms;
	q->deadline.tv_sec += ms / 1000;
	q->deadline.tv_nsec += (ms % 1000) * 1000000;
	if (q->deadline.tv_nsec >= 1000000000) {
		q->deadline.tv_sec++;
		q->deadline.tv_nsec -= 1000000000;
	}
	return q;
}

/* dns_memo_find - the budget's entry for key (lock held) */
static struct dns_memo *
dns_memo_find(
    struct dns *d, struct dns_budget *b, const char *key, unsigned hash)
{
	struct dns_memo *mo;

	for (mo = b->memo; mo != NULL; mo = mo->next)
		if (mo->hash == hash && mo->dns == d &&
		    strcmp(mo->key, key) == 0)
			return mo;
	return NULL;
}

/* dns_memo_answer - answer q from a budget's entry (lock held) */
static void
dns_memo_answer(struct dns *d, struct dns_memo *mo, struct dns_query *q)
{
	if (mo->p != NULL && mo->p->done) {
		mo->ans = dns_ans_ref(mo->p->ans);
		dns_pending_release(d, mo->p);
		mo->p = NULL;
	}
	if (mo->ans != NULL)
		q->ans = dns_ans_ref(mo->ans);
	else {
		/* a wait of its own, from now: an asking at MAIL FROM must not
		 * shorten the one at end of message (a budget whose wait timed
		 * out may wait once more; dns_error_ttl usually answers first) */
		mo->p->refs++;
		q->p = mo->p;
	}
}

/* dns_memo_add - keep q's answer (or its query in flight) under the
 * budget (lock held) */
static void
dns_memo_add(struct dns *d, struct dns_budget *b, const char *key,
    unsigned hash, struct dns_query *q)
{
	struct dns_memo *mo;

	if (b->nmemo >= b->max + AG_DNS_MEMO_EXTRA)
		return;
	mo = xcalloc(1, sizeof(*mo));
	mo->dns = d;
	mo->hash = hash;
	memcpy(mo->key, key, strlen(key) + 1);
	if (q->ans != NULL)
		mo->ans = dns_ans_ref(q->ans);
	else {
		mo->p = q->p;
		mo->p->refs++;
	}
	mo->next = b->memo;
	b->memo = mo;
	b->nmemo++;
}

/* dns_budget_release - drop the kept answers */
void
dns_budget_release(struct dns_budget *b)
{
	struct dns_memo *mo, *next;

	for (mo = b->memo; mo != NULL; mo = next) {
		next = mo->next;
		if (mo->p != NULL) {
			pthread_mutex_lock(&mo->dns->lock);
			dns_pending_release(mo->dns, mo->p);
			pthread_mutex_unlock(&mo->dns->lock);
		}
		dns_ans_unref(mo->ans);
		free(mo);
	}
	b->memo = NULL;
	b->nmemo = 0;
}

/* dns_test_answer - the test hook in libunbound's place: the answer now */
static int
dns_test_answer(struct dns_pending *p, const char *name, int rrtype)
{
	struct ub_result *res = NULL;
	int err = dns_test_fn_set(name, rrtype, &res);

	if (err == AG_DNS_TEST_PASS)
		return AG_DNS_TEST_PASS; /* for libunbound after all */
	if (err == AG_DNS_TEST_TIMEOUT) {
		/* what a wait until the deadline would give, without it */
		atomic_fetch_add(&p->dns->st_timeouts, 1);
		dns_complete(p->dns, p, &dns_err_timeout);
		return 0;
	}
	if (res != NULL)
		res->qtype = rrtype; /* as libunbound echoes it */
	dns_ub_done(p, err, res);    /* frees res */
	return 0;
}

/* dns_test_resolver - see dns.h */
void
dns_test_resolver(dns_test_fn fn)
{
	dns_test_fn_set = fn;
}

/* dns_query_start - memo, cache, join, or send */
struct dns_query *
dns_query_start(
    struct dns *d, struct dns_budget *budget, const char *name, int rrtype)
{
	struct dns_query *q = dns_query_new(d);
	struct dns_pending *p;
	struct dns_memo *mo;
	pthread_condattr_t ca;
	char key[AG_DNS_KEY_MAX], wire[4 * AG_DNS_MAX_NAME + 8];
	unsigned hash;
	int rc, id;

	if (!dns_name_valid(name) ||
	    dns_make_key(name, rrtype, key, sizeof(key)) == -1) {
		q->ans = &dns_err_badname;
		return q;
	}
	hash = dns_hash(key);
	pthread_mutex_lock(&d->lock);
	if (budget != NULL &&
	    (mo = dns_memo_find(d, budget, key, hash)) != NULL) {
		dns_memo_answer(d, mo, q);
		pthread_mutex_unlock(&d->lock);
		atomic_fetch_add(&d->st_memo, 1);
		return q;
	}
	if ((q->ans = dns_cache_get(d, key, hash)) != NULL) {
		if (budget != NULL)
			dns_memo_add(d, budget, key, hash, q);
		pthread_mutex_unlock(&d->lock);
		atomic_fetch_add(&d->st_hits, 1);
		return q;
	}
	if (budget != NULL && budget->used >= budget->max) {
		pthread_mutex_unlock(&d->lock);
		q->ans = &dns_err_budget;
		return q;
	}
	if (budget != NULL)
		budget->used++;
	for (p = d->pbuckets[hash & d->pmask]; p != NULL; p = p->hnext)
		if (p->hash == hash && strcmp(p->key, key) == 0)
			break;
	if (p != NULL) {
		p->refs++;
		q->p = p;
		if (budget != NULL)
			dns_memo_add(d, budget, key, hash, q);
		pthread_mutex_unlock(&d->lock);
		atomic_fetch_add(&d->st_joined, 1);
		return q;
	}
	p = xcalloc(1, sizeof(*p));
	memcpy(p->key, key, strlen(key) + 1);
	p->hash = hash;
	p->dns = d;
	p->refs = 2; /* this handle + libunbound */
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&p->cv, &ca);
	pthread_condattr_destroy(&ca);
	p->hnext = d->pbuckets[hash & d->pmask];
	d->pbuckets[hash & d->pmask] = p;
	p->anext = d->all;
	if (d->all)
		d->all->aprev = p;
	d->all = p;
	q->p = p;
	if (budget != NULL)
		dns_memo_add(d, budget, key, hash, q);
	pthread_mutex_unlock(&d->lock);

	atomic_fetch_add(&d->st_queries, 1);
	if (dns_presentation(name, wire, sizeof(wire)) == -1)
		rc = UB_SYNTAX;
	else if (dns_test_fn_set != NULL)
		rc = dns_test_answer(p, name, rrtype);
	else
		rc = AG_DNS_TEST_PASS;
	if (rc == AG_DNS_TEST_PASS) /* libunbound's turn */
		rc = ub_resolve_async(
		    d->ub, wire, rrtype, 1 /* IN */, p, dns_ub_done, &id);
	if (rc != 0) {
		log_warn("dns: cannot start query %s/%d: %s", name, rrtype,
		    ub_strerror(rc));
		dns_complete(d, p, &dns_err_servfail);
	}
	return q;
}

/* dns_query_wait - block until the answer or the deadline */
enum ag_dns_rc
dns_query_wait(struct dns_query *q, const struct dns_answer **ansp)
{
	struct dns *d = q->dns;
	struct dns_pending *p = q->p;

	if (q->ans == NULL) {
		pthread_mutex_lock(&d->lock);
		while (!p->done) {
			if (pthread_cond_timedwait(
				&p->cv, &d->lock, &q->deadline) == ETIMEDOUT)
				break;
		}
		if (p->done) {
			q->ans = dns_ans_ref(p->ans);
		} else {
			q->ans = &dns_err_timeout;
			atomic_fetch_add(&d->st_timeouts, 1);
			/* Fail fast for a while; a late answer replaces this. */
			dns_cache_put(
			    d, p->key, p->hash, q->ans, d->conf.error_ttl_ms);
		}
		dns_pending_release(d, p);
		q->p = NULL;
		pthread_mutex_unlock(&d->lock);
	}
	if (ansp)
		*ansp = &q->ans->pub;
	return q->ans->pub.rc;
}

/* dns_query_ready - non-blocking check */
bool
dns_query_ready(struct dns_query *q)
{
	bool done;

	if (q->ans != NULL)
		return true;
	pthread_mutex_lock(&q->dns->lock);
	done = q->p->done;
	pthread_mutex_unlock(&q->dns->lock);
	return done;
}

/* dns_query_free - release a handle */
void
dns_query_free(struct dns_query *q)
{
	if (q == NULL)
		return;
	if (q->p != NULL) {
		pthread_mutex_lock(&q->dns->lock);
		dns_pending_release(q->dns, q->p);
		pthread_mutex_unlock(&q->dns->lock);
	}
	dns_ans_unref(q->ans);
	free(q);
}

/* dns_query_free_cb - arena destructor adapter */
static void
dns_query_free_cb(void *arg)
{
	dns_query_free(arg);
}

/* dns_query_defer - free the handle with the arena */
int
dns_query_defer(struct arena *a, struct dns_query *q)
{
	if (arena_defer(a, dns_query_free_cb, q) == -1) {
		dns_query_free(q);
		return -1;
	}
	return 0;
}

/* dns_stats - counters */
void
dns_stats(struct dns *d, struct dns_stats *st)
{
	st->queries = atomic_load(&d->st_queries);
	st->cache_hits = atomic_load(&d->st_hits);
	st->memo_hits = atomic_load(&d->st_memo);
	st->joined = atomic_load(&d->st_joined);
	st->timeouts = atomic_load(&d->st_timeouts);
	st->servfails = atomic_load(&d->st_servfails);
}

/* dns_rc_name - text of a result */
const char *
dns_rc_name(enum ag_dns_rc rc)
{
	switch (rc) {
	case AG_DNS_OK:
		return "ok";
	case AG_DNS_NODATA:
		return "nodata";
	case AG_DNS_NXDOMAIN:
		return "nxdomain";
	case AG_DNS_SERVFAIL:
		return "servfail";
	case AG_DNS_TIMEOUT:
		return "timeout";
	case AG_DNS_BOGUS:
		return "bogus";
	case AG_DNS_BADNAME:
		return "badname";
	case AG_DNS_BUDGET:
		return "budget";
	}
	return "?";
}

/* dns_rc_temporary - worth retrying later */
bool
dns_rc_temporary(enum ag_dns_rc rc)
{
	return rc == AG_DNS_SERVFAIL || rc == AG_DNS_TIMEOUT;
}

/* dns_rr_txt_nstrings - count character-strings */
int
dns_rr_txt_nstrings(const struct dns_rr *rr)
{
	size_t off = 0;
	int n = 0;

	while (off < rr->len) {
		off += 1 + rr->data[off];
		if (off > rr->len)
			return -1;
		n++;
	}
	return n;
}

/* dns_rr_txt - join the character-strings of a TXT record */
char *
dns_rr_txt(struct arena *a, const struct dns_rr *rr, size_t *lenp)
{
	size_t off = 0, n = 0;
	char *out;

	if (dns_rr_txt_nstrings(rr) == -1)
		return NULL;
	if ((out = arena_alloc(a, rr->len + 1)) == NULL)
		return NULL;
	while (off < rr->len) {
		size_t l = rr->data[off++];

		memcpy(out + n, rr->data + off, l);
		n += l;
		off += l;
	}
	out[n] = '\0';
	if (lenp)
		*lenp = n;
	return out;
}

/* dns_rr_addr - A/AAAA rdata */
int
dns_rr_addr(const struct dns_rr *rr, int rrtype, unsigned char out[16])
{
	if (rrtype == AG_DNS_T_A && rr->len == 4) {
		memset(out, 0, 10);
		out[10] = out[11] = 0xff;
		memcpy(out + 12, rr->data, 4);
		return 4;
	}
	if (rrtype == AG_DNS_T_AAAA && rr->len == 16) {
		memcpy(out, rr->data, 16);
		return 6;
	}
	return -1;
}

/* dns_rr_name - uncompressed wire name to text */
int
dns_rr_name(const struct dns_rr *rr, size_t off, char *out, size_t outlen)
{
	size_t n = 0, wire = 1; /* the root label's length byte */

	if (outlen == 0)
		return -1;
	for (;;) {
		size_t l, i;

		if (off >= rr->len)
			return -1;
		l = rr->data[off++];
		if (l == 0)
			break;
		if (l > 63 || off + l > rr->len)
			return -1; /* also refuses compression pointers */
		if ((wire += 1 + l) > 255)
			return -1; /* RFC 1035 3.1: at most 255 octets */
		if (n != 0) {
			if (n + 1 >= outlen)
				return -1;
			out[n++] = '.';
		}
		for (i = 0; i < l; i++) {
			unsigned char c = rr->data[off + i];

			if (n + 1 >= outlen || c <= 0x20 || c >= 0x7f ||
			    c == '.' || c == '\\')
				return -1;
			out[n++] = (char)c;
		}
		off += l;
	}
	if (n == 0) {
		if (outlen < 2)
			return -1;
		out[n++] = '.';
	}
	out[n] = '\0';
	return 0;
}
