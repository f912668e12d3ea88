/*
 * nullmilter - a do-nothing mail filter built on libmilter.
 *
 * It registers every callback and lets each one return SMFIS_CONTINUE, so
 * it measures what libmilter and the milter protocol cost by themselves:
 * the performance ceiling for any real filter.
 *
 *	nullmilter [-a] [-n] SOCKET
 *
 *	-a	act a little: add "X-Null-Milter: seen" at end of message,
 *		reject a recipient that contains "reject" (550 5.7.1) and
 *		tempfail one that contains "tempfail" (451 4.7.1).
 *	-n	negotiate every SMFIP_NR_* flag the MTA offers (no reply for
 *		connect, helo, mail, data, header, eoh, body, unknown; and
 *		rcpt unless -a), to show the cost of per-event round trips.
 *
 * SOCKET uses the libmilter syntax: inet:PORT@HOST, inet6:PORT@HOST,
 * unix:/path.  SIGTERM or SIGINT stops the filter.
 *
 * Build: cc -O2 -Wall -Wextra -o nullmilter nullmilter.c -lmilter -pthread
 */

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#ifndef SMFIP_NR_CONN
#error "libmilter is too old: no SMFIP_NR_* flags"
#endif

#define NR_ALL                                                            \
	(SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |  \
	    SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_HDR | SMFIP_NR_EOH | \
	    SMFIP_NR_BODY)

static int act;	    /* -a */
static int noreply; /* -n */

