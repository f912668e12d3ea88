/*
 * miltc - milter protocol client: the MTA side of the Sendmail milter
 * protocol (version 6), for driving a mail filter under test.
 *
 * It connects to a milter over TCP or a unix socket, negotiates options
 * like Postfix 3.x does, pushes one message (or many, in load mode)
 * through the milter and prints exactly what the milter answered.
 *
 * Build: cc -O2 -Wall -Wextra -Werror -pthread -o miltc miltc.c
 * Run "miltc --help" for the manual.
 */

#define _POSIX_C_SOURCE 200809L
#define _DEFAULT_SOURCE

#include <sys/types.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <arpa/inet.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <netdb.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

/*
 * Protocol constants (see libmilter's mfdef.h); defined here because the
 * MTA side must not depend on libmilter.
 */
#define MILTER_VERSION	  6
#define MILTER_CHUNK_SIZE 65535

#define SMFIC_ABORT   'A'
#define SMFIC_BODY    'B'
#define SMFIC_CONNECT 'C'
#define SMFIC_MACRO   'D'
#define SMFIC_BODYEOB 'E'
#define SMFIC_HELO    'H'
#define SMFIC_HEADER  'L'
#define SMFIC_MAIL    'M'
#define SMFIC_EOH     'N'
#define SMFIC_OPTNEG  'O'
#define SMFIC_QUIT    'Q'
#define SMFIC_RCPT    'R'
#define SMFIC_DATA    'T'

#define SMFIR_ADDRCPT	  '+'
#define SMFIR_DELRCPT	  '-'
#define SMFIR_ADDRCPT_PAR '2'
#define SMFIR_SHUTDOWN	  '4'
#define SMFIR_ACCEPT	  'a'
#define SMFIR_REPLBODY	  'b'
#define SMFIR_CONTINUE	  'c'
#define SMFIR_DISCARD	  'd'
#define SMFIR_CHGFROM	  'e'
#define SMFIR_CONN_FAIL	  'f'
#define SMFIR_ADDHEADER	  'h'
#define SMFIR_INSHEADER	  'i'
#define SMFIR_CHGHEADER	  'm'
#define SMFIR_PROGRESS	  'p'
#define SMFIR_QUARANTINE  'q'
#define SMFIR_REJECT	  'r'
#define SMFIR_SKIP	  's'
#define SMFIR_TEMPFAIL	  't'
#define SMFIR_REPLYCODE	  'y'

#define SMFIF_ADDHDRS	  0x001u
#define SMFIF_CHGBODY	  0x002u
#define SMFIF_ADDRCPT	  0x004u
#define SMFIF_DELRCPT	  0x008u
#define SMFIF_CHGHDRS	  0x010u
#define SMFIF_QUARANTINE  0x020u
#define SMFIF_CHGFROM	  0x040u
#define SMFIF_ADDRCPT_PAR 0x080u
#define SMFIF_SETSYMLIST  0x100u
#define MY_ACTIONS	  0x1ffu

#define SMFIP_NOCONNECT	  0x000001u
#define SMFIP_NOHELO	  0x000002u
#define SMFIP_NOMAIL	  0x000004u
#define SMFIP_NORCPT	  0x000008u
#define SMFIP_NOBODY	  0x000010u
#define SMFIP_NOHDRS	  0x000020u
#define SMFIP_NOEOH	  0x000040u
#define SMFIP_NR_HDR	  0x000080u
#define SMFIP_NOUNKNOWN	  0x000100u
#define SMFIP_NODATA	  0x000200u
#define SMFIP_SKIP	  0x000400u
#define SMFIP_RCPT_REJ	  0x000800u
#define SMFIP_NR_CONN	  0x001000u
#define SMFIP_NR_HELO	  0x002000u
#define SMFIP_NR_MAIL	  0x004000u
#define SMFIP_NR_RCPT	  0x008000u
#define SMFIP_NR_DATA	  0x010000u
#define SMFIP_NR_UNKN	  0x020000u
#define SMFIP_NR_EOH	  0x040000u
#define SMFIP_NR_BODY	  0x080000u
#define SMFIP_HDR_LEADSPC 0x100000u
#define MY_PROTOCOL	  0x1fffffu

/* Macro stages, indexed like SMFIM_*. */
#define SMFIM_CONNECT 0
#define SMFIM_HELO    1
#define SMFIM_ENVFROM 2
#define SMFIM_ENVRCPT 3
#define SMFIM_DATA    4
#define SMFIM_EOM     5
#define SMFIM_EOH     6
#define NSTAGES	      7

/* Function status. */
#define ST_OK	0
#define ST_ERR	-1
#define ST_DISC -2

/* Milter replies, as decoded. */
enum {
	RK_NONE,
	RK_CONTINUE,
	RK_ACCEPT,
	RK_REJECT,
	RK_TEMPFAIL,
	RK_DISCARD,
	RK_SKIP,
	RK_REPLYCODE,
	RK_SHUTDOWN,
	RK_CONNFAIL
};

/* Message results. */
enum {
	RES_NONE,
	RES_ACCEPT,
	RES_CONTINUE,
	RES_REJECT,
	RES_TEMPFAIL,
	RES_DISCARD,
	RES_SHUTDOWN,
	RES_CONNFAIL,
	RES_ABORTED,
	RES_DISCONNECTED,
	RES_MAX
};

static const char *res_names[RES_MAX] = {"none", "accept", "continue", "reject",
    "tempfail", "discard", "shutdown", "connfail", "aborted", "disconnected"};

static const char *stage_names[NSTAGES] = {
    "connect", "helo", "mail", "rcpt", "data", "eom", "eoh"};

/* Per-message macro values. */
enum {
	DYN_NONE,
	DYN_QID,
	DYN_MAIL_ADDR,
	DYN_RCPT_ADDR
};

#define TEXT_MAX 1024
#define PKT_MAX	 (64u * 1024 * 1024)
#define FLUSH_AT (128u * 1024)

struct header {
	char *name;
	char *value; /* after the colon; folded lines joined by "\n" */
};

/* An add-header (idx -1) or insert-header a milter asked for at EOM. */
struct hedit {
	long idx;
	char *name;
	char *value;
};

struct message {
	char *path;
	char *return_path; /* its Return-Path: address, for --return-path */
	struct header *hdrs;
	size_t nhdrs;
	char *body; /* CRLF line endings */
	size_t bodylen;
};

struct macro {
	char *name;  /* canonical: "x" or "{name}" */
	char *value; /* NULL: per-message value (dyn) */
	int dyn;
	unsigned stages; /* bit per SMFIM_* stage it is sent at */
};

struct mlist {
	size_t *idx;
	size_t n;
};

struct msgctx {
	char qid[32];
	const char *rcpt;
	const char *mail_from;
};

struct reply {
	int kind;
	char text[TEXT_MAX];
};

struct result {
	int code;
	char text[TEXT_MAX];
	double ms;
};

struct stats {
	unsigned long res[RES_MAX];
	unsigned long addhdr, inshdr, chghdr, delhdr, quar, rcpt, from, body;
};

struct conn {
	int fd;
	int id;
	unsigned long msgno;
	unsigned char *ob; /* output buffer */
	size_t olen, ocap, pstart;
	unsigned char *ib; /* input buffer */
	size_t ioff, ilen, icap;
	int rcmd; /* last packet read */
	unsigned char *rdata;
	size_t rlen;
	uint32_t version, actions, proto, npmask;
	struct mlist ml[NSTAGES];
	int skip_cmd;
	int need_abort;
	int nomore;   /* milter ended the connection: no more events */
	int conn_res; /* connection-level result */
	char conn_text[TEXT_MAX];
	int counting; /* count bytes for --disconnect-after */
	unsigned long long sent;
	FILE *out; /* NULL in load mode */
	struct stats *st;
	const struct milter *mt;
	struct hedit *edits; /* --chain: header edits at EOM, for the next */
	size_t nedits;
	char err[512];
};

static struct {
	const char *socket;
	const char *client_ip, *client_name, *helo;
	char family;
	int client_port;
	char *mail_from;
	char **rcpts;
	size_t nrcpts;
	char **mail_args;
	size_t nmail_args;
	struct macro *macros;
	size_t nmacros;
	int timeout_ms;
	int abort_after_headers;
	int abort_between;
	long long disconnect_after;
	long messages;
	int verbose;
	int quickack;
	int load;
	long connections, per_conn, warmup;
	int reconnect;
	int return_path;
} opt;

/* A milter to talk to: SOCKET, then each --chain SOCKET, in order. */
struct milter {
	const char *spec;
	struct sockaddr_storage addr;
	socklen_t len;
};

#define MAX_CHAIN 8

static struct milter milters[MAX_CHAIN];
static size_t nmilters;
static struct mlist default_ml[NSTAGES];
static struct message *msgs;
static size_t nmsgs;
static pthread_mutex_t errlock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start_barrier;
static unsigned long nerrors_printed;

