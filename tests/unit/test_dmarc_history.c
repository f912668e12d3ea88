/*
 * test_dmarc_history.c - the report history on SQLite: rows written by the
 * writer thread read back whole; the pending periods, sent and done marks,
 * pruning; a full queue drops and counts instead of waiting; bad URIs.
 * (PostgreSQL is tested against a real server in the integration suite.)
 */
#include <sqlite3.h>

#include "testlib.h"
#include "dmarc_history.h"

static char dir[] = "/tmp/ag-test-dhist-XXXXXX";

static int
setup(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown(void **state)
{
	char cmd[128];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

/* row - a filled-in row at time t */
static void
row(struct dhist_row *r, long long t, const char *domain, const char *ip)
{
	memset(r, 0, sizeof(*r));
	r->t = t;
	snprintf(r->host, sizeof(r->host), "mx1.test");
	snprintf(r->policy_domain, sizeof(r->policy_domain), "%s", domain);
	snprintf(r->header_from, sizeof(r->header_from), "%s", domain);
	snprintf(r->source_ip, sizeof(r->source_ip), "%s", ip);
	snprintf(
	    r->envelope_from, sizeof(r->envelope_from), "bounce.%s", domain);
	snprintf(r->envelope_to, sizeof(r->envelope_to), "rcpt.test");
	snprintf(r->p, sizeof(r->p), "reject");
	snprintf(r->adkim, sizeof(r->adkim), "r");
	snprintf(r->aspf, sizeof(r->aspf), "s");
	snprintf(r->testing, sizeof(r->testing), "n");
	snprintf(r->rua, sizeof(r->rua), "mailto:dmarc@%s", domain);
	snprintf(r->disposition, sizeof(r->disposition), "reject");
	r->spf_aligned = true;
	snprintf(r->reason_type, sizeof(r->reason_type), "mailing_list");
	snprintf(r->spf_domain, sizeof(r->spf_domain), "bounce.%s", domain);
	snprintf(r->spf_result, sizeof(r->spf_result), "pass");
	snprintf(
	    r->dkim, sizeof(r->dkim), "%s s1 fail;other.test s2 pass", domain);
}

struct got {
	int n;
	struct dhist_row last;
};

static int
collect(void *arg, const struct dhist_row *r)
{
	struct got *g = arg;

	g->n++;
	g->last = *r;
	return 0;
}

/* Write, read back, periods, marks, pruning. */
static void
test_roundtrip(void **state)
{
	char uri[256], err[256];
	struct dhist *h;
	struct dhist_row r;
	struct dhist_period per[8];
	struct got g = {0};
	unsigned long long w, d;
	long long day = 1795392000; /* 2026-11-23 00:00 UTC */
	int n;

	(void)state;
	snprintf(uri, sizeof(uri), "sqlite:%s/h.db", dir);
	h = dhist_open(uri, true, 100, err, sizeof(err));
	if (h == NULL)
		fail_msg("%s", err);
	row(&r, day - 2 * 86400 + 10, "a.example", "192.0.2.1");
	assert_true(dhist_record(h, &r));
	row(&r, day - 10, "a.example", "192.0.2.2");
	assert_true(dhist_record(h, &r));
	row(&r, day - 5, "b.example", "2001:db8::1");
	assert_true(dhist_record(h, &r));
	row(&r, day + 5, "a.example", "192.0.2.3"); /* today: not pending */
	assert_true(dhist_record(h, &r));
	dhist_flush(h);
	dhist_stats(h, &w, &d);
	assert_int_equal(w, 4);
	assert_int_equal(d, 0);
	/* yesterday's a.example and b.example, the day before's a.example */
	n = dhist_pending(h, day + 3600, per, 8, err, sizeof(err));
	assert_int_equal(n, 3);
	assert_string_equal(per[0].policy_domain, "a.example");
	assert_int_equal(per[0].begin, day - 2 * 86400);
	assert_int_equal(per[0].end, day - 86400 - 1);
	assert_string_equal(per[1].policy_domain, "a.example");
	assert_int_equal(per[1].begin, day - 86400);
	assert_string_equal(per[2].policy_domain, "b.example");
	/* every column comes back */
	assert_int_equal(dhist_rows(h, "b.example", per[2].begin, per[2].end,
			     collect, &g, err, sizeof(err)),
	    0);
	assert_int_equal(g.n, 1);
	assert_string_equal(g.last.source_ip, "2001:db8::1");
	assert_string_equal(g.last.envelope_from, "bounce.b.example");
	assert_string_equal(g.last.rua, "mailto:dmarc@b.example");
	assert_string_equal(g.last.aspf, "s");
	assert_true(g.last.spf_aligned);
	assert_false(g.last.dkim_aligned);
	assert_string_equal(g.last.reason_type, "mailing_list");
	assert_string_equal(
	    g.last.dkim, "b.example s1 fail;other.test s2 pass");
	/* sent to one destination; done removes the period from pending */
	assert_int_equal(
	    dhist_sent(h, &per[2], "mailto:dmarc@b.example", err, sizeof(err)),
	    0);
	assert_int_equal(dhist_mark_sent(h, &per[2], "mailto:dmarc@b.example",
			     "r1", err, sizeof(err)),
	    0);
	assert_int_equal(
	    dhist_sent(h, &per[2], "mailto:dmarc@b.example", err, sizeof(err)),
	    1);
	assert_int_equal(dhist_mark_done(h, &per[2], err, sizeof(err)), 0);
	n = dhist_pending(h, day + 3600, per, 8, err, sizeof(err));
	assert_int_equal(n, 2);
	/* pruning removes the rows older than the limit, done or not: here
	 * the one of two days ago */
	assert_int_equal(dhist_prune(h, day - 86400, err, sizeof(err)), 1);
	n = dhist_pending(h, day + 3600, per, 8, err, sizeof(err));
	assert_int_equal(n, 1);
	dhist_close(h);
}

/* A writer that cannot write (the database locked by someone else) does
 * not make dhist_record wait: the queue fills and rows are dropped. */
static void
test_full_queue(void **state)
{
	char uri[300], path[256], err[256];
	struct dhist *h;
	struct dhist_row r;
	sqlite3 *other;
	unsigned long long w, d;
	int i, queued = 0;

	(void)state;
	snprintf(path, sizeof(path), "%s/locked.db", dir);
	snprintf(uri, sizeof(uri), "sqlite:%s", path);
	h = dhist_open(uri, true, 10, err, sizeof(err));
	if (h == NULL)
		fail_msg("%s", err);
	assert_int_equal(sqlite3_open(path, &other), SQLITE_OK);
	assert_int_equal(
	    sqlite3_exec(other, "BEGIN EXCLUSIVE", NULL, NULL, NULL),
	    SQLITE_OK);
	for (i = 0; i < 100; i++) {
		row(&r, 1000 + i, "q.example", "192.0.2.9");
		queued += dhist_record(h, &r);
	}
	assert_true(queued < 100);
	sqlite3_exec(other, "COMMIT", NULL, NULL, NULL);
	sqlite3_close(other);
	dhist_flush(h);
	dhist_stats(h, &w, &d);
	/* every row is either written or counted as dropped */
	assert_int_equal(w + d, 100);
	/* at most the queue, plus one batch the writer took before it
	 * blocked, got in */
	assert_true(d >= 100 - 2 * 10);
	/* what was queued was written once the lock went away */
	assert_int_equal((unsigned long long)queued, w);
	dhist_close(h);
}

/* Bad URIs and paths are clear errors. */
static void
test_errors(void **state)
{
	char err[256];

	(void)state;
	assert_null(dhist_open("mysql://x", false, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "want sqlite:/path or postgresql://"));
	assert_null(
	    dhist_open("sqlite:relative.db", false, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "must be absolute"));
	assert_null(dhist_open(
	    "sqlite:/nonexistent-dir/x/h.db", false, 0, err, sizeof(err)));
	assert_non_null(strstr(err, "/nonexistent-dir/x/h.db"));
	assert_null(dhist_open("postgresql://nobody@127.0.0.1:1/none", false, 0,
	    err, sizeof(err)));
	assert_non_null(strstr(err, "postgresql://nobody@127.0.0.1:1/none"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_roundtrip),
	    cmocka_unit_test(test_full_queue),
	    cmocka_unit_test(test_errors),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
