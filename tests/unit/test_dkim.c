/*
 * test_dkim.c - DKIM signing and verification through the message
 * pipeline, keys served by a fake DNS server: KeyTable/SigningTable
 * errors with file:line, which senders are signed (never an external
 * client), sign-then-verify for RSA and Ed25519 on every
 * canonicalization, tampering, key records that are missing, revoked,
 * malformed or of the wrong type, DNS failures, weak keys, rsa-sha1, l=,
 * the signature cap, thousands of signatures, and the RFC 8463 example.
 */
#include <sys/stat.h>
#include <stdio.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <opendkim/dkim.h>

#include "testlib.h"
#include "util/buf.h"
#include "checks.h"
#include "config.h"
#include "dkim_sign.h"
#include "dkim_verify.h"
#include "msgctx.h"
#include "rfc5322.h"
#include "snapshot.h"
#include "fakedns.h"

static struct fakedns *fk;
static char dir[] = "/tmp/ag-test-dkim-XXXXXX";
static char dnsov[64];
static const struct check *const table[] = {&dkimv_check, &dkims_check, NULL};

#define TXT 16

/* ---- keys and records ---------------------------------------------- */

/* path_of - a file in the test directory (static buffer, rotating) */
static const char *
path_of(const char *name)
{
	static char p[4][256];
	static int i;

	i = (i + 1) % 4;
	snprintf(p[i], sizeof(p[i]), "%s/%s", dir, name);
	return p[i];
}

/* write_file - contents with a mode */
static void
write_file(const char *name, const char *text, mode_t mode)
{
	FILE *fp = fopen(path_of(name), "w");

	if (fp == NULL)
		fail_msg("cannot write %s", name);
	fputs(text, fp);
	fclose(fp);
	chmod(path_of(name), mode);
}

/* b64 - base64 of bytes (static buffer) */
static const char *
b64(const unsigned char *p, size_t len)
{
	static char out[2048];

	EVP_EncodeBlock((unsigned char *)out, p, (int)len);
	return out;
}

/*
 * new_key - generate a key, save it as name.pem (mode 0600), publish
 * "v=DKIM1; k=...; p=..." at sel._domainkey.domain (strings of at most
 * 200 bytes, as a zone would split it). Returns the key (caller frees).
 */
static EVP_PKEY *
new_key(const char *type, int bits, const char *name, const char *sel,
    const char *domain)
{
	EVP_PKEY *pk = strcmp(type, "rsa") == 0
	    ? EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)bits)
	    : EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
	unsigned char der[4096], *dp = der;
	size_t rawlen = 32;
	char rec[4096], split[4200], owner[256], file[64];
	const char *p;
	size_t n = 0, i;
	int len;
	FILE *fp;

	assert_non_null(pk);
	snprintf(file, sizeof(file), "%s.pem", name);
	fp = fopen(path_of(file), "w");
	assert_non_null(fp);
	PEM_write_PrivateKey(fp, pk, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	chmod(path_of(file), 0600);
	if (strcmp(type, "rsa") == 0) {
		len = i2d_PUBKEY(pk, &dp);
		assert_true(len > 0);
		p = b64(der, (size_t)len);
	} else {
		assert_int_equal(
		    EVP_PKEY_get_raw_public_key(pk, der, &rawlen), 1);
		p = b64(der, rawlen);
	}
	snprintf(rec, sizeof(rec), "v=DKIM1; k=%s; p=%s", type, p);
	for (i = 0; rec[i]; i++) {
		if (i > 0 && i % 200 == 0)
			split[n++] = '|';
		split[n++] = rec[i];
	}
	split[n] = '\0';
	snprintf(owner, sizeof(owner), "%s._domainkey.%s", sel, domain);
	fakedns_add(fk, owner, TXT, split, 60);
	return pk;
}

/* ---- configurations ------------------------------------------------ */

/* snap_with - a snapshot of the DKIM checks with overrides; NULL with
 * the error text in err */
static struct snapshot *
snap_with(const char *const *ov, size_t nov, struct buf *err)
{
	const char *all[16];
	struct config *cfg;
	struct snapshot *s;
	size_t i, n = 0;

	all[n++] = dnsov;
	all[n++] = "dns_timeout=300ms";
	all[n++] = "authserv_id=mx.test";
	for (i = 0; i < nov && n < 16; i++)
		all[n++] = ov[i];
	if ((cfg = config_load("/dev/null", all, n, err)) == NULL)
		return NULL;
	if ((s = snapshot_build(cfg, NULL, table, err)) == NULL)
		return NULL;
	return s;
}

/* snap_ok - a snapshot that must build */
static struct snapshot *
snap_ok(const char *const *ov, size_t nov)
{
	struct buf err = BUF_INIT;
	struct snapshot *s = snap_with(ov, nov, &err);

	if (s == NULL)
		fail_msg("snapshot: %s", err.data);
	buf_release(&err);
	return s;
}

/* snap_err - a snapshot that must not build; its error text */
static const char *
snap_err(const char *const *ov, size_t nov)
{
	static char text[1024];
	struct buf err = BUF_INIT;
	struct snapshot *s = snap_with(ov, nov, &err);

	if (s != NULL)
		fail_msg("snapshot built, want an error");
	snprintf(text, sizeof(text), "%s", err.data ? err.data : "");
	buf_release(&err);
	return text;
}

static char kt_ov[300], st_ov[300];

/* signing_ov - key_table/signing_table overrides for the test tables */
static const char *const *
signing_ov(const char *kt, const char *st)
{
	static const char *v[2];

	snprintf(kt_ov, sizeof(kt_ov), "key_table=%s", path_of(kt));
	snprintf(st_ov, sizeof(st_ov), "signing_table=refile:%s", path_of(st));
	v[0] = kt_ov;
	v[1] = st_ov;
	return v;
}

