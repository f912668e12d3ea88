/*
 * policy.c - the verdict (see policy.h).
 */
#include <stdbool.h>
#include <string.h>

#include "util/arena.h"
#include "msgctx.h"
#include "policy.h"

/* policy_reply - set action and SMTP reply for a failure class */
static void
policy_reply(struct verdict *v, int action, unsigned cls)
{
	bool dns = (cls == AG_ERR_DNS);

	v->action = action;
	switch (action) {
	case AG_ACT_TEMPFAIL:
		v->rcode = "451";
		v->xcode = "4.7.1";
		v->text = dns ? "temporary DNS failure, try again later"
		    : cls == AG_ERR_KEY
		    ? "cannot sign the message now, try again later"
		    : "temporary local problem, try again later";
		break;
	case AG_ACT_REJECT:
		v->rcode = "550";
		v->xcode = "5.7.1";
		v->text = dns		? "DNS failure, message refused"
		    : cls == AG_ERR_KEY ? "cannot sign the message, refused"
					: "local problem, message refused";
		break;
	default:
		break;
	}
}

/* policy_edit - prepend an edit (so the list ends up in push order) */
static struct hdr_edit *
policy_edit(struct msg *m, struct hdr_edit ***tailp, enum ag_edit op,
    const char *name, const char *value, int index)
{
	struct hdr_edit *e = arena_zalloc(m->arena, sizeof(*e));

	if (e == NULL)
		return NULL;
	e->op = op;
	e->name = name;
	e->value = value;
	e->index = index;
	**tailp = e;
	*tailp = &e->next;
	return e;
}

/* policy_headers - remove forged A-R headers, add ours and the checks' */
static int
policy_headers(struct msg *m)
{
	struct hdr_edit **tail = &m->verdict.edits;
	const struct add_hdr *h, *stack[16];
	const char *ar;
	size_t i, n = 0;

	/* Highest index first: no deletion renumbers one still to come. */
	for (i = m->nar_remove; i-- > 0;)
		if (policy_edit(m, &tail, AG_EDIT_DELETE,
			"Authentication-Results", NULL,
			m->ar_remove[i]) == NULL)
			return -1;
	/*
	 * Each insert goes to the top, so the last one inserted ends up
	 * first: the checks' headers bottom-up, then our A-R on top of all.
	 */
	for (h = m->add_hdrs; h != NULL && n < 16; h = h->next)
		stack[n++] = h;
	while (n-- > 0)
		if (policy_edit(m, &tail, AG_EDIT_INSERT, stack[n]->name,
			stack[n]->value, 0) == NULL)
			return -1;
	if ((ar = ar_build(m->arena, msg_authserv_id(m), m->ar, "\n")) == NULL)
		return -1;
	if (policy_edit(m, &tail, AG_EDIT_INSERT, "Authentication-Results", ar,
		0) == NULL)
		return -1;
	return 0;
}

/* policy_spf - local policy for the SPF result of the MAIL FROM identity */
static void
policy_spf(struct msg *m, struct verdict *v)
{
	const struct config *cfg = m->cfg;
	const struct spf_outcome *o = &m->spf_mailfrom;
	int action = AG_ACT_ACCEPT;
	const char *text;

	if (!o->checked || m->internal)
		return;
	switch (o->result) {
	case AG_SPF_FAIL:
		action = cfg->spf_fail_action;
		break;
	case AG_SPF_SOFTFAIL:
		action = cfg->spf_softfail_action;
		break;
	case AG_SPF_PERMERROR:
		action = cfg->spf_permerror_action;
		break;
	default:
		return;
	}
	if (action == AG_ACT_ACCEPT)
		return;
	v->action = action;
	v->rcode = action == AG_ACT_REJECT ? "550" : "451";
	/* RFC 7372: X.7.23 SPF validation failed, X.7.24 SPF error */
	if (o->result == AG_SPF_PERMERROR) {
		v->xcode = action == AG_ACT_REJECT ? "5.7.24" : "4.7.24";
		text = arena_printf(m->arena, "SPF record of %s is broken: %s",
		    o->domain ? o->domain : "the sender",
		    o->reason ? o->reason : "permerror");
	} else {
		v->xcode = action == AG_ACT_REJECT ? "5.7.23" : "4.7.23";
		text = o->explanation;
	}
	v->text = text ? text : "SPF check failed";
}

/* policy_decide - one action for the message */
void
policy_decide(struct msg *m)
{
	const struct config *cfg = m->cfg;
	struct verdict *v = &m->verdict;

	memset(v, 0, sizeof(*v));
	v->action = AG_ACT_ACCEPT;
	if (m->errors & AG_ERR_DNS)
		policy_reply(v, cfg->on_dns_error, AG_ERR_DNS);
	if (v->action == AG_ACT_ACCEPT && (m->errors & AG_ERR_INTERNAL))
		policy_reply(v, cfg->on_internal_error, AG_ERR_INTERNAL);
	if (v->action == AG_ACT_ACCEPT && (m->errors & AG_ERR_KEY))
		policy_reply(v, cfg->on_key_error, AG_ERR_KEY);
	if (v->action == AG_ACT_ACCEPT)
		policy_spf(m, v);
	if (v->action != AG_ACT_ACCEPT && v->action != AG_ACT_QUARANTINE)
		return;
	if (policy_headers(m) == -1) {
		/* Out of memory while writing headers: same class as any. */
		m->errors |= AG_ERR_INTERNAL;
		v->edits = NULL;
		policy_reply(v, cfg->on_internal_error, AG_ERR_INTERNAL);
	}
}
