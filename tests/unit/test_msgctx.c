/*
 * test_msgctx.c - the stage driver over a check table, header storage and
 * caps, forged A-R detection, the trust decision, and the verdict for the
 * failure classes (including an arena that runs out of memory).
 */
#include "testlib.h"
#include "util/arena.h"
#include "util/buf.h"
#include "checks.h"
#include "config.h"
#include "msgctx.h"
#include "snapshot.h"

static char trace[2048];
static int fail_stage; /* 0: none; else the stage number that fails */

static void
note(const char *s)
{
	strncat(trace, s, sizeof(trace) - strlen(trace) - 1);
}

static int
ck_load(struct snapshot *s, struct buf *err)
{
	(void)s;
	(void)err;
	note("load;");
	return 0;
}

static void
ck_unload(struct snapshot *s)
{
	(void)s;
	note("unload;");
}

static int
ck_connect(struct conn *c)
{
	note("connect:");
	note(c->client_ip);
	note(";");
	return 0;
}

static int
ck_mail(struct msg *m)
{
	note("mail:");
	note(m->mail_from);
	note(";");
	return fail_stage == 1 ? -1 : 0;
}

static int
ck_header(struct msg *m, const struct hdr *h)
{
	(void)m;
	note("hdr:");
	note(h->name);
	note(";");
	return 0;
}

static int
ck_eoh(struct msg *m)
{
	(void)m;
	note("eoh;");
	return 0;
}

static int
ck_body(struct msg *m, const unsigned char *p, size_t len)
{
	char n[32];

	(void)m;
	(void)p;
	snprintf(n, sizeof(n), "body%zu;", len);
	note(n);
	return 0;
}

static int
ck_eom(struct msg *m)
{
	struct ar_result *r;

	note("eom;");
	if ((r = msg_ar_new(m, "test", "pass")) == NULL)
		return -1;
	msg_ar_prop(m, r, "smtp", "mailfrom", m->mail_from);
	msg_ar_add(m, r);
	if (fail_stage == 2)
		msg_error(m, AG_ERR_DNS, "test: pretend DNS failed");
	return 0;
}

static const struct check fake = {.name = "fake",
    .load = ck_load,
    .unload = ck_unload,
    .on_connect = ck_connect,
    .on_mail = ck_mail,
    .on_header = ck_header,
    .on_eoh = ck_eoh,
    .on_body = ck_body,
    .on_eom = ck_eom};
static const struct check second = {.name = "second"};
static const struct check *const table[] = {&fake, &second, NULL};

/* snap - a snapshot with our table and the given overrides */
static struct snapshot *
snap(const char *const *ov, size_t nov)
{
	struct buf err = BUF_INIT;
	char *path = tl_write_file("authserv_id = mx.example.com\n"
				   "internal_hosts = 10.0.0.0/8\n");
	struct config *cfg = config_load(path, ov, nov, &err);
	struct snapshot *s;

	if (cfg == NULL)
		fail_msg("%s", err.data);
	s = snapshot_build(cfg, NULL, table, &err);
	if (s == NULL)
		fail_msg("%s", err.data);
	unlink(path);
	free(path);
	buf_release(&err);
	return s;
}

static void
test_stages(void **state)
{
	struct snapshot *s;
	struct conn *c;
	struct msg *m;

	(void)state;
	trace[0] = '\0';
	fail_stage = 0;
	s = snap(NULL, 0);
	c = conn_new(s);
	conn_set_client(c, NULL, "IPv6:2001:db8::5", "client.example");
	conn_set_helo(c, "helo.example");
	conn_connected(c);
	m = msg_new(c);
	msg_mail(m, "<alice@example.org>");
	assert_string_equal(m->mail_from, "alice@example.org");
	assert_string_equal(m->mail_domain, "example.org");
	msg_rcpt(m, "<bob@example.com>");
	msg_header(m, "From", " alice@example.org");
	msg_header(m, "Subject", " folded\n\tline");
	msg_eoh(m);
	msg_body(m, (const unsigned char *)"hello\r\n", 7);
	msg_eom(m);
	assert_string_equal(trace,
	    "load;connect:2001:db8::5;"
	    "mail:alice@example.org;hdr:From;"
	    "hdr:Subject;eoh;body7;eom;");
	/* folds are kept, LF becomes CRLF */
	assert_string_equal(m->hdrs->next->value, " folded\r\n\tline");
	assert_int_equal(m->verdict.action, AG_ACT_ACCEPT);
	assert_non_null(m->verdict.edits);
	assert_int_equal(m->verdict.edits->op, AG_EDIT_INSERT);
	assert_string_equal(m->verdict.edits->value,
	    "mx.example.com;\n\ttest=pass smtp.mailfrom=alice@example.org");
	assert_false(m->internal);
	conn_free(c); /* frees the message too */
	snapshot_release(s);
	assert_non_null(strstr(trace, "unload;"));
}

