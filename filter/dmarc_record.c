/*
 * dmarc_record.c - DMARC policy records (see dmarc_record.h).
 */
#include <stdio.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"
#include "dmarc_record.h"

#define DMARC_MAX_TAGS 32 /* distinct tags remembered for duplicates */

static const char *const dmarc_policy_names[] = {
    "", "none", "quarantine", "reject", ""};

/* dmarc_policy_name - text of a policy */
const char *
dmarc_policy_name(enum ag_dmarc_policy p)
{
	return (p >= AG_DMARC_P_UNSET && p <= AG_DMARC_P_INVALID)
	    ? dmarc_policy_names[p]
	    : "";
}

/* dmarc_wsp - RFC 5234 WSP */
static bool
dmarc_wsp(int c)
{
	return c == ' ' || c == '\t';
}

/* dmarc_trim - bounds without WSP at either end */
static void
dmarc_trim(const char **p, size_t *len)
{
	while (*len > 0 && dmarc_wsp((unsigned char)**p)) {
		(*p)++;
		(*len)--;
	}
	while (*len > 0 && dmarc_wsp((unsigned char)(*p)[*len - 1]))
		(*len)--;
}

/* dmarc_is - a value equal to a keyword, any case */
static bool
dmarc_is(const char *v, size_t len, const char *word)
{
	return len == strlen(word) && str_ncaseeq(v, word, len);
}

/* dmarc_policy - p, sp, np values */
static enum ag_dmarc_policy
dmarc_policy(const char *v, size_t len)
{
	if (dmarc_is(v, len, "none"))
		return AG_DMARC_P_NONE;
	if (dmarc_is(v, len, "quarantine"))
		return AG_DMARC_P_QUARANTINE;
	if (dmarc_is(v, len, "reject"))
		return AG_DMARC_P_REJECT;
	return AG_DMARC_P_INVALID;
}

/* dmarc_uri_valid - scheme ":" and something, no white space or ',' */
bool
dmarc_uri_valid(const char *s, size_t len)
{
	size_t i = 0;

	if (len == 0 || !str_isalpha((unsigned char)s[0]))
		return false;
	while (i < len &&
	    (str_isalnum((unsigned char)s[i]) || s[i] == '+' || s[i] == '-' ||
		s[i] == '.'))
		i++;
	if (i >= len || s[i] != ':' || i + 1 >= len)
		return false;
	for (i++; i < len; i++)
		if ((unsigned char)s[i] <= 0x20 ||
		    (unsigned char)s[i] >= 0x7f || s[i] == ',' || s[i] == '!')
			return false;
	return true;
}

/*
 * dmarc_uris - the valid URIs of a comma-separated list; an obsolete
 * "!size" suffix (RFC 7489) is dropped, as 4.6 says to ignore it
 */
static size_t
dmarc_uris(struct arena *a, const char *v, size_t len, const char **out)
{
	size_t n = 0;

	while (len > 0) {
		const char *comma = memchr(v, ',', len);
		size_t l = comma ? (size_t)(comma - v) : len;
		const char *u = v, *bang;
		size_t ul = l;

		dmarc_trim(&u, &ul);
		if ((bang = memchr(u, '!', ul)) != NULL) {
			size_t k = (size_t)(bang - u) + 1;

			while (k < ul && str_isdigit((unsigned char)u[k]))
				k++;
			if (k < ul && strchr("kmgtKMGT", u[k]) != NULL)
				k++;
			if (k == ul && (size_t)(bang - u) + 1 < ul)
				ul = (size_t)(bang - u);
		}
		if (dmarc_uri_valid(u, ul) && n < AG_DMARC_MAX_URIS)
			out[n++] = arena_strndup(a, u, ul);
		if (comma == NULL)
			break;
		len -= l + 1;
		v = comma + 1;
	}
	return n;
}

/* dmarc_value_ok - dmarc-value: printable ASCII but ';' (4.8) */
static bool
dmarc_value_ok(const char *v, size_t len)
{
	size_t i;

	if (len == 0)
		return false;
	for (i = 0; i < len; i++)
		if ((unsigned char)v[i] < 0x20 || (unsigned char)v[i] > 0x7e)
			return false;
	return true;
}

