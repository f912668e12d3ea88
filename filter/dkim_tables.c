/*
 * dkim_tables.c - KeyTable and SigningTable (see dkim_tables.h).
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "keys.h"
#include "dkim_tables.h"

struct dkim_sigentry {
	char *pattern; /* lowercased */
	size_t key;    /* index into keys */
};

struct dkimt {
	struct ag_key *keys;
	size_t nkeys;
	struct dkim_sigentry *sig;
	size_t nsig;
	bool refile;
};

/* dkt_fields - split a line into at most 2 white-space separated fields */
static int
dkt_fields(char *line, char **f1, char **f2)
{
	char *p = line, *e;

	while (str_isspace((unsigned char)*p))
		p++;
	if (*p == '\0' || *p == '#')
		return 0;
	*f1 = p;
	while (*p && !str_isspace((unsigned char)*p))
		p++;
	if (*p == '\0')
		return 1;
	*p++ = '\0';
	while (str_isspace((unsigned char)*p))
		p++;
	*f2 = p;
	e = p + strlen(p);
	while (e > p && str_isspace((unsigned char)e[-1]))
		*--e = '\0';
	return *p ? 2 : 1;
}

/* dkt_find_key - index of a key name, or -1 */
static long
dkt_find_key(const struct dkimt *t, const char *name)
{
	size_t i;

	for (i = 0; i < t->nkeys; i++)
		if (strcmp(t->keys[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* dkt_key_line - "name domain:selector:/path" */
static int
dkt_key_line(struct dkimt *t, char *line, const char *file, unsigned lineno,
    int min_bits, struct buf *err)
{
	char *name = NULL, *val = NULL, *d, *s, *path, why[512];
	struct ag_key k;
	int nf = dkt_fields(line, &name, &val);

	if (nf == 0)
		return 0;
	if (nf != 2 || (d = val, (s = strchr(d, ':')) == NULL) ||
	    (path = strchr(s + 1, ':')) == NULL) {
		buf_addf(err,
		    "%s:%u: expected 'keyname domain:selector:"
		    "/path/to/key'\n",
		    file, lineno);
		return -1;
	}
	*s++ = '\0';
	*path++ = '\0';
	if (*d == '\0' || *s == '\0' || path[0] != '/') {
		buf_addf(err,
		    "%s:%u: key '%s': need a domain, a selector and "
		    "an absolute key path\n",
		    file, lineno, name);
		return -1;
	}
	if (dkt_find_key(t, name) != -1) {
		buf_addf(
		    err, "%s:%u: key '%s' defined twice\n", file, lineno, name);
		return -1;
	}
	memset(&k, 0, sizeof(k));
	if (keys_load(path, min_bits, &k, why, sizeof(why)) == -1) {
		buf_addf(err, "%s:%u: key '%s': %s\n", file, lineno, name, why);
		return -1;
	}
	k.name = xstrdup(name);
	k.domain = str_tolower(xstrdup(d));
	k.selector = xstrdup(s);
	t->keys = xreallocarray(t->keys, t->nkeys + 1, sizeof(*t->keys));
	t->keys[t->nkeys++] = k;
	return 0;
}

/* dkt_sig_line - "pattern keyname" */
static int
dkt_sig_line(struct dkimt *t, char *line, const char *file, unsigned lineno,
    struct buf *err)
{
	char *pat = NULL, *name = NULL;
	int nf = dkt_fields(line, &pat, &name);
	long k;

	if (nf == 0)
		return 0;
	if (nf != 2 || strpbrk(name, " \t") != NULL) {
		buf_addf(
		    err, "%s:%u: expected 'pattern keyname'\n", file, lineno);
		return -1;
	}
	if ((k = dkt_find_key(t, name)) == -1) {
		buf_addf(err, "%s:%u: no key '%s' in the KeyTable\n", file,
		    lineno, name);
		return -1;
	}
	t->sig = xreallocarray(t->sig, t->nsig + 1, sizeof(*t->sig));
	t->sig[t->nsig].pattern = str_tolower(xstrdup(pat));
	t->sig[t->nsig++].key = (size_t)k;
	return 0;
}

/* dkt_read - each line of a table through fn */
static int
dkt_read(
    struct dkimt *t, const char *file, bool keys, int min_bits, struct buf *err)
{
	FILE *fp;
	char *line = NULL;
	size_t cap = 0;
	ssize_t n;
	unsigned lineno = 0;
	size_t before = err->len;

	if ((fp = fopen(file, "r")) == NULL) {
		buf_addf(err, "%s: cannot open: %s\n", file, strerror(errno));
		return -1;
	}
	while ((n = getline(&line, &cap, fp)) != -1) {
		lineno++;
		if (memchr(line, '\0', (size_t)n) != NULL) {
			buf_addf(
			    err, "%s:%u: NUL byte in line\n", file, lineno);
			continue;
		}
		if (keys)
			dkt_key_line(t, line, file, lineno, min_bits, err);
		else
			dkt_sig_line(t, line, file, lineno, err);
	}
	free(line);
	fclose(fp);
	return err->len == before ? 0 : -1;
}

/* dkimt_load - KeyTable then SigningTable */
struct dkimt *
dkimt_load(const char *key_table, const char *signing_table, int min_bits,
    struct buf *err)
{
	struct dkimt *t = xcalloc(1, sizeof(*t));

	if (strncmp(signing_table, "refile:", 7) == 0) {
		t->refile = true;
		signing_table += 7;
	}
	if (dkt_read(t, key_table, true, min_bits, err) == -1 ||
	    dkt_read(t, signing_table, false, 0, err) == -1) {
		dkimt_free(t);
		return NULL;
	}
	return t;
}

/* dkimt_free - release */
void
dkimt_free(struct dkimt *t)
{
	size_t i;

	if (t == NULL)
		return;
	for (i = 0; i < t->nkeys; i++)
		keys_release(&t->keys[i]);
	for (i = 0; i < t->nsig; i++)
		free(t->sig[i].pattern);
	free(t->keys);
	free(t->sig);
	free(t);
}

/* dkt_glob - '*' matches any run of bytes (patterns are lowercased) */
static bool
dkt_glob(const char *p, const char *s)
{
	const char *star = NULL, *resume = NULL;

	while (*s) {
		if (*p == '*') {
			star = p++;
			resume = s;
		} else if (*p == str_lower((unsigned char)*s)) {
			p++;
			s++;
		} else if (star != NULL) {
			p = star + 1;
			s = ++resume;
		} else
			return false;
	}
	while (*p == '*')
		p++;
	return *p == '\0';
}

/* dkt_add - append a key unless already chosen */
static size_t
dkt_add(const struct dkimt *t, size_t key, const struct ag_key **out, size_t n,
    size_t max)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (out[i] == &t->keys[key])
			return n;
	if (n < max)
		out[n++] = &t->keys[key];
	return n;
}

/* dkimt_match - keys for an address */
size_t
dkimt_match(const struct dkimt *t, const char *local, const char *domain,
    const struct ag_key **out, size_t max)
{
	char addr[512], probe[512];
	const char *d;
	size_t i, n = 0;

	if (t == NULL || domain == NULL || *domain == '\0')
		return 0;
	snprintf(addr, sizeof(addr), "%s@%s", local ? local : "", domain);
	str_tolower(addr);
	if (t->refile) {
		for (i = 0; i < t->nsig; i++)
			if (dkt_glob(t->sig[i].pattern, addr))
				n = dkt_add(t, t->sig[i].key, out, n, max);
		return n;
	}
	/* OpenDKIM's plain lookups: address, domain, .parents, "*" */
	for (i = 0; i < t->nsig; i++)
		if (strcmp(t->sig[i].pattern, addr) == 0)
			n = dkt_add(t, t->sig[i].key, out, n, max);
	for (i = 0; i < t->nsig; i++)
		if (str_casecmp(t->sig[i].pattern, domain) == 0)
			n = dkt_add(t, t->sig[i].key, out, n, max);
	for (d = strchr(domain, '.'); d != NULL; d = strchr(d + 1, '.')) {
		snprintf(probe, sizeof(probe), "%s", d);
		for (i = 0; i < t->nsig; i++)
			if (str_casecmp(t->sig[i].pattern, probe) == 0)
				n = dkt_add(t, t->sig[i].key, out, n, max);
	}
	for (i = 0; i < t->nsig; i++)
		if (strcmp(t->sig[i].pattern, "*") == 0)
			n = dkt_add(t, t->sig[i].key, out, n, max);
	return n;
}

/* dkimt_nkeys - count */
size_t
dkimt_nkeys(const struct dkimt *t)
{
	return t ? t->nkeys : 0;
}
