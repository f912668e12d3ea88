/*
 * test_spf.c - the SPF check through the message pipeline against a fake
 * DNS server: the void-lookup and DNS-term counters, the MX and PTR
 * limits, temperror on SERVFAIL and on a silent server within dns_timeout,
 * IPv4-mapped and loopback clients, CIDR /0, the explanation, and the
 * Received-SPF header against a sender address built to break out of its
 * comment.
 */
#include <stdio.h>
#include <time.h>

#include "testlib.h"
#include "util/buf.h"
#include "checks.h"
#include "config.h"
#include "msgctx.h"
#include "snapshot.h"
#include "spf.h"
#include "fakedns.h"

static struct fakedns *fk;
static struct snapshot *snap;
static const struct check *const table[] = {&spf_check, NULL};

static int
setup(void **state)
{
	struct buf err = BUF_INIT;
	char ov[64];
	const char *ovs[] = {ov, "dns_timeout=300ms", "authserv_id=mx.test",
	    "spf_default_explanation=DEFAULT %{d}", "spf_received_header=yes",
	    "internal_hosts=10.0.0.0/8"};
	struct config *cfg;
	char t[64];
	int i;
	static const char *const counted[] = {"pf1.example", "pf-never.example",
	    "pf2.example", "pf-inc.example", "pf-host.example",
	    "pf-host3.example", "helo-a.example", "helo-b.example"};

	(void)state;
	fk = fakedns_start();
	snprintf(ov, sizeof(ov), "dns_servers=127.0.0.1@%d", fakedns_port(fk));
	/* void lookups: three names that do not exist */
	fakedns_add(fk, "void.example", 16,
	    "v=spf1 a:n1.example a:n2.example a:n3.example ip4:192.0.2.1", 60);
	fakedns_add(fk, "void2.example", 16,
	    "v=spf1 a:n1.example a:n2.example ip4:192.0.2.1", 60);
	/* ten DNS terms are fine, eleven are not */
	fakedns_add(fk, "ten.example", 16,
	    "v=spf1 a a a a a a a a a a ip4:192.0.2.1", 60);
	fakedns_add(fk, "eleven.example", 16,
	    "v=spf1 a a a a a a a a a a a ip4:192.0.2.1", 60);
	fakedns_add(fk, "ten.example", 1, "203.0.113.9", 60);
	fakedns_add(fk, "eleven.example", 1, "203.0.113.9", 60);
	/* eleven MX names */
	fakedns_add(fk, "mx11.example", 16, "v=spf1 mx -all", 60);
	for (i = 0; i < 11; i++) {
		snprintf(t, sizeof(t), "%d h%d.mx11.example", i, i);
		fakedns_add(fk, "mx11.example", 15, t, 60);
	}
	fakedns_add(fk, "h10.mx11.example", 1, "192.0.2.1", 60);
	/* errors */
	fakedns_add(fk, "fail.example", 16, "v=spf1 -all", 60);
	fakedns_behave(fk, "fail.example", 2, 0, false);
	fakedns_add(fk, "silent.example", 16, "v=spf1 -all", 60);
	fakedns_behave(fk, "silent.example", -1, 0, true);
	fakedns_add(
	    fk, "inc.example", 16, "v=spf1 include:silent.example -all", 60);
	/* prefetch (TTL 0: nothing cached between lookups) */
	fakedns_add(fk, "pf1.example", 16,
	    "v=spf1 ip4:203.0.113.5 include:pf-never.example -all", 0);
	fakedns_add(fk, "pf-never.example", 16, "v=spf1 -all", 0);
	fakedns_add(fk, "pf2.example", 16,
	    "v=spf1 include:pf-inc.example a:pf-host.example -all", 0);
	fakedns_add(
	    fk, "pf-inc.example", 16, "v=spf1 ip4:198.51.100.1 -all", 0);
	fakedns_add(fk, "pf-host.example", 1, "192.0.2.99", 0);
	fakedns_add(fk, "pf3.example", 16,
	    "v=spf1 include:pf-silent.example a:pf-host3.example -all", 0);
	fakedns_add(fk, "pf-silent.example", 16, "v=spf1 -all", 0);
	fakedns_behave(fk, "pf-silent.example", -1, 0, true);
	fakedns_add(fk, "pf-host3.example", 1, "192.0.2.99", 0);
	for (i = 0; i < (int)(sizeof(counted) / sizeof(counted[0])); i++)
		fakedns_behave(fk, counted[i], -1, 0, false);
	/* HELO results kept per connection */
	fakedns_add(fk, "helo-a.example", 16, "v=spf1 ip4:203.0.113.5 -all", 0);
	fakedns_add(fk, "helo-b.example", 16, "v=spf1 -all", 0);
	/* /0, explanation, selection */
	fakedns_add(
	    fk, "zero.example", 16, "v=spf1 a:host.zero.example/0 -all", 60);
	fakedns_add(fk, "host.zero.example", 1, "203.0.113.200", 60);
	fakedns_add(
	    fk, "exp.example", 16, "v=spf1 -all exp=why.exp.example", 60);
	fakedns_add(fk, "why.exp.example", 16, "%{i} not for %{d}|, sorry", 60);
	fakedns_add(fk, "two.example", 16, "v=spf1 +all", 60);
	fakedns_add(fk, "two.example", 16, "v=spf1 -all", 60);
	fakedns_add(
	    fk, "plain.example", 16, "v=spf1 ip4:192.0.2.0/24 -all", 60);
	fakedns_add(fk, "lo.example", 16, "v=spf1 ip4:127.0.0.0/8 -all", 60);
	/* libspf2 silently drops terms past 511 compiled bytes (about 63
	 * ip4 or 25 ip6 terms): we split such records */
	{
		char rec[1400], *p = rec;
		int k;

		p += sprintf(p, "v=spf1");
		for (k = 0; k < 70; k++)
			p += sprintf(p, " ip4:198.51.%d.%d", k / 50, k % 50);
		sprintf(p, " -all exp=why.exp.example");
		fakedns_add(fk, "big4.example", 16, rec, 60);
		p = rec;
		p += sprintf(p, "v=spf1");
		for (k = 0; k < 30; k++)
			p += sprintf(p, " ip6:2001:db8:%x::/48", k);
		sprintf(p, " ~all");
		fakedns_add(fk, "big6.example", 16, rec, 60);
	}
	if ((cfg = config_load("/dev/null", ovs, 6, &err)) == NULL)
		fail_msg("%s", err.data);
	if ((snap = snapshot_build(cfg, NULL, table, &err)) == NULL)
		fail_msg("%s", err.data);
	buf_release(&err);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	snapshot_release(snap);
	fakedns_stop(fk);
	return 0;
}

