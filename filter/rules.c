/*
 * rules.c - the rules check (see rules.h).
 */
#include <glob.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/cidr.h"
#include "util/str.h"
#include "checks.h"
#include "config.h"
#include "dnsbl.h"
#include "mime.h"
#include "msgctx.h"
#include "rfc5322.h"
#include "rulefile.h"
#include "rules.h"
#include "rules_eval.h"
#include "snapshot.h"

#define RULES_MAX_PARTS 1000 /* MIME parts followed */
#define RULES_MAX_URIS	200  /* distinct URIs kept */

/* A header's text as a rule reads it, built once per message. */
struct rules_field {
	const char *name;
	enum rule_field fmod;
	const char *text;
	size_t len;
	bool present;
	struct rules_field *next;
};

struct rules_msg {
	struct mime *mime;
	char *full; /* the message as received (full rules), up to the limit */
	size_t fulllen, fullcap, limit;
	size_t nuris; /* URIs handed to the URIBL lookups */
	struct rules_field *fields;
	const struct mime_result *res;
	struct rule_matcher *mx;
	bool limited;		  /* a regex hit the match limit */
	const char *limited_rule; /* the first one that did */
};

/* rules_add_files - the files of one rules_files entry (a glob) */
static int
rules_add_files(struct ruleset *rs, const char *pattern, struct buf *err)
{
	glob_t g;
	size_t i;
	int rc;

	rc = glob(pattern, GLOB_ERR, NULL, &g);
	if (rc == GLOB_NOMATCH) {
		/* a pattern may match nothing; a plain path must exist */
		if (strpbrk(pattern, "*?[") == NULL) {
			buf_addf(err, "%s: no such rule file\n", pattern);
			return -1;
		}
		return 0;
	}
	if (rc != 0) {
		buf_addf(err, "%s: cannot list the rule files\n", pattern);
		return -1;
	}
	for (i = 0, rc = 0; i < g.gl_pathc; i++)
		if (ruleset_add_file(rs, g.gl_pathv[i], err) == -1)
			rc = -1;
	globfree(&g);
	return rc;
}

/* rules_load - compile the built-in set and rules_files */
static int
rules_load(struct snapshot *s, struct buf *err)
{
	const struct config *cfg = s->cfg;
	struct ruleset *rs;
	char name[128];
	size_t i;
	int rc = 0;

	if (!cfg->rules_enable)
		return 0;
	rs = ruleset_new((unsigned long)cfg->rules_match_limit);
	for (i = 0; cfg->rules_builtin && i < rules_builtin_nfiles; i++) {
		snprintf(name, sizeof(name), "(built-in) %s",
		    rules_builtin_files[i].name);
		if (ruleset_add_text(rs, name, rules_builtin_files[i].text,
			strlen(rules_builtin_files[i].text), err) == -1)
			rc = -1;
	}
	for (i = 0; i < cfg->rules_files.n; i++)
		if (rules_add_files(rs, cfg->rules_files.v[i], err) == -1)
			rc = -1;
	/* finish even after errors: it reports unknown names and cycles */
	if (ruleset_finish(rs, err) == -1)
		rc = -1;
	if (rc == -1) {
		ruleset_free(rs);
		return -1;
	}
	s->rules = rs;
	return 0;
}

static void
rules_unload(struct snapshot *s)
{
	ruleset_free(s->rules);
	s->rules = NULL;
}

/* rules_on_connect - client DNSBL and rDNS lookups, as early as can be */
static int
rules_on_connect(struct conn *c)
{
	const struct ruleset *rs = c->snap->rules;

	if (rs != NULL && (rs->ndnsbl || (rs->need_rdns && c->cfg->rules_rdns)))
		dnsbl_conn_start(c, rs, rs->need_rdns && c->cfg->rules_rdns);
	return 0;
}

/* rules_free_mx - connection arena destructor for the matcher */
static void
rules_free_mx(void *mx)
{
	ruleset_matcher_free(mx);
}

