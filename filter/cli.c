/*
 * cli.c - `authgate check` (see cli.h).
 */
#include <errno.h>
#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/cidr.h"
#include "util/str.h"
#include "util/xalloc.h"
#include "config.h"
#include "msgctx.h"
#include "rfc5322.h"
#include "snapshot.h"
#include "cli.h"

#define AG_CLI_MAX_MESSAGE (512LL * 1048576) /* refuse bigger inputs */
#define AG_CLI_CHUNK	   65536

struct cli_opts {
	const char *conf;
	const char **overrides;
	size_t noverrides;
	const char *client_ip;
	const char *helo;
	const char *mail_from;
	const char **rcpts;
	size_t nrcpts;
	const char *auth_user;
	char **files; /* the messages (none: stdin) */
	size_t nfiles;
	const char *output; /* --output: the message as delivered */
};

/* cli_usage - print the synopsis */
static void
cli_usage(FILE *fp)
{
	fprintf(fp,
	    "usage: authgate check [-c FILE] [-o name=value]... --client-ip "
	    "IP\n"
	    "           [--helo NAME] [--mail-from ADDR] [--rcpt ADDR]...\n"
	    "           [--auth-user NAME] [--output FILE|-] "
	    "[MESSAGE_FILE|-]...\n");
}

/* cli_parse - options; -1 on a usage error */
static int
cli_parse(int argc, char **argv, struct cli_opts *o)
{
	static const struct option longopts[] = {
	    {"client-ip", required_argument, NULL, 'I'},
	    {"helo", required_argument, NULL, 'H'},
	    {"mail-from", required_argument, NULL, 'M'},
	    {"rcpt", required_argument, NULL, 'R'},
	    {"auth-user", required_argument, NULL, 'A'},
	    {"output", required_argument, NULL, 'O'},
	    {"config", required_argument, NULL, 'c'},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	int ch;

	optind = 1;
	while ((ch = getopt_long(argc, argv, "c:o:h", longopts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			o->conf = optarg;
			break;
		case 'o':
			o->overrides = xreallocarray(
			    o->overrides, o->noverrides + 1, sizeof(char *));
			o->overrides[o->noverrides++] = optarg;
			break;
		case 'I':
			o->client_ip = optarg;
			break;
		case 'H':
			o->helo = optarg;
			break;
		case 'M':
			o->mail_from = optarg;
			break;
		case 'R':
			o->rcpts = xreallocarray(
			    o->rcpts, o->nrcpts + 1, sizeof(char *));
			o->rcpts[o->nrcpts++] = optarg;
			break;
		case 'A':
			o->auth_user = optarg;
			break;
		case 'O':
			o->output = optarg;
			break;
		case 'h':
			cli_usage(stdout);
			exit(0);
		default:
			return -1;
		}
	}
	o->files = argv + optind;
	o->nfiles = (size_t)(argc - optind);
	if (o->nfiles > 1 && o->output != NULL) {
		fprintf(stderr, "authgate check: --output takes one message\n");
		return -1;
	}
	if (o->client_ip == NULL) {
		fprintf(stderr, "authgate check: --client-ip is required\n");
		return -1;
	}
	return 0;
}

/* cli_read - the whole message into b */
static int
cli_read(const char *file, struct buf *b)
{
	FILE *fp = stdin;
	char chunk[AG_CLI_CHUNK];
	size_t n;

	if (file != NULL && strcmp(file, "-") != 0 &&
	    (fp = fopen(file, "rb")) == NULL) {
		fprintf(
		    stderr, "authgate check: %s: %s\n", file, strerror(errno));
		return -1;
	}
	while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0) {
		if ((long long)(b->len + n) > AG_CLI_MAX_MESSAGE) {
			fprintf(stderr,
			    "authgate check: message over %lld "
			    "bytes\n",
			    AG_CLI_MAX_MESSAGE);
			if (fp != stdin)
				fclose(fp);
			return -1;
		}
		buf_add(b, chunk, n);
	}
	if (ferror(fp)) {
		fprintf(stderr, "authgate check: read error: %s\n",
		    strerror(errno));
		if (fp != stdin)
			fclose(fp);
		return -1;
	}
	if (fp != stdin)
		fclose(fp);
	return 0;
}

/* cli_feed_body - body in MTA form (CRLF line ends), in chunks */
static void
cli_feed_body(struct msg *m, const char *p, size_t len)
{
	struct buf out = BUF_INIT;
	size_t i;

	for (i = 0; i < len; i++) {
		if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
			buf_addch(&out, '\r');
		buf_addch(&out, p[i]);
		if (out.len >= AG_CLI_CHUNK) {
			msg_body(m, (const unsigned char *)out.data, out.len);
			buf_reset(&out);
		}
	}
	/* an MTA ends every message with a line end */
	if (len > 0 && p[len - 1] != '\n')
		buf_add(&out, "\r\n", 2);
	if (out.len)
		msg_body(m, (const unsigned char *)out.data, out.len);
	buf_release(&out);
}

/* cli_feed - split the message and drive the stages */
static void
cli_feed(struct msg *m, const char *data, size_t len)
{
	struct rfc5322_field f;
	size_t off = 0;
	char *name, *value;

	/* An mbox "From " line is not part of the message. */
	if (len >= 5 && memcmp(data, "From ", 5) == 0) {
		const char *nl = memchr(data, '\n', len);

		off = nl ? (size_t)(nl - data) + 1 : len;
	}
	while (rfc5322_next_field(data, len, &off, &f) == AG_R5322_FIELD) {
		name = xstrndup(f.name, f.namelen);
		/* the milter sees values without NUL bytes, and so do we */
		value = xstrndup(f.value, f.valuelen);
		msg_header(m, name, value);
		free(name);
		free(value);
	}
	msg_eoh(m);
	cli_feed_body(m, data + off, len - off);
	msg_eom(m);
}

/* cli_print_unfolded - a header value on one line */
static void
cli_print_unfolded(FILE *fp, const char *v)
{
	while (*v) {
		if (*v == '\r' || *v == '\n') {
			while (
			    *v == '\r' || *v == '\n' || *v == ' ' || *v == '\t')
				v++;
			fputc(' ', fp);
			continue;
		}
		fputc(*v++, fp);
	}
}

/* cli_print - what the MTA would be told */
static void
cli_print(const struct msg *m, FILE *fp)
{
	const struct verdict *v = &m->verdict;
	const struct hdr_edit *e;

	const struct hdr_edit *ins[32];
	size_t n = 0;

	/* Inserts go to the top one after the other: the last one ends up
	 * first. Print them as the message will show them, top down. */
	for (e = v->edits; e != NULL && n < 32; e = e->next)
		if (e->op == AG_EDIT_INSERT)
			ins[n++] = e;
	while (n-- > 0) {
		fprintf(fp, "%s: ", ins[n]->name);
		cli_print_unfolded(fp, ins[n]->value);
		fputc('\n', fp);
	}
	for (e = v->edits; e != NULL; e = e->next)
		if (e->op == AG_EDIT_DELETE)
			fprintf(fp, "removed: %s\n", e->name);
	if (m->scored) {
		size_t i;

		fprintf(fp, "score: %.1f/%.1f\nrules: ", m->score,
		    m->cfg->spam_header_score);
		for (i = 0; i < m->nhits; i++)
			fprintf(fp, "%s%s", i ? "," : "", m->hits[i].name);
		fputc('\n', fp);
	}
	fprintf(fp, "action: %s", config_action_name(v->action));
	if (v->rcode != NULL)
		fprintf(fp, " %s %s %s", v->rcode, v->xcode, v->text);
	else if (v->quarantine != NULL)
		fprintf(fp, " %s", v->quarantine);
	fputc('\n', fp);
}

/* cli_put_value - a header value with its folds in the message's line ends */
static void
cli_put_value(FILE *fp, const char *v, const char *eol)
{
	for (; *v; v++)
		if (*v == '\n')
			fputs(eol, fp);
		else if (*v != '\r')
			fputc(*v, fp);
}

/* cli_deleted - does an edit remove the index-th header of this name? */
static bool
cli_deleted(const struct verdict *v, const struct rfc5322_field *f, int index)
{
	const struct hdr_edit *e;

	for (e = v->edits; e != NULL; e = e->next)
		if (e->op == AG_EDIT_DELETE && e->index == index &&
		    str_caseeq_len(f->name, f->namelen, e->name))
			return true;
	return false;
}

/* cli_index - f's 1-based index among the headers of its name */
static int
cli_index(
    const char *data, size_t start, size_t upto, const struct rfc5322_field *f)
{
	struct rfc5322_field g;
	size_t off = start;
	int n = 0;

	while (off < upto &&
	    rfc5322_next_field(data, upto, &off, &g) == AG_R5322_FIELD)
		if (g.namelen == f->namelen &&
		    str_ncaseeq(g.name, f->name, f->namelen))
			n++;
	return n;
}

/*
 * cli_write - the message as the MTA would pass it on: our headers on top
 * (top down, folded), removed headers gone, the rest byte for byte, in
 * the input's line ends.
 */
static int
cli_write(const struct msg *m, const char *path, const char *data, size_t len)
{
	const struct verdict *v = &m->verdict;
	const struct hdr_edit *e, *ins[32];
	const char *nl = memchr(data, '\n', len);
	const char *eol = nl && nl > data && nl[-1] == '\r' ? "\r\n" : "\n";
	FILE *fp = stdout;
	struct rfc5322_field f;
	size_t n = 0, start = 0, off, prev;

	if (strcmp(path, "-") != 0 && (fp = fopen(path, "wb")) == NULL) {
		fprintf(
		    stderr, "authgate check: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (e = v->edits; e != NULL && n < 32; e = e->next)
		if (e->op == AG_EDIT_INSERT)
			ins[n++] = e;
	while (n-- > 0) {
		fprintf(fp, "%s: ", ins[n]->name);
		cli_put_value(fp, ins[n]->value, eol);
		fputs(eol, fp);
	}
	if (len >= 5 && memcmp(data, "From ", 5) == 0)
		start = nl ? (size_t)(nl - data) + 1 : len;
	off = prev = start;
	while (rfc5322_next_field(data, len, &off, &f) == AG_R5322_FIELD) {
		if (!cli_deleted(v, &f, cli_index(data, start, off, &f)))
			fwrite(data + prev, 1, off - prev, fp);
		prev = off;
	}
	fwrite(data + prev, 1, len - prev, fp);
	if (fp != stdout ? fclose(fp) != 0 : fflush(fp) != 0) {
		fprintf(stderr, "authgate check: %s: write error\n", path);
		return -1;
	}
	return 0;
}

/* cli_one - one message through the pipeline; 0, or 2 on an error */
static int
cli_one(const struct cli_opts *o, struct snapshot *snap, const char *file)
{
	struct buf data = BUF_INIT;
	struct conn *c;
	struct msg *m;
	size_t i;
	int rc = 2;

	if (cli_read(file, &data) == -1)
		goto out;
	if ((c = conn_new(snap)) == NULL) {
		fprintf(stderr, "authgate check: out of memory\n");
		goto out;
	}
	conn_set_client(c, NULL, o->client_ip, NULL);
	conn_set_helo(c, o->helo);
	conn_connected(c);
	if ((m = msg_new(c)) == NULL) {
		fprintf(stderr, "authgate check: out of memory\n");
		conn_free(c);
		goto out;
	}
	msg_set_auth(m, o->auth_user);
	msg_mail(m, o->mail_from ? o->mail_from : "<>");
	for (i = 0; i < o->nrcpts; i++)
		msg_rcpt(m, o->rcpts[i]);
	cli_feed(m, data.data, data.len);
	rc = 0;
	if (o->output != NULL &&
	    cli_write(m, o->output, data.data, data.len) == -1)
		rc = 2;
	/* with the message on stdout, the summary goes to stderr */
	cli_print(
	    m, o->output && strcmp(o->output, "-") == 0 ? stderr : stdout);
	conn_free(c);
out:
	buf_release(&data);
	return rc;
}

/* cli_check - `authgate check` */
int
cli_check(int argc, char **argv)
{
	struct cli_opts o;
	struct buf err = BUF_INIT;
	struct config *cfg;
	struct snapshot *snap;
	unsigned char addr[16];
	size_t i;
	int rc = 2;

	memset(&o, 0, sizeof(o));
	if (cli_parse(argc, argv, &o) == -1) {
		cli_usage(stderr);
		goto out;
	}
	if (cidr_addr_parse(o.client_ip, addr) == -1) {
		fprintf(stderr,
		    "authgate check: --client-ip '%s' is not an "
		    "IP address\n",
		    o.client_ip);
		goto out;
	}
	if ((cfg = config_load(o.conf, o.overrides, o.noverrides, &err)) ==
	    NULL) {
		fputs(err.data, stderr);
		goto out;
	}
	/* stdout is the interface; stderr gets problems, not the summary */
	log_set_level(cfg->log_level == LOG_DEBUG ? LOG_DEBUG : LOG_WARNING);
	if ((snap = snapshot_build(cfg, NULL, NULL, &err)) == NULL) {
		fputs(err.data, stderr);
		goto out;
	}
	rc = 0;
	for (i = 0; i < (o.nfiles ? o.nfiles : 1) && rc == 0; i++) {
		if (o.nfiles > 1)
			printf("file: %s\n", o.files[i]);
		rc = cli_one(&o, snap, o.nfiles ? o.files[i] : NULL);
		fflush(stdout);
	}
	snapshot_release(snap);
out:
	buf_release(&err);
	free(o.overrides);
	free(o.rcpts);
	return rc;
}
