/*
 * spf_bench.c - SPF through the real pipeline (msgctx + spf.c + dns.c),
 * without an MTA: evaluations per second with a warm cache, and per-message
 * latency when every answer must come from a DNS server (run.sh starts one
 * on loopback, with a per-query delay). Not a test: it measures.
 *
 * usage: spf_bench DNSPORT warm N THREADS
 *        spf_bench DNSPORT cold N
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/buf.h"
#include "checks.h"
#include "config.h"
#include "msgctx.h"
#include "snapshot.h"
#include "spf.h"

static struct snapshot *snap;
static const struct check *const table[] = {&spf_check, NULL};
static int nper;

/* now_us - monotonic microseconds */
static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* one - a message from ip with MAIL FROM from; its SPF result */
static int
one(const char *ip, const char *from)
{
	struct conn *c = conn_new(snap);
	struct msg *m;
	int r;

	conn_set_client(c, NULL, ip, NULL);
	conn_set_helo(c, "mail.bench.example");
	conn_connected(c);
	m = msg_new(c);
	msg_mail(m, from);
	msg_eoh(m);
	msg_eom(m);
	r = m->spf_mailfrom.result;
	conn_free(c);
	return r;
}

/* warm_thread - the same sender over and over: answers from our cache */
static void *
warm_thread(void *arg)
{
	int i;

	(void)arg;
	for (i = 0; i < nper; i++)
		if (one("203.0.113.7", "<a@bench.example>") != AG_SPF_PASS)
			abort();
	return NULL;
}

/* cmp - for qsort of latencies */
static int
cmp(const void *a, const void *b)
{
	long long x = *(const long long *)a, y = *(const long long *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	struct buf err = BUF_INIT;
	char ov[64];
	const char *ovs[] = {ov, "spf_helo=no", "log_level=err"};
	struct config *cfg;
	pthread_t thr[64];
	long long t0, t1, *lat;
	int n, k, threads;
	char from[128];

	if (argc < 4) {
		fprintf(stderr,
		    "usage: spf_bench PORT warm N THREADS | "
		    "spf_bench PORT cold N\n");
		return 2;
	}
	snprintf(ov, sizeof(ov), "dns_servers=127.0.0.1@%s", argv[1]);
	if ((cfg = config_load("/dev/null", ovs, 3, &err)) == NULL ||
	    (snap = snapshot_build(cfg, NULL, table, &err)) == NULL) {
		fputs(err.data, stderr);
		return 1;
	}
	log_set_level(LOG_ERR);
	n = atoi(argv[3]);
	if (strcmp(argv[2], "warm") == 0) {
		threads = argc > 4 ? atoi(argv[4]) : 1;
		if (threads < 1 || threads > 64)
			threads = 1;
		nper = n / threads;
		one("203.0.113.7", "<a@bench.example>"); /* fill the cache */
		t0 = now_us();
		for (k = 0; k < threads; k++)
			pthread_create(&thr[k], NULL, warm_thread, NULL);
		for (k = 0; k < threads; k++)
			pthread_join(thr[k], NULL);
		t1 = now_us();
		printf("SPF warm threads=%d evaluations=%d seconds=%.3f "
		       "rate=%.0f/s\n",
		    threads, nper * threads, (t1 - t0) / 1e6,
		    nper * threads / ((t1 - t0) / 1e6));
	} else {
		lat = calloc((size_t)n, sizeof(*lat));
		for (k = 0; k < n; k++) {
			/* a new domain each time: nothing can come from a cache */
			snprintf(from, sizeof(from),
			    "<a@m%d.%lld.cold.example>", k, now_us());
			t0 = now_us();
			if (one("198.51.100.9", from) != AG_SPF_PASS)
				abort();
			lat[k] = now_us() - t0;
		}
		qsort(lat, (size_t)n, sizeof(*lat), cmp);
		printf("SPF cold evaluations=%d p50_ms=%.1f p90_ms=%.1f "
		       "max_ms=%.1f\n",
		    n, lat[n / 2] / 1e3, lat[n * 9 / 10] / 1e3,
		    lat[n - 1] / 1e3);
		free(lat);
	}
	snapshot_release(snap);
	buf_release(&err);
	return 0;
}