/* ---- the pipeline ---------------------------------------------------- */

struct result {
	char ar[8192];		/* our A-R value, unfolded */
	char signed_msg[65536]; /* the message as it leaves, CRLF */
	int nsig_added;
	int action;
	unsigned errors;
};

/* unfold_into - a header value on one line */
static void
unfold_into(char *out, size_t outlen, const char *v)
{
	size_t n = 0;

	for (; *v && n + 1 < outlen; v++) {
		if (*v == '\r')
			continue;
		if (*v == '\n') {
			while (v[1] == ' ' || v[1] == '\t')
				v++;
			out[n++] = ' ';
			continue;
		}
		out[n++] = *v;
	}
	out[n] = '\0';
}

/* crlf - the message text with LF line ends made CRLF (static) */
static const char *
crlf(const char *text)
{
	static char out[2][65536];
	static int k;
	size_t n = 0;

	k ^= 1;
	for (; *text && n + 2 < sizeof(out[k]); text++) {
		if (*text == '\n' && (n == 0 || out[k][n - 1] != '\r'))
			out[k][n++] = '\r';
		out[k][n++] = *text;
	}
	out[k][n] = '\0';
	return out[k];
}

/*
 * run - one message (CRLF text) from ip (auth user or NULL) through the
 * pipeline, the body fed in chunks of chunk bytes; the A-R value and the
 * message with the headers added on top, as the MTA would pass it on.
 */
static void
run(struct snapshot *s, const char *ip, const char *auth, const char *text,
    size_t chunk, struct result *r)
{
	struct conn *c = conn_new(s);
	struct rfc5322_field f;
	size_t len = strlen(text), off = 0, b;
	const struct hdr_edit *e, *ins[16];
	struct msg *m;
	char name[256], value[16384];
	size_t n = 0, w = 0;

	memset(r, 0, sizeof(*r));
	conn_set_client(c, NULL, ip, NULL);
	conn_set_helo(c, "client.example");
	conn_connected(c);
	m = msg_new(c);
	msg_set_auth(m, auth);
	msg_mail(m, "<sender@example.org>");
	msg_rcpt(m, "<rcpt@example.net>");
	while (rfc5322_next_field(text, len, &off, &f) == AG_R5322_FIELD) {
		snprintf(name, sizeof(name), "%.*s", (int)f.namelen, f.name);
		snprintf(
		    value, sizeof(value), "%.*s", (int)f.valuelen, f.value);
		msg_header(m, name, value);
	}
	msg_eoh(m);
	for (b = off; b < len; b += chunk)
		msg_body(m, (const unsigned char *)text + b,
		    len - b < chunk ? len - b : chunk);
	/* as an MTA: the body ends with a line end (not kept in text) */
	if (len > off && text[len - 1] != '\n')
		msg_body(m, (const unsigned char *)"\r\n", 2);
	msg_eom(m);
	r->action = (int)m->verdict.action;
	r->errors = m->errors;
	for (e = m->verdict.edits; e != NULL; e = e->next) {
		if (e->op != AG_EDIT_INSERT || n >= 16)
			continue;
		ins[n++] = e;
		if (strcmp(e->name, "Authentication-Results") == 0)
			unfold_into(r->ar, sizeof(r->ar), e->value);
		if (strcmp(e->name, "DKIM-Signature") == 0)
			r->nsig_added++;
	}
	/* inserts go on top one after the other: the last is first */
	while (n-- > 0) {
		const char *v;

		w += (size_t)snprintf(r->signed_msg + w,
		    sizeof(r->signed_msg) - w, "%s: ", ins[n]->name);
		for (v = ins[n]->value; *v && w + 3 < sizeof(r->signed_msg);
		     v++) {
			if (*v == '\n')
				r->signed_msg[w++] = '\r';
			r->signed_msg[w++] = *v;
		}
		w += (size_t)snprintf(
		    r->signed_msg + w, sizeof(r->signed_msg) - w, "\r\n");
	}
	snprintf(r->signed_msg + w, sizeof(r->signed_msg) - w, "%s", text);
	conn_free(c);
}

/* count - occurrences of needle in hay */
static int
count(const char *hay, const char *needle)
{
	int n = 0;

	while ((hay = strstr(hay, needle)) != NULL) {
		n++;
		hay += strlen(needle);
	}
	return n;
}

#define want_in(what, hay, needle)                                            \
	do {                                                                  \
		if (strstr((hay), (needle)) == NULL)                          \
			fail_msg(                                             \
			    "%s: '%s' not in '%s'", (what), (needle), (hay)); \
	} while (0)

static const char *plain_msg = "From: Alice <alice@example.org>\n"
			       "To: bob@example.net\n"
			       "Subject: hello\n"
			       "  folded subject\n"
			       "Date: Mon, 23 Nov 2026 10:00:00 +0000\n"
			       "Message-ID: <x1@example.org>\n"
			       "\n"
			       "Hello Bob.  \n"
			       "Second line.\t \n"
			       "\n"
			       "\n";

/* ---- fixtures ------------------------------------------------------ */

static EVP_PKEY *k_rsa, *k_ed, *k_weak;

