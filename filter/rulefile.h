/*
 * rulefile.h - the rule language of authgate-rules(5): parse rule files,
 * compile their regexes (PCRE2, JIT where available) and meta
 * expressions into one immutable rule set. No message state, no DNS:
 * the rules check (rules.c) evaluates a set against a message, the
 * dnsbl check (dnsbl.c) runs its dnsbl/uribl lookups.
 *
 * Loading is in two steps: ruleset_add_text/ruleset_add_file for each
 * file in order (syntax is checked line by line; a later file may
 * redefine a rule of an earlier one, or change its score), then
 * ruleset_finish (names resolved, metas checked for cycles and ordered,
 * scores applied). Every error is one "FILE:LINE: message" line in err;
 * any error means the set must not be used. A finished set is read-only
 * and shared by all threads.
 */
#ifndef AG_RULEFILE_H
#define AG_RULEFILE_H

#include <stdbool.h>
#include <stddef.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

struct buf;

enum rule_type {
	RULE_HEADER,
	RULE_BODY,
	RULE_RAWBODY,
	RULE_FULL,
	RULE_URI,
	RULE_META,
	RULE_EVAL,
	RULE_DNSBL,
	RULE_URIBL,
};

/* How a header rule reads its field. */
enum rule_field {
	RULE_F_DECODED = 0, /* unfolded, RFC 2047 decoded */
	RULE_F_RAW,	    /* unfolded only */
	RULE_F_ADDR,	    /* the addresses, one per line */
	RULE_F_NAME,	    /* the display names, one per line */
	RULE_F_ALL,	    /* every header, "Name: value" lines */
};

/* Built-in tests (eval rules); rules.c implements each. */
enum rule_func {
	RF_DATE_MISSING,
	RF_DATE_INVALID,
	RF_DATE_VS_RECEIVED,
	RF_MSGID_MISSING,
	RF_MSGID_INVALID,
	RF_FROM_MISSING,
	RF_FROM_NAME_HAS_ADDRESS,
	RF_TO_MISSING,
	RF_HELO_IP_LITERAL,
	RF_HELO_NOT_FQDN,
	RF_HELO_MISMATCH_IP,
	RF_CLIENT_NO_RDNS,
	RF_CLIENT_NO_FCRDNS,
	RF_CLIENT_DYNAMIC_RDNS,
	RF_SPF_RESULT,
	RF_SPF_HELO_RESULT,
	RF_DKIM_RESULT,
	RF_DKIM_AUTHOR_PASS,
	RF_DMARC_RESULT,
	RF_SUBJECT_ALL_CAPS,
	RF_SUBJECT_MISSING,
	RF_HTML_ONLY,
	RF_HTML_IMAGES_LITTLE_TEXT,
	RF_TEXT_BASE64,
	RF_MIME_BROKEN,
	RF_MIME_PARTS,
	RF_RCPT_COUNT,
	RF_HEADER_RCPT_COUNT,
	RF_URI_IP_LITERAL,
	RF_URI_COUNT,
	RF_MAILFROM_NULL,
	RF_MAX
};

#define RULE_MAX_ARGS 8

/* A return-code set of a dnsbl/uribl rule: 127.0.0.0/8 ranges and an
 * optional bit mask of the last octet ("127.0.0.2-127.0.0.11", "&4"). */
struct rule_codes {
	unsigned char lo[8][4], hi[8][4];
	size_t n;
	unsigned mask; /* 0: not a mask */
};

/* One step of a meta program (RPN). */
enum rule_opcode {
	ROP_RULE, /* push hits[v] */
	ROP_NUM,  /* push v */
	ROP_NOT,
	ROP_ADD,
	ROP_SUB,
	ROP_LT,
	ROP_LE,
	ROP_GT,
	ROP_GE,
	ROP_EQ,
	ROP_NE,
	ROP_AND,
	ROP_OR,
};

struct rule_op {
	enum rule_opcode op;
	long v;
	char *name; /* ROP_RULE: resolved into v at finish */
};

struct rule_score; /* a score or describe line (rulefile.c) */

