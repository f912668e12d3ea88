/*
 * spf_record.c - SPF record parse, macros and lowering (see spf_record.h).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/cidr.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "spf_record.h"

#define AG_SPF_DOMAIN_MAX 253

static const struct {
	const char *name;
	enum ag_spf_mech mech;
} spf_mechs[] = {
    {"all", AG_SPF_M_ALL},
    {"include", AG_SPF_M_INCLUDE},
    {"a", AG_SPF_M_A},
    {"mx", AG_SPF_M_MX},
    {"ptr", AG_SPF_M_PTR},
    {"ip4", AG_SPF_M_IP4},
    {"ip6", AG_SPF_M_IP6},
    {"exists", AG_SPF_M_EXISTS},
};

/* spf_record_is_spf - RFC 7208 4.5 record selection */
bool
spf_record_is_spf(const char *txt, size_t len)
{
	return len >= 6 && str_ncaseeq(txt, "v=spf1", 6) &&
	    (len == 6 || txt[6] == ' ');
}

/* spf_macro_letter - valid macro letter? (c, r, t only in exp text) */
static bool
spf_macro_letter(int c, bool exp)
{
	c = str_lower(c);
	if (strchr("slodiphv", c) != NULL && c != 0)
		return true;
	return exp && c != 0 && strchr("crt", c) != NULL;
}

/* spf_macro_delim - RFC 7208 7.1 delimiter */
static bool
spf_macro_delim(int c)
{
	return c != 0 && strchr(".-+,/_=", c) != NULL;
}

/*
 * spf_macro_scan - length of the macro-expand at s ("%{...}", "%%", "%_"
 * or "%-"), 0 if s is not one; *why set when it is a broken one.
 */
static size_t
spf_macro_scan(const char *s, bool exp, const char **why)
{
	size_t i = 2;

	if (s[1] == '%' || s[1] == '_' || s[1] == '-')
		return 2;
	if (s[1] != '{') {
		*why = "'%' not followed by '{', '%', '_' or '-'";
		return 0;
	}
	if (!spf_macro_letter((unsigned char)s[2], exp)) {
		*why = "unknown macro letter";
		return 0;
	}
	i = 3;
	while (str_isdigit((unsigned char)s[i]))
		i++;
	if (i > 3 && strspn(s + 3, "0") >= i - 3) {
		*why = "macro digit transformer is zero";
		return 0;
	}
	if (s[i] == 'r' || s[i] == 'R')
		i++;
	while (spf_macro_delim((unsigned char)s[i]))
		i++;
	if (s[i] != '}') {
		*why = "malformed macro";
		return 0;
	}
	return i + 1;
}

/* spf_macro_check - syntax of a macro-string or explain-string */
int
spf_macro_check(const char *s, bool exp, const char **why)
{
	size_t i = 0, n;

	while (s[i]) {
		unsigned char c = (unsigned char)s[i];

		if (c == '%') {
			if ((n = spf_macro_scan(s + i, exp, why)) == 0)
				return -1;
			i += n;
			continue;
		}
		if (c < 0x21 || c > 0x7e) {
			if (!(exp && c == ' ')) {
				*why =
				    "character not allowed in a macro-string";
				return -1;
			}
		}
		i++;
	}
	return 0;
}

/* spf_macro_uses - is this macro letter used? */
bool
spf_macro_uses(const char *s, char letter)
{
	for (; *s; s++)
		if (s[0] == '%' && s[1] == '{' &&
		    str_lower((unsigned char)s[2]) == letter)
			return true;
	return false;
}

/* spf_toplabel - RFC 7208 toplabel */
static bool
spf_toplabel(const char *s, size_t len)
{
	size_t i;
	bool alpha = false, hyphen = false;

	if (len == 0 || s[0] == '-' || s[len - 1] == '-')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (str_isalpha(c))
			alpha = true;
		else if (c == '-')
			hyphen = true;
		else if (!str_isdigit(c))
			return false;
	}
	return alpha || hyphen;
}