/* nm_reply - answer for an event whose no-reply flag is nrflag */
static sfsistat
nm_reply(SMFICTX *ctx, unsigned long nrflag)
{
	uintptr_t flags;

	if (!noreply)
		return SMFIS_CONTINUE;
	flags = (uintptr_t)smfi_getpriv(ctx);
	return (flags & nrflag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* nm_negotiate - with -n, take every no-reply flag the MTA offers */
static sfsistat
nm_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1, unsigned long f2,
    unsigned long f3, unsigned long *pf0, unsigned long *pf1,
    unsigned long *pf2, unsigned long *pf3)
{
	unsigned long want;

	(void)f2;
	(void)f3;
	want = NR_ALL;
	if (act)
		want &= ~SMFIP_NR_RCPT;
	*pf0 = act ? (f0 & SMFIF_ADDHDRS) : 0;
	*pf1 = f1 & want;
	*pf2 = 0;
	*pf3 = 0;
	/* Remember the negotiated flags for this connection. */
	smfi_setpriv(ctx, (void *)(uintptr_t)*pf1);
	return SMFIS_CONTINUE;
}

/* nm_connect - connection callback */
static sfsistat
nm_connect(SMFICTX *ctx, char *host, _SOCK_ADDR *sa)
{
	(void)host;
	(void)sa;
	return nm_reply(ctx, SMFIP_NR_CONN);
}

/* nm_helo - HELO callback */
static sfsistat
nm_helo(SMFICTX *ctx, char *helo)
{
	(void)helo;
	return nm_reply(ctx, SMFIP_NR_HELO);
}

/* nm_envfrom - MAIL FROM callback */
static sfsistat
nm_envfrom(SMFICTX *ctx, char **argv)
{
	(void)argv;
	return nm_reply(ctx, SMFIP_NR_MAIL);
}

/* nm_envrcpt - RCPT TO callback; with -a reject or tempfail on demand */
static sfsistat
nm_envrcpt(SMFICTX *ctx, char **argv)
{
	if (act && argv[0] != NULL) {
		if (strstr(argv[0], "reject") != NULL) {
			smfi_setreply(ctx, "550", "5.7.1",
			    "Recipient rejected by nullmilter");
			return SMFIS_REJECT;
		}
		if (strstr(argv[0], "tempfail") != NULL) {
			smfi_setreply(ctx, "451", "4.7.1",
			    "Recipient temporarily rejected by nullmilter");
			return SMFIS_TEMPFAIL;
		}
	}
	return nm_reply(ctx, SMFIP_NR_RCPT);
}

/* nm_data - DATA callback */
static sfsistat
nm_data(SMFICTX *ctx)
{
	return nm_reply(ctx, SMFIP_NR_DATA);
}

/* nm_header - header callback */
static sfsistat
nm_header(SMFICTX *ctx, char *name, char *value)
{
	(void)name;
	(void)value;
	return nm_reply(ctx, SMFIP_NR_HDR);
}

/* nm_eoh - end of headers callback */
static sfsistat
nm_eoh(SMFICTX *ctx)
{
	return nm_reply(ctx, SMFIP_NR_EOH);
}

/* nm_body - body chunk callback */
static sfsistat
nm_body(SMFICTX *ctx, unsigned char *chunk, size_t len)
{
	(void)chunk;
	(void)len;
	return nm_reply(ctx, SMFIP_NR_BODY);
}

/* nm_eom - end of message callback; with -a add a header */
static sfsistat
nm_eom(SMFICTX *ctx)
{
	if (act && smfi_addheader(ctx, "X-Null-Milter", "seen") != MI_SUCCESS)
		return SMFIS_TEMPFAIL;
	return SMFIS_CONTINUE;
}

/* nm_abort - message aborted by the MTA */
static sfsistat
nm_abort(SMFICTX *ctx)
{
	(void)ctx;
	return SMFIS_CONTINUE;
}

/* nm_close - connection closed */
static sfsistat
nm_close(SMFICTX *ctx)
{
	smfi_setpriv(ctx, NULL);
	return SMFIS_CONTINUE;
}

/* nm_unknown - unknown SMTP command callback */
static sfsistat
nm_unknown(SMFICTX *ctx, const char *cmd)
{
	(void)cmd;
	return nm_reply(ctx, SMFIP_NR_UNKN);
}

/* usage - print the synopsis and exit */
static void
usage(void)
{
	fprintf(stderr,
	    "usage: nullmilter [-a] [-n] SOCKET\n"
	    "  SOCKET: inet:PORT@HOST | inet6:PORT@HOST | "
	    "unix:/path\n");
	exit(2);
}

/* main - parse arguments, register and run the filter */
int
main(int argc, char *argv[])
{
	struct smfiDesc desc;
	int ch;

	while ((ch = getopt(argc, argv, "an")) != -1) {
		switch (ch) {
		case 'a':
			act = 1;
			break;
		case 'n':
			noreply = 1;
			break;
		default:
			usage();
		}
	}
	if (argc - optind != 1)
		usage();

	memset(&desc, 0, sizeof(desc));
	desc.xxfi_name = "nullmilter";
	desc.xxfi_version = SMFI_VERSION;
	desc.xxfi_flags = act ? SMFIF_ADDHDRS : 0;
	desc.xxfi_connect = nm_connect;
	desc.xxfi_helo = nm_helo;
	desc.xxfi_envfrom = nm_envfrom;
	desc.xxfi_envrcpt = nm_envrcpt;
	desc.xxfi_header = nm_header;
	desc.xxfi_eoh = nm_eoh;
	desc.xxfi_body = nm_body;
	desc.xxfi_eom = nm_eom;
	desc.xxfi_abort = nm_abort;
	desc.xxfi_close = nm_close;
	desc.xxfi_unknown = nm_unknown;
	desc.xxfi_data = nm_data;
	desc.xxfi_negotiate = noreply ? nm_negotiate : NULL;

	if (smfi_setconn(argv[optind]) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: bad socket: %s\n", argv[optind]);
		return 1;
	}
	if (smfi_setbacklog(256) != MI_SUCCESS ||
	    smfi_register(desc) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: smfi_register failed\n");
		return 1;
	}
	if (smfi_opensocket(1) != MI_SUCCESS) {
		fprintf(stderr, "nullmilter: cannot open %s\n", argv[optind]);
		return 1;
	}
	return smfi_main() == MI_SUCCESS ? 0 : 1;
}
