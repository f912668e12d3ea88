/*
 * rulefile.c - parse and compile rule files (see rulefile.h and
 * authgate-rules(5)).
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "dns.h"
#include "rulefile.h"

#define RF_MAX_ERRORS	50
#define RF_MAX_RULES	100000
#define RF_MAX_FILE	(16L * 1024 * 1024)
#define RF_MAX_NAME	64
#define RF_MAX_PROG	256 /* meta program steps */
#define RF_HEAP_LIMIT_K 8192

/* A score or describe line, applied by name at finish. */
struct rule_score {
	char *name;
	double score;
	char *text;
	const char *file;
	int line;
};

/* The parser's position: one line of one file. */
struct rf_ctx {
	struct ruleset *set;
	const char *file;
	size_t fileno;
	int line;
	struct buf *err;
	unsigned nerr;
};

/* rf_error - one "FILE:LINE: message" line */
static void __attribute__((format(printf, 2, 3)))
rf_error(struct rf_ctx *c, const char *fmt, ...)
{
	va_list ap;

	if (++c->nerr > RF_MAX_ERRORS)
		return;
	buf_addf(c->err, "%s:%d: ", c->file, c->line);
	va_start(ap, fmt);
	buf_vaddf(c->err, fmt, ap);
	va_end(ap);
	buf_addch(c->err, '\n');
	if (c->nerr == RF_MAX_ERRORS)
		buf_addf(c->err, "%s: too many errors, stopped\n", c->file);
}

/* The built-in tests: name, argument counts, argument kind. */
struct rf_func {
	const char *name;
	int min, max;
	const char *words; /* NULL: numbers; else allowed words, ','-ended */
};

static const char rf_spf_words[] =
    "pass,fail,softfail,neutral,none,temperror,permerror,";
static const char rf_dkim_words[] =
    "pass,fail,policy,neutral,none,temperror,permerror,";
static const char rf_dmarc_words[] = "pass,fail,none,temperror,permerror,";

static const struct rf_func rf_funcs[RF_MAX] = {
    [RF_DATE_MISSING] = {"date_missing", 0, 0, NULL},
    [RF_DATE_INVALID] = {"date_invalid", 0, 0, NULL},
    [RF_DATE_VS_RECEIVED] = {"date_vs_received", 2, 2, NULL},
    [RF_MSGID_MISSING] = {"msgid_missing", 0, 0, NULL},
    [RF_MSGID_INVALID] = {"msgid_invalid", 0, 0, NULL},
    [RF_FROM_MISSING] = {"from_missing", 0, 0, NULL},
    [RF_FROM_NAME_HAS_ADDRESS] = {"from_name_has_address", 0, 0, NULL},
    [RF_TO_MISSING] = {"to_missing", 0, 0, NULL},
    [RF_HELO_IP_LITERAL] = {"helo_ip_literal", 0, 0, NULL},
    [RF_HELO_NOT_FQDN] = {"helo_not_fqdn", 0, 0, NULL},
    [RF_HELO_MISMATCH_IP] = {"helo_mismatch_ip", 0, 0, NULL},
    [RF_CLIENT_NO_RDNS] = {"client_no_rdns", 0, 0, NULL},
    [RF_CLIENT_NO_FCRDNS] = {"client_no_fcrdns", 0, 0, NULL},
    [RF_CLIENT_DYNAMIC_RDNS] = {"client_dynamic_rdns", 0, 0, NULL},
    [RF_SPF_RESULT] = {"spf_result", 1, RULE_MAX_ARGS, rf_spf_words},
    [RF_SPF_HELO_RESULT] = {"spf_helo_result", 1, RULE_MAX_ARGS, rf_spf_words},
    [RF_DKIM_RESULT] = {"dkim_result", 1, RULE_MAX_ARGS, rf_dkim_words},
    [RF_DKIM_AUTHOR_PASS] = {"dkim_author_pass", 0, 0, NULL},
    [RF_DMARC_RESULT] = {"dmarc_result", 1, RULE_MAX_ARGS, rf_dmarc_words},
    [RF_SUBJECT_ALL_CAPS] = {"subject_all_caps", 1, 1, NULL},
    [RF_SUBJECT_MISSING] = {"subject_missing", 0, 0, NULL},
    [RF_HTML_ONLY] = {"html_only", 0, 0, NULL},
    [RF_HTML_IMAGES_LITTLE_TEXT] = {"html_images_little_text", 2, 2, NULL},
    [RF_TEXT_BASE64] = {"text_base64", 0, 0, NULL},
    [RF_MIME_BROKEN] = {"mime_broken", 0, 0, NULL},
    [RF_MIME_PARTS] = {"mime_parts", 1, 1, NULL},
    [RF_RCPT_COUNT] = {"rcpt_count", 1, 1, NULL},
    [RF_HEADER_RCPT_COUNT] = {"header_rcpt_count", 1, 1, NULL},
    [RF_URI_IP_LITERAL] = {"uri_ip_literal", 0, 0, NULL},
    [RF_URI_COUNT] = {"uri_count", 1, 1, NULL},
    [RF_MAILFROM_NULL] = {"mailfrom_null", 0, 0, NULL},
};

const char *
ruleset_func_name(enum rule_func f)
{
	return (unsigned)f < RF_MAX ? rf_funcs[f].name : "?";
}

struct ruleset *
ruleset_new(unsigned long match_limit)
{
	struct ruleset *s = xcalloc(1, sizeof(*s));

	s->match_limit = match_limit ? match_limit : 100000;
	return s;
}

