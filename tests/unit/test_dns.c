/*
 * test_dns.c - the resolver against a fake DNS server on 127.0.0.1:
 * rcodes, record parsing, cache, joining, deadline, budget, bad names.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <unbound.h>

#include "testlib.h"
#include "util/arena.h"
#include "dns.h"
#include "fakedns.h"

static struct fakedns *fk;
static struct dns *dns;

/* mkdns - resolver pointed at the fake server */
static struct dns *
mkdns(long long timeout_ms, long long cache, long long error_ttl_ms)
{
	char server[64], err[256];
	const char *servers[1] = {server};
	struct dns_conf c = {
	    servers, 1, timeout_ms, cache, 86400000LL, error_ttl_ms, ""};
	struct dns *d;

	snprintf(server, sizeof(server), "127.0.0.1@%d", fakedns_port(fk));
	d = dns_new(&c, err, sizeof(err));
	if (d == NULL)
		fail_msg("dns_new: %s", err);
	return d;
}

static int
setup(void **state)
{
	(void)state;
	fk = fakedns_start();
	fakedns_add(fk, "txt.example", 16, "v=spf1 -all", 300);
	fakedns_add(fk, "multi.example", 16, "first|second", 300);
	fakedns_add(fk, "a.example", 1, "192.0.2.7", 300);
	fakedns_add(fk, "a.example", 28, "2001:db8::7", 300);
	fakedns_add(fk, "mx.example", 15, "10 mail.example", 300);
	fakedns_add(fk, "ttl0.example", 16, "zero", 0);
	fakedns_add(fk, "odd  name%.example", 1, "192.0.2.9", 300);
	fakedns_behave(fk, "fail.example", 2, 0, false);
	fakedns_behave(fk, "refused.example", 5, 0, false);
	fakedns_behave(fk, "silent.example", -1, 0, true);
	fakedns_behave(fk, "slow.example", -1, 150, false);
	fakedns_behave(fk, "txt.example", -1, 0, false);
	fakedns_behave(fk, "ttl0.example", -1, 0, false);
	fakedns_add(fk, "slow.example", 16, "slow", 300);
	dns = mkdns(400, 1000, 10000);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	dns_unref(dns);
	fakedns_stop(fk);
	return 0;
}

/* lookup - start + wait, keeping the handle for the answer's lifetime */
static enum ag_dns_rc
lookup(const char *name, int type, const struct dns_answer **ans,
    struct dns_query **qp)
{
	*qp = dns_query_start(dns, NULL, name, type);
	return dns_query_wait(*qp, ans);
}

static void
test_rcodes(void **state)
{
	static const struct {
		const char *name;
		int type;
		enum ag_dns_rc want;
	} rows[] = {
	    {"txt.example", 16, AG_DNS_OK},
	    {"a.example", 16, AG_DNS_NODATA},
	    {"nope.example", 16, AG_DNS_NXDOMAIN},
	    {"fail.example", 16, AG_DNS_SERVFAIL},
	    {"refused.example", 1, AG_DNS_SERVFAIL},
	    {"bad..name", 16, AG_DNS_BADNAME},
	    {"odd  name%.example", 1, AG_DNS_OK}, /* spaces and % in a label */
	    {"has space.example", 16, AG_DNS_NXDOMAIN}, /* legal, escaped */
	    {"", 1, AG_DNS_BADNAME},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const struct dns_answer *a;
		struct dns_query *q;

		want_int(rows[i].name,
		    lookup(rows[i].name, rows[i].type, &a, &q), rows[i].want);
		dns_query_free(q);
	}
}

