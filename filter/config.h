/*
 * config.h - the configuration: one table row per parameter.
 *
 * config_load() reads "name = value" lines (full-line '#' comments; a line
 * starting with white space continues the previous value), applies -o
 * overrides, checks every value against its row (type, bounds, allowed
 * words) and reports every error as "file:line: message". Unknown names
 * are errors. The result is immutable and shared by all threads through
 * the snapshot (snapshot.h); reload builds a new one. Adding a parameter
 * means adding a field here, a row in config.c and an entry in
 * authgate.conf(5) - a test checks the last against the table.
 */
#ifndef AG_CONFIG_H
#define AG_CONFIG_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

struct buf;
struct cidr_set;
struct dns_conf;

#define AG_EX_CONFIG 78 /* sysexits.h EX_CONFIG */

/* What a failure class or a verdict does to the message. */
enum ag_action {
	AG_ACT_ACCEPT = 0,
	AG_ACT_TEMPFAIL,
	AG_ACT_REJECT,
	AG_ACT_QUARANTINE,
	AG_ACT_DISCARD,
};

/* dmarc_reject_mode: what a DMARC fail under p=reject does */
#define AG_DMARC_REJECT_ANALYSIS 0 /* reject unless the mail looks relayed */
#define AG_DMARC_REJECT_ALWAYS	 1
#define AG_DMARC_REJECT_NEVER	 2 /* quarantine instead */

struct strlist {
	size_t n;
	char **v;
};

struct config {
	char *file; /* the file read, or "" for built-in defaults */

	/* daemon */
	char *milter_socket;
	char *user;
	char *pid_file;
	int log_level;
	int syslog_facility;
	long long drain_timeout_ms;

	/* trust */
	char *authserv_id;
	struct cidr_set *internal_hosts;
	bool internal_auth;

	/* dns */
	struct strlist dns_servers;
	long long dns_timeout_ms;
	long long dns_cache_size;
	long long dns_cache_max_ttl_ms;
	long long dns_error_ttl_ms;
	long long dns_max_queries;
	char *dns_trust_anchor;

	/* limits */
	long long max_headers;
	long long header_size_limit;

	/* failure classes */
	int on_dns_error;
	int on_internal_error;

	/* spf */
	bool spf_enable;
	bool spf_helo;
	bool spf_check_internal;
	bool spf_received_header;
	int spf_fail_action;
	int spf_softfail_action;
	int spf_permerror_action;
	char *spf_default_explanation;
	long long spf_timeout_ms;

	/* dkim */
	bool dkim_verify;
	long long dkim_max_signatures;
	long long dkim_min_key_bits;
	int dkim_weak_key_fail; /* 1: fail, 0: policy */
	int dkim_sha1_fail;
	int dkim_l_fail;
	bool dkim_sign;
	char *key_table;
	char *signing_table;
	int dkim_canon; /* 0xHB: header, body; 1 relaxed, 0 simple */
	struct strlist dkim_sign_headers;
	struct strlist dkim_oversign_headers;
	long long dkim_signature_ttl_ms;
	int on_key_error;
	/* dmarc */
	bool dmarc_enable;
	bool dmarc_enforce;
	int dmarc_reject_mode; /* AG_DMARC_REJECT_* */
	int dmarc_multi_from;  /* 0: evaluate each domain, 1: reject */
	struct strlist dmarc_ignore_domains;
	char *dmarc_history;
	long long dmarc_history_queue;
	char *dmarc_report_org;
	char *dmarc_report_from;
	char *dmarc_report_sendmail;
	struct strlist dmarc_report_suppress;
	long long dmarc_history_keep_ms;
	char *metrics_listen; /* "" off, else ADDRESS:PORT */
	/* rules */
	bool rules_enable;
	bool rules_builtin;
	struct strlist rules_files;
	long long rules_scan_limit;
	long long rules_match_limit;
	bool rules_internal;
	bool rules_rdns;
	double spam_header_score;     /* X-Authgate-Spam, the threshold */
	double spam_quarantine_score; /* 0: never */
	double spam_reject_score;     /* 0: never */

	char **raw; /* effective value text of each row, for -p */
};

/*
 * config_load - read path (NULL: the built-in default path, which may be
 * absent) and apply overrides ("name=value" strings). Returns NULL and
 * appends one line per problem to err when anything is wrong.
 */
struct config *config_load(const char *path, const char *const *overrides,
    size_t noverrides, struct buf *err);

/* config_free - release a configuration. */
void config_free(struct config *);

/* config_print - every parameter as "name = value", in table order. */
void config_print(const struct config *, FILE *);

/* config_nparams, config_param_name - walk the table (for tests, docs). */
size_t config_nparams(void);
const char *config_param_name(size_t);

/* config_default_path - the compiled-in path of authgate.conf. */
const char *config_default_path(void);

/* config_action_name - "accept", "tempfail", ... */
const char *config_action_name(int);

/*
 * config_dns_conf - the resolver settings (dns_servers, dns_timeout, the
 * cache and the trust anchor) as dns_new() takes them. The pointers in dc
 * point into cfg and stay valid as long as it does.
 */
void config_dns_conf(const struct config *cfg, struct dns_conf *dc);

/* config_milter_socket_check - syntax check of a libmilter socket spec. */
int config_milter_socket_check(const char *, char *why, size_t whylen);

#endif
