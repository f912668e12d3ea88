/*
 * fuzz_dkim_verify.c - libFuzzer target: DKIM verification through the
 * whole pipeline (msgctx.c, dkim_verify.c and libopendkim, dns.c and
 * libunbound, policy.c), with the key records the input makes.
 *
 * Two snapshots are built once with config_load + snapshot_build(cfg,
 * NULL, NULL, err), the daemon's own check table; every other check with
 * an "<x>_enable" switch (SPF, DMARC, ...) is switched off, so verdicts
 * and DNS traffic are DKIM's alone:
 *   A: defaults (dkim_max_signatures 10, dkim_min_key_bits 1024, ...);
 *   B: dkim_max_signatures 3, dkim_min_key_bits 2048, dkim_weak_key,
 *      dkim_rsa_sha1 and dkim_l_tag = fail, header_size_limit 2k,
 *      max_headers 40.
 * DNS: dns_servers points at a UDP server in this process (below) that
 * answers from the current input's records; dns_cache_size = 0 and every
 * answer has TTL 0 (negative ones too, through the SOA), so neither our
 * cache nor libunbound's keeps an answer from one input for the next
 * (LLVMFuzzerInitialize checks that libunbound does not). A query that
 * an input started but nobody waited for (dkim_verify.c looks keys up at
 * the header, libopendkim may never ask) would still be in flight when
 * the next input runs, and the next input would join it and get the old
 * answer; so after each message that made DNS queries, a query for a
 * fresh name is made and waited for: libunbound delivers answers in
 * order, so every earlier one has completed when it returns.
 *   Fixed names (not the input's): anything under servfail.test answers
 *   SERVFAIL; everything the input does not define is NXDOMAIN.
 *
 * Input:
 *   byte 0: bit 0 snapshot B; bits 1-3 body chunk size (whole, 1, 3, 17,
 *           64, 255, 1000, 4096 bytes); bits 4-7 extra copies (0-15) of
 *           the first DKIM-Signature header, put right after it (many
 *           signatures, past dkim_max_signatures, cheaply)
 *   byte 1: bit 0 the client is internal (127.0.0.1: not verified)
 *   then key records up to the first NUL byte, one per line: the name, a
 *           space or TAB, the TXT data ('|' separates character-strings;
 *           at most 16 records of 900 bytes)
 *   rest:   the message: header lines up to the first empty line (a line
 *           "Name:value" starts a header - the name printable ASCII, the
 *           white space before the colon dropped as Postfix's milter8.c
 *           does, other lines dropped -, one starting with SP or TAB
 *           continues it after a CRLF fold; NUL and CR are dropped from
 *           header lines, as MTA strings cannot hold them), then the body
 *           with its LF made CRLF (and a final CRLF if missing), as the
 *           MTA delivers it; bare CRs stay (Postfix passes them).
 * Client 192.0.2.1 (external), MAIL FROM <sender@example.org>.
 *
 * Asserts after each eom, beyond "no crash, no leak, no hang":
 *   - with N DKIM-Signature headers stored, R of them kept from
 *     libopendkim by dkim_verify.c for an i= that is not
 *     dkim-quoted-printable (each reported as permerror, past 8 as one
 *     sum; the harness finds them by that reason, and each must have such
 *     an i=), and K = dkim_max_signatures: m->ndkim == min(N - R, K) + the
 *     ones reported singly, m->dkim_unchecked == N - R - K when that is
 *     positive (else 0), and our A-R header has exactly those results
 *     plus one neutral "not checked" result when N - R > K and one sum
 *     of refused ones, or one dkim=none when N == 0; an internal client
 *     gets no dkim= result at all;
 *   - every dkim= result is none, pass, fail, policy, neutral, temperror
 *     or permerror (RFC 8601 2.7.1);
 *   - a pass has a key record: the input defines a record for
 *     <s>._domainkey.<d> and the server answered that name with it
 *     during this message;
 *   - the action is accept and no internal error is recorded (no check
 *     here can reject or tempfail: on_dns_error = accept);
 *   - bounded work: no DNS query timed out, and the server saw at most
 *     2 * min(N - R, K) distinct _domainkey names (one lookup at the
 *     header, one by libopendkim, per checked signature);
 *   - what the A-R result says of each signature libopendkim checked is
 *     in the signature: header.i is absent or the dkim-quoted-printable
 *     decoding of one of its i= (RFC 6376 2.11); header.a is its a=
 *     (where i= and a= are single tokens; checked when no i= of the
 *     message is bad, so that libopendkim's results follow the headers).
 * Bugs this found: dkim_verify-1 (libopendkim read past an i= ending in
 * "=" or "=X") and dkim_verify-2 (header.a "rsa-sha1" for a signature
 * libopendkim refused early), both fixed; open: dkim_verify-3, the fix
 * of dkim_verify-1 looks at the first i= only, so a signature with two,
 * the last one bad, still gets to libopendkim's decoder, and
 * dkim_verify-4, past 8 such signatures the rest get to it too. A
 * message that runs into these is not finished (the read can crash),
 * unless AG_FUZZ_STRICT=1 (crashes/README.md).
 *
 * Leaks: libunbound keeps what it resolves in its caches (TTL-0 records
 * too) and frees in its own threads, so nearly every input ends with more
 * mallocs than frees, and libFuzzer's per-input leak check (run the input
 * again, scan the whole heap) would run every time: 30 execs/s and
 * falling, against 800 without. LLVMFuzzerInitialize adds
 * -detect_leaks=0 before the command line's flags (which still win);
 * LeakSanitizer still checks at exit, so a leak fails the run, without an
 * input to blame: replay the inputs one at a time to find it.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "ar.h"
#include "config.h"
#include "dns.h"
#include "msgctx.h"
#include "snapshot.h"
#include "fuzz_common.h"

#define AG_FUZZ_MAX_RECS  16
#define AG_FUZZ_MAX_RDATA 900 /* one answer fits a 1232-byte response */
#define AG_FUZZ_MAX_SEEN  64  /* names the server answered, per message */
#define AG_FUZZ_MAX_HDRS  200