static const char *const usage_text[] = {
    "NAME",
    "    miltc - milter protocol client (MTA side) for testing mail filters",
    "",
    "SYNOPSIS",
    "    miltc [options] SOCKET [MESSAGE_FILE|-]",
    "    miltc --load [--connections N] [--per-conn M] [--reconnect] [options]",
    "          SOCKET DIR",
    "",
    "DESCRIPTION",
    "    miltc speaks the Sendmail milter protocol, version 6, to the milter "
    "at",
    "    SOCKET the way Postfix 3.x does: OPTNEG, then CONNECT, HELO, and per",
    "    message MAIL, RCPT..., DATA, HEADER..., EOH, BODY..., EOM, and QUIT "
    "at",
    "    the end.  Every event is preceded by its macros (the ones the milter",
    "    asked for, else the defaults below).  Events the milter declined with",
    "    SMFIP_NO* are not sent; replies it declined with SMFIP_NR_* are not",
    "    awaited.  MESSAGE_FILE (default: standard input) is an RFC 5322",
    "    message with LF or CRLF line ends.  Folded header lines are sent as "
    "one",
    "    value with \"\\n\" between the lines; one space after the colon is",
    "    removed unless the milter selected SMFIP_HDR_LEADSPC.  The body is",
    "    sent with CRLF line ends in chunks of at most 65535 bytes.",
    "",
    "    SOCKET is inet:PORT@HOST, inet6:PORT@HOST, inet:HOST:PORT or "
    "unix:/path.",
    "",
    "OPTIONS",
    "    --client-ip IP       client address (192.0.2.1); an IPv6 address "
    "gives",
    "                         family '6', \"unknown\" gives family 'U'",
    "    --client-name NAME   client host name (client.example.net)",
    "    --client-port N      client port (12345)",
    "    --helo NAME          HELO name (client.example.net)",
    "    --mail-from ADDR     envelope sender (sender@example.org); \"\" is <>",
    "    --return-path        the envelope sender of each message is the",
    "                         address of its Return-Path: header, when it has",
    "                         one (load mode: a corpus of many senders)",
    "    --mail-arg ARG       ESMTP argument to MAIL, e.g. BODY=8BITMIME",
    "                         (repeatable)",
    "    --rcpt ADDR          recipient (repeatable; rcpt@example.com)",
    "    --macro [STAGE:]NAME=VALUE",
    "                         define or override a macro (repeatable); STAGE "
    "is",
    "                         connect, helo, mail, rcpt, data, eoh or eom and",
    "                         is guessed from the name when omitted ({auth_*}",
    "                         and {mail_*}: mail, {tls_*} {cipher*} {cert_*}:",
    "                         helo, {rcpt_*}: rcpt, else connect)",
    "    --timeout SECONDS    timeout for connect and every read or write (30)",
    "    --messages K         send the message K times on one connection (1)",
    "    --abort-between      send SMFIC_ABORT after every message, as Postfix",
    "                         does at the end of each SMTP transaction",
    "    --abort-after-headers",
    "                         send SMFIC_ABORT after EOH instead of body/EOM",
    "    --disconnect-after N close the socket after N bytes of the message",
    "                         stream (counted from the first MAIL macro "
    "packet;",
    "                         --verbose shows every packet's offset)",
    "    --verbose            dump every packet sent and received to stderr",
    "    --quickack           TCP: acknowledge every read at once (Linux",
    "                         TCP_QUICKACK).  A libmilter filter does not set",
    "                         TCP_NODELAY, so when it answers EOM with two",
    "                         packets (add-header, continue) the second one",
    "                         waits for the MTA's delayed ACK: about 40 ms per",
    "                         message.  Postfix suffers that too; this option",
    "                         hides it to measure the filter itself.",
    "    --load               load mode: DIR holds message files, used in turn",
    "    --connections N      load mode: N threads, one connection each (1)",
    "    --per-conn M         load mode: M messages per thread (100)",
    "    --reconnect          load mode: a new connection per message",
    "    --warmup K           load mode: K unmeasured messages per connection",
    "                         before the clock starts (0); connecting and",
    "                         negotiating are never measured unless "
    "--reconnect",
    "    --chain SOCKET       after SOCKET, send every message to this milter",
    "                         too (repeatable), on a connection of its own,",
    "                         with the headers the milters before it added or",
    "                         inserted, as Postfix does with several milters.",
    "                         Load mode times the whole chain; single mode",
    "                         prints a line \"milter: SOCKET\" before each",
    "                         milter's replies.  The first result other than",
    "                         accept or continue ends the message.",
    "    --help               show this text",
    "",
    "MACROS",
    "    connect: j=mta.example.com {daemon_name}=miltc "
    "{daemon_addr}=127.0.0.1",
    "             v=miltc _ {client_addr} {client_name} {client_port}",
    "    mail: i {mail_addr}   rcpt: {rcpt_addr}   data, eoh, eom: i",
    "    i is a fake queue id, different for every message.  Postfix sends the",
    "    eoh macros before every header and the eom macros before every body",
    "    chunk; so does miltc.",
    "",
    "OUTPUT (single mode, standard output, one line each)",
    "    negotiated: version=V actions=0xA protocol=0xP",
    "    macros-requested: STAGE LIST",
    "    message: K                      (only with --messages > 1)",
    "    reply STAGE: continue|accept|reject|tempfail|discard|skip|shutdown|",
    "                 connfail|replycode TEXT",
    "    quarantine: REASON",
    "    add-header: NAME: VALUE",
    "    insert-header: INDEX NAME: VALUE",
    "    change-header: INDEX NAME: VALUE",
    "    delete-header: INDEX NAME",
    "    add-rcpt: ADDR [ARGS]",
    "    delete-rcpt: ADDR",
    "    change-from: ADDR [ARGS]",
    "    replace-body: N bytes",
    "    replycode: TEXT                 (final reply code at EOM)",
    "    result: accept|continue|reject|tempfail|discard|shutdown|connfail|",
    "            aborted|disconnected [TEXT]",
    "    Reply lines appear only for events whose reply was awaited (not for",
    "    EOM: its answer is the result line).  A reject, tempfail, replycode",
    "    at RCPT rejects that recipient only; the message ends when no",
    "    recipient is left, with the last rejection as its result.  With",
    "    --disconnect-after the last line is \"result: disconnected\" and the",
    "    exit status is 0.  Control characters and backslashes in values are",
    "    printed as C escapes (\\n \\r \\t \\\\ \\xHH).",
    "",
    "    Load mode prints a summary and a line",
    "    LOAD msgs= secs= rate= p50_ms= p90_ms= p99_ms= max_ms= accept= "
    "reject=",
    "         tempfail= other= errors=",
    "    where accept counts accept and continue, and latency is from MAIL to",
    "    the final EOM reply.",
    "",
    "EXIT STATUS",
    "    0  every message got a final result",
    "    1  connection or protocol error (or errors in load mode)",
    "    2  usage error",
    "",
    "EXAMPLES",
    "    miltc unix:/run/authgate.sock msg.eml",
    "    miltc --rcpt a@example.com --rcpt b@example.com inet:8891@127.0.0.1 - "
    "<msg",
    "    miltc --load --connections 8 --per-conn 500 unix:/tmp/m.sock corpus/",
    NULL,
};

/* usage - short usage message on standard error, exit 2 */
static _Noreturn void
usage(const char *fmt, ...)
{
	va_list ap;

	if (fmt != NULL) {
		fputs("miltc: ", stderr);
		va_start(ap, fmt);
		vfprintf(stderr, fmt, ap);
		va_end(ap);
		fputc('\n', stderr);
	}
	fputs("usage: miltc [options] SOCKET [MESSAGE_FILE|-]\n"
	      "       miltc --load --connections N --per-conn M [options] "
	      "SOCKET DIR\n"
	      "       miltc --help\n",
	    stderr);
	exit(2);
}

/* fatal - print an error and exit 1 */
static _Noreturn void
fatal(const char *fmt, ...)
{
	va_list ap;

	fflush(stdout);
	fputs("miltc: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

/* xrealloc - realloc or die */
static void *
xrealloc(void *p, size_t n)
{
	if ((p = realloc(p, n == 0 ? 1 : n)) == NULL)
		fatal("out of memory");
	return p;
}

/* xstrdup - strdup or die */
static char *
xstrdup(const char *s)
{
	char *p;

	if ((p = strdup(s)) == NULL)
		fatal("out of memory");
	return p;
}

/* now_ms - monotonic clock in milliseconds */
static double
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000.0 + ts.tv_nsec / 1e6;
}

/* seterr - record the error of a connection */
static int
seterr(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->err, sizeof(c->err), fmt, ap);
	va_end(ap);
	return ST_ERR;
}

/* esc - write n bytes to f with C escapes for controls and backslash */
static void
esc(FILE *f, const void *buf, size_t n, int hibit)
{
	const unsigned char *p = buf;
	size_t i;

	for (i = 0; i < n; i++) {
		switch (p[i]) {
		case '\n':
			fputs("\\n", f);
			break;
		case '\r':
			fputs("\\r", f);
			break;
		case '\t':
			fputs("\\t", f);
			break;
		case '\\':
			fputs("\\\\", f);
			break;
		default:
			if (p[i] < 0x20 || p[i] == 0x7f ||
			    (hibit && p[i] >= 0x80))
				fprintf(f, "\\x%02x", p[i]);
			else
				putc(p[i], f);
		}
	}
}

/* outs - write a string to the result output, if any */
static void
outs(struct conn *c, const char *s)
{
	if (c->out != NULL)
		fputs(s, c->out);
}

/* oute - write an escaped string to the result output, if any */
static void
oute(struct conn *c, const char *s)
{
	if (c->out != NULL)
		esc(c->out, s, strlen(s), 0);
}

/* outf - formatted write to the result output, if any */
static void
outf(struct conn *c, const char *fmt, ...)
{
	va_list ap;

	if (c->out == NULL)
		return;
	va_start(ap, fmt);
	vfprintf(c->out, fmt, ap);
	va_end(ap);
}

/* dump - with --verbose, show one packet on standard error */
static void
dump(struct conn *c, const char *dir, int cmd, const unsigned char *p, size_t n,
    long long off)
{
	size_t show = n > 256 ? 256 : n;

	flockfile(stderr);
	fprintf(stderr, "miltc[%d] %s '%c' len=%zu", c->id, dir, cmd, n);
	if (off >= 0)
		fprintf(stderr, " off=%lld", off);
	fputs(" \"", stderr);
	esc(stderr, p, show, 1);
	fputs(show < n ? "\"...\n" : "\"\n", stderr);
	funlockfile(stderr);
}

/* be32 - decode a big-endian 32-bit number */
static uint32_t
be32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/* ob_reserve - make room for n more output bytes */
static void
ob_reserve(struct conn *c, size_t n)
{
	if (c->olen + n <= c->ocap)
		return;
	while (c->olen + n > c->ocap)
		c->ocap = c->ocap == 0 ? 65536 : c->ocap * 2;
	c->ob = xrealloc(c->ob, c->ocap);
}

/* pkt_begin - start an output packet with command cmd */
static void
pkt_begin(struct conn *c, int cmd)
{
	ob_reserve(c, 5);
	c->pstart = c->olen;
	c->olen += 4;
	c->ob[c->olen++] = (unsigned char)cmd;
}

/* pkt_put - append bytes to the current packet */
static void
pkt_put(struct conn *c, const void *p, size_t n)
{
	ob_reserve(c, n);
	memcpy(c->ob + c->olen, p, n);
	c->olen += n;
}

/* pkt_str - append a string and its NUL to the current packet */
static void
pkt_str(struct conn *c, const char *s)
{
	pkt_put(c, s, strlen(s) + 1);
}

/* pkt_u32 - append a big-endian 32-bit number */
static void
pkt_u32(struct conn *c, uint32_t v)
{
	unsigned char b[4];

	b[0] = v >> 24;
	b[1] = v >> 16;
	b[2] = v >> 8;
	b[3] = v;
	pkt_put(c, b, 4);
}

/* pkt_end - finish the current packet by writing its length */
static void
pkt_end(struct conn *c)
{
	uint32_t len = (uint32_t)(c->olen - c->pstart - 4);
	unsigned char *p = c->ob + c->pstart;

	p[0] = len >> 24;
	p[1] = len >> 16;
	p[2] = len >> 8;
	p[3] = len;
	if (opt.verbose)
		dump(c, ">", p[4], p + 5, len - 1,
		    c->counting ? (long long)(c->sent + c->pstart) : -1);
}

/* pkt_cancel - drop the current packet */
static void
pkt_cancel(struct conn *c)
{
	c->olen = c->pstart;
}

/* pkt_send - queue a packet without data */
static void
pkt_send(struct conn *c, int cmd)
{
	pkt_begin(c, cmd);
	pkt_end(c);
}