static int
setup(void **state)
{
	(void)state;
	if (mkdtemp(dir) == NULL)
		return -1;
	fk = fakedns_start();
	snprintf(
	    dnsov, sizeof(dnsov), "dns_servers=127.0.0.1@%d", fakedns_port(fk));
	k_rsa = new_key("rsa", 2048, "rsa", "rs", "example.org");
	k_ed = new_key("ed25519", 0, "ed", "ed", "example.org");
	k_weak = new_key("rsa", 512, "weak", "weak", "example.org");
	{
		char kt[1024];

		snprintf(kt, sizeof(kt),
		    "# dual signing\n"
		    "rs example.org:rs:%s/rsa.pem\n"
		    "\n"
		    "ed example.org:ed:%s/ed.pem\n",
		    dir, dir);
		write_file("KeyTable", kt, 0644);
		snprintf(
		    kt, sizeof(kt), "weak example.org:weak:%s/weak.pem\n", dir);
		write_file("KeyTable.weak", kt, 0644);
	}
	write_file(
	    "SigningTable", "*@example.org rs\n*@example.org ed\n", 0644);
	write_file("SigningTable.weak", "*@example.org weak\n", 0644);
	return 0;
}

static int
teardown(void **state)
{
	char cmd[300];

	(void)state;
	EVP_PKEY_free(k_rsa);
	EVP_PKEY_free(k_ed);
	EVP_PKEY_free(k_weak);
	fakedns_stop(fk);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	if (system(cmd) != 0)
		return -1;
	return 0;
}

/* ---- tests --------------------------------------------------------- */

/* Table problems refuse the configuration, naming file and line. */
static void
test_table_errors(void **state)
{
	static const struct {
		const char *name, *kt, *st, *want;
	} rows[] = {
	    {"no selector", "k example.org\n", "*@example.org k\n",
		"KT:1: expected 'keyname domain:selector:/path/to/key'"},
	    {"relative path", "k example.org:s:rsa.pem\n", "*@x k\n",
		"KT:1: key 'k': need a domain, a selector and an absolute"},
	    {"missing key file", "k example.org:s:DIR/nothing.pem\n", "*@x k\n",
		"KT:1: key 'k': DIR/nothing.pem: cannot read"},
	    {"key others can read", "k example.org:s:DIR/open.pem\n", "*@x k\n",
		"open.pem: private key is readable by others"},
	    {"key its group can read", "k example.org:s:DIR/grp.pem\n",
		"*@x k\n",
		"KT:1: key 'k': DIR/grp.pem: private key is readable by its "
		"group (mode 0640)"},
	    {"key its group can write", "k example.org:s:DIR/gw.pem\n",
		"*@x k\n", "gw.pem: private key is writable by its group"},
	    {"not a key", "k example.org:s:DIR/junk.pem\n", "*@x k\n",
		"junk.pem: not a PEM private key"},
	    {"weak RSA", "\n\nk example.org:s:DIR/weak.pem\n", "*@x k\n",
		"KT:3: key 'k': DIR/weak.pem: RSA key of 512 bits, at least "
		"1024"},
	    {"EC key", "k example.org:s:DIR/ec.pem\n", "*@x k\n",
		"cannot sign DKIM (RSA or Ed25519)"},
	    {"encrypted key (never a pass phrase prompt)",
		"k example.org:s:DIR/enc.pem\n", "*@x k\n",
		"enc.pem: not a PEM private key (or it is encrypted)"},
	    {"key twice",
		"k example.org:s:DIR/rsa.pem\n"
		"k example.org:t:DIR/rsa.pem\n",
		"*@x k\n", "KT:2: key 'k' defined twice"},
	    {"unknown key name", "k example.org:s:DIR/rsa.pem\n",
		"# x\n*@x k\n*@y nokey\n",
		"ST:3: no key 'nokey' in the KeyTable"},
	    {"pattern without key", "k example.org:s:DIR/rsa.pem\n", "*@x\n",
		"ST:1: expected 'pattern keyname'"},
	};
	char kt[1024], st[512], want[512], *p;
	const char *err;
	size_t i;
	EVP_PKEY *ec;
	FILE *fp;

	(void)state;
	{
		char cmd[512];

		snprintf(cmd, sizeof(cmd),
		    "cp %s/rsa.pem %s/open.pem; chmod 644 %s/open.pem; "
		    "cp %s/rsa.pem %s/grp.pem; chmod 640 %s/grp.pem; "
		    "cp %s/rsa.pem %s/gw.pem; chmod 620 %s/gw.pem",
		    dir, dir, dir, dir, dir, dir, dir, dir, dir);
		assert_int_equal(system(cmd), 0);
	}
	write_file("junk.pem", "this is not a key\n", 0600);
	ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	fp = fopen(path_of("ec.pem"), "w");
	PEM_write_PrivateKey(fp, ec, NULL, NULL, 0, NULL, NULL);
	fclose(fp);
	chmod(path_of("ec.pem"), 0600);
	fp = fopen(path_of("enc.pem"), "w");
	PEM_write_PrivateKey(fp, ec, EVP_aes_128_cbc(),
	    (unsigned char *)"secret", 6, NULL, NULL);
	fclose(fp);
	chmod(path_of("enc.pem"), 0600);
	EVP_PKEY_free(ec);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		/* DIR in the rows is the test directory */
		snprintf(kt, sizeof(kt), "%s", rows[i].kt);
		while ((p = strstr(kt, "DIR")) != NULL) {
			char rest[1024];

			snprintf(rest, sizeof(rest), "%s", p + 3);
			snprintf(p, sizeof(kt) - (size_t)(p - kt), "%s%s", dir,
			    rest);
		}
		snprintf(st, sizeof(st), "%s", rows[i].st);
		write_file("KT", kt, 0644);
		write_file("ST", st, 0644);
		err = snap_err(signing_ov("KT", "ST"), 2);
		snprintf(want, sizeof(want), "%s", rows[i].want);
		/* file names in the rows stand for the full paths */
		if (strncmp(want, "KT:", 3) == 0 ||
		    strncmp(want, "ST:", 3) == 0)
			snprintf(
			    want, sizeof(want), "%s/%s", dir, rows[i].want);
		while ((p = strstr(want, "DIR")) != NULL) {
			char rest[512];

			snprintf(rest, sizeof(rest), "%s", p + 3);
			snprintf(p, sizeof(want) - (size_t)(p - want), "%s%s",
			    dir, rest);
		}
		if (strstr(err, want) == NULL)
			fail_msg("%s: error '%s', want '%s'", rows[i].name, err,
			    want);
	}
	/* one table without the other */
	{
		const char *ov[] = {kt_ov};

		snprintf(
		    kt_ov, sizeof(kt_ov), "key_table=%s", path_of("KeyTable"));
		err = snap_err(ov, 1);
		want_in("key_table alone", err,
		    "key_table and signing_table go together");
	}
}

