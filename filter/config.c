/*
 * config.c - parameter table, file parser, checks, printing (config.h).
 */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "util/buf.h"
#include "util/cidr.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "dns.h"
#include "log.h"
#include "spf_record.h"
#include "config.h"

#ifndef AG_SYSCONFDIR
#define AG_SYSCONFDIR "/etc"
#endif

#define AG_CONF_LINE_MAX 65536

enum conf_type {
	CONF_STR,
	CONF_PATH,
	CONF_BOOL,
	CONF_INT,
	CONF_TIME,
	CONF_SIZE,
	CONF_ENUM,
	CONF_LIST,
	CONF_CIDR,
	CONF_SCORE, /* a decimal number >= 0 (double) */
};

struct conf_word {
	const char *name;
	int value;
};

struct conf_param {
	const char *name;
	enum conf_type type;
	const char *def;
	long long min, max; /* INT: value; TIME: ms; SIZE: bytes */
	const struct conf_word *words;
	size_t off;
	/* an extra syntax check of STR values (of each LIST entry): -1 and
	 * a reason */
	int (*check)(const char *, char *, size_t);
};

static const struct conf_word conf_actions[] = {
    {"accept", AG_ACT_ACCEPT},
    {"tempfail", AG_ACT_TEMPFAIL},
    {"reject", AG_ACT_REJECT},
    {NULL, 0},
};

static const struct conf_word conf_dmarc_reject[] = {
    {"analysis", AG_DMARC_REJECT_ANALYSIS},
    {"always", AG_DMARC_REJECT_ALWAYS},
    {"never", AG_DMARC_REJECT_NEVER},
    {NULL, 0},
};

static const struct conf_word conf_dmarc_multi[] = {
    {"evaluate_all", 0},
    {"reject", 1},
    {NULL, 0},
};

/* What an SPF result does (none: only annotate). */
static const struct conf_word conf_spf_actions[] = {
    {"none", AG_ACT_ACCEPT},
    {"tempfail", AG_ACT_TEMPFAIL},
    {"reject", AG_ACT_REJECT},
    {NULL, 0},
};

/* conf_check_explanation - an SPF explain-string (RFC 7208 6.2, 7.1) */
static int
conf_check_explanation(const char *v, char *why, size_t whylen)
{
	const char *reason;

	if (spf_macro_check(v, true, &reason) == -1) {
		snprintf(why, whylen, "'%s': %s", v, reason);
		return -1;
	}
	return 0;
}

static const struct conf_word conf_dkim_weak[] = {
    {"policy", 0},
    {"fail", 1},
    {NULL, 0},
};

static const struct conf_word conf_dkim_l[] = {
    {"accept", 0},
    {"fail", 1},
    {NULL, 0},
};

/* header/body canonicalization, as libopendkim numbers them */
static const struct conf_word conf_canon[] = {
    {"relaxed/relaxed", 0x11},
    {"relaxed/simple", 0x10},
    {"simple/relaxed", 0x01},
    {"simple/simple", 0x00},
    {"relaxed", 0x10},
    {"simple", 0x00},
    {NULL, 0},
};

/* conf_check_history - "", sqlite:/path or postgresql://... */
static int
conf_check_history(const char *v, char *why, size_t whylen)
{
	if (*v == '\0' || strncmp(v, "sqlite:/", 8) == 0 ||
	    strncmp(v, "postgresql://", 13) == 0 ||
	    strncmp(v, "postgres://", 11) == 0)
		return 0;
	snprintf(why, whylen,
	    "'%s': want sqlite:/absolute/path or "
	    "postgresql://user@host/db",
	    v);
	return -1;
}

/* conf_check_listen - "", or ADDRESS:PORT */
static int
conf_check_listen(const char *v, char *why, size_t whylen)
{
	struct sockaddr_storage ss;

	if (*v == '\0' || cidr_hostport_parse(v, &ss) == 0)
		return 0;
	snprintf(why, whylen,
	    "'%s' is not ADDRESS:PORT (127.0.0.1:9894, [::1]:9894)", v);
	return -1;
}