/* conn_flush - write out the buffered packets */
static int
conn_flush(struct conn *c)
{
	size_t off = 0, n = c->olen;
	ssize_t w;
	int cut = 0;

	if (c->fd < 0)
		return seterr(c, "not connected");
	if (c->counting && opt.disconnect_after >= 0 &&
	    c->sent + n >= (unsigned long long)opt.disconnect_after) {
		n = (size_t)(opt.disconnect_after - (long long)c->sent);
		cut = 1;
	}
	while (off < n) {
		w = send(c->fd, c->ob + off, n - off, MSG_NOSIGNAL);
		if (w < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return seterr(c, "timeout writing to milter");
			return seterr(
			    c, "write to milter: %s", strerror(errno));
		}
		off += (size_t)w;
	}
	if (c->counting)
		c->sent += n;
	c->olen = 0;
	if (cut) {
		if (opt.verbose)
			fprintf(stderr,
			    "miltc[%d] disconnecting after %llu "
			    "bytes\n",
			    c->id, c->sent);
		close(c->fd);
		c->fd = -1;
		return ST_DISC;
	}
	return ST_OK;
}

/* conn_fill - read until at least need bytes are buffered */
static int
conn_fill(struct conn *c, size_t need)
{
	ssize_t r;

	if (c->ilen - c->ioff >= need)
		return ST_OK;
	if (c->ioff > 0) {
		memmove(c->ib, c->ib + c->ioff, c->ilen - c->ioff);
		c->ilen -= c->ioff;
		c->ioff = 0;
	}
	if (need > c->icap) {
		while (need > c->icap)
			c->icap = c->icap == 0 ? 65536 : c->icap * 2;
		c->ib = xrealloc(c->ib, c->icap);
	}
	while (c->ilen < need) {
		/* The socket has SO_RCVTIMEO: one system call per read. */
		r = read(c->fd, c->ib + c->ilen, c->icap - c->ilen);
		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return seterr(c,
				    "timeout (%d ms) waiting for "
				    "the milter",
				    opt.timeout_ms);
			return seterr(
			    c, "read from milter: %s", strerror(errno));
		}
		if (r == 0)
			return seterr(c, "milter closed the connection");
		c->ilen += (size_t)r;
#ifdef TCP_QUICKACK
		if (opt.quickack) {
			int one = 1;

			/* Acknowledge now: see --quickack in the manual. */
			(void)setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one,
			    sizeof(one));
		}
#endif
	}
	return ST_OK;
}

/* read_pkt - flush pending output, then read one packet */
static int
read_pkt(struct conn *c)
{
	uint32_t len;
	int rc;

	if (c->olen > 0 && (rc = conn_flush(c)) != ST_OK)
		return rc;
	if (c->fd < 0)
		return seterr(c, "not connected");
	if ((rc = conn_fill(c, 5)) != ST_OK)
		return rc;
	len = be32(c->ib + c->ioff);
	if (len < 1 || len > PKT_MAX)
		return seterr(
		    c, "bad packet length %lu from milter", (unsigned long)len);
	if ((rc = conn_fill(c, 4 + (size_t)len)) != ST_OK)
		return rc;
	c->rcmd = c->ib[c->ioff + 4];
	c->rdata = c->ib + c->ioff + 5;
	c->rlen = len - 1;
	c->ioff += 4 + (size_t)len;
	if (opt.verbose)
		dump(c, "<", c->rcmd, c->rdata, c->rlen, -1);
	return ST_OK;
}

/* getstr - take a NUL-terminated string from packet data */
static int
getstr(unsigned char **p, size_t *left, const char **s)
{
	unsigned char *nul;

	if (*left == 0 || (nul = memchr(*p, '\0', *left)) == NULL)
		return -1;
	*s = (const char *)*p;
	*left -= (size_t)(nul - *p) + 1;
	*p = nul + 1;
	return 0;
}

/* canon_macro - canonical macro name: "x" or "{name}" */
static int
canon_macro(const char *in, size_t len, char *out, size_t outsz)
{
	if (len >= 2 && in[0] == '{' && in[len - 1] == '}') {
		in++;
		len -= 2;
	}
	if (len == 0 || len + 3 > outsz)
		return -1;
	if (len == 1)
		snprintf(out, outsz, "%c", in[0]);
	else
		snprintf(out, outsz, "{%.*s}", (int)len, in);
	return 0;
}

/* find_macro - index of a macro by canonical name, or -1 */
static long
find_macro(const char *name)
{
	size_t i;

	for (i = 0; i < opt.nmacros; i++)
		if (strcmp(opt.macros[i].name, name) == 0)
			return (long)i;
	return -1;
}

/* set_macro - define or override a macro */
static void
set_macro(const char *name, const char *value, int dyn, unsigned stages)
{
	struct macro *m;
	long i;

	if ((i = find_macro(name)) >= 0) {
		m = &opt.macros[i];
		free(m->value);
		if (stages != 0)
			m->stages = stages;
	} else {
		opt.macros = xrealloc(
		    opt.macros, (opt.nmacros + 1) * sizeof(*opt.macros));
		m = &opt.macros[opt.nmacros++];
		m->name = xstrdup(name);
		m->stages = stages != 0 ? stages : 1u << SMFIM_CONNECT;
	}
	m->value = value != NULL ? xstrdup(value) : NULL;
	m->dyn = dyn;
}

/* guess_stage - stage at which a user-defined macro is sent by default */
static unsigned
guess_stage(const char *name)
{
	if (strncmp(name, "{auth_", 6) == 0 || strncmp(name, "{mail_", 6) == 0)
		return 1u << SMFIM_ENVFROM;
	if (strncmp(name, "{tls_", 5) == 0 ||
	    strncmp(name, "{cipher", 7) == 0 || strncmp(name, "{cert_", 6) == 0)
		return 1u << SMFIM_HELO;
	if (strncmp(name, "{rcpt_", 6) == 0)
		return 1u << SMFIM_ENVRCPT;
	return 1u << SMFIM_CONNECT;
}

/* user_macro - apply one --macro [STAGE:]NAME=VALUE */
static void
user_macro(const char *arg)
{
	const char *eq, *colon, *name;
	char canon[256];
	unsigned stages = 0;
	int s;

	if ((eq = strchr(arg, '=')) == NULL)
		usage("--macro needs NAME=VALUE: %s", arg);
	name = arg;
	colon = memchr(arg, ':', (size_t)(eq - arg));
	if (colon != NULL) {
		for (s = 0; s < NSTAGES; s++)
			if (strlen(stage_names[s]) == (size_t)(colon - arg) &&
			    strncmp(arg, stage_names[s],
				(size_t)(colon - arg)) == 0)
				stages = 1u << s;
		if (stages == 0)
			usage("--macro: unknown stage in %s", arg);
		name = colon + 1;
	}
	if (canon_macro(name, (size_t)(eq - name), canon, sizeof(canon)) < 0)
		usage("--macro: bad name in %s", arg);
	if (stages == 0 && find_macro(canon) < 0)
		stages = guess_stage(canon);
	set_macro(canon, eq + 1, DYN_NONE, stages);
}

/* default_macros - the macros sent when the milter asks for none */
static void
default_macros(void)
{
	char buf[512];
	unsigned msgstages;

	msgstages = 1u << SMFIM_ENVFROM | 1u << SMFIM_DATA | 1u << SMFIM_EOH |
	    1u << SMFIM_EOM;
	set_macro("j", "mta.example.com", DYN_NONE, 1u << SMFIM_CONNECT);
	set_macro("{daemon_name}", "miltc", DYN_NONE, 1u << SMFIM_CONNECT);
	set_macro("{daemon_addr}", "127.0.0.1", DYN_NONE, 1u << SMFIM_CONNECT);
	set_macro("v", "miltc", DYN_NONE, 1u << SMFIM_CONNECT);
	snprintf(buf, sizeof(buf), "%s [%s]", opt.client_name, opt.client_ip);
	set_macro("_", buf, DYN_NONE, 1u << SMFIM_CONNECT);
	set_macro(
	    "{client_addr}", opt.client_ip, DYN_NONE, 1u << SMFIM_CONNECT);
	set_macro(
	    "{client_name}", opt.client_name, DYN_NONE, 1u << SMFIM_CONNECT);
	snprintf(buf, sizeof(buf), "%d", opt.client_port);
	set_macro("{client_port}", buf, DYN_NONE, 1u << SMFIM_CONNECT);
	set_macro("i", NULL, DYN_QID, msgstages);
	set_macro("{mail_addr}", NULL, DYN_MAIL_ADDR, 1u << SMFIM_ENVFROM);
	set_macro("{rcpt_addr}", NULL, DYN_RCPT_ADDR, 1u << SMFIM_ENVRCPT);
}

/* build_default_lists - per-stage index lists of the default macros */
static void
build_default_lists(void)
{
	size_t i;
	int s;

	for (s = 0; s < NSTAGES; s++) {
		default_ml[s].idx =
		    xrealloc(NULL, opt.nmacros * sizeof(size_t));
		default_ml[s].n = 0;
		for (i = 0; i < opt.nmacros; i++)
			if (opt.macros[i].stages & (1u << s))
				default_ml[s].idx[default_ml[s].n++] = i;
	}
}

/* macro_value - value of a macro at a stage, or NULL if unavailable */
static const char *
macro_value(const struct macro *m, const struct msgctx *x, int stage)
{
	if (m->value != NULL)
		return m->value;
	switch (m->dyn) {
	case DYN_QID:
		return (x != NULL && stage >= SMFIM_ENVFROM) ? x->qid : NULL;
	case DYN_MAIL_ADDR:
		return (x != NULL && stage >= SMFIM_ENVFROM) ? x->mail_from
							     : NULL;
	case DYN_RCPT_ADDR:
		return (x != NULL && stage == SMFIM_ENVRCPT) ? x->rcpt : NULL;
	default:
		return NULL;
	}
}

/* send_macros - queue the macro packet for a stage, if it has macros */
static void
send_macros(struct conn *c, const struct msgctx *x, int stage, int cmd)
{
	const struct mlist *ml = &c->ml[stage];
	const struct macro *m;
	const char *v;
	size_t i, n = 0;
	unsigned char b = (unsigned char)cmd;

	pkt_begin(c, SMFIC_MACRO);
	pkt_put(c, &b, 1);
	for (i = 0; i < ml->n; i++) {
		m = &opt.macros[ml->idx[i]];
		if ((v = macro_value(m, x, stage)) == NULL)
			continue;
		pkt_str(c, m->name);
		pkt_str(c, v);
		n++;
	}
	if (n == 0)
		pkt_cancel(c);
	else
		pkt_end(c);
}

/* conn_reset - forget all state of a connection, keeping its buffers */
static void
conn_reset(struct conn *c)
{
	int s;

	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->olen = c->ioff = c->ilen = 0;
	for (s = 0; s < NSTAGES; s++) {
		if (c->ml[s].idx != default_ml[s].idx)
			free(c->ml[s].idx);
		c->ml[s] = default_ml[s];
	}
	c->version = c->actions = c->proto = c->npmask = 0;
	c->skip_cmd = c->need_abort = c->nomore = c->conn_res = 0;
	c->conn_text[0] = '\0';
}

