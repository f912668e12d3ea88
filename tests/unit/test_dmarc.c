/*
 * test_dmarc.c - DMARC evaluation and enforcement through the pipeline
 * against a fake DNS server (RFC 9989): the tree walk (query names and
 * their cap, PSD, psd=n, several records), the record that applies
 * (p, sp, np with the existence test, t=y), alignment (relaxed, strict,
 * SPF for the null sender), DNS errors, broken records, several or bad
 * From: domains, IDN, and what policy.c does with the results. The SPF and
 * DKIM results are set by a stand-in check, as the real ones would.
 */
#include <stdio.h>

#include "testlib.h"
#include "util/arena.h"
#include "util/buf.h"
#include "checks.h"
#include "config.h"
#include "dmarc.h"
#include "dmarc_record.h"
#include "msgctx.h"
#include "snapshot.h"
#include "fakedns.h"

#define TXT 16
#define A   1
#define MX  15

static struct fakedns *fk;
static char dnsov[64];

/* the authentication results the stand-in check reports */
static const char *spf_pass; /* SPF-authenticated domain, or NULL */
static const char *dkim_pass[4];
static const char *dkim_fail[4];

/* fake_eom - SPF and DKIM results, before dmarc runs */
static int
fake_eom(struct msg *m)
{
	size_t i, n = 0;

	if (spf_pass != NULL) {
		m->spf_mailfrom.checked = true;
		m->spf_mailfrom.result = AG_SPF_PASS;
		m->spf_mailfrom.domain = spf_pass;
	}
	m->dkim = arena_allocarray(m->arena, 8, sizeof(*m->dkim));
	for (i = 0; i < 4 && dkim_pass[i] != NULL; i++) {
		memset(&m->dkim[n], 0, sizeof(m->dkim[n]));
		m->dkim[n].result = AG_DKIM_PASS;
		m->dkim[n++].domain = dkim_pass[i];
	}
	for (i = 0; i < 4 && dkim_fail[i] != NULL; i++) {
		memset(&m->dkim[n], 0, sizeof(m->dkim[n]));
		m->dkim[n].result = AG_DKIM_FAIL;
		m->dkim[n++].domain = dkim_fail[i];
	}
	m->ndkim = n;
	return 0;
}

static const struct check fake_auth = {.name = "fake", .on_eom = fake_eom};
static const struct check *const table[] = {&fake_auth, &dmarc_check, NULL};

/* snap_with - the checks above with config overrides */
static struct snapshot *
snap_with(const char *const *ov, size_t nov)
{
	struct buf err = BUF_INIT;
	const char *all[16];
	struct config *cfg;
	struct snapshot *s;
	size_t i, n = 0;

	all[n++] = dnsov;
	all[n++] = "dns_timeout=300ms";
	all[n++] = "authserv_id=mx.test";
	for (i = 0; i < nov; i++)
		all[n++] = ov[i];
	if ((cfg = config_load("/dev/null", all, n, &err)) == NULL ||
	    (s = snapshot_build(cfg, NULL, table, &err)) == NULL)
		fail_msg("%s", err.data);
	buf_release(&err);
	return s;
}

struct out {
	int nres;
	int result[4];
	char domain[4][128], policy[4][16], org[4][128], reason[4][160];
	char ar[2048];
	int action;
	char reply[256];
	unsigned errors;
	bool from_bad;
};

/*
 * run - a message with these From: headers (NULL-terminated values) and
 * extra headers ("Name: value" strings), the auth results set above
 */
static void
run(struct snapshot *s, const char *const *from, const char *const *extra,
    struct out *o)
{
	struct conn *c = conn_new(s);
	const struct hdr_edit *e;
	struct msg *m;
	size_t i;

