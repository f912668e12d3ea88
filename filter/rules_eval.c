/*
 * rules_eval.c - the built-in tests of eval rules (authgate-rules(5)).
 * Each reads facts the pipeline already has: headers, SMTP facts, the
 * other checks' results, the MIME walk, the client's rDNS.
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "util/arena.h"
#include "util/cidr.h"
#include "util/str.h"
#include "mime.h"
#include "msgctx.h"
#include "rfc5322.h"
#include "rulefile.h"
#include "rules.h"
#include "rules_eval.h"

/* re_hdr - the first header of that name */
static const struct hdr *
re_hdr(const struct msg *m, const char *name)
{
	const struct hdr *h;

	for (h = m->hdrs; h != NULL; h = h->next)
		if (str_caseeq_len(h->name, h->namelen, name))
			return h;
	return NULL;
}

/* re_skip_cfws - white space and (nested) comments */
static const char *
re_skip_cfws(const char *p)
{
	int depth;

	for (;;) {
		while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n')
			p++;
		if (*p != '(')
			return p;
		for (depth = 0; *p; p++) {
			if (*p == '\\' && p[1])
				p++;
			else if (*p == '(')
				depth++;
			else if (*p == ')' && --depth == 0) {
				p++;
				break;
			}
		}
	}
}

/* re_num - digits into *v; the count of digits read */
static int
re_num(const char **pp, int max, long *v)
{
	const char *p = *pp;
	int n = 0;

	*v = 0;
	while (str_isdigit((unsigned char)*p) && n < max)
		*v = *v * 10 + (*p++ - '0'), n++;
	*pp = p;
	return n;
}

/* re_zone - a zone (+hhmm, -hhmm or an obsolete name) in seconds east */
static int
re_zone(const char *p, long *off)
{
	static const struct {
		const char *name;
		int hours;
	} names[] = {{"UT", 0}, {"UTC", 0}, {"GMT", 0}, {"Z", 0}, {"EST", -5},
	    {"EDT", -4}, {"CST", -6}, {"CDT", -5}, {"MST", -7}, {"MDT", -6},
	    {"PST", -8}, {"PDT", -7}};
	size_t i, n;
	long v;

	p = re_skip_cfws(p);
	if (*p == '+' || *p == '-') {
		int sign = *p == '-' ? -1 : 1;

		p++;
		if (re_num(&p, 4, &v) != 4 || v % 100 > 59)
			return -1;
		*off = sign * ((v / 100) * 3600 + (v % 100) * 60);
		return 0;
	}
	for (n = 0; str_isalpha((unsigned char)p[n]); n++)
		;
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strlen(names[i].name) == n &&
		    str_ncaseeq(p, names[i].name, n)) {
			*off = names[i].hours * 3600L;
			return 0;
		}
	/* other military zones and unknown names: RFC 5322 4.3 says -0000 */
	if (n >= 1 && n <= 5) {
		*off = 0;
		return 0;
	}
	return -1;
}

int
rules_parse_date(const char *s, time_t *t)
{
	static const char months[] = "janfebmaraprmayjunjulaugsepoctnovdec";
	const char *p = re_skip_cfws(s), *mp;
	long day, year, hh, mm, ss = 0, off;
	struct tm tm;
	int n;

	/* optional day-of-week "," */
	if (str_isalpha((unsigned char)*p)) {
		while (str_isalpha((unsigned char)*p))
			p++;
		p = re_skip_cfws(p);
		if (*p == ',')
			p = re_skip_cfws(p + 1);
	}
	if (re_num(&p, 2, &day) == 0 || day < 1 || day > 31)
		return -1;
	p = re_skip_cfws(p);
	if (*p == '-')
		p++;
	for (mp = months; *mp; mp += 3)
		if (str_ncaseeq(p, mp, 3))
			break;
	if (*mp == '\0')
		return -1;
	p = re_skip_cfws(p + 3);
	if (*p == '-')
		p++;
	if ((n = re_num(&p, 4, &year)) < 2)
		return -1;
	if (n == 2) /* RFC 5322 4.3 */
		year += year < 50 ? 2000 : 1900;
	else if (n == 3)
		year += 1900;
	p = re_skip_cfws(p);
	if (re_num(&p, 2, &hh) == 0 || *p != ':')
		return -1;
	p++;
	if (re_num(&p, 2, &mm) == 0)
		return -1;
	if (*p == ':') {
		p++;
		if (re_num(&p, 2, &ss) == 0)
			return -1;
	}
	if (hh > 23 || mm > 59 || ss > 60)
		return -1;
	if (re_zone(p, &off) == -1)
		return -1;
	memset(&tm, 0, sizeof(tm));
	tm.tm_year = (int)year - 1900;
	tm.tm_mon = (int)((mp - months) / 3);
	tm.tm_mday = (int)day;
	tm.tm_hour = (int)hh;
	tm.tm_min = (int)mm;
	tm.tm_sec = (int)ss;
	*t = timegm(&tm) - off;
	return 0;
}

