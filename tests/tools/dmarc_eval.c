/*
 * dmarc_eval - authgate's DMARC evaluation, alone, for the DMARC tests.
 *
 *	dmarc_eval -o dns_servers=127.0.0.1@PORT [-o name=value]...
 *	    [--spf DOMAIN [--spf-result RESULT]] [--dkim DOMAIN]...
 *	    [--dkim-fail DOMAIN]... [--header 'Name: value']...
 *	    [--client-ip IP] [--helo NAME] [--auth USER] FROM_VALUE...
 *	dmarc_eval -o dns_servers=127.0.0.1@PORT [-o ...] --record DOMAIN
 *
 * The first form runs the real pipeline (conn_new, msg_new, msg_header,
 * msg_eoh, msg_eom and policy.c) with a check table of two entries: a
 * stand-in authentication check, which at end of message reports the SPF
 * result of the MAIL FROM identity (--spf: that domain passed, or
 * --spf-result) and one DKIM result per --dkim (pass) and --dkim-fail
 * (fail) as spf.c and dkim_verify.c would, and then the real dmarc_check.
 * Each FROM_VALUE is one From: header field value (several arguments,
 * several From: fields). --header adds any other field (List-Id: ...).
 * --auth makes the client authenticated (internal). No SPF or DKIM check
 * runs: DNS is asked only for what DMARC asks.
 *
 * The second form is the record discovery alone (dmarc_walk.h): the DNS
 * Tree Walk from DOMAIN and the record that applies to it.
 *
 * Output: key=value lines on stdout (values on one line: control bytes
 * and backslashes as \xHH). Pipeline form: the message's lines (outcomes,
 * from_bad, errors, action, reply, quarantine, ar), then for each From:
 * domain evaluated "outcome=N" followed by its lines: from_domain,
 * result, policy (the policy asked for after t=y; empty without an
 * applied record), published, policy_tag, policy_domain, org_domain,
 * spf_aligned, dkim_aligned, spf_domain, dkim_domain, reason,
 * disposition, override and the applied record (record, p, sp, np,
 * adkim, aspf, t, psd, rua, ruf, fo). Record form: domain, names (the
 * _dmarc names asked, in walk order), nrec, errors, tainted, selected,
 * policy_domain, own, org_domain and the record's lines.
 *
 * dns_servers must be given: a test that reaches the real DNS is a bug.
 * Exit status 0, 2 for a usage or configuration error.
 */
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "ar.h"
#include "checks.h"
#include "config.h"
#include "dmarc.h"
#include "dmarc_record.h"
#include "dmarc_walk.h"
#include "log.h"
#include "msgctx.h"
#include "snapshot.h"

#define EVAL_MAX_LIST 32 /* --dkim, --header, From: values, -o */

struct eval_opts {
	const char *ov[EVAL_MAX_LIST];
	size_t nov;
	bool have_dns;
	const char *spf;
	enum ag_spf_result spf_result;
	const char *dkim_pass[EVAL_MAX_LIST];
	size_t ndkim_pass;
	const char *dkim_fail[EVAL_MAX_LIST];
	size_t ndkim_fail;
	const char *hdr[EVAL_MAX_LIST];
	size_t nhdr;
	const char *from[EVAL_MAX_LIST];
	size_t nfrom;
	const char *client_ip;
	const char *helo;
	const char *auth;
	const char *record;
};

/* the stand-in check reads these (one message per process) */
static const struct eval_opts *eval;

static const char *const spf_names[] = {
    "none", "neutral", "pass", "fail", "softfail", "temperror", "permerror"};

/* eval_usage - the synopsis */
static void
eval_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: dmarc_eval -o dns_servers=ADDR@PORT [-o name=value]...\n"
	    "           [--spf DOMAIN [--spf-result RESULT]] [--dkim "
	    "DOMAIN]...\n"
	    "           [--dkim-fail DOMAIN]... [--header 'Name: value']...\n"
	    "           [--client-ip IP] [--helo NAME] [--auth USER] "
	    "FROM_VALUE...\n"
	    "       dmarc_eval -o dns_servers=ADDR@PORT [-o ...] --record "
	    "DOMAIN\n");
}

/* eval_put - one key=value line, the value made printable */
static void
eval_put(const char *key, const char *v)
{
	const unsigned char *p;

	printf("%s=", key);
	for (p = (const unsigned char *)(v ? v : ""); *p; p++)
		if (*p < 0x20 || *p == 0x7f || *p == '\\')
			printf("\\x%02x", *p);
		else
			putchar(*p);
	putchar('\n');
}

/* eval_yes - a boolean as the tests read it */
static const char *
eval_yes(bool b)
{
	return b ? "yes" : "no";
}