	memset(o, 0, sizeof(*o));
	conn_set_client(c, NULL, "203.0.113.9", NULL);
	conn_set_helo(c, "mail.sender.example");
	conn_connected(c);
	m = msg_new(c);
	msg_mail(m, "<x@sender.example>");
	msg_rcpt(m, "<y@rcpt.example>");
	for (i = 0; from != NULL && from[i] != NULL; i++)
		msg_header(m, "From", from[i]);
	for (i = 0; extra != NULL && extra[i] != NULL; i++) {
		char name[64];
		const char *colon = strchr(extra[i], ':');

		snprintf(name, sizeof(name), "%.*s", (int)(colon - extra[i]),
		    extra[i]);
		msg_header(m, name, colon + 1);
	}
	msg_header(m, "Subject", " test");
	msg_eoh(m);
	msg_eom(m);
	o->nres = (int)m->ndmarc;
	for (i = 0; i < m->ndmarc && i < 4; i++) {
		const struct dmarc_outcome *d = &m->dmarc[i];

		o->result[i] = d->result;
		snprintf(o->domain[i], sizeof(o->domain[i]), "%s",
		    d->from_domain ? d->from_domain : "");
		snprintf(o->policy[i], sizeof(o->policy[i]), "%s",
		    d->record &&
			    (d->result == AG_DMARC_PASS ||
				d->result == AG_DMARC_FAIL)
			? (d->policy == AG_DMARC_P_REJECT ? "reject"
				  : d->policy == AG_DMARC_P_QUARANTINE
				  ? "quarantine"
				  : "none")
			: "");
		snprintf(o->org[i], sizeof(o->org[i]), "%s",
		    d->org_domain ? d->org_domain : "");
		snprintf(o->reason[i], sizeof(o->reason[i]), "%s",
		    d->reason ? d->reason : "");
	}
	for (e = m->verdict.edits; e != NULL; e = e->next)
		if (e->op == AG_EDIT_INSERT &&
		    strcmp(e->name, "Authentication-Results") == 0) {
			const char *v;
			size_t n = 0;

			for (v = e->value; *v && n + 1 < sizeof(o->ar); v++)
				if (*v != '\n')
					o->ar[n++] = *v == '\t' ? ' ' : *v;
			o->ar[n] = '\0';
		}
	o->action = (int)m->verdict.action;
	snprintf(o->reply, sizeof(o->reply), "%s %s %s",
	    m->verdict.rcode ? m->verdict.rcode : "",
	    m->verdict.xcode ? m->verdict.xcode : "",
	    m->verdict.text		? m->verdict.text
		: m->verdict.quarantine ? m->verdict.quarantine
					: "");
	o->errors = m->errors;
	o->from_bad = m->dmarc_from_bad;
	conn_free(c);
}

/* auth - set the stand-in results */
static void
auth(const char *spf, const char *dkim)
{
	spf_pass = spf;
	memset(dkim_pass, 0, sizeof(dkim_pass));
	memset(dkim_fail, 0, sizeof(dkim_fail));
	dkim_pass[0] = dkim;
}

#define FROM(x) ((const char *const[]){(x), NULL})