/* re_received_time - the date of the topmost parseable Received */
static bool
re_received_time(const struct msg *m, time_t *t)
{
	const struct hdr *h;

	for (h = m->hdrs; h != NULL; h = h->next) {
		const char *semi;

		if (!str_caseeq_len(h->name, h->namelen, "Received") ||
		    (semi = memrchr(h->value, ';', h->valuelen)) == NULL)
			continue;
		if (rules_parse_date(semi + 1, t) == 0)
			return true;
	}
	return false;
}

/* re_date_vs_received - Date too far before or after the receipt */
static bool
re_date_vs_received(const struct msg *m, const struct rule *r)
{
	const struct hdr *h = re_hdr(m, "Date");
	time_t d, rt;

	/* no Received header with a date (mail made locally, a file given
	 * to authgate check): nothing to compare the Date with */
	if (h == NULL || rules_parse_date(h->value, &d) == -1 ||
	    !re_received_time(m, &rt))
		return false;
	return (double)(rt - d) > r->nargs[0] * 3600 ||
	    (double)(d - rt) > r->nargs[1] * 3600;
}

/* re_msgid_valid - "<" id-left "@" id-right ">" (loosely: no spaces) */
static bool
re_msgid_valid(const char *v)
{
	const char *p = re_skip_cfws(v), *at = NULL, *s;

	if (*p++ != '<')
		return false;
	for (s = p; *p && *p != '>'; p++) {
		if (*p == '@') {
			if (at != NULL)
				return false;
			at = p;
		} else if ((unsigned char)*p <= ' ' || *p == '<')
			return false;
	}
	if (*p != '>' || at == NULL || at == s || at + 1 == p)
		return false;
	p = re_skip_cfws(p + 1);
	return *p == '\0';
}

/* re_from_name_has_address - an address in From's display name that is
 * not From's own address */
static bool
re_from_name_has_address(struct msg *m)
{
	const struct hdr *h = re_hdr(m, "From");
	struct rfc5322_addr a[1];
	const char *v, *lt, *at;
	char own[512];

	if (h == NULL || (lt = memchr(h->value, '<', h->valuelen)) == NULL ||
	    rfc5322_addr_list(m->arena, h->value, h->valuelen, a, 1) != 1)
		return false;
	snprintf(own, sizeof(own), "%s@%s", a[0].local, a[0].domain);
	v = h->value;
	for (at = v; at < lt; at++) {
		const char *s, *e;
		size_t n;

		if (*at != '@')
			continue;
		for (s = at; s > v && !strchr(" \t\"'<(,:;", s[-1]); s--)
			;
		for (e = at + 1; e < lt && !strchr(" \t\"'>),:;", *e); e++)
			;
		n = (size_t)(e - s);
		if (s < at && e > at + 1 && memchr(at, '.', n - (at - s)) &&
		    !(strlen(own) == n && str_ncaseeq(own, s, n)))
			return true;
	}
	return false;
}

/* re_helo_addr - the HELO as an address literal ([1.2.3.4], bare) */
static int
re_helo_addr(const char *helo, unsigned char a[16])
{
	char tmp[64];
	size_t n;

	if (helo == NULL)
		return -1;
	n = strlen(helo);
	if (helo[0] == '[' && n > 2 && helo[n - 1] == ']' &&
	    n - 2 < sizeof(tmp)) {
		memcpy(tmp, helo + 1, n - 2);
		tmp[n - 2] = '\0';
		return cidr_addr_parse(tmp, a);
	}
	return cidr_addr_parse(helo, a);
}

/* re_dynamic_name - does a PTR name look like an access pool's? */
static bool
re_dynamic_name(const struct conn *c)
{
	static const char *const words[] = {"dyn", "dsl", "pool", "dhcp",
	    "cable", "ppp", "dial", "broadband", "customer", "client", "static",
	    "user", "host-", "ip-", "unassigned", NULL};
	const char *n = c->rdns_name;
	const char *first_dot;
	char oct[4][4];
	size_t i, digits = 0, len;

	if (n == NULL || c->client_family != 4)
		return false;
	first_dot = strchr(n, '.');
	len = first_dot ? (size_t)(first_dot - n) : strlen(n);
	for (i = 0; words[i]; i++)
		if (str_casestr(n, len, words[i]) != NULL)
			return true;
	/* two or more of the address's octets in the first label */
	for (i = 0; i < 4; i++)
		snprintf(oct[i], sizeof(oct[i]), "%u", c->client_addr[12 + i]);
	for (i = 0; i < 4; i++)
		if (strlen(oct[i]) > 1 && str_casestr(n, len, oct[i]))
			digits++;
	return digits >= 2;
}

