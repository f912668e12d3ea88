/*
 * check.c - `authgate-keys check`: the key record in DNS against a key.
 *
 * The record is looked up through the daemon's own resolver (dns.h),
 * built from authgate.conf as the daemon builds it, so the answer is the
 * one authgate would get: dns_servers, dns_timeout and the trust anchor
 * apply, and nothing goes around them. Every outcome but a match is one
 * line on stderr and exit status 1.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "config.h"
#include "dns.h"
#include "log.h"
#include "keyfile.h"
#include "keyrec.h"
#include "keytool.h"

/* What one lookup found: the one DKIM key record, and the rest. */
struct check_found {
	const char *txt; /* the DKIM record, joined; in the arena */
	size_t len;
	unsigned ndkim;	   /* DKIM key records in the RRset */
	unsigned nother;   /* other TXT records */
	const char *other; /* the first of them, printable */
};

/* check_resolver - dns_new() from the configuration, as snapshot.c does */
static struct dns *
check_resolver(const struct config *cfg)
{
	struct dns_conf dc;
	struct dns *dns;
	char why[512];

	config_dns_conf(cfg, &dc);
	if ((dns = dns_new(&dc, why, sizeof(why))) == NULL)
		keytool_err("%s: %s", cfg->file[0] ? cfg->file : "config", why);
	return dns;
}

/* check_servers - who was asked, for messages */
static void
check_servers(const struct config *cfg, struct buf *b)
{
	size_t i;

	if (cfg->dns_servers.n == 0) {
		buf_addstr(b, "the system resolver");
		return;
	}
	for (i = 0; i < cfg->dns_servers.n; i++)
		buf_addf(b, "%s%s", i ? ", " : "", cfg->dns_servers.v[i]);
}

/* check_dns_error - one line for a lookup that found no record */
static void
check_dns_error(const struct config *cfg, const char *owner, enum ag_dns_rc rc)
{
	struct buf srv = BUF_INIT;

	check_servers(cfg, &srv);
	switch (rc) {
	case AG_DNS_NXDOMAIN:
		keytool_err(
		    "no key record: %s does not exist (NXDOMAIN)", owner);
		break;
	case AG_DNS_NODATA:
		keytool_err("no key record: %s has no TXT record", owner);
		break;
	case AG_DNS_SERVFAIL:
		keytool_err(
		    "DNS failure: SERVFAIL for %s TXT from %s; try again "
		    "later",
		    owner, srv.data);
		break;
	case AG_DNS_TIMEOUT:
		keytool_err(
		    "DNS failure: timeout, no answer for %s TXT from %s "
		    "within %lld ms (dns_timeout)",
		    owner, srv.data, cfg->dns_timeout_ms);
		break;
	case AG_DNS_BOGUS:
		keytool_err("DNS failure: DNSSEC validation of %s TXT failed "
			    "(bogus)",
		    owner);
		break;
	default:
		keytool_err(
		    "DNS failure: %s for %s TXT", dns_rc_name(rc), owner);
		break;
	}
	buf_release(&srv);
}

/* check_lookup - the TXT RRset at owner, sorted into f; -1 after a message */
static int
check_lookup(struct dns *dns, const struct config *cfg, struct arena *a,
    const char *owner, struct check_found *f)
{
	const struct dns_answer *ans;
	struct dns_query *q;
	enum ag_dns_rc rc;
	const char *txt;
	size_t len;
	unsigned i;
	int ret = -1;

	memset(f, 0, sizeof(*f));
	q = dns_query_start(dns, NULL, owner, AG_DNS_T_TXT);
	if ((rc = dns_query_wait(q, &ans)) != AG_DNS_OK) {
		check_dns_error(cfg, owner, rc);
		goto out;
	}
	for (i = 0; i < ans->nrr; i++) {
		if ((txt = dns_rr_txt(a, &ans->rr[i], &len)) == NULL) {
			keytool_err(
			    "malformed key record at %s: bad TXT data", owner);
			goto out;
		}
		if (!keyrec_is_dkim(txt, len)) {
			if (f->nother++ == 0)
				f->other = str_safe(a, txt, len);
		} else if (f->ndkim++ == 0) {
			f->txt = txt;
			f->len = len;
		}
	}
	if (f->ndkim == 0)
		keytool_err(
		    "no key record: %s has %u TXT record%s, none a DKIM "
		    "key (\"%s\")",
		    owner, f->nother, f->nother == 1 ? "" : "s", f->other);
	else if (f->ndkim > 1)
		keytool_err(
		    "more than one DKIM key record at %s (%u): verifiers "
		    "may use either (RFC 6376 3.6.2.2)",
		    owner, f->ndkim);
	else
		ret = 0;
out:
	dns_query_free(q);
	return ret;
}

