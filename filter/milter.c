/*
 * milter.c - libmilter callbacks only (see milter.h).
 */
#include <sys/types.h>
#include <sys/socket.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <libmilter/mfapi.h>

#include "util/arena.h"
#include "util/xalloc.h"
#include "msgctx.h"
#include "milter.h"

/* What we ask the MTA for (it grants the intersection with its offer). */
#define AG_ACTIONS \
	(SMFIF_ADDHDRS | SMFIF_CHGHDRS | SMFIF_QUARANTINE | SMFIF_SETSYMLIST)
#define AG_PROTO                                                           \
	(SMFIP_NR_CONN | SMFIP_NR_HELO | SMFIP_NR_MAIL | SMFIP_NR_RCPT |   \
	    SMFIP_NR_DATA | SMFIP_NR_UNKN | SMFIP_NR_EOH | SMFIP_NR_BODY | \
	    SMFIP_NR_HDR | SMFIP_HDR_LEADSPC | SMFIP_NODATA | SMFIP_NOUNKNOWN)

/* Per-connection adapter state (libmilter's private pointer). */
struct mlfi {
	struct conn *c;
	unsigned long proto; /* protocol flags granted */
	bool failed;	     /* could not set up: tempfail at eom */
};

static atomic_int mlfi_nactive;

/* milter_active - open connections */
int
milter_active(void)
{
	return atomic_load(&mlfi_nactive);
}

/* mlfi_state - the connection's state, created on first use */
static struct mlfi *
mlfi_state(SMFICTX *ctx)
{
	struct mlfi *st = smfi_getpriv(ctx);

	if (st == NULL) {
		st = xcalloc(1, sizeof(*st));
		smfi_setpriv(ctx, st);
		atomic_fetch_add(&mlfi_nactive, 1);
	}
	return st;
}

/* mlfi_go - "carry on": no reply at all where the MTA agreed to that */
static sfsistat
mlfi_go(const struct mlfi *st, unsigned long nrflag)
{
	return (st->proto & nrflag) ? SMFIS_NOREPLY : SMFIS_CONTINUE;
}

/* mlfi_msg - the message in progress, or NULL */
static struct msg *
mlfi_msg(const struct mlfi *st)
{
	return st->c ? st->c->msg : NULL;
}

/* mlfi_negotiate - pick actions, protocol flags and macros */
static sfsistat
mlfi_negotiate(SMFICTX *ctx, unsigned long f0, unsigned long f1,
    unsigned long f2, unsigned long f3, unsigned long *pf0, unsigned long *pf1,
    unsigned long *pf2, unsigned long *pf3)
{
	struct mlfi *st = mlfi_state(ctx);

	(void)f2;
	(void)f3;
	if ((f0 & (SMFIF_ADDHDRS | SMFIF_CHGHDRS)) !=
	    (SMFIF_ADDHDRS | SMFIF_CHGHDRS)) {
		log_err("milter: MTA does not allow adding and changing "
			"headers (actions 0x%lx): not filtering",
		    f0);
		return SMFIS_REJECT;
	}
	*pf0 = f0 & AG_ACTIONS;
	*pf1 = f1 & AG_PROTO;
	*pf2 = *pf3 = 0;
	st->proto = *pf1;
	if (f0 & SMFIF_SETSYMLIST) {
		smfi_setsymlist(ctx, SMFIM_CONNECT,
		    "j {daemon_name} {client_addr} {client_name}");
		smfi_setsymlist(ctx, SMFIM_HELO, "{tls_version} {cipher}");
		smfi_setsymlist(
		    ctx, SMFIM_ENVFROM, "i {auth_authen} {auth_type}");
		smfi_setsymlist(ctx, SMFIM_ENVRCPT, "i");
		smfi_setsymlist(ctx, SMFIM_EOH, "i");
		smfi_setsymlist(ctx, SMFIM_EOM, "i");
	}
	return SMFIS_CONTINUE;
}

/* mlfi_connect - a client connected to the MTA */
static sfsistat
mlfi_connect(SMFICTX *ctx, char *hostname, _SOCK_ADDR *sa)
{
	struct mlfi *st = mlfi_state(ctx);
	struct snapshot *snap;

	conn_free(st->c); /* Postfix repeats connect after XCLIENT */
	st->c = NULL;
	if ((snap = snapshot_acquire()) != NULL) {
		st->c = conn_new(snap);
		snapshot_release(snap);
	}
	if ((st->failed = (st->c == NULL))) {
		log_err("milter: out of memory at connect");
		return mlfi_go(st, SMFIP_NR_CONN);
	}
	conn_set_client(
	    st->c, sa, smfi_getsymval(ctx, "{client_addr}"), hostname);
	conn_set_authserv_id(st->c, smfi_getsymval(ctx, "j"));
	conn_set_daemon_name(st->c, smfi_getsymval(ctx, "{daemon_name}"));
	conn_connected(st->c);
	return mlfi_go(st, SMFIP_NR_CONN);
}