/* re_result_in - is name one of the rule's arguments? */
static bool
re_result_in(const struct rule *r, const char *name)
{
	size_t i;

	for (i = 0; i < r->argc; i++)
		if (strcmp(r->args[i], name) == 0)
			return true;
	return false;
}

/* re_author_domain - the domain of the (first) From address */
static const char *
re_author_domain(struct msg *m)
{
	const struct hdr *h = re_hdr(m, "From");
	struct rfc5322_addr a[1];

	if (h == NULL ||
	    rfc5322_addr_list(m->arena, h->value, h->valuelen, a, 1) < 1)
		return NULL;
	return a[0].domain;
}

/* re_dkim_author_pass - a passing signature of the From domain (or a
 * parent or child of it) */
static bool
re_dkim_author_pass(struct msg *m)
{
	const char *ad = re_author_domain(m);
	size_t i, al;

	if (ad == NULL || *ad == '\0')
		return false;
	al = strlen(ad);
	for (i = 0; i < m->ndkim; i++) {
		const char *d = m->dkim[i].domain;
		size_t dl;

		if (m->dkim[i].result != AG_DKIM_PASS || d == NULL)
			continue;
		dl = strlen(d);
		if (str_casecmp(d, ad) == 0 ||
		    (al > dl && ad[al - dl - 1] == '.' &&
			str_casecmp(ad + al - dl, d) == 0) ||
		    (dl > al && d[dl - al - 1] == '.' &&
			str_casecmp(d + dl - al, ad) == 0))
			return true;
	}
	return false;
}

/* re_subject_all_caps - at least min letters, none lower case */
static bool
re_subject_all_caps(struct msg *m, double min)
{
	const struct hdr *h = re_hdr(m, "Subject");
	const char *s;
	size_t letters = 0;

	if (h == NULL ||
	    (s = mime_decode_header(m->arena, h->value, h->valuelen)) == NULL)
		return false;
	for (; *s; s++) {
		if (*s >= 'a' && *s <= 'z')
			return false;
		if (*s >= 'A' && *s <= 'Z')
			letters++;
	}
	return (double)letters >= min;
}

/* re_header_rcpts - addresses in To and Cc */
static size_t
re_header_rcpts(struct msg *m)
{
	struct rfc5322_addr a[AG_R5322_MAX_ADDRS];
	const struct hdr *h;
	size_t n = 0;
	int k;

	for (h = m->hdrs; h != NULL; h = h->next) {
		if (!str_caseeq_len(h->name, h->namelen, "To") &&
		    !str_caseeq_len(h->name, h->namelen, "Cc"))
			continue;
		k = rfc5322_addr_list(
		    m->arena, h->value, h->valuelen, a, AG_R5322_MAX_ADDRS);
		n += k < 0 ? AG_R5322_MAX_ADDRS + 1 : (size_t)k;
	}
	return n;
}

/* re_uri_ip - a URI host that is an address */
static bool
re_uri_ip(const struct mime_result *res)
{
	const struct mime_uri *u;

	for (u = res->uris; u != NULL; u = u->next)
		if (u->ip_literal)
			return true;
	return false;
}

/* re_rdns - rDNS tests (no conclusion when unknown or failed) */
static bool
re_rdns(const struct msg *m, enum rule_func f)
{
	const struct conn *c = m->conn;

	switch (f) {
	case RF_CLIENT_NO_RDNS:
		return c->rdns == AG_RDNS_NONE;
	case RF_CLIENT_NO_FCRDNS:
		return c->rdns == AG_RDNS_NONE || c->rdns == AG_RDNS_MISMATCH;
	default:
		return c->rdns == AG_RDNS_OK && re_dynamic_name(c);
	}
}

