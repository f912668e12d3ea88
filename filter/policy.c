/*
 * policy.c - the verdict (see policy.h).
 */
#include <stdbool.h>
#include <string.h>

#include "util/arena.h"
#include "util/buf.h"
#include "util/str.h"
#include "config.h"
#include "dmarc_record.h"
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

/* The headers the rules' verdict writes: any copy that arrives is forged. */
static const char *const policy_spam_headers[] = {
    "X-Authgate-Score", "X-Authgate-Spam", "X-Authgate-Report"};

/* policy_spam_edits - delete every received X-Authgate-* header, and add
 * ours: the score always, the flag and the report over the threshold */
static int
policy_spam_edits(struct msg *m, struct hdr_edit ***tail)
{
	const struct config *cfg = m->cfg;
	const struct hdr *h;
	struct buf b = BUF_INIT;
	size_t i, k;
	int n;

	for (k = 0; k < 3; k++) {
		for (n = 0, h = m->hdrs; h != NULL; h = h->next)
			n += str_casecmp(h->name, policy_spam_headers[k]) == 0;
		for (; n > 0; n--)
			if (policy_edit(m, tail, AG_EDIT_DELETE,
				policy_spam_headers[k], NULL, n) == NULL)
				return -1;
	}
	if (!m->scored)
		return 0;
	msg_add_header(m, "X-Authgate-Score",
	    arena_printf(
		m->arena, "%.1f/%.1f", m->score, cfg->spam_header_score));
	if (m->score < cfg->spam_header_score)
		return 0;
	msg_add_header(m, "X-Authgate-Spam", "yes");
	for (i = 0; i < m->nhits; i++) {
		buf_addf(&b, "%s%s=%.1f", i ? ",\n\t" : "", m->hits[i].name,
		    m->hits[i].score);
		if (m->hits[i].describe != NULL)
			buf_addf(&b, " (%s)", m->hits[i].describe);
	}
	if (b.len)
		msg_add_header(
		    m, "X-Authgate-Report", arena_strdup(m->arena, b.data));
	buf_release(&b);
	return 0;
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
	if (m->cfg->rules_enable && policy_spam_edits(m, &tail) == -1)
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

/* policy_has_header - is a header of this name in the message? */
static bool
policy_has_header(const struct msg *m, const char *name)
{
	const struct hdr *h;

	for (h = m->hdrs; h != NULL; h = h->next)
		if (str_caseeq_len(h->name, h->namelen, name))
			return true;
	return false;
}

/*
 * policy_relayed - the "other knowledge and analysis" RFC 9989 7.4 asks
 * for before a p=reject is honoured: signs that a failing message was
 * relayed by a mailing list or forwarder, which DMARC cannot describe.
 * Returns the RFC 9990 override reason, or NULL when there is none.
 */
static const char *
policy_relayed(const struct msg *m, const struct dmarc_outcome *o)
{
	size_t i;

	if (policy_has_header(m, "List-Id") ||
	    policy_has_header(m, "List-Post"))
		return "mailing_list";
	for (i = 0; i < m->ndkim; i++) {
		const struct dkim_outcome *d = &m->dkim[i];

		/* the author's own signature, broken on the way (a list's
		 * footer or subject tag): the mail was relayed */
		if (d->result == AG_DKIM_FAIL && d->domain != NULL &&
		    str_casecmp(d->domain, o->from_domain) == 0)
			return "mailing_list";
		/* a valid signature of a third party that handled it */
		if (d->result == AG_DKIM_PASS)
			return "trusted_forwarder";
	}
	if (policy_has_header(m, "ARC-Seal"))
		return "trusted_forwarder";
	return NULL;
}

/* policy_dmarc_ignored - is the Author Domain (or a parent) listed? */
static bool
policy_dmarc_ignored(const struct config *cfg, const char *domain)
{
	size_t i, dl = strlen(domain);

	for (i = 0; i < cfg->dmarc_ignore_domains.n; i++) {
		const char *x = cfg->dmarc_ignore_domains.v[i];
		size_t xl = strlen(x);

		if (str_casecmp(domain, x) == 0 ||
		    (dl > xl && domain[dl - xl - 1] == '.' &&
			str_casecmp(domain + dl - xl, x) == 0))
			return true;
	}
	return false;
}

static const char *const policy_dis_names[] = {"none", "quarantine", "reject"};

/* policy_dmarc_one - what to do with one DMARC result */
static enum ag_dmarc_disposition
policy_dmarc_one(struct msg *m, struct dmarc_outcome *o)
{
	const struct config *cfg = m->cfg;
	const char *why;

	if (o->result != AG_DMARC_FAIL || o->policy == AG_DMARC_P_NONE) {
		if (o->record != NULL && o->record->testing &&
		    o->published != o->policy && o->result == AG_DMARC_FAIL)
			o->override = "policy_test_mode";
		return AG_DMARC_DIS_NONE;
	}
	if (!cfg->dmarc_enforce || policy_dmarc_ignored(cfg, o->from_domain)) {
		o->override = "local_policy";
		return AG_DMARC_DIS_NONE;
	}
	if (o->record != NULL && o->record->testing &&
	    o->published != o->policy)
		o->override = "policy_test_mode";
	if (o->policy == AG_DMARC_P_QUARANTINE)
		return AG_DMARC_DIS_QUARANTINE;
	switch (cfg->dmarc_reject_mode) {
	case AG_DMARC_REJECT_ALWAYS:
		return AG_DMARC_DIS_REJECT;
	case AG_DMARC_REJECT_NEVER:
		o->override = "local_policy";
		return AG_DMARC_DIS_QUARANTINE;
	default:
		/* RFC 9989 7.4: never reject on p=reject alone */
		if ((why = policy_relayed(m, o)) != NULL) {
			o->override = why;
			return AG_DMARC_DIS_QUARANTINE;
		}
		return AG_DMARC_DIS_REJECT;
	}
}

/* policy_dmarc - the strictest disposition of the From domains */
static void
policy_dmarc(struct msg *m, struct verdict *v)
{
	const struct config *cfg = m->cfg;
	struct dmarc_outcome *worst = NULL;
	size_t i;

	if (!cfg->dmarc_enable || m->internal)
		return;
	if (m->dmarc_from_bad && cfg->dmarc_multi_from == 1) {
		v->action = AG_ACT_REJECT;
		v->rcode = "550";
		v->xcode = "5.7.1";
		v->text = "a message needs exactly one From: address with a "
			  "domain (RFC 5322 3.6.2)";
		return;
	}
	for (i = 0; i < m->ndmarc; i++) {
		struct dmarc_outcome *o = &m->dmarc[i];

		o->disposition = policy_dmarc_one(m, o);
		if (worst == NULL || o->disposition > worst->disposition)
			worst = o;
		if (o->ar != NULL && o->ar->comment != NULL)
			o->ar->comment = arena_printf(m->arena, "%s dis=%s",
			    o->ar->comment, policy_dis_names[o->disposition]);
	}
	/* RFC 9989 11.5: a From: with more domains than we evaluate is an
	 * evaluation left incomplete; one of the rest could be a spoofed
	 * p=reject domain behind decoys, so it is held at least */
	if (m->dmarc_incomplete && cfg->dmarc_enforce &&
	    (worst == NULL || worst->disposition == AG_DMARC_DIS_NONE)) {
		v->action = AG_ACT_QUARANTINE;
		v->quarantine = "DMARC: too many From: domains to evaluate";
		return;
	}
	if (worst == NULL || worst->disposition == AG_DMARC_DIS_NONE)
		return;
	if (worst->disposition == AG_DMARC_DIS_REJECT) {
		v->action = AG_ACT_REJECT;
		v->rcode = "550";
		v->xcode = "5.7.1";
		v->text = arena_printf(m->arena,
		    "Email rejected per DMARC "
		    "policy for %s",
		    worst->from_domain);
		if (v->text == NULL)
			v->text = "Email rejected per DMARC policy";
		return;
	}
	v->action = AG_ACT_QUARANTINE;
	v->quarantine =
	    arena_printf(m->arena, "DMARC policy of %s", worst->from_domain);
	if (v->quarantine == NULL)
		v->quarantine = "DMARC policy";
}

/* policy_spam - the rules' score against the thresholds */
static void
policy_spam(struct msg *m, struct verdict *v)
{
	const struct config *cfg = m->cfg;

	if (!m->scored || (m->internal && !cfg->rules_internal))
		return;
	if (cfg->spam_reject_score > 0 && m->score >= cfg->spam_reject_score) {
		v->action = AG_ACT_REJECT;
		v->rcode = "550";
		v->xcode = "5.7.1";
		v->text = "Message refused by the content policy of this site";
		v->quarantine = NULL;
		return;
	}
	if (v->action == AG_ACT_ACCEPT && cfg->spam_quarantine_score > 0 &&
	    m->score >= cfg->spam_quarantine_score) {
		v->action = AG_ACT_QUARANTINE;
		v->quarantine =
		    arena_printf(m->arena, "spam score %.1f", m->score);
		if (v->quarantine == NULL)
			v->quarantine = "spam score";
	}
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
	if (v->action == AG_ACT_ACCEPT)
		policy_dmarc(m, v);
	if (v->action == AG_ACT_ACCEPT || v->action == AG_ACT_QUARANTINE)
		policy_spam(m, v);
	if (v->action != AG_ACT_ACCEPT && v->action != AG_ACT_QUARANTINE)
		return;
	if (policy_headers(m) == -1) {
		/* Out of memory while writing headers: same class as any. */
		m->errors |= AG_ERR_INTERNAL;
		v->edits = NULL;
		policy_reply(v, cfg->on_internal_error, AG_ERR_INTERNAL);
	}
}