/* rf_rule_clear - free what a rule owns */
static void
rf_rule_clear(struct rule *r)
{
	size_t i;

	free(r->name);
	free(r->describe);
	free(r->field);
	free(r->if_unset);
	if (r->re != NULL)
		pcre2_code_free(r->re);
	if (r->re_ascii != NULL)
		pcre2_code_free(r->re_ascii);
	free(r->re_text);
	for (i = 0; i < r->nprog; i++)
		free(r->prog[i].name);
	free(r->prog);
	for (i = 0; i < r->argc; i++)
		free(r->args[i]);
	free(r->zone);
	memset(r, 0, sizeof(*r));
}

void
ruleset_free(struct ruleset *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n; i++)
		rf_rule_clear(&s->rules[i]);
	free(s->rules);
	free(s->order);
	for (i = 0; i < s->nfiles; i++)
		free(s->files[i]);
	free(s->files);
	for (i = 0; i < s->nscores; i++)
		free(s->scores[i].name);
	free(s->scores);
	for (i = 0; i < s->ndescs; i++) {
		free(s->descs[i].name);
		free(s->descs[i].text);
	}
	free(s->descs);
	if (s->mctx != NULL)
		pcre2_match_context_free(s->mctx);
	free(s);
	/* the JIT allocator keeps freed executable chunks for reuse: give
	 * them back, or each reload's rule set stays in the RSS */
	pcre2_jit_free_unused_memory(NULL);
}