/* check_record - the record's tags against the key; 0 when it matches */
static int
check_record(struct arena *a, const char *owner, const struct check_found *f,
    const struct keyfile *kf, const char *path)
{
	const char *kt = keyfile_type_name(kf->type), *why;
	struct keyrec r;
	char cmp[512];

	if (keyrec_parse(a, f->txt, f->len, &r, &why) == -1) {
		keytool_err("malformed key record at %s: %s", owner, why);
		return -1;
	}
	if (r.revoked) {
		keytool_err(
		    "key revoked: %s has an empty p= (RFC 6376 3.6.1)", owner);
		return -1;
	}
	if (strcmp(r.k, kt) != 0) {
		keytool_err("key type mismatch: %s has k=%s, %s is an %s key",
		    owner, str_safe(a, r.k, strlen(r.k)), path, kt);
		return -1;
	}
	if (r.has_h && !r.h_sha256) {
		keytool_err("unusable key record at %s: h=%s excludes sha256, "
			    "the hash authgate signs with",
		    owner, r.h);
		return -1;
	}
	if (r.has_s && !r.s_email) {
		keytool_err("unusable key record at %s: s=%s excludes email",
		    owner, r.s);
		return -1;
	}
	switch (keyfile_compare(kf, r.p, r.plen, cmp, sizeof(cmp))) {
	case AG_KEYFILE_SAME:
		break;
	case AG_KEYFILE_DIFFERENT:
		keytool_err("keys differ: the key at %s is not the public half "
			    "of %s (%s)",
		    owner, path, cmp);
		return -1;
	case AG_KEYFILE_BADDATA:
		keytool_err("malformed key record at %s: %s", owner, cmp);
		return -1;
	}
	if (r.t_testing)
		keytool_err("warning: %s has t=y: verifiers treat this key as "
			    "being tested (RFC 6376 3.6.1)",
		    owner);
	if (f->nother > 0)
		keytool_err(
		    "warning: %s also has %u TXT record%s that %s not a "
		    "DKIM key (\"%s\"); remove %s",
		    owner, f->nother, f->nother == 1 ? "" : "s",
		    f->nother == 1 ? "is" : "are", f->other,
		    f->nother == 1 ? "it" : "them");
	return 0;
}

/* keytool_check - `authgate-keys check` */
int
keytool_check(const struct keytool_opts *o)
{
	struct buf err = BUF_INIT;
	struct check_found f;
	struct keyfile kf;
	struct config *cfg;
	struct arena *a = NULL;
	struct dns *dns = NULL;
	char *owner = NULL;
	int rc = AG_KEYTOOL_EX_USAGE;

	memset(&kf, 0, sizeof(kf));
	if ((cfg = config_load(o->conf, o->overrides, o->noverrides, &err)) ==
	    NULL) {
		fputs(err.data, stderr);
		goto out;
	}
	/* stderr is for problems: libunbound's and the resolver's too */
	log_open("authgate-keys", AG_LOG_STDERR, LOG_MAIL);
	log_set_level(cfg->log_level == LOG_DEBUG ? LOG_DEBUG : LOG_WARNING);
	rc = AG_KEYTOOL_EX_FAIL;
	/* the key must be one the daemon would load with this config */
	if (keytool_load(o->key, true, (int)cfg->dkim_min_key_bits, &kf) == -1)
		goto out;
	rc = AG_KEYTOOL_EX_USAGE;
	if ((dns = check_resolver(cfg)) == NULL)
		goto out;
	rc = AG_KEYTOOL_EX_FAIL;
	if ((a = arena_new(8192)) == NULL) {
		keytool_err("out of memory");
		goto out;
	}
	owner = keytool_owner(o);
	if (check_lookup(dns, cfg, a, owner, &f) == -1 ||
	    check_record(a, owner, &f, &kf, o->key) == -1)
		goto out;
	printf("key OK: %s/%s %s %d\n", o->domain, o->selector,
	    keyfile_type_name(kf.type), kf.bits);
	rc = AG_KEYTOOL_EX_OK;
out:
	free(owner);
	if (a != NULL)
		arena_free(a);
	if (dns != NULL)
		dns_unref(dns);
	keyfile_release(&kf);
	if (cfg != NULL)
		config_free(cfg);
	buf_release(&err);
	return rc;
}