/* Which keys sign: refile globs, plain lookups, dual keys, no repeats. */
static void
test_signing_table_match(void **state)
{
	static const struct {
		const char *name, *st, *from;
		int nsig;
	} rows[] = {
	    {"glob on the domain", "refile:*@example.org rs\n", "a@example.org",
		1},
	    {"glob misses another domain", "refile:*@example.org rs\n",
		"a@example.com", 0},
	    {"glob is case-blind", "refile:*@EXAMPLE.org rs\n", "A@Example.ORG",
		1},
	    {"glob on subdomains", "refile:*@*.example.org rs\n",
		"a@mail.example.org", 1},
	    {"two keys: dual", "refile:*@example.org rs\n*@example.org ed\n",
		"a@example.org", 2},
	    {"the same key twice signs once",
		"refile:*@example.org rs\n*example.org rs\n", "a@example.org",
		1},
	    {"plain: the domain", "example.org ed\n", "a@example.org", 1},
	    {"plain: the address", "a@example.org ed\n", "a@example.org", 1},
	    {"plain: another address", "b@example.org ed\n", "a@example.org",
		0},
	    {"plain: a parent domain", ".example.org ed\n",
		"a@mail.example.org", 1},
	    {"plain: star", "* rs\n", "a@anything.example", 1},
	    {"plain: no glob", "*@example.org rs\n", "a@example.org", 0},
	};
	char msg[512];
	struct result r;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		const char *st = rows[i].st;
		bool refile = strncmp(st, "refile:", 7) == 0;
		const char *ov[2];
		struct snapshot *s;

		write_file("ST", refile ? st + 7 : st, 0644);
		snprintf(
		    kt_ov, sizeof(kt_ov), "key_table=%s", path_of("KeyTable"));
		snprintf(st_ov, sizeof(st_ov), "signing_table=%s%s",
		    refile ? "refile:" : "", path_of("ST"));
		ov[0] = kt_ov;
		ov[1] = st_ov;
		s = snap_ok(ov, 2);
		snprintf(msg, sizeof(msg), "From: <%s>\nSubject: x\n\nbody\n",
		    rows[i].from);
		run(s, "127.0.0.1", NULL, crlf(msg), 4096, &r);
		want_int(rows[i].name, r.nsig_added, rows[i].nsig);
		snapshot_release(s);
	}
}

/* Internal clients and authenticated users are signed for; an external
 * client never is, whatever its From: says. */
static void
test_who_is_signed(void **state)
{
	struct snapshot *s = snap_ok(signing_ov("KeyTable", "SigningTable"), 2);
	struct result r;

	(void)state;
	run(s, "127.0.0.1", NULL, crlf(plain_msg), 4096, &r);
	want_int("internal host", r.nsig_added, 2);
	run(s, "203.0.113.5", "alice", crlf(plain_msg), 4096, &r);
	want_int("authenticated user", r.nsig_added, 2);
	run(s, "203.0.113.5", NULL, crlf(plain_msg), 4096, &r);
	want_int("external client", r.nsig_added, 0);
	want_in("external client is verified", r.ar, "dkim=none");
	run(s, "127.0.0.1", NULL, crlf("Subject: no from\n\nbody\n"), 4096, &r);
	want_int("no From:", r.nsig_added, 0);
	run(s, "127.0.0.1", NULL, crlf("From: a@example.com\n\nbody\n"), 4096,
	    &r);
	want_int("other domain", r.nsig_added, 0);
	snapshot_release(s);
}

/* What we sign verifies, for both key types, every canonicalization,
 * odd bodies and chunkings. */
static void
test_sign_verify(void **state)
{
	static const char *canons[] = {"relaxed/relaxed", "relaxed/simple",
	    "simple/relaxed", "simple/simple"};
	static const char *bodies[] = {"", "\n", "\n\n\n",
	    "one line without end", "a  b\t\tc  \n\n",
	    " leading space\n\ttab\n", "x\r\n\r\n  \r\n",
	    "8-bit: \xc3\xa9t\xc3\xa9\n", ".\n..\n.dot\n"};
	struct snapshot *v = snap_ok(NULL, 0);
	char msg[4096], ov_canon[64], row[128];
	struct result r, rv;
	size_t i, j;
	size_t chunks[] = {1, 3, 4096};

	(void)state;
	for (i = 0; i < 4; i++) {
		const char *ov[3];
		struct snapshot *s;

		memcpy(ov, signing_ov("KeyTable", "SigningTable"),
		    2 * sizeof(char *));
		snprintf(ov_canon, sizeof(ov_canon), "dkim_canonicalization=%s",
		    canons[i]);
		ov[2] = ov_canon;
		s = snap_ok(ov, 3);
		for (j = 0; j < sizeof(bodies) / sizeof(bodies[0]); j++) {
			snprintf(msg, sizeof(msg),
			    "From: Alice <alice@example.org>\n"
			    "To: bob@example.net,\n\tcarol@example.net\n"
			    "Subject:   spaced    subject  \n"
			    "Date: Mon, 23 Nov 2026 10:00:00 +0000\n\n%s",
			    bodies[j]);
			run(s, "127.0.0.1", NULL, crlf(msg), chunks[j % 3], &r);
			snprintf(row, sizeof(row), "%s body %zu signed",
			    canons[i], j);
			want_int(row, r.nsig_added, 2);
			run(v, "203.0.113.5", NULL, r.signed_msg,
			    chunks[(j + 1) % 3], &rv);
			snprintf(row, sizeof(row), "%s body %zu", canons[i], j);
			if (count(rv.ar, "dkim=pass") != 2)
				fail_msg("%s: A-R '%s'", row, rv.ar);
			want_in(row, rv.ar, "header.a=rsa-sha256");
			want_in(row, rv.ar, "header.a=ed25519-sha256");
			want_in(row, rv.ar, "header.d=example.org header.s=rs");
		}
		snapshot_release(s);
	}
	snapshot_release(v);
}

