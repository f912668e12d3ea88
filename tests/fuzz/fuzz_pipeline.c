/*
 * fuzz_pipeline.c - libFuzzer target: the message pipeline as the milter
 * drives it (msgctx.c, policy.c, ar.c and every check in the table).
 *
 * Three snapshots are built once, with config_load + snapshot_build(cfg,
 * NULL, NULL, err): NULL checks is the daemon's own table (checks.c), so
 * every check added to the project is fuzzed here without a change. No
 * real DNS is ever reached:
 *   A: no DNS answers: every query times out (dns_test_resolver answers
 *      AG_DNS_TIMEOUT at once, as a silent server would after
 *      dns_timeout, so no input waits); authserv_id = mx.authgate.test,
 *      small limits (max_headers = 10, header_size_limit = 1k) so the
 *      truncation paths are reachable;
 *   B: DNS as A; no authserv_id (the MTA's j macro, else the host name),
 *      defaults, on_dns_error = tempfail, internal_auth = no;
 *   C: DNS through libunbound to the unit tests' fake server
 *      (tests/unit/fakedns.c) on 127.0.0.1, serving the small zone below
 *      (SPF records with include, redirect, mx, a, ptr, exists, macros,
 *      exp, loops, void lookups, SERVFAIL, a query that times out; DKIM
 *      keys of tests/data/dkim, revoked and broken ones), so the checks
 *      get real answers for the domains, addresses and HELO names the
 *      input chooses; SPF verdicts reject/tempfail and a Received-SPF
 *      header are switched on.
 *
 * Input (tests/fuzz/gen_pipeline_seeds.py writes it from readable text):
 *   byte 0: bit 0 snapshot B, bit 3 snapshot C (else A); bit 1 message
 *           arenas fail; bit 2 connection arenas fail
 *   [bit 1: 2 bytes n: arena_test_fail_after(n % 512 + 1) for message
 *           arenas: each fails from its (n % 512 + 2)th allocation on]
 *   [bit 2: 2 bytes n: the same for connection arenas, n % 64 + 1]
 *   then operations, each an opcode byte (mod OP_COUNT) and its
 *   arguments; a string is a length byte (0xff: a 2-byte length follows)
 *   and that many bytes, cut at a NUL as the MTA's strings are.
 * Operations follow the milter callback order; one that libmilter would
 * never deliver in the current state is skipped (a header after eoh), and
 * one that needs a connection or a message gets one first (as an MTA
 * would have sent connect and MAIL FROM before).
 *
 * Asserts after every eom, beyond "no crash, no leak":
 *   - the action is one of enum ag_action; TEMPFAIL/REJECT carry a 4xx/5xx
 *     reply; a message with an internal error (m->errors) is never
 *     accepted (on_internal_error = tempfail in every snapshot);
 *   - DELETE edits come first; those of A-R headers with indexes strictly
 *     descending, >= 1 and at most the number of A-R headers received,
 *     the others only of the X-Authgate-* headers the rules write (each
 *     name's indexes descending, at most that name's count); every
 *     INSERT value has no
 *     CR, LF only as "\n\t" folds, and no other control byte;
 *   - ACCEPT/QUARANTINE: exactly one A-R header is inserted, it is ours
 *     (ar_is_ours), and every received A-R header whose authserv-id
 *     (ar_parse_servid) is ours is deleted - no other is;
 *   - the authserv-id used is the configured one, else the j macro given;
 *   - stored headers: at most max_headers, values at most
 *     header_size_limit, LF only in CRLF; over a limit sets its flag;
 *   - body_bytes is the sum of the chunks given.
 * In allocation-failure mode all of the above must still hold, which
 * means: an eom under allocation failure yields TEMPFAIL, or a complete
 * verdict with its edits - never a silent accept without our header or
 * with a forged one left in.
 */