/* spf_domain_spec - macro-string domain-end */
static int
spf_domain_spec(const char *s, const char **why)
{
	size_t len = strlen(s), i = 0, last_macro_end = 0, n;
	const char *dot;

	if (len == 0) {
		*why = "empty domain-spec";
		return -1;
	}
	while (i < len) {
		if (s[i] == '%') {
			if ((n = spf_macro_scan(s + i, false, why)) == 0)
				return -1;
			i += n;
			last_macro_end = i;
			continue;
		}
		if ((unsigned char)s[i] < 0x21 || (unsigned char)s[i] > 0x7e) {
			*why = "character not allowed in a domain-spec";
			return -1;
		}
		i++;
	}
	if (last_macro_end == len)
		return 0; /* ends with a macro-expand */
	/* "." toplabel [ "." ] in the literal tail */
	if (s[len - 1] == '.')
		len--;
	dot = NULL;
	for (i = len; i > last_macro_end; i--)
		if (s[i - 1] == '.') {
			dot = s + i - 1;
			break;
		}
	if (dot == NULL ||
	    !spf_toplabel(dot + 1, (size_t)(s + len - dot - 1))) {
		*why = "domain-spec does not end in a valid top-level label";
		return -1;
	}
	return 0;
}

/* spf_cidr_digits - "0" or 1-9 followed by digits, at most max */
static int
spf_cidr_digits(const char *s, size_t len, int max)
{
	unsigned long long v;

	if (len == 0 || (s[0] == '0' && len > 1))
		return -1;
	if (str_parse_uint(s, len, (unsigned long long)max, &v) == -1)
		return -1;
	return (int)v;
}

/*
 * spf_split_cidr - take a trailing "/n", "//m" or "/n//m" off arg (of
 * len bytes); *len shrinks to what precedes it. -1 on a bad length.
 */
static int
spf_split_cidr(
    const char *arg, size_t *len, int *c4, int *c6, bool dual, int max4)
{
	size_t end = *len, i;
	int v;

	*c4 = *c6 = -1;
	for (i = end; i > 0 && str_isdigit((unsigned char)arg[i - 1]); i--)
		;
	if (i == end || i == 0 || arg[i - 1] != '/')
		return 0; /* no CIDR */
	if (dual && i >= 2 && arg[i - 2] == '/') {
		if ((v = spf_cidr_digits(arg + i, end - i, 128)) < 0)
			return -1;
		*c6 = v;
		end = i - 2;
		for (i = end; i > 0 && str_isdigit((unsigned char)arg[i - 1]);
		     i--)
			;
		if (i == end || i == 0 || arg[i - 1] != '/') {
			*len = end;
			return 0;
		}
	}
	if ((v = spf_cidr_digits(arg + i, end - i, max4)) < 0)
		return -1;
	*c4 = v;
	*len = i - 1;
	return 0;
}

/* spf_ip4_strict - dotted quad with no leading zeros (RFC 7208 qnum) */
static bool
spf_ip4_strict(const char *s, size_t len)
{
	size_t i = 0;
	int parts = 0;

	while (i < len) {
		size_t start = i;

		while (i < len && str_isdigit((unsigned char)s[i]))
			i++;
		if (i == start || i - start > 3 ||
		    (s[start] == '0' && i - start > 1) ||
		    spf_cidr_digits(s + start, i - start, 255) < 0)
			return false;
		parts++;
		if (i < len) {
			if (s[i] != '.' || parts == 4)
				return false;
			i++;
			if (i == len)
				return false;
		}
	}
	return parts == 4;
}

/* spf_parse_directive - one [qualifier] mechanism term */
static int
spf_parse_directive(struct arena *a, const char *t, size_t len,
    struct spf_term *term, const char **why)
{
	size_t i = 0, n, k, arglen;
	const char *arg;
	char buf[64];