/* dmarc_tag - apply one tag; unknown ones are ignored */
static void
dmarc_tag(struct arena *a, struct dmarc_record *r, const char *n, size_t nl,
    const char *v, size_t vl)
{
	bool ok = dmarc_value_ok(v, vl);

	if (dmarc_is(n, nl, "p"))
		r->p = ok ? dmarc_policy(v, vl) : AG_DMARC_P_INVALID;
	else if (dmarc_is(n, nl, "sp"))
		r->sp = ok ? dmarc_policy(v, vl) : AG_DMARC_P_INVALID;
	else if (dmarc_is(n, nl, "np"))
		r->np = ok ? dmarc_policy(v, vl) : AG_DMARC_P_INVALID;
	else if (dmarc_is(n, nl, "adkim"))
		r->adkim_strict = ok && dmarc_is(v, vl, "s");
	else if (dmarc_is(n, nl, "aspf"))
		r->aspf_strict = ok && dmarc_is(v, vl, "s");
	else if (dmarc_is(n, nl, "t"))
		r->testing = ok && dmarc_is(v, vl, "y");
	else if (dmarc_is(n, nl, "psd"))
		r->psd = !ok		   ? AG_DMARC_PSD_U
		    : dmarc_is(v, vl, "y") ? AG_DMARC_PSD_Y
		    : dmarc_is(v, vl, "n") ? AG_DMARC_PSD_N
					   : AG_DMARC_PSD_U;
	else if (dmarc_is(n, nl, "rua") && ok)
		r->nrua = dmarc_uris(a, v, vl, r->rua);
	else if (dmarc_is(n, nl, "ruf") && ok)
		r->nruf = dmarc_uris(a, v, vl, r->ruf);
	else if (dmarc_is(n, nl, "fo") && ok)
		r->fo = arena_strndup(a, v, vl);
}

/* dmarc_record_parse - v first, then the tags */
enum ag_dmarc_rec
dmarc_record_parse(struct arena *a, const char *txt, size_t len,
    struct dmarc_record *r, char *why, size_t whylen)
{
	char seen[DMARC_MAX_TAGS][16];
	size_t nseen = 0, i, first = 1;
	const char *whole = txt;
	size_t wholelen = len;

	memset(r, 0, sizeof(*r));
	while (len > 0) {
		const char *semi = memchr(txt, ';', len);
		size_t l = semi ? (size_t)(semi - txt) : len;
		const char *t = txt, *eq, *n, *v;
		size_t tl = l, nl, vl;

		dmarc_trim(&t, &tl);
		txt += l + (semi ? 1 : 0);
		len -= l + (semi ? 1 : 0);
		if (tl == 0) {
			if (first)
				return AG_DMARC_REC_NOT;
			continue; /* an empty tag (";;", trailing ';') */
		}
		eq = memchr(t, '=', tl);
		n = t;
		nl = eq ? (size_t)(eq - t) : tl;
		dmarc_trim(&n, &nl);
		v = eq ? eq + 1 : t + tl;
		vl = eq ? tl - (size_t)(v - t) : 0;
		dmarc_trim(&v, &vl);
		if (first) {
			/* v=DMARC1 and nothing else starts a DMARC record */
			if (eq == NULL || !dmarc_is(n, nl, "v") || vl != 6 ||
			    memcmp(v, "DMARC1", 6) != 0)
				return AG_DMARC_REC_NOT;
			first = 0;
			continue;
		}
		for (i = 0; i < nl; i++)
			if (!str_isalpha((unsigned char)n[i]))
				break;
		if (eq == NULL || nl == 0 || i < nl || nl >= sizeof(seen[0]))
			continue; /* not a tag: ignored (4.8) */
		for (i = 0; i < nseen; i++)
			if (dmarc_is(n, nl, seen[i])) {
				snprintf(why, whylen, "tag '%.*s' given twice",
				    (int)nl, n);
				return AG_DMARC_REC_INVALID;
			}
		if (dmarc_is(n, nl, "v")) {
			snprintf(why, whylen, "tag 'v' given twice");
			return AG_DMARC_REC_INVALID;
		}
		if (nseen < DMARC_MAX_TAGS) {
			memcpy(seen[nseen], n, nl);
			seen[nseen++][nl] = '\0';
		}
		dmarc_tag(a, r, n, nl, v, vl);
	}
	if (first)
		return AG_DMARC_REC_NOT;
	r->text = arena_strndup(a, whole, wholelen);
	return AG_DMARC_REC_OK;
}
