/*
 * msgctx.h - struct conn, struct msg, the header list and the stage driver.
 *
 * The adapters (milter.c for the daemon, cli.c for `authgate check`) feed
 * SMTP facts and message bytes in through the conn_* and msg_* calls; the
 * driver runs each check of the snapshot's table at each stage; at eom the
 * verdict (policy.c) lands in m->verdict and the adapter carries it out.
 * Nothing here knows whether an MTA is attached.
 *
 * Ownership: a conn owns a connection arena (client facts, lives until
 * close) and pins one snapshot for its whole life; a msg owns a message
 * arena (MAIL FROM to eom/abort). Everything a check allocates for a
 * message lives in m->arena and is freed by msg_free(), on every path.
 * Pointers into an arena are valid until that arena is freed.
 *
 * Errors: calls return nothing to branch on; an allocation failure or a
 * check's internal error sets a class bit in m->errors and the message
 * goes on; policy.c turns the classes into an action. Each conn is used by
 * one thread at a time (libmilter's per-connection thread).
 */
#ifndef AG_MSGCTX_H
#define AG_MSGCTX_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "util/str.h"
#include "ar.h"
#include "config.h"
#include "dns.h"
#include "log.h"
#include "snapshot.h"

struct arena;
struct sockaddr;

/* Failure classes: the verdict maps each to an action from config. */
#define AG_ERR_INTERNAL 0x01 /* our side: out of memory, library error */
#define AG_ERR_DNS	0x02 /* temporary DNS failure a check could not pass */
#define AG_ERR_KEY	0x04 /* a signing key could not be used */

/* Message flags (limits hit; the message goes on). */
#define AG_MSG_TRUNC_HEADERS 0x01 /* more than max_headers: rest not kept */
#define AG_MSG_TRUNC_HEADER  0x02 /* a header over header_size_limit */

struct hdr {
	const char *name;
	size_t namelen;
	const char *value; /* as sent: leading space kept, folds as CRLF */
	size_t valuelen;
	struct hdr *next;
};

enum ag_edit {
	AG_EDIT_INSERT, /* insert at the top (index 0) */
	AG_EDIT_DELETE, /* delete the index-th header of that name */
};

struct hdr_edit {
	enum ag_edit op;
	const char *name;
	const char *value; /* INSERT: folded with "\n" + tab */
	int index;	   /* DELETE: 1-based among same-name headers */
	struct hdr_edit *next;
};

/* SPF results (RFC 7208 2.6), in the order A-R and logs name them. */
enum ag_spf_result {
	AG_SPF_NONE = 0,
	AG_SPF_NEUTRAL,
	AG_SPF_PASS,
	AG_SPF_FAIL,
	AG_SPF_SOFTFAIL,
	AG_SPF_TEMPERROR,
	AG_SPF_PERMERROR,
};

struct spf_outcome {
	bool checked;
	enum ag_spf_result result;
	const char *identity; /* the sender checked (postmaster@helo for <>) */
	const char *domain;   /* its domain */
	const char *reason;   /* what decided it: a term, an error */
	const char *explanation; /* fail: the exp= text, expanded */
};

/* DKIM results (RFC 8601 2.7.1), one per signature. */
enum ag_dkim_result {
	AG_DKIM_NONE = 0,
	AG_DKIM_PASS,
	AG_DKIM_FAIL,
	AG_DKIM_POLICY,
	AG_DKIM_NEUTRAL,
	AG_DKIM_TEMPERROR,
	AG_DKIM_PERMERROR,
};

struct dkim_outcome {
	enum ag_dkim_result result;
	const char *domain;    /* d= */
	const char *selector;  /* s= */
	const char *algorithm; /* a= */
	const char *b;	       /* first 8 characters of b= */
	const char *identity;  /* i= */
	const char *reason;
	int bits;
	long long l; /* l= body length, -1 without */
};

/* DMARC results (RFC 9989 9.2), one per RFC5322.From domain. */
enum ag_dmarc_result {
	AG_DMARC_NONE = 0,
	AG_DMARC_PASS,
	AG_DMARC_FAIL,
	AG_DMARC_TEMPERROR,
	AG_DMARC_PERMERROR,
};

/* What was done with a DMARC result (the report's disposition). */
enum ag_dmarc_disposition {
	AG_DMARC_DIS_NONE = 0,
	AG_DMARC_DIS_QUARANTINE,
	AG_DMARC_DIS_REJECT,
};

struct ar_result;
struct dmarc_record;