/* replace - the message with one substring changed (static) */
static const char *
replace(const char *text, const char *from, const char *to)
{
	static char out[65536];
	const char *p = strstr(text, from);

	assert_non_null(p);
	snprintf(out, sizeof(out), "%.*s%s%s", (int)(p - text), text, to,
	    p + strlen(from));
	return out;
}

/* A changed body or signed header fails; header.b tells them apart. */
static void
test_tampered(void **state)
{
	struct snapshot *s = snap_ok(signing_ov("KeyTable", "SigningTable"), 2);
	struct snapshot *v = snap_ok(NULL, 0);
	struct result r, rv;
	char b8[9];
	const char *p;

	(void)state;
	run(s, "127.0.0.1", NULL, crlf(plain_msg), 4096, &r);
	run(v, "203.0.113.5", NULL, replace(r.signed_msg, "Second", "Third"),
	    4096, &rv);
	if (count(rv.ar, "dkim=fail") != 2)
		fail_msg("body changed: %s", rv.ar);
	want_in("body changed", rv.ar, "body hash mismatch");
	run(v, "203.0.113.5", NULL,
	    replace(r.signed_msg, "Subject: hello", "Subject: HELLO"), 4096,
	    &rv);
	if (count(rv.ar, "dkim=fail") != 2)
		fail_msg("subject changed: %s", rv.ar);
	/* an added second Subject: is caught by oversigning */
	run(v, "203.0.113.5", NULL,
	    replace(r.signed_msg, "\nDate: Mon", "\nSubject: x\r\nDate: Mon"),
	    4096, &rv);
	if (count(rv.ar, "dkim=fail") != 2)
		fail_msg("subject added: %s", rv.ar);
	/* an unsigned header may be added */
	run(v, "203.0.113.5", NULL,
	    replace(r.signed_msg, "\nDate: Mon", "\nX-Extra: y\r\nDate: Mon"),
	    4096, &rv);
	if (count(rv.ar, "dkim=pass") != 2)
		fail_msg("unsigned header added: %s", rv.ar);
	/* header.b is the first 8 characters of b= */
	p = strstr(r.signed_msg, "a=rsa-sha256");
	assert_non_null(p);
	p = strstr(p, " b=");
	assert_non_null(p);
	snprintf(b8, sizeof(b8), "%.8s", p + 3);
	want_in("header.b", rv.ar, b8);
	snapshot_release(s);
	snapshot_release(v);
}

/*
 * lib_sign - a DKIM-Signature made by libopendkim directly (for what our
 * signer will not make: rsa-sha1, l=, odd selectors), prepended.
 */
static const char *
lib_sign(const char *text, const char *keyfile, const char *sel, dkim_alg_t alg,
    ssize_t l)
{
	static char out[2][65536];
	static int k;
	DKIM_LIB *lib = dkim_init(NULL, NULL);
	char pem[8192], name[256], value[16384];
	struct rfc5322_field f;
	size_t len = strlen(text), off = 0, n;
	unsigned char *sig;
	size_t siglen;
	DKIM_STAT st;
	DKIM *h;
	FILE *fp = fopen(path_of(keyfile), "r");

	/* libopendkim's default list signs DKIM-Signature headers too, and
	 * its own verifier then counts the signature being checked among
	 * them: name the usual headers instead */
	static const char *hdrs[] = {
	    "from", "to", "subject", "date", "message-id", NULL};

	assert_int_equal(dkim_options(lib, DKIM_OP_SETOPT, DKIM_OPTS_SIGNHDRS,
			     hdrs, sizeof(char **)),
	    DKIM_STAT_OK);
	assert_non_null(fp);
	n = fread(pem, 1, sizeof(pem) - 1, fp);
	pem[n] = '\0';
	fclose(fp);
	h = dkim_sign(lib, (unsigned char *)"t", NULL, (unsigned char *)pem,
	    (unsigned char *)sel, (unsigned char *)"example.org",
	    DKIM_CANON_RELAXED, DKIM_CANON_RELAXED, alg, l, &st);
	assert_non_null(h);
	while (rfc5322_next_field(text, len, &off, &f) == AG_R5322_FIELD) {
		snprintf(name, sizeof(name), "%.*s:%.*s", (int)f.namelen,
		    f.name, (int)f.valuelen, f.value);
		snprintf(value, sizeof(value), "%s", name);
		dkim_header(h, (unsigned char *)value, strlen(value));
	}
	dkim_eoh(h);
	dkim_body(h, (unsigned char *)text + off, len - off);
	assert_int_equal(dkim_eom(h, NULL), DKIM_STAT_OK);
	assert_int_equal(dkim_getsighdr_d(h, 16, &sig, &siglen), DKIM_STAT_OK);
	k ^= 1;
	snprintf(out[k], sizeof(out[k]), "DKIM-Signature: %.*s\r\n%s",
	    (int)siglen, sig, text);
	dkim_free(h);
	dkim_close(lib);
	return out[k];
}