long
ruleset_find(const struct ruleset *s, const char *name)
{
	size_t i;

	for (i = 0; i < s->n; i++)
		if (strcmp(s->rules[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* rf_skip - past white space */
static const char *
rf_skip(const char *p)
{
	while (*p == ' ' || *p == '\t')
		p++;
	return p;
}

/* rf_word - the next run of non-blank characters (copied), p advanced */
static char *
rf_word(const char **pp)
{
	const char *p = rf_skip(*pp), *s = p;

	while (*p && *p != ' ' && *p != '\t')
		p++;
	*pp = p;
	return p > s ? xstrndup(s, (size_t)(p - s)) : NULL;
}

/* rf_trailing - only white space or a "#" comment left? */
static bool
rf_trailing(const char *p)
{
	p = rf_skip(p);
	return *p == '\0' || *p == '#';
}

/* rf_name_ok - [A-Za-z0-9_]{1,64} */
static bool
rf_name_ok(const char *n)
{
	size_t i;

	for (i = 0; n[i]; i++)
		if (!str_isalnum((unsigned char)n[i]) && n[i] != '_')
			return false;
	return i > 0 && i <= RF_MAX_NAME;
}

/* rf_closer - the closing delimiter of a regex opened with d */
static char
rf_closer(char d)
{
	switch (d) {
	case '{':
		return '}';
	case '(':
		return ')';
	case '[':
		return ']';
	case '<':
		return '>';
	default:
		return d;
	}
}

/*
 * rf_regex - parse /RE/FLAGS or mXREX (X any punctuation) at *pp; the
 * pattern (a "\" before the delimiter unescaped) and the PCRE2 options.
 */
static int
rf_regex(struct rf_ctx *c, const char **pp, char **pat, uint32_t *opts)
{
	const char *p = rf_skip(*pp), *s;
	char open, close;
	struct buf b = BUF_INIT;

	if (*p == '/')
		open = *p++;
	else if (*p == 'm' && p[1] != '\0' &&
	    strchr("/{(<[!|#,:;%@~^'\"", p[1]))
		open = p[1], p += 2;
	else {
		rf_error(c, "expected a regex (/.../ or m{...})");
		return -1;
	}
	close = rf_closer(open);
	for (s = p; *p && *p != close; p++) {
		if (*p == '\\' && p[1] != '\0') {
			if (p[1] == close && strchr("/!|#,:;%@~^'\"", close))
				p++; /* \/ is just / to PCRE2 */
			else
				buf_addch(&b, *p++);
		}
		buf_addch(&b, *p);
	}
	(void)s;
	if (*p != close) {
		rf_error(c, "regex not closed (no '%c')", close);
		buf_release(&b);
		return -1;
	}
	p++;
	*opts = 0;
	for (; *p && *p != ' ' && *p != '\t'; p++) {
		switch (*p) {
		case 'i':
			*opts |= PCRE2_CASELESS;
			break;
		case 'm':
			*opts |= PCRE2_MULTILINE;
			break;
		case 's':
			*opts |= PCRE2_DOTALL;
			break;
		case 'x':
			*opts |= PCRE2_EXTENDED;
			break;
		default:
			rf_error(
			    c, "unknown regex flag '%c' (want i, m, s, x)", *p);
			buf_release(&b);
			return -1;
		}
	}
	*pp = p;
	buf_addch(&b, '\0');
	*pat = buf_detach(&b, NULL);
	return 0;
}

/*
 * rf_compile_ascii - r->re_ascii: the pattern compiled without UTF, its
 * leading (*UCP) and (*UTF) verbs dropped. On a subject of ASCII bytes
 * only, \w, \d, \s, \b, POSIX classes and caseless letters mean the same
 * with and without them, and pattern bytes past 127 match nothing either
 * way. A pattern that does not compile so (code points past 255) keeps
 * re alone.
 */
static void
rf_compile_ascii(struct rule *r, uint32_t opts)
{
	const char *p = r->re_text;
	PCRE2_SIZE off;
	int code;

	for (;;) {
		if (strncmp(p, "(*UCP)", 6) == 0 ||
		    strncmp(p, "(*UTF)", 6) == 0)
			p += 6;
		else
			break;
	}
	r->re_ascii = pcre2_compile(
	    (PCRE2_SPTR)p, PCRE2_ZERO_TERMINATED, opts, &code, &off, NULL);
	if (r->re_ascii != NULL)
		pcre2_jit_compile(r->re_ascii, PCRE2_JIT_COMPLETE);
}

/* rf_compile - compile the rule's pattern; errors point into it */
static int
rf_compile(struct rf_ctx *c, struct rule *r, uint32_t opts)
{
	int code;
	PCRE2_SIZE off;
	PCRE2_UCHAR msg[256];

	r->re = pcre2_compile((PCRE2_SPTR)r->re_text, PCRE2_ZERO_TERMINATED,
	    opts | PCRE2_UTF | PCRE2_MATCH_INVALID_UTF, &code, &off, NULL);
	if (r->re == NULL) {
		pcre2_get_error_message(code, msg, sizeof(msg));
		rf_error(c, "bad regex at offset %zu: %s", (size_t)off,
		    (const char *)msg);
		return -1;
	}
	if (pcre2_jit_compile(r->re, PCRE2_JIT_COMPLETE) == 0)
		c->set->jit = true;
	rf_compile_ascii(r, opts);
	return 0;
}

/* rf_header - FIELD =~ /RE/ [if-unset: TEXT], FIELD !~ ..., exists:FIELD */
static int
rf_header(struct rf_ctx *c, struct rule *r, const char *p)
{
	const char *s, *colon;
	uint32_t opts;
	size_t len;

	p = rf_skip(p);
	if (strncmp(p, "exists:", 7) == 0) {
		r->exists = true;
		p += 7;
	}
	for (s = p; *p && *p != ' ' && *p != '\t' && *p != '=' && *p != '!';
	     p++)
		if ((unsigned char)*p < 33 || (unsigned char)*p > 126)
			break;
	if (p == s) {
		rf_error(c, "header rule without a header name");
		return -1;
	}
	len = (size_t)(p - s);
	r->field = xstrndup(s, len);
	if ((colon = strchr(r->field, ':')) != NULL) {
		const char *mod = colon + 1;

		if (strcmp(mod, "raw") == 0)
			r->fmod = RULE_F_RAW;
		else if (strcmp(mod, "addr") == 0)
			r->fmod = RULE_F_ADDR;
		else if (strcmp(mod, "name") == 0)
			r->fmod = RULE_F_NAME;
		else {
			rf_error(c,
			    "unknown header modifier ':%s' (want "
			    ":raw, :addr or :name)",
			    mod);
			return -1;
		}
		r->field[colon - r->field] = '\0';
		if (r->field[0] == '\0') {
			rf_error(c, "header rule without a header name");
			return -1;
		}
	}
	if (strcmp(r->field, "ALL") == 0) {
		if (r->fmod != RULE_F_DECODED || r->exists) {
			rf_error(c, "ALL takes no modifier and no exists:");
			return -1;
		}
		r->fmod = RULE_F_ALL;
	}
	if (r->exists)
		return rf_trailing(p)
		    ? 0
		    : (rf_error(c, "text after exists:%s", r->field), -1);
	p = rf_skip(p);
	if (strncmp(p, "=~", 2) == 0)
		r->negate = false;
	else if (strncmp(p, "!~", 2) == 0)
		r->negate = true;
	else {
		rf_error(c, "expected =~ or !~ after %s", r->field);
		return -1;
	}
	p += 2;
	if (rf_regex(c, &p, &r->re_text, &opts) == -1)
		return -1;
	p = rf_skip(p);
	if (strncmp(p, "[if-unset:", 10) == 0) {
		const char *e = strchr(p, ']');

		if (e == NULL) {
			rf_error(c, "[if-unset: not closed with ]");
			return -1;
		}
		s = rf_skip(p + 10);
		r->if_unset = xstrndup(s, (size_t)(e - s));
		p = e + 1;
	}
	if (!rf_trailing(p)) {
		rf_error(c, "unexpected text after the regex: %s", rf_skip(p));
		return -1;
	}
	return rf_compile(c, r, opts);
}

/* rf_pattern - body/rawbody/full/uri: just /RE/FLAGS */
static int
rf_pattern(struct rf_ctx *c, struct rule *r, const char *p)
{
	uint32_t opts;

	if (rf_regex(c, &p, &r->re_text, &opts) == -1)
		return -1;
	if (!rf_trailing(p)) {
		rf_error(c, "unexpected text after the regex: %s", rf_skip(p));
		return -1;
	}
	return rf_compile(c, r, opts);
}

/* Meta expressions: recursive descent into RPN. */
struct rf_expr {
	struct rf_ctx *c;
	struct rule *r;
	const char *p;
	int depth;
	size_t alloc;
};

static int rf_expr_or(struct rf_expr *);

/* rf_emit - append one step */
static int
rf_emit(struct rf_expr *e, enum rule_opcode op, long v, char *name)
{
	struct rule *r = e->r;

	if (r->nprog >= RF_MAX_PROG) {
		free(name);
		rf_error(e->c, "meta expression too long (over %d terms)",
		    RF_MAX_PROG);
		return -1;
	}
	if (r->nprog == e->alloc) {
		e->alloc = e->alloc ? 2 * e->alloc : 16;
		r->prog = xreallocarray(r->prog, e->alloc, sizeof(*r->prog));
	}
	r->prog[r->nprog].op = op;
	r->prog[r->nprog].v = v;
	r->prog[r->nprog].name = name;
	r->nprog++;
	return 0;
}

/* rf_expr_tok - is the next token t? (consumed if so) */
static bool
rf_expr_tok(struct rf_expr *e, const char *t)
{
	size_t n = strlen(t);

	e->p = rf_skip(e->p);
	if (strncmp(e->p, t, n) != 0)
		return false;
	/* "<" is not "<=", "!" is not "!=" */
	if ((t[0] == '<' || t[0] == '>' || t[0] == '!') && n == 1 &&
	    e->p[1] == '=')
		return false;
	e->p += n;
	return true;
}

/* rf_expr_unary - ! unary, ( expr ), a name or a number */
static int
rf_expr_unary(struct rf_expr *e)
{
	const char *s;

	if (++e->depth > 64) {
		rf_error(e->c, "meta expression nested too deeply");
		return -1;
	}
	if (rf_expr_tok(e, "!")) {
		if (rf_expr_unary(e) == -1)
			return -1;
		e->depth--;
		return rf_emit(e, ROP_NOT, 0, NULL);
	}
	if (rf_expr_tok(e, "(")) {
		if (rf_expr_or(e) == -1)
			return -1;
		if (!rf_expr_tok(e, ")")) {
			rf_error(e->c, "meta: ')' expected at '%s'", e->p);
			return -1;
		}
		e->depth--;
		return 0;
	}
	e->p = rf_skip(e->p);
	for (s = e->p; str_isalnum((unsigned char)*e->p) || *e->p == '_';
	     e->p++)
		;
	if (e->p == s) {
		rf_error(e->c, "meta: rule name or number expected at '%s'",
		    *s ? s : "end of line");
		return -1;
	}
	e->depth--;
	if (str_isdigit((unsigned char)*s)) {
		unsigned long long v;
		if (str_parse_uint(s, (size_t)(e->p - s), 1000000, &v) == -1) {
			rf_error(e->c,
			    "meta: '%.*s' is not a number up to "
			    "1000000",
			    (int)(e->p - s), s);
			return -1;
		}
		return rf_emit(e, ROP_NUM, (long)v, NULL);
	}
	if ((size_t)(e->p - s) > RF_MAX_NAME) {
		rf_error(e->c, "meta: rule name too long");
		return -1;
	}
	return rf_emit(e, ROP_RULE, -1, xstrndup(s, (size_t)(e->p - s)));
}

/* rf_expr_binary - one precedence level of left-associative operators */
static int
rf_expr_level(struct rf_expr *e, int level)
{
	static const struct {
		const char *tok;
		enum rule_opcode op;
		int level;
	} ops[] = {
	    {"||", ROP_OR, 0},
	    {"&&", ROP_AND, 1},
	    {"==", ROP_EQ, 2},
	    {"!=", ROP_NE, 2},
	    {"<=", ROP_LE, 3},
	    {">=", ROP_GE, 3},
	    {"<", ROP_LT, 3},
	    {">", ROP_GT, 3},
	    {"+", ROP_ADD, 4},
	    {"-", ROP_SUB, 4},
	};
	size_t i;
	bool again;

	if ((level == 5 ? rf_expr_unary(e) : rf_expr_level(e, level + 1)) == -1)
		return -1;
	do {
		again = false;
		for (i = 0; i < sizeof(ops) / sizeof(ops[0]); i++) {
			if (ops[i].level != level ||
			    !rf_expr_tok(e, ops[i].tok))
				continue;
			if ((level == 4 ? rf_expr_unary(e)
					: rf_expr_level(e, level + 1)) == -1 ||
			    rf_emit(e, ops[i].op, 0, NULL) == -1)
				return -1;
			again = true;
			break;
		}
	} while (again);
	return 0;
}

static int
rf_expr_or(struct rf_expr *e)
{
	return rf_expr_level(e, 0);
}

/* rf_meta - NAME EXPRESSION */
static int
rf_meta(struct rf_ctx *c, struct rule *r, const char *p)
{
	struct rf_expr e = {c, r, p, 0, 0};
	const char *hash = strchr(p, '#');
	char *text = hash ? xstrndup(p, (size_t)(hash - p)) : xstrdup(p);
	int rc;

	e.p = text;
	if ((rc = rf_expr_or(&e)) == 0 && *rf_skip(e.p) != '\0') {
		rf_error(c, "meta: unexpected '%s'", rf_skip(e.p));
		rc = -1;
	}
	free(text);
	return rc;
}

/* rf_eval - NAME function(arg, ...) */
static int
rf_eval(struct rf_ctx *c, struct rule *r, const char *p)
{
	const char *s, *open, *close;
	size_t f, n;

	p = rf_skip(p);
	if ((open = strchr(p, '(')) == NULL ||
	    (close = strchr(open, ')')) == NULL) {
		rf_error(c, "eval wants function(arguments)");
		return -1;
	}
	if (!rf_trailing(close + 1)) {
		rf_error(c, "unexpected text after ')'");
		return -1;
	}
	for (n = (size_t)(open - p);
	     n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\t'); n--)
		;
	for (f = 0; f < RF_MAX; f++)
		if (strlen(rf_funcs[f].name) == n &&
		    strncmp(rf_funcs[f].name, p, n) == 0)
			break;
	if (f == RF_MAX) {
		rf_error(c, "unknown eval function '%.*s'", (int)n, p);
		return -1;
	}
	r->func = (enum rule_func)f;
	for (s = rf_skip(open + 1); s < close;) {
		const char *e = s;
		size_t len;

		while (e < close && *e != ',')
			e++;
		len = (size_t)(e - s);
		while (len > 0 && (s[len - 1] == ' ' || s[len - 1] == '\t'))
			len--;
		if (len == 0) {
			rf_error(c, "%s: empty argument", rf_funcs[f].name);
			return -1;
		}
		if (r->argc == RULE_MAX_ARGS) {
			rf_error(c, "%s: too many arguments", rf_funcs[f].name);
			return -1;
		}
		r->args[r->argc] = xstrndup(s, len);
		if (rf_funcs[f].words == NULL) {
			char *end;

			errno = 0;
			r->nargs[r->argc] = strtod(r->args[r->argc], &end);
			if (*end != '\0' || errno != 0 ||
			    r->nargs[r->argc] < 0) {
				rf_error(c, "%s: '%s' is not a number >= 0",
				    rf_funcs[f].name, r->args[r->argc]);
				r->argc++;
				return -1;
			}
		} else {
			char want[32];

			snprintf(want, sizeof(want), "%s,", r->args[r->argc]);
			str_tolower(want);
			if (len > 20 ||
			    strstr(rf_funcs[f].words, want) == NULL ||
			    (strstr(rf_funcs[f].words, want) !=
				    rf_funcs[f].words &&
				strstr(rf_funcs[f].words, want)[-1] != ',')) {
				rf_error(c, "%s: '%s' is not one of %s",
				    rf_funcs[f].name, r->args[r->argc],
				    rf_funcs[f].words);
				r->argc++;
				return -1;
			}
			str_tolower(r->args[r->argc]);
		}
		r->argc++;
		s = e < close ? rf_skip(e + 1) : e;
	}
	if ((int)r->argc < rf_funcs[f].min || (int)r->argc > rf_funcs[f].max) {
		rf_error(c, "%s takes %d to %d arguments, not %zu",
		    rf_funcs[f].name, rf_funcs[f].min, rf_funcs[f].max,
		    r->argc);
		return -1;
	}
	return 0;
}

/* rf_ip4 - dotted quad into a[4] */
static int
rf_ip4(const char *s, size_t len, unsigned char a[4])
{
	char tmp[16];
	unsigned v[4];
	char extra;

	if (len == 0 || len >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, len);
	tmp[len] = '\0';
	if (sscanf(tmp, "%3u.%3u.%3u.%3u%c", &v[0], &v[1], &v[2], &v[3],
		&extra) != 4 ||
	    v[0] > 255 || v[1] > 255 || v[2] > 255 || v[3] > 255)
		return -1;
	a[0] = (unsigned char)v[0], a[1] = (unsigned char)v[1];
	a[2] = (unsigned char)v[2], a[3] = (unsigned char)v[3];
	return 0;
}

/* rf_codes - "127.0.0.2,127.0.0.4-127.0.0.7" or "&0x04"; default: any
 * 127/8 answer but the 127.255.255.x error codes lists use */
static int
rf_codes(struct rf_ctx *c, struct rule_codes *k, const char *p)
{
	static const unsigned char dlo[4] = {127, 0, 0, 0};
	static const unsigned char dhi[4] = {127, 255, 254, 255};
	const char *e;

	p = rf_skip(p);
	if (rf_trailing(p)) {
		memcpy(k->lo[0], dlo, 4);
		memcpy(k->hi[0], dhi, 4);
		k->n = 1;
		return 0;
	}
	if (*p == '&') {
		char *end;
		unsigned long m;

		errno = 0;
		m = strtoul(p + 1, &end, 0);
		if (end == p + 1 || errno || m == 0 || m > 255 ||
		    !rf_trailing(end)) {
			rf_error(
			    c, "bad return-code mask '%s' (want &1..&255)", p);
			return -1;
		}
		k->mask = (unsigned)m;
		return 0;
	}
	while (!rf_trailing(p)) {
		const char *dash;

		for (e = p; *e && *e != ',' && *e != ' ' && *e != '\t'; e++)
			;
		if (k->n == 8) {
			rf_error(c, "more than 8 return codes");
			return -1;
		}
		dash = memchr(p, '-', (size_t)(e - p));
		if (rf_ip4(p, dash ? (size_t)(dash - p) : (size_t)(e - p),
			k->lo[k->n]) == -1 ||
		    (dash &&
			rf_ip4(dash + 1, (size_t)(e - dash - 1), k->hi[k->n]) ==
			    -1) ||
		    k->lo[k->n][0] != 127) {
			rf_error(c,
			    "bad return code '%.*s' (want 127.x.x.x or "
			    "a range A-B)",
			    (int)(e - p), p);
			return -1;
		}
		if (!dash)
			memcpy(k->hi[k->n], k->lo[k->n], 4);
		if (memcmp(k->lo[k->n], k->hi[k->n], 4) > 0) {
			rf_error(c, "return-code range '%.*s' is backwards",
			    (int)(e - p), p);
			return -1;
		}
		k->n++;
		p = rf_skip(e);
		if (*p == ',')
			p = rf_skip(p + 1);
	}
	return 0;
}

bool
ruleset_codes_match(const struct rule_codes *k, const unsigned char a[4])
{
	size_t i;

	if (a[0] != 127)
		return false;
	if (k->mask)
		return (a[3] & k->mask) != 0;
	for (i = 0; i < k->n; i++)
		if (memcmp(a, k->lo[i], 4) >= 0 && memcmp(a, k->hi[i], 4) <= 0)
			return true;
	return false;
}

/* rf_list - NAME ZONE [CODES] */
static int
rf_list(struct rf_ctx *c, struct rule *r, const char *p)
{
	r->zone = rf_word(&p);
	if (r->zone == NULL || r->zone[0] == '#') {
		rf_error(c, "%s wants a zone",
		    r->type == RULE_DNSBL ? "dnsbl" : "uribl");
		return -1;
	}
	if (r->zone[strlen(r->zone) - 1] == '.')
		r->zone[strlen(r->zone) - 1] = '\0';
	str_tolower(r->zone);
	if (!dns_name_valid(r->zone) || strchr(r->zone, '.') == NULL ||
	    strlen(r->zone) > 200) {
		rf_error(c, "'%s' is not a DNS zone name", r->zone);
		return -1;
	}
	return rf_codes(c, &r->codes, p);
}

/* rf_define - a new rule (or the redefinition of one of an earlier file) */
static struct rule *
rf_define(struct rf_ctx *c, const char *name, enum rule_type type)
{
	struct ruleset *s = c->set;
	long i = ruleset_find(s, name);
	struct rule *r;

	if (i >= 0) {
		r = &s->rules[i];
		if (r->file == c->file) {
			rf_error(c, "%s is already defined at line %d", name,
			    r->line);
			return NULL;
		}
		rf_rule_clear(r);
	} else {
		if (s->n >= RF_MAX_RULES) {
			rf_error(c, "more than %d rules", RF_MAX_RULES);
			return NULL;
		}
		if (s->n == s->alloc) {
			s->alloc = s->alloc ? 2 * s->alloc : 64;
			s->rules =
			    xreallocarray(s->rules, s->alloc, sizeof(*r));
		}
		r = &s->rules[s->n++];
		memset(r, 0, sizeof(*r));
	}
	r->name = xstrdup(name);
	r->type = type;
	r->file = c->file;
	r->line = c->line;
	r->sub = strncmp(name, "__", 2) == 0;
	return r;
}

/* rf_note - a score or describe line, kept for finish */
static void
rf_note(struct rf_ctx *c, bool desc, const char *name, double score,
    const char *text)
{
	struct ruleset *s = c->set;
	struct rule_score **v = desc ? &s->descs : &s->scores;
	size_t *n = desc ? &s->ndescs : &s->nscores;
	size_t *alloc = desc ? &s->descs_alloc : &s->scores_alloc;

	if (*n == *alloc) {
		*alloc = *alloc ? 2 * *alloc : 64;
		*v = xreallocarray(*v, *alloc, sizeof(**v));
	}
	(*v)[*n].name = xstrdup(name);
	(*v)[*n].score = score;
	(*v)[*n].text = text ? xstrdup(text) : NULL;
	(*v)[*n].file = c->file;
	(*v)[*n].line = c->line;
	(*n)++;
}

/* rf_score - NAME NUMBER */
static int
rf_score(struct rf_ctx *c, const char *name, const char *p)
{
	char *w = rf_word(&p), *end;
	double v;

	if (w == NULL) {
		rf_error(c, "score %s: a number is missing", name);
		return -1;
	}
	errno = 0;
	v = strtod(w, &end);
	if (*end != '\0' || errno != 0 || v < -1000 || v > 1000 ||
	    !rf_trailing(p)) {
		rf_error(c,
		    "score %s: '%s' is not one number from -1000 to "
		    "1000",
		    name, w);
		free(w);
		return -1;
	}
	free(w);
	rf_note(c, false, name, v, NULL);
	return 0;
}

/* rf_line - one statement */
static void
rf_line(struct rf_ctx *c, const char *line)
{
	static const struct {
		const char *kw;
		enum rule_type type;
	} kws[] = {
	    {"header", RULE_HEADER},
	    {"body", RULE_BODY},
	    {"rawbody", RULE_RAWBODY},
	    {"full", RULE_FULL},
	    {"uri", RULE_URI},
	    {"meta", RULE_META},
	    {"eval", RULE_EVAL},
	    {"dnsbl", RULE_DNSBL},
	    {"uribl", RULE_URIBL},
	};
	const char *p = line;
	char *kw, *name = NULL;
	struct rule *r;
	size_t i;
	int rc = -1;

	p = rf_skip(p);
	if (*p == '\0' || *p == '#')
		return;
	kw = rf_word(&p);
	name = rf_word(&p);
	if (name == NULL || !rf_name_ok(name)) {
		rf_error(c, "%s: %s", kw,
		    name ? "a rule name is [A-Za-z0-9_], 1 to 64 characters"
			 : "a rule name is missing");
		goto out;
	}
	if (strcmp(kw, "score") == 0) {
		rf_score(c, name, p);
		goto out;
	}
	if (strcmp(kw, "describe") == 0) {
		const char *t = rf_skip(p);
		size_t n = strlen(t);

		while (n > 0 && (t[n - 1] == ' ' || t[n - 1] == '\t'))
			n--;
		if (n == 0) {
			rf_error(c, "describe %s: no text", name);
			goto out;
		}
		{
			char *text = xstrndup(t, n);

			rf_note(c, true, name, 0, text);
			free(text);
		}
		goto out;
	}
	for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++)
		if (strcmp(kw, kws[i].kw) == 0)
			break;
	if (i == sizeof(kws) / sizeof(kws[0])) {
		rf_error(c, "unknown statement '%s'", kw);
		goto out;
	}
	if ((r = rf_define(c, name, kws[i].type)) == NULL)
		goto out;
	switch (r->type) {
	case RULE_HEADER:
		rc = rf_header(c, r, p);
		break;
	case RULE_META:
		rc = rf_meta(c, r, p);
		break;
	case RULE_EVAL:
		rc = rf_eval(c, r, p);
		break;
	case RULE_DNSBL:
	case RULE_URIBL:
		rc = rf_list(c, r, p);
		break;
	default:
		rc = rf_pattern(c, r, p);
		break;
	}
	if (rc == -1) /* keep the name so later lines see it defined */
		r->type = RULE_EVAL, r->func = RF_MAILFROM_NULL;
out:
	free(kw);
	free(name);
}

int
ruleset_add_text(struct ruleset *s, const char *file, const char *text,
    size_t len, struct buf *err)
{
	struct rf_ctx c = {s, NULL, 0, 0, err, 0};
	size_t off = 0;
	char *line;

	if (s->finished) {
		buf_addf(err, "%s: the rule set is already finished\n", file);
		return -1;
	}
	s->files = xreallocarray(s->files, s->nfiles + 1, sizeof(char *));
	s->files[s->nfiles] = xstrdup(file);
	c.file = s->files[s->nfiles];
	c.fileno = s->nfiles++;
	while (off < len) {
		const char *nl = memchr(text + off, '\n', len - off);
		size_t n = nl ? (size_t)(nl - (text + off)) : len - off;

		c.line++;
		if (memchr(text + off, '\0', n) != NULL)
			rf_error(&c, "NUL byte in the line");
		else {
			line = xstrndup(text + off, n);
			if (n > 0 && line[n - 1] == '\r')
				line[n - 1] = '\0';
			rf_line(&c, line);
			free(line);
		}
		off += n + (nl != NULL);
	}
	return c.nerr ? -1 : 0;
}

int
ruleset_add_file(struct ruleset *s, const char *path, struct buf *err)
{
	FILE *fp = fopen(path, "rb");
	struct buf b = BUF_INIT;
	char chunk[8192];
	size_t n;
	int rc;

	if (fp == NULL) {
		buf_addf(err, "%s: %s\n", path, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if ((long)(b.len + n) > RF_MAX_FILE) {
			buf_addf(
			    err, "%s: over %ld bytes\n", path, RF_MAX_FILE);
			fclose(fp);
			buf_release(&b);
			return -1;
		}
		buf_add(&b, chunk, n);
	}
	if (ferror(fp)) {
		buf_addf(err, "%s: read error: %s\n", path, strerror(errno));
		fclose(fp);
		buf_release(&b);
		return -1;
	}
	fclose(fp);
	rc = ruleset_add_text(s, path, b.data, b.len, err);
	buf_release(&b);
	return rc;
}

/* rf_visit - depth-first over meta references; 1 visiting, 2 done */
static int
rf_visit(struct ruleset *s, size_t i, unsigned char *state, struct buf *err)
{
	struct rule *r = &s->rules[i];
	size_t k;

	if (state[i] == 2)
		return 0;
	if (state[i] == 1) {
		buf_addf(err, "%s:%d: meta %s depends on itself\n", r->file,
		    r->line, r->name);
		return -1;
	}
	state[i] = 1;
	for (k = 0; k < r->nprog; k++)
		if (r->prog[k].op == ROP_RULE &&
		    s->rules[r->prog[k].v].type == RULE_META &&
		    rf_visit(s, (size_t)r->prog[k].v, state, err) == -1)
			return -1;
	state[i] = 2;
	s->order[s->norder++] = i;
	return 0;
}

/* rf_apply_notes - score and describe lines onto their rules */
static int
rf_apply_notes(struct ruleset *s, struct buf *err)
{
	size_t i;
	long k;
	int rc = 0;

	for (i = 0; i < s->n; i++)
		s->rules[i].score = s->rules[i].sub ? 0 : 1.0;
	for (i = 0; i < s->nscores; i++) {
		struct rule_score *n = &s->scores[i];

		if ((k = ruleset_find(s, n->name)) < 0) {
			buf_addf(err,
			    "%s:%d: score for %s, which no rule "
			    "file defines\n",
			    n->file, n->line, n->name);
			rc = -1;
		} else if (s->rules[k].sub && n->score != 0) {
			buf_addf(err,
			    "%s:%d: %s is a sub-rule (__): it has "
			    "no score\n",
			    n->file, n->line, n->name);
			rc = -1;
		} else
			s->rules[k].score = n->score;
	}
	for (i = 0; i < s->ndescs; i++) {
		struct rule_score *n = &s->descs[i];

		if ((k = ruleset_find(s, n->name)) < 0) {
			buf_addf(err,
			    "%s:%d: describe for %s, which no rule "
			    "file defines\n",
			    n->file, n->line, n->name);
			rc = -1;
			continue;
		}
		free(s->rules[k].describe);
		s->rules[k].describe = xstrdup(n->text);
	}
	return rc;
}

int
ruleset_finish(struct ruleset *s, struct buf *err)
{
	unsigned char *state;
	size_t i, k;
	int rc = 0;

	if (s->finished)
		return 0;
	rc = rf_apply_notes(s, err);
	for (i = 0; i < s->n; i++) {
		struct rule *r = &s->rules[i];

		for (k = 0; k < r->nprog; k++) {
			long j;

			if (r->prog[k].op != ROP_RULE)
				continue;
			if ((j = ruleset_find(s, r->prog[k].name)) < 0) {
				buf_addf(err, "%s:%d: meta %s: no rule %s\n",
				    r->file, r->line, r->name, r->prog[k].name);
				rc = -1;
			}
			r->prog[k].v = j;
		}
		switch (r->type) {
		case RULE_HEADER:
			s->nheader++;
			break;
		case RULE_BODY:
			s->nbody++;
			break;
		case RULE_RAWBODY:
			s->nrawbody++;
			break;
		case RULE_FULL:
			s->nfull++;
			break;
		case RULE_URI:
			s->nuri++;
			break;
		case RULE_META:
			s->nmeta++;
			break;
		case RULE_EVAL:
			s->neval++;
			if (r->func == RF_CLIENT_NO_RDNS ||
			    r->func == RF_CLIENT_NO_FCRDNS ||
			    r->func == RF_CLIENT_DYNAMIC_RDNS)
				s->need_rdns = true;
			break;
		case RULE_DNSBL:
			s->ndnsbl++;
			break;
		case RULE_URIBL:
			s->nuribl++;
			break;
		}
	}
	if (rc == -1)
		return -1;
	s->order = xcalloc(s->n ? s->n : 1, sizeof(*s->order));
	state = xcalloc(s->n ? s->n : 1, 1);
	for (i = 0; i < s->n; i++)
		if (s->rules[i].type != RULE_META)
			s->order[s->norder++] = i, state[i] = 2;
	for (i = 0; i < s->n && rc == 0; i++)
		if (s->rules[i].type == RULE_META)
			rc = rf_visit(s, i, state, err);
	free(state);
	if (rc == -1)
		return -1;
	s->mctx = pcre2_match_context_create(NULL);
	if (s->mctx == NULL) {
		buf_addstr(err, "rules: out of memory\n");
		return -1;
	}
	pcre2_set_match_limit(s->mctx, (uint32_t)s->match_limit);
	pcre2_set_depth_limit(s->mctx, (uint32_t)s->match_limit);
	pcre2_set_heap_limit(s->mctx, RF_HEAP_LIMIT_K);
	s->finished = true;
	return 0;
}

struct rule_matcher {
	pcre2_match_data *md;
	pcre2_match_context *mctx;
};

/* rf_all_ascii - no byte past 127 (a loop the compiler vectorizes: a
 * 4 KB text costs well under a microsecond, checked at every match) */
static bool
rf_all_ascii(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s;
	unsigned char acc = 0;
	size_t i;

	for (i = 0; i < len; i++)
		acc |= p[i];
	return acc < 0x80;
}

struct rule_matcher *
ruleset_matcher_new(const struct ruleset *s)
{
	struct rule_matcher *x;

	/* AG_LIB_ALLOC: freed by ruleset_matcher_free, on every path */
	if ((x = calloc(1, sizeof(*x))) == NULL)
		return NULL;
	/* one pair: the rules only ask whether there is a match */
	x->md = pcre2_match_data_create(1, NULL);
	x->mctx = pcre2_match_context_copy(s->mctx);
	if (x->md == NULL || x->mctx == NULL) {
		ruleset_matcher_free(x);
		return NULL;
	}
	return x;
}

void
ruleset_matcher_free(struct rule_matcher *x)
{
	if (x == NULL)
		return;
	if (x->md != NULL)
		pcre2_match_data_free(x->md);
	if (x->mctx != NULL)
		pcre2_match_context_free(x->mctx);
	free(x);
}

bool
ruleset_match(const struct ruleset *s, const struct rule *r, const char *str,
    size_t len, struct rule_matcher *x, bool *limited)
{
	unsigned long long limit = s->match_limit + 10ULL * len;
	int rc;

	const pcre2_code *re = r->re;

	if (re == NULL)
		return false;
	if (r->re_ascii != NULL && rf_all_ascii(str, len))
		re = r->re_ascii;
	pcre2_set_match_limit(
	    x->mctx, limit > UINT32_MAX ? UINT32_MAX : (uint32_t)limit);
	rc = pcre2_match(re, (PCRE2_SPTR)str, len, 0, 0, x->md, x->mctx);
	if (rc >= 0)
		return true;
	if (rc != PCRE2_ERROR_NOMATCH && limited != NULL)
		*limited = true;
	return false;
}

bool
ruleset_meta(const struct rule *r, const unsigned char *hits)
{
	long st[RF_MAX_PROG];
	size_t k, sp = 0;

	for (k = 0; k < r->nprog; k++) {
		const struct rule_op *o = &r->prog[k];
		long b;

		switch (o->op) {
		case ROP_RULE:
			st[sp++] = o->v >= 0 && hits[o->v];
			continue;
		case ROP_NUM:
			st[sp++] = o->v;
			continue;
		case ROP_NOT:
			st[sp - 1] = !st[sp - 1];
			continue;
		default:
			break;
		}
		b = st[--sp];
		switch (o->op) {
		case ROP_ADD:
			st[sp - 1] += b;
			break;
		case ROP_SUB:
			st[sp - 1] -= b;
			break;
		case ROP_LT:
			st[sp - 1] = st[sp - 1] < b;
			break;
		case ROP_LE:
			st[sp - 1] = st[sp - 1] <= b;
			break;
		case ROP_GT:
			st[sp - 1] = st[sp - 1] > b;
			break;
		case ROP_GE:
			st[sp - 1] = st[sp - 1] >= b;
			break;
		case ROP_EQ:
			st[sp - 1] = st[sp - 1] == b;
			break;
		case ROP_NE:
			st[sp - 1] = st[sp - 1] != b;
			break;
		case ROP_AND:
			st[sp - 1] = st[sp - 1] && b;
			break;
		case ROP_OR:
			st[sp - 1] = st[sp - 1] || b;
			break;
		default:
			break;
		}
	}
	return sp == 1 && st[0] != 0;
}