/* The DNS server: the current input's records, what it answered. */
struct fz_rec {
	char name[256]; /* presentation form, no final dot */
	unsigned char rdata[AG_FUZZ_MAX_RDATA + 8];
	size_t rdlen;
};

struct fz_seen {
	char name[256];
	bool key; /* answered with at least one TXT record */
};

static struct {
	int sock, port;
	pthread_mutex_t lock;
	struct fz_rec recs[AG_FUZZ_MAX_RECS];
	size_t nrecs;
	struct fz_seen seen[AG_FUZZ_MAX_SEEN];
	size_t nseen;
	size_t ndomainkey; /* distinct _domainkey names asked */
} srv;

static struct snapshot *snap_a, *snap_b;
static unsigned long drain_seq;

/* fz_wire_name - the question's name in presentation form; its end */
static size_t
fz_wire_name(const unsigned char *q, size_t qlen, size_t off, char *out)
{
	size_t n = 0;

	while (off < qlen && q[off] != 0) {
		size_t l = q[off++];

		if (l > 63 || off + l > qlen || n + l + 2 > 256)
			return 0;
		if (n)
			out[n++] = '.';
		memcpy(out + n, q + off, l);
		n += l;
		off += l;
	}
	out[n] = '\0';
	return off < qlen ? off + 1 : 0;
}

/* fz_suffix - does name end with the label sequence sfx? */
static bool
fz_suffix(const char *name, const char *sfx)
{
	size_t n = strlen(name), s = strlen(sfx);

	return n >= s && strcasecmp(name + n - s, sfx) == 0 &&
	    (n == s || name[n - s - 1] == '.');
}

/* fz_put16 - big-endian 16 bits */
static void
fz_put16(unsigned char *p, unsigned v)
{
	p[0] = (unsigned char)(v >> 8);
	p[1] = (unsigned char)v;
}

/* fz_note - remember a name answered for this message (lock held) */
static void
fz_note(const char *name, bool key)
{
	size_t i;

	for (i = 0; i < srv.nseen; i++)
		if (strcasecmp(srv.seen[i].name, name) == 0) {
			srv.seen[i].key |= key;
			return;
		}
	/* not SERVFAIL names: libunbound retries them, and a retry of an
	 * earlier message's query may come in after the drain */
	if ((strstr(name, "._domainkey.") != NULL ||
		strncasecmp(name, "_domainkey.", 11) == 0) &&
	    !fz_suffix(name, "servfail.test"))
		srv.ndomainkey++;
	if (srv.nseen < AG_FUZZ_MAX_SEEN) {
		snprintf(
		    srv.seen[i].name, sizeof(srv.seen[i].name), "%s", name);
		srv.seen[i].key = key;
		srv.nseen++;
	}
}

/*
 * fz_answer - the reply to one query: TXT records of the input (as many
 * as fit the requester's EDNS size), SERVFAIL under servfail.test,
 * NXDOMAIN or NODATA with a TTL-0 SOA otherwise; an OPT record back when
 * the query had one (else libunbound stops using EDNS for this server).
 */
static size_t
fz_answer(const unsigned char *q, size_t qlen, unsigned char *r, size_t rmax)
{
	static const unsigned char soa[] = {0xc0, 12, 0, 6, 0, 1, 0, 0, 0, 0, 0,
	    22, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
	    0};
	char name[256];
	size_t qend, len, i, limit = 512;
	unsigned qtype, an = 0, ar = 0;
	bool exists = false, edns = false;
	int rcode = 0;

	if (qlen < 17 || (qend = fz_wire_name(q, qlen, 12, name)) == 0 ||
	    qend + 4 > qlen)
		return 0;
	qtype = (unsigned)(q[qend] << 8 | q[qend + 1]);
	qend += 4;
	/* an OPT record in the additional section: its UDP size */
	if (q[11] >= 1 && qend + 11 <= qlen && q[qend] == 0 &&
	    q[qend + 1] == 0 && q[qend + 2] == 41) {
		edns = true;
		limit = (size_t)(q[qend + 3] << 8 | q[qend + 4]);
		if (limit < 512)
			limit = 512;
	}
	if (limit > rmax - 11)
		limit = rmax - 11;
	memcpy(r, q, qend);
	r[2] = 0x84 | (q[2] & 0x01); /* QR AA, RD copied */
	r[3] = 0x80;		     /* RA */
	memset(r + 6, 0, 6);
	len = qend;
	pthread_mutex_lock(&srv.lock);
	if (fz_suffix(name, "servfail.test"))
		rcode = 2;
	for (i = 0; i < srv.nrecs && rcode == 0; i++) {
		const struct fz_rec *rec = &srv.recs[i];

		if (strcasecmp(rec->name, name) != 0)
			continue;
		exists = true;
		if (qtype != AG_DNS_T_TXT || len + 12 + rec->rdlen > limit)
			continue;
		r[len] = 0xc0;
		r[len + 1] = 12;
		fz_put16(r + len + 2, AG_DNS_T_TXT);
		fz_put16(r + len + 4, 1);
		memset(r + len + 6, 0, 4); /* TTL 0 */
		fz_put16(r + len + 10, (unsigned)rec->rdlen);
		memcpy(r + len + 12, rec->rdata, rec->rdlen);
		len += 12 + rec->rdlen;
		an++;
	}
	fz_note(name, an > 0);
	pthread_mutex_unlock(&srv.lock);
	if (rcode != 0)
		r[3] = (unsigned char)(0x80 | rcode);
	else if (an == 0 && !exists)
		r[3] = 0x83; /* NXDOMAIN */
	fz_put16(r + 6, an);
	if (rcode == 0 && an == 0 && len + sizeof(soa) <= limit) {
		memcpy(r + len, soa, sizeof(soa));
		len += sizeof(soa);
		fz_put16(r + 8, 1);
	}
	if (edns) {
		static const unsigned char opt[] = {
		    0, 0, 41, 0x04, 0xd0, 0, 0, 0, 0, 0, 0}; /* 1232 bytes */

		memcpy(r + len, opt, sizeof(opt));
		len += sizeof(opt);
		ar = 1;
	}
	fz_put16(r + 10, ar);
	return len;
}