	memset(term, 0, sizeof(*term));
	term->qual = '+';
	term->cidr4 = term->cidr6 = -1;
	if (len > 0 && strchr("+-~?", t[0]) != NULL) {
		term->qual = t[0];
		i = 1;
	}
	for (n = i; n < len && t[n] != ':' && t[n] != '/'; n++)
		;
	for (k = 0; k < sizeof(spf_mechs) / sizeof(spf_mechs[0]); k++)
		if (str_caseeq_len(t + i, n - i, spf_mechs[k].name))
			break;
	if (k == sizeof(spf_mechs) / sizeof(spf_mechs[0])) {
		*why = "unknown mechanism";
		return -1;
	}
	term->mech = spf_mechs[k].mech;
	arg = t + n;
	arglen = len - n;
	switch (term->mech) {
	case AG_SPF_M_ALL:
		if (arglen != 0) {
			*why = "'all' takes no argument";
			return -1;
		}
		return 0;
	case AG_SPF_M_INCLUDE:
	case AG_SPF_M_EXISTS:
	case AG_SPF_M_PTR:
		if (arglen == 0 && term->mech == AG_SPF_M_PTR)
			return 0;
		if (arglen < 2 || arg[0] != ':') {
			*why = "mechanism needs ':' and a domain-spec";
			return -1;
		}
		break;
	case AG_SPF_M_A:
	case AG_SPF_M_MX:
		if (spf_split_cidr(arg, &arglen, &term->cidr4, &term->cidr6,
			true, 32) == -1) {
			*why = "bad CIDR length";
			return -1;
		}
		if (arglen == 0)
			return 0;
		if (arglen < 2 || arg[0] != ':') {
			*why = "bad argument to a or mx";
			return -1;
		}
		break;
	case AG_SPF_M_IP4:
	case AG_SPF_M_IP6: {
		bool v4 = (term->mech == AG_SPF_M_IP4);
		int *cidr = v4 ? &term->cidr4 : &term->cidr6, unused;
		struct in6_addr a6;

		if (arglen < 2 || arg[0] != ':') {
			*why = "ip4/ip6 needs ':' and an address";
			return -1;
		}
		arg++;
		arglen--;
		if (spf_split_cidr(arg, &arglen, cidr, &unused, false,
			v4 ? 32 : 128) == -1) {
			*why = "bad CIDR length";
			return -1;
		}
		if (arglen == 0 || arglen >= sizeof(buf)) {
			*why = "bad address";
			return -1;
		}
		memcpy(buf, arg, arglen);
		buf[arglen] = '\0';
		if (v4 &&
		    (!spf_ip4_strict(buf, arglen) ||
			cidr_addr_parse(buf, term->addr) != 4)) {
			*why = "bad ip4 address";
			return -1;
		}
		if (!v4) {
			if (inet_pton(AF_INET6, buf, &a6) != 1) {
				*why = "bad ip6 address";
				return -1;
			}
			memcpy(term->addr, &a6, 16);
		}
		return 0;
	}
	}
	/* a domain-spec follows the ':' */
	if ((term->spec = arena_strndup(a, arg + 1, arglen - 1)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	return spf_domain_spec(term->spec, why);
}

/* spf_modifier_name - RFC 7208 name = ALPHA *( ALPHA / DIGIT / -_. ) */
static size_t
spf_modifier_name(const char *t, size_t len)
{
	size_t i;

	if (len == 0 || !str_isalpha((unsigned char)t[0]))
		return 0;
	for (i = 1; i < len; i++) {
		if (t[i] == '=')
			return i;
		if (!str_isalnum((unsigned char)t[i]) && t[i] != '-' &&
		    t[i] != '_' && t[i] != '.')
			return 0;
	}
	return 0;
}

/* spf_parse_modifier - name=value; unknown ones are checked, not kept */
static int
spf_parse_modifier(struct arena *a, const char *t, size_t len, size_t nlen,
    struct spf_rec *rec, const char **why)
{
	const char **slot = NULL;
	char *value;

	if (str_caseeq_len(t, nlen, "redirect"))
		slot = &rec->redirect;
	else if (str_caseeq_len(t, nlen, "exp"))
		slot = &rec->exp;
	if ((value = arena_strndup(a, t + nlen + 1, len - nlen - 1)) == NULL) {
		*why = "out of memory";
		return -1;
	}
	if (slot == NULL)
		return spf_macro_check(value, false, why);
	if (*slot != NULL) {
		*why = slot == &rec->redirect ? "more than one redirect="
					      : "more than one exp=";
		return -1;
	}
	*slot = value;
	return spf_domain_spec(value, why);
}

/* spf_record_parse - the strict validator */
int
spf_record_parse(struct arena *a, const char *txt, size_t len,
    struct spf_rec *rec, const char **why)
{
	size_t i, alloc = 0;

	memset(rec, 0, sizeof(*rec));
	for (i = 0; i < len; i++)
		if ((unsigned char)txt[i] < 0x20 ||
		    (unsigned char)txt[i] > 0x7e) {
			*why = "non-ASCII or control character in the record";
			return -1;
		}
	if (!spf_record_is_spf(txt, len)) {
		*why = "not an SPF record";
		return -1;
	}
	i = 6;
	while (i < len) {
		size_t start, tlen, nlen;

		while (i < len && txt[i] == ' ')
			i++;
		if (i == len)
			break;
		start = i;
		while (i < len && txt[i] != ' ')
			i++;
		tlen = i - start;
		if ((nlen = spf_modifier_name(txt + start, tlen)) > 0) {
			if (spf_parse_modifier(
				a, txt + start, tlen, nlen, rec, why) == -1)
				return -1;
			continue;
		}
		if (rec->nterms == AG_SPF_MAX_TERMS) {
			*why = "too many terms";
			return -1;
		}
		if (rec->nterms == alloc) {
			struct spf_term *v;

			alloc = alloc ? alloc * 2 : 8;
			if ((v = arena_allocarray(a, alloc, sizeof(*v))) ==
			    NULL) {
				*why = "out of memory";
				return -1;
			}
			if (rec->nterms)
				memcpy(v, rec->terms, rec->nterms * sizeof(*v));
			rec->terms = v;
		}
		if (spf_parse_directive(a, txt + start, tlen,
			&rec->terms[rec->nterms], why) == -1)
			return -1;
		rec->nterms++;
	}
	return 0;
}

/* spf_ip_text - %{i}: dotted quad, or dot-separated upper-case nibbles */
static void
spf_ip_text(const struct spf_macro_env *env, struct buf *b)
{
	static const char hex[] = "0123456789ABCDEF";
	int k;

	if (env->family == 4) {
		buf_addf(b, "%u.%u.%u.%u", env->ip[12], env->ip[13],
		    env->ip[14], env->ip[15]);
		return;
	}
	for (k = 0; k < 16; k++) {
		buf_addch(b, hex[env->ip[k] >> 4]);
		buf_addch(b, '.');
		buf_addch(b, hex[env->ip[k] & 15]);
		if (k != 15)
			buf_addch(b, '.');
	}
}

/* spf_macro_value - the raw value of one macro letter */
static void
spf_macro_value(const struct spf_macro_env *env, int letter, struct buf *b)
{
	const char *s = env->sender ? env->sender : "", *at = strrchr(s, '@');
	char text[64];

	switch (str_lower(letter)) {
	case 's':
		buf_addstr(b, s);
		break;
	case 'l':
		if (at != NULL)
			buf_add(b, s, (size_t)(at - s));
		else
			buf_addstr(b, "postmaster");
		break;
	case 'o':
		buf_addstr(b, at ? at + 1 : s);
		break;
	case 'd':
		buf_addstr(b, env->domain ? env->domain : "");
		break;
	case 'i':
		spf_ip_text(env, b);
		break;
	case 'p':
		buf_addstr(b, env->validated ? env->validated : "unknown");
		break;
	case 'h':
		buf_addstr(b, env->helo ? env->helo : "");
		break;
	case 'v':
		buf_addstr(b, env->family == 4 ? "in-addr" : "ip6");
		break;
	case 'c':
		cidr_addr_format(env->ip, text, sizeof(text));
		buf_addstr(b, text);
		break;
	case 'r':
		buf_addstr(b, env->receiver ? env->receiver : "unknown");
		break;
	case 't':
		buf_addf(b, "%lld", env->now);
		break;
	}
}

/* spf_transform - split on delimiters, reverse, keep the right n parts */
static void
spf_transform(const char *v, size_t vlen, const char *delims, size_t ndelim,
    long keep, bool reverse, struct buf *out)
{
	size_t *start, *plen, np = 1, i, k = 0, first, last = 0;

	if (ndelim == 0) {
		delims = ".";
		ndelim = 1;
	}
	for (i = 0; i < vlen; i++)
		if (memchr(delims, v[i], ndelim) != NULL)
			np++;
	start = xcalloc(np, sizeof(*start));
	plen = xcalloc(np, sizeof(*plen));
	for (i = 0; i <= vlen; i++)
		if (i == vlen || memchr(delims, v[i], ndelim) != NULL) {
			start[k] = last;
			plen[k++] = i - last;
			last = i + 1;
		}
	first = (keep > 0 && (size_t)keep < np) ? np - (size_t)keep : 0;
	for (i = first; i < np; i++) {
		/* with reversal, part i of the reversed list */
		size_t j = reverse ? np - 1 - i : i;

		if (i != first)
			buf_addch(out, '.');
		buf_add(out, v + start[j], plen[j]);
	}
	free(start);
	free(plen);
}

/* spf_url_escape - RFC 7208 7.3: upper-case macros are URL-escaped */
static void
spf_url_escape(const char *s, size_t len, struct buf *out)
{
	size_t i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (str_isalnum(c) || c == '-' || c == '.' || c == '_' ||
		    c == '~')
			buf_addch(out, c);
		else
			buf_addf(out, "%%%02X", c);
	}
}

/* spf_truncate - RFC 7208 7.3: drop labels from the left to fit 253 */
static void
spf_truncate(struct buf *b)
{
	size_t len = b->len, off = 0;

	if (len > 0 && b->data[len - 1] == '.')
		buf_setlen(b, --len);
	while (len - off > AG_SPF_DOMAIN_MAX) {
		const char *dot = memchr(b->data + off, '.', len - off);

		if (dot == NULL)
			break;
		off = (size_t)(dot - b->data) + 1;
	}
	if (off) {
		memmove(b->data, b->data + off, len - off);
		buf_setlen(b, len - off);
	}
}

/* spf_macro_expand - RFC 7208 7.3 expansion */
char *
spf_macro_expand(struct arena *a, const char *s,
    const struct spf_macro_env *env, bool as_domain)
{
	struct buf out = BUF_INIT, val = BUF_INIT, tr = BUF_INIT;
	char *res;

	while (*s) {
		if (s[0] != '%') {
			buf_addch(&out, *s++);
			continue;
		}
		if (s[1] == '%' || s[1] == '_' || s[1] == '-') {
			buf_addstr(&out,
			    s[1] == '%'	      ? "%"
				: s[1] == '_' ? " "
					      : "%20");
			s += 2;
			continue;
		}
		if (s[1] != '{' || s[2] == '\0') {
			buf_addch(&out, *s++); /* not checked: kept literally */
			continue;
		}
		{
			int letter = (unsigned char)s[2];
			const char *p = s + 3, *dstart;
			long keep = 0;
			bool rev = false;

			while (str_isdigit((unsigned char)*p)) {
				if (keep < 1000)
					keep = keep * 10 + (*p - '0');
				p++;
			}
			if (*p == 'r' || *p == 'R') {
				rev = true;
				p++;
			}
			dstart = p;
			while (*p && *p != '}')
				p++;
			buf_reset(&val);
			buf_reset(&tr);
			spf_macro_value(env, letter, &val);
			spf_transform(val.data, val.len, dstart,
			    (size_t)(p - dstart), keep, rev, &tr);
			if (str_isalpha(letter) && letter < 'a')
				spf_url_escape(tr.data, tr.len, &out);
			else
				buf_add(&out, tr.data, tr.len);
			s = *p ? p + 1 : p;
		}
	}
	if (as_domain)
		spf_truncate(&out);
	res = arena_memdup(a, out.data, out.len);
	buf_release(&out);
	buf_release(&val);
	buf_release(&tr);
	return res;
}

/* spf_plain_name - can libspf2's record syntax carry this name as is? */
static bool
spf_plain_name(const char *s)
{
	size_t len = strlen(s), i, label = 0;

	if (len == 0 || len > AG_SPF_DOMAIN_MAX || s[0] == '.')
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '.') {
			if (label == 0 || label > 63)
				return false;
			label = 0;
			continue;
		}
		if (!str_isalnum(c) && c != '-' && c != '_')
			return false;
		label++;
	}
	return label > 0 && label <= 63;
}