static void
test_records(void **state)
{
	const struct dns_answer *a;
	struct dns_query *q;
	struct arena *ar = arena_new(0);
	unsigned char addr[16];
	char name[256], text[64];
	size_t len;

	(void)state;
	assert_int_equal(lookup("multi.example", 16, &a, &q), AG_DNS_OK);
	assert_int_equal(a->nrr, 1);
	assert_int_equal(dns_rr_txt_nstrings(&a->rr[0]), 2);
	assert_string_equal(dns_rr_txt(ar, &a->rr[0], &len), "firstsecond");
	assert_int_equal(len, 11);
	dns_query_free(q);

	assert_int_equal(lookup("a.example", 1, &a, &q), AG_DNS_OK);
	assert_int_equal(dns_rr_addr(&a->rr[0], 1, addr), 4);
	assert_int_equal(addr[12], 192);
	assert_int_equal(addr[15], 7);
	dns_query_free(q);

	assert_int_equal(lookup("a.example", 28, &a, &q), AG_DNS_OK);
	assert_int_equal(dns_rr_addr(&a->rr[0], 28, addr), 6);
	snprintf(text, sizeof(text), "%02x%02x", addr[0], addr[1]);
	assert_string_equal(text, "2001");
	dns_query_free(q);

	assert_int_equal(lookup("mx.example", 15, &a, &q), AG_DNS_OK);
	assert_int_equal(dns_rr_name(&a->rr[0], 2, name, sizeof(name)), 0);
	assert_string_equal(name, "mail.example");
	assert_int_equal((a->rr[0].data[0] << 8) | a->rr[0].data[1], 10);
	dns_query_free(q);
	arena_free(ar);
}

static void
test_cache(void **state)
{
	const struct dns_answer *a;
	struct dns_query *q;
	struct dns_stats before, after;
	unsigned n0 = fakedns_count(fk, "txt.example");

	(void)state;
	dns_stats(dns, &before);
	assert_int_equal(lookup("TXT.Example.", 16, &a, &q), AG_DNS_OK);
	dns_query_free(q);
	dns_stats(dns, &after);
	/* answered in test_rcodes already: the case and final dot differ */
	assert_int_equal(fakedns_count(fk, "txt.example"), n0);
	assert_int_equal(after.cache_hits, before.cache_hits + 1);

	/* TTL 0: never cached, every lookup asks the server */
	n0 = fakedns_count(fk, "ttl0.example");
	assert_int_equal(lookup("ttl0.example", 16, &a, &q), AG_DNS_OK);
	dns_query_free(q);
	assert_int_equal(lookup("ttl0.example", 16, &a, &q), AG_DNS_OK);
	dns_query_free(q);
	assert_true(fakedns_count(fk, "ttl0.example") >= n0 + 2);
}

static void
test_servfail_cached(void **state)
{
	const struct dns_answer *a;
	struct dns_query *q;
	unsigned n0;

	(void)state;
	assert_int_equal(lookup("fail.example", 1, &a, &q), AG_DNS_SERVFAIL);
	dns_query_free(q);
	n0 = fakedns_count(fk, "fail.example");
	/* within dns_error_ttl the failure is answered from the cache */
	assert_int_equal(lookup("fail.example", 1, &a, &q), AG_DNS_SERVFAIL);
	dns_query_free(q);
	assert_int_equal(fakedns_count(fk, "fail.example"), n0);
}