/* run - one message from ip with MAIL FROM <from>; the outcome copied */
static struct spf_outcome
run(const char *ip, const char *from, long *ms)
{
	struct conn *c = conn_new(snap);
	struct msg *m;
	struct spf_outcome o;
	struct timespec t0, t1;
	static char reason[256], exp[256];

	conn_set_client(c, NULL, ip, NULL);
	conn_set_helo(c, "helo.invalid");
	conn_connected(c);
	m = msg_new(c);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	msg_mail(m, from);
	msg_header(m, "From", " x@example");
	msg_eom(m);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	if (ms)
		*ms = (t1.tv_sec - t0.tv_sec) * 1000 +
		    (t1.tv_nsec - t0.tv_nsec) / 1000000;
	o = m->spf_mailfrom;
	snprintf(reason, sizeof(reason), "%s", o.reason ? o.reason : "");
	snprintf(exp, sizeof(exp), "%s", o.explanation ? o.explanation : "");
	o.reason = reason;
	o.explanation = exp;
	conn_free(c);
	return o;
}

static void
test_results(void **state)
{
	static const struct {
		const char *name, *ip, *from;
		enum ag_spf_result want;
		const char *want_reason;
	} rows[] = {
	    {"pass", "192.0.2.7", "<a@plain.example>", AG_SPF_PASS, ""},
	    {"fail", "198.51.100.7", "<a@plain.example>", AG_SPF_FAIL, ""},
	    {"ipv4-mapped client is IPv4", "::ffff:192.0.2.7",
		"<a@plain.example>", AG_SPF_PASS, ""},
	    /* libspf2 alone would pass any domain for a loopback client */
	    {"loopback client, not internal", "127.0.0.1", "<a@plain.example>",
		AG_SPF_FAIL, ""},
	    {"IPv6 loopback client", "::1", "<a@plain.example>", AG_SPF_FAIL,
		""},
	    {"loopback client in the record", "127.0.0.2", "<a@lo.example>",
		AG_SPF_PASS, ""},
	    {"no record", "192.0.2.7", "<a@nothing.example>", AG_SPF_NONE, ""},
	    {"two records", "192.0.2.7", "<a@two.example>", AG_SPF_PERMERROR,
		"more than one SPF record"},
	    {"two void lookups are fine", "192.0.2.1", "<a@void2.example>",
		AG_SPF_PASS, ""},
	    {"three void lookups", "192.0.2.1", "<a@void.example>",
		AG_SPF_PERMERROR, "more than 2 void DNS lookups"},
	    {"ten DNS terms are fine", "192.0.2.1", "<a@ten.example>",
		AG_SPF_PASS, ""},
	    {"eleven DNS terms", "192.0.2.1", "<a@eleven.example>",
		AG_SPF_PERMERROR, "more than 10 DNS-querying terms"},
	    {"eleven MX names", "192.0.2.1", "<a@mx11.example>",
		AG_SPF_PERMERROR, "more than 10 MX records"},
	    {"SERVFAIL", "192.0.2.7", "<a@fail.example>", AG_SPF_TEMPERROR,
		"DNS servfail"},
	    {"a/0 with an A record", "198.51.100.99", "<a@zero.example>",
		AG_SPF_PASS, ""},
	    {"a/0 for IPv6 looks for AAAA", "2001:db8::99", "<a@zero.example>",
		AG_SPF_FAIL, ""},
	    {"not a domain", "192.0.2.7", "<a@localhost>", AG_SPF_NONE,
		"not a valid domain name"},
	    {"70 ip4 terms: the first", "198.51.0.0", "<a@big4.example>",
		AG_SPF_PASS, ""},
	    {"70 ip4 terms: the last", "198.51.1.19", "<a@big4.example>",
		AG_SPF_PASS, ""},
	    {"70 ip4 terms: none", "198.51.1.20", "<a@big4.example>",
		AG_SPF_FAIL, ""},
	    {"30 ip6 terms: the last", "2001:db8:1d::1", "<a@big6.example>",
		AG_SPF_PASS, ""},
	    {"30 ip6 terms: none", "2001:db8:1e::1", "<a@big6.example>",
		AG_SPF_SOFTFAIL, ""},
	    /* libspf2 passes any loopback client without a lookup; RFC
	     * 7208 knows no such exception (fuzz input spf-1) */
	    {"loopback IPv4 client: the record decides", "127.0.0.1",
		"<a@plain.example>", AG_SPF_FAIL, ""},
	    {"loopback IPv6 client: the record decides", "::1",
		"<a@plain.example>", AG_SPF_FAIL, ""},
	    {"loopback client without a record", "127.0.0.2",
		"<a@nothing.example>", AG_SPF_NONE, ""},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct spf_outcome o = run(rows[i].ip, rows[i].from, NULL);

		want_str(rows[i].name, msg_spf_result_name(o.result),
		    msg_spf_result_name(rows[i].want));
		if (strstr(o.reason, rows[i].want_reason) == NULL)
			fail_msg("%s: reason '%s', want '%s'", rows[i].name,
			    o.reason, rows[i].want_reason);
	}
}