/* spf_lower_target - expanded target of a term, or a stand-in name */
static const char *
spf_lower_target(struct arena *a, const char *spec,
    const struct spf_macro_env *env, spf_synth_fn synth, void *ctx,
    enum ag_spf_synth kind, const char **why)
{
	const char *name = env->domain;

	if (spec != NULL &&
	    (name = spf_macro_expand(a, spec, env, true)) == NULL) {
		*why = "out of memory";
		return NULL;
	}
	if (kind != AG_SPF_SYN_ALIAS || !spf_plain_name(name) ||
	    strlen(name) > 40) {
		/* names libspf2 cannot carry (or long ones, which would fill
		 * its compile buffer) go through the adapter */
		if ((name = synth(ctx, kind, name)) == NULL)
			*why = "out of memory";
	}
	return name;
}

/*
 * spf_mech_cost - bytes a lowered term takes in libspf2's compiled form
 * (a 4-byte header, then the address, or a CIDR word and the name as a
 * length-prefixed string, padded), rounded up to be safe.
 */
static size_t
spf_mech_cost(const char *term)
{
	const char *colon = strchr(term, ':');

	if (strncmp(term + 1, "ip4:", 4) == 0)
		return 8;
	if (strncmp(term + 1, "ip6:", 4) == 0)
		return 20;
	if (colon == NULL)
		return 8;
	return 16 + ((strlen(colon + 1) + 3) & ~(size_t)3);
}