struct rule {
	char *name;
	enum rule_type type;
	double score;
	char *describe;
	const char *file; /* where it was defined (the set owns the text) */
	int line;
	bool sub; /* "__" name: score 0, never reported */
	/* header, body, rawbody, full, uri */
	char *field; /* header: the field name ("ALL" for RULE_F_ALL) */
	enum rule_field fmod;
	bool exists; /* header NAME exists:FIELD */
	bool negate; /* !~ */
	char *if_unset;
	pcre2_code *re;
	/* the same pattern without UTF and UCP, for subjects that are all
	 * ASCII, where it matches exactly what re does and PCRE2 runs it
	 * about twice as fast; NULL when the pattern needs UTF (code points
	 * past 255) */
	pcre2_code *re_ascii;
	char *re_text; /* the pattern as written, for errors */
	/* meta: an RPN program over rule indexes and constants */
	struct rule_op *prog;
	size_t nprog;
	/* eval */
	enum rule_func func;
	char *args[RULE_MAX_ARGS];
	double nargs[RULE_MAX_ARGS]; /* numeric value of each arg */
	size_t argc;
	/* dnsbl, uribl */
	char *zone;
	struct rule_codes codes;
};

struct ruleset {
	struct rule *rules;
	size_t n, alloc;
	size_t *order; /* evaluation order: every non-meta, then the metas,
			  each after the rules it reads */
	size_t norder;
	size_t nheader, nbody, nrawbody, nfull, nuri, nmeta, neval, ndnsbl,
	    nuribl;
	bool need_rdns; /* an eval rule reads the client's rDNS */
	unsigned long match_limit;
	bool jit;     /* JIT compiled (when PCRE2 supports it here) */
	char **files; /* file names, owned (rule.file points in here) */
	size_t nfiles;
	/* score lines, applied at finish */
	struct rule_score *scores;
	size_t nscores, scores_alloc;
	/* describe lines, applied at finish */
	struct rule_score *descs;
	size_t ndescs, descs_alloc;
	pcre2_match_context *mctx;
	bool finished;
};

/* ruleset_new - an empty set; match_limit caps each regex match. */
struct ruleset *ruleset_new(unsigned long match_limit);

/* ruleset_free - NULL is a no-op. */
void ruleset_free(struct ruleset *);

/* ruleset_add_text - parse one file's text (name used in errors). */
int ruleset_add_text(struct ruleset *, const char *file, const char *text,
    size_t len, struct buf *err);

/* ruleset_add_file - read and parse path. */
int ruleset_add_file(struct ruleset *, const char *path, struct buf *err);

/* ruleset_finish - resolve, check and order; -1 with errors in err. */
int ruleset_finish(struct ruleset *, struct buf *err);

/* ruleset_find - index of a rule by name, or -1. */
long ruleset_find(const struct ruleset *, const char *name);

/*
 * A matcher: PCRE2 match data and a match context, for one thread at a
 * time (the rules check keeps one per message). NULL when out of memory.
 */
struct rule_matcher;
struct rule_matcher *ruleset_matcher_new(const struct ruleset *);
void ruleset_matcher_free(struct rule_matcher *);

/*
 * ruleset_match - does the rule's regex match s[0..len)? Each match may
 * take match_limit + 10 * len steps (a plain scan of a long body takes
 * steps in proportion to its length; backtracking that explodes does
 * not fit). A match that reaches the limit, or another PCRE2 error,
 * counts as no match and sets *limited.
 */
bool ruleset_match(const struct ruleset *, const struct rule *, const char *s,
    size_t len, struct rule_matcher *, bool *limited);

/* ruleset_meta - evaluate a meta rule over hits (one byte per rule). */
bool ruleset_meta(const struct rule *, const unsigned char *hits);

/* ruleset_codes_match - is a 127.x answer in the rule's return codes? */
bool ruleset_codes_match(const struct rule_codes *, const unsigned char a[4]);

/* ruleset_func_name - "date_missing", ... */
const char *ruleset_func_name(enum rule_func);

#endif