/* conf_check_abspath - a list entry that must be an absolute path: the
 * daemon works in "/" and reloads must read the files it started with */
static int
conf_check_abspath(const char *v, char *why, size_t whylen)
{
	if (*v == '/')
		return 0;
	snprintf(why, whylen, "'%s' is not an absolute path", v);
	return -1;
}

/* conf_check_signing_table - a path, or refile:path */
static int
conf_check_signing_table(const char *v, char *why, size_t whylen)
{
	const char *p = strncmp(v, "refile:", 7) == 0 ? v + 7 : v;

	if (*v != '\0' && *p != '/') {
		snprintf(why, whylen,
		    "'%s' is not an absolute path (or "
		    "refile:/path)",
		    v);
		return -1;
	}
	return 0;
}

static const struct conf_word conf_levels[] = {
    {"err", LOG_ERR},
    {"warning", LOG_WARNING},
    {"notice", LOG_NOTICE},
    {"info", LOG_INFO},
    {"debug", LOG_DEBUG},
    {NULL, 0},
};

static const struct conf_word conf_facilities[] = {
    {"mail", LOG_MAIL},
    {"daemon", LOG_DAEMON},
    {"user", LOG_USER},
    {"local0", LOG_LOCAL0},
    {"local1", LOG_LOCAL1},
    {"local2", LOG_LOCAL2},
    {"local3", LOG_LOCAL3},
    {"local4", LOG_LOCAL4},
    {"local5", LOG_LOCAL5},
    {"local6", LOG_LOCAL6},
    {"local7", LOG_LOCAL7},
    {NULL, 0},
};

#define OFF(f)	       offsetof(struct config, f), NULL
#define OFFC(f, check) offsetof(struct config, f), check
#define SEC	       1000LL
#define DAY	       (86400LL * SEC)