struct dmarc_outcome {
	enum ag_dmarc_result result;
	const char *from_domain;   /* the Author Domain (A-labels, lower) */
	const char *policy_domain; /* where the applied record was found */
	const char *org_domain;	   /* the Author Domain's Organizational one */
	const struct dmarc_record *record; /* the applied record, or NULL */
	int published;		/* p, sp or np as published (policy enum) */
	int policy;		/* after t=y: what the owner asks for */
	const char *policy_tag; /* "p", "sp" or "np" */
	bool spf_aligned, dkim_aligned;
	const char *spf_domain;	 /* the SPF-authenticated domain, if pass */
	const char *dkim_domain; /* an aligned DKIM d=, else the first pass */
	const char *reason;
	enum ag_dmarc_disposition disposition; /* set by policy.c */
	const char *override; /* RFC 9990 reason type when not the policy */
	struct ar_result *ar; /* its A-R result (policy.c adds dis=) */
};

/* A header a check wants added (Received-SPF, DKIM-Signature, ...). */
struct add_hdr {
	const char *name;
	const char *value; /* folded with "\n\t" where long */
	struct add_hdr *next;
};

/* Reverse DNS of the client, as the rules see it. */
enum ag_rdns {
	AG_RDNS_UNKNOWN = 0, /* not looked up (internal, disabled) */
	AG_RDNS_NONE,	     /* no PTR record */
	AG_RDNS_MISMATCH,    /* PTR names that do not resolve back */
	AG_RDNS_OK,	     /* forward-confirmed (FCrDNS) */
	AG_RDNS_TEMPERROR,   /* DNS failed: no conclusion */
};

/* A rule that hit (rules.c), for the report header, logs and the CLI. */
struct rule_hit {
	const char *name;
	double score;
	const char *describe;
};

struct spf_msg;
struct dkimv_msg;
struct dnsbl_conn;
struct dnsbl_msg;
struct rules_msg;
struct dkims_msg;
struct dmarc_msg;

struct verdict {
	enum ag_action action;
	const char *rcode;	/* "550", "451" */
	const char *xcode;	/* "5.7.1" */
	const char *text;	/* human text of the reply */
	const char *quarantine; /* reason, for AG_ACT_QUARANTINE */
	struct hdr_edit *edits; /* deletions first (highest index first) */
};

struct conn {
	struct arena *arena;
	struct snapshot *snap;
	const struct config *cfg; /* snap->cfg */
	unsigned char client_addr[16];
	int client_family;     /* 4, 6, or 0 when unknown */
	const char *client_ip; /* "192.0.2.1", "2001:db8::1", "unknown" */
	const char *client_name;
	const char *helo;
	const char *authserv_id;
	const char *daemon_name;
	const char *tls_version;
	const char *cipher;
	bool internal_ip; /* client address in internal_hosts */
	/* reverse DNS of the client (dnsbl.c, for the rules) */
	enum ag_rdns rdns;
	const char *rdns_name; /* the PTR name, if any */
	struct dnsbl_conn *dnsblc;
	/* the HELO identity's SPF result, kept for the connection's later
	 * messages while the HELO name is the same (spf.c) */
	struct spf_outcome *spf_helo;
	const char *spf_helo_for; /* the helo pointer it was made for */
	/* rules.c's regex matcher, made for the first message and used by
	 * every message after it (the rule set is pinned with snap) */
	struct rule_matcher *rules_mx;
	bool failed; /* a connection fact was lost (out of memory):
			     every message gets AG_ERR_INTERNAL */
	unsigned nmsgs;
	struct msg *msg; /* the message in progress, if any */
};

struct msg {
	struct conn *conn;
	struct arena *arena;
	const struct config *cfg;
	char qid[64];
	const char *mail_from; /* address without <>; "" for the null sender */
	const char *mail_domain; /* part after the last @, or NULL */
	const char **rcpts;
	size_t nrcpts, rcpt_alloc;
	const char *auth_user; /* {auth_authen}, NULL if none */
	bool internal;	       /* internal_hosts or SMTP AUTH */
	struct hdr *hdrs, *hdr_tail;
	size_t nhdrs;
	size_t nar_seen; /* Authentication-Results headers received */
	int *ar_remove;	 /* their indexes to delete */
	size_t nar_remove, ar_remove_alloc;
	unsigned long long body_bytes;
	bool eoh_done;
	unsigned flags;	 /* AG_MSG_* */
	unsigned errors; /* AG_ERR_* */
	struct dns_budget dns_budget;
	struct ar_result *ar, *ar_tail;	     /* results for our A-R header */
	struct add_hdr *add_hdrs, *add_tail; /* other headers to add */
	struct spf_outcome spf_mailfrom, spf_helo;
	struct spf_msg *spf;	   /* spf.c's private state */
	struct dkim_outcome *dkim; /* one per signature checked */
	size_t ndkim;
	unsigned dkim_unchecked;     /* signatures past dkim_max_signatures */
	const char *dkim_signed;     /* "d:s,d:s" we signed with, for logs */
	struct dmarc_outcome *dmarc; /* one per From: domain evaluated */
	size_t ndmarc;
	/* no, several or unusable From: (RFC 9989 5.3.1); From: domains
	 * past the cap, not evaluated */
	bool dmarc_from_bad, dmarc_incomplete;
	struct dmarc_msg *dmarcm; /* dmarc.c's private state */
	struct dkimv_msg *dkimv;  /* dkim_verify.c's private state */
	struct dkims_msg *dkims;  /* dkim_sign.c's private state */
	struct rules_msg *rulesm; /* rules.c's private state */
	struct dnsbl_msg *dnsblm; /* dnsbl.c's private state */
	bool scored;		  /* the rules ran: score is meaningful */
	double score;
	struct rule_hit *hits; /* rules that hit, scoring ones first */
	size_t nhits;
	struct verdict verdict;
	struct timespec t_start; /* MAIL FROM */
	struct timespec t_eoh;	 /* end of headers (0 until then) */
	struct timespec t_eom;	 /* end of message (0 until then) */
};