/* fz_serve - the server thread: one reply per query, for ever */
static void *
fz_serve(void *arg)
{
	unsigned char q[1500], r[1500];

	(void)arg;
	for (;;) {
		struct sockaddr_in from;
		socklen_t fl = sizeof(from);
		ssize_t n = recvfrom(
		    srv.sock, q, sizeof(q), 0, (struct sockaddr *)&from, &fl);
		size_t len;

		if (n <= 0)
			continue;
		if ((len = fz_answer(q, (size_t)n, r, sizeof(r))) > 0)
			sendto(
			    srv.sock, r, len, 0, (struct sockaddr *)&from, fl);
	}
	return NULL;
}

/* fz_start - bind 127.0.0.1:0 and serve; the port */
static int
fz_start(void)
{
	struct sockaddr_in sin;
	socklen_t len = sizeof(sin);
	pthread_t t;

	pthread_mutex_init(&srv.lock, NULL);
	srv.sock = socket(AF_INET, SOCK_DGRAM, 0);
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if (srv.sock == -1 ||
	    bind(srv.sock, (struct sockaddr *)&sin, sizeof(sin)) == -1 ||
	    getsockname(srv.sock, (struct sockaddr *)&sin, &len) == -1 ||
	    pthread_create(&t, NULL, fz_serve, NULL) != 0)
		abort();
	pthread_detach(t);
	return ntohs(sin.sin_port);
}

/* fz_txt - TXT rdata from text: '|' separates strings, 255 bytes each */
static size_t
fz_txt(const char *p, size_t len, unsigned char *out, size_t max)
{
	size_t n = 0;

	for (;;) {
		const char *bar = memchr(p, '|', len);
		size_t l = bar ? (size_t)(bar - p) : len;

		do {
			size_t piece = l > 255 ? 255 : l;

			if (n + 1 + piece > max)
				return n;
			out[n++] = (unsigned char)piece;
			memcpy(out + n, p, piece);
			n += piece;
			p += piece;
			l -= piece;
			len -= piece;
		} while (l > 0);
		if (bar == NULL)
			return n;
		p++;
		len--;
	}
}

/* fz_set_records - the records of the next message; forget the last */
static void
fz_set_records(const uint8_t *p, size_t n)
{
	size_t i = 0;

	pthread_mutex_lock(&srv.lock);
	srv.nrecs = 0;
	srv.nseen = 0;
	srv.ndomainkey = 0;
	while (i < n && srv.nrecs < AG_FUZZ_MAX_RECS) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - p) : n, s = i, e;
		struct fz_rec *rec = &srv.recs[srv.nrecs];

		i = nl ? end + 1 : n;
		if (end > s && p[end - 1] == '\r')
			end--;
		for (e = s; e < end && p[e] != ' ' && p[e] != '\t'; e++)
			;
		while (e > s && p[e - 1] == '.')
			e--; /* one name, with or without the final dot */
		if (e == s || e - s > 253)
			continue;
		memcpy(rec->name, p + s, e - s);
		rec->name[e - s] = '\0';
		while (e < end && p[e] != ' ' && p[e] != '\t')
			e++;
		if (e < end)
			e++;
		rec->rdlen = fz_txt((const char *)p + e, end - e, rec->rdata,
		    AG_FUZZ_MAX_RDATA);
		srv.nrecs++;
	}
	pthread_mutex_unlock(&srv.lock);
}

/* fz_has_record - does this message's zone define name? */
static bool
fz_has_record(const char *name)
{
	size_t i;
	bool found = false;

	pthread_mutex_lock(&srv.lock);
	for (i = 0; i < srv.nrecs && !found; i++)
		found = strcasecmp(srv.recs[i].name, name) == 0;
	pthread_mutex_unlock(&srv.lock);
	return found;
}

/* fz_served_key - was name answered with a record during this message? */
static bool
fz_served_key(const char *name)
{
	size_t i;
	bool found = false;

	pthread_mutex_lock(&srv.lock);
	for (i = 0; i < srv.nseen && !found; i++)
		found =
		    srv.seen[i].key && strcasecmp(srv.seen[i].name, name) == 0;
	pthread_mutex_unlock(&srv.lock);
	return found;
}