/* One row per parameter: the only place a setting is defined. */
static const struct conf_param conf_params[] = {
    /* name             type       default  min  max  words  where */
    {"milter_socket", CONF_STR, "inet:8894@127.0.0.1", 0, 0, NULL,
	OFFC(milter_socket, config_milter_socket_check)},
    {"user", CONF_STR, "authgate", 0, 0, NULL, OFF(user)},
    {"pid_file", CONF_PATH, "/run/authgate/authgate.pid", 0, 0, NULL,
	OFF(pid_file)},
    {"log_level", CONF_ENUM, "info", 0, 0, conf_levels, OFF(log_level)},
    {"syslog_facility", CONF_ENUM, "mail", 0, 0, conf_facilities,
	OFF(syslog_facility)},
    {"drain_timeout", CONF_TIME, "30s", 0, 3600 * SEC, NULL,
	OFF(drain_timeout_ms)},
    {"authserv_id", CONF_STR, "", 0, 0, NULL, OFF(authserv_id)},
    {"internal_hosts", CONF_CIDR, "127.0.0.0/8, ::1", 0, 0, NULL,
	OFF(internal_hosts)},
    {"internal_auth", CONF_BOOL, "yes", 0, 0, NULL, OFF(internal_auth)},
    {"dns_servers", CONF_LIST, "", 0, 0, NULL, OFF(dns_servers)},
    {"dns_timeout", CONF_TIME, "5s", 100, 60 * SEC, NULL, OFF(dns_timeout_ms)},
    {"dns_cache_size", CONF_INT, "10000", 0, 10000000, NULL,
	OFF(dns_cache_size)},
    {"dns_cache_max_ttl", CONF_TIME, "1d", 0, 7 * DAY, NULL,
	OFF(dns_cache_max_ttl_ms)},
    {"dns_error_ttl", CONF_TIME, "10s", 0, 3600 * SEC, NULL,
	OFF(dns_error_ttl_ms)},
    {"dns_max_queries_per_message", CONF_INT, "200", 10, 10000, NULL,
	OFF(dns_max_queries)},
    {"dns_trust_anchor", CONF_PATH, "", 0, 0, NULL, OFF(dns_trust_anchor)},
    {"max_headers", CONF_INT, "1000", 10, 100000, NULL, OFF(max_headers)},
    {"header_size_limit", CONF_SIZE, "100k", 1024, 16 * 1048576LL, NULL,
	OFF(header_size_limit)},
    {"on_dns_error", CONF_ENUM, "accept", 0, 0, conf_actions,
	OFF(on_dns_error)},
    {"on_internal_error", CONF_ENUM, "tempfail", 0, 0, conf_actions,
	OFF(on_internal_error)},
    {"spf_enable", CONF_BOOL, "yes", 0, 0, NULL, OFF(spf_enable)},
    {"spf_helo", CONF_BOOL, "yes", 0, 0, NULL, OFF(spf_helo)},
    {"spf_check_internal", CONF_BOOL, "no", 0, 0, NULL,
	OFF(spf_check_internal)},
    {"spf_received_header", CONF_BOOL, "no", 0, 0, NULL,
	OFF(spf_received_header)},
    {"spf_fail_action", CONF_ENUM, "none", 0, 0, conf_spf_actions,
	OFF(spf_fail_action)},
    {"spf_softfail_action", CONF_ENUM, "none", 0, 0, conf_spf_actions,
	OFF(spf_softfail_action)},
    {"spf_permerror_action", CONF_ENUM, "none", 0, 0, conf_spf_actions,
	OFF(spf_permerror_action)},
    {"spf_default_explanation", CONF_STR,
	"%{i} is not allowed to send mail for %{d}", 0, 0, NULL,
	OFFC(spf_default_explanation, conf_check_explanation)},
    {"spf_timeout", CONF_TIME, "20s", 1000, 300 * SEC, NULL,
	OFF(spf_timeout_ms)},
    {"dkim_verify", CONF_BOOL, "yes", 0, 0, NULL, OFF(dkim_verify)},
    {"dkim_max_signatures", CONF_INT, "10", 1, 50, NULL,
	OFF(dkim_max_signatures)},
    {"dkim_min_key_bits", CONF_INT, "1024", 512, 8192, NULL,
	OFF(dkim_min_key_bits)},
    {"dkim_weak_key", CONF_ENUM, "policy", 0, 0, conf_dkim_weak,
	OFF(dkim_weak_key_fail)},
    {"dkim_rsa_sha1", CONF_ENUM, "policy", 0, 0, conf_dkim_weak,
	OFF(dkim_sha1_fail)},
    {"dkim_l_tag", CONF_ENUM, "accept", 0, 0, conf_dkim_l, OFF(dkim_l_fail)},
    {"dkim_sign", CONF_BOOL, "yes", 0, 0, NULL, OFF(dkim_sign)},
    {"key_table", CONF_PATH, "", 0, 0, NULL, OFF(key_table)},
    {"signing_table", CONF_STR, "", 0, 0, NULL,
	OFFC(signing_table, conf_check_signing_table)},
    {"dkim_canonicalization", CONF_ENUM, "relaxed/relaxed", 0, 0, conf_canon,
	OFF(dkim_canon)},
    {"dkim_sign_headers", CONF_LIST,
	"From, Reply-To, Subject, Date, To, Cc, Message-ID, In-Reply-To, "
	"References, MIME-Version, Content-Type, Content-Transfer-Encoding, "
	"Resent-Date, Resent-From, Resent-To, Resent-Cc, List-Id, List-Help, "
	"List-Unsubscribe, List-Subscribe, List-Post, List-Owner, "
	"List-Archive, Sender",
	0, 0, NULL, OFF(dkim_sign_headers)},
    {"dkim_oversign_headers", CONF_LIST,
	"From, To, Subject, Date, Message-ID, Reply-To, Cc, Content-Type, "
	"MIME-Version",
	0, 0, NULL, OFF(dkim_oversign_headers)},
    {"dkim_signature_ttl", CONF_TIME, "0", 0, 366 * DAY, NULL,
	OFF(dkim_signature_ttl_ms)},
    {"on_key_error", CONF_ENUM, "tempfail", 0, 0, conf_actions,
	OFF(on_key_error)},
    {"dmarc_enable", CONF_BOOL, "yes", 0, 0, NULL, OFF(dmarc_enable)},
    {"dmarc_enforce", CONF_BOOL, "yes", 0, 0, NULL, OFF(dmarc_enforce)},
    {"dmarc_reject_mode", CONF_ENUM, "analysis", 0, 0, conf_dmarc_reject,
	OFF(dmarc_reject_mode)},
    {"dmarc_multi_from", CONF_ENUM, "evaluate_all", 0, 0, conf_dmarc_multi,
	OFF(dmarc_multi_from)},
    {"dmarc_ignore_domains", CONF_LIST, "", 0, 0, NULL,
	OFF(dmarc_ignore_domains)},
    {"dmarc_history", CONF_STR, "", 0, 0, NULL,
	OFFC(dmarc_history, conf_check_history)},
    {"dmarc_history_queue", CONF_INT, "10000", 10, 10000000, NULL,
	OFF(dmarc_history_queue)},
    {"dmarc_history_keep", CONF_TIME, "30d", DAY, 3660 * DAY, NULL,
	OFF(dmarc_history_keep_ms)},
    {"dmarc_report_org", CONF_STR, "", 0, 0, NULL, OFF(dmarc_report_org)},
    {"dmarc_report_from", CONF_STR, "", 0, 0, NULL, OFF(dmarc_report_from)},
    {"dmarc_report_sendmail", CONF_PATH, "/usr/sbin/sendmail", 0, 0, NULL,
	OFF(dmarc_report_sendmail)},
    {"dmarc_report_suppress", CONF_LIST, "", 0, 0, NULL,
	OFF(dmarc_report_suppress)},
    {"metrics_listen", CONF_STR, "", 0, 0, NULL,
	OFFC(metrics_listen, conf_check_listen)},
    {"rules_enable", CONF_BOOL, "yes", 0, 0, NULL, OFF(rules_enable)},
    {"rules_builtin", CONF_BOOL, "yes", 0, 0, NULL, OFF(rules_builtin)},
    {"rules_files", CONF_LIST, "", 0, 0, NULL,
	OFFC(rules_files, conf_check_abspath)},
    {"rules_scan_limit", CONF_SIZE, "1m", 1024, 64 * 1048576LL, NULL,
	OFF(rules_scan_limit)},
    {"rules_match_limit", CONF_INT, "100000", 1000, 100000000, NULL,
	OFF(rules_match_limit)},
    {"rules_internal", CONF_BOOL, "no", 0, 0, NULL, OFF(rules_internal)},
    {"rules_rdns", CONF_BOOL, "yes", 0, 0, NULL, OFF(rules_rdns)},
    {"spam_header_score", CONF_SCORE, "5", 0, 1000, NULL,
	OFF(spam_header_score)},
    {"spam_quarantine_score", CONF_SCORE, "0", 0, 1000, NULL,
	OFF(spam_quarantine_score)},
    {"spam_reject_score", CONF_SCORE, "15", 0, 1000, NULL,
	OFF(spam_reject_score)},
};