#include <sys/socket.h>
#include <sys/un.h>
#include <netinet/in.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "ar.h"
#include "config.h"
#include "dns.h"
#include "msgctx.h"
#include "snapshot.h"
#include "fakedns.h"
#include "fuzz_common.h"

#define AG_FUZZ_MAX_AR 64 /* A-R headers remembered per message */

enum fuzz_op {
	OP_CONN,   /* new connection: j macro, daemon name */
	OP_CLIENT, /* client address: kind, address bytes, ip text, name */
	OP_HELO,   /* helo, tls version, cipher */
	OP_MSG,	   /* new message: queue id, auth user */
	OP_MAIL,   /* MAIL FROM */
	OP_RCPT,   /* RCPT TO */
	OP_HDR,	   /* header name, value */
	OP_ARHDR,  /* Authentication-Results header: name variant, value */
	OP_EOH,
	OP_BODY, /* body chunk (binary) */
	OP_EOM,
	OP_ABORT, /* msg_free without eom */
	OP_QID,	  /* queue id (macro i, sent again at rcpt/eoh/eom) */
	OP_COUNT,
};

enum fuzz_mstate {
	MS_NONE, /* no message */
	MS_NEW,	 /* msg_new, no MAIL FROM yet */
	MS_MAIL, /* MAIL FROM, RCPT TO */
	MS_HDR,	 /* headers */
	MS_BODY, /* after eoh */
};

struct fuzz_state {
	struct snapshot *snap;
	struct conn *c;
	struct msg *m;
	bool connected; /* conn_connected ran on c */
	char *j;	/* j macro given to c, if any */
	enum fuzz_mstate ms;
	struct arena *oracle; /* the harness's own memory, never failing */
	const char *ar_vals[AG_FUZZ_MAX_AR]; /* A-R values received */
	size_t nar;
	unsigned long long body;
	unsigned long fail_msg;	 /* message arenas: 0 never fail */
	unsigned long fail_conn; /* connection arenas: 0 never fail */
};

static struct snapshot *snap_a, *snap_b, *snap_c;
static const struct snapshot *snap_now; /* of the input being run */