/* conn_open - connect to the milter */
static int
conn_open(struct conn *c)
{
	struct pollfd pfd;
	struct timeval tv;
	socklen_t len;
	int fd, flags, one = 1, soerr = 0, n;

	conn_reset(c);
	fd = socket(c->mt->addr.ss_family, SOCK_STREAM, 0);
	if (fd < 0)
		return seterr(c, "socket: %s", strerror(errno));
	flags = fcntl(fd, F_GETFL);
	(void)fcntl(fd, F_SETFL, flags | O_NONBLOCK);
	if (connect(fd, (const struct sockaddr *)&c->mt->addr, c->mt->len) <
	    0) {
		if (errno != EINPROGRESS && errno != EAGAIN) {
			n = errno;
			close(fd);
			return seterr(
			    c, "connect to %s: %s", c->mt->spec, strerror(n));
		}
		pfd.fd = fd;
		pfd.events = POLLOUT;
		while (
		    (n = poll(&pfd, 1, opt.timeout_ms)) < 0 && errno == EINTR)
			;
		if (n == 0) {
			close(fd);
			return seterr(c, "connect to %s: timeout", c->mt->spec);
		}
		len = sizeof(soerr);
		if (n < 0 ||
		    getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len) < 0 ||
		    soerr != 0) {
			n = soerr != 0 ? soerr : errno;
			close(fd);
			return seterr(
			    c, "connect to %s: %s", c->mt->spec, strerror(n));
		}
	}
	(void)fcntl(fd, F_SETFL, flags);
	if (c->mt->addr.ss_family != AF_UNIX)
		(void)setsockopt(
		    fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	tv.tv_sec = opt.timeout_ms / 1000;
	tv.tv_usec = (opt.timeout_ms % 1000) * 1000;
	(void)setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	(void)setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	c->fd = fd;
	return ST_OK;
}

/* set_symlist - use the macro list the milter asked for at a stage */
static void
set_symlist(struct conn *c, int stage, const char *list)
{
	struct mlist *ml = &c->ml[stage];
	const char *p = list, *e;
	char canon[256];
	long i;

	if (ml->idx != default_ml[stage].idx)
		free(ml->idx);
	ml->idx = NULL;
	ml->n = 0;
	while (*p != '\0') {
		while (*p == ' ' || *p == ',' || *p == '\t')
			p++;
		if (*p == '\0')
			break;
		for (e = p; *e != '\0' && *e != ' ' && *e != ',' && *e != '\t';
		     e++)
			;
		if (canon_macro(p, (size_t)(e - p), canon, sizeof(canon)) ==
			0 &&
		    (i = find_macro(canon)) >= 0) {
			ml->idx =
			    xrealloc(ml->idx, (ml->n + 1) * sizeof(size_t));
			ml->idx[ml->n++] = (size_t)i;
		} else if (opt.verbose) {
			fprintf(stderr, "miltc[%d] no value for macro %.*s\n",
			    c->id, (int)(e - p), p);
		}
		p = e;
	}
}

/* negotiate - SMFIC_OPTNEG exchange, including requested macro lists */
static int
negotiate(struct conn *c)
{
	unsigned char *p;
	size_t left;
	uint32_t stage;
	const char *list;
	int rc;

	pkt_begin(c, SMFIC_OPTNEG);
	pkt_u32(c, MILTER_VERSION);
	pkt_u32(c, MY_ACTIONS);
	pkt_u32(c, MY_PROTOCOL);
	pkt_end(c);
	if ((rc = read_pkt(c)) != ST_OK)
		return rc;
	if (c->rcmd != SMFIC_OPTNEG || c->rlen < 12)
		return seterr(
		    c, "bad OPTNEG reply '%c' (%zu bytes)", c->rcmd, c->rlen);
	c->version = be32(c->rdata);
	c->actions = be32(c->rdata + 4);
	c->proto = be32(c->rdata + 8);
	outf(c, "negotiated: version=%lu actions=0x%lx protocol=0x%lx\n",
	    (unsigned long)c->version, (unsigned long)c->actions,
	    (unsigned long)c->proto);
	if (c->version < 2 || c->version > MILTER_VERSION)
		return seterr(c, "milter protocol version %lu not supported",
		    (unsigned long)c->version);
	if ((c->actions & ~MY_ACTIONS) != 0)
		return seterr(c, "milter requests actions 0x%lx not offered",
		    (unsigned long)(c->actions & ~MY_ACTIONS));
	if ((c->proto & ~MY_PROTOCOL) != 0 && c->out != NULL)
		fprintf(stderr,
		    "miltc: warning: milter selected protocol "
		    "flags 0x%lx not offered\n",
		    (unsigned long)(c->proto & ~MY_PROTOCOL));
	/* Events that do not exist in older protocol versions. */
	if (c->version < 4)
		c->npmask |= SMFIP_NODATA;
	if (c->version < 3)
		c->npmask |= SMFIP_NOUNKNOWN;
	p = c->rdata + 12;
	left = c->rlen - 12;
	while (left > 0) {
		if (left < 5)
			return seterr(c, "truncated macro list in OPTNEG");
		stage = be32(p);
		p += 4;
		left -= 4;
		if (getstr(&p, &left, &list) < 0)
			return seterr(c, "unterminated macro list in OPTNEG");
		if (stage >= NSTAGES) {
			if (c->out != NULL)
				fprintf(stderr,
				    "miltc: warning: macro list "
				    "for unknown stage %lu\n",
				    (unsigned long)stage);
			continue;
		}
		outs(c, "macros-requested: ");
		outs(c, stage_names[stage]);
		outs(c, " ");
		oute(c, list);
		outs(c, "\n");
		set_symlist(c, (int)stage, list);
	}
	return ST_OK;
}

/* decide - decode a decision packet; 1 if it was one, 0 if not, -1 err */
static int
decide(struct conn *c, struct reply *r)
{
	size_t n;
	const char *t;

	r->text[0] = '\0';
	switch (c->rcmd) {
	case SMFIR_CONTINUE:
		r->kind = RK_CONTINUE;
		break;
	case SMFIR_ACCEPT:
		r->kind = RK_ACCEPT;
		break;
	case SMFIR_REJECT:
		r->kind = RK_REJECT;
		break;
	case SMFIR_TEMPFAIL:
		r->kind = RK_TEMPFAIL;
		break;
	case SMFIR_DISCARD:
		r->kind = RK_DISCARD;
		break;
	case SMFIR_SKIP:
		r->kind = RK_SKIP;
		break;
	case SMFIR_SHUTDOWN:
		r->kind = RK_SHUTDOWN;
		break;
	case SMFIR_CONN_FAIL:
		r->kind = RK_CONNFAIL;
		break;
	case SMFIR_REPLYCODE:
		r->kind = RK_REPLYCODE;
		t = (const char *)c->rdata;
		n = strnlen(t, c->rlen);
		if (n >= sizeof(r->text))
			n = sizeof(r->text) - 1;
		memcpy(r->text, t, n);
		r->text[n] = '\0';
		if (n < 4 || (t[0] != '4' && t[0] != '5') || t[1] < '0' ||
		    t[1] > '9' || t[2] < '0' || t[2] > '9' ||
		    (t[3] != ' ' && t[3] != '-')) {
			seterr(c, "malformed reply code \"%s\"", r->text);
			return -1;
		}
		return 1;
	default:
		return 0;
	}
	if (c->rlen != 0) {
		seterr(c, "reply '%c' followed by %zu data bytes", c->rcmd,
		    c->rlen);
		return -1;
	}
	return 1;
}

/* quarantine - report a quarantine request */
static void
quarantine(struct conn *c)
{
	unsigned char *p = c->rdata;
	size_t left = c->rlen;
	const char *reason = "";

	(void)getstr(&p, &left, &reason);
	outs(c, "quarantine: ");
	oute(c, reason);
	outs(c, "\n");
	if (c->st != NULL)
		c->st->quar++;
	if (c->out != NULL && (c->actions & SMFIF_QUARANTINE) == 0)
		fprintf(stderr,
		    "miltc: warning: quarantine without "
		    "SMFIF_QUARANTINE\n");
}

/* kind_name - printable name of a reply kind */
static const char *
kind_name(int kind)
{
	switch (kind) {
	case RK_CONTINUE:
		return "continue";
	case RK_ACCEPT:
		return "accept";
	case RK_REJECT:
		return "reject";
	case RK_TEMPFAIL:
		return "tempfail";
	case RK_DISCARD:
		return "discard";
	case RK_SKIP:
		return "skip";
	case RK_REPLYCODE:
		return "replycode";
	case RK_SHUTDOWN:
		return "shutdown";
	case RK_CONNFAIL:
		return "connfail";
	default:
		return "none";
	}
}

/* await_reply - read the reply to an event before end of message */
static int
await_reply(struct conn *c, const char *stage, struct reply *r)
{
	int rc;

	for (;;) {
		if ((rc = read_pkt(c)) != ST_OK)
			return rc;
		if (c->rcmd == SMFIR_PROGRESS)
			continue;
		if (c->rcmd == SMFIR_QUARANTINE) {
			quarantine(c);
			continue;
		}
		if ((rc = decide(c, r)) < 0)
			return ST_ERR;
		if (rc == 0)
			return seterr(c, "unexpected reply '%c' (0x%02x) to %s",
			    c->rcmd, c->rcmd, stage);
		break;
	}
	outf(c, "reply %s: %s", stage, kind_name(r->kind));
	if (r->kind == RK_REPLYCODE) {
		outs(c, " ");
		oute(c, r->text);
	}
	outs(c, "\n");
	return ST_OK;
}

/* ev_begin - queue the macros of an event and start its packet */
static int
ev_begin(
    struct conn *c, const struct msgctx *x, int cmd, uint32_t noflag, int stage)
{
	if (c->skip_cmd != 0) {
		if (c->skip_cmd == cmd)
			return 0;
		c->skip_cmd = 0;
	}
	if ((noflag & c->npmask) != 0)
		return 0;
	/* Like Postfix: macros go out even when the event itself does not. */
	send_macros(c, x, stage, cmd);
	if ((noflag & c->proto) != 0)
		return 0;
	pkt_begin(c, cmd);
	return 1;
}

/* ev_end - finish an event packet and await its reply if one is due */
static int
ev_end(
    struct conn *c, const char *name, int cmd, uint32_t nrflag, struct reply *r)
{
	int rc;

	pkt_end(c);
	r->kind = RK_NONE;
	if ((c->proto & nrflag) != 0)
		return ST_OK;
	if ((rc = await_reply(c, name, r)) != ST_OK)
		return rc;
	if (r->kind == RK_SKIP)
		c->skip_cmd = cmd;
	return ST_OK;
}

/* ends_message - if a reply ends the message, set the result */
static int
ends_message(struct conn *c, const struct reply *r, struct result *res)
{
	switch (r->kind) {
	case RK_ACCEPT:
		res->code = RES_ACCEPT;
		break;
	case RK_REJECT:
		res->code = RES_REJECT;
		break;
	case RK_TEMPFAIL:
		res->code = RES_TEMPFAIL;
		break;
	case RK_DISCARD:
		res->code = RES_DISCARD;
		break;
	case RK_REPLYCODE:
		res->code = r->text[0] == '5' ? RES_REJECT : RES_TEMPFAIL;
		snprintf(res->text, sizeof(res->text), "%s", r->text);
		break;
	case RK_SHUTDOWN:
	case RK_CONNFAIL:
		/* The milter is done with this connection. */
		res->code =
		    r->kind == RK_SHUTDOWN ? RES_SHUTDOWN : RES_CONNFAIL;
		c->conn_res = res->code;
		c->nomore = 1;
		break;
	default:
		return 0;
	}
	return 1;
}