/* fz_lookup - one TXT lookup through dns.c, waited for */
static enum ag_dns_rc
fz_lookup(struct dns *d, const char *name, char *txt, size_t txtlen)
{
	struct dns_query *q = dns_query_start(d, NULL, name, AG_DNS_T_TXT);
	const struct dns_answer *a;
	enum ag_dns_rc rc = dns_query_wait(q, &a);

	if (txt != NULL) {
		txt[0] = '\0';
		if (rc == AG_DNS_OK && a->nrr > 0 && a->rr[0].len > 0) {
			size_t l = a->rr[0].data[0];

			if (l >= txtlen)
				l = txtlen - 1;
			if (l + 1 > a->rr[0].len)
				l = a->rr[0].len - 1;
			memcpy(txt, a->rr[0].data + 1, l);
			txt[l] = '\0';
		}
	}
	dns_query_free(q);
	return rc;
}

/* fz_drain - every earlier query completed (see the top comment) */
static void
fz_drain(struct dns *d)
{
	char name[64];

	snprintf(name, sizeof(name), "q%lu.drain.test", ++drain_seq);
	fz_lookup(d, name, NULL, 0);
}

/*
 * fz_selftest - libunbound must not keep a TTL-0 answer, positive or
 * negative, or the records of one input would leak into the next
 */
static void
fz_selftest(struct dns *d)
{
	static const char rec1[] = "cache.selftest.test one",
			  rec2[] = "cache.selftest.test two";
	char txt[16];

	fz_set_records((const uint8_t *)rec1, sizeof(rec1) - 1);
	if (fz_lookup(d, "cache.selftest.test", txt, sizeof(txt)) !=
		AG_DNS_OK ||
	    strcmp(txt, "one") != 0)
		goto fail;
	fz_set_records((const uint8_t *)rec2, sizeof(rec2) - 1);
	if (fz_lookup(d, "cache.selftest.test", txt, sizeof(txt)) !=
		AG_DNS_OK ||
	    strcmp(txt, "two") != 0)
		goto fail;
	fz_set_records(NULL, 0);
	if (fz_lookup(d, "cache.selftest.test", NULL, 0) != AG_DNS_NXDOMAIN)
		goto fail;
	fz_set_records((const uint8_t *)rec1, sizeof(rec1) - 1);
	if (fz_lookup(d, "cache.selftest.test", txt, sizeof(txt)) !=
		AG_DNS_OK ||
	    strcmp(txt, "one") != 0)
		goto fail;
	fz_set_records(NULL, 0);
	return;
fail:
	fprintf(stderr,
	    "fuzz_dkim_verify: a DNS answer with TTL 0 was kept (got '%s'): "
	    "records of one input would leak into the next\n",
	    txt);
	abort();
}

/* fuzz_snapshot - config from overrides, then the daemon's own table */
static struct snapshot *
fuzz_snapshot(const char *const *ov, size_t n)
{
	struct buf err = BUF_INIT;
	struct config *cfg = config_load("/dev/null", ov, n, &err);
	struct snapshot *s;

	if (cfg == NULL) {
		fprintf(stderr, "fuzz_dkim_verify: config: %s", err.data);
		abort();
	}
	if ((s = snapshot_build(cfg, NULL, NULL, &err)) == NULL) {
		fprintf(stderr, "fuzz_dkim_verify: snapshot: %s", err.data);
		abort();
	}
	buf_release(&err);
	return s;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const common[] = {
	    "authserv_id = mx.authgate.test",
	    "dns_timeout = 2s",
	    "dns_cache_size = 0",
	    "dns_error_ttl = 0",
	    "internal_hosts = 127.0.0.0/8",
	};
	static const char *const only_b[] = {
	    "dkim_max_signatures = 3",
	    "dkim_min_key_bits = 2048",
	    "dkim_weak_key = fail",
	    "dkim_rsa_sha1 = fail",
	    "dkim_l_tag = fail",
	    "header_size_limit = 2k",
	    "max_headers = 40",
	};
	const char *ov[64];
	static char off[32][80];
	char dns[64];
	size_t n = 0, noff = 0, i;

	static char *args[256], noleaks[] = "-detect_leaks=0";
	int k;

	/* libFuzzer reads its flags after this returns: no leak check per
	 * input (see the top comment); a flag given later still wins */
	if (*argc > 0 && *argc < 254) {
		args[0] = (*argv)[0];
		args[1] = noleaks;
		for (k = 1; k < *argc; k++)
			args[k + 1] = (*argv)[k];
		args[*argc + 1] = NULL;
		*argc += 1;
		*argv = args;
	}
	fuzz_quiet_logs();
	snprintf(dns, sizeof(dns), "dns_servers = 127.0.0.1@%d", fz_start());
	for (i = 0; i < sizeof(common) / sizeof(common[0]); i++)
		ov[n++] = common[i];
	ov[n++] = dns;
	/* every other check off: SPF, DMARC, and what comes next */
	for (i = 0; i < config_nparams() && noff < 32; i++) {
		const char *p = config_param_name(i);
		size_t l = strlen(p);

		if (l > 7 && strcmp(p + l - 7, "_enable") == 0) {
			snprintf(off[noff], sizeof(off[noff]), "%s = no", p);
			ov[n++] = off[noff++];
		}
	}
	snap_a = fuzz_snapshot(ov, n);
	for (i = 0; i < sizeof(only_b) / sizeof(only_b[0]); i++)
		ov[n++] = only_b[i];
	snap_b = fuzz_snapshot(ov, n);
	fz_selftest(snap_a->dns);
	fz_selftest(snap_b->dns);
	return 0;
}