static void
test_timeout(void **state)
{
	struct spf_outcome o;
	long ms;

	(void)state;
	/* the included record never answers: temperror within 300 ms, not
	 * libunbound's ~17 s of retries */
	o = run("192.0.2.7", "<a@inc.example>", &ms);
	want_str("silent include", msg_spf_result_name(o.result), "temperror");
	assert_non_null(strstr(o.reason, "DNS timeout for silent.example"));
	if (ms > 3000)
		fail_msg("took %ld ms", ms);
}

/*
 * Before evaluating, the record's lookups are started together (up to the
 * first term that surely matches), each name is asked once per message
 * even with TTL 0, and nothing past a matching term is asked.
 */
static void
test_prefetch(void **state)
{
	struct spf_outcome o;

	(void)state;
	o = run("203.0.113.5", "<a@pf1.example>", NULL);
	want_str("pf1", msg_spf_result_name(o.result), "pass");
	assert_int_equal(fakedns_count(fk, "pf1.example"), 1);
	assert_int_equal(fakedns_count(fk, "pf-never.example"), 0);

	o = run("203.0.113.5", "<a@pf2.example>", NULL);
	want_str("pf2", msg_spf_result_name(o.result), "fail");
	assert_int_equal(fakedns_count(fk, "pf2.example"), 1);
	assert_int_equal(fakedns_count(fk, "pf-inc.example"), 1);
	assert_int_equal(fakedns_count(fk, "pf-host.example"), 1);

	/* the include never answers, so the evaluation stops there; the a:
	 * term's name was asked at the same time, not after it */
	o = run("203.0.113.5", "<a@pf3.example>", NULL);
	want_str("pf3", msg_spf_result_name(o.result), "temperror");
	assert_int_equal(fakedns_count(fk, "pf-host3.example"), 1);
}

/* one message of connection c from <a@pf1.example>: its HELO result */
static enum ag_spf_result
helo_of(struct conn *c)
{
	struct msg *m = msg_new(c);
	enum ag_spf_result r;

	msg_mail(m, "<a@pf1.example>");
	msg_header(m, "From", " x@pf1.example");
	msg_eom(m);
	r = m->spf_helo.checked ? m->spf_helo.result : (enum ag_spf_result) - 1;
	msg_free(m);
	return r;
}