#define AG_CONF_N (sizeof(conf_params) / sizeof(conf_params[0]))

/* config_nparams - rows in the table */
size_t
config_nparams(void)
{
	return AG_CONF_N;
}

/* config_param_name - name of row i */
const char *
config_param_name(size_t i)
{
	return i < AG_CONF_N ? conf_params[i].name : NULL;
}

/* config_default_path - compiled-in config file */
const char *
config_default_path(void)
{
	return AG_SYSCONFDIR "/authgate/authgate.conf";
}

/* config_action_name - printable action */
const char *
config_action_name(int a)
{
	static const char *const names[] = {
	    "accept", "tempfail", "reject", "quarantine", "discard"};

	if (a < 0 || (size_t)a >= sizeof(names) / sizeof(names[0]))
		return "?";
	return names[a];
}

/* conf_find - row of a name, or NULL */
static const struct conf_param *
conf_find(const char *name, size_t len, size_t *idx)
{
	size_t i;

	for (i = 0; i < AG_CONF_N; i++)
		if (strlen(conf_params[i].name) == len &&
		    memcmp(conf_params[i].name, name, len) == 0) {
			*idx = i;
			return &conf_params[i];
		}
	return NULL;
}

/* conf_words_list - "a, b or c" for error messages */
static void
conf_words_list(const struct conf_word *w, char *out, size_t outlen)
{
	size_t n = 0;
	int i;

	out[0] = '\0';
	for (i = 0; w[i].name != NULL && n < outlen; i++)
		n += (size_t)snprintf(out + n, outlen - n, "%s%s",
		    i == 0 ? "" : (w[i + 1].name ? ", " : " or "), w[i].name);
}