/* The zone of snapshot C. TXT strings are split at '|'. */
static const struct {
	const char *name;
	int type;
	const char *data;
} fuzz_zone[] = {
    {"example.org", AG_DNS_T_TXT,
	"v=spf1 ip4:192.0.2.0/24 ip6:2001:db8::/32 include:_spf.example.net "
	"mx a:mail.example.org exists:%{i}.bl.example.org -all"},
    {"example.org", AG_DNS_T_MX, "10 mail.example.org"},
    {"example.org", AG_DNS_T_A, "192.0.2.80"},
    {"_spf.example.net", AG_DNS_T_TXT, "v=spf1 ip4:198.51.100.0/24 ?all"},
    {"mail.example.org", AG_DNS_T_A, "192.0.2.25"},
    {"mail.example.org", AG_DNS_T_AAAA, "2001:db8::25"},
    {"mail.example.org", AG_DNS_T_TXT, "v=spf1 a -all"},
    {"203.0.113.9.bl.example.org", AG_DNS_T_A, "127.0.0.2"},
    {"25.2.0.192.in-addr.arpa", AG_DNS_T_PTR, "mail.example.org"},
    {"9.113.0.203.in-addr.arpa", AG_DNS_T_PTR, "host.macro.example"},
    {"host.macro.example", AG_DNS_T_A, "203.0.113.9"},
    {"softfail.example", AG_DNS_T_TXT, "v=spf1 ~all"},
    {"neutral.example", AG_DNS_T_TXT, "v=spf1 ?all"},
    {"redirect.example", AG_DNS_T_TXT, "v=spf1 redirect=example.org"},
    {"exp.example", AG_DNS_T_TXT, "v=spf1 -all exp=explain.exp.example"},
    {"explain.exp.example", AG_DNS_T_TXT,
	"%{i} may not send for %{d}|: see http://%{d}/why?s=%{S}&h=%{h}"},
    {"badexp.example", AG_DNS_T_TXT, "v=spf1 -all exp=explain.badexp.example"},
    {"explain.badexp.example", AG_DNS_T_TXT,
	"line one\r\nX-Injected: yes\n\tfolded %{l}"},
    {"macro.example", AG_DNS_T_TXT,
	"v=spf1 exists:%{ir}.%{l1r+-}._spf.%{d} a:%{h}.hosts.%{o} "
	"ptr:%{d2} include:%{l}.users.%{d} ~all"},
    {"_spf.macro.example", AG_DNS_T_TXT, "v=spf1 ip4:203.0.113.0/24 -all"},
    {"zero.example", AG_DNS_T_TXT, "v=spf1 ip4:0.0.0.0/0 ip6:::/0 -all"},
    {"permerror.example", AG_DNS_T_TXT, "v=spf1 ip4:192.0.2.0/33 -all"},
    {"two.example", AG_DNS_T_TXT, "v=spf1 -all"},
    {"two.example", AG_DNS_T_TXT, "v=spf1 +all"},
    {"split.example", AG_DNS_T_TXT, "v=spf1 ip4:192.0.2.1|/32 -all"},
    {"loop.example", AG_DNS_T_TXT, "v=spf1 include:loop.example -all"},
    {"void.example", AG_DNS_T_TXT,
	"v=spf1 a:nx1.void.example a:nx2.void.example a:nx3.void.example "
	"-all"},
    {"lookups.example", AG_DNS_T_TXT,
	"v=spf1 a:a1.example a:a2.example a:a3.example a:a4.example "
	"a:a5.example a:a6.example a:a7.example a:a8.example a:a9.example "
	"a:a10.example a:a11.example -all"},
    {"mxlist.example", AG_DNS_T_TXT, "v=spf1 mx:example.org/24//64 -all"},
    {"servfail.example", AG_DNS_T_TXT, "v=spf1 include:sf.example -all"},
    {"dropped.example", AG_DNS_T_TXT, "v=spf1 include:drop.example -all"},
    {"notspf.example", AG_DNS_T_TXT, "v=spf10 -all"},
    {"helo.example", AG_DNS_T_TXT, "v=spf1 ip4:192.0.2.1 -all"},
    /* DKIM keys of tests/data/dkim (messages/with-*dkim-signature.eml,
     * vectors/rfc8463/signed.msg), and broken ones */
    {"list._domainkey.lists.example.org", AG_DNS_T_TXT,
	"v=DKIM1; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQoBTzWRi"
	"Gs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y3FutA"
	"CDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLzBfO2E"
	"eC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"},
    {"brisbane._domainkey.football.example.com", AG_DNS_T_TXT,
	"v=DKIM1; k=ed25519; p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
    {"test._domainkey.football.example.com", AG_DNS_T_TXT,
	"v=DKIM1; g=*; k=rsa; p=MIGfMA0GCSqGSIb3DQEBAQUAA4GNADCBiQKBgQDkHlOQo"
	"BTzWRiGs5V6NpP3idY6Wk08a5qhdR6wy5bdOKb2jLQiY/J16JYi0Qvx/byYzCNb3W91y"
	"3FutACDfzwQ/BC/e/8uBsCR+yz1Lxj+PL6lHvqMKrM3rG4hstT5QjvHO9PzoxZyVYLz"
	"BfO2EeC3Ip3G+2kryOTIKT+l/K4w3QIDAQAB"},
    {"revoked._domainkey.example.org", AG_DNS_T_TXT, "v=DKIM1; p="},
    {"bad._domainkey.example.org", AG_DNS_T_TXT,
	"v=DKIM1; k=rsa; h=md5; p=!!not-base64!!"},
    {"split._domainkey.example.org", AG_DNS_T_TXT,
	"v=DKIM1; k=ed25519; |p=11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="},
};

/* fuzz_fakedns - start the server of snapshot C; its port */
static int
fuzz_fakedns(void)
{
	struct fakedns *f = fakedns_start();
	size_t i;

	for (i = 0; i < sizeof(fuzz_zone) / sizeof(fuzz_zone[0]); i++)
		fakedns_add(f, fuzz_zone[i].name, fuzz_zone[i].type,
		    fuzz_zone[i].data, 300);
	fakedns_behave(f, "sf.example", 2, 0, false); /* SERVFAIL */
	return fakedns_port(f); /* runs until the process exits */
}

/*
 * fuzz_dns - dns.c's test hook: snapshot C's queries go to the fake
 * server, except drop.example, which times out; A's and B's all time
 * out. A timeout is answered at once: waiting for dns_timeout (100 ms at
 * least) made most inputs wait, and fuzzing ran at a few hundred inputs
 * a second.
 */
static int
fuzz_dns(const char *name, int rrtype, struct ub_result **res)
{
	(void)rrtype;
	(void)res;
	if (snap_now == snap_c && str_casecmp(name, "drop.example") != 0 &&
	    str_casecmp(name, "drop.example.") != 0)
		return AG_DNS_TEST_PASS;
	return AG_DNS_TEST_TIMEOUT;
}

/* fuzz_snapshot - config from overrides, then the daemon's own table */
static struct snapshot *
fuzz_snapshot(const char *const *ov, size_t n)
{
	struct buf err = BUF_INIT;
	struct config *cfg = config_load("/dev/null", ov, n, &err);
	struct snapshot *s;

	if (cfg == NULL) {
		fprintf(stderr, "fuzz_pipeline: config: %s", err.data);
		abort();
	}
	if ((s = snapshot_build(cfg, NULL, NULL, &err)) == NULL) {
		fprintf(stderr, "fuzz_pipeline: snapshot: %s", err.data);
		abort();
	}
	buf_release(&err);
	return s;
}

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *const a[] = {
	    "authserv_id = mx.authgate.test",
	    "dns_servers = 127.0.0.1@9",
	    "dns_timeout = 100ms",
	    "internal_hosts = 127.0.0.0/8, ::1, 10.0.0.0/8, 2001:db8:1::/48",
	    "max_headers = 10",
	    "header_size_limit = 1k",
	};
	static const char *const b[] = {
	    "dns_servers = 127.0.0.1@9",
	    "dns_timeout = 100ms",
	    "on_dns_error = tempfail",
	    "internal_auth = no",
	};
	char dns[64];
	const char *const c[] = {
	    "authserv_id = mx.authgate.test",
	    dns,
	    "dns_timeout = 100ms",
	    "internal_hosts = 10.0.0.0/8",
	    "spf_received_header = yes",
	    "spf_check_internal = yes",
	    "spf_fail_action = reject",
	    "spf_softfail_action = tempfail",
	    "spf_permerror_action = reject",
	    "on_dns_error = tempfail",
	};

	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	dns_test_resolver(fuzz_dns);
	snap_a = fuzz_snapshot(a, sizeof(a) / sizeof(a[0]));
	snap_b = fuzz_snapshot(b, sizeof(b) / sizeof(b[0]));
	snprintf(
	    dns, sizeof(dns), "dns_servers = 127.0.0.1@%d", fuzz_fakedns());
	snap_c = fuzz_snapshot(c, sizeof(c) / sizeof(c[0]));
	return 0;
}