/* re_helo - HELO tests */
static bool
re_helo(const struct msg *m, enum rule_func f)
{
	const char *helo = m->conn->helo;
	unsigned char a[16];
	int fam;

	if (helo == NULL || *helo == '\0')
		return f == RF_HELO_NOT_FQDN;
	fam = re_helo_addr(helo, a);
	switch (f) {
	case RF_HELO_IP_LITERAL:
		return fam != -1;
	case RF_HELO_NOT_FQDN:
		return fam == -1 &&
		    (strchr(helo, '.') == NULL ||
			helo[strlen(helo) - 1] == '.');
	default:
		return fam != -1 && m->conn->client_family != 0 &&
		    memcmp(a, m->conn->client_addr, 16) != 0;
	}
}

bool
rules_eval(struct msg *m, const struct rule *r, const struct mime_result *res)
{
	const struct hdr *h;
	size_t i;

	switch (r->func) {
	case RF_DATE_MISSING:
		return re_hdr(m, "Date") == NULL;
	case RF_DATE_INVALID: {
		time_t t;

		return (h = re_hdr(m, "Date")) != NULL &&
		    rules_parse_date(h->value, &t) == -1;
	}
	case RF_DATE_VS_RECEIVED:
		return re_date_vs_received(m, r);
	case RF_MSGID_MISSING:
		return re_hdr(m, "Message-ID") == NULL;
	case RF_MSGID_INVALID:
		return (h = re_hdr(m, "Message-ID")) != NULL &&
		    !re_msgid_valid(h->value);
	case RF_FROM_MISSING:
		return re_hdr(m, "From") == NULL;
	case RF_FROM_NAME_HAS_ADDRESS:
		return re_from_name_has_address(m);
	case RF_TO_MISSING:
		return re_hdr(m, "To") == NULL && re_hdr(m, "Cc") == NULL;
	case RF_HELO_IP_LITERAL:
	case RF_HELO_NOT_FQDN:
	case RF_HELO_MISMATCH_IP:
		return re_helo(m, r->func);
	case RF_CLIENT_NO_RDNS:
	case RF_CLIENT_NO_FCRDNS:
	case RF_CLIENT_DYNAMIC_RDNS:
		return re_rdns(m, r->func);
	case RF_SPF_RESULT:
		return m->spf_mailfrom.checked &&
		    re_result_in(
			r, msg_spf_result_name(m->spf_mailfrom.result));
	case RF_SPF_HELO_RESULT:
		return m->spf_helo.checked &&
		    re_result_in(r, msg_spf_result_name(m->spf_helo.result));
	case RF_DKIM_RESULT:
		if (m->ndkim == 0)
			return re_result_in(r, "none");
		for (i = 0; i < m->ndkim; i++)
			if (re_result_in(
				r, msg_dkim_result_name(m->dkim[i].result)))
				return true;
		return false;
	case RF_DKIM_AUTHOR_PASS:
		return re_dkim_author_pass(m);
	case RF_DMARC_RESULT: {
		static const char *const names[] = {
		    "none", "pass", "fail", "temperror", "permerror"};

		if (m->ndmarc == 0)
			return re_result_in(r, "none");
		for (i = 0; i < m->ndmarc; i++)
			if (re_result_in(r, names[m->dmarc[i].result]))
				return true;
		return false;
	}
	case RF_SUBJECT_ALL_CAPS:
		return re_subject_all_caps(m, r->nargs[0]);
	case RF_SUBJECT_MISSING:
		return re_hdr(m, "Subject") == NULL;
	case RF_HTML_ONLY:
		return res->html_parts > 0 && res->text_parts == 0;
	case RF_HTML_IMAGES_LITTLE_TEXT:
		return (double)res->html_images >= r->nargs[0] &&
		    (double)res->textlen <= r->nargs[1];
	case RF_TEXT_BASE64:
		return (res->flags & MIME_F_TEXT_BASE64) != 0;
	case RF_MIME_BROKEN:
		return (res->flags &
			   (MIME_F_BAD_BOUNDARY | MIME_F_BAD_BASE64 |
			       MIME_F_BAD_QP | MIME_F_BAD_HEADER |
			       MIME_F_TOO_MANY | MIME_F_TOO_DEEP)) != 0;
	case RF_MIME_PARTS:
		return (double)res->nparts > r->nargs[0];
	case RF_RCPT_COUNT:
		return (double)m->nrcpts > r->nargs[0];
	case RF_HEADER_RCPT_COUNT:
		return (double)re_header_rcpts(m) > r->nargs[0];
	case RF_URI_IP_LITERAL:
		return re_uri_ip(res);
	case RF_URI_COUNT:
		return (double)res->nuris > r->nargs[0];
	case RF_MAILFROM_NULL:
		return m->mail_from != NULL && *m->mail_from == '\0';
	default:
		return false;
	}
}
