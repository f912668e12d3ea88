/*
 * reports.c - authgate-reports: the DMARC aggregate reports (RFC 9990) of
 * the days that are over, built from the history the daemon keeps
 * (dmarc_history.h) and sent to the domains that asked for them.
 *
 * Run by cron on one host of a site (the history may be shared by every
 * MX host). For each (policy domain, UTC day) not done yet it builds one
 * report (reports_xml.h) and mails it to each mailto: URI of the newest
 * rua of the period, once: a destination that took it is remembered, one
 * that failed is tried again by the next run, with the same report id and
 * file name (3.5.4). A destination outside the Organizational Domain of
 * the policy domain must authorize the reports in DNS (4), asked through
 * the daemon's resolver (dns.h). The program reads the configuration and
 * the history, asks DNS, starts the configured sendmail, and writes
 * files only under --out.
 */
#include <sys/types.h>
#include <sys/wait.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "autoconf.h" /* PACKAGE_VERSION */

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "dmarc_record.h"
#include "dmarc_walk.h"
#include "dns.h"
#include "log.h"
#include "config.h"
#include "dmarc_history.h"
#include "reports_xml.h"

#define RP_EX_OK    0 /* everything pending was handled */
#define RP_EX_RETRY 1 /* something is left for the next run */
#define RP_EX_USAGE 2 /* usage or configuration error */

#define RP_MAX_PERIODS 10000 /* periods handled per run */
#define RP_MAX_DESTS   32    /* addresses per report */
#define RP_DAY	       86400LL

struct rp_opts {
	const char *conf;
	const char **overrides;
	size_t noverrides;
	const char *out;
	bool dry_run;
	const char *domain;
	long long before; /* the first day not reported, 00:00 UTC */
	long long keep_days;
};

/* One run: the configuration, the store, the resolver, the outcome. */
struct rp_run {
	const struct rp_opts *o;
	struct config *cfg;
	struct dhist *h;
	struct dns *dns;
	char *from;	      /* the address of dmarc_report_from */
	const char *receiver; /* its domain: the Submitter (3.5.2) */
	char org[256];	      /* org_name */
	bool retry;
};

/* One period being reported. */
struct rp_period {
	const struct dhist_period *p;
	struct arena *a; /* DNS walks and answers */
	struct rxml *rx;
	char id[64];
	char day[16];
	char *filename;
	struct buf gz;
	struct dmarc_walk walk; /* of the policy domain, once needed */
	bool walked;
	char *dest[RP_MAX_DESTS]; /* addresses, in rua order */
	size_t ndest;
	bool retry;
	bool written; /* --out: the report file is there */
};

static void rp_err(const char *, ...) __attribute__((format(printf, 1, 2)));