/* greet - send CONNECT and HELO */
static int
greet(struct conn *c)
{
	struct reply r;
	struct result res;
	int rc, i;

	for (i = 0; i < 2; i++) {
		if (i == 0) {
			if (!ev_begin(c, NULL, SMFIC_CONNECT, SMFIP_NOCONNECT,
				SMFIM_CONNECT))
				continue;
			pkt_str(c, opt.client_name);
			pkt_put(c, &opt.family, 1);
			if (opt.family != 'U') {
				unsigned char port[2];

				port[0] = (unsigned)opt.client_port >> 8;
				port[1] = (unsigned)opt.client_port & 0xff;
				pkt_put(c, port, 2);
				pkt_str(c, opt.client_ip);
			}
			rc = ev_end(
			    c, "connect", SMFIC_CONNECT, SMFIP_NR_CONN, &r);
		} else {
			if (!ev_begin(
				c, NULL, SMFIC_HELO, SMFIP_NOHELO, SMFIM_HELO))
				continue;
			pkt_str(c, opt.helo);
			rc = ev_end(c, "helo", SMFIC_HELO, SMFIP_NR_HELO, &r);
		}
		if (rc != ST_OK)
			return rc;
		/* Like Postfix, DISCARD is ignored at connection level. */
		if (r.kind == RK_DISCARD)
			continue;
		memset(&res, 0, sizeof(res));
		if (ends_message(c, &r, &res)) {
			/* The milter is done with this connection. */
			c->conn_res = res.code;
			snprintf(
			    c->conn_text, sizeof(c->conn_text), "%s", res.text);
			c->nomore = 1;
			return ST_OK;
		}
	}
	return ST_OK;
}

/* note_edit - count a modification and warn if it was not negotiated */
static void
note_edit(
    struct conn *c, unsigned long *counter, uint32_t action, const char *what)
{
	if (c->st != NULL)
		(*counter)++;
	if (c->out != NULL && (c->actions & action) == 0)
		fprintf(stderr,
		    "miltc: warning: %s without negotiated action "
		    "0x%lx\n",
		    what, (unsigned long)action);
}

/* keep_edit - with --chain, remember a header the milter added */
static void
keep_edit(struct conn *c, long idx, const char *name, const char *value)
{
	struct hedit *e;

	if (nmilters < 2)
		return;
	c->edits = xrealloc(c->edits, (c->nedits + 1) * sizeof(*c->edits));
	e = &c->edits[c->nedits++];
	e->idx = idx;
	e->name = xstrdup(name);
	e->value = xstrdup(value);
}

/* clear_edits - forget the header edits of the last message */
static void
clear_edits(struct conn *c)
{
	size_t i;

	for (i = 0; i < c->nedits; i++) {
		free(c->edits[i].name);
		free(c->edits[i].value);
	}
	c->nedits = 0;
}

/* await_eom - collect modifications and the final reply at EOM */
static int
await_eom(struct conn *c, struct result *res)
{
	struct stats dummy;
	struct stats *st;
	struct reply r;
	unsigned char *p;
	size_t left, bodylen = 0;
	const char *a, *b;
	uint32_t idx;
	int rc, inbody = 0;

	memset(&dummy, 0, sizeof(dummy));
	st = c->st != NULL ? c->st : &dummy;
	for (;;) {
		if ((rc = read_pkt(c)) != ST_OK)
			return rc;
		p = c->rdata;
		left = c->rlen;
		if (inbody && c->rcmd != SMFIR_REPLBODY) {
			outf(c, "replace-body: %zu bytes\n", bodylen);
			inbody = 0;
		}
		switch (c->rcmd) {
		case SMFIR_PROGRESS:
			continue;
		case SMFIR_QUARANTINE:
			quarantine(c);
			continue;
		case SMFIR_ADDHEADER:
			if (getstr(&p, &left, &a) < 0 ||
			    getstr(&p, &left, &b) < 0)
				return seterr(c, "malformed add-header");
			outs(c, "add-header: ");
			oute(c, a);
			outs(c, ": ");
			oute(c, b);
			outs(c, "\n");
			note_edit(c, &st->addhdr, SMFIF_ADDHDRS, "add-header");
			keep_edit(c, -1, a, b);
			continue;
		case SMFIR_INSHEADER:
		case SMFIR_CHGHEADER:
			if (left < 4)
				return seterr(c, "malformed header edit");
			idx = be32(p);
			p += 4;
			left -= 4;
			if (getstr(&p, &left, &a) < 0 ||
			    getstr(&p, &left, &b) < 0)
				return seterr(c, "malformed header edit");
			if (c->rcmd == SMFIR_INSHEADER) {
				outf(c, "insert-header: %lu ",
				    (unsigned long)idx);
				note_edit(c, &st->inshdr, SMFIF_ADDHDRS,
				    "insert-header");
				keep_edit(c, (long)idx, a, b);
			} else if (*b == '\0') {
				outf(c, "delete-header: %lu ",
				    (unsigned long)idx);
				oute(c, a);
				outs(c, "\n");
				note_edit(c, &st->delhdr, SMFIF_CHGHDRS,
				    "delete-header");
				continue;
			} else {
				outf(c, "change-header: %lu ",
				    (unsigned long)idx);
				note_edit(c, &st->chghdr, SMFIF_CHGHDRS,
				    "change-header");
			}
			oute(c, a);
			outs(c, ": ");
			oute(c, b);
			outs(c, "\n");
			continue;
		case SMFIR_ADDRCPT:
		case SMFIR_ADDRCPT_PAR:
		case SMFIR_DELRCPT:
		case SMFIR_CHGFROM:
			if (getstr(&p, &left, &a) < 0)
				return seterr(
				    c, "malformed reply '%c'", c->rcmd);
			b = "";
			if (left > 0 && c->rcmd != SMFIR_ADDRCPT &&
			    c->rcmd != SMFIR_DELRCPT &&
			    getstr(&p, &left, &b) < 0)
				return seterr(
				    c, "malformed reply '%c'", c->rcmd);
			if (c->rcmd == SMFIR_DELRCPT) {
				outs(c, "delete-rcpt: ");
				note_edit(
				    c, &st->rcpt, SMFIF_DELRCPT, "delete-rcpt");
			} else if (c->rcmd == SMFIR_CHGFROM) {
				outs(c, "change-from: ");
				note_edit(
				    c, &st->from, SMFIF_CHGFROM, "change-from");
			} else {
				outs(c, "add-rcpt: ");
				note_edit(c, &st->rcpt,
				    c->rcmd == SMFIR_ADDRCPT
					? SMFIF_ADDRCPT
					: SMFIF_ADDRCPT_PAR,
				    "add-rcpt");
			}
			oute(c, a);
			if (*b != '\0') {
				outs(c, " ");
				oute(c, b);
			}
			outs(c, "\n");
			continue;
		case SMFIR_REPLBODY:
			if (!inbody)
				note_edit(c, &st->body, SMFIF_CHGBODY,
				    "replace-body");
			inbody = 1;
			bodylen += c->rlen;
			continue;
		default:
			break;
		}
		if ((rc = decide(c, &r)) < 0)
			return ST_ERR;
		if (rc == 0 || r.kind == RK_SKIP)
			return seterr(c,
			    "unexpected reply '%c' (0x%02x) to "
			    "end of message",
			    c->rcmd, c->rcmd);
		break;
	}
	if (r.kind == RK_REPLYCODE) {
		outs(c, "replycode: ");
		oute(c, r.text);
		outs(c, "\n");
	}
	if (r.kind == RK_CONTINUE)
		res->code = RES_CONTINUE;
	else
		(void)ends_message(c, &r, res);
	return ST_OK;
}

/* run_message - push one message through the milter */
static int
run_message(struct conn *c, const struct message *m, struct result *res)
{
	struct msgctx x;
	struct reply r, rej;
	const char *v;
	size_t i, off, n, accepted;
	double t0;
	int rc, eom = 0;

	memset(res, 0, sizeof(res[0]));
	clear_edits(c);
	c->msgno++;
	if (c->conn_res != 0) {
		res->code = c->conn_res;
		snprintf(res->text, sizeof(res->text), "%s", c->conn_text);
		return ST_OK;
	}
	if (c->fd < 0)
		return seterr(c, "not connected");
	if (!c->counting) {
		if ((rc = conn_flush(c)) != ST_OK)
			return rc;
		c->counting = 1;
	}
	t0 = now_ms();
	snprintf(x.qid, sizeof(x.qid), "%03X%02X%06lX",
	    (unsigned)getpid() & 0xfff, (unsigned)c->id & 0xff,
	    c->msgno & 0xffffff);
	x.rcpt = NULL;
	x.mail_from = opt.return_path && m->return_path != NULL ? m->return_path
								: opt.mail_from;
	c->skip_cmd = 0;
	if (c->need_abort)
		pkt_send(c, SMFIC_ABORT);
	c->need_abort = 0;

	if (ev_begin(c, &x, SMFIC_MAIL, SMFIP_NOMAIL, SMFIM_ENVFROM)) {
		pkt_put(c, "<", 1);
		pkt_put(c, x.mail_from, strlen(x.mail_from));
		pkt_str(c, ">");
		for (i = 0; i < opt.nmail_args; i++)
			pkt_str(c, opt.mail_args[i]);
		if ((rc = ev_end(c, "mail", SMFIC_MAIL, SMFIP_NR_MAIL, &r)) !=
		    ST_OK)
			return rc;
		if (ends_message(c, &r, res))
			goto done;
	}

	accepted = 0;
	rej.kind = RK_REJECT;
	rej.text[0] = '\0';
	for (i = 0; i < opt.nrcpts; i++) {
		x.rcpt = opt.rcpts[i];
		if (!ev_begin(c, &x, SMFIC_RCPT, SMFIP_NORCPT, SMFIM_ENVRCPT)) {
			accepted++;
			continue;
		}
		pkt_put(c, "<", 1);
		pkt_put(c, x.rcpt, strlen(x.rcpt));
		pkt_str(c, ">");
		if ((rc = ev_end(c, "rcpt", SMFIC_RCPT, SMFIP_NR_RCPT, &r)) !=
		    ST_OK)
			return rc;
		if (r.kind == RK_REJECT || r.kind == RK_TEMPFAIL ||
		    r.kind == RK_REPLYCODE)
			rej = r; /* this recipient only */
		else if (ends_message(c, &r, res))
			goto done;
		else
			accepted++;
	}
	x.rcpt = NULL;
	if (accepted == 0) {
		(void)ends_message(c, &rej, res);
		goto done;
	}

	if (ev_begin(c, &x, SMFIC_DATA, SMFIP_NODATA, SMFIM_DATA)) {
		if ((rc = ev_end(c, "data", SMFIC_DATA, SMFIP_NR_DATA, &r)) !=
		    ST_OK)
			return rc;
		if (ends_message(c, &r, res))
			goto done;
	}

	for (i = 0; i < m->nhdrs; i++) {
		if (!ev_begin(c, &x, SMFIC_HEADER, SMFIP_NOHDRS, SMFIM_EOH))
			continue;
		v = m->hdrs[i].value;
		if ((c->proto & SMFIP_HDR_LEADSPC) == 0 && *v == ' ')
			v++;
		pkt_str(c, m->hdrs[i].name);
		pkt_str(c, v);
		if ((rc = ev_end(
			 c, "header", SMFIC_HEADER, SMFIP_NR_HDR, &r)) != ST_OK)
			return rc;
		if (ends_message(c, &r, res))
			goto done;
	}

	if (ev_begin(c, &x, SMFIC_EOH, SMFIP_NOEOH, SMFIM_EOH)) {
		if ((rc = ev_end(c, "eoh", SMFIC_EOH, SMFIP_NR_EOH, &r)) !=
		    ST_OK)
			return rc;
		if (ends_message(c, &r, res))
			goto done;
	}

	if (opt.abort_after_headers) {
		pkt_send(c, SMFIC_ABORT);
		if ((rc = conn_flush(c)) != ST_OK)
			return rc;
		res->code = RES_ABORTED;
		res->ms = now_ms() - t0;
		return ST_OK;
	}

	for (off = 0; off < m->bodylen; off += n) {
		n = m->bodylen - off;
		if (n > MILTER_CHUNK_SIZE)
			n = MILTER_CHUNK_SIZE;
		if (!ev_begin(c, &x, SMFIC_BODY, SMFIP_NOBODY, SMFIM_EOM)) {
			if (c->skip_cmd == SMFIC_BODY)
				break;
			continue;
		}
		pkt_put(c, m->body + off, n);
		if ((rc = ev_end(c, "body", SMFIC_BODY, SMFIP_NR_BODY, &r)) !=
		    ST_OK)
			return rc;
		if (ends_message(c, &r, res))
			goto done;
		if (c->olen >= FLUSH_AT && (rc = conn_flush(c)) != ST_OK)
			return rc;
	}

	(void)ev_begin(c, &x, SMFIC_BODYEOB, 0, SMFIM_EOM);
	pkt_end(c);
	if ((rc = await_eom(c, res)) != ST_OK)
		return rc;
	eom = 1;
done:
	res->ms = now_ms() - t0;
	/* The milter still holds an unfinished message unless EOM ended it. */
	c->need_abort = !c->nomore && (!eom || opt.abort_between);
	return ST_OK;
}

