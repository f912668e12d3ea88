/*
 * dns.h - the ONE resolver: libunbound, asynchronous, shared by all threads.
 *
 * A query is started as soon as its input is known (dns_query_start) and
 * collected later (dns_query_wait), which blocks at most until the query's
 * own deadline (dns_timeout after its start): libunbound would retry a
 * silent server for ~17 s, our deadline is what the MTA sees. A timeout is
 * a result (AG_DNS_TIMEOUT), never an error of the caller.
 *
 * In front of libunbound sits our own cache (positive and negative answers
 * for their TTL, SERVFAIL/timeouts for dns_error_ttl, per exact name) and
 * a table of queries in flight, so a second asker of the same name joins
 * the first query instead of sending another. Answers are immutable and
 * reference-counted; a struct dns_answer stays valid until the query
 * handle that returned it is freed.
 *
 * Thread-safety: every function may be called from any thread. A query
 * handle belongs to the thread that started it.
 */
#ifndef AG_DNS_H
#define AG_DNS_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

enum ag_dns_rc {
	AG_DNS_OK = 0,	 /* at least one record of the type */
	AG_DNS_NODATA,	 /* the name exists, no record of the type */
	AG_DNS_NXDOMAIN, /* the name does not exist */
	AG_DNS_SERVFAIL, /* temporary: server failure, refused, garbage */
	AG_DNS_TIMEOUT,	 /* temporary: no answer before the deadline */
	AG_DNS_BOGUS,	 /* DNSSEC validation failed */
	AG_DNS_BADNAME,	 /* permanent: not a valid domain name */
	AG_DNS_BUDGET,	 /* per-message query budget used up */
};

#define AG_DNS_T_A     1
#define AG_DNS_T_NS    2
#define AG_DNS_T_CNAME 5
#define AG_DNS_T_SOA   6
#define AG_DNS_T_PTR   12
#define AG_DNS_T_MX    15
#define AG_DNS_T_TXT   16
#define AG_DNS_T_AAAA  28
#define AG_DNS_T_SPF   99

#define AG_DNS_MAX_NAME 253 /* presentation form, without the final dot */

struct dns_rr {
	const unsigned char *data; /* rdata, wire form, names uncompressed */
	size_t len;
};

struct dns_answer {
	enum ag_dns_rc rc;
	int rrtype;
	unsigned nrr;
	const struct dns_rr *rr;
	unsigned ttl;
	bool secure; /* validated by DNSSEC */
};

struct dns_conf {
	const char *const *servers; /* "addr" or "addr@port"; none: system */
	size_t nservers;
	long long timeout_ms;
	long long cache_size; /* entries; 0 disables our cache */
	long long max_ttl_ms;
	long long error_ttl_ms;
	const char *trust_anchor; /* file, "" or NULL: no DNSSEC */
};

struct dns_memo;

/*
 * Per-message budget and memory: dns_query_start counts the queries it
 * sends against it, and every name asked under a budget is answered the
 * same way for the rest of its life (the first answer is kept, even one
 * with TTL 0, and a second asker joins a query in flight): one message
 * never asks the same question twice, whatever the TTLs. Zero it to
 * start; dns_budget_release() drops what it keeps.
 */
struct dns_budget {
	unsigned used;
	unsigned max;
	struct dns_memo *memo;
	unsigned nmemo;
};

struct dns_stats {
	unsigned long long queries;    /* sent to libunbound */
	unsigned long long cache_hits; /* answered from our cache */
	unsigned long long memo_hits;  /* asked again within one budget */
	unsigned long long joined;     /* attached to a query in flight */
	unsigned long long timeouts;
	unsigned long long servfails;
};

struct dns;
struct dns_query;

/*
 * dns_new - a resolver for this configuration, its worker thread started.
 * Returns NULL with a message in err when libunbound refuses a setting.
 */
struct dns *dns_new(const struct dns_conf *, char *err, size_t errlen);

/* dns_ref, dns_unref - shared ownership (snapshots share one resolver). */
struct dns *dns_ref(struct dns *);
void dns_unref(struct dns *);

/* dns_same_conf - would this configuration build an identical resolver? */
bool dns_same_conf(const struct dns *, const struct dns_conf *);