/* conn_new - a connection pinned to snapshot s (reference taken). NULL
 * when out of memory. */
struct conn *conn_new(struct snapshot *s);

/* conn_free - end the message in progress (if any), release everything. */
void conn_free(struct conn *);

/*
 * conn_set_client - client address from the MTA: the socket address when
 * given, else the text form ("IPv6:" prefix accepted); name may be NULL.
 */
void conn_set_client(
    struct conn *, const struct sockaddr *, const char *ip, const char *name);
void conn_set_helo(struct conn *, const char *);
void conn_set_authserv_id(struct conn *, const char *);
void conn_set_daemon_name(struct conn *, const char *);
void conn_set_tls(struct conn *, const char *version, const char *cipher);

/* conn_connected - run the connect stage (all client facts known). */
void conn_connected(struct conn *);

/* msg_new - start a message on c (ending one in progress first). */
struct msg *msg_new(struct conn *c);

/* msg_free - end the message (abort path included) and free its arena. */
void msg_free(struct msg *);

void msg_set_qid(struct msg *, const char *);
void msg_set_auth(struct msg *, const char *user);

/* msg_mail - MAIL FROM ("<a@b>", "a@b" or "<>"); runs the mail stage. */
void msg_mail(struct msg *, const char *from);

void msg_rcpt(struct msg *, const char *rcpt);

/* msg_header - one header as the MTA sent it (value with leading space
 * when the MTA gives it; "\n" folds are stored as "\r\n"). */
void msg_header(struct msg *, const char *name, const char *value);

void msg_eoh(struct msg *);
void msg_body(struct msg *, const unsigned char *, size_t);

/* msg_eom - final stage, then the verdict into m->verdict. */
void msg_eom(struct msg *);

/*
 * msg_error - record a failure class (AG_ERR_*) and log why, once per
 * message and class. Checks call this instead of deciding anything.
 */
void msg_error(struct msg *, unsigned cls, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* msg_ar_add - append a result to our A-R header (arena-owned r). */
void msg_ar_add(struct msg *, struct ar_result *r);

/* msg_spf_result_name, msg_dkim_result_name - "pass", "fail", ... */
const char *msg_spf_result_name(int);
const char *msg_dkim_result_name(int);

/* msg_ar_new - a zeroed result in the arena (NULL: internal error set). */
struct ar_result *msg_ar_new(
    struct msg *, const char *method, const char *result);

/* msg_ar_prop - add a property; ignored (and logged) past the maximum. */
void msg_ar_prop(struct msg *, struct ar_result *, const char *ptype,
    const char *name, const char *value);

/* msg_add_header - ask for a header to be added (arena-owned strings). */
void msg_add_header(struct msg *, const char *name, const char *value);

/* msg_dns_start - dns_query_start under the message's budget; the handle
 * is freed with the message. */
struct dns_query *msg_dns_start(struct msg *, const char *name, int rrtype);

/* msgctx_hostname - this host's name (looked up once) */
const char *msgctx_hostname(void);

/* msg_authserv_id - ours: config, else the MTA's j macro, else hostname. */
const char *msg_authserv_id(const struct msg *);

/* log_msg - a log line prefixed with the queue id (or NOQUEUE). */
void log_msg(const struct msg *, int level, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* log_safe - network input made fit for a log line (arena copy). */
const char *log_safe(const struct msg *, const char *);

/* msg_elapsed_ms - milliseconds since MAIL FROM. */
long msg_elapsed_ms(const struct msg *);

#endif