static void
test_forged_ar(void **state)
{
	struct snapshot *s = snap(NULL, 0);
	struct conn *c = conn_new(s);
	struct msg *m;
	const struct hdr_edit *e;
	int idx[4], n = 0, inserts = 0;

	(void)state;
	conn_set_client(c, NULL, "192.0.2.1", NULL);
	m = msg_new(c);
	msg_mail(m, "<>");
	assert_string_equal(m->mail_from, "");
	assert_null(m->mail_domain);
	msg_header(m, "Authentication-Results", " mx.example.com; spf=pass");
	msg_header(m, "authentication-results", " other.example; spf=fail");
	msg_header(m, "AUTHENTICATION-RESULTS",
	    " (c)\n\t\"MX.EXAMPLE.COM\"; dkim=pass");
	msg_header(m, "Authentication-Results", " mx.example.com.evil; x=y");
	msg_header(m, "Authentication-Results", " mx.example.com");
	msg_eom(m);
	for (e = m->verdict.edits; e != NULL; e = e->next) {
		if (e->op == AG_EDIT_DELETE)
			idx[n++] = e->index;
		else
			inserts++;
	}
	/* #1, #3, #5 are ours; deleted highest first */
	assert_int_equal(n, 3);
	assert_int_equal(idx[0], 5);
	assert_int_equal(idx[1], 3);
	assert_int_equal(idx[2], 1);
	assert_int_equal(inserts, 1);
	conn_free(c);
	snapshot_release(s);
}

static void
test_trust(void **state)
{
	struct snapshot *s = snap(NULL, 0);
	const char *ov[] = {"internal_auth = no"};
	struct conn *c;
	struct msg *m;

	(void)state;
	c = conn_new(s);
	conn_set_client(c, NULL, "10.1.2.3", NULL);
	m = msg_new(c);
	assert_true(m->internal);
	conn_free(c);
	c = conn_new(s);
	conn_set_client(c, NULL, "::ffff:10.9.9.9", NULL);
	m = msg_new(c);
	assert_true(m->internal); /* IPv4-mapped is the same host */
	conn_free(c);
	c = conn_new(s);
	conn_set_client(c, NULL, "192.0.2.1", NULL);
	m = msg_new(c);
	assert_false(m->internal);
	msg_set_auth(m, "alice");
	assert_true(m->internal);
	assert_string_equal(m->auth_user, "alice");
	conn_free(c);
	snapshot_release(s);

	s = snap(ov, 1);
	c = conn_new(s);
	conn_set_client(c, NULL, "192.0.2.1", NULL);
	m = msg_new(c);
	msg_set_auth(m, "alice");
	assert_false(m->internal);
	conn_free(c);
	snapshot_release(s);
}

static void
test_caps(void **state)
{
	const char *ov[] = {"max_headers = 10", "header_size_limit = 1k"};
	struct snapshot *s = snap(ov, 2);
	struct conn *c = conn_new(s);
	struct msg *m;
	char big[3000];
	int i;

	(void)state;
	conn_set_client(c, NULL, "192.0.2.1", NULL);
	m = msg_new(c);
	memset(big, 'x', sizeof(big) - 1);
	big[sizeof(big) - 1] = '\0';
	msg_header(m, "X-Big", big);
	assert_true(m->flags & AG_MSG_TRUNC_HEADER);
	assert_int_equal(m->hdrs->valuelen, 1024);
	for (i = 0; i < 20; i++)
		msg_header(m, "X-Many", " y");
	assert_int_equal(m->nhdrs, 10);
	assert_true(m->flags & AG_MSG_TRUNC_HEADERS);
	/* past the cap, a forged A-R is still found */
	msg_header(m, "Authentication-Results", " mx.example.com; spf=pass");
	assert_int_equal(m->nar_remove, 1);
	msg_eom(m);
	assert_int_equal(m->verdict.action, AG_ACT_ACCEPT);
	conn_free(c);
	snapshot_release(s);
}