/* conn_close - end the connection, politely if possible */
static void
conn_close(struct conn *c, int polite)
{
	if (c->fd >= 0 && polite && !c->nomore) {
		if (c->need_abort)
			pkt_send(c, SMFIC_ABORT);
		pkt_send(c, SMFIC_QUIT);
		(void)conn_flush(c);
	}
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
	c->olen = c->ioff = c->ilen = 0;
}

/* conn_start - connect, negotiate, send CONNECT and HELO */
static int
conn_start(struct conn *c)
{
	int rc;

	if ((rc = conn_open(c)) != ST_OK)
		return rc;
	c->counting = 0;
	c->sent = 0;
	if ((rc = negotiate(c)) != ST_OK || (rc = greet(c)) != ST_OK) {
		conn_close(c, 0);
		return rc;
	}
	return ST_OK;
}

/* print_result - the result line of one message */
static void
print_result(struct conn *c, const struct result *res)
{
	outs(c, "result: ");
	outs(c, res_names[res->code]);
	if (res->text[0] != '\0') {
		outs(c, " ");
		oute(c, res->text);
	}
	outs(c, "\n");
}

/* is_header - length of the name if line starts a header, else 0 */
static size_t
is_header(const char *line, size_t len, size_t *colon)
{
	size_t i, n;

	for (i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)line[i];

		if (ch <= ' ' || ch >= 0x7f || ch == ':')
			break;
	}
	if ((n = i) == 0)
		return 0;
	while (i < len && (line[i] == ' ' || line[i] == '\t'))
		i++;
	if (i >= len || line[i] != ':')
		return 0;
	*colon = i;
	return n;
}

static char *strip_angle(const char *);

/* parse_message - split a message into headers and a CRLF body */
static void
parse_message(const char *buf, size_t len, struct message *m)
{
	size_t pos = 0, l, next, nlen, colon, vlen, i;
	const char *line, *eol;
	struct header *h;
	char *p;

	/* An mbox "From " line is not part of the message. */
	if (len >= 5 && memcmp(buf, "From ", 5) == 0) {
		eol = memchr(buf, '\n', len);
		pos = eol != NULL ? (size_t)(eol - buf) + 1 : len;
	}
	while (pos < len) {
		line = buf + pos;
		eol = memchr(line, '\n', len - pos);
		l = eol != NULL ? (size_t)(eol - line) : len - pos;
		next = pos + l + (eol != NULL);
		if (l > 0 && line[l - 1] == '\r')
			l--;
		if (l == 0) {
			pos = next;
			break;
		}
		if ((line[0] == ' ' || line[0] == '\t') && m->nhdrs > 0) {
			h = &m->hdrs[m->nhdrs - 1];
			vlen = strlen(h->value);
			h->value = xrealloc(h->value, vlen + l + 2);
			h->value[vlen] = '\n';
			memcpy(h->value + vlen + 1, line, l);
			h->value[vlen + 1 + l] = '\0';
			pos = next;
			continue;
		}
		if ((nlen = is_header(line, l, &colon)) == 0)
			break; /* not a header: the body starts here */
		m->hdrs = xrealloc(m->hdrs, (m->nhdrs + 1) * sizeof(*m->hdrs));
		h = &m->hdrs[m->nhdrs++];
		h->name = xrealloc(NULL, nlen + 1);
		memcpy(h->name, line, nlen);
		h->name[nlen] = '\0';
		vlen = l - colon - 1;
		h->value = xrealloc(NULL, vlen + 1);
		memcpy(h->value, line + colon + 1, vlen);
		h->value[vlen] = '\0';
		pos = next;
	}
	for (i = 0; i < m->nhdrs && m->return_path == NULL; i++)
		if (strcasecmp(m->hdrs[i].name, "Return-Path") == 0)
			m->return_path = strip_angle(
			    m->hdrs[i].value + strspn(m->hdrs[i].value, " \t"));
	/* Body: every line ends in CRLF. */
	m->body = p = xrealloc(NULL, 2 * (len - pos) + 2);
	while (pos < len) {
		line = buf + pos;
		eol = memchr(line, '\n', len - pos);
		l = eol != NULL ? (size_t)(eol - line) : len - pos;
		next = pos + l + (eol != NULL);
		if (eol != NULL && l > 0 && line[l - 1] == '\r')
			l--;
		for (i = 0; i < l; i++)
			*p++ = line[i];
		*p++ = '\r';
		*p++ = '\n';
		pos = next;
	}
	m->bodylen = (size_t)(p - m->body);
}

/* load_message - read and parse a message file ("-": standard input) */
static void
load_message(const char *path, struct message *m)
{
	FILE *f;
	char *buf = NULL;
	size_t len = 0, cap = 0, r;

	if (strcmp(path, "-") == 0)
		f = stdin;
	else if ((f = fopen(path, "rb")) == NULL)
		fatal("%s: %s", path, strerror(errno));
	for (;;) {
		if (cap - len < 65536) {
			cap = cap == 0 ? 65536 : cap * 2;
			buf = xrealloc(buf, cap);
		}
		r = fread(buf + len, 1, cap - len, f);
		len += r;
		if (r == 0)
			break;
	}
	if (ferror(f))
		fatal("%s: read error", path);
	if (f != stdin)
		fclose(f);
	memset(m, 0, sizeof(*m));
	m->path = xstrdup(path);
	parse_message(buf, len, m);
	free(buf);
}

/* cmp_str - qsort comparison of strings */
static int
cmp_str(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* load_dir - read every regular file of a directory, in name order */
static void
load_dir(const char *dir)
{
	DIR *d;
	struct dirent *de;
	struct stat sb;
	char **names = NULL, path[PATH_MAX];
	size_t n = 0, i;

	if ((d = opendir(dir)) == NULL)
		fatal("%s: %s", dir, strerror(errno));
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
		if (stat(path, &sb) < 0 || !S_ISREG(sb.st_mode))
			continue;
		names = xrealloc(names, (n + 1) * sizeof(*names));
		names[n++] = xstrdup(path);
	}
	closedir(d);
	if (n == 0)
		fatal("%s: no message files", dir);
	qsort(names, n, sizeof(*names), cmp_str);
	msgs = xrealloc(NULL, n * sizeof(*msgs));
	for (i = 0; i < n; i++) {
		load_message(names[i], &msgs[i]);
		free(names[i]);
	}
	free(names);
	nmsgs = n;
}

/* parse_socket - resolve SOCKET into one more milter */
static void
parse_socket(const char *spec)
{
	struct milter *mt;
	struct addrinfo hints, *ai;
	struct sockaddr_un *sun;
	char buf[512], *host, *port, *at;
	const char *rest;
	int family, e;

	if (nmilters == MAX_CHAIN)
		usage("at most %d milters", MAX_CHAIN);
	mt = &milters[nmilters++];
	memset(mt, 0, sizeof(*mt));
	mt->spec = spec;
	if (strncmp(spec, "unix:", 5) == 0 || strncmp(spec, "local:", 6) == 0 ||
	    spec[0] == '/') {
		rest = spec[0] == '/' ? spec : strchr(spec, ':') + 1;
		sun = (struct sockaddr_un *)&mt->addr;
		if (strlen(rest) >= sizeof(sun->sun_path))
			usage("socket path too long: %s", rest);
		sun->sun_family = AF_UNIX;
		memcpy(sun->sun_path, rest, strlen(rest) + 1);
		mt->len = sizeof(*sun);
		return;
	}
	if (strncmp(spec, "inet:", 5) == 0) {
		family = AF_INET;
		rest = spec + 5;
	} else if (strncmp(spec, "inet6:", 6) == 0) {
		family = AF_INET6;
		rest = spec + 6;
	} else {
		usage("bad socket (inet:PORT@HOST, inet6:PORT@HOST, "
		      "unix:/path): %s",
		    spec);
		return;
	}
	if (snprintf(buf, sizeof(buf), "%s", rest) >= (int)sizeof(buf))
		usage("socket too long: %s", spec);
	if ((at = strchr(buf, '@')) != NULL) {
		*at = '\0';
		port = buf;
		host = at + 1;
	} else if (family == AF_INET && (at = strrchr(buf, ':')) != NULL) {
		*at = '\0';
		host = buf; /* Postfix style inet:HOST:PORT */
		port = at + 1;
	} else {
		port = buf;
		host = family == AF_INET ? "127.0.0.1" : "::1";
	}
	if (host[0] == '[' && host[strlen(host) - 1] == ']') {
		host[strlen(host) - 1] = '\0';
		host++;
	}
	memset(&hints, 0, sizeof(hints));
	hints.ai_family = family;
	hints.ai_socktype = SOCK_STREAM;
	if ((e = getaddrinfo(host, port, &hints, &ai)) != 0)
		fatal("%s: %s", spec, gai_strerror(e));
	memcpy(&mt->addr, ai->ai_addr, ai->ai_addrlen);
	mt->len = ai->ai_addrlen;
	freeaddrinfo(ai);
}