static int
setup(void **state)
{
	(void)state;
	fk = fakedns_start();
	snprintf(
	    dnsov, sizeof(dnsov), "dns_servers=127.0.0.1@%d", fakedns_port(fk));
	/* the ordinary case: a record at the Organizational Domain */
	fakedns_add(fk, "_dmarc.example.com", TXT,
	    "v=DMARC1; p=reject; sp=quarantine; np=reject", 60);
	fakedns_add(fk, "example.com", A, "192.0.2.1", 60);
	fakedns_add(fk, "www.example.com", A, "192.0.2.2", 60);
	fakedns_add(fk, "mx-only.example.com", MX, "10 mx.example.com", 60);
	fakedns_add(fk, "_dmarc.strict.example", TXT,
	    "v=DMARC1; p=reject; adkim=s; aspf=s", 60);
	fakedns_add(fk, "strict.example", A, "192.0.2.3", 60);
	/* several records at one name are all discarded (4.10 step 2) */
	fakedns_add(fk, "_dmarc.two.example.com", TXT, "v=DMARC1; p=none", 60);
	fakedns_add(
	    fk, "_dmarc.two.example.com", TXT, "v=DMARC1; p=reject", 60);
	fakedns_add(fk, "two.example.com", A, "192.0.2.4", 60);
	/* other TXT records at the name do not count */
	fakedns_add(fk, "_dmarc.other.example.com", TXT, "hello world", 60);
	fakedns_add(fk, "other.example.com", A, "192.0.2.5", 60);
	/* t=y */
	fakedns_add(
	    fk, "_dmarc.test-r.example", TXT, "v=DMARC1; p=reject; t=y", 60);
	fakedns_add(fk, "_dmarc.test-q.example", TXT,
	    "v=DMARC1; p=quarantine; t=y", 60);
	/* a PSD with psd=y, an org below it with its own record */
	fakedns_add(fk, "_dmarc.bank", TXT,
	    "v=DMARC1; p=reject; np=quarantine; psd=y", 60);
	fakedns_add(fk, "_dmarc.giant.bank", TXT, "v=DMARC1; p=none", 60);
	fakedns_add(fk, "giant.bank", A, "192.0.2.6", 60);
	fakedns_add(fk, "mail.giant.bank", A, "192.0.2.7", 60);
	fakedns_add(fk, "mega.bank", A, "192.0.2.8", 60);
	fakedns_add(fk, "mail.mega.bank", A, "192.0.2.9", 60);
	/* psd=n stops the walk: b.corp.example is its own org */
	fakedns_add(
	    fk, "_dmarc.b.corp.example", TXT, "v=DMARC1; p=reject; psd=n", 60);
	fakedns_add(fk, "_dmarc.corp.example", TXT, "v=DMARC1; p=none", 60);
	fakedns_add(fk, "a.b.corp.example", A, "192.0.2.10", 60);
	/* broken records */
	fakedns_add(
	    fk, "_dmarc.dup.example", TXT, "v=DMARC1; p=reject; p=none", 60);
	fakedns_add(fk, "_dmarc.nop-rua.example", TXT,
	    "v=DMARC1; rua=mailto:r@nop-rua.example", 60);
	fakedns_add(fk, "_dmarc.nop.example", TXT, "v=DMARC1; adkim=s", 60);
	/* DNS errors */
	fakedns_add(fk, "_dmarc.broken.example", TXT, "v=DMARC1; p=reject", 60);
	fakedns_behave(fk, "_dmarc.broken.example", 2, 0, false);
	fakedns_add(
	    fk, "_dmarc.flaky.example.com", TXT, "v=DMARC1; p=none", 60);
	fakedns_behave(fk, "_dmarc.flaky.example.com", 2, 0, false);
	fakedns_add(fk, "_dmarc.sp.example", TXT,
	    "v=DMARC1; p=reject; sp=quarantine", 60);
	fakedns_behave(fk, "noexist-test.sp.example", 2, 0, false);
	/* IDN: bücher.example */
	fakedns_add(
	    fk, "_dmarc.xn--bcher-kva.example", TXT, "v=DMARC1; p=reject", 60);
	/* long names: the record at the org, 13 labels below */
	fakedns_add(
	    fk, "_dmarc.deep.example", TXT, "v=DMARC1; p=quarantine", 60);
	return 0;
}

static int
teardown(void **state)
{
	(void)state;
	fakedns_stop(fk);
	return 0;
}