/* st_end_msg - abort the message in progress */
static void
st_end_msg(struct fuzz_state *st)
{
	if (st->m != NULL)
		msg_free(st->m);
	st->m = NULL;
	st->ms = MS_NONE;
	st->nar = 0;
	st->body = 0;
}

/* st_new_conn - what mlfi_connect does first: drop the old connection */
static void
st_new_conn(struct fuzz_state *st)
{
	st_end_msg(st);
	conn_free(st->c);
	free(st->j);
	st->j = NULL;
	st->connected = false;
	/* The failure hook is read when an arena is made. */
	arena_test_fail_after(st->fail_conn);
	st->c = conn_new(st->snap);
	arena_test_fail_after(st->fail_msg);
}

/* st_need_msg - a message in a state that takes op; false: skip op */
static bool
st_need_msg(struct fuzz_state *st, enum fuzz_mstate want)
{
	if (st->c == NULL)
		st_new_conn(st);
	if (st->c == NULL)
		return false; /* out of memory at connect: nothing to feed */
	if (st->ms == MS_NONE) {
		st->nar = 0;
		st->body = 0;
		if ((st->m = msg_new(st->c)) == NULL)
			return false;
		st->ms = MS_NEW;
	}
	if (st->ms == MS_NEW && want > MS_NEW) {
		msg_mail(st->m, "<>");
		st->ms = MS_MAIL;
	}
	return st->ms <= want;
}