/* rules_matcher - the connection's matcher, made once: its messages
 * come one at a time, with the rule set of the connection's snapshot */
static struct rule_matcher *
rules_matcher(struct conn *c, const struct ruleset *rs)
{
	struct rule_matcher *mx;

	if (c->rules_mx != NULL)
		return c->rules_mx;
	if ((mx = ruleset_matcher_new(rs)) == NULL)
		return NULL;
	if (arena_defer(c->arena, rules_free_mx, mx) == -1) {
		ruleset_matcher_free(mx);
		return NULL;
	}
	return c->rules_mx = mx;
}

/* rules_full_copy - p[0..n) into out with CR dropped and NUL as a
 * space, a run at a time; the bytes written */
static size_t
rules_full_copy(char *out, const char *p, size_t n)
{
	size_t i = 0, o = 0, cr = 0, nul = 0, stop;
	const char *q;

	while (i < n) {
		/* the next CR and NUL at or after i, n for none */
		if (cr < i || i == 0)
			cr = (q = memchr(p + i, '\r', n - i)) ? (size_t)(q - p)
							      : n;
		if (nul < i || i == 0)
			nul = (q = memchr(p + i, '\0', n - i)) ? (size_t)(q - p)
							       : n;
		stop = cr < nul ? cr : nul;
		memcpy(out + o, p + i, stop - i);
		o += stop - i;
		if (stop == n)
			break;
		if (stop == nul)
			out[o++] = ' ';
		i = stop + 1;
	}
	return o;
}

/* rules_full_add - append to the full-message copy, up to the limit;
 * it grows in place (arena_realloc), leaving no old copies behind */
static void
rules_full_add(struct rules_msg *r, struct arena *a, const char *p, size_t n)
{
	char *nb;
	size_t cap;

	if (r->fulllen + n > r->limit)
		n = r->limit - r->fulllen;
	if (r->fulllen + n + 1 > r->fullcap) {
		cap = r->fullcap ? r->fullcap : 4096;
		while (cap < r->fulllen + n + 1)
			cap *= 2;
		if (cap > r->limit + 1)
			cap = r->limit + 1;
		if ((nb = arena_realloc(a, r->full, r->fullcap, cap)) == NULL)
			return;
		r->full = nb;
		r->fullcap = cap;
	}
	r->fulllen += rules_full_copy(r->full + r->fulllen, p, n);
	r->full[r->fulllen] = '\0';
}

/* rules_active - does this message get scored? */
static bool
rules_active(const struct msg *m)
{
	return m->conn->snap->rules != NULL && m->cfg->rules_enable &&
	    (!m->internal || m->cfg->rules_internal);
}

/* rules_on_eoh - the walker, fed the top-level headers */
static int
rules_on_eoh(struct msg *m)
{
	const struct ruleset *rs = m->conn->snap->rules;
	struct rules_msg *r;
	const struct hdr *h;

	if (!rules_active(m))
		return 0;
	/* m->rulesm is set last: a message whose walker could not be made
	 * (out of memory, an internal error already) is not scored */
	if ((r = arena_zalloc(m->arena, sizeof(*r))) == NULL)
		return -1;
	r->limit = (size_t)m->cfg->rules_scan_limit;
	if ((r->mime = mime_new(
		 m->arena, r->limit, RULES_MAX_PARTS, RULES_MAX_URIS)) == NULL)
		return -1;
	if ((r->mx = rules_matcher(m->conn, rs)) == NULL)
		return -1;
	for (h = m->hdrs; h != NULL; h = h->next) {
		if (mime_header(r->mime, h->name, h->value) == -1)
			return -1;
		if (rs->nfull) {
			rules_full_add(r, m->arena, h->name, h->namelen);
			rules_full_add(r, m->arena, ":", 1);
			rules_full_add(r, m->arena, h->value, h->valuelen);
			rules_full_add(r, m->arena, "\n", 1);
		}
	}
	if (rs->nfull)
		rules_full_add(r, m->arena, "\n", 1);
	m->rulesm = r;
	return 0;
}