/* strip_angle - drop one pair of surrounding angle brackets */
static char *
strip_angle(const char *a)
{
	size_t n = strlen(a);
	char *s;

	if (n >= 2 && a[0] == '<' && a[n - 1] == '>') {
		s = xrealloc(NULL, n - 1);
		memcpy(s, a + 1, n - 2);
		s[n - 2] = '\0';
		return s;
	}
	return xstrdup(a);
}

/* num - parse a number option within bounds */
static long long
num(const char *s, const char *what, long long min, long long max)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *s == '\0' || *end != '\0' || v < min || v > max)
		usage("bad %s: %s", what, s);
	return v;
}

/* free_message - release a parsed message */
static void
free_message(struct message *m)
{
	size_t i;

	for (i = 0; i < m->nhdrs; i++) {
		free(m->hdrs[i].name);
		free(m->hdrs[i].value);
	}
	free(m->hdrs);
	free(m->body);
	free(m->path);
	free(m->return_path);
}

/* free_conn - release the buffers and macro lists of a connection */
static void
free_conn(struct conn *c)
{
	int s;

	for (s = 0; s < NSTAGES; s++)
		if (c->ml[s].idx != default_ml[s].idx)
			free(c->ml[s].idx);
	clear_edits(c);
	free(c->edits);
	free(c->ob);
	free(c->ib);
}

/*
 * edited_message - the message as milter n of a chain sees it: with the
 * headers milters 0..n-1 added or inserted, as Postfix does (it applies
 * one milter's edits to the queue file before it sends the content to
 * the next).  The result shares the body and unedited headers with m;
 * free it with free_edited().
 */
static void
edited_message(const struct message *m, const struct conn *cs, size_t n,
    struct message *out)
{
	const struct hedit *e;
	struct header *h;
	size_t i, j, k, at, len, total = 0;
	char *v;

	memset(out, 0, sizeof(*out));
	out->path = m->path;
	out->body = m->body;
	out->bodylen = m->bodylen;
	for (j = 0; j < n; j++)
		total += cs[j].nedits;
	out->hdrs = xrealloc(NULL, (m->nhdrs + total + 1) * sizeof(*out->hdrs));
	memcpy(out->hdrs, m->hdrs, m->nhdrs * sizeof(*out->hdrs));
	out->nhdrs = m->nhdrs;
	for (j = 0; j < n; j++) {
		for (i = 0; i < cs[j].nedits; i++) {
			e = &cs[j].edits[i];
			/* "name: value", CRLF folding as LF (parse_message's form) */
			len = strlen(e->value);
			v = xrealloc(NULL, len + 2);
			k = 0;
			if (e->value[0] != ' ' && e->value[0] != '\t')
				v[k++] = ' ';
			for (at = 0; at < len; at++)
				if (e->value[at] != '\r' ||
				    e->value[at + 1] != '\n')
					v[k++] = e->value[at];
			v[k] = '\0';
			at = e->idx < 0 || (size_t)e->idx > out->nhdrs
			    ? out->nhdrs
			    : (size_t)e->idx;
			memmove(out->hdrs + at + 1, out->hdrs + at,
			    (out->nhdrs - at) * sizeof(*out->hdrs));
			h = &out->hdrs[at];
			out->nhdrs++;
			h->name = xstrdup(e->name);
			h->value = v;
		}
	}
}

/* free_edited - release what edited_message() allocated */
static void
free_edited(const struct message *orig, struct message *m)
{
	size_t i, j;

	for (i = 0; i < m->nhdrs; i++) {
		for (j = 0; j < orig->nhdrs; j++)
			if (m->hdrs[i].name == orig->hdrs[j].name)
				break;
		if (j == orig->nhdrs) {
			free(m->hdrs[i].name);
			free(m->hdrs[i].value);
		}
	}
	free(m->hdrs);
}

/*
 * run_chain - one message through every milter in turn, each on its own
 * connection cs[i], the next one seeing the headers the previous added.
 * XXX Postfix sends each envelope event (MAIL, RCPT, DATA) to every milter
 * before the next event; here each milter gets its whole transaction in
 * turn.  The round trips are the same; only their order differs.  The
 * result is the first that is neither accept nor continue, else the
 * last; its time runs from the first MAIL to the last EOM reply.
 */
static int
run_chain(struct conn *cs, const struct message *m, struct result *res,
    size_t *failed)
{
	struct message cur;
	double t0 = now_ms();
	size_t i;
	int rc = ST_OK;

	for (i = 0; i < nmilters; i++) {
		*failed = i;
		if (i == 0) {
			rc = run_message(&cs[i], m, res);
		} else {
			edited_message(m, cs, i, &cur);
			rc = run_message(&cs[i], &cur, res);
			free_edited(m, &cur);
		}
		if (rc != ST_OK ||
		    (res->code != RES_ACCEPT && res->code != RES_CONTINUE))
			break;
	}
	res->ms = now_ms() - t0;
	return rc;
}

/*
 * run_single - single mode: one connection per milter, K copies of one
 * message, each through the milters in turn (see run_chain)
 */
static int
run_single(const char *path)
{
	struct message m, cur;
	struct conn cs[MAX_CHAIN];
	struct stats st;
	struct result res;
	size_t i;
	long k;
	int rc = ST_OK;

	load_message(path, &m);
	memset(cs, 0, sizeof(cs));
	memset(&st, 0, sizeof(st));
	for (i = 0; i < nmilters; i++) {
		cs[i].fd = -1;
		cs[i].out = stdout;
		cs[i].st = &st;
		cs[i].mt = &milters[i];
		if (conn_start(&cs[i]) != ST_OK)
			fatal("%s", cs[i].err);
	}
	for (k = 1; k <= opt.messages; k++) {
		if (opt.messages > 1)
			printf("message: %ld\n", k);
		for (i = 0; i < nmilters; i++) {
			if (nmilters > 1)
				printf("milter: %s\n", milters[i].spec);
			if (i == 0) {
				rc = run_message(&cs[i], &m, &res);
			} else {
				edited_message(&m, cs, i, &cur);
				rc = run_message(&cs[i], &cur, &res);
				free_edited(&m, &cur);
			}
			if (rc == ST_DISC) {
				printf("result: disconnected\n");
				break;
			}
			if (rc != ST_OK) {
				conn_close(&cs[i], 0);
				fatal("%s", cs[i].err);
			}
			print_result(&cs[i], &res);
			if (res.code != RES_ACCEPT && res.code != RES_CONTINUE)
				break;
		}
		if (rc == ST_DISC)
			break;
	}
	for (i = 0; i < nmilters; i++) {
		conn_close(&cs[i], 1);
		free_conn(&cs[i]);
	}
	free_message(&m);
	if (fflush(stdout) != 0)
		fatal("write error on standard output");
	return 0;
}

struct worker {
	pthread_t thread;
	int id;
	struct stats st;
	double *lat;
	size_t nlat;
	unsigned long errors;
};

/* load_error - report a load-mode error, up to a limit */
static void
load_error(struct worker *w, const char *msg)
{
	w->errors++;
	pthread_mutex_lock(&errlock);
	if (nerrors_printed < 10)
		fprintf(stderr, "miltc: connection %d: %s\n", w->id, msg);
	else if (nerrors_printed == 10)
		fprintf(stderr, "miltc: further errors not shown\n");
	nerrors_printed++;
	pthread_mutex_unlock(&errlock);
}

/*
 * worker_one - send one message in load mode (through every milter in
 * turn), recording it if asked
 */
static void
worker_one(struct worker *w, struct conn *cs, int *open,
    const struct message *m, int record)
{
	struct result res;
	size_t i, failed = 0;
	int rc;

	for (i = 0; i < nmilters; i++) {
		if (!open[i]) {
			if (conn_start(&cs[i]) != ST_OK) {
				load_error(w, cs[i].err);
				return;
			}
			open[i] = 1;
		}
		cs[i].st = record ? &w->st : NULL;
	}
	rc = run_chain(cs, m, &res, &failed);
	if (rc == ST_ERR) {
		load_error(w, cs[failed].err);
		conn_close(&cs[failed], 0);
		open[failed] = 0;
		return;
	}
	if (rc == ST_DISC) {
		if (record)
			w->st.res[RES_DISCONNECTED]++;
		conn_close(&cs[failed], 0);
		open[failed] = 0;
		return;
	}
	if (record) {
		w->st.res[res.code]++;
		w->lat[w->nlat++] = res.ms;
	}
	for (i = 0; i < nmilters; i++) {
		if (opt.reconnect || cs[i].nomore) {
			conn_close(&cs[i], 1);
			open[i] = 0;
		}
	}
}

/* worker_main - load mode thread: M messages on its own connection */
static void *
worker_main(void *arg)
{
	struct worker *w = arg;
	struct conn cs[MAX_CHAIN];
	int open[MAX_CHAIN];
	size_t k, i;
	long j;

	memset(cs, 0, sizeof(cs));
	w->lat = xrealloc(NULL, (size_t)opt.per_conn * sizeof(double));
	/* Connect and warm up before the clock starts. */
	for (i = 0; i < nmilters; i++) {
		cs[i].fd = -1;
		cs[i].id = w->id;
		cs[i].mt = &milters[i];
		open[i] = 0;
		if (conn_start(&cs[i]) == ST_OK)
			open[i] = 1;
		else
			load_error(w, cs[i].err);
	}
	for (j = 0; j < opt.warmup; j++)
		worker_one(w, cs, open, &msgs[(size_t)j % nmsgs], 0);
	pthread_barrier_wait(&start_barrier);
	for (j = 0; j < opt.per_conn; j++) {
		k = ((size_t)w->id * (size_t)opt.per_conn + (size_t)j) % nmsgs;
		worker_one(w, cs, open, &msgs[k], 1);
	}
	for (i = 0; i < nmilters; i++) {
		if (open[i])
			conn_close(&cs[i], 1);
		free_conn(&cs[i]);
	}
	return NULL;
}

/* cmp_double - qsort comparison of doubles */
static int
cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* pct - nearest-rank percentile of a sorted array */
static double
pct(const double *v, size_t n, double q)
{
	size_t k;

	if (n == 0)
		return 0;
	k = (size_t)(q * (double)n + 0.999999);
	if (k < 1)
		k = 1;
	return v[k > n ? n - 1 : k - 1];
}

