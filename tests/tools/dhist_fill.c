/*
 * dhist_fill.c - put rows into a DMARC report history, as the daemon's
 * writer does (dhist_open with a writer, dhist_record, dhist_flush), for
 * the tests of authgate-reports.
 *
 *   dhist_fill URI < rows
 *
 * One row per input line: name=value fields separated by tabs, with the
 * names of struct dhist_row (t, host, policy_domain, header_from,
 * source_ip, envelope_from, envelope_to, p, sp, np, adkim, aspf, testing,
 * fo, rua, disposition, dkim_aligned, spf_aligned, reason_type,
 * reason_comment, spf_domain, spf_result, dkim) and count=N to record the
 * row N times. Empty lines and lines starting with '#' are skipped.
 * Defaults make a passing message of example.com seen yesterday:
 * policy_domain example.com, header_from = policy_domain, source_ip
 * 192.0.2.1, p reject, disposition pass, both aligned, spf pass for
 * header_from, dkim "<header_from> sel1 pass", rua
 * mailto:dmarc@<policy_domain>, host mx1. Prints "recorded N" and exits
 * 0, or 1 when a row was dropped or a line is wrong.
 */
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dmarc_history.h"

#define SET(f, v) snprintf(r->f, sizeof(r->f), "%s", v)

/* fill_defaults - a passing message, yesterday at noon UTC */
static void
fill_defaults(struct dhist_row *r)
{
	long long now = (long long)time(NULL);

	memset(r, 0, sizeof(*r));
	r->t = now - now % 86400 - 86400 + 43200;
	SET(host, "mx1");
	SET(policy_domain, "example.com");
	SET(source_ip, "192.0.2.1");
	SET(envelope_to, "receiver.example");
	SET(p, "reject");
	SET(adkim, "r");
	SET(aspf, "r");
	SET(testing, "n");
	SET(disposition, "pass");
	r->dkim_aligned = r->spf_aligned = true;
	SET(spf_result, "pass");
}

#define FIELD(f)                                       \
	{                                              \
#f, offsetof(struct dhist_row, f),     \
		    sizeof(((struct dhist_row *)0)->f) \
	}

/* The text fields, by name. */
static const struct {
	const char *name;
	size_t off, size;
} fill_fields[] = {
    FIELD(host),
    FIELD(policy_domain),
    FIELD(header_from),
    FIELD(source_ip),
    FIELD(envelope_from),
    FIELD(envelope_to),
    FIELD(p),
    FIELD(sp),
    FIELD(np),
    FIELD(adkim),
    FIELD(aspf),
    FIELD(testing),
    FIELD(fo),
    FIELD(rua),
    FIELD(disposition),
    FIELD(reason_type),
    FIELD(reason_comment),
    FIELD(spf_domain),
    FIELD(spf_result),
    FIELD(dkim),
};

/* fill_field - one name=value; -1 for an unknown name */
static int
fill_field(struct dhist_row *r, const char *n, const char *v, long *count)
{
	size_t i;

	if (strcmp(n, "t") == 0)
		r->t = strtoll(v, NULL, 10);
	else if (strcmp(n, "count") == 0)
		*count = strtol(v, NULL, 10);
	else if (strcmp(n, "dkim_aligned") == 0)
		r->dkim_aligned = strcmp(v, "1") == 0;
	else if (strcmp(n, "spf_aligned") == 0)
		r->spf_aligned = strcmp(v, "1") == 0;
	else {
		for (i = 0; i < sizeof(fill_fields) / sizeof(fill_fields[0]);
		     i++)
			if (strcmp(n, fill_fields[i].name) == 0) {
				snprintf((char *)r + fill_fields[i].off,
				    fill_fields[i].size, "%s", v);
				return 0;
			}
		return -1;
	}
	return 0;
}

/* fill_line - a row from one input line; -1 after a message */
static int
fill_line(char *line, unsigned lineno, struct dhist_row *r, long *count)
{
	char *f = line, *tab, *eq;
	bool from = false, spf = false, dkim = false, rua = false;

	fill_defaults(r);
	*count = 1;
	while (f != NULL && *f != '\0') {
		if ((tab = strchr(f, '\t')) != NULL)
			*tab = '\0';
		if ((eq = strchr(f, '=')) == NULL) {
			fprintf(stderr,
			    "dhist_fill: line %u: '%s' is not "
			    "name=value\n",
			    lineno, f);
			return -1;
		}
		*eq = '\0';
		from |= strcmp(f, "header_from") == 0;
		spf |= strcmp(f, "spf_domain") == 0;
		dkim |= strcmp(f, "dkim") == 0;
		rua |= strcmp(f, "rua") == 0;
		if (fill_field(r, f, eq + 1, count) == -1) {
			fprintf(stderr,
			    "dhist_fill: line %u: unknown field %s\n", lineno,
			    f);
			return -1;
		}
		f = tab ? tab + 1 : NULL;
	}
	if (!from)
		SET(header_from, r->policy_domain);
	if (!spf)
		SET(spf_domain, r->header_from);
	if (r->envelope_from[0] == '\0')
		SET(envelope_from, r->header_from);
	if (!dkim)
		snprintf(
		    r->dkim, sizeof(r->dkim), "%s sel1 pass", r->header_from);
	if (!rua)
		snprintf(r->rua, sizeof(r->rua), "mailto:dmarc@%s",
		    r->policy_domain);
	return 0;
}

int
main(int argc, char **argv)
{
	struct dhist_row r;
	struct dhist *h;
	char line[4096], err[512];
	unsigned long long written, dropped, n = 0;
	unsigned lineno = 0;
	long count, i;
	size_t len;
	int rc = 0;

	if (argc != 2) {
		fprintf(stderr, "usage: dhist_fill URI < rows\n");
		return 2;
	}
	if ((h = dhist_open(argv[1], true, 100000, err, sizeof(err))) == NULL) {
		fprintf(stderr, "dhist_fill: %s\n", err);
		return 1;
	}
	while (fgets(line, sizeof(line), stdin) != NULL) {
		lineno++;
		len = strlen(line);
		while (
		    len > 0 && (line[len - 1] == '\n' || line[len - 1] == '\r'))
			line[--len] = '\0';
		if (len == 0 || line[0] == '#')
			continue;
		if (fill_line(line, lineno, &r, &count) == -1) {
			rc = 1;
			break;
		}
		for (i = 0; i < count; i++, n++)
			if (!dhist_record(h, &r))
				rc = 1;
	}
	dhist_flush(h);
	dhist_stats(h, &written, &dropped);
	dhist_close(h);
	printf("recorded %llu\n", n);
	if (written != n || dropped != 0) {
		fprintf(stderr, "dhist_fill: %llu written, %llu dropped\n",
		    written, dropped);
		rc = 1;
	}
	return rc;
}