/* Results and the record that applies. */
static void
test_results(void **state)
{
	static const struct {
		const char *name, *from, *spf, *dkim;
		int result;
		const char *policy, *org;
	} rows[] = {
	    {"aligned SPF, own record", " a@example.com", "example.com", NULL,
		AG_DMARC_PASS, "reject", "example.com"},
	    {"aligned DKIM, relaxed, subdomain author", " a@www.example.com",
		NULL, "example.com", AG_DMARC_PASS, "quarantine",
		"example.com"},
	    {"relaxed: DKIM of a sibling subdomain", " a@www.example.com", NULL,
		"mail.example.com", AG_DMARC_PASS, "quarantine", "example.com"},
	    {"nothing aligned", " a@example.com", "sender.example",
		"other.test", AG_DMARC_FAIL, "reject", "example.com"},
	    {"no authentication at all", " a@example.com", NULL, NULL,
		AG_DMARC_FAIL, "reject", "example.com"},
	    {"existing subdomain: sp", " a@www.example.com", NULL, NULL,
		AG_DMARC_FAIL, "quarantine", "example.com"},
	    {"MX-only subdomain exists (A.4): sp", " a@mx-only.example.com",
		NULL, NULL, AG_DMARC_FAIL, "quarantine", "example.com"},
	    {"non-existent subdomain: np", " a@nx.example.com", NULL, NULL,
		AG_DMARC_FAIL, "reject", "example.com"},
	    {"strict DKIM: subdomain does not align", " a@strict.example", NULL,
		"mail.strict.example", AG_DMARC_FAIL, "reject",
		"strict.example"},
	    {"strict: exact match aligns", " a@strict.example",
		"strict.example", NULL, AG_DMARC_PASS, "reject",
		"strict.example"},
	    {"case-blind", " a@EXAMPLE.COM", "Example.Com", NULL, AG_DMARC_PASS,
		"reject", "example.com"},
	    {"no record anywhere", " a@nowhere.example", NULL, NULL,
		AG_DMARC_NONE, "", "nowhere.example"},
	    {"two records: discarded, the org's applies", " a@two.example.com",
		NULL, NULL, AG_DMARC_FAIL, "quarantine", "example.com"},
	    {"non-DMARC TXT ignored", " a@other.example.com", NULL, NULL,
		AG_DMARC_FAIL, "quarantine", "example.com"},
	    {"t=y: reject becomes quarantine", " a@test-r.example", NULL, NULL,
		AG_DMARC_FAIL, "quarantine", "test-r.example"},
	    {"t=y: quarantine becomes none", " a@test-q.example", NULL, NULL,
		AG_DMARC_FAIL, "none", "test-q.example"},
	    {"PSD: org below it, own record", " a@giant.bank",
		"mail.giant.bank", NULL, AG_DMARC_PASS, "none", "giant.bank"},
	    {"PSD: another org does not align", " a@giant.bank", NULL,
		"mail.mega.bank", AG_DMARC_FAIL, "none", "giant.bank"},
	    {"PSD: org without a record gets the PSD's policy (sp=p)",
		" a@mega.bank", NULL, NULL, AG_DMARC_FAIL, "reject",
		"mega.bank"},
	    {"PSD: non-existent org domain gets np", " a@nx.bank", NULL, NULL,
		AG_DMARC_FAIL, "quarantine", "nx.bank"},
	    {"psd=n: its own org, the walk stops", " a@a.b.corp.example",
		"corp.example", NULL, AG_DMARC_FAIL, "reject",
		"b.corp.example"},
	    {"duplicate tag: permerror", " a@dup.example", NULL, NULL,
		AG_DMARC_PERMERROR, "", "dup.example"},
	    {"no p, valid rua: p=none", " a@nop-rua.example", NULL, NULL,
		AG_DMARC_FAIL, "none", "nop-rua.example"},
	    {"no p, no rua: no DMARC", " a@nop.example", NULL, NULL,
		AG_DMARC_NONE, "", "nop.example"},
	    {"IDN author domain",
		" a@b\xc3\xbc"
		"cher.example",
		NULL, "xn--bcher-kva.example", AG_DMARC_PASS, "reject",
		"xn--bcher-kva.example"},
	    {"13 labels", " a@a.b.c.d.e.f.g.h.i.j.k.deep.example", NULL,
		"deep.example", AG_DMARC_PASS, "quarantine", "deep.example"},
	};
	struct snapshot *s = snap_with(NULL, 0);
	struct out o;
	char row[400];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		auth(rows[i].spf, rows[i].dkim);
		run(s, FROM(rows[i].from), NULL, &o);
		want_int(rows[i].name, o.nres, 1);
		snprintf(row, sizeof(row), "%s: result (%s)", rows[i].name,
		    o.reason[0]);
		want_str(row, dmarc_result_name(o.result[0]),
		    dmarc_result_name(rows[i].result));
		snprintf(row, sizeof(row), "%s: policy", rows[i].name);
		want_str(row, o.policy[0], rows[i].policy);
		snprintf(row, sizeof(row), "%s: org", rows[i].name);
		want_str(row, o.org[0], rows[i].org);
	}
	auth(NULL, NULL);
	snapshot_release(s);
}