/* rp_err - one line on stderr, prefixed with the program's name */
static void
rp_err(const char *fmt, ...)
{
	va_list ap;

	fputs("authgate-reports: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* rp_fnv - FNV-1a 64 of a string, continuing from h */
static uint64_t
rp_fnv(uint64_t h, const char *s)
{
	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211ULL;
	return h;
}

/* ---- names and addresses ------------------------------------------------ */

/* rp_domain_ok - letters, digits, '-', '_', labels of 1..63, at most 253:
 * safe in a header, a file name and a DNS query */
static bool
rp_domain_ok(const char *d)
{
	size_t label = 0, i;

	for (i = 0; d[i] != '\0'; i++) {
		if (d[i] == '.') {
			if (label == 0)
				return false;
			label = 0;
			continue;
		}
		if (!str_isalnum((unsigned char)d[i]) && d[i] != '-' &&
		    d[i] != '_')
			return false;
		if (++label > 63)
			return false;
	}
	return i > 0 && i <= AG_DNS_MAX_NAME && label > 0;
}

/* rp_addr_ok - a plain addr-spec (RFC 5322 3.4.1, dot-atom local part)
 * that is safe in a header: no quoting, no comments, no white space */
static bool
rp_addr_ok(const char *a)
{
	const char *at = strrchr(a, '@'), *p;

	if (at == NULL || at == a || !rp_domain_ok(at + 1))
		return false;
	for (p = a; p < at; p++)
		if (*p <= ' ' || *p >= 0x7f || strchr("\"(),:;<>@[\\]", *p))
			return false;
	return true;
}

/* rp_hexval - a hex digit's value, or -1 */
static int
rp_hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = str_lower(c);
	return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* rp_printable - printable ASCII only: fit for a header as it is */
static bool
rp_printable(const char *s)
{
	for (; *s; s++)
		if (*s < ' ' || *s >= 0x7f)
			return false;
	return true;
}

/* rp_mailto - the address of a mailto: URI (RFC 6068): what comes before
 * '?', percent-decoded, domain in lower case; NULL when it is not one
 * plain address */
static char *
rp_mailto(const char *uri)
{
	const char *p, *end;
	char *addr, *w, *at;
	int hi, lo;

	if (!str_ncaseeq(uri, "mailto:", 7))
		return NULL;
	p = uri + 7;
	end = strchr(p, '?');
	if (end == NULL)
		end = p + strlen(p);
	w = addr = xstrndup(p, (size_t)(end - p));
	for (; p < end; p++) {
		if (*p == '%' && end - p >= 3 && (hi = rp_hexval(p[1])) >= 0 &&
		    (lo = rp_hexval(p[2])) >= 0) {
			*w++ = (char)(hi << 4 | lo);
			p += 2;
		} else
			*w++ = *p;
	}
	*w = '\0';
	if (!rp_addr_ok(addr)) {
		free(addr);
		return NULL;
	}
	at = strrchr(addr, '@');
	str_tolower(at + 1);
	return addr;
}

/* rp_suppressed - dmarc_report_suppress names the address, its domain or
 * a parent of it */
static bool
rp_suppressed(const struct config *cfg, const char *addr)
{
	const char *dom = strrchr(addr, '@') + 1, *e;
	size_t i, dl = strlen(dom), el;

	for (i = 0; i < cfg->dmarc_report_suppress.n; i++) {
		e = cfg->dmarc_report_suppress.v[i];
		if (strchr(e + 1, '@') != NULL) {
			if (str_casecmp(e, addr) == 0)
				return true;
			continue;
		}
		if (*e == '@' || *e == '.')
			e++;
		el = strlen(e);
		if (el == 0 || el > dl)
			continue;
		if (str_casecmp(dom + dl - el, e) == 0 &&
		    (el == dl || dom[dl - el - 1] == '.'))
			return true;
	}
	return false;
}

/* ---- external destinations (RFC 9990 4) --------------------------------- */

enum rp_auth {
	RP_AUTH_YES,
	RP_AUTH_NO,
	RP_AUTH_LATER, /* temporary DNS error: try again next run */
};

/* rp_org - the Organizational Domain of d (RFC 9989 4.10.2) by the walk;
 * NULL when a DNS error makes it uncertain */
static const char *
rp_org(
    struct rp_run *r, struct rp_period *pp, struct dmarc_walk *w, const char *d)
{
	dmarc_walk_start(pp->a, r->dns, NULL, w, d);
	dmarc_walk_read(pp->a, w);
	return w->tainted ? NULL : w->org;
}

/* rp_same_org - do the policy domain and host share their Organizational
 * Domain? -1 when DNS cannot tell now */
static int
rp_same_org(struct rp_run *r, struct rp_period *pp, const char *host)
{
	const char *pd = pp->p->policy_domain, *po, *ho;
	struct dmarc_walk hw;

	if (str_casecmp(pd, host) == 0)
		return 1;
	if (!pp->walked) {
		char *lc = arena_strdup(pp->a, pd);

		if (lc == NULL)
			return -1;
		rp_org(r, pp, &pp->walk, str_tolower(lc));
		pp->walked = true;
	}
	po = pp->walk.tainted ? NULL : pp->walk.org;
	if (po == NULL || (ho = rp_org(r, pp, &hw, host)) == NULL)
		return -1;
	return str_casecmp(po, ho) == 0;
}

/* rp_verify - ask <policy-domain>._report._dmarc.<host> (4 steps 2-6);
 * the first authorizing record with a rua goes into *rec (step 7) */
static enum rp_auth
rp_verify(struct rp_run *r, struct rp_period *pp, const char *host,
    struct dmarc_record *rec, bool *have_rec)
{
	const char *pd = pp->p->policy_domain;
	const struct dns_answer *ans;
	enum ag_dmarc_rec pr;
	struct dns_query *q;
	enum ag_dns_rc rc;
	char *name, *txt, why[96];
	unsigned i;
	size_t len;
	bool ok = false;

	*have_rec = false;
	name = arena_printf(pp->a, "%s._report._dmarc.%s", pd, host);
	if (name == NULL || strlen(name) > AG_DNS_MAX_NAME) {
		rp_err("%s: %s._report._dmarc.%s is too long for DNS: "
		       "not authorized",
		    pd, pd, host);
		return RP_AUTH_NO;
	}
	q = dns_query_start(r->dns, NULL, name, AG_DNS_T_TXT);
	if (dns_query_defer(pp->a, q) == -1)
		return RP_AUTH_LATER;
	if ((rc = dns_query_wait(q, &ans)) != AG_DNS_OK) {
		if (dns_rc_temporary(rc)) {
			rp_err("%s: DNS %s for %s TXT: trying again next run",
			    pd, dns_rc_name(rc), name);
			return RP_AUTH_LATER;
		}
		rp_err("%s: no report authorization at %s (%s)", pd, name,
		    dns_rc_name(rc));
		return RP_AUTH_NO;
	}
	for (i = 0; i < ans->nrr; i++) {
		struct dmarc_record one;

		if ((txt = dns_rr_txt(pp->a, &ans->rr[i], &len)) == NULL ||
		    memchr(txt, '\0', len) != NULL)
			continue;
		/* step 5: v=DMARC1 first, or the record is not one */
		pr =
		    dmarc_record_parse(pp->a, txt, len, &one, why, sizeof(why));
		if (pr == AG_DMARC_REC_NOT)
			continue;
		ok = true;
		if (pr == AG_DMARC_REC_OK && one.nrua > 0 && !*have_rec) {
			*rec = one;
			*have_rec = true;
		}
	}
	if (!ok)
		rp_err("%s: no report authorization at %s (no v=DMARC1 "
		       "record)",
		    pd, name);
	return ok ? RP_AUTH_YES : RP_AUTH_NO;
}

/* rp_add_dest - an address reports go to, unless suppressed (an override
 * may name one) or a double */
static void
rp_add_dest(struct rp_run *r, struct rp_period *pp, char *addr)
{
	size_t i;

	if (rp_suppressed(r->cfg, addr)) {
		rp_err("%s: %s is in dmarc_report_suppress: not sent",
		    pp->p->policy_domain, addr);
		free(addr);
		return;
	}
	for (i = 0; i < pp->ndest; i++)
		if (str_casecmp(pp->dest[i], addr) == 0) {
			free(addr);
			return;
		}
	if (pp->ndest == RP_MAX_DESTS) {
		rp_err("%s: more than %d destinations: %s not sent",
		    pp->p->policy_domain, RP_MAX_DESTS, addr);
		free(addr);
		return;
	}
	pp->dest[pp->ndest++] = addr;
}

/* rp_override - 4 step 7: the authorizing record's rua replaces the URI
 * when every URI of it is on the same host; otherwise neither is used */
static void
rp_override(struct rp_run *r, struct rp_period *pp, const char *host,
    const struct dmarc_record *rec)
{
	char *addr[AG_DMARC_MAX_URIS];
	size_t i, n = 0;
	bool same = true;

	for (i = 0; i < rec->nrua; i++) {
		char *a = rp_mailto(rec->rua[i]);

		if (a == NULL || str_casecmp(strrchr(a, '@') + 1, host) != 0) {
			rp_err("%s: the authorization at %s names %s, not "
			       "on that host: sent to neither",
			    pp->p->policy_domain, host, rec->rua[i]);
			free(a);
			same = false;
			continue;
		}
		addr[n++] = a;
	}
	for (i = 0; i < n; i++) {
		if (same)
			rp_add_dest(r, pp, addr[i]);
		else
			free(addr[i]);
	}
}

/* rp_uri - one rua URI: where it sends to, if anywhere */
static void
rp_uri(struct rp_run *r, struct rp_period *pp, const char *uri)
{
	const char *pd = pp->p->policy_domain;
	struct dmarc_record rec;
	bool have_rec;
	char *addr, *host;
	int same;

	if (!str_ncaseeq(uri, "mailto:", 7)) {
		rp_err("%s: %s: only mailto: URIs are supported, skipped", pd,
		    uri);
		return;
	}
	if ((addr = rp_mailto(uri)) == NULL) {
		rp_err("%s: %s: not a plain mailto: address, skipped", pd, uri);
		return;
	}
	if (rp_suppressed(r->cfg, addr)) {
		rp_err(
		    "%s: %s is in dmarc_report_suppress: not sent", pd, addr);
		free(addr);
		return;
	}
	host = strrchr(addr, '@') + 1;
	if ((same = rp_same_org(r, pp, host)) == -1) {
		rp_err("%s: DNS errors while finding the Organizational "
		       "Domains of %s and %s: trying again next run",
		    pd, pd, host);
		pp->retry = true;
		free(addr);
		return;
	}
	if (same == 0) {
		switch (rp_verify(r, pp, host, &rec, &have_rec)) {
		case RP_AUTH_LATER:
			pp->retry = true;
			free(addr);
			return;
		case RP_AUTH_NO:
			free(addr);
			return;
		case RP_AUTH_YES:
			break;
		}
		if (have_rec) {
			rp_override(r, pp, host, &rec);
			free(addr);
			return;
		}
	}
	rp_add_dest(r, pp, addr);
}

/* rp_dests - the rua of the newest row, in order (3.5) */
static void
rp_dests(struct rp_run *r, struct rp_period *pp, const char *rua)
{
	const char *p = rua, *end;
	char *uri;

	while (*p != '\0') {
		end = strchr(p, ',');
		if (end == NULL)
			end = p + strlen(p);
		while (p < end && str_isspace((unsigned char)*p))
			p++;
		uri = xstrndup(p, (size_t)(end - p));
		if (*uri != '\0')
			rp_uri(r, pp, uri);
		free(uri);
		p = *end ? end + 1 : end;
	}
}

/* ---- delivery ----------------------------------------------------------- */

/* rp_write_file - DIR/name, complete or not at all */
static int
rp_write_file(const char *dir, const char *name, const char *data, size_t len)
{
	char *path = xasprintf("%s/%s", dir, name);
	char *tmp = xasprintf("%s/.%s.tmp", dir, name);
	ssize_t n;
	size_t off = 0;
	int fd, rc = -1;

	if ((fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644)) ==
	    -1) {
		rp_err("%s: %s", tmp, strerror(errno));
		goto out;
	}
	while (off < len) {
		if ((n = write(fd, data + off, len - off)) == -1) {
			if (errno == EINTR)
				continue;
			rp_err("%s: %s", tmp, strerror(errno));
			close(fd);
			unlink(tmp);
			goto out;
		}
		off += (size_t)n;
	}
	if (close(fd) == -1 || rename(tmp, path) == -1) {
		rp_err("%s: %s", path, strerror(errno));
		unlink(tmp);
		goto out;
	}
	rc = 0;
out:
	free(path);
	free(tmp);
	return rc;
}

/* rp_sendmail - the message to `sendmail -t -oi`; 0 when it exits 0 */
static int
rp_sendmail(const char *prog, const struct buf *msg)
{
	char *const argv[] = {(char *)prog, "-t", "-oi", NULL};
	size_t off = 0;
	ssize_t n;
	int fd[2], st;
	pid_t pid;

	fflush(NULL);
	if (pipe(fd) == -1) {
		rp_err("pipe: %s", strerror(errno));
		return -1;
	}
	if ((pid = fork()) == -1) {
		rp_err("fork: %s", strerror(errno));
		close(fd[0]);
		close(fd[1]);
		return -1;
	}
	if (pid == 0) {
		if (dup2(fd[0], 0) == -1)
			_exit(127);
		close(fd[0]);
		close(fd[1]);
		execv(prog, argv);
		rp_err("%s: %s", prog, strerror(errno));
		_exit(127);
	}
	close(fd[0]);
	while (off < msg->len) {
		if ((n = write(fd[1], msg->data + off, msg->len - off)) == -1) {
			if (errno == EINTR)
				continue;
			break; /* EPIPE: it stopped reading; its status says */
		}
		off += (size_t)n;
	}
	close(fd[1]);
	while (waitpid(pid, &st, 0) == -1)
		if (errno != EINTR) {
			rp_err("waitpid: %s", strerror(errno));
			return -1;
		}
	if (WIFEXITED(st) && WEXITSTATUS(st) == 0 && off == msg->len)
		return 0;
	if (WIFEXITED(st))
		rp_err("%s exited with status %d", prog, WEXITSTATUS(st));
	else if (WIFSIGNALED(st))
		rp_err("%s was killed by signal %d", prog, WTERMSIG(st));
	else
		rp_err("%s did not read the whole message", prog);
	return -1;
}

/* rp_text - the human-readable part (3.5.2 allows one) */
static char *
rp_text(const struct rp_run *r, const struct rp_period *pp)
{
	char org[sizeof(r->org)];
	size_t i;

	for (i = 0; r->org[i] != '\0'; i++)
		org[i] = r->org[i] >= ' ' && r->org[i] < 0x7f ? r->org[i] : '?';
	org[i] = '\0';
	return xasprintf(
	    "This is a DMARC aggregate report (RFC 9990) from %s.\n\n"
	    "Report domain: %s\n"
	    "Submitter:     %s\n"
	    "Report-ID:     %s\n"
	    "Period:        %s 00:00:00 to 23:59:59 UTC\n"
	    "Messages:      %llu in %zu records\n\n"
	    "The report is the attached file\n%s\n",
	    org, pp->p->policy_domain, r->receiver, pp->id, pp->day,
	    rxml_rows(pp->rx), rxml_records(pp->rx), pp->filename);
}

/* rp_deliver - the report to one address: sendmail, or a file under
 * --out (the k-th address's message is <filename>.eml, then .<k>.eml) */
static int
rp_deliver(struct rp_run *r, struct rp_period *pp, size_t k)
{
	struct buf msg = BUF_INIT;
	struct rxml_mail m;
	char *subject, *mid, *text, *name;
	int rc;

	subject = xasprintf("Report Domain: %s Submitter: %s Report-ID: %s",
	    pp->p->policy_domain, r->receiver, pp->id);
	mid = xasprintf("%s.%08llx@%s", pp->id,
	    (unsigned long long)(rp_fnv(14695981039346656037ULL, pp->dest[k]) &
		0xffffffffULL),
	    r->receiver);
	text = rp_text(r, pp);
	m.from = r->cfg->dmarc_report_from;
	m.to = pp->dest[k];
	m.subject = subject;
	m.message_id = mid;
	m.filename = pp->filename;
	m.text = text;
	m.date = (long long)time(NULL);
	rxml_mail(&m, pp->gz.data, pp->gz.len, &msg);
	if (r->o->out == NULL)
		rc = r->o->dry_run
		    ? 0
		    : rp_sendmail(r->cfg->dmarc_report_sendmail, &msg);
	else {
		rc = 0;
		if (!pp->written) {
			rc = rp_write_file(
			    r->o->out, pp->filename, pp->gz.data, pp->gz.len);
			pp->written = rc == 0;
		}
		name = k == 0 ? xasprintf("%s.eml", pp->filename)
			      : xasprintf("%s.%zu.eml", pp->filename, k + 1);
		if (rc == 0)
			rc = rp_write_file(r->o->out, name, msg.data, msg.len);
		free(name);
	}
	free(subject);
	free(mid);
	free(text);
	buf_release(&msg);
	return rc;
}

/* ---- one period ---------------------------------------------------------- */

/* rp_build - the rows grouped, the XML and its gzip; -1 after a message */
static int
rp_build(struct rp_run *r, struct rp_period *pp)
{
	const struct dhist_period *p = pp->p;
	struct rxml_meta meta;
	struct buf xml = BUF_INIT;
	char err[512], *gen;
	time_t t = (time_t)p->begin;
	struct tm tm;
	uint64_t h;
	int rc;

	if (dhist_rows(r->h, p->policy_domain, p->begin, p->end, rxml_add,
		pp->rx, err, sizeof(err)) == -1) {
		rp_err("%s: reading the history: %s", p->policy_domain, err);
		return -1;
	}
	gmtime_r(&t, &tm);
	strftime(pp->day, sizeof(pp->day), "%Y-%m-%d", &tm);
	/* 3.1.4: the Report-ID is the file's unique-id, so 1*(ALPHA/DIGIT);
	 * the same for a period whenever it is built (3.5.4) */
	h = rp_fnv(14695981039346656037ULL, r->receiver);
	h = rp_fnv(h, "!");
	h = rp_fnv(h, p->policy_domain);
	snprintf(pp->id, sizeof(pp->id), "%04d%02d%02d%016llx",
	    tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday,
	    (unsigned long long)h);
	pp->filename = xasprintf("%s!%s!%lld!%lld!%s.xml.gz", r->receiver,
	    p->policy_domain, p->begin, p->end, pp->id);
	gen = xasprintf("authgate %s", PACKAGE_VERSION);
	meta.org_name = r->org;
	meta.email = r->from;
	meta.report_id = pp->id;
	meta.generator = gen;
	meta.begin = p->begin;
	meta.end = p->end;
	rxml_render(pp->rx, &meta, &xml);
	rc = rxml_gzip(xml.data, xml.len, &pp->gz, err, sizeof(err));
	if (rc == -1)
		rp_err("%s: %s", p->policy_domain, err);
	free(gen);
	buf_release(&xml);
	return rc;
}

/* rp_send_all - each destination not sent yet; -1 if one must wait */
static int
rp_send_all(struct rp_run *r, struct rp_period *pp)
{
	const char *pd = pp->p->policy_domain;
	char err[512], *dest;
	size_t k;
	int sent, failed = 0;

	for (k = 0; k < pp->ndest; k++) {
		dest = xasprintf("mailto:%s", pp->dest[k]);
		if ((sent = dhist_sent(r->h, pp->p, dest, err, sizeof(err))) ==
		    -1) {
			rp_err(
			    "%s %s: reading the history: %s", pd, pp->day, err);
			failed = -1;
		} else if (sent == 1)
			printf("already sent: %s %s report %s to %s\n", pd,
			    pp->day, pp->id, pp->dest[k]);
		else if (rp_deliver(r, pp, k) == -1) {
			rp_err("%s %s: report %s to %s not sent: trying again "
			       "next run",
			    pd, pp->day, pp->id, pp->dest[k]);
			failed = -1;
		} else if (r->o->dry_run)
			printf("would send: %s %s report %s (%llu messages) "
			       "to %s\n",
			    pd, pp->day, pp->id, rxml_rows(pp->rx),
			    pp->dest[k]);
		else if (dhist_mark_sent(r->h, pp->p, dest, pp->id, err,
			     sizeof(err)) == -1) {
			rp_err("%s %s: report %s sent to %s, but the history "
			       "cannot record it (%s): it will be sent again",
			    pd, pp->day, pp->id, pp->dest[k], err);
			failed = -1;
		} else
			printf("sent: %s %s report %s (%llu messages) to %s\n",
			    pd, pp->day, pp->id, rxml_rows(pp->rx),
			    pp->dest[k]);
		free(dest);
	}
	return failed;
}

/* rp_period - one (policy domain, day) from rows to done */
static void
rp_period(struct rp_run *r, const struct dhist_period *p)
{
	struct rp_period pp;
	const struct dhist_row *latest;
	char err[512];
	size_t k;

	memset(&pp, 0, sizeof(pp));
	pp.p = p;
	pp.gz = (struct buf)BUF_INIT;
	if (!rp_domain_ok(p->policy_domain)) {
		rp_err("'%s': not a domain name, its rows are never reported",
		    p->policy_domain);
		goto done;
	}
	pp.rx = rxml_new(p->policy_domain);
	if ((pp.a = arena_new(16384)) == NULL) {
		rp_err("out of memory");
		pp.retry = true;
		goto out;
	}
	if (rp_build(r, &pp) == -1) {
		pp.retry = true;
		goto out;
	}
	if ((latest = rxml_latest(pp.rx)) != NULL)
		rp_dests(r, &pp, latest->rua);
	if (pp.ndest == 0 && !pp.retry)
		rp_err("%s %s: no destination to send report %s to",
		    p->policy_domain, pp.day, pp.id);
	if (rp_send_all(r, &pp) == -1)
		pp.retry = true;
done:
	/* every destination sent or not allowed: the period is over */
	if (!pp.retry && !r->o->dry_run &&
	    dhist_mark_done(r->h, p, err, sizeof(err)) == -1) {
		rp_err(
		    "%s: marking the period done: %s", p->policy_domain, err);
		pp.retry = true;
	}
out:
	if (pp.retry)
		r->retry = true;
	for (k = 0; k < pp.ndest; k++)
		free(pp.dest[k]);
	free(pp.filename);
	buf_release(&pp.gz);
	rxml_free(pp.rx);
	if (pp.a != NULL)
		arena_free(pp.a);
}

/* ---- the command line ----------------------------------------------------- */

static const char rp_usage_text[] =
    "usage: authgate-reports [-c CONF] [-o name=value]... [--out DIR]\n"
    "           [--dry-run] [--domain D] [--before YYYY-MM-DD]\n"
    "           [--keep-days N]\n";

/* rp_help - what --help says */
static void
rp_help(void)
{
	fputs(rp_usage_text, stdout);
	printf("\n"
	       "Send the DMARC aggregate reports (RFC 9990) of the days that "
	       "are over,\n"
	       "from the history authgate keeps (dmarc_history), to the rua "
	       "of each domain.\n"
	       "\n"
	       "  -c CONF            authgate.conf (default " AG_SYSCONFDIR
	       "/authgate/authgate.conf)\n"
	       "  -o name=value      override a parameter (repeatable)\n"
	       "      --out DIR      write each report and its messages into "
	       "DIR instead of\n"
	       "                     running dmarc_report_sendmail\n"
	       "      --dry-run      say what would be sent; send, mark and "
	       "prune nothing\n"
	       "      --domain D     only the reports of policy domain D\n"
	       "      --before DAY   report the days before DAY (UTC; "
	       "default: today)\n"
	       "      --keep-days N  prune reported rows older than N days\n"
	       "                     (default: dmarc_history_keep)\n"
	       "\n"
	       "Exit status: 0 all handled, 1 something is left for the next "
	       "run,\n"
	       "2 usage or configuration error. See authgate-reports(8).\n");
}

/* rp_parse_day - YYYY-MM-DD as the Unix time of its 00:00 UTC; -1 */
static long long
rp_parse_day(const char *s)
{
	struct tm tm, back;
	unsigned long long y, m, d;
	time_t t;

	if (strlen(s) != 10 || s[4] != '-' || s[7] != '-' ||
	    str_parse_uint(s, 4, 9999, &y) == -1 ||
	    str_parse_uint(s + 5, 2, 12, &m) == -1 ||
	    str_parse_uint(s + 8, 2, 31, &d) == -1 || y < 1970 || m < 1 ||
	    d < 1)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)y - 1900;
	tm.tm_mon = (int)m - 1;
	tm.tm_mday = (int)d;
	t = timegm(&tm);
	if (gmtime_r(&t, &back) == NULL || back.tm_mday != (int)d ||
	    back.tm_mon != (int)m - 1)
		return -1; /* 2026-02-30 */
	return (long long)t;
}