/* Key records: each way a record can be wrong has its result. */
static void
test_key_records(void **state)
{
	static const struct {
		const char *name, *sel, *record;
		int rcode;
		bool drop;
		const char *want;
	} rows[] = {
	    {"no record", "none", NULL, -1, false, "dkim=permerror"},
	    {"NXDOMAIN", "nx", NULL, 3, false, "dkim=permerror"},
	    {"revoked (empty p=)", "revoked", "v=DKIM1; k=rsa; p=", -1, false,
		"dkim=permerror"},
	    {"bad base64", "b64", "v=DKIM1; k=rsa; p=!!!notbase64***", -1,
		false, "dkim=permerror"},
	    {"wrong type", "wrongk", "v=DKIM1; k=ed25519; p=PUBKEY", -1, false,
		"dkim=permerror"},
	    {"unknown key type", "kx", "v=DKIM1; k=dsa; p=PUBKEY", -1, false,
		"dkim=permerror"},
	    {"wrong version", "v2", "v=DKIM2; k=rsa; p=PUBKEY", -1, false,
		"dkim=permerror"},
	    {"not a tag list", "garbage", "hello world", -1, false,
		"dkim=permerror"},
	    {"another key", "other", "OTHERKEY", -1, false, "dkim=fail"},
	    {"SERVFAIL", "sf", "v=DKIM1; k=rsa; p=PUBKEY", 2, false,
		"dkim=temperror"},
	    {"no answer", "drop", "v=DKIM1; k=rsa; p=PUBKEY", -1, true,
		"dkim=temperror"},
	    {"good (control)", "good", "v=DKIM1; k=rsa; p=PUBKEY", -1, false,
		"dkim=pass"},
	};
	struct snapshot *v = snap_ok(NULL, 0);
	unsigned char der[4096], *dp = der;
	char pub[2048], other[4096], rec[4096], owner[128], *p;
	struct result r;
	EVP_PKEY *o = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	size_t i;
	int len;

	(void)state;
	len = i2d_PUBKEY(k_rsa, &dp);
	snprintf(pub, sizeof(pub), "%s", b64(der, (size_t)len));
	dp = der;
	len = i2d_PUBKEY(o, &dp);
	snprintf(other, sizeof(other), "v=DKIM1; k=rsa; p=%s",
	    b64(der, (size_t)len));
	EVP_PKEY_free(o);
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		snprintf(owner, sizeof(owner), "%s._domainkey.example.org",
		    rows[i].sel);
		if (rows[i].record != NULL) {
			if (strcmp(rows[i].record, "OTHERKEY") == 0)
				snprintf(rec, sizeof(rec), "%s", other);
			else
				snprintf(
				    rec, sizeof(rec), "%s", rows[i].record);
			if ((p = strstr(rec, "PUBKEY")) != NULL)
				snprintf(p, sizeof(rec) - (size_t)(p - rec),
				    "%.200s|%s", pub, pub + 200);
			fakedns_add(fk, owner, TXT, rec, 60);
		}
		if (rows[i].rcode != -1 || rows[i].drop)
			fakedns_behave(
			    fk, owner, rows[i].rcode, 0, rows[i].drop);
		run(v, "203.0.113.5", NULL,
		    lib_sign(crlf(plain_msg), "rsa.pem", rows[i].sel,
			DKIM_SIGN_RSASHA256, -1),
		    4096, &r);
		want_in(rows[i].name, r.ar, rows[i].want);
		want_in(rows[i].name, r.ar, "header.s=");
		if (strcmp(rows[i].want, "dkim=temperror") == 0 &&
		    !(r.errors & AG_ERR_DNS))
			fail_msg("%s: no DNS error class", rows[i].name);
	}
	snapshot_release(v);
}

/* RFC 8301 and local policy: weak keys, rsa-sha1, l=. */
static void
test_policies(void **state)
{
	struct snapshot *v = snap_ok(NULL, 0);
	const char *weakfail[] = {
	    "dkim_weak_key=fail", "dkim_rsa_sha1=fail", "dkim_l_tag=fail"};
	struct snapshot *vf = snap_ok(weakfail, 3);
	const char *signweak[] = {kt_ov, st_ov, "dkim_min_key_bits=512"};
	struct snapshot *sw;
	const char *m;
	struct result r;

	(void)state;
	signing_ov("KeyTable.weak", "SigningTable.weak");
	sw = snap_ok(signweak, 3);
	/* a 512-bit key: policy, or fail as configured */
	run(sw, "127.0.0.1", NULL, crlf(plain_msg), 4096, &r);
	want_int("weak key signed", r.nsig_added, 1);
	m = strdup(r.signed_msg);
	run(v, "203.0.113.5", NULL, m, 4096, &r);
	want_in("weak key", r.ar, "dkim=policy");
	want_in("weak key", r.ar, "512-bit key is below dkim_min_key_bits");
	run(vf, "203.0.113.5", NULL, m, 4096, &r);
	want_in("weak key, fail", r.ar, "dkim=fail");
	free((void *)m);
	/* rsa-sha1 */
	m = lib_sign(crlf(plain_msg), "rsa.pem", "rs", DKIM_SIGN_RSASHA1, -1);
	run(v, "203.0.113.5", NULL, m, 4096, &r);
	want_in("rsa-sha1", r.ar, "dkim=policy");
	want_in("rsa-sha1", r.ar, "RFC 8301");
	run(vf, "203.0.113.5", NULL, m, 4096, &r);
	want_in("rsa-sha1, fail", r.ar, "dkim=fail");
	/* l=: the first 10 bytes signed, then text appended */
	m = lib_sign(crlf(plain_msg), "rsa.pem", "rs", DKIM_SIGN_RSASHA256, 10);
	m = replace(m, "Second line.", "Second line. And an appended offer!");
	run(v, "203.0.113.5", NULL, m, 4096, &r);
	want_in("l=", r.ar, "dkim=pass");
	want_in("l=", r.ar, "body length limited to 10 bytes by l=");
	run(vf, "203.0.113.5", NULL, m, 4096, &r);
	want_in("l=, fail", r.ar, "dkim=fail");
	want_in("l=, fail", r.ar, "body length limit (l=) not accepted");
	snapshot_release(sw);
	snapshot_release(v);
	snapshot_release(vf);
}