/* conf_fmt_time - canonical text of a duration */
static void
conf_fmt_time(long long ms, char *out, size_t len)
{
	if (ms != 0 && ms % DAY == 0)
		snprintf(out, len, "%lldd", ms / DAY);
	else if (ms != 0 && ms % (3600 * SEC) == 0)
		snprintf(out, len, "%lldh", ms / (3600 * SEC));
	else if (ms != 0 && ms % (60 * SEC) == 0)
		snprintf(out, len, "%lldm", ms / (60 * SEC));
	else if (ms % SEC == 0)
		snprintf(out, len, "%llds", ms / SEC);
	else
		snprintf(out, len, "%lldms", ms);
}

/* conf_fmt_size - canonical text of a size */
static void
conf_fmt_size(long long b, char *out, size_t len)
{
	if (b != 0 && b % 1073741824LL == 0)
		snprintf(out, len, "%lldg", b / 1073741824LL);
	else if (b != 0 && b % 1048576 == 0)
		snprintf(out, len, "%lldm", b / 1048576);
	else if (b != 0 && b % 1024 == 0)
		snprintf(out, len, "%lldk", b / 1024);
	else
		snprintf(out, len, "%lld", b);
}

/* conf_list_parse - split on commas and white space */
static void
conf_list_parse(const char *s, struct strlist *l)
{
	while (*s) {
		size_t n = 0;

		while (*s == ',' || str_isspace((unsigned char)*s))
			s++;
		if (*s == '\0')
			break;
		while (s[n] && s[n] != ',' && !str_isspace((unsigned char)s[n]))
			n++;
		l->v = xreallocarray(l->v, l->n + 1, sizeof(*l->v));
		l->v[l->n++] = xstrndup(s, n);
		s += n;
	}
}

/* conf_list_free - release a list */
static void
conf_list_free(struct strlist *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	l->v = NULL;
	l->n = 0;
}

/*
 * conf_set - check value against row p and store it in cfg. Returns -1
 * with a message in why; the stored field is left unchanged then.
 */
static int
conf_set(
    struct config *cfg, size_t idx, const char *value, char *why, size_t whylen)
{
	const struct conf_param *p = &conf_params[idx];
	char *field = (char *)cfg + p->off, canon[64], words[256];
	long long v = 0;
	bool b;
	int i;