/* The message of an input, as the MTA hands it over. */
struct fz_msg {
	const char *names[AG_FUZZ_MAX_HDRS];
	const char *values[AG_FUZZ_MAX_HDRS];
	size_t nhdrs;
	struct buf text;
	unsigned char *body;
	size_t bodylen;
};

/* line_add - a header line's bytes without CR and NUL */
static void
line_add(struct buf *b, const uint8_t *p, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (p[i] != '\r' && p[i] != '\0')
			buf_addch(b, (char)p[i]);
}

/* name_len - a header name without the white space before its colon
 * (Postfix strips it: RFC 5322 4.5.3 allows it, obsolete syntax) */
static size_t
name_len(const uint8_t *p, size_t len)
{
	while (len > 0 && (p[len - 1] == ' ' || p[len - 1] == '\t'))
		len--;
	return len;
}

/* name_ok - a header name Postfix takes for one (is_header.c): printable
 * ASCII without white space, then maybe white space, then the colon */
static bool
name_ok(const uint8_t *p, size_t len)
{
	size_t i, n = name_len(p, len);

	for (i = 0; i < n; i++)
		if (p[i] <= 0x20 || p[i] >= 0x7f)
			return false;
	return n > 0;
}

/* fz_parse - headers and body of the message text */
static void
fz_parse(struct fz_msg *fm, const uint8_t *p, size_t n, unsigned copies)
{
	size_t offs[AG_FUZZ_MAX_HDRS], vals[AG_FUZZ_MAX_HDRS];
	size_t i = 0, k, body = n, first = (size_t)-1;
	bool open = false;

	while (i < n) {
		const uint8_t *nl = memchr(p + i, '\n', n - i);
		size_t end = nl ? (size_t)(nl - p) : n, len = end - i;
		const uint8_t *colon;

		if (len > 0 && p[end - 1] == '\r')
			len--;
		if (len == 0) {
			body = nl ? end + 1 : n;
			break;
		}
		if ((p[i] == ' ' || p[i] == '\t') && open) {
			buf_add(&fm->text, "\r\n", 2);
			line_add(&fm->text, p + i, len);
		} else {
			if (open)
				buf_addch(&fm->text, '\0');
			open = false;
			colon = memchr(p + i, ':', len);
			if (colon != NULL && fm->nhdrs < AG_FUZZ_MAX_HDRS &&
			    name_ok(p + i, (size_t)(colon - (p + i)))) {
				offs[fm->nhdrs] = fm->text.len;
				line_add(&fm->text, p + i,
				    name_len(p + i, (size_t)(colon - (p + i))));
				buf_addch(&fm->text, '\0');
				vals[fm->nhdrs] = fm->text.len;
				line_add(&fm->text, colon + 1,
				    len - (size_t)(colon + 1 - (p + i)));
				fm->nhdrs++;
				open = true;
			}
		}
		i = nl ? end + 1 : n;
	}
	if (open)
		buf_addch(&fm->text, '\0');
	for (k = 0; k < fm->nhdrs; k++) {
		fm->names[k] = fm->text.data + offs[k];
		fm->values[k] = fm->text.data + vals[k];
		if (first == (size_t)-1 &&
		    str_casecmp(fm->names[k], "DKIM-Signature") == 0)
			first = k;
	}
	/* copies of the first signature, right after it */
	if (first != (size_t)-1) {
		if (copies > AG_FUZZ_MAX_HDRS - fm->nhdrs)
			copies = (unsigned)(AG_FUZZ_MAX_HDRS - fm->nhdrs);
		memmove(fm->names + first + 1 + copies, fm->names + first + 1,
		    (fm->nhdrs - first - 1) * sizeof(char *));
		memmove(fm->values + first + 1 + copies, fm->values + first + 1,
		    (fm->nhdrs - first - 1) * sizeof(char *));
		for (k = 1; k <= copies; k++) {
			fm->names[first + k] = fm->names[first];
			fm->values[first + k] = fm->values[first];
		}
		fm->nhdrs += copies;
	}
	/* the body as the MTA delivers it: CRLF line ends, a final one */
	fm->body = malloc(2 * (n - body) + 3);
	if (fm->body == NULL)
		abort();
	for (i = body; i < n; i++) {
		if (p[i] == '\n' && (i == body || p[i - 1] != '\r'))
			fm->body[fm->bodylen++] = '\r';
		fm->body[fm->bodylen++] = p[i];
	}
	if (fm->bodylen > 0 && fm->body[fm->bodylen - 1] != '\n') {
		fm->body[fm->bodylen++] = '\r';
		fm->body[fm->bodylen++] = '\n';
	}
}

/* is_result - one of RFC 8601's dkim results */
static bool
is_result(const char *r)
{
	static const char *const ok[] = {"none", "pass", "fail", "policy",
	    "neutral", "temperror", "permerror"};
	size_t i;

	for (i = 0; r != NULL && i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(r, ok[i]) == 0)
			return true;
	return false;
}

/*
 * tags - the values of the tags named t of a signature header value (RFC
 * 6376 3.2 tag-list, names and values trimmed); how many there are
 */