/* AG_SPF_CHUNK - compiled bytes per chunk: libspf2 stops at 511 */
#define AG_SPF_CHUNK 400

/* spf_lower_term - one term in libspf2's syntax, appended to b */
static int
spf_lower_term(struct arena *a, const struct spf_term *t,
    const struct spf_macro_env *env, spf_synth_fn synth, void *ctx,
    struct buf *b, const char **why)
{
	char addr[64];
	const char *name;
	int c = env->family == 4 ? t->cidr4 : t->cidr6;
	bool v4 = (t->mech == AG_SPF_M_IP4);

	switch (t->mech) {
	case AG_SPF_M_ALL:
		buf_addf(b, "%call", t->qual);
		return 0;
	case AG_SPF_M_IP4:
	case AG_SPF_M_IP6:
		if (v4)
			cidr_addr_format(t->addr, addr, sizeof(addr));
		else
			inet_ntop(AF_INET6, t->addr, addr, sizeof(addr));
		c = v4 ? t->cidr4 : t->cidr6;
		if (c == 0) /* /0: libspf2 refuses it; two halves say it */
			buf_addf(b, "%c%s\n%c%s", t->qual,
			    v4 ? "ip4:0.0.0.0/1" : "ip6:::/1", t->qual,
			    v4 ? "ip4:128.0.0.0/1" : "ip6:8000::/1");
		else if (c > 0 && c < (v4 ? 32 : 128))
			buf_addf(b, "%c%s:%s/%d", t->qual, v4 ? "ip4" : "ip6",
			    addr, c);
		else
			buf_addf(
			    b, "%c%s:%s", t->qual, v4 ? "ip4" : "ip6", addr);
		return 0;
	case AG_SPF_M_A:
	case AG_SPF_M_MX:
		if (c == 0) {
			if ((name = spf_lower_target(a, t->spec, env, synth,
				 ctx,
				 t->mech == AG_SPF_M_A ? AG_SPF_SYN_A_ANY
						       : AG_SPF_SYN_MX_ANY,
				 why)) == NULL)
				return -1;
			buf_addf(b, "%cexists:%s", t->qual, name);
			return 0;
		}
		if ((name = spf_lower_target(a, t->spec, env, synth, ctx,
			 AG_SPF_SYN_ALIAS, why)) == NULL)
			return -1;
		buf_addf(b, "%c%s:%s", t->qual,
		    t->mech == AG_SPF_M_A ? "a" : "mx", name);
		if (c > 0 && env->family == 4 && c < 32)
			buf_addf(b, "/%d", c);
		else if (c > 0 && env->family == 6 && c < 128)
			buf_addf(b, "//%d", c);
		return 0;
	case AG_SPF_M_PTR:
		/* ptr's domain is compared with validated names, never looked
		 * up: it stays itself unless libspf2's syntax cannot carry it
		 * (then nothing can match it anyway) */
		name = env->domain;
		if (t->spec != NULL &&
		    (name = spf_macro_expand(a, t->spec, env, true)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		if (!spf_plain_name(name) &&
		    (name = synth(ctx, AG_SPF_SYN_ALIAS, name)) == NULL) {
			*why = "out of memory";
			return -1;
		}
		buf_addf(b, "%cptr:%s", t->qual, name);
		return 0;
	case AG_SPF_M_INCLUDE:
	case AG_SPF_M_EXISTS:
		if ((name = spf_lower_target(a, t->spec, env, synth, ctx,
			 AG_SPF_SYN_ALIAS, why)) == NULL)
			return -1;
		buf_addf(b, "%c%s:%s", t->qual,
		    t->mech == AG_SPF_M_INCLUDE ? "include" : "exists", name);
		return 0;
	}
	return 0;
}

/*
 * spf_chunks - the lowered terms (one per line in terms) as records of at
 * most AG_SPF_CHUNK compiled bytes. Built from the end, so that each chunk
 * but the last can go on with redirect= to the stand-in of the next one.
 * Every chunk carries the record's exp=; the last one also its redirect=.
 * Returns the first chunk.
 */
static char *
spf_chunks(struct arena *a, char *terms, const char *tail_last, const char *exp,
    spf_synth_fn synth, void *ctx, const char **why)
{
	const char **starts;
	const char *next = NULL;
	size_t n = 0, end, begin, cost, k;
	char *p, *text = NULL;
	struct buf b = BUF_INIT;

	for (p = terms; *p; p++)
		if (*p == '\n')
			n++;
	if ((starts = arena_allocarray(a, n + 1, sizeof(*starts))) == NULL)
		goto oom;
	for (n = 0, p = terms; *p; n++) {
		starts[n] = p;
		p = strchr(p, '\n');
		*p++ = '\0';
	}
	end = n;
	do {
		begin = end;
		cost = 0;
		while (begin > 0 &&
		    (begin == end ||
			cost + spf_mech_cost(starts[begin - 1]) <=
			    AG_SPF_CHUNK))
			cost += spf_mech_cost(starts[--begin]);
		buf_reset(&b);
		buf_addstr(&b, "v=spf1");
		for (k = begin; k < end; k++)
			buf_addf(&b, " %s", starts[k]);
		if (next == NULL)
			buf_addstr(&b, tail_last);
		else
			buf_addf(&b, " redirect=%s%s", next, exp);
		if ((text = arena_memdup(a, b.data, b.len)) == NULL)
			goto oom;
		if (begin > 0 &&
		    (next = synth(ctx, AG_SPF_SYN_CONT, text)) == NULL)
			goto oom;
		end = begin;
	} while (end > 0);
	buf_release(&b);
	return text;
oom:
	buf_release(&b);
	*why = "out of memory";
	return NULL;
}

/* spf_record_lower - rewrite for libspf2 */
char *
spf_record_lower(struct arena *a, const struct spf_rec *rec,
    const struct spf_macro_env *env, spf_synth_fn synth, void *ctx,
    const char **why)
{
	struct buf terms = BUF_INIT, tail = BUF_INIT, exp = BUF_INIT;
	const char *name;
	char *res = NULL, *t;
	size_t i;

	for (i = 0; i < rec->nterms; i++) {
		if (spf_lower_term(
			a, &rec->terms[i], env, synth, ctx, &terms, why) == -1)
			goto out;
		buf_addch(&terms, '\n');
	}
	if (rec->exp != NULL) {
		/* exp= is looked up by our get_exp hook: keep it plain */
		if ((name = spf_lower_target(a, rec->exp, env, synth, ctx,
			 AG_SPF_SYN_ALIAS, why)) == NULL)
			goto out;
		buf_addf(&exp, " exp=%s", name);
	}
	if (rec->redirect != NULL) {
		if ((name = spf_lower_target(a, rec->redirect, env, synth, ctx,
			 AG_SPF_SYN_ALIAS, why)) == NULL)
			goto out;
		buf_addf(&tail, " redirect=%s", name);
	}
	buf_add(&tail, exp.data, exp.len);
	if ((t = arena_memdup(a, terms.data, terms.len)) == NULL) {
		*why = "out of memory";
		goto out;
	}
	res = spf_chunks(a, t, tail.data, exp.data, synth, ctx, why);
out:
	buf_release(&terms);
	buf_release(&tail);
	buf_release(&exp);
	return res;
}
