/*
 * spf_record.h - SPF record syntax (RFC 7208 section 12) and macros (7.3).
 *
 * spf_record_parse() is the strict validator every record passes before
 * libspf2 sees it: the whole ABNF (terms, qualifiers, CIDR lengths without
 * leading zeros, domain-specs ending in a toplabel or a macro, macro
 * syntax, modifier names, exp/redirect at most once), printable ASCII
 * only. spf_macro_expand() expands a macro-string the RFC way (transformers,
 * delimiters, URL escaping of upper-case letters, 253-byte truncation from
 * the left for domain names). spf_record_lower() turns a parsed record into
 * one libspf2 evaluates correctly: macros already expanded, unknown
 * modifiers dropped, terms libspf2 cannot express (CIDR /0) rewritten by a
 * callback, and records too big for libspf2's fixed compile buffer (it
 * drops the terms past 511 bytes without a word) split into chunks that
 * continue with redirect= to a stand-in holding the rest. Pure functions: no DNS, no globals; memory in the arena.
 */
#ifndef AG_SPF_RECORD_H
#define AG_SPF_RECORD_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

#define AG_SPF_MAX_TERMS 256 /* more terms than this: permerror */

enum ag_spf_mech {
	AG_SPF_M_ALL,
	AG_SPF_M_INCLUDE,
	AG_SPF_M_A,
	AG_SPF_M_MX,
	AG_SPF_M_PTR,
	AG_SPF_M_IP4,
	AG_SPF_M_IP6,
	AG_SPF_M_EXISTS,
};

struct spf_term {
	char qual; /* '+', '-', '~', '?' */
	enum ag_spf_mech mech;
	const char *spec;	/* domain-spec as written, or NULL */
	int cidr4, cidr6;	/* -1 when absent */
	unsigned char addr[16]; /* ip4 (IPv4-mapped) / ip6 */
};

struct spf_rec {
	struct spf_term *terms;
	size_t nterms;
	const char *redirect; /* domain-spec, or NULL */
	const char *exp;      /* domain-spec, or NULL */
};

/*
 * spf_record_is_spf - does this TXT record select itself as SPF
 * (RFC 7208 4.5: "v=spf1" followed by a space or the end)?
 */
bool spf_record_is_spf(const char *txt, size_t len);

/*
 * spf_record_parse - validate and parse one record (txt may hold NULs:
 * they are an error). Returns 0, or -1 with a static reason in *why.
 */
int spf_record_parse(struct arena *, const char *txt, size_t len,
    struct spf_rec *out, const char **why);

/* The values macros expand to (RFC 7208 7.3). */
struct spf_macro_env {
	const char *sender;	 /* s: local-part@domain */
	const char *domain;	 /* d: the current domain */
	const unsigned char *ip; /* i: 16 bytes, IPv4-mapped for IPv4 */
	int family;		 /* 4 or 6 */
	const char *helo;	 /* h */
	const char *validated;	 /* p: validated client name, or NULL */
	const char *receiver;	 /* r: our host name */
	long long now;		 /* t */
};

/*
 * spf_macro_check - syntax of a macro-string (exp: the explain-string of
 * an exp= TXT, where c, r, t and spaces are allowed). -1 and *why if bad.
 */
int spf_macro_check(const char *s, bool exp, const char **why);

/* spf_macro_uses - does the macro-string use this letter (any case)? */
bool spf_macro_uses(const char *s, char letter);

/*
 * spf_macro_expand - expand a (syntax-checked) macro-string. With
 * as_domain the result is truncated from the left to 253 bytes at a label
 * boundary and a final dot is removed. NULL when the arena is exhausted.
 */
char *spf_macro_expand(struct arena *, const char *s,
    const struct spf_macro_env *, bool as_domain);

/* What a term needs when libspf2 cannot evaluate it as written. */
enum ag_spf_synth {
	AG_SPF_SYN_A_ANY,  /* a/0: the target has an address record */
	AG_SPF_SYN_MX_ANY, /* mx/0: some MX host has an address record */
	AG_SPF_SYN_ALIAS, /* a name libspf2's syntax cannot carry (spaces, %) */
	AG_SPF_SYN_EXP_DEFAULT, /* exp= of a record without one: ours */
	AG_SPF_SYN_CONT,	/* the rest of a record too big for libspf2 */
};

/*
 * The rewriting callback: return a domain name whose A lookup the DNS
 * adapter answers with the semantics asked for (see spf_dns.c), or NULL.
 * For AG_SPF_SYN_CONT the "target" is the lowered text of the next chunk
 * (libspf2 fetches it through get_spf).
 */
typedef const char *(*spf_synth_fn)(
    void *ctx, enum ag_spf_synth, const char *target);

/*
 * spf_record_lower - the record as libspf2 is given it, for a client of
 * env->family. Returns NULL (and *why) on expansion trouble or memory.
 */
char *spf_record_lower(struct arena *, const struct spf_rec *,
    const struct spf_macro_env *, spf_synth_fn, void *ctx, const char **why);

#endif
