/*
 * dkim_bench.c - DKIM through the real pipeline (msgctx + dkim_sign.c /
 * dkim_verify.c + dns.c), without an MTA: messages per second signed
 * with RSA-2048, Ed25519 and both, and verified with 1 and 3 signatures,
 * keys from a warm cache (run.sh starts a DNS server on loopback whose
 * zone file this program writes). Not a test: it measures.
 *
 * usage: dkim_bench DNSPORT ZONEFILE N [verify]
 */
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "util/buf.h"
#include "checks.h"
#include "config.h"
#include "dkim_sign.h"
#include "dkim_verify.h"
#include "msgctx.h"
#include "snapshot.h"

static const struct check *const table[] = {&dkimv_check, &dkims_check, NULL};
static char dir[] = "/tmp/ag-bench-dkim-XXXXXX";
static char dnsov[64];

/* now_us - monotonic microseconds */
static long long
now_us(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

/* keygen - a key file name.pem; its public part as a zone JSON record */
static void
keygen(FILE *zone, const char *type, const char *sel, int first)
{
	EVP_PKEY *pk = strcmp(type, "rsa") == 0
	    ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)
	    : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	unsigned char der[4096], *dp = der;
	char b64[4096], path[256];
	size_t rawlen = 32;
	int len;
	FILE *fp;

	snprintf(path, sizeof(path), "%s/%s.pem", dir, sel);
	fp = fopen(path, "w");
	PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	chmod(path, 0600);
	if (strcmp(type, "rsa") == 0) {
		len = i2d_PUBKEY(pk, &dp);
		EVP_EncodeBlock((unsigned char *)b64, der, len);
	} else {
		EVP_PKEY_get_raw_public_key(pk, der, &rawlen);
		EVP_EncodeBlock((unsigned char *)b64, der, (int)rawlen);
	}
	fprintf(zone,
	    "%s [\"%s._domainkey.bench.example.\", \"TXT\", "
	    "\"v=DKIM1; k=%s; p=%s\"]\n",
	    first ? "" : ",", sel, type, b64);
	EVP_PKEY_free(pk);
}

/* snap_for - a snapshot signing with the keys whose selectors are given
 * ("" for verify only) */
static struct snapshot *
snap_for(const char *sels)
{
	struct buf err = BUF_INIT;
	char kt[256], st[256], ktov[300], stov[300], sel[32];
	const char *ovs[] = {dnsov, "log_level=err", ktov, stov};
	struct config *cfg;
	struct snapshot *s;
	const char *p = sels;
	FILE *k, *t;

	snprintf(kt, sizeof(kt), "%s/KeyTable", dir);
	snprintf(st, sizeof(st), "%s/SigningTable", dir);
	k = fopen(kt, "w");
	t = fopen(st, "w");
	while (sscanf(p, "%31s", sel) == 1) {
		fprintf(
		    k, "%s bench.example:%s:%s/%s.pem\n", sel, sel, dir, sel);
		fprintf(t, "*@bench.example %s\n", sel);
		p += strlen(sel);
		while (*p == ' ')
			p++;
	}
	fclose(k);
	fclose(t);
	snprintf(ktov, sizeof(ktov), "key_table=%s", *sels ? kt : "");
	snprintf(stov, sizeof(stov), "signing_table=%s%s",
	    *sels ? "refile:" : "", *sels ? st : "");
	if ((cfg = config_load("/dev/null", ovs, 4, &err)) == NULL ||
	    (s = snapshot_build(cfg, NULL, table, &err)) == NULL) {
		fputs(err.data, stderr);
		exit(1);
	}
	buf_release(&err);
	return s;
}

static const char *headers[][2] = {
    {"From", " Bench <bench@bench.example>"},
    {"To", " someone@example.net"},
    {"Subject", " a message of about 4 KB,\r\n folded"},
    {"Date", " Mon, 23 Nov 2026 10:00:00 +0000"},
    {"Message-ID", " <bench.1@bench.example>"},
    {"MIME-Version", " 1.0"},
    {"Content-Type", " text/plain; charset=utf-8"},
};

static char body[4096];
static struct buf sigs[3]; /* DKIM-Signature values to verify */
static size_t nsigs;

/*
 * one - a message through the pipeline: internal (signs) or external
 * (verifies the nsig signatures in sigs); keeps what it signed when keep
 */