/* The walk asks at most 8 names, skipping to 7 labels (4.10, B.4.2). */
static void
test_walk_queries(void **state)
{
	static const char *asked[] = {
	    "_dmarc.a.b.c.d.e.f.g.h.i.j.k.walk.example",
	    "_dmarc.g.h.i.j.k.walk.example", "_dmarc.h.i.j.k.walk.example",
	    "_dmarc.i.j.k.walk.example", "_dmarc.j.k.walk.example",
	    "_dmarc.k.walk.example", "_dmarc.walk.example", "_dmarc.example"};
	static const char *skipped[] = {
	    "_dmarc.b.c.d.e.f.g.h.i.j.k.walk.example",
	    "_dmarc.c.d.e.f.g.h.i.j.k.walk.example",
	    "_dmarc.f.g.h.i.j.k.walk.example"};
	struct snapshot *s = snap_with(NULL, 0);
	struct out o;
	size_t i;

	(void)state;
	/* behaviours make the fake server count the queries */
	for (i = 0; i < 8; i++)
		fakedns_behave(fk, asked[i], -1, 0, false);
	for (i = 0; i < 3; i++)
		fakedns_behave(fk, skipped[i], -1, 0, false);
	auth(NULL, NULL);
	run(s, FROM(" x@a.b.c.d.e.f.g.h.i.j.k.walk.example"), NULL, &o);
	for (i = 0; i < 8; i++)
		if (fakedns_count(fk, asked[i]) != 1)
			fail_msg("%s asked %u times", asked[i],
			    fakedns_count(fk, asked[i]));
	for (i = 0; i < 3; i++)
		if (fakedns_count(fk, skipped[i]) != 0)
			fail_msg("%s asked", skipped[i]);
	want_str("no record", dmarc_result_name(o.result[0]), "none");
	snapshot_release(s);
}

/* DNS errors: temperror and the DNS failure class; never a pass or fail */
static void
test_dns_errors(void **state)
{
	struct snapshot *s = snap_with(NULL, 0);
	struct out o;

	(void)state;
	auth(NULL, NULL);
	run(s, FROM(" a@broken.example"), NULL, &o);
	want_str("SERVFAIL at the author", dmarc_result_name(o.result[0]),
	    "temperror");
	assert_true(o.errors & AG_ERR_DNS);
	/* below it: the walk cannot know the record that applies */
	run(s, FROM(" a@sub.broken.example"), NULL, &o);
	want_str(
	    "SERVFAIL at the org", dmarc_result_name(o.result[0]), "temperror");
	/* relaxed alignment needs the identifier's org: its walk fails */
	auth(NULL, "x.flaky.example.com");
	run(s, FROM(" a@example.com"), NULL, &o);
	want_str("identifier walk fails", dmarc_result_name(o.result[0]),
	    "temperror");
	/* but an identifier outside the author's Organizational Domain can
	 * never align: its walk failing changes nothing (no p=reject bypass
	 * by a sender whose own DNS fails) */
	auth("x.broken.example", NULL);
	run(s, FROM(" a@example.com"), NULL, &o);
	want_str("unrelated identifier walk fails",
	    dmarc_result_name(o.result[0]), "fail");
	want_int(
	    "unrelated identifier walk fails: reject", o.action, AG_ACT_REJECT);
	/* without np, the existence test does not matter (4.7) */
	auth(NULL, NULL);
	run(s, FROM(" a@noexist-test.sp.example"), NULL, &o);
	want_str("existence test fails, no np", dmarc_result_name(o.result[0]),
	    "fail");
	want_str("existence test fails, no np: sp", o.policy[0], "quarantine");
	auth(NULL, NULL);
	snapshot_release(s);
}