/* is_printable - printable US-ASCII (space included) */
static bool
is_printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || (unsigned char)*s >= 0x7f)
			return false;
	return true;
}

/* check_value - an inserted header value: folds only, no controls */
static void
check_value(const char *v)
{
	size_t len = strlen(v), i;

	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)v[i];

		if (c == '\n') {
			FUZZ_CHECK(v[i + 1] == '\t',
			    "LF not followed by TAB at %zu: '%s'", i,
			    fuzz_escape(v, len));
			continue;
		}
		FUZZ_CHECK(c == '\t' || (c >= 0x20 && c < 0x7f),
		    "byte 0x%02x at %zu of an inserted value: '%s'", c, i,
		    fuzz_escape(v, len));
	}
}

/* check_verdict - the invariants of one eom (see the top comment) */

/* count_headers - stored headers of that name */
static size_t
count_headers(const struct msg *m, const char *name)
{
	const struct hdr *h;
	size_t n = 0;

	for (h = m->hdrs; h != NULL; h = h->next)
		n += str_casecmp(h->name, name) == 0;
	return n;
}

static void
check_verdict(struct fuzz_state *st)
{
	const struct msg *m = st->m;
	const struct verdict *v = &m->verdict;
	const struct hdr_edit *e;
	const char *servid = msg_authserv_id(m);
	bool deleted[AG_FUZZ_MAX_AR + 1];
	int last = -1;
	size_t nar_insert = 0, ndelete = 0, i;
	bool inserts_begun = false;

	FUZZ_CHECK(v->action >= AG_ACT_ACCEPT && v->action <= AG_ACT_DISCARD,
	    "action %d is not an enum ag_action", (int)v->action);
	if (v->action == AG_ACT_TEMPFAIL || v->action == AG_ACT_REJECT) {
		char want = v->action == AG_ACT_TEMPFAIL ? '4' : '5';

		FUZZ_CHECK(v->rcode && v->xcode && v->text &&
			v->rcode[0] == want && v->xcode[0] == want,
		    "%s without a %cxx reply", config_action_name(v->action),
		    want);
	}
	/* on_internal_error is tempfail in every snapshot here */
	if (m->errors & AG_ERR_INTERNAL)
		FUZZ_CHECK(
		    v->action == AG_ACT_TEMPFAIL || v->action == AG_ACT_REJECT,
		    "internal error (errors 0x%x) but action %s", m->errors,
		    config_action_name(v->action));
	/* the MTA's j macro is the authserv-id, or, if the connection lost
	 * it (out of memory), the message is tempfailed */
	if (st->j != NULL && *st->j != '\0' && m->cfg->authserv_id[0] == '\0')
		FUZZ_CHECK(
		    strcmp(servid, st->j) == 0 || v->action == AG_ACT_TEMPFAIL,
		    "authserv-id '%s', but the MTA's j macro was '%s'",
		    fuzz_escape(servid, strlen(servid)), st->j);
	if (m->cfg->authserv_id[0] != '\0')
		FUZZ_CHECK(strcmp(servid, m->cfg->authserv_id) == 0,
		    "authserv-id '%s', configured '%s'", servid,
		    m->cfg->authserv_id);

	memset(deleted, 0, sizeof(deleted));
	for (e = v->edits; e != NULL; e = e->next) {
		FUZZ_CHECK(e->name != NULL && e->name[0] != '\0',
		    "edit without a header name");
		if (e->op == AG_EDIT_DELETE) {
			FUZZ_CHECK(!inserts_begun, "DELETE after an INSERT");
			FUZZ_CHECK(e->index >= 1, "DELETE index %d", e->index);
			if (str_casecmp(e->name, "Authentication-Results") !=
			    0) {
				FUZZ_CHECK(
				    str_ncaseeq(e->name, "X-Authgate-", 11),
				    "DELETE of '%s'", e->name);
				FUZZ_CHECK((size_t)e->index <=
					count_headers(m, e->name),
				    "DELETE #%d of %s", e->index, e->name);
				continue;
			}
			FUZZ_CHECK(last == -1 || e->index < last,
			    "DELETE indexes not strictly descending: %d then "
			    "%d",
			    last, e->index);
			FUZZ_CHECK((size_t)e->index <= m->nar_seen,
			    "DELETE #%d of %zu A-R headers received", e->index,
			    m->nar_seen);
			if ((size_t)e->index <= AG_FUZZ_MAX_AR)
				deleted[e->index] = true;
			last = e->index;
			ndelete++;
			continue;
		}
		FUZZ_CHECK(e->op == AG_EDIT_INSERT, "edit op %d", (int)e->op);
		inserts_begun = true;
		FUZZ_CHECK(
		    e->value != NULL, "INSERT of %s without a value", e->name);
		check_value(e->value);
		if (str_casecmp(e->name, "Authentication-Results") == 0)
			nar_insert++;
		FUZZ_CHECK(
		    str_casecmp(e->name, "Authentication-Results") != 0 ||
			!is_printable(servid) ||
			ar_is_ours(
			    st->oracle, e->value, strlen(e->value), servid),
		    "our A-R header is not ours for '%s': '%s'",
		    fuzz_escape(servid, strlen(servid)),
		    fuzz_escape(e->value, strlen(e->value)));
	}
	if (v->action != AG_ACT_ACCEPT && v->action != AG_ACT_QUARANTINE)
		return;

	/* An accepted message: our header in, every forged one out. */
	FUZZ_CHECK(nar_insert == 1, "%s with %zu A-R headers inserted",
	    config_action_name(v->action), nar_insert);
	FUZZ_CHECK(ndelete == m->nar_remove, "%zu DELETEs for %zu forged",
	    ndelete, m->nar_remove);
	FUZZ_CHECK(m->nar_seen == st->nar, "%zu A-R headers seen, %zu given",
	    m->nar_seen, st->nar);
	for (i = 0; i < st->nar && i < AG_FUZZ_MAX_AR; i++) {
		const char *val = st->ar_vals[i];
		char *id = ar_parse_servid(st->oracle, val, strlen(val));
		bool ours = id != NULL && str_casecmp(id, servid) == 0;

		if (ours)
			FUZZ_CHECK(deleted[i + 1],
			    "forged A-R #%zu '%s' (id '%s') left in", i + 1,
			    fuzz_escape(val, strlen(val)), id);
		if (id != NULL && !ours)
			FUZZ_CHECK(!deleted[i + 1],
			    "A-R #%zu of '%s' deleted, ours is '%s'", i + 1,
			    fuzz_escape(id, strlen(id)), servid);
	}
}