/* rules_on_body - stream into the walker; URIBL lookups as URIs appear */
static int
rules_on_body(struct msg *m, const unsigned char *p, size_t len)
{
	const struct ruleset *rs = m->conn->snap->rules;
	struct rules_msg *r = m->rulesm;
	size_t n;

	if (r == NULL)
		return 0;
	if (mime_body(r->mime, p, len) == -1)
		return -1;
	if (rs->nfull && r->fulllen < r->limit)
		rules_full_add(r, m->arena, (const char *)p, len);
	if (rs->nuribl && (n = mime_uri_count(r->mime)) != r->nuris) {
		r->nuris = n;
		dnsbl_uri_start(m, rs, mime_uris(r->mime));
	}
	dnsbl_advance(m);
	return 0;
}

/* rules_on_body_end - end the walk; the URIs found only at the end (the
 * last line, say) are asked about before any check waits for DNS */
static int
rules_on_body_end(struct msg *m)
{
	const struct ruleset *rs = m->conn->snap->rules;
	struct rules_msg *r = m->rulesm;

	if (r == NULL)
		return 0;
	if ((r->res = mime_end(r->mime)) == NULL)
		return -1;
	if (rs->nuribl && r->res->nuris != r->nuris)
		dnsbl_uri_start(m, rs, r->res->uris);
	dnsbl_advance(m);
	return 0;
}

/* rules_unfold - a raw header value on one line, trimmed */
static char *
rules_unfold(struct arena *a, const char *v, size_t len)
{
	char *out = arena_alloc(a, len + 1);
	size_t i, n = 0;

	if (out == NULL)
		return NULL;
	for (i = 0; i < len; i++)
		if (v[i] != '\r' && v[i] != '\n')
			out[n++] = v[i] ? v[i] : ' ';
	out[n] = '\0';
	{
		const char *s = out;
		size_t l = n;

		str_trim(&s, &l);
		memmove(out, s, l);
		out[l] = '\0';
	}
	return out;
}

/* rules_names - the display names of an address list, one per line */
static void
rules_names(struct arena *a, const char *v, struct buf *b)
{
	const char *p = v, *start = v;
	int depth = 0;
	bool q = false;

	for (;; p++) {
		if (*p == '\\' && q && p[1]) {
			p++;
			continue;
		}
		if (*p == '"')
			q = !q;
		else if (!q && *p == '(')
			depth++;
		else if (!q && *p == ')' && depth > 0)
			depth--;
		if (*p != '\0' && (q || depth || *p != ','))
			continue;
		{
			const char *lt = NULL, *s;

			for (s = start; s < p; s++)
				if (*s == '<') {
					lt = s;
					break;
				}
			if (lt != NULL) {
				char *n = arena_strndup(
				    a, start, (size_t)(lt - start));
				char *d = n
				    ? mime_decode_header(a, n, strlen(n))
				    : NULL;

				if (d != NULL && *d) {
					size_t l = strlen(d);

					if (l >= 2 && d[0] == '"' &&
					    d[l - 1] == '"')
						d[l - 1] = '\0', d++;
					buf_addstr(b, d);
					buf_addch(b, '\n');
				}
			}
		}
		if (*p == '\0')
			break;
		start = p + 1;
	}
}

/* rules_field_text - one header instance as the modifier asks */
static void
rules_field_text(
    struct msg *m, const struct hdr *h, enum rule_field fmod, struct buf *b)
{
	struct rfc5322_addr addrs[AG_R5322_MAX_ADDRS];
	char *t;
	int n, i;