static int
tags(const char *v, size_t len, char t, const char **raw, size_t *rawlen,
    int max)
{
	size_t i = 0;
	int n = 0;

	while (i < len) {
		size_t s, e;
		const char *p;

		while (i < len && strchr(" \t\r\n\v\f;", v[i]) != NULL)
			i++;
		s = i;
		while (i < len && v[i] != '=' && v[i] != ';')
			i++;
		if (i == len || v[i] == ';')
			continue;
		for (e = i; e > s && strchr(" \t\r\n\v\f", v[e - 1]) != NULL;)
			e--;
		p = v + ++i;
		while (i < len && v[i] != ';')
			i++;
		if (e - s == 1 && v[s] == t && n < max) {
			size_t l = (size_t)(v + i - p);

			while (l > 0 && strchr(" \t\r\n\v\f", p[0]) != NULL)
				p++, l--;
			while (l > 0 && strchr(" \t\r\n\v\f", p[l - 1]) != NULL)
				l--;
			raw[n] = p;
			rawlen[n++] = l;
		}
	}
	return n;
}

/*
 * i_overread - does this i= value end, white space left out, in "=" or
 * "=" and one hex digit? libopendkim's dkim_qp_decode() then steps over
 * the value's terminating NUL and reads on (dkim_verify-1).
 */
static bool
i_overread(const char *raw, size_t len)
{
	char last[2];
	size_t n = 0, i;

	for (i = len; i-- > 0 && n < 2;)
		if (strchr(" \t\r\n\v\f", raw[i]) == NULL)
			last[n++] = raw[i];
	return (n >= 1 && last[0] == '=') ||
	    (n == 2 && last[1] == '=' && strchr("0123456789ABCDEF", last[0]) &&
		last[0] != '\0');
}

/* qp_ok - is this i= value dkim-quoted-printable (RFC 6376 2.11)? */
static bool
qp_ok(const char *raw, size_t len)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i;

	for (i = 0; i < len; i++)
		if (raw[i] == '=' &&
		    (i + 2 >= len || raw[i + 1] == '\0' || raw[i + 2] == '\0' ||
			strchr(hex, raw[i + 1]) == NULL ||
			strchr(hex, raw[i + 2]) == NULL))
			return false;
	return true;
}

/*
 * qp_expect - header.i as a sound dkim_sig_getidentity() gives it for the
 * i= value raw: the dkim-quoted-printable (RFC 6376 2.11: "=" and two of
 * 0-9A-F) decoded into out, and its length; -1 when there must be none
 * (not dkim-quoted-printable, or 256 bytes and more, which libopendkim's
 * buffer refuses); -2 when this check does not apply (white space, which
 * libopendkim decodes its own way, VT and FF, which its tag parser trims
 * as white space, or "=00", a NUL the C string cannot show).
 */
static int
qp_expect(const char *raw, size_t rawlen, char *out, size_t outlen)
{
	static const char hex[] = "0123456789ABCDEF";
	size_t i, n = 0;

	for (i = 0; i < rawlen; i++) {
		const char *h1, *h2;

		if (strchr(" \t\r\n\v\f", raw[i]) != NULL || raw[i] == '\0')
			return -2;
		if (raw[i] != '=') {
			if (n + 1 < outlen)
				out[n] = raw[i];
			n++;
			continue;
		}
		if (i + 2 >= rawlen || raw[i + 1] == '\0' ||
		    raw[i + 2] == '\0' ||
		    (h1 = strchr(hex, raw[i + 1])) == NULL ||
		    (h2 = strchr(hex, raw[i + 2])) == NULL)
			return -1;
		if (h1 == hex && h2 == hex)
			return -2;
		if (n + 1 < outlen)
			out[n] = (char)((h1 - hex) * 16 + (h2 - hex));
		n++;
		i += 2;
	}
	if (n >= 256 || n + 1 > outlen)
		return -1;
	out[n] = '\0';
	return (int)n;
}

/*
 * check_alg - header.a of a signature is its a= (when that is one
 * token), also for one libopendkim refused before it read a=
 * (dkim_verify-2, fixed)
 */
static void
check_alg(const struct hdr *h, const char *alg)
{
	const char *raw[2];
	size_t rawlen[2], i;

	if (alg == NULL ||
	    tags(h->value, h->valuelen, 'a', raw, rawlen, 2) != 1)
		return;
	for (i = 0; i < rawlen[0]; i++)
		if (strchr(" \t\r\n\v\f", raw[0][i]) != NULL ||
		    raw[0][i] == '\0')
			return;
	FUZZ_CHECK(
	    strlen(alg) == rawlen[0] && memcmp(alg, raw[0], rawlen[0]) == 0,
	    "header.a=%s for a signature with a=%s", alg,
	    fuzz_escape(raw[0], rawlen[0]));
}

/* tag_is - is one of the tags t of a signature header value exactly v? */
static bool
tag_is(const struct hdr *h, char t, const char *v)
{
	const char *raw[8];
	size_t rawlen[8];
	int n = v != NULL ? tags(h->value, h->valuelen, t, raw, rawlen, 8) : 0;
	int k;

	for (k = 0; k < n; k++)
		if (strlen(v) == rawlen[k] &&
		    strncasecmp(raw[k], v, rawlen[k]) == 0)
			return true;
	return false;
}

/*
 * same_sig - is o the result of this header? (d= and s= the same: the
 * results should follow the headers' order, and when they do not the
 * checks below are skipped rather than made on the wrong header)
 */
static bool
same_sig(const struct hdr *h, const struct dkim_outcome *o)
{
	return tag_is(h, 'd', o->domain) && tag_is(h, 's', o->selector);
}

/* qp_invalid - has the signature i= twice (RFC 6376 3.2), or an i= that
 * is not dkim-quoted-printable? (dkim_verify.c refuses it) */