/* check_stored - the header msg_header kept (if it kept one) */
static void
check_stored(const struct msg *m, const char *value, size_t before)
{
	const struct hdr *h = m->hdr_tail;
	size_t cap = (size_t)m->cfg->header_size_limit, want = 0, i;
	size_t len = strlen(value);

	FUZZ_CHECK(m->nhdrs <= (size_t)m->cfg->max_headers,
	    "%zu headers kept, max_headers %lld", m->nhdrs,
	    m->cfg->max_headers);
	if (before >= (size_t)m->cfg->max_headers)
		FUZZ_CHECK(m->flags & AG_MSG_TRUNC_HEADERS,
		    "header %zu over max_headers without the flag", before + 1);
	if (m->nhdrs == before)
		return; /* not kept: over the cap, or out of memory */
	FUZZ_CHECK(
	    h != NULL && h->valuelen <= cap && strlen(h->value) == h->valuelen,
	    "stored value of %zu bytes, cap %zu", h ? h->valuelen : 0, cap);
	for (i = 0; i < h->valuelen; i++)
		if (h->value[i] == '\n')
			FUZZ_CHECK(i > 0 && h->value[i - 1] == '\r',
			    "stored value has a bare LF at %zu", i);
	for (i = 0; i < len; i++)
		want += (value[i] == '\n' && (i == 0 || value[i - 1] != '\r'))
		    ? 2
		    : 1;
	if (want <= cap)
		FUZZ_CHECK(h->valuelen == want,
		    "value of %zu bytes (CRLF) stored as %zu", want,
		    h->valuelen);
	else
		FUZZ_CHECK(m->flags & AG_MSG_TRUNC_HEADER,
		    "value of %zu bytes over %zu without the flag", want, cap);
}