	switch (fmod) {
	case RULE_F_RAW:
		if ((t = rules_unfold(m->arena, h->value, h->valuelen)) != NULL)
			buf_addstr(b, t);
		break;
	case RULE_F_ADDR:
		n = rfc5322_addr_list(
		    m->arena, h->value, h->valuelen, addrs, AG_R5322_MAX_ADDRS);
		for (i = 0; i < n && i < AG_R5322_MAX_ADDRS; i++)
			buf_addf(b, "%s%s%s%s", i ? "\n" : "", addrs[i].local,
			    *addrs[i].domain ? "@" : "", addrs[i].domain);
		break;
	case RULE_F_NAME:
		if ((t = rules_unfold(m->arena, h->value, h->valuelen)) != NULL)
			rules_names(m->arena, t, b);
		if (b->len && b->data[b->len - 1] == '\n')
			buf_setlen(b, b->len - 1);
		break;
	default:
		if ((t = mime_decode_header(m->arena, h->value, h->valuelen)) !=
		    NULL)
			buf_addstr(b, t);
		break;
	}
}

/* rules_field - the text a header rule reads (cached per message) */
static const struct rules_field *
rules_field(struct msg *m, const char *name, enum rule_field fmod)
{
	struct rules_msg *r = m->rulesm;
	struct rules_field *f;
	struct buf b = BUF_INIT;
	const struct hdr *h;

	for (f = r->fields; f != NULL; f = f->next)
		if (f->fmod == fmod && str_casecmp(f->name, name) == 0)
			return f;
	if ((f = arena_zalloc(m->arena, sizeof(*f))) == NULL)
		return NULL;
	f->name = name;
	f->fmod = fmod;
	for (h = m->hdrs; h != NULL; h = h->next) {
		if (fmod == RULE_F_ALL) {
			buf_addf(&b, "%s: ", h->name);
			rules_field_text(m, h, RULE_F_DECODED, &b);
			buf_addch(&b, '\n');
			f->present = true;
			continue;
		}
		if (!str_caseeq_len(h->name, h->namelen, name))
			continue;
		if (f->present)
			buf_addch(&b, '\n');
		f->present = true;
		rules_field_text(m, h, fmod, &b);
	}
	f->text = arena_strndup(m->arena, b.data, b.len);
	f->len = b.len;
	buf_release(&b);
	if (f->text == NULL)
		return NULL;
	f->next = r->fields;
	r->fields = f;
	return f;
}

/* rules_header - one header rule */
static bool
rules_header(struct msg *m, const struct ruleset *rs, const struct rule *ru)
{
	const struct rules_field *f;
	const char *t;
	size_t len;

	if (ru->exists) {
		const struct hdr *h;

		for (h = m->hdrs; h != NULL; h = h->next)
			if (str_caseeq_len(h->name, h->namelen, ru->field))
				return true;
		return false;
	}
	if ((f = rules_field(m, ru->field, ru->fmod)) == NULL)
		return false;
	t = f->text, len = f->len;
	if (!f->present && ru->if_unset != NULL)
		t = ru->if_unset, len = strlen(t);
	return ruleset_match(rs, ru, t, len, m->rulesm->mx,
		   &m->rulesm->limited) != ru->negate;
}

/* rules_body_text - Subject as the first paragraph, then the text */
static const char *
rules_body_text(struct msg *m, size_t *lenp)
{
	const struct rules_field *f = rules_field(m, "Subject", RULE_F_DECODED);
	const struct mime_result *res = m->rulesm->res;
	char *t;
	size_t sl = f ? f->len : 0;

	if ((t = arena_alloc(m->arena, sl + 1 + res->textlen + 1)) == NULL)
		return NULL;
	if (sl)
		memcpy(t, f->text, sl);
	t[sl] = '\n';
	memcpy(t + sl + 1, res->text, res->textlen);
	t[sl + 1 + res->textlen] = '\0';
	*lenp = sl + 1 + res->textlen;
	return t;
}