	canon[0] = '\0';
	switch (p->type) {
	case CONF_STR:
	case CONF_PATH:
		if (p->type == CONF_PATH && value[0] != '\0' &&
		    value[0] != '/') {
			snprintf(
			    why, whylen, "'%s' is not an absolute path", value);
			return -1;
		}
		if (p->check != NULL && p->check(value, why, whylen) == -1)
			return -1;
		free(*(char **)field);
		*(char **)field = xstrdup(value);
		break;
	case CONF_BOOL:
		if (str_parse_bool(value, &b) == -1) {
			snprintf(why, whylen, "'%s' is not yes or no", value);
			return -1;
		}
		*(bool *)field = b;
		snprintf(canon, sizeof(canon), "%s", b ? "yes" : "no");
		break;
	case CONF_INT:
	case CONF_TIME:
	case CONF_SIZE: {
		int rc;
		unsigned long long u;

		if (p->type == CONF_TIME)
			rc = str_parse_time_ms(value, &v);
		else if (p->type == CONF_SIZE)
			rc = str_parse_size(value, &v);
		else {
			rc =
			    str_parse_uint(value, strlen(value), LLONG_MAX, &u);
			v = (long long)u;
		}
		if (rc == -1) {
			snprintf(why, whylen, "'%s' is not a %s", value,
			    p->type == CONF_TIME ? "time (e.g. 5s, 500ms, 2m)"
				: p->type == CONF_SIZE
				? "size (e.g. 512, 100k, 10m)"
				: "number");
			return -1;
		}
		if (v < p->min || (p->max != 0 && v > p->max)) {
			char lo[32], hi[32];

			if (p->type == CONF_TIME) {
				conf_fmt_time(p->min, lo, sizeof(lo));
				conf_fmt_time(p->max, hi, sizeof(hi));
			} else if (p->type == CONF_SIZE) {
				conf_fmt_size(p->min, lo, sizeof(lo));
				conf_fmt_size(p->max, hi, sizeof(hi));
			} else {
				snprintf(lo, sizeof(lo), "%lld", p->min);
				snprintf(hi, sizeof(hi), "%lld", p->max);
			}
			snprintf(why, whylen, "'%s' is out of range (%s..%s)",
			    value, lo, hi);
			return -1;
		}
		*(long long *)field = v;
		if (p->type == CONF_TIME)
			conf_fmt_time(v, canon, sizeof(canon));
		else if (p->type == CONF_SIZE)
			conf_fmt_size(v, canon, sizeof(canon));
		break;
	}
	case CONF_ENUM:
		for (i = 0; p->words[i].name != NULL; i++)
			if (str_casecmp(value, p->words[i].name) == 0)
				break;
		if (p->words[i].name == NULL) {
			conf_words_list(p->words, words, sizeof(words));
			snprintf(
			    why, whylen, "'%s' is not one of %s", value, words);
			return -1;
		}
		*(int *)field = p->words[i].value;
		snprintf(canon, sizeof(canon), "%s", p->words[i].name);
		break;
	case CONF_LIST: {
		struct strlist l = {0};
		size_t k;

		conf_list_parse(value, &l);
		for (k = 0; p->check != NULL && k < l.n; k++)
			if (p->check(l.v[k], why, whylen) == -1) {
				conf_list_free(&l);
				return -1;
			}
		conf_list_free((struct strlist *)field);
		*(struct strlist *)field = l;
		break;
	}
	case CONF_SCORE: {
		char *end;
		double d;

		errno = 0;
		d = strtod(value, &end);
		if (end == value || *end != '\0' || errno != 0 || d < p->min ||
		    d > p->max) {
			snprintf(why, whylen,
			    "'%s' is not a score from %lld to %lld", value,
			    p->min, p->max);
			return -1;
		}
		*(double *)field = d;
		snprintf(canon, sizeof(canon), "%g", d);
		break;
	}
	case CONF_CIDR: {
		struct cidr_set *set;

		if ((set = cidr_set_parse(value, why, whylen)) == NULL)
			return -1;
		cidr_set_free(*(struct cidr_set **)field);
		*(struct cidr_set **)field = set;
		break;
	}
	}
	free(cfg->raw[idx]);
	cfg->raw[idx] = xstrdup(canon[0] ? canon : value);
	return 0;
}