/* op_client - conn_set_client as mlfi_connect calls it */
static void
op_client(struct fuzz_state *st, struct fuzz_reader *r)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	uint8_t kind = fr_byte(r);
	size_t alen;
	const uint8_t *addr = fr_bytes(r, &alen);
	char *ip = fr_str(r), *name = fr_str(r);
	const struct sockaddr *sa = NULL;

	/* Postfix repeats connect after XCLIENT: a new connection. */
	if (st->c == NULL || st->connected)
		st_new_conn(st);
	memset(&ss, 0, sizeof(ss));
	if (kind & 1) {
		if (alen == 4) {
			s4->sin_family = AF_INET;
			memcpy(&s4->sin_addr, addr, 4);
		} else if (alen == 16) {
			s6->sin6_family = AF_INET6;
			memcpy(&s6->sin6_addr, addr, 16);
		} else
			ss.ss_family = AF_UNIX;
		sa = (const struct sockaddr *)&ss;
	}
	if (st->c != NULL) {
		conn_set_client(st->c, sa, (kind & 2) ? NULL : ip,
		    (kind & 4) ? NULL : name);
		conn_connected(st->c);
		st->connected = true;
	}
	free(ip);
	free(name);
}

/* op_eom - mlfi_eom: the verdict, checked, then the message freed */
static void
op_eom(struct fuzz_state *st)
{
	if (st->m == NULL)
		return; /* mlfi_eom tempfails without a message */
	if (st->ms == MS_NEW) {
		msg_mail(st->m, "<>");
		st->ms = MS_MAIL;
	}
	msg_eom(st->m);
	FUZZ_CHECK(st->m->body_bytes == st->body,
	    "body_bytes %llu, chunks gave %llu", st->m->body_bytes, st->body);
	check_verdict(st);
	st_end_msg(st);
}

/* op_header - one header, as mlfi_header passes it */
static void
op_header(struct fuzz_state *st, const char *name, char *value)
{
	size_t before;

	if (!st_need_msg(st, MS_HDR)) {
		free(value);
		return;
	}
	st->ms = MS_HDR;
	if (str_casecmp(name, "Authentication-Results") == 0) {
		if (st->nar < AG_FUZZ_MAX_AR) {
			st->ar_vals[st->nar] = arena_strdup(st->oracle, value);
			if (st->ar_vals[st->nar] == NULL)
				abort();
		}
		st->nar++;
	}
	before = st->m->nhdrs;
	msg_header(st->m, name, value);
	check_stored(st->m, value, before);
	free(value);
}