/* At most dkim_max_signatures are checked; thousands of signature
 * headers (valid and garbage) end with a defined result. */
static void
test_many_signatures(void **state)
{
	const char *three[] = {"dkim_max_signatures=3"};
	struct snapshot *v3 = snap_ok(three, 1);
	struct snapshot *v = snap_ok(NULL, 0);
	static char big[2 * 1024 * 1024];
	struct result *r = malloc(sizeof(*r));
	const char *m = crlf(plain_msg);
	size_t n = 0;
	int i;

	(void)state;
	assert_non_null(r);
	for (i = 0; i < 5; i++)
		m = lib_sign(m, "rsa.pem", "rs", DKIM_SIGN_RSASHA256, -1);
	run(v3, "203.0.113.5", NULL, m, 4096, r);
	if (count(r->ar, "dkim=pass") != 3)
		fail_msg("3 of 5 checked: %s", r->ar);
	want_in("3 of 5", r->ar, "2 more signatures not checked");
	run(v, "203.0.113.5", NULL, m, 4096, r);
	if (count(r->ar, "dkim=pass") != 5)
		fail_msg("5 of 5 checked: %s", r->ar);
	/* 12 keys, a budget of 10 queries: the 2 keys it refused are never
	 * looked up by libopendkim either (it used to, past the budget) */
	{
		const char *ten[] = {
		    "dns_max_queries_per_message=10", "dkim_max_signatures=50"};
		struct snapshot *b10 = snap_ok(ten, 2);
		const char *bm = crlf(plain_msg);
		char sel[16], file[24];

		for (i = 1; i <= 12; i++) {
			snprintf(sel, sizeof(sel), "bud%d", i);
			snprintf(file, sizeof(file), "%s.pem", sel);
			EVP_PKEY_free(
			    new_key("rsa", 1024, sel, sel, "example.org"));
			bm = lib_sign(bm, file, sel, DKIM_SIGN_RSASHA256, -1);
		}
		run(b10, "203.0.113.5", NULL, bm, 4096, r);
		if (count(r->ar, "dkim=pass") != 10 ||
		    count(r->ar, "DNS query budget") != 2)
			fail_msg("12 keys, 10 queries: %d pass, %d refused: %s",
			    count(r->ar, "dkim=pass"),
			    count(r->ar, "DNS query budget"), r->ar);
		snapshot_release(b10);
	}
	/* 3000 headers: garbage, huge h=, bad base64, then real ones */
	for (i = 0; i < 3000; i++) {
		static const char *junk[] = {
		    "v=1; a=rsa-sha256; d=example.org; s=rs; h=from; bh=!!; "
		    "b=??",
		    "garbage without tags",
		    "v=1; a=rsa-sha256; d=example.org; s=nx%d; c=relaxed/"
		    "relaxed; h=from:from:from:from:from:from:from:from:from:"
		    "from:from:from:from:from:from:from:from:from:from:from; "
		    "bh=AAAA; b=AAAA",
		    ";;;====;;;",
		};

		n += (size_t)snprintf(
		    big + n, sizeof(big) - n, "DKIM-Signature: ");
		n += (size_t)snprintf(big + n, sizeof(big) - n, junk[i % 4], i);
		n += (size_t)snprintf(big + n, sizeof(big) - n, "\r\n");
	}
	snprintf(big + n, sizeof(big) - n, "%s", m);
	run(v, "203.0.113.5", NULL, big, 65536, r);
	want_in("3005 signatures", r->ar, "more signatures not checked");
	want_int("3005 signatures: accepted", r->action, AG_ACT_ACCEPT);
	free(r);
	snapshot_release(v3);
	snapshot_release(v);
}

/* Signatures libopendkim must not see or misreports: an i= that ends in
 * "=" (its decoder reads past the value: fuzz input dkim_verify-1), and
 * the algorithm of a signature it refused early (dkim_verify-2). */