/* config_milter_socket_check - inet:port@host, inet6:..., unix:/path */
int
config_milter_socket_check(const char *s, char *why, size_t whylen)
{
	const char *at, *port;
	unsigned long long n;

	if (strncmp(s, "unix:", 5) == 0 || strncmp(s, "local:", 6) == 0) {
		const char *path = strchr(s, ':') + 1;

		if (path[0] != '/') {
			snprintf(why, whylen,
			    "'%s': a unix socket needs an absolute path", s);
			return -1;
		}
		return 0;
	}
	if (strncmp(s, "inet:", 5) == 0)
		port = s + 5;
	else if (strncmp(s, "inet6:", 6) == 0)
		port = s + 6;
	else {
		snprintf(why, whylen,
		    "'%s' is not inet:PORT@HOST, inet6:PORT@HOST or unix:/PATH",
		    s);
		return -1;
	}
	at = strchr(port, '@');
	if (str_parse_uint(port, at ? (size_t)(at - port) : strlen(port), 65535,
		&n) == -1 ||
	    n == 0) {
		snprintf(why, whylen, "'%s': bad port", s);
		return -1;
	}
	if (at != NULL && at[1] == '\0') {
		snprintf(why, whylen, "'%s': empty host after '@'", s);
		return -1;
	}
	return 0;
}

/* conf_apply - one "name = value" (or name=value) assignment */
static void
conf_apply(struct config *cfg, const char *file, unsigned line,
    const char *text, size_t len, unsigned *seen, struct buf *err)
{
	const char *eq, *name = text, *val;
	size_t nlen, vlen, idx;
	char why[512], *value;
	char where[PATH_MAX + 32];

	if (line)
		snprintf(where, sizeof(where), "%s:%u", file, line);
	else
		snprintf(where, sizeof(where), "%s", file);
	if ((eq = memchr(text, '=', len)) == NULL) {
		buf_addf(err, "%s: expected 'name = value', got '%.*s'\n",
		    where, (int)(len > 80 ? 80 : len), text);
		return;
	}
	nlen = (size_t)(eq - text);
	str_trim(&name, &nlen);
	val = eq + 1;
	vlen = len - (size_t)(val - text);
	str_trim(&val, &vlen);
	if (conf_find(name, nlen, &idx) == NULL) {
		buf_addf(err, "%s: unknown parameter '%.*s'\n", where,
		    (int)(nlen > 80 ? 80 : nlen), name);
		return;
	}
	if (seen != NULL) {
		if (seen[idx] != 0) {
			buf_addf(err,
			    "%s: '%s' is set again (first set at line %u)\n",
			    where, conf_params[idx].name, seen[idx]);
			return;
		}
		seen[idx] = line;
	}
	value = xstrndup(val, vlen);
	if (conf_set(cfg, idx, value, why, sizeof(why)) == -1)
		buf_addf(
		    err, "%s: %s: %s\n", where, conf_params[idx].name, why);
	free(value);
}

/* conf_read_file - parse a config file into cfg; 1 if the file is absent */
static int
conf_read_file(
    struct config *cfg, const char *path, bool must_exist, struct buf *err)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0, start = 0, seen[AG_CONF_N];
	struct buf stmt = BUF_INIT;

	if ((fp = fopen(path, "r")) == NULL) {
		if (errno == ENOENT && !must_exist)
			return 1;
		buf_addf(err, "%s: cannot open: %s\n", path, strerror(errno));
		return -1;
	}
	memset(seen, 0, sizeof(seen));
	while ((n = getline(&line, &cap, fp)) != -1) {
		const char *p = line;
		size_t len = (size_t)n;

		lineno++;
		if (len > AG_CONF_LINE_MAX) {
			buf_addf(err, "%s:%u: line too long\n", path, lineno);
			continue;
		}
		if (memchr(line, '\0', len) != NULL) {
			buf_addf(
			    err, "%s:%u: NUL byte in line\n", path, lineno);
			continue;
		}
		/* A continuation line extends the statement before it. */
		if (len > 0 && (line[0] == ' ' || line[0] == '\t')) {
			str_trim(&p, &len);
			if (len == 0 || p[0] == '#')
				continue;
			if (stmt.len == 0) {
				buf_addf(err,
				    "%s:%u: continuation line with "
				    "nothing to continue\n",
				    path, lineno);
				continue;
			}
			buf_addch(&stmt, ' ');
			buf_add(&stmt, p, len);
			continue;
		}
		if (stmt.len)
			conf_apply(
			    cfg, path, start, stmt.data, stmt.len, seen, err);
		buf_reset(&stmt);
		str_trim(&p, &len);
		if (len == 0 || p[0] == '#')
			continue;
		buf_add(&stmt, p, len);
		start = lineno;
	}
	if (ferror(fp))
		buf_addf(err, "%s: read error: %s\n", path, strerror(errno));
	if (stmt.len)
		conf_apply(cfg, path, start, stmt.data, stmt.len, seen, err);
	buf_release(&stmt);
	free(line);
	fclose(fp);
	return 0;
}