/* Several From: domains, bad From: headers (5.3.1, 11.5). */
static void
test_from(void **state)
{
	struct snapshot *s = snap_with(NULL, 0);
	const char *rj[] = {"dmarc_multi_from=reject"};
	struct snapshot *sr = snap_with(rj, 1);
	struct out o;

	(void)state;
	auth("example.com", NULL);
	run(s, FROM(" a@example.com, b@test-r.example"), NULL, &o);
	want_int("two domains", o.nres, 2);
	want_str("two domains: 1st", dmarc_result_name(o.result[0]), "pass");
	want_str("two domains: 2nd", dmarc_result_name(o.result[1]), "fail");
	assert_true(o.from_bad);
	/* the strictest applies: test-r's quarantine */
	want_int("two domains: quarantine", o.action, AG_ACT_QUARANTINE);
	run(s,
	    ((const char *const[]){" a@example.com", " a@example.com", NULL}),
	    NULL, &o);
	want_int("two From: headers, one domain", o.nres, 1);
	assert_true(o.from_bad);
	run(sr,
	    ((const char *const[]){" a@example.com", " a@example.com", NULL}),
	    NULL, &o);
	want_int("two From: headers, reject mode", o.action, AG_ACT_REJECT);
	want_str("reject mode text", o.reply,
	    "550 5.7.1 a message needs exactly one From: address with a domain "
	    "(RFC 5322 3.6.2)");
	/* more From: domains than evaluated: one behind the decoys could be
	 * a spoofed p=reject domain, so the message is held (11.5) */
	run(s, FROM(" a@d1.example, a@d2.example, a@d3.example, a@d4.example, "
		    "a@d5.example, a@d6.example, a@d7.example, a@d8.example, "
		    "ceo@example.com"),
	    NULL, &o);
	want_int("nine From: domains: eight evaluated", o.nres, 8);
	want_int("nine From: domains: held", o.action, AG_ACT_QUARANTINE);
	run(s, FROM(" Alice (comment) <a@example.com>"), NULL, &o);
	want_str(
	    "comment and display name", dmarc_result_name(o.result[0]), "pass");
	run(s, FROM(" =?utf-8?q?Al=C3=AFce?= <a@example.com>"), NULL, &o);
	want_str("encoded word", dmarc_result_name(o.result[0]), "pass");
	run(s, FROM(" \"a@evil.example\" <a@example.com>"), NULL, &o);
	want_str("quoted address lookalike", o.domain[0], "example.com");
	run(s, FROM(" undisclosed:;"), NULL, &o);
	want_int("empty group: no result", o.nres, 0);
	if (strstr(o.ar, "dmarc=permerror") == NULL)
		fail_msg("empty group: A-R %s", o.ar);
	run(s, FROM(" not an address"), NULL, &o);
	if (strstr(o.ar, "dmarc=permerror") == NULL)
		fail_msg("garbage From: A-R %s", o.ar);
	run(s, NULL, NULL, &o);
	if (strstr(o.ar, "dmarc=permerror reason=\"no From: header\"") == NULL)
		fail_msg("no From: A-R %s", o.ar);
	run(s, FROM(" a@[192.0.2.1]"), NULL, &o);
	if (strstr(o.ar, "dmarc=permerror") == NULL)
		fail_msg("domain literal: A-R %s", o.ar);
	auth(NULL, NULL);
	snapshot_release(s);
	snapshot_release(sr);
}

/* policy.c: reject (with the RFC 9989 7.4 analysis), quarantine, the
 * switches, the A-R. */