/* mlfi_helo - HELO/EHLO (again after STARTTLS, with the TLS macros) */
static sfsistat
mlfi_helo(SMFICTX *ctx, char *helo)
{
	struct mlfi *st = mlfi_state(ctx);

	if (st->c != NULL) {
		conn_set_helo(st->c, helo);
		conn_set_tls(st->c, smfi_getsymval(ctx, "{tls_version}"),
		    smfi_getsymval(ctx, "{cipher}"));
	}
	return mlfi_go(st, SMFIP_NR_HELO);
}

/* mlfi_envfrom - MAIL FROM: a new message */
static sfsistat
mlfi_envfrom(SMFICTX *ctx, char **argv)
{
	struct mlfi *st = mlfi_state(ctx);
	struct msg *m;

	if (st->c == NULL)
		return mlfi_go(st, SMFIP_NR_MAIL);
	if ((m = msg_new(st->c)) == NULL) {
		log_err("milter: out of memory at MAIL FROM");
		st->failed = true;
		return mlfi_go(st, SMFIP_NR_MAIL);
	}
	msg_set_qid(m, smfi_getsymval(ctx, "i"));
	msg_set_auth(m, smfi_getsymval(ctx, "{auth_authen}"));
	msg_mail(m, argv[0] ? argv[0] : "<>");
	return mlfi_go(st, SMFIP_NR_MAIL);
}

/* mlfi_envrcpt - RCPT TO */
static sfsistat
mlfi_envrcpt(SMFICTX *ctx, char **argv)
{
	struct mlfi *st = mlfi_state(ctx);
	struct msg *m = mlfi_msg(st);

	if (m != NULL && argv[0] != NULL) {
		msg_set_qid(m, smfi_getsymval(ctx, "i"));
		msg_rcpt(m, argv[0]);
	}
	return mlfi_go(st, SMFIP_NR_RCPT);
}

/* mlfi_header - one header, bytes as sent */
static sfsistat
mlfi_header(SMFICTX *ctx, char *name, char *value)
{
	struct mlfi *st = mlfi_state(ctx);
	struct msg *m = mlfi_msg(st);

	if (m != NULL)
		msg_header(m, name, value);
	return mlfi_go(st, SMFIP_NR_HDR);
}

/* mlfi_eoh - end of headers */
static sfsistat
mlfi_eoh(SMFICTX *ctx)
{
	struct mlfi *st = mlfi_state(ctx);
	struct msg *m = mlfi_msg(st);

	if (m != NULL) {
		msg_set_qid(m, smfi_getsymval(ctx, "i"));
		msg_eoh(m);
	}
	return mlfi_go(st, SMFIP_NR_EOH);
}

/* mlfi_body - a body chunk, streamed */
static sfsistat
mlfi_body(SMFICTX *ctx, unsigned char *p, size_t len)
{
	struct mlfi *st = mlfi_state(ctx);
	struct msg *m = mlfi_msg(st);

	if (m != NULL)
		msg_body(m, p, len);
	return mlfi_go(st, SMFIP_NR_BODY);
}

/* mlfi_text - reply text safe for smfi_setreply: no CR/LF, '%' doubled */
static char *
mlfi_text(struct msg *m, const char *t)
{
	size_t len = strlen(t), i, n = 0;
	char *out;

	for (i = 0; i < len; i++)
		if (t[i] == '%' || (unsigned char)t[i] < 0x20 ||
		    (unsigned char)t[i] >= 0x7f)
			break;
	if (i == len)
		return (char *)t; /* already safe: no copy needed */
	if ((out = arena_alloc(m->arena, 2 * len + 1)) == NULL)
		return (char *)"local problem";
	for (i = 0; i < len; i++) {
		char c = t[i];

		if ((unsigned char)c < 0x20 || (unsigned char)c >= 0x7f)
			c = ' ';
		out[n++] = c;
		if (c == '%')
			out[n++] = '%';
	}
	out[n] = '\0';
	return out;
}