/* config_load - defaults, file, overrides */
struct config *
config_load(const char *path, const char *const *overrides, size_t noverrides,
    struct buf *err)
{
	struct config *cfg = xcalloc(1, sizeof(*cfg));
	size_t i, before = err->len;
	char why[512];
	int rc;

	cfg->raw = xcalloc(AG_CONF_N, sizeof(char *));
	for (i = 0; i < AG_CONF_N; i++)
		if (conf_set(cfg, i, conf_params[i].def, why, sizeof(why)) ==
		    -1)
			/* A bad built-in default is our bug, not the admin's. */
			buf_addf(err, "built-in default of %s: %s\n",
			    conf_params[i].name, why);
	rc = conf_read_file(
	    cfg, path ? path : config_default_path(), path != NULL, err);
	cfg->file =
	    xstrdup(rc == 0 ? (path ? path : config_default_path()) : "");
	for (i = 0; i < noverrides; i++)
		conf_apply(cfg, "-o", 0, overrides[i], strlen(overrides[i]),
		    NULL, err);
	if (err->len != before) {
		config_free(cfg);
		return NULL;
	}
	return cfg;
}

/* config_free - release everything */
void
config_free(struct config *cfg)
{
	size_t i;

	if (cfg == NULL)
		return;
	for (i = 0; i < AG_CONF_N; i++) {
		char *field = (char *)cfg + conf_params[i].off;

		switch (conf_params[i].type) {
		case CONF_STR:
		case CONF_PATH:
			free(*(char **)field);
			break;
		case CONF_LIST:
			conf_list_free((struct strlist *)field);
			break;
		case CONF_CIDR:
			cidr_set_free(*(struct cidr_set **)field);
			break;
		default:
			break;
		}
		free(cfg->raw[i]);
	}
	free(cfg->raw);
	free(cfg->file);
	free(cfg);
}

/* config_print - effective settings */
void
config_print(const struct config *cfg, FILE *fp)
{
	size_t i;

	fprintf(fp, "# authgate effective configuration (%s)\n",
	    cfg->file[0] ? cfg->file : "built-in defaults");
	for (i = 0; i < AG_CONF_N; i++)
		fprintf(fp, "%s = %s\n", conf_params[i].name, cfg->raw[i]);
}

/* config_dns_conf - the dns_* settings as dns_new() takes them */
void
config_dns_conf(const struct config *cfg, struct dns_conf *dc)
{
	dc->servers = (const char *const *)cfg->dns_servers.v;
	dc->nservers = cfg->dns_servers.n;
	dc->timeout_ms = cfg->dns_timeout_ms;
	dc->cache_size = cfg->dns_cache_size;
	dc->max_ttl_ms = cfg->dns_cache_max_ttl_ms;
	dc->error_ttl_ms = cfg->dns_error_ttl_ms;
	dc->trust_anchor = cfg->dns_trust_anchor;
}