/*
 * dns_query_start - start (or join, or answer from cache) a query.
 * Parameters: budget may be NULL (no limit). name is a domain name in
 * presentation form, with or without the final dot.
 * Return value: a handle, never NULL; invalid names and a used-up budget
 * give handles that complete at once with AG_DNS_BADNAME/AG_DNS_BUDGET.
 * Side effects: may send a query; counts one against budget unless the
 * answer was cached.
 */
struct dns_query *dns_query_start(
    struct dns *, struct dns_budget *, const char *name, int rrtype);

/*
 * dns_query_wait - the answer, blocking until it arrives or the query's
 * deadline passes. The answer stays valid until dns_query_free().
 */
enum ag_dns_rc dns_query_wait(struct dns_query *, const struct dns_answer **);

/* dns_query_ready - true when dns_query_wait would not block. */
bool dns_query_ready(struct dns_query *);

/* dns_query_free - release a handle (and its answer); NULL is a no-op. */
void dns_query_free(struct dns_query *);

/*
 * dns_query_defer - register dns_query_free on an arena; -1 if the arena
 * is out of memory, in which case the handle has been freed already.
 */
int dns_query_defer(struct arena *, struct dns_query *);

/* dns_budget_release - drop the answers a budget keeps (and keep its
 * counts); the budget may be used again afterwards. */
void dns_budget_release(struct dns_budget *);

/* dns_stats - counters since dns_new. */
void dns_stats(struct dns *, struct dns_stats *);

/* dns_rc_name - "ok", "nxdomain", ... for logs. */
const char *dns_rc_name(enum ag_dns_rc);

/* dns_rc_temporary - SERVFAIL, TIMEOUT: a retry may give another answer. */
bool dns_rc_temporary(enum ag_dns_rc);

/*
 * Record data helpers. All check the rdata bounds and return -1 (or NULL)
 * on malformed data.
 * dns_rr_txt - the character-strings of a TXT record joined without
 *   separator, in the arena; *lenp gets the length (may contain NULs).
 * dns_rr_txt_nstrings - how many character-strings the record has.
 * dns_rr_addr - A or AAAA rdata to 16 bytes (IPv4 mapped); 4 or 6.
 * dns_rr_name - the domain name at offset off of the rdata, in
 *   presentation form without the final dot (MX: off 2; PTR, CNAME: 0).
 */
char *dns_rr_txt(struct arena *, const struct dns_rr *, size_t *lenp);
int dns_rr_txt_nstrings(const struct dns_rr *);
int dns_rr_addr(const struct dns_rr *, int rrtype, unsigned char out[16]);
int dns_rr_name(const struct dns_rr *, size_t off, char *out, size_t outlen);

/*
 * dns_name_valid - the check dns_query_start makes: at most 253 bytes,
 * labels of 1 to 63 bytes. Label bytes are not restricted (DNS allows any;
 * they are escaped for libunbound), but NUL ends the name.
 */
bool dns_name_valid(const char *name);

/*
 * dns_test_resolver - test hook (fuzz targets, unit tests): a query that
 * would go to libunbound is answered at once by fn instead, on the
 * caller's thread; NULL gives libunbound back. fn gets the name as asked
 * (unescaped; may end in a dot) and the type, and does what libunbound's
 * callback is given: returns 0 and sets *res to a result allocated as
 * libunbound allocates one (dns.c frees it with ub_resolve_free), or
 * returns a libunbound error code (SERVFAIL; a *res set anyway is freed),
 * AG_DNS_TEST_TIMEOUT for the answer of a query whose deadline passed
 * (AG_DNS_TIMEOUT, at once), or AG_DNS_TEST_PASS to send this query to
 * libunbound after all.
 * Everything before the network (our cache, queries in flight, the
 * budget) and after it (the conversion of the result) runs as usual.
 * Set it before any query starts; it is not synchronised.
 */
#define AG_DNS_TEST_PASS    1 /* libunbound's error codes are <= 0 */
#define AG_DNS_TEST_TIMEOUT 2
struct ub_result;
typedef int (*dns_test_fn)(const char *name, int rrtype, struct ub_result **);
void dns_test_resolver(dns_test_fn fn);

#endif