static void
test_odd_signatures(void **state)
{
	struct snapshot *v = snap_ok(NULL, 0);
	struct result r;
	const char *good =
	    lib_sign(crlf(plain_msg), "rsa.pem", "rs", DKIM_SIGN_RSASHA256, -1);
	char msg[16384];

	(void)state;
	snprintf(msg, sizeof(msg),
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=rs; "
	    "h=from; bh=AAAA; b=AAAA; i=a=\r\n%s",
	    good);
	run(v, "203.0.113.5", NULL, msg, 4096, &r);
	want_in("i= ending in =", r.ar, "dkim=permerror");
	want_in("i= ending in =", r.ar, "not dkim-quoted-printable");
	want_in("the good one still passes", r.ar, "dkim=pass");
	/* i= twice, the last one bad (libopendkim decodes the last) */
	snprintf(msg, sizeof(msg),
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=rs; "
	    "h=from; bh=AAAA; b=AAAA; i=@example.org; i=a=\r\n%s",
	    crlf(plain_msg));
	run(v, "203.0.113.5", NULL, msg, 4096, &r);
	want_in("i= twice", r.ar, "dkim=permerror");
	if (count(r.ar, "dkim=") != 1)
		fail_msg("i= twice: %s", r.ar);
	/* more bad ones than are reported one by one: none reaches
	 * libopendkim, each is counted once */
	{
		size_t n = 0;
		int k;

		for (k = 0; k < 9; k++)
			n += (size_t)snprintf(msg + n, sizeof(msg) - n,
			    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; "
			    "s=rs; h=from; bh=AAAA; b=AAAA; i=a=\r\n");
		snprintf(msg + n, sizeof(msg) - n, "%s", crlf(plain_msg));
		run(v, "203.0.113.5", NULL, msg, 4096, &r);
		if (count(r.ar, "dkim=permerror") != 9 ||
		    strstr(r.ar, "1 more signatures with an i= given twice") ==
			NULL ||
		    strstr(r.ar, "header.i") != NULL)
			fail_msg("nine bad i=: %s", r.ar);
	}
	snprintf(msg, sizeof(msg),
	    "DKIM-Signature: v=1; a=rsa-sha256; d=example.org; s=rs; "
	    "t=1000; x=2000; h=from; bh=AAAA; b=AAAA\r\n%s",
	    crlf(plain_msg));
	run(v, "203.0.113.5", NULL, msg, 4096, &r);
	want_in("expired", r.ar, "header.a=rsa-sha256");
	if (strstr(r.ar, "rsa-sha1") != NULL)
		fail_msg("expired signature reported as rsa-sha1: %s", r.ar);
	snapshot_release(v);
}

/* A signed header name of any length stays whole in h= (RFC 6376 3.5:
 * FWS only around the colons; fuzz input dkim_canon-1). */
static void
test_long_header_name(void **state)
{
	static const char name[] = "X-Long-Header-Name-Long-Header-Name-Long-"
				   "Header-Name-Long-Header-Name-Long-Header-"
				   "Name-X";
	char ov_h[256], msg[1024], hv[2048];
	const char *ov[3], *p, *e;
	struct snapshot *s, *v = snap_ok(NULL, 0);
	struct result r, rv;
	size_t n = 0;

	(void)state;
	memcpy(ov, signing_ov("KeyTable", "SigningTable"), 2 * sizeof(char *));
	snprintf(
	    ov_h, sizeof(ov_h), "dkim_sign_headers=%s, From, Subject", name);
	ov[2] = ov_h;
	s = snap_ok(ov, 3);
	snprintf(msg, sizeof(msg),
	    "%s: long\nFrom: a@example.org\n"
	    "Subject: x\n\nbody\n",
	    name);
	run(s, "127.0.0.1", NULL, crlf(msg), 4096, &r);
	want_int("long name: signed", r.nsig_added, 2);
	/* every h= entry is a name without white space inside */
	for (p = r.signed_msg; (p = strstr(p, "h=")) != NULL; p++) {
		if (p > r.signed_msg && p[-1] != ' ' && p[-1] != '\t')
			continue;
		for (e = p + 2, n = 0; *e && *e != ';' && n + 1 < sizeof(hv);
		     e++)
			if (*e != '\r' && *e != '\n')
				hv[n++] = *e;
		hv[n] = '\0';
		if (strstr(hv, name) == NULL)
			fail_msg("h= without the whole long name: %s", hv);
	}
	run(v, "203.0.113.5", NULL, r.signed_msg, 4096, &rv);
	if (count(rv.ar, "dkim=pass") != 2)
		fail_msg("long name: %s", rv.ar);
	snapshot_release(s);
	snapshot_release(v);
}

/* The RFC 8463 A.3 example: an Ed25519 and an RSA signature. */
static void
test_rfc8463_example(void **state)
{
	char path[512], text[8192];
	const char *src = getenv("AUTHGATE_SRCDIR");
	struct snapshot *v = snap_ok(NULL, 0);
	struct result r;
	FILE *fp;
	size_t n;

	(void)state;
	snprintf(path, sizeof(path),
	    "%s/tests/data/dkim/vectors/rfc8463/"
	    "signed.msg",
	    src ? src : "..");
	fp = fopen(path, "rb");
	assert_non_null(fp);
	n = fread(text, 1, sizeof(text) - 1, fp);
	text[n] = '\0';
	fclose(fp);
	fakedns_add(fk, "brisbane._domainkey.football.example.com", TXT,
	    "v=DKIM1; k=ed25519; "
	    "p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo=",
	    60);
	fakedns_add(fk, "test._domainkey.football.example.com", TXT,
	    "v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoB"
	    "TzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W"
	    "91y3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9Pzox"
	    "ZyVYLzBfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB",
	    60);
	run(v, "203.0.113.5", NULL, crlf(text), 4096, &r);
	want_in("RFC 8463", r.ar,
	    "dkim=pass header.d=football.example.com "
	    "header.i=@football.example.com header.s=brisbane "
	    "header.a=ed25519-sha256 header.b=\"9/dsDChY\"");
	want_in("RFC 8463", r.ar, "header.s=test header.a=rsa-sha256");
	if (count(r.ar, "dkim=pass") != 2)
		fail_msg("RFC 8463: %s", r.ar);
	snapshot_release(v);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_table_errors),
	    cmocka_unit_test(test_signing_table_match),
	    cmocka_unit_test(test_who_is_signed),
	    cmocka_unit_test(test_sign_verify),
	    cmocka_unit_test(test_tampered),
	    cmocka_unit_test(test_key_records),
	    cmocka_unit_test(test_policies),
	    cmocka_unit_test(test_many_signatures),
	    cmocka_unit_test(test_odd_signatures),
	    cmocka_unit_test(test_long_header_name),
	    cmocka_unit_test(test_rfc8463_example),
	};

	cmocka_set_message_output(CM_OUTPUT_TAP);
	return cmocka_run_group_tests(tests, setup, teardown);
}