static void
test_deadline(void **state)
{
	const struct dns_answer *a;
	struct dns_query *q;
	struct timespec t0, t1;
	long ms;
	struct dns_stats st;

	(void)state;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(lookup("silent.example", 16, &a, &q), AG_DNS_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dns_query_free(q);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	/* our deadline (400 ms), not libunbound's ~17 s of retries */
	if (ms < 350 || ms > 3000)
		fail_msg("timeout after %ld ms, want about 400", ms);
	dns_stats(dns, &st);
	assert_true(st.timeouts >= 1);
	/* the timeout is cached for a while: the next ask fails at once */
	clock_gettime(CLOCK_MONOTONIC, &t0);
	assert_int_equal(lookup("silent.example", 16, &a, &q), AG_DNS_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	dns_query_free(q);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 +
	    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	if (ms > 200)
		fail_msg("cached timeout took %ld ms", ms);
}

static void
test_join(void **state)
{
	struct dns_query *q1, *q2;
	const struct dns_answer *a1, *a2;
	struct dns_stats before, after;

	(void)state;
	dns_stats(dns, &before);
	q1 = dns_query_start(dns, NULL, "slow.example", 16);
	q2 = dns_query_start(dns, NULL, "slow.example", 16);
	assert_false(dns_query_ready(q1));
	assert_int_equal(dns_query_wait(q2, &a2), AG_DNS_OK);
	assert_int_equal(dns_query_wait(q1, &a1), AG_DNS_OK);
	assert_ptr_equal(a1, a2); /* one shared answer */
	dns_stats(dns, &after);
	assert_int_equal(after.queries, before.queries + 1);
	assert_int_equal(after.joined, before.joined + 1);
	dns_query_free(q1);
	dns_query_free(q2);
}

static void
test_budget(void **state)
{
	struct dns_budget b = {0, 2, NULL, 0};
	struct dns_query *q[3];
	const struct dns_answer *a;

	(void)state;
	q[0] = dns_query_start(dns, &b, "b1.example", 1);
	q[1] = dns_query_start(dns, &b, "b2.example", 1);
	q[2] = dns_query_start(dns, &b, "b3.example", 1);
	assert_int_equal(dns_query_wait(q[2], &a), AG_DNS_BUDGET);
	assert_int_equal(dns_query_wait(q[0], &a), AG_DNS_NXDOMAIN);
	assert_int_equal(dns_query_wait(q[1], &a), AG_DNS_NXDOMAIN);
	assert_int_equal(b.used, 2);
	/* a cached answer costs nothing */
	b.used = 2;
	dns_query_free(q[0]);
	q[0] = dns_query_start(dns, &b, "b1.example", 1);
	assert_int_equal(dns_query_wait(q[0], &a), AG_DNS_NXDOMAIN);
	dns_query_free(q[0]);
	dns_query_free(q[1]);
	dns_query_free(q[2]);
	dns_budget_release(&b);
}

/* ms_since - milliseconds since t0 */
static long long
ms_since(const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return (t.tv_sec - t0->tv_sec) * 1000LL +
	    (t.tv_nsec - t0->tv_nsec) / 1000000;
}

/* A budget keeps what it was told: a TTL 0 name, a query in flight and a
 * timeout are each asked once per budget; other budgets ask again. */
static void
test_memo(void **state)
{
	struct dns_budget b = {0, 10, NULL, 0}, other = {0, 10, NULL, 0};
	struct dns_query *q1, *q2;
	const struct dns_answer *a;
	struct dns_stats before, after;
	struct dns *d0;
	struct timespec t0;
	unsigned n0;

	(void)state;
	n0 = fakedns_count(fk, "ttl0.example");
	q1 = dns_query_start(dns, &b, "ttl0.example", 16);
	assert_int_equal(dns_query_wait(q1, &a), AG_DNS_OK);
	dns_query_free(q1);
	q1 = dns_query_start(dns, &b, "TTL0.example.", 16);
	assert_int_equal(dns_query_wait(q1, &a), AG_DNS_OK);
	assert_int_equal(a->nrr, 1);
	dns_query_free(q1);
	assert_int_equal(fakedns_count(fk, "ttl0.example"), n0 + 1);
	assert_int_equal(b.used, 1);
	q1 = dns_query_start(dns, &other, "ttl0.example", 16);
	assert_int_equal(dns_query_wait(q1, &a), AG_DNS_OK);
	dns_query_free(q1);
	assert_int_equal(fakedns_count(fk, "ttl0.example"), n0 + 2);
	dns_budget_release(&b);
	assert_null(b.memo);
	q1 = dns_query_start(dns, &b, "ttl0.example", 16);
	assert_int_equal(dns_query_wait(q1, &a), AG_DNS_OK);
	dns_query_free(q1);
	assert_int_equal(fakedns_count(fk, "ttl0.example"), n0 + 3);

	/* a second asker joins the first one's query, which is still out */
	dns_stats(dns, &before);
	q1 = dns_query_start(dns, &b, "slow.example", 15);
	q2 = dns_query_start(dns, &b, "slow.example", 15);
	assert_false(dns_query_ready(q2));
	assert_int_equal(dns_query_wait(q2, &a), AG_DNS_NODATA);
	assert_int_equal(dns_query_wait(q1, &a), AG_DNS_NODATA);
	dns_stats(dns, &after);
	assert_int_equal(after.queries, before.queries + 1);
	assert_int_equal(after.memo_hits, before.memo_hits + 1);
	dns_query_free(q2);
	dns_budget_release(&b); /* q1 still holds the answer */
	dns_query_free(q1);

	/* a timed-out name is asked again by a later wait of the budget,
	 * which gets a deadline of its own (no error cache here) */
	d0 = mkdns(200, 1000, 0);
	q1 = dns_query_start(d0, &b, "silent.example", 16);
	assert_int_equal(dns_query_wait(q1, &a), AG_DNS_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	q2 = dns_query_start(d0, &b, "silent.example", 16);
	assert_int_equal(dns_query_wait(q2, &a), AG_DNS_TIMEOUT);
	assert_true(ms_since(&t0) >= 150);
	dns_query_free(q1);
	dns_query_free(q2);
	dns_budget_release(&b);
	dns_budget_release(&other);
	dns_unref(d0);
}

static void
test_free_before_answer(void **state)
{
	struct dns_query *q;

	(void)state;
	/* a message that ends before its answer must not be touched later */
	q = dns_query_start(dns, NULL, "slow.example", 1);
	dns_query_free(q);
	usleep(300000);
}

static void
test_rr_malformed(void **state)
{
	static const unsigned char bad_txt[] = {5, 'a', 'b'};
	static const unsigned char ptr_loop[] = {0xc0, 0x00};
	struct dns_rr r1 = {bad_txt, sizeof(bad_txt)};
	struct dns_rr r2 = {ptr_loop, sizeof(ptr_loop)};
	struct arena *ar = arena_new(0);
	char name[64];
	unsigned char addr[16];

	(void)state;
	assert_int_equal(dns_rr_txt_nstrings(&r1), -1);
	assert_null(dns_rr_txt(ar, &r1, NULL));
	assert_int_equal(dns_rr_name(&r2, 0, name, sizeof(name)), -1);
	assert_int_equal(dns_rr_addr(&r1, 1, addr), -1);
	arena_free(ar);
}

/* hook_answer - dns_test_resolver's stand-in: "hook.example" has one
 * TXT record of raw (broken) rdata, "err.example" a libunbound error,
 * "txt.example" goes to libunbound, "late.example" times out at once,
 * anything else is NXDOMAIN; the names
 * asked are counted */
static unsigned hook_calls;
static char hook_last[64];

static int
hook_answer(const char *name, int rrtype, struct ub_result **resp)
{
	static const char rdata[] = "\005ab"; /* the length lies */
	struct ub_result *r;

	(void)rrtype;
	hook_calls++;
	snprintf(hook_last, sizeof(hook_last), "%s", name);
	if (strcmp(name, "err.example") == 0)
		return UB_SERVFAIL;
	if (strcmp(name, "txt.example") == 0)
		return AG_DNS_TEST_PASS; /* the fake server has it */
	if (strcmp(name, "late.example") == 0)
		return AG_DNS_TEST_TIMEOUT;
	r = calloc(1, sizeof(*r));
	r->qname = strdup(name);
	r->data = calloc(2, sizeof(char *));
	r->len = calloc(2, sizeof(int));
	if (strcmp(name, "hook.example") == 0) {
		r->data[0] = malloc(3);
		memcpy(r->data[0], rdata, 3);
		r->len[0] = 3;
		r->havedata = 1;
		r->ttl = 60;
	} else {
		r->rcode = 3;
		r->nxdomain = 1;
	}
	*resp = r;
	return 0;
}

/* The test hook answers in libunbound's place, through the same
 * conversion, budget and cache, or hands a query on to libunbound; NULL
 * hands them all back. */
static void
test_hook(void **state)
{
	const struct dns_answer *a;
	struct dns_query *q;
	struct dns *d = mkdns(400, 0, 0);
	struct dns_budget b = {0, 2, NULL, 0};
	struct arena *ar = arena_new(0);
	struct timespec t0, t1;
	struct dns_stats st;

	(void)state;
	dns_test_resolver(hook_answer);
	q = dns_query_start(d, &b, "hook.example", 16);
	assert_int_equal(dns_query_wait(q, &a), AG_DNS_OK);
	assert_int_equal(a->nrr, 1);
	assert_int_equal(a->rrtype, 16);
	assert_int_equal(a->rr[0].len, 3);
	assert_null(dns_rr_txt(ar, &a->rr[0], NULL)); /* malformed */
	dns_query_free(q);
	q = dns_query_start(d, &b, "err.example", 1);
	assert_int_equal(dns_query_wait(q, NULL), AG_DNS_SERVFAIL);
	dns_query_free(q);
	q = dns_query_start(d, &b, "odd name.example", 1);
	assert_int_equal(dns_query_wait(q, NULL), AG_DNS_BUDGET);
	dns_query_free(q);
	assert_int_equal(hook_calls, 2);
	q = dns_query_start(d, NULL, "odd name.example", 1);
	assert_int_equal(dns_query_wait(q, NULL), AG_DNS_NXDOMAIN);
	assert_string_equal(hook_last, "odd name.example"); /* unescaped */
	dns_query_free(q);
	q = dns_query_start(d, NULL, "txt.example", 16);
	assert_int_equal(dns_query_wait(q, &a), AG_DNS_OK);
	assert_int_equal(a->nrr, 1);
	dns_query_free(q);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	q = dns_query_start(d, NULL, "late.example", 16);
	assert_int_equal(dns_query_wait(q, NULL), AG_DNS_TIMEOUT);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	/* at once, not after the deadline of 400 ms */
	assert_true((t1.tv_sec - t0.tv_sec) * 1000 +
		(t1.tv_nsec - t0.tv_nsec) / 1000000 <
	    300);
	dns_query_free(q);
	dns_stats(d, &st);
	assert_int_equal(st.timeouts, 1);
	dns_test_resolver(NULL);
	q = dns_query_start(d, NULL, "hook.example", 16);
	assert_int_equal(dns_query_wait(q, NULL), AG_DNS_NXDOMAIN);
	dns_query_free(q);
	assert_int_equal(hook_calls, 5);
	dns_budget_release(&b);
	dns_unref(d);
	arena_free(ar);
}

/* A wire name is at most 255 octets (RFC 1035 3.1): labels of 63, 63, 63
 * and 62 plus the length bytes and the root make 256 (fuzz input
 * dns_rr-1); one byte less is the longest valid name. */
static void
test_rr_name_max(void **state)
{
	unsigned char w[300];
	char name[1024];
	static const int labels[] = {63, 63, 63, 62};
	struct dns_rr r = {w, 0};
	size_t n = 0, i;

	(void)state;
	for (i = 0; i < 4; i++) {
		w[n++] = (unsigned char)labels[i];
		memset(w + n, 'a', (size_t)labels[i]);
		n += (size_t)labels[i];
	}
	w[n++] = 0;
	r.len = n;
	assert_int_equal(n, 256);
	assert_int_equal(dns_rr_name(&r, 0, name, sizeof(name)), -1);
	/* 63, 63, 63, 61: 255 octets, 253 characters */
	w[192] = 61;
	w[192 + 62] = 0;
	r.len = 255;
	assert_int_equal(dns_rr_name(&r, 0, name, sizeof(name)), 0);
	assert_int_equal(strlen(name), 253);
	assert_true(dns_name_valid(name));
}

static void
test_name_valid(void **state)
{
	char big[300];

	(void)state;
	assert_true(dns_name_valid("_dmarc.example.com"));
	assert_true(dns_name_valid("example.com."));
	assert_false(dns_name_valid("."));
	assert_false(dns_name_valid("a..b"));
	assert_true(dns_name_valid("back\\slash and space%.example"));
	memset(big, 'a', 64);
	big[64] = '\0';
	assert_false(dns_name_valid(big)); /* label of 64 */
	memset(big, 'a', sizeof(big));
	for (int i = 63; i < 299; i += 64)
		big[i] = '.';
	big[254] = '\0';
	assert_false(dns_name_valid(big)); /* 254 bytes */
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_rcodes),
	    cmocka_unit_test(test_records),
	    cmocka_unit_test(test_cache),
	    cmocka_unit_test(test_servfail_cached),
	    cmocka_unit_test(test_deadline),
	    cmocka_unit_test(test_join),
	    cmocka_unit_test(test_budget),
	    cmocka_unit_test(test_memo),
	    cmocka_unit_test(test_free_before_answer),
	    cmocka_unit_test(test_rr_malformed),
	    cmocka_unit_test(test_rr_name_max),
	    cmocka_unit_test(test_name_valid),
	    cmocka_unit_test(test_hook),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