/* rp_parse - the options; -1 after a message */
static int
rp_parse(int argc, char **argv, struct rp_opts *o)
{
	static const struct option lo[] = {
	    {"out", required_argument, NULL, 'O'},
	    {"dry-run", no_argument, NULL, 'n'},
	    {"domain", required_argument, NULL, 'd'},
	    {"before", required_argument, NULL, 'b'},
	    {"keep-days", required_argument, NULL, 'k'},
	    {"help", no_argument, NULL, 'h'},
	    {"version", no_argument, NULL, 'V'},
	    {NULL, 0, NULL, 0},
	};
	unsigned long long n;
	int ch;

	opterr = 0;
	while ((ch = getopt_long(argc, argv, ":c:o:hV", lo, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'o':
			o->overrides = xreallocarray(
			    o->overrides, o->noverrides + 1, sizeof(char *));
			o->overrides[o->noverrides++] = optarg;
			break;
		case 'O':
			o->out = optarg;
			break;
		case 'n':
			o->dry_run = true;
			break;
		case 'd':
			o->domain = optarg;
			break;
		case 'b':
			if ((o->before = rp_parse_day(optarg)) == -1) {
				rp_err("--before '%s': want a date YYYY-MM-DD",
				    optarg);
				return -1;
			}
			break;
		case 'k':
			if (str_parse_uint(optarg, strlen(optarg), 3660, &n) ==
				-1 ||
			    n < 1) {
				rp_err(
				    "--keep-days '%s': want 1 to 3660", optarg);
				return -1;
			}
			o->keep_days = (long long)n;
			break;
		case 'h':
			rp_help();
			exit(RP_EX_OK);
		case 'V':
			printf("authgate-reports %s\n", PACKAGE_VERSION);
			exit(RP_EX_OK);
		default:
			rp_err("%s '%s'",
			    ch == ':' ? "missing value for" : "unknown option",
			    argv[optind - 1]);
			return -1;
		}
	}
	if (optind < argc) {
		rp_err("unexpected argument '%s'", argv[optind]);
		return -1;
	}
	return 0;
}

/* rp_setup - configuration, sender, resolver, store; an exit status on
 * failure, -1 when all is ready */
static int
rp_setup(struct rp_run *r, const struct rp_opts *o)
{
	struct buf err = BUF_INIT;
	struct dns_conf dc;
	const char *f, *lt, *gt;
	char why[512];

	if ((r->cfg = config_load(
		 o->conf, o->overrides, o->noverrides, &err)) == NULL) {
		fputs(err.data, stderr);
		buf_release(&err);
		return RP_EX_USAGE;
	}
	f = r->cfg->file[0] ? r->cfg->file : "the configuration";
	log_set_level(r->cfg->log_level == LOG_DEBUG ? LOG_DEBUG : LOG_WARNING);
	if (r->cfg->dmarc_history[0] == '\0') {
		rp_err("dmarc_history is not set in %s: there is no history "
		       "to report from",
		    f);
		return RP_EX_USAGE;
	}
	/* "Name <addr>" or addr */
	lt = strchr(r->cfg->dmarc_report_from, '<');
	gt = lt ? strchr(lt, '>') : NULL;
	r->from = lt && gt ? xstrndup(lt + 1, (size_t)(gt - lt - 1))
			   : xstrdup(r->cfg->dmarc_report_from);
	if (!rp_addr_ok(r->from) || (lt != NULL) != (gt != NULL) ||
	    !rp_printable(r->cfg->dmarc_report_from)) {
		rp_err("dmarc_report_from = '%s' in %s: want the address "
		       "reports come from, in ASCII (user@example.com or "
		       "Name <user@example.com>)",
		    r->cfg->dmarc_report_from, f);
		return RP_EX_USAGE;
	}
	str_tolower(strrchr(r->from, '@') + 1);
	r->receiver = strrchr(r->from, '@') + 1;
	if (r->cfg->dmarc_report_org[0] != '\0')
		snprintf(
		    r->org, sizeof(r->org), "%s", r->cfg->dmarc_report_org);
	else if (gethostname(r->org, sizeof(r->org) - 1) == -1)
		snprintf(r->org, sizeof(r->org), "%s", r->receiver);
	if (o->out == NULL && r->cfg->dmarc_report_sendmail[0] != '/') {
		rp_err("dmarc_report_sendmail = '%s' in %s: want an absolute "
		       "path",
		    r->cfg->dmarc_report_sendmail, f);
		return RP_EX_USAGE;
	}
	config_dns_conf(r->cfg, &dc);
	if ((r->dns = dns_new(&dc, why, sizeof(why))) == NULL) {
		rp_err("%s: %s", f, why);
		return RP_EX_USAGE;
	}
	if ((r->h = dhist_open(
		 r->cfg->dmarc_history, false, 0, why, sizeof(why))) == NULL) {
		rp_err("cannot open the history: %s", why);
		return RP_EX_RETRY;
	}
	/* two runs at once (two hosts of a fleet, a slow cron job) would
	 * send the same reports twice */
	switch (dhist_try_lock(r->h, why, sizeof(why))) {
	case 1:
		break;
	case 0:
		rp_err("another authgate-reports run holds the history; not "
		       "running");
		return RP_EX_RETRY;
	default:
		rp_err("cannot lock the history: %s", why);
		return RP_EX_RETRY;
	}
	return -1;
}

/* rp_run_all - every pending period, then pruning */
static void
rp_run_all(struct rp_run *r)
{
	const struct rp_opts *o = r->o;
	struct dhist_period *ps = xcalloc(RP_MAX_PERIODS, sizeof(*ps));
	long long keep, pruned;
	char err[512];
	int n, i;

	n = dhist_pending(
	    r->h, o->before, ps, RP_MAX_PERIODS, err, sizeof(err));
	if (n == -1) {
		rp_err("reading the history: %s", err);
		r->retry = true;
	}
	if (n == RP_MAX_PERIODS) {
		rp_err("more than %d periods pending: the rest next run",
		    RP_MAX_PERIODS);
		r->retry = true;
	}
	for (i = 0; i < n; i++)
		if (o->domain == NULL ||
		    str_casecmp(o->domain, ps[i].policy_domain) == 0)
			rp_period(r, &ps[i]);
	free(ps);
	if (o->dry_run)
		return;
	keep = o->keep_days > 0 ? o->keep_days * RP_DAY
				: r->cfg->dmarc_history_keep_ms / 1000;
	if ((pruned = dhist_prune(
		 r->h, (long long)time(NULL) - keep, err, sizeof(err))) == -1) {
		rp_err("pruning the history: %s", err);
		r->retry = true;
	} else if (pruned > 0)
		printf("pruned: %lld rows older than %lld days\n", pruned,
		    keep / RP_DAY);
}

int
main(int argc, char **argv)
{
	struct rp_opts o;
	struct rp_run r;
	long long today = (long long)time(NULL);
	int rc;

	memset(&o, 0, sizeof(o));
	memset(&r, 0, sizeof(r));
	today -= today % RP_DAY;
	o.before = today;
	/* a sendmail that stops reading must not kill us: its status says */
	signal(SIGPIPE, SIG_IGN);
	log_open("authgate-reports", AG_LOG_STDERR, LOG_MAIL);
	log_set_level(LOG_WARNING);
	if (rp_parse(argc, argv, &o) == -1) {
		fputs(rp_usage_text, stderr);
		free(o.overrides);
		return RP_EX_USAGE;
	}
	if (o.before > today) {
		rp_err("--before: the days from today on are not over");
		free(o.overrides);
		return RP_EX_USAGE;
	}
	r.o = &o;
	if ((rc = rp_setup(&r, &o)) == -1) {
		rp_run_all(&r);
		rc = r.retry ? RP_EX_RETRY : RP_EX_OK;
	}
	if (r.h != NULL)
		dhist_close(r.h);
	if (r.dns != NULL)
		dns_unref(r.dns);
	free(r.from);
	config_free(r.cfg);
	free(o.overrides);
	return rc;
}