static bool
qp_invalid(const struct hdr *h)
{
	const char *raw[8];
	size_t rawlen[8];
	int n = tags(h->value, h->valuelen, 'i', raw, rawlen, 8), k;

	if (n > 1)
		return true;
	for (k = 0; k < n; k++)
		if (!qp_ok(raw[k], rawlen[k]))
			return true;
	return false;
}

/*
 * check_identity - header.i and header.a of the signatures libopendkim
 * checked, for a message where no i= is bad (so libopendkim got every
 * DKIM-Signature, and m->dkim[] follows them): header.i the decoded
 * value of one of the signature's i=, or nothing (an i= that does not
 * decode gives nothing: dkim_verify-1, fixed; several i=: dkim_verify-3,
 * found by known_bug()); header.a the a= (check_alg). A header and a
 * result whose d= and s= differ are not compared.
 */
static void
check_identity(const struct msg *m, size_t nchecked)
{
	const struct hdr *h;
	size_t j = 0, rawlen[8];
	const char *raw[8];
	char dec[300];

	for (h = m->hdrs; h != NULL && j < nchecked; h = h->next) {
		const struct dkim_outcome *o = &m->dkim[j];
		bool match = false, na = false, over = false;
		int n, k;

		if (!str_caseeq_len(h->name, h->namelen, "DKIM-Signature"))
			continue;
		j++;
		if (!same_sig(h, o))
			continue;
		check_alg(h, o->algorithm);
		n = tags(h->value, h->valuelen, 'i', raw, rawlen, 8);
		if (o->identity == NULL || n == 0)
			continue;
		for (k = 0; k < n; k++) {
			int e = qp_expect(raw[k], rawlen[k], dec, sizeof(dec));

			na |= e == -2;
			match |= e >= 0 && strcmp(o->identity, dec) == 0;
			over |= e == -1 && i_overread(raw[k], rawlen[k]);
		}
		if (match || na)
			continue;
		(void)over;
		FUZZ_CHECK(false,
		    "header.i '%s', but i=%s does not decode to it",
		    fuzz_escape(o->identity, strlen(o->identity)),
		    fuzz_escape(raw[0], rawlen[0]));
	}
}

/*
 * check_identity_any - header.i of every result is the decoded i= of a
 * signature with the same d= and s= (or one this cannot decode): a
 * weaker check_identity() for messages with a bad i=
 */
static void
check_identity_any(const struct msg *m)
{
	const struct hdr *h;
	const char *raw[8];
	size_t rawlen[8], i;
	char dec[300];
	int n, k, e;

	for (i = 0; i < m->ndkim; i++) {
		const struct dkim_outcome *o = &m->dkim[i];
		bool ok = false, seen = false;

		for (h = m->hdrs; h != NULL && o->identity != NULL && !ok;
		     h = h->next) {
			if (!str_caseeq_len(
				h->name, h->namelen, "DKIM-Signature") ||
			    !same_sig(h, o))
				continue;
			seen = true;
			n = tags(h->value, h->valuelen, 'i', raw, rawlen, 8);
			for (k = 0; k < n && !ok; k++) {
				e = qp_expect(
				    raw[k], rawlen[k], dec, sizeof(dec));
				ok = e == -2 ||
				    (e >= 0 && strcmp(dec, o->identity) == 0);
			}
		}
		FUZZ_CHECK(o->identity == NULL || ok || !seen,
		    "header.i '%s' is the decoded i= of no signature of d=%s "
		    "s=%s",
		    fuzz_escape(o->identity, strlen(o->identity)),
		    o->domain ? o->domain : "-",
		    o->selector ? o->selector : "-");
	}
}