/* The HELO identity is checked once per connection and HELO name. */
static void
test_helo_per_connection(void **state)
{
	struct conn *c = conn_new(snap);
	unsigned na, nb;

	(void)state;
	conn_set_client(c, NULL, "203.0.113.5", NULL);
	conn_set_helo(c, "helo-a.example");
	conn_connected(c);
	na = fakedns_count(fk, "helo-a.example");
	nb = fakedns_count(fk, "helo-b.example");
	assert_int_equal(helo_of(c), AG_SPF_PASS);
	assert_int_equal(helo_of(c), AG_SPF_PASS);
	assert_int_equal(helo_of(c), AG_SPF_PASS);
	assert_int_equal(fakedns_count(fk, "helo-a.example"), na + 1);
	conn_set_helo(c, "helo-b.example"); /* a new EHLO */
	assert_int_equal(helo_of(c), AG_SPF_FAIL);
	assert_int_equal(helo_of(c), AG_SPF_FAIL);
	assert_int_equal(fakedns_count(fk, "helo-b.example"), nb + 1);
	conn_set_helo(c, "helo-a.example"); /* and back: asked again */
	assert_int_equal(helo_of(c), AG_SPF_PASS);
	assert_int_equal(fakedns_count(fk, "helo-a.example"), na + 2);
	conn_free(c);
}

static void
test_explanation(void **state)
{
	struct spf_outcome o;

	(void)state;
	o = run("198.51.100.7", "<a@exp.example>", NULL);
	want_str("exp= text", o.explanation,
	    "198.51.100.7 not for exp.example, sorry");
	o = run("198.51.100.7", "<a@plain.example>", NULL);
	want_str("default", o.explanation, "DEFAULT plain.example");
	o = run("192.0.2.7", "<a@plain.example>", NULL);
	want_str("no explanation for pass", o.explanation, "");
	/* a fail decided in the last chunk of a split record: the record's
	 * own exp=, with %{d} its own domain */
	o = run("203.0.113.1", "<a@big4.example>", NULL);
	want_str("split record exp", o.explanation,
	    "203.0.113.1 not for big4.example, sorry");
}

/* Received-SPF: what the sender wrote stays inside the comment */
static void
test_received_header(void **state)
{
	static const char *const senders[] = {
	    "<\"x) client-ip=6.6.6.6; identity=helo; (y\"@plain.example>",
	    "<\"a(b\"@plain.example>",
	    "<\"a\\\\)\"@plain.example>",
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(senders) / sizeof(senders[0]); i++) {
		struct conn *c = conn_new(snap);
		const struct add_hdr *h;
		const char *v = NULL, *p;
		int depth = 0, keys = 0;

		conn_set_client(c, NULL, "192.0.2.7", NULL);
		conn_set_helo(c, "helo.invalid");
		conn_connected(c);
		msg_mail(msg_new(c), senders[i]);
		msg_eom(c->msg);
		for (h = c->msg->add_hdrs; h != NULL; h = h->next)
			if (strcmp(h->name, "Received-SPF") == 0)
				v = h->value;
		if (v == NULL)
			fail_msg("%s: no Received-SPF", senders[i]);
		/* RFC 5322: a quoted-pair never opens or closes a comment,
		 * and a quoted-string outside one is skipped whole */
		for (p = v; *p; p++) {
			if (*p == '\\' && depth > 0 && p[1] != '\0')
				p++;
			else if (*p == '"' && depth == 0) {
				for (p++; *p && *p != '"'; p++)
					if (*p == '\\' && p[1] != '\0')
						p++;
				if (*p == '\0')
					fail_msg("%s: open quote: %s",
					    senders[i], v);
			} else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth < 0)
				fail_msg("%s: ')' outside a comment: %s",
				    senders[i], v);
			else if (depth == 0 &&
			    strncmp(p, "client-ip=", 10) == 0)
				keys++;
		}
		if (depth != 0 || keys != 1)
			fail_msg("%s: comment depth %d, client-ip %d times: %s",
			    senders[i], depth, keys, v);
		assert_non_null(strstr(v, "client-ip=192.0.2.7;"));
		conn_free(c);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_results),
	    cmocka_unit_test(test_timeout),
	    cmocka_unit_test(test_prefetch),
	    cmocka_unit_test(test_helo_per_connection),
	    cmocka_unit_test(test_explanation),
	    cmocka_unit_test(test_received_header),
	};

	log_set_level(LOG_ERR);
	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