static void
test_failure_classes(void **state)
{
	const char *tf[] = {"on_dns_error = tempfail"};
	const char *rj[] = {"on_internal_error = reject"};
	struct snapshot *s;
	struct conn *c;
	struct msg *m;

	(void)state;
	/* DNS failure: accept by default, tempfail when configured */
	fail_stage = 2;
	s = snap(NULL, 0);
	c = conn_new(s);
	m = msg_new(c);
	msg_mail(m, "<a@example.org>");
	msg_eom(m);
	assert_int_equal(m->verdict.action, AG_ACT_ACCEPT);
	conn_free(c);
	snapshot_release(s);
	s = snap(tf, 1);
	c = conn_new(s);
	m = msg_new(c);
	msg_mail(m, "<a@example.org>");
	msg_eom(m);
	assert_int_equal(m->verdict.action, AG_ACT_TEMPFAIL);
	assert_string_equal(m->verdict.rcode, "451");
	assert_string_equal(m->verdict.xcode, "4.7.1");
	assert_null(m->verdict.edits);
	conn_free(c);
	snapshot_release(s);

	/* a check's internal error: tempfail by default, or as configured */
	fail_stage = 1;
	s = snap(NULL, 0);
	c = conn_new(s);
	m = msg_new(c);
	msg_mail(m, "<a@example.org>");
	msg_eom(m);
	assert_int_equal(m->verdict.action, AG_ACT_TEMPFAIL);
	conn_free(c);
	snapshot_release(s);
	s = snap(rj, 1);
	c = conn_new(s);
	m = msg_new(c);
	msg_mail(m, "<a@example.org>");
	msg_eom(m);
	assert_int_equal(m->verdict.action, AG_ACT_REJECT);
	assert_string_equal(m->verdict.rcode, "550");
	conn_free(c);
	snapshot_release(s);
	fail_stage = 0;
}

static void
test_out_of_memory(void **state)
{
	struct snapshot *s = snap(NULL, 0);
	unsigned long n;
	int tempfails = 0, runs = 0;

	(void)state;
	/* Every allocation point in turn: never a crash, never a silent
	 * accept without our header: tempfail, or the full result. */
	for (n = 1; n < 60; n++) {
		struct conn *c;
		struct msg *m;

		arena_test_fail_after(n);
		if ((c = conn_new(s)) == NULL)
			continue;
		conn_set_client(c, NULL, "192.0.2.1", "x.example");
		conn_set_helo(c, "helo.example");
		if ((m = msg_new(c)) == NULL) {
			conn_free(c);
			continue;
		}
		msg_mail(m, "<a@example.org>");
		msg_rcpt(m, "<b@example.com>");
		msg_header(m, "Authentication-Results", " mx.example.com; x=y");
		msg_header(m, "Subject", " s");
		msg_eom(m);
		runs++;
		if (m->verdict.action == AG_ACT_TEMPFAIL)
			tempfails++;
		else if (m->verdict.edits == NULL ||
		    m->verdict.edits->op != AG_EDIT_DELETE)
			fail_msg("fail after %lu: accepted without removing "
				 "the forged header",
			    n);
		conn_free(c);
	}
	arena_test_fail_after(0);
	assert_true(runs > 10);
	assert_true(tempfails > 0);
	snapshot_release(s);
}

/* A connection fact lost to a failed allocation (the MTA's j macro here)
 * must not pass silently: the messages of that connection tempfail
 * (found by fuzz_pipeline, input pipeline-1). */
static void
test_conn_fact_lost(void **state)
{
	struct snapshot *s = snap(NULL, 0);
	unsigned long n;
	int lost = 0;

	(void)state;
	for (n = 1; n < 6; n++) {
		struct conn *c;
		struct msg *m;

		arena_test_fail_after(n);
		c = conn_new(s);
		arena_test_fail_after(0);
		if (c == NULL)
			continue;
		conn_set_authserv_id(c, "mx.example.net");
		m = msg_new(c);
		assert_non_null(m);
		msg_mail(m, "<a@example.org>");
		msg_eom(m);
		if (c->authserv_id == NULL) {
			lost++;
			assert_int_equal(m->verdict.action, AG_ACT_TEMPFAIL);
		} else
			assert_string_equal(c->authserv_id, "mx.example.net");
		conn_free(c);
	}
	assert_true(lost > 0);
	snapshot_release(s);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_stages),
	    cmocka_unit_test(test_forged_ar),
	    cmocka_unit_test(test_trust),
	    cmocka_unit_test(test_caps),
	    cmocka_unit_test(test_failure_classes),
	    cmocka_unit_test(test_out_of_memory),
	    cmocka_unit_test(test_conn_fact_lost),
	};

	log_set_level(LOG_ERR);
	return AG_RUN(tests);
}