static void
one(struct snapshot *s, int internal, size_t nsig, int keep)
{
	struct conn *c = conn_new(s);
	const struct hdr_edit *e;
	struct msg *m;
	size_t i;

	conn_set_client(c, NULL, internal ? "127.0.0.1" : "203.0.113.7", NULL);
	conn_set_helo(c, "mail.bench.example");
	conn_connected(c);
	m = msg_new(c);
	msg_mail(m, "<bench@bench.example>");
	msg_rcpt(m, "<someone@example.net>");
	for (i = 0; i < nsig; i++)
		msg_header(m, "DKIM-Signature", sigs[i].data);
	for (i = 0; i < sizeof(headers) / sizeof(headers[0]); i++)
		msg_header(m, headers[i][0], headers[i][1]);
	msg_eoh(m);
	msg_body(m, (const unsigned char *)body, strlen(body));
	msg_eom(m);
	if (!internal) {
		for (i = 0; i < m->ndkim; i++)
			if (m->dkim[i].result != AG_DKIM_PASS)
				abort();
		if (m->ndkim != nsig)
			abort();
	}
	for (e = m->verdict.edits; keep && e != NULL; e = e->next)
		if (e->op == AG_EDIT_INSERT &&
		    strcmp(e->name, "DKIM-Signature") == 0 && nsigs < 3) {
			const char *v;

			buf_addch(&sigs[nsigs], ' ');
			for (v = e->value; *v; v++) {
				if (*v == '\n')
					buf_addch(&sigs[nsigs], '\r');
				buf_addch(&sigs[nsigs], *v);
			}
			buf_addch(&sigs[nsigs], '\0');
			nsigs++;
		}
	conn_free(c);
}

/* rate - messages per second of n runs of one() */
static double
rate(struct snapshot *s, int internal, size_t nsig, int n)
{
	long long t0;
	int i;

	one(s, internal, nsig, 0); /* warm: keys in the cache */
	t0 = now_us();
	for (i = 0; i < n; i++)
		one(s, internal, nsig, 0);
	return n / ((now_us() - t0) / 1e6);
}

int
main(int argc, char **argv)
{
	struct snapshot *s;
	FILE *zone;
	int n, i;
	size_t off = 0;

	if (argc < 4) {
		fprintf(
		    stderr, "usage: dkim_bench DNSPORT ZONEFILE N [verify]\n");
		return 2;
	}
	n = atoi(argv[3]);
	snprintf(dnsov, sizeof(dnsov), "dns_servers=127.0.0.1@%s", argv[1]);
	if (mkdtemp(dir) == NULL)
		return 1;
	log_set_level(LOG_ERR);
	for (i = 0; off + 80 < sizeof(body) - 1; i++)
		off += (size_t)snprintf(body + off, sizeof(body) - off,
		    "Line %04d of the body, plain text to hash, %s\r\n", i,
		    "nothing more.");
	zone = fopen(argv[2], "w");
	fprintf(zone, "{\"ttl\": 3600, \"records\": [\n");
	keygen(zone, "rsa", "rsa", 1);
	keygen(zone, "ed25519", "ed", 0);
	keygen(zone, "rsa", "rsa2", 0);
	fprintf(zone, "]}\n");
	fclose(zone);
	sleep(1); /* the server reloads the zone when its mtime changes */

	if (argc > 4 && strcmp(argv[4], "verify") == 0)
		goto verify; /* for profiling: verification only */
	s = snap_for("rsa");
	printf("DKIM sign rsa-2048 messages=%d rate=%.0f/s\n", n,
	    rate(s, 1, 0, n));
	snapshot_release(s);
	s = snap_for("ed");
	printf(
	    "DKIM sign ed25519 messages=%d rate=%.0f/s\n", n, rate(s, 1, 0, n));
	snapshot_release(s);
	s = snap_for("rsa ed");
	printf("DKIM sign dual (rsa-2048 + ed25519) messages=%d rate=%.0f/s\n",
	    n, rate(s, 1, 0, n));
	snapshot_release(s);

verify:
	/* three signatures to verify: rsa, ed25519, another rsa */
	s = snap_for("rsa ed rsa2");
	one(s, 1, 0, 1);
	snapshot_release(s);
	s = snap_for("");
	printf("DKIM verify 1 signature (%s) messages=%d rate=%.0f/s\n",
	    strstr(sigs[0].data, "a=rsa-sha256") ? "rsa-2048" : "ed25519", n,
	    rate(s, 0, 1, n));
	printf("DKIM verify 3 signatures (rsa, ed25519, rsa) messages=%d "
	       "rate=%.0f/s\n",
	    n, rate(s, 0, 3, n));
	snapshot_release(s);
	for (i = 0; i < 3; i++)
		buf_release(&sigs[i]);
	{
		char cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 1;
	}
	return 0;
}