/* rules_evaluate - every rule in order; hits[i] set */
static void
rules_evaluate(struct msg *m, const struct ruleset *rs, unsigned char *hits)
{
	struct rules_msg *r = m->rulesm;
	const char *body = NULL;
	size_t k, bodylen = 0;

	for (k = 0; k < rs->norder; k++) {
		size_t i = rs->order[k];
		const struct rule *ru = &rs->rules[i];
		const struct mime_uri *u;

		switch (ru->type) {
		case RULE_HEADER:
			hits[i] = rules_header(m, rs, ru);
			break;
		case RULE_BODY:
			if (body == NULL &&
			    (body = rules_body_text(m, &bodylen)) == NULL)
				break;
			hits[i] = ruleset_match(
			    rs, ru, body, bodylen, r->mx, &r->limited);
			break;
		case RULE_RAWBODY:
			hits[i] = ruleset_match(rs, ru, r->res->raw,
			    r->res->rawlen, r->mx, &r->limited);
			break;
		case RULE_FULL:
			hits[i] = r->full != NULL &&
			    ruleset_match(rs, ru, r->full, r->fulllen, r->mx,
				&r->limited);
			break;
		case RULE_URI:
			for (u = r->res->uris; u != NULL && !hits[i];
			     u = u->next)
				hits[i] = ruleset_match(rs, ru, u->uri,
				    strlen(u->uri), r->mx, &r->limited);
			break;
		case RULE_META:
			hits[i] = ruleset_meta(ru, hits);
			break;
		case RULE_EVAL:
			hits[i] = rules_eval(m, ru, r->res);
			break;
		default: /* dnsbl, uribl: set by dnsbl_collect */
			break;
		}
		if (r->limited && r->limited_rule == NULL)
			r->limited_rule = ru->name;
	}
}

/* rules_hit_cmp - higher scores first, then by name */
static int
rules_hit_cmp(const void *a, const void *b)
{
	const struct rule_hit *x = a, *y = b;

	if (x->score != y->score)
		return x->score < y->score ? 1 : -1;
	return strcmp(x->name, y->name);
}

/* rules_on_eom - evaluate, score, list the hits */
static int
rules_on_eom(struct msg *m)
{
	const struct ruleset *rs = m->conn->snap->rules;
	struct rules_msg *r = m->rulesm;
	unsigned char *hits;
	size_t i, n = 0;

	if (r == NULL || r->res == NULL) /* no walk, or it failed */
		return 0;
	if ((hits = arena_zalloc(m->arena, rs->n ? rs->n : 1)) == NULL)
		return -1;
	dnsbl_collect(m, rs, hits);
	rules_evaluate(m, rs, hits);
	/* a rule scored 0 is off: it may feed metas, it is not reported */
	for (i = 0; i < rs->n; i++)
		n += hits[i] && !rs->rules[i].sub && rs->rules[i].score != 0;
	if (n &&
	    (m->hits = arena_allocarray(m->arena, n, sizeof(*m->hits))) == NULL)
		return -1;
	m->score = 0;
	for (i = 0; i < rs->n; i++) {
		const struct rule *ru = &rs->rules[i];

		if (!hits[i] || ru->sub || ru->score == 0)
			continue;
		m->hits[m->nhits].name = ru->name;
		m->hits[m->nhits].score = ru->score;
		m->hits[m->nhits].describe = ru->describe;
		m->nhits++;
		m->score += ru->score;
	}
	if (m->nhits > 1)
		qsort(m->hits, m->nhits, sizeof(*m->hits), rules_hit_cmp);
	m->scored = true;
	if (r->limited)
		log_msg(m, LOG_NOTICE,
		    "rules: %s (and maybe others) reached rules_match_limit; "
		    "it counted as no match",
		    r->limited_rule ? r->limited_rule : "a rule");
	return 0;
}

const struct check rules_check = {
    .name = "rules",
    .load = rules_load,
    .unload = rules_unload,
    .on_connect = rules_on_connect,
    .on_eoh = rules_on_eoh,
    .on_body = rules_on_body,
    .on_body_end = rules_on_body_end,
    .on_eom = rules_on_eom,
};