/* check_results - the invariants of one eom (see the top comment) */
static void
check_results(const struct msg *m, bool internal, size_t ndomainkey)
{
	const struct hdr *h;
	const struct ar_result *r;
	size_t nsig = 0, k = (size_t)m->cfg->dkim_max_signatures, want, i;
	size_t nar = 0, nnone = 0, nneutral_more = 0, nref = 0, nbad = 0;
	size_t nlib;
	unsigned more_ref = 0, u;

	for (h = m->hdrs; h != NULL; h = h->next)
		if (str_caseeq_len(h->name, h->namelen, "DKIM-Signature")) {
			nsig++;
			nbad += qp_invalid(h);
		}
	for (r = m->ar; r != NULL; r = r->next) {
		if (strcmp(r->method, "dkim") != 0)
			continue;
		if (getenv("AG_FUZZ_VERBOSE") != NULL) {
			int j;

			fprintf(
			    fuzz_err, "fuzz_dkim_verify: dkim=%s", r->result);
			for (j = 0; j < r->nprops; j++)
				fprintf(fuzz_err, " %s.%s=%s",
				    r->props[j].ptype, r->props[j].name,
				    fuzz_escape(r->props[j].value,
					strlen(r->props[j].value)));
			fprintf(fuzz_err, "%s%s\n", r->reason ? " reason=" : "",
			    r->reason ? r->reason : "");
		}
		nar++;
		FUZZ_CHECK(is_result(r->result),
		    "dkim=%s is no RFC 8601 result",
		    r->result ? r->result : "(null)");
		if (strcmp(r->result, "none") == 0)
			nnone++;
		if (r->reason != NULL && strstr(r->reason, "not checked"))
			nneutral_more++;
		/* kept from libopendkim for its i=: one by one, then a sum */
		if (r->reason != NULL &&
		    strstr(r->reason, "dkim-quoted-printable") != NULL) {
			if (sscanf(r->reason, "%u more", &u) == 1)
				more_ref += u;
			else
				nref++;
		}
	}
	FUZZ_CHECK(m->verdict.action == AG_ACT_ACCEPT &&
		!(m->errors & AG_ERR_INTERNAL),
	    "action %s, errors 0x%x", config_action_name(m->verdict.action),
	    m->errors);
	if (internal) {
		FUZZ_CHECK(nar == 0 && m->ndkim == 0,
		    "internal mail verified: %zu dkim= results", nar);
		return;
	}
	FUZZ_CHECK(nref + more_ref == nbad,
	    "%zu signatures refused for their i=, %zu have a bad one",
	    nref + more_ref, nbad);
	nlib = nsig - nref - more_ref; /* given to libopendkim */
	want = nlib < k ? nlib : k;
	FUZZ_CHECK(m->ndkim == want + nref,
	    "%zu signatures (%zu refused), %zu results, want %zu", nsig,
	    nref + more_ref, m->ndkim, want + nref);
	FUZZ_CHECK(m->dkim_unchecked == (nlib > k ? nlib - k : 0),
	    "%zu signatures checkable, max %zu, %u not checked", nlib, k,
	    m->dkim_unchecked);
	if (nsig == 0)
		FUZZ_CHECK(nar == 1 && nnone == 1,
		    "unsigned: %zu dkim= results (%zu none)", nar, nnone);
	else
		FUZZ_CHECK(nar == want + nref + (nlib > k) + (more_ref > 0) &&
			nnone == 0 && nneutral_more == (nlib > k),
		    "%zu signatures (%zu refused), max %zu: %zu dkim= results "
		    "(%zu none, %zu 'not checked')",
		    nsig, nref + more_ref, k, nar, nnone, nneutral_more);
	for (i = 0; i < m->ndkim; i++) {
		const struct dkim_outcome *o = &m->dkim[i];
		char name[600];
		size_t l;

		if (o->result != AG_DKIM_PASS)
			continue;
		FUZZ_CHECK(o->domain != NULL && o->selector != NULL,
		    "a pass without d= or s=");
		snprintf(name, sizeof(name), "%s._domainkey.%s", o->selector,
		    o->domain);
		l = strlen(name);
		if (l > 0 && name[l - 1] == '.')
			name[l - 1] = '\0';
		FUZZ_CHECK(fz_has_record(name) && fz_served_key(name),
		    "pass for d=%s s=%s without a key record served for %s",
		    o->domain, o->selector, name);
	}
	/* with no i= kept back, libopendkim got every signature, in order */
	if (nbad == 0)
		check_identity(m, want);
	else
		check_identity_any(m);
	FUZZ_CHECK(ndomainkey <= 2 * want,
	    "%zu _domainkey names looked up for %zu checked signatures",
	    ndomainkey, want);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const size_t chunks[] = {0, 1, 3, 17, 64, 255, 1000, 4096};
	struct fuzz_reader r = {data, size};
	uint8_t flags = fr_byte(&r), flags2 = fr_byte(&r);
	struct snapshot *snap = (flags & 1) ? snap_b : snap_a;
	size_t chunk = chunks[(flags >> 1) & 7], i, ndk;
	bool internal = (flags2 & 1) != 0;
	const uint8_t *nul = memchr(r.p, '\0', r.n);
	struct fz_msg fm;
	struct dns_stats st0, st1;
	struct conn *c;
	struct msg *m;

	memset(&fm, 0, sizeof(fm));
	fm.text = (struct buf)BUF_INIT;
	if (nul != NULL) {
		fz_set_records(r.p, (size_t)(nul - r.p));
		fz_parse(
		    &fm, nul + 1, r.n - (size_t)(nul + 1 - r.p), flags >> 4);
	} else {
		fz_set_records(NULL, 0);
		fz_parse(&fm, r.p, r.n, flags >> 4);
	}
	dns_stats(snap->dns, &st0);

	if ((c = conn_new(snap)) == NULL)
		abort();
	conn_set_client(
	    c, NULL, internal ? "127.0.0.1" : "192.0.2.1", "mail.example.net");
	conn_set_helo(c, "mail.example.net");
	conn_connected(c);
	if ((m = msg_new(c)) == NULL)
		abort();
	msg_set_qid(m, "FUZZ1");
	msg_mail(m, "<sender@example.org>");
	msg_rcpt(m, "<rcpt@example.net>");
	for (i = 0; i < fm.nhdrs; i++)
		msg_header(m, fm.names[i], fm.values[i]);
	msg_eoh(m);
	for (i = 0; i < fm.bodylen; i += chunk ? chunk : fm.bodylen)
		msg_body(m, fm.body + i,
		    chunk && chunk < fm.bodylen - i ? chunk : fm.bodylen - i);
	msg_eom(m);
	dns_stats(snap->dns, &st1);
	pthread_mutex_lock(&srv.lock);
	ndk = srv.ndomainkey;
	pthread_mutex_unlock(&srv.lock);
	FUZZ_CHECK(st1.timeouts == st0.timeouts,
	    "%llu DNS queries timed out (the server answers every one)",
	    st1.timeouts - st0.timeouts);
	check_results(m, internal, ndk);
	msg_free(m);
	conn_free(c);
	dns_stats(snap->dns, &st1);
	if (st1.queries != st0.queries)
		fz_drain(snap->dns);
	buf_release(&fm.text);
	free(fm.body);
	return 0;
}