/* run_load - load mode: N threads, M messages each */
static int
run_load(const char *dir)
{
	struct worker *w;
	struct stats t;
	double t0, secs, *lat, p50, p90, p99, max;
	size_t nlat = 0, i, r;
	unsigned long errors = 0, total, ok, other;
	long k;

	load_dir(dir);
	w = xrealloc(NULL, (size_t)opt.connections * sizeof(*w));
	memset(w, 0, (size_t)opt.connections * sizeof(*w));
	if (pthread_barrier_init(
		&start_barrier, NULL, (unsigned)opt.connections + 1) != 0)
		fatal("pthread_barrier_init failed");
	for (k = 0; k < opt.connections; k++) {
		w[k].id = (int)k;
		if (pthread_create(&w[k].thread, NULL, worker_main, &w[k]) != 0)
			fatal("pthread_create failed");
	}
	/* Every thread has connected and warmed up: start the clock. */
	pthread_barrier_wait(&start_barrier);
	t0 = now_ms();
	for (k = 0; k < opt.connections; k++)
		pthread_join(w[k].thread, NULL);
	secs = (now_ms() - t0) / 1000.0;

	memset(&t, 0, sizeof(t));
	lat = xrealloc(NULL,
	    (size_t)opt.connections * (size_t)opt.per_conn * sizeof(double));
	for (k = 0; k < opt.connections; k++) {
		for (r = 0; r < RES_MAX; r++)
			t.res[r] += w[k].st.res[r];
		t.addhdr += w[k].st.addhdr;
		t.inshdr += w[k].st.inshdr;
		t.chghdr += w[k].st.chghdr;
		t.delhdr += w[k].st.delhdr;
		t.quar += w[k].st.quar;
		t.rcpt += w[k].st.rcpt;
		t.from += w[k].st.from;
		t.body += w[k].st.body;
		errors += w[k].errors;
		memcpy(lat + nlat, w[k].lat, w[k].nlat * sizeof(double));
		nlat += w[k].nlat;
		free(w[k].lat);
	}
	qsort(lat, nlat, sizeof(double), cmp_double);
	p50 = pct(lat, nlat, 0.50);
	p90 = pct(lat, nlat, 0.90);
	p99 = pct(lat, nlat, 0.99);
	max = nlat > 0 ? lat[nlat - 1] : 0;
	for (total = 0, i = 0; i < RES_MAX; i++)
		total += t.res[i];
	ok = t.res[RES_ACCEPT] + t.res[RES_CONTINUE];
	other = total - ok - t.res[RES_REJECT] - t.res[RES_TEMPFAIL];

	printf("load: socket=%s%s connections=%ld per-conn=%ld files=%zu%s\n",
	    opt.socket, nmilters > 1 ? " (chain)" : "", opt.connections,
	    opt.per_conn, nmsgs, opt.reconnect ? " reconnect" : "");
	printf("messages: %lu done, %lu errors, %.3f s, %.1f msgs/s\n", total,
	    errors, secs, secs > 0 ? total / secs : 0.0);
	printf("latency ms: p50=%.3f p90=%.3f p99=%.3f max=%.3f\n", p50, p90,
	    p99, max);
	printf("results:");
	for (i = 1; i < RES_MAX; i++)
		printf(" %s=%lu", res_names[i], t.res[i]);
	printf("\nmodifications: add-header=%lu insert-header=%lu "
	       "change-header=%lu delete-header=%lu quarantine=%lu rcpt=%lu "
	       "change-from=%lu replace-body=%lu\n",
	    t.addhdr, t.inshdr, t.chghdr, t.delhdr, t.quar, t.rcpt, t.from,
	    t.body);
	printf("LOAD msgs=%lu secs=%.3f rate=%.1f p50_ms=%.3f p90_ms=%.3f "
	       "p99_ms=%.3f max_ms=%.3f accept=%lu reject=%lu tempfail=%lu "
	       "other=%lu errors=%lu\n",
	    total, secs, secs > 0 ? total / secs : 0.0, p50, p90, p99, max, ok,
	    t.res[RES_REJECT], t.res[RES_TEMPFAIL], other, errors);
	free(lat);
	free(w);
	for (i = 0; i < nmsgs; i++)
		free_message(&msgs[i]);
	free(msgs);
	if (fflush(stdout) != 0)
		fatal("write error on standard output");
	return errors > 0 ? 1 : 0;
}

/* main - parse the command line and run */
int
main(int argc, char *argv[])
{
	enum {
		O_CLIENT_IP = 256,
		O_CLIENT_NAME,
		O_CLIENT_PORT,
		O_HELO,
		O_MAIL_FROM,
		O_MAIL_ARG,
		O_RCPT,
		O_MACRO,
		O_TIMEOUT,
		O_ABORT_HDRS,
		O_ABORT_BETWEEN,
		O_DISCONNECT,
		O_MESSAGES,
		O_LOAD,
		O_CONNECTIONS,
		O_PER_CONN,
		O_RECONNECT,
		O_WARMUP,
		O_QUICKACK,
		O_CHAIN,
		O_RETURN_PATH
	};
	static const struct option longopts[] = {
	    {"client-ip", required_argument, NULL, O_CLIENT_IP},
	    {"client-name", required_argument, NULL, O_CLIENT_NAME},
	    {"client-port", required_argument, NULL, O_CLIENT_PORT},
	    {"helo", required_argument, NULL, O_HELO},
	    {"mail-from", required_argument, NULL, O_MAIL_FROM},
	    {"mail-arg", required_argument, NULL, O_MAIL_ARG},
	    {"rcpt", required_argument, NULL, O_RCPT},
	    {"macro", required_argument, NULL, O_MACRO},
	    {"timeout", required_argument, NULL, O_TIMEOUT},
	    {"abort-after-headers", no_argument, NULL, O_ABORT_HDRS},
	    {"abort-between", no_argument, NULL, O_ABORT_BETWEEN},
	    {"disconnect-after", required_argument, NULL, O_DISCONNECT},
	    {"messages", required_argument, NULL, O_MESSAGES},
	    {"verbose", no_argument, NULL, 'v'},
	    {"load", no_argument, NULL, O_LOAD},
	    {"connections", required_argument, NULL, O_CONNECTIONS},
	    {"per-conn", required_argument, NULL, O_PER_CONN},
	    {"reconnect", no_argument, NULL, O_RECONNECT},
	    {"warmup", required_argument, NULL, O_WARMUP},
	    {"quickack", no_argument, NULL, O_QUICKACK},
	    {"chain", required_argument, NULL, O_CHAIN},
	    {"return-path", no_argument, NULL, O_RETURN_PATH},
	    {"help", no_argument, NULL, 'h'},
	    {NULL, 0, NULL, 0},
	};
	const char **umacros = NULL, *chain[MAX_CHAIN];
	size_t nchain = 0;
	size_t numacros = 0, i;
	struct in6_addr a6;
	struct in_addr a4;
	char *end;
	double secs;
	int ch;

	opt.client_ip = "192.0.2.1";
	opt.client_name = "client.example.net";
	opt.client_port = 12345;
	opt.helo = "client.example.net";
	opt.mail_from = "sender@example.org";
	opt.timeout_ms = 30000;
	opt.disconnect_after = -1;
	opt.messages = 1;
	opt.connections = 1;
	opt.per_conn = 100;

	while ((ch = getopt_long(argc, argv, "hv", longopts, NULL)) != -1) {
		switch (ch) {
		case O_CLIENT_IP:
			opt.client_ip = optarg;
			break;
		case O_CLIENT_NAME:
			opt.client_name = optarg;
			break;
		case O_CLIENT_PORT:
			opt.client_port = (int)num(optarg, "port", 0, 65535);
			break;
		case O_HELO:
			opt.helo = optarg;
			break;
		case O_MAIL_FROM:
			opt.mail_from = optarg;
			break;
		case O_MAIL_ARG:
			opt.mail_args = xrealloc(opt.mail_args,
			    (opt.nmail_args + 1) * sizeof(char *));
			opt.mail_args[opt.nmail_args++] = optarg;
			break;
		case O_RCPT:
			opt.rcpts = xrealloc(
			    opt.rcpts, (opt.nrcpts + 1) * sizeof(char *));
			opt.rcpts[opt.nrcpts++] = strip_angle(optarg);
			break;
		case O_MACRO:
			umacros =
			    xrealloc(umacros, (numacros + 1) * sizeof(char *));
			umacros[numacros++] = optarg;
			break;
		case O_TIMEOUT:
			errno = 0;
			secs = strtod(optarg, &end);
			if (errno != 0 || *end != '\0' || secs <= 0 ||
			    secs > 86400)
				usage("bad timeout: %s", optarg);
			opt.timeout_ms = (int)(secs * 1000);
			if (opt.timeout_ms < 1)
				opt.timeout_ms = 1;
			break;
		case O_ABORT_HDRS:
			opt.abort_after_headers = 1;
			break;
		case O_ABORT_BETWEEN:
			opt.abort_between = 1;
			break;
		case O_DISCONNECT:
			opt.disconnect_after =
			    num(optarg, "byte count", 0, LLONG_MAX);
			break;
		case O_MESSAGES:
			opt.messages =
			    (long)num(optarg, "message count", 1, LONG_MAX);
			break;
		case 'v':
			opt.verbose = 1;
			break;
		case O_LOAD:
			opt.load = 1;
			break;
		case O_CONNECTIONS:
			opt.connections =
			    (long)num(optarg, "connections", 1, 10000);
			break;
		case O_PER_CONN:
			opt.per_conn =
			    (long)num(optarg, "per-conn", 1, 100000000);
			break;
		case O_RECONNECT:
			opt.reconnect = 1;
			break;
		case O_QUICKACK:
#ifndef TCP_QUICKACK
			usage("--quickack needs TCP_QUICKACK (Linux)");
#endif
			opt.quickack = 1;
			break;
		case O_RETURN_PATH:
			opt.return_path = 1;
			break;
		case O_CHAIN:
			if (nchain + 1 == MAX_CHAIN)
				usage("at most %d milters", MAX_CHAIN);
			chain[nchain++] = optarg;
			break;
		case O_WARMUP:
			opt.warmup = (long)num(optarg, "warmup", 0, 100000000);
			break;
		case 'h':
			for (i = 0; usage_text[i] != NULL; i++)
				puts(usage_text[i]);
			return 0;
		default:
			usage(NULL);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc < 1 || argc > 2 || (opt.load && argc != 2))
		usage(opt.load ? "load mode needs SOCKET and DIR" : NULL);

	opt.socket = argv[0];
	parse_socket(opt.socket);
	for (i = 0; i < nchain; i++)
		parse_socket(chain[i]);
	if (opt.client_ip[0] == '\0' || strcmp(opt.client_ip, "unknown") == 0)
		opt.family = 'U';
	else if (inet_pton(AF_INET, opt.client_ip, &a4) == 1)
		opt.family = '4';
	else if (inet_pton(AF_INET6, opt.client_ip, &a6) == 1)
		opt.family = '6';
	else
		usage("bad --client-ip: %s", opt.client_ip);
	opt.mail_from = strip_angle(opt.mail_from);
	if (opt.nrcpts == 0) {
		opt.rcpts = xrealloc(NULL, sizeof(char *));
		opt.rcpts[opt.nrcpts++] = xstrdup("rcpt@example.com");
	}
	default_macros();
	for (i = 0; i < numacros; i++)
		user_macro(umacros[i]);
	free(umacros);
	build_default_lists();
	signal(SIGPIPE, SIG_IGN);

	if (opt.load)
		return run_load(argv[1]);
	return run_single(argc == 2 ? argv[1] : "-");
}