/* eval_add - append to a bounded list; -1 when it is full */
static int
eval_add(const char **list, size_t *n, const char *v)
{
	if (*n >= EVAL_MAX_LIST) {
		fprintf(stderr, "dmarc_eval: more than %d of a kind\n",
		    EVAL_MAX_LIST);
		return -1;
	}
	list[(*n)++] = v;
	return 0;
}

/* eval_parse - options; -1 on a usage error */
static int
eval_parse(int argc, char **argv, struct eval_opts *o)
{
	static const struct option longopts[] = {
	    {"spf", required_argument, NULL, 'S'},
	    {"spf-result", required_argument, NULL, 'r'},
	    {"dkim", required_argument, NULL, 'D'},
	    {"dkim-fail", required_argument, NULL, 'F'},
	    {"header", required_argument, NULL, 'H'},
	    {"client-ip", required_argument, NULL, 'I'},
	    {"helo", required_argument, NULL, 'E'},
	    {"auth", required_argument, NULL, 'A'},
	    {"record", required_argument, NULL, 'R'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	size_t i;
	int ch;

	o->spf_result = AG_SPF_PASS;
	o->client_ip = "203.0.113.9";
	o->helo = "client.eval.invalid";
	while ((ch = getopt_long(argc, argv, "o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'o':
			if (eval_add(o->ov, &o->nov, optarg) == -1)
				return -1;
			if (strncmp(optarg, "dns_servers=", 12) == 0 &&
			    optarg[12] != '\0')
				o->have_dns = true;
			break;
		case 'S':
			o->spf = optarg;
			break;
		case 'r':
			for (i = 0;
			     i < sizeof(spf_names) / sizeof(spf_names[0]); i++)
				if (strcmp(optarg, spf_names[i]) == 0)
					break;
			if (i == sizeof(spf_names) / sizeof(spf_names[0])) {
				fprintf(stderr,
				    "dmarc_eval: --spf-result %s: not an "
				    "SPF result\n",
				    optarg);
				return -1;
			}
			o->spf_result = (enum ag_spf_result)i;
			break;
		case 'D':
			if (eval_add(o->dkim_pass, &o->ndkim_pass, optarg) ==
			    -1)
				return -1;
			break;
		case 'F':
			if (eval_add(o->dkim_fail, &o->ndkim_fail, optarg) ==
			    -1)
				return -1;
			break;
		case 'H':
			if (strchr(optarg, ':') == NULL) {
				fprintf(stderr,
				    "dmarc_eval: --header '%s': no ':'\n",
				    optarg);
				return -1;
			}
			if (eval_add(o->hdr, &o->nhdr, optarg) == -1)
				return -1;
			break;
		case 'I':
			o->client_ip = optarg;
			break;
		case 'E':
			o->helo = optarg;
			break;
		case 'A':
			o->auth = optarg;
			break;
		case 'R':
			o->record = optarg;
			break;
		case 'h':
			eval_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	for (; optind < argc; optind++)
		if (eval_add(o->from, &o->nfrom, argv[optind]) == -1)
			return -1;
	if (!o->have_dns) {
		fprintf(stderr,
		    "dmarc_eval: -o dns_servers=... is required "
		    "(never the real DNS)\n");
		return -1;
	}
	if ((o->record != NULL) == (o->nfrom > 0)) {
		fprintf(stderr,
		    "dmarc_eval: From: values or --record DOMAIN, "
		    "one of the two\n");
		return -1;
	}
	return 0;
}

/* stand_in_eom - the SPF and DKIM results, as the real checks give them */
static int
stand_in_eom(struct msg *m)
{
	size_t i, n = 0;

	if (eval->spf != NULL) {
		m->spf_mailfrom.checked = true;
		m->spf_mailfrom.result = eval->spf_result;
		m->spf_mailfrom.domain = eval->spf;
		m->spf_mailfrom.identity =
		    arena_printf(m->arena, "postmaster@%s", eval->spf);
	}
	n = eval->ndkim_pass + eval->ndkim_fail;
	if (n == 0)
		return 0;
	if ((m->dkim = arena_allocarray(m->arena, n, sizeof(*m->dkim))) ==
	    NULL) {
		msg_error(m, AG_ERR_INTERNAL, "stand-in: out of memory");
		return -1;
	}
	memset(m->dkim, 0, n * sizeof(*m->dkim));
	for (i = 0; i < n; i++) {
		bool pass = i < eval->ndkim_pass;

		m->dkim[i].result = pass ? AG_DKIM_PASS : AG_DKIM_FAIL;
		m->dkim[i].domain = pass
		    ? eval->dkim_pass[i]
		    : eval->dkim_fail[i - eval->ndkim_pass];
		m->dkim[i].selector = "sel";
		m->dkim[i].algorithm = "rsa-sha256";
		m->dkim[i].l = -1;
	}
	m->ndkim = n;
	return 0;
}

static const struct check stand_in = {
    .name = "stand-in",
    .on_eom = stand_in_eom,
};
static const struct check *const eval_table[] = {&stand_in, &dmarc_check, NULL};

/* eval_uris - a list of URIs, comma-separated */
static void
eval_uris(const char *key, const char *const *v, size_t n)
{
	struct buf b = BUF_INIT;
	size_t i;

	for (i = 0; i < n; i++) {
		if (i)
			buf_addch(&b, ',');
		buf_addstr(&b, v[i]);
	}
	eval_put(key, b.data);
	buf_release(&b);
}

/* eval_record - the lines of an applied record (empty without one) */
static void
eval_record(const struct dmarc_record *r)
{
	static const char *const psd[] = {"u", "y", "n"};

	if (r == NULL) {
		eval_put("record", "");
		return;
	}
	eval_put("record", r->text);
	eval_put("p", dmarc_policy_name(r->p));
	eval_put("sp", dmarc_policy_name(r->sp));
	eval_put("np", dmarc_policy_name(r->np));
	eval_put("p_invalid", eval_yes(r->p == AG_DMARC_P_INVALID));
	eval_put("adkim", r->adkim_strict ? "s" : "r");
	eval_put("aspf", r->aspf_strict ? "s" : "r");
	eval_put("t", r->testing ? "y" : "n");
	eval_put("psd", r->psd <= AG_DMARC_PSD_N ? psd[r->psd] : "?");
	eval_uris("rua", r->rua, r->nrua);
	eval_uris("ruf", r->ruf, r->nruf);
	eval_put("fo", r->fo);
}

/* eval_outcome - one From: domain's result */
static void
eval_outcome(size_t i, const struct dmarc_outcome *o)
{
	static const char *const dis[] = {"none", "quarantine", "reject"};
	bool applied = o->record != NULL &&
	    (o->result == AG_DMARC_PASS || o->result == AG_DMARC_FAIL);
	char n[32];

	snprintf(n, sizeof(n), "%zu", i);
	eval_put("outcome", n);
	eval_put("from_domain", o->from_domain);
	eval_put("result", dmarc_result_name(o->result));
	eval_put("policy", applied ? dmarc_policy_name(o->policy) : "");
	eval_put("published", applied ? dmarc_policy_name(o->published) : "");
	eval_put("policy_tag", applied ? o->policy_tag : "");
	eval_put("policy_domain", o->policy_domain);
	eval_put("org_domain", o->org_domain);
	eval_put("spf_aligned", eval_yes(o->spf_aligned));
	eval_put("dkim_aligned", eval_yes(o->dkim_aligned));
	eval_put("spf_domain", o->spf_domain);
	eval_put("dkim_domain", o->dkim_domain);
	eval_put("reason", o->reason);
	eval_put("disposition",
	    o->disposition <= AG_DMARC_DIS_REJECT ? dis[o->disposition] : "?");
	eval_put("override", o->override);
	eval_record(o->record);
}

/* eval_message - the pipeline on one message; its result on stdout */
static int
eval_message(struct snapshot *s, const struct eval_opts *o)
{
	static const char *const err_names[] = {"internal", "dns", "key"};
	struct buf errs = BUF_INIT;
	struct conn *c;
	struct msg *m;
	const char *ar;
	char num[32];
	size_t i;

	if ((c = conn_new(s)) == NULL) {
		fprintf(stderr, "dmarc_eval: out of memory\n");
		return -1;
	}
	conn_set_client(c, NULL, o->client_ip, NULL);
	conn_set_helo(c, o->helo);
	conn_connected(c);
	if ((m = msg_new(c)) == NULL) {
		fprintf(stderr, "dmarc_eval: out of memory\n");
		conn_free(c);
		return -1;
	}
	msg_set_qid(m, "EVAL");
	msg_set_auth(m, o->auth);
	msg_mail(
	    m, o->spf ? arena_printf(m->arena, "<bounce@%s>", o->spf) : "<>");
	msg_rcpt(m, "<rcpt@eval.invalid>");
	/* values as the MTA passes them: one leading space */
	for (i = 0; i < o->nfrom; i++)
		msg_header(
		    m, "From", arena_printf(m->arena, " %s", o->from[i]));
	for (i = 0; i < o->nhdr; i++) {
		const char *colon = strchr(o->hdr[i], ':');
		const char *v = colon + 1;

		msg_header(m,
		    arena_strndup(
			m->arena, o->hdr[i], (size_t)(colon - o->hdr[i])),
		    v);
	}
	msg_header(m, "Subject", " dmarc_eval");
	msg_eoh(m);
	msg_eom(m);

	snprintf(num, sizeof(num), "%zu", m->ndmarc);
	eval_put("outcomes", num);
	eval_put("from_bad", eval_yes(m->dmarc_from_bad));
	for (i = 0; i < 3; i++)
		if (m->errors & (1u << i)) {
			if (errs.len)
				buf_addch(&errs, ',');
			buf_addstr(&errs, err_names[i]);
		}
	eval_put("errors", errs.data);
	buf_release(&errs);
	eval_put("action", config_action_name(m->verdict.action));
	if (m->verdict.rcode != NULL)
		eval_put("reply",
		    arena_printf(m->arena, "%s %s %s", m->verdict.rcode,
			m->verdict.xcode, m->verdict.text));
	else
		eval_put("reply", "");
	eval_put("quarantine", m->verdict.quarantine);
	/* built again here, so that a rejected message shows it too */
	ar = ar_build(m->arena, msg_authserv_id(m), m->ar, NULL);
	eval_put("ar", ar);
	for (i = 0; i < m->ndmarc; i++)
		eval_outcome(i, &m->dmarc[i]);
	conn_free(c);
	return 0;
}

/* eval_discovery - the Tree Walk from one domain, and what it selects */
static int
eval_discovery(struct snapshot *s, const char *domain)
{
	struct dns_budget budget = {0, 0, NULL, 0};
	struct dmarc_walk w;
	struct buf names = BUF_INIT, nrec = BUF_INIT, errs = BUF_INIT;
	struct arena *a;
	char *d;
	size_t i, len;
	int sel;

	if ((a = arena_new(8192)) == NULL ||
	    (d = arena_strdup(a, domain)) == NULL) {
		fprintf(stderr, "dmarc_eval: out of memory\n");
		arena_free(a);
		return -1;
	}
	str_tolower(d);
	len = strlen(d);
	if (len > 0 && d[len - 1] == '.')
		d[len - 1] = '\0';
	budget.max = (unsigned)s->cfg->dns_max_queries;
	dmarc_walk_start(a, s->dns, &budget, &w, d);
	dmarc_walk_read(a, &w);
	sel = dmarc_walk_select(&w);
	for (i = 0; i < w.n; i++) {
		if (i) {
			buf_addch(&names, ',');
			buf_addch(&nrec, ',');
		}
		buf_addf(&names, "_dmarc.%s", w.name[i]);
		buf_addf(&nrec, "%d%s", w.nrec[i], w.bad[i] ? "!" : "");
		if (w.err[i] && i < w.stop) {
			if (errs.len)
				buf_addch(&errs, ',');
			buf_addf(&errs, "_dmarc.%s", w.name[i]);
		}
	}
	eval_put("domain", d);
	eval_put("names", names.data);
	eval_put("nrec", nrec.data);
	eval_put("errors", errs.data);
	eval_put("tainted", eval_yes(w.tainted));
	eval_put("selected", arena_printf(a, "%d", sel));
	eval_put("policy_domain", sel >= 0 ? w.name[sel] : "");
	eval_put("own", eval_yes(sel == 0));
	eval_put("org_domain", w.org);
	eval_put("invalid", sel >= 0 && w.bad[sel] ? w.why[sel] : "");
	eval_record(sel >= 0 && !w.bad[sel] ? &w.rec[sel] : NULL);
	buf_release(&names);
	buf_release(&nrec);
	buf_release(&errs);
	dns_budget_release(&budget);
	arena_free(a);
	return 0;
}

int
main(int argc, char **argv)
{
	struct eval_opts o;
	struct buf err = BUF_INIT;
	struct config *cfg;
	struct snapshot *s;
	int rc = 2;

	memset(&o, 0, sizeof(o));
	if (eval_parse(argc, argv, &o) == -1) {
		eval_usage(stderr);
		return 2;
	}
	eval = &o;
	if ((cfg = config_load("/dev/null", o.ov, o.nov, &err)) == NULL) {
		fputs(err.data, stderr);
		goto out;
	}
	/* stdout is the result; stderr gets problems only */
	log_set_level(cfg->log_level == LOG_DEBUG ? LOG_DEBUG : LOG_WARNING);
	if ((s = snapshot_build(cfg, NULL, eval_table, &err)) == NULL) {
		fputs(err.data, stderr);
		goto out;
	}
	if ((o.record != NULL ? eval_discovery(s, o.record)
			      : eval_message(s, &o)) == 0)
		rc = 0;
	fflush(stdout);
	snapshot_release(s);
out:
	buf_release(&err);
	return rc;
}