/* run_op - one operation */
static void
run_op(struct fuzz_state *st, struct fuzz_reader *r)
{
	static const char *const ar_names[] = {"Authentication-Results",
	    "authentication-results", "AUTHENTICATION-RESULTS"};
	enum fuzz_op op = (enum fuzz_op)(fr_byte(r) % OP_COUNT);
	char *s1, *s2, *s3;
	const uint8_t *p;
	size_t len;

	switch (op) {
	case OP_CONN:
		s1 = fr_str(r);
		s2 = fr_str(r);
		st_new_conn(st);
		if (st->c != NULL) {
			conn_set_authserv_id(st->c, s1);
			conn_set_daemon_name(st->c, *s2 ? s2 : NULL);
			st->j = s1;
			s1 = NULL;
		}
		free(s1);
		free(s2);
		break;
	case OP_CLIENT:
		op_client(st, r);
		break;
	case OP_HELO:
		s1 = fr_str(r);
		s2 = fr_str(r);
		s3 = fr_str(r);
		if (st->c == NULL)
			st_new_conn(st);
		if (st->c != NULL) {
			conn_set_helo(st->c, s1);
			conn_set_tls(st->c, *s2 ? s2 : NULL, *s3 ? s3 : NULL);
		}
		free(s1);
		free(s2);
		free(s3);
		break;
	case OP_MSG:
		s1 = fr_str(r);
		s2 = fr_str(r);
		st_end_msg(st);
		if (st_need_msg(st, MS_NEW)) {
			msg_set_qid(st->m, s1);
			msg_set_auth(st->m, s2);
		}
		free(s1);
		free(s2);
		break;
	case OP_MAIL:
		s1 = fr_str(r);
		if (st->ms != MS_NEW)
			st_end_msg(st);
		if (st_need_msg(st, MS_NEW)) {
			msg_mail(st->m, s1);
			st->ms = MS_MAIL;
		}
		free(s1);
		break;
	case OP_RCPT:
		s1 = fr_str(r);
		if (st_need_msg(st, MS_MAIL))
			msg_rcpt(st->m, s1);
		free(s1);
		break;
	case OP_HDR:
		s1 = fr_str(r);
		op_header(st, s1, fr_str(r));
		free(s1);
		break;
	case OP_ARHDR:
		len = fr_byte(r) % 3;
		op_header(st, ar_names[len], fr_str(r));
		break;
	case OP_EOH:
		if (st_need_msg(st, MS_HDR)) {
			msg_eoh(st->m);
			st->ms = MS_BODY;
		}
		break;
	case OP_BODY:
		p = fr_bytes(r, &len);
		if (st_need_msg(st, MS_BODY)) {
			msg_body(st->m, p, len);
			st->body += len;
			st->ms = MS_BODY;
		}
		break;
	case OP_EOM:
		op_eom(st);
		break;
	case OP_ABORT:
		st_end_msg(st);
		break;
	case OP_QID:
		s1 = fr_str(r);
		if (st->m != NULL)
			msg_set_qid(st->m, s1);
		free(s1);
		break;
	case OP_COUNT:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_reader r = {data, size};
	struct fuzz_state st;
	uint8_t flags = fr_byte(&r);

	memset(&st, 0, sizeof(st));
	st.snap = (flags & 8) ? snap_c : (flags & 1) ? snap_b : snap_a;
	snap_now = st.snap;
	if ((st.oracle = arena_new(8192)) == NULL)
		abort();
	if (flags & 2)
		st.fail_msg = fr_u16(&r) % 512 + 1;
	if (flags & 4)
		st.fail_conn = fr_u16(&r) % 64 + 1;
	arena_test_fail_after(st.fail_msg);
	while (r.n > 0)
		run_op(&st, &r);
	st_end_msg(&st);
	conn_free(st.c);
	arena_test_fail_after(0);
	free(st.j);
	arena_free(st.oracle);
	return 0;
}