static void
test_enforcement(void **state)
{
	const char *ov_always[] = {"dmarc_reject_mode=always"};
	const char *ov_never[] = {"dmarc_reject_mode=never"};
	const char *ov_off[] = {"dmarc_enforce=no"};
	const char *ov_ignore[] = {
	    "dmarc_ignore_domains=lists.test, example.com"};
	struct snapshot *s = snap_with(NULL, 0);
	struct snapshot *sa = snap_with(ov_always, 1);
	struct snapshot *sn = snap_with(ov_never, 1);
	struct snapshot *so = snap_with(ov_off, 1);
	struct snapshot *si = snap_with(ov_ignore, 1);
	const char *const list[] = {"List-Id: <x.lists.test>", NULL};
	struct out o;

	(void)state;
	auth(NULL, NULL);
	run(s, FROM(" a@example.com"), NULL, &o);
	want_int("p=reject: reject", o.action, AG_ACT_REJECT);
	want_str("reject reply", o.reply,
	    "550 5.7.1 Email rejected per DMARC policy for example.com");
	run(s, FROM(" a@example.com"), list, &o);
	want_int(
	    "p=reject, mailing list: quarantine", o.action, AG_ACT_QUARANTINE);
	want_str("quarantine reason", o.reply, "  DMARC policy of example.com");
	if (strstr(o.ar,
		"dmarc=fail (p=reject dis=quarantine) "
		"header.from=example.com policy.dmarc=reject") == NULL)
		fail_msg("A-R %s", o.ar);
	dkim_fail[0] = "example.com";
	run(s, FROM(" a@example.com"), NULL, &o);
	want_int("author signature broken in transit: quarantine", o.action,
	    AG_ACT_QUARANTINE);
	dkim_fail[0] = NULL;
	auth(NULL, "third-party.example");
	run(s, FROM(" a@example.com"), NULL, &o);
	want_int("valid third-party signature: quarantine", o.action,
	    AG_ACT_QUARANTINE);
	auth(NULL, NULL);
	run(sa, FROM(" a@example.com"), list, &o);
	want_int("always: reject", o.action, AG_ACT_REJECT);
	run(sn, FROM(" a@example.com"), NULL, &o);
	want_int("never: quarantine", o.action, AG_ACT_QUARANTINE);
	run(so, FROM(" a@example.com"), NULL, &o);
	want_int("enforce=no: accept", o.action, AG_ACT_ACCEPT);
	if (strstr(o.ar, "dmarc=fail (p=reject dis=none)") == NULL)
		fail_msg("A-R %s", o.ar);
	run(si, FROM(" a@www.example.com"), NULL, &o);
	want_int(
	    "ignored domain (parent listed): accept", o.action, AG_ACT_ACCEPT);
	run(s, FROM(" a@www.example.com"), NULL, &o);
	want_int("sp=quarantine: quarantine", o.action, AG_ACT_QUARANTINE);
	run(s, FROM(" a@test-q.example"), NULL, &o);
	want_int("t=y quarantine: accept", o.action, AG_ACT_ACCEPT);
	if (strstr(o.ar, "(p=quarantine t=y dis=none)") == NULL ||
	    strstr(o.ar, "policy.dmarc=none") == NULL)
		fail_msg("t=y A-R %s", o.ar);
	auth("example.com", NULL);
	run(s, FROM(" a@example.com"), NULL, &o);
	want_int("pass: accept", o.action, AG_ACT_ACCEPT);
	if (strstr(o.ar,
		"dmarc=pass (p=reject dis=none) "
		"header.from=example.com policy.dmarc=reject") == NULL)
		fail_msg("A-R %s", o.ar);
	auth(NULL, NULL);
	snapshot_release(s);
	snapshot_release(sa);
	snapshot_release(sn);
	snapshot_release(so);
	snapshot_release(si);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_results),
	    cmocka_unit_test(test_walk_queries),
	    cmocka_unit_test(test_dns_errors),
	    cmocka_unit_test(test_from),
	    cmocka_unit_test(test_enforcement),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