/* mlfi_edits - carry out the header edits; -1 if the MTA refused one */
static int
mlfi_edits(SMFICTX *ctx, const struct mlfi *st, struct msg *m)
{
	const struct hdr_edit *e;
	int rc = 0;
	char *v;

	for (e = m->verdict.edits; e != NULL; e = e->next) {
		if (e->op == AG_EDIT_DELETE &&
		    smfi_chgheader(ctx, (char *)e->name, e->index, NULL) !=
			MI_SUCCESS) {
			log_msg(m, LOG_ERR,
			    "milter: MTA refused to delete %s "
			    "#%d",
			    e->name, e->index);
			rc = -1;
		}
		if (e->op != AG_EDIT_INSERT)
			continue;
		/* With HDR_LEADSPC the MTA writes "Name:value": the space
		 * after the colon is ours to give. */
		v = (char *)e->value;
		if ((st->proto & SMFIP_HDR_LEADSPC) &&
		    (v = arena_printf(m->arena, " %s", e->value)) == NULL) {
			rc = -1;
			continue;
		}
		if (smfi_insheader(ctx, 0, (char *)e->name, v) != MI_SUCCESS) {
			log_msg(m, LOG_ERR, "milter: MTA refused to add %s",
			    e->name);
			rc = -1;
		}
	}
	return rc;
}

/* mlfi_reply - the final answer for a message */
static sfsistat
mlfi_reply(SMFICTX *ctx, const struct mlfi *st, struct msg *m)
{
	const struct verdict *v = &m->verdict;

	switch (v->action) {
	case AG_ACT_REJECT:
	case AG_ACT_TEMPFAIL:
		smfi_setreply(ctx, (char *)v->rcode, (char *)v->xcode,
		    mlfi_text(m, v->text));
		return v->action == AG_ACT_REJECT ? SMFIS_REJECT
						  : SMFIS_TEMPFAIL;
	case AG_ACT_DISCARD:
		return SMFIS_DISCARD;
	case AG_ACT_QUARANTINE:
		if (mlfi_edits(ctx, st, m) == -1)
			goto tempfail;
		if (smfi_quarantine(ctx,
			mlfi_text(
			    m, v->quarantine ? v->quarantine : "authgate")) !=
		    MI_SUCCESS)
			log_msg(m, LOG_ERR, "milter: MTA refused quarantine");
		return SMFIS_CONTINUE;
	default:
		if (mlfi_edits(ctx, st, m) == -1)
			goto tempfail;
		return SMFIS_CONTINUE;
	}
tempfail:
	/* A forged A-R we could not remove must not reach the mailbox. */
	smfi_setreply(ctx, "451", "4.7.1",
	    (char *)"temporary local problem, try again later");
	return SMFIS_TEMPFAIL;
}

/* mlfi_eom - end of message: decide and answer */
static sfsistat
mlfi_eom(SMFICTX *ctx)
{
	struct mlfi *st = mlfi_state(ctx);
	struct msg *m = mlfi_msg(st);
	sfsistat rc;

	if (m == NULL) {
		/* Setup failed earlier (out of memory): let the client retry */
		smfi_setreply(ctx, "451", "4.7.1",
		    (char *)"temporary local problem, try again later");
		return SMFIS_TEMPFAIL;
	}
	msg_set_qid(m, smfi_getsymval(ctx, "i"));
	msg_eom(m);
	rc = mlfi_reply(ctx, st, m);
	msg_free(m);
	return rc;
}

/* mlfi_abort - the MTA gave up on the message */
static sfsistat
mlfi_abort(SMFICTX *ctx)
{
	struct mlfi *st = smfi_getpriv(ctx);

	if (st != NULL && st->c != NULL && st->c->msg != NULL)
		msg_free(st->c->msg);
	return SMFIS_CONTINUE;
}

/* mlfi_close - connection over (also when the MTA vanished) */
static sfsistat
mlfi_close(SMFICTX *ctx)
{
	struct mlfi *st = smfi_getpriv(ctx);

	if (st == NULL)
		return SMFIS_CONTINUE;
	conn_free(st->c);
	free(st);
	smfi_setpriv(ctx, NULL);
	atomic_fetch_sub(&mlfi_nactive, 1);
	return SMFIS_CONTINUE;
}

/* milter_register - hand our callbacks to libmilter */
int
milter_register(void)
{
	struct smfiDesc desc;

	memset(&desc, 0, sizeof(desc));
	desc.xxfi_name = (char *)"authgate";
	desc.xxfi_version = SMFI_VERSION;
	desc.xxfi_flags = AG_ACTIONS;
	desc.xxfi_connect = mlfi_connect;
	desc.xxfi_helo = mlfi_helo;
	desc.xxfi_envfrom = mlfi_envfrom;
	desc.xxfi_envrcpt = mlfi_envrcpt;
	desc.xxfi_header = mlfi_header;
	desc.xxfi_eoh = mlfi_eoh;
	desc.xxfi_body = mlfi_body;
	desc.xxfi_eom = mlfi_eom;
	desc.xxfi_abort = mlfi_abort;
	desc.xxfi_close = mlfi_close;
	desc.xxfi_negotiate = mlfi_negotiate;
	return smfi_register(desc) == MI_SUCCESS ? 0 : -1;
}
