/*
 * fuzz_spf_record.c - libFuzzer target: SPF record syntax and macros
 * (spf_record.c), the parser every TXT record from the network passes.
 *
 * Input: an SPF record as it comes out of a TXT answer (NULs included),
 * optionally followed by a NUL and the MAIL FROM address to expand
 * macros with (default "john.doe+x@example.org"). The record goes
 * through spf_record_is_spf, spf_record_parse and, when it parses,
 * spf_record_lower for an IPv4 and an IPv6 client; every domain-spec of
 * it through spf_macro_check and spf_macro_expand. The record's text also
 * goes through spf_macro_check as an explain-string and as a
 * domain-spec, and through spf_macro_expand when the check passes.
 * Asserts, beyond "no crash, no leak":
 *   - a refusal comes with a reason; a record with a NUL never parses;
 *   - a parsed record: at most AG_SPF_MAX_TERMS terms, qualifiers
 *     + - ~ ?, CIDR lengths -1 or 0..32 / 0..128, and every domain-spec
 *     (terms, redirect=, exp=) passes spf_macro_check;
 *   - spf_macro_expand with as_domain: at most 253 bytes, unless what is
 *     left is one label that cannot be cut (no '.');
 *   - spf_record_lower: a reason when it fails, else a record that
 *     spf_record_is_spf accepts, in printable ASCII (it goes to libspf2).
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"
#include "spf_record.h"
#include "fuzz_common.h"

#define AG_FUZZ_SENDER "john.doe+x@example.org"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
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

/* synth - spf_record_lower's callback, as spf_dns.c answers it */
static const char *
synth(void *ctx, enum ag_spf_synth kind, const char *target)
{
	unsigned *n = ctx;

	(void)target;
	if ((*n)++ % 7 == 6)
		return NULL; /* the callback may refuse */
	return kind == AG_SPF_SYN_CONT ? "s9.authgate-spf.invalid"
				       : "s0.authgate-spf.invalid";
}

/* check_expand - a checked macro-string, expanded both ways */
static void
check_expand(struct arena *a, const char *s, const struct spf_macro_env *env)
{
	const char *d = spf_macro_expand(a, s, env, true);
	size_t len;

	FUZZ_CHECK(spf_macro_expand(a, s, env, false) != NULL,
	    "spf_macro_expand(as text) failed on '%s'",
	    fuzz_escape(s, strlen(s)));
	FUZZ_CHECK(d != NULL, "spf_macro_expand(as domain) failed on '%s'",
	    fuzz_escape(s, strlen(s)));
	len = strlen(d);
	FUZZ_CHECK(len <= 253 || strchr(d, '.') == NULL,
	    "expanded domain of %zu bytes still has labels to cut: '%s' "
	    "from '%s'",
	    len, fuzz_escape(d, len), s);
}

/* check_spec - a domain-spec the parser accepted */
static void
check_spec(struct arena *a, const char *spec, const struct spf_macro_env *env)
{
	const char *why = NULL;

	if (spec == NULL)
		return;
	FUZZ_CHECK(spf_macro_check(spec, false, &why) == 0,
	    "parsed domain-spec '%s' fails spf_macro_check: %s",
	    fuzz_escape(spec, strlen(spec)), why ? why : "(no reason)");
	check_expand(a, spec, env);
}

/* check_lower - spf_record_lower for one client family */
static void
check_lower(
    struct arena *a, const struct spf_rec *rec, const struct spf_macro_env *env)
{
	const char *why = NULL;
	unsigned n = 0;
	char *low = spf_record_lower(a, rec, env, synth, &n, &why);

	if (low == NULL) {
		FUZZ_CHECK(why != NULL && *why != '\0',
		    "spf_record_lower failed without a reason");
		return;
	}
	FUZZ_CHECK(spf_record_is_spf(low, strlen(low)),
	    "lowered record is not SPF: '%s'", fuzz_escape(low, strlen(low)));
	FUZZ_CHECK(is_printable(low), "lowered record not printable: '%s'",
	    fuzz_escape(low, strlen(low)));
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char ip4[16] = {
	    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1};
	static const unsigned char ip6[16] = {
	    0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1};
	const char *txt = (const char *)data, *why = NULL, *nul;
	struct spf_macro_env env;
	struct spf_rec rec;
	struct arena *a = arena_new(4096);
	char *sender = NULL, *text;
	size_t len = size, i;
	int rc;

	if (a == NULL)
		abort();
	/* record NUL sender: the sender drives the macros */
	if ((nul = memchr(txt, '\0', size)) != NULL &&
	    memchr(nul + 1, '@', size - (size_t)(nul + 1 - txt)) != NULL) {
		len = (size_t)(nul - txt);
		sender = strndup(nul + 1, size - len - 1);
	}
	memset(&env, 0, sizeof(env));
	env.sender = sender && strchr(sender, '@') ? sender : AG_FUZZ_SENDER;
	env.domain = strrchr(env.sender, '@') + 1;
	env.ip = ip4;
	env.family = 4;
	env.helo = "mail.example.org";
	env.validated = (size & 1) ? "mail.example.org" : NULL;
	env.receiver = "mx.authgate.test";
	env.now = 1795000000;

	(void)spf_record_is_spf(txt, len);
	memset(&rec, 0, sizeof(rec));
	rc = spf_record_parse(a, txt, len, &rec, &why);
	if (rc == -1) {
		FUZZ_CHECK(why != NULL && *why != '\0',
		    "spf_record_parse refused without a reason");
	} else {
		FUZZ_CHECK(rc == 0, "spf_record_parse returned %d", rc);
		FUZZ_CHECK(memchr(txt, '\0', len) == NULL,
		    "a record with a NUL byte parsed");
		FUZZ_CHECK(
		    rec.nterms <= AG_SPF_MAX_TERMS, "%zu terms", rec.nterms);
		for (i = 0; i < rec.nterms; i++) {
			const struct spf_term *t = &rec.terms[i];

			FUZZ_CHECK(t->qual != '\0' && strchr("+-~?", t->qual),
			    "term %zu: qualifier 0x%02x", i,
			    (unsigned char)t->qual);
			FUZZ_CHECK(t->mech >= AG_SPF_M_ALL &&
				t->mech <= AG_SPF_M_EXISTS,
			    "term %zu: mechanism %d", i, (int)t->mech);
			FUZZ_CHECK(t->cidr4 >= -1 && t->cidr4 <= 32,
			    "term %zu: ip4 cidr %d", i, t->cidr4);
			FUZZ_CHECK(t->cidr6 >= -1 && t->cidr6 <= 128,
			    "term %zu: ip6 cidr %d", i, t->cidr6);
			check_spec(a, t->spec, &env);
		}
		check_spec(a, rec.redirect, &env);
		check_spec(a, rec.exp, &env);
		check_lower(a, &rec, &env);
		env.ip = ip6;
		env.family = 6;
		check_lower(a, &rec, &env);
	}

	/* The text as a macro-string of both kinds. */
	text = strndup(txt, len);
	if (text == NULL)
		abort();
	if (spf_macro_check(text, true, &why) == 0)
		check_expand(a, text, &env);
	if (spf_macro_check(text, false, &why) == 0)
		check_expand(a, text, &env);
	(void)spf_macro_uses(text, 'p');
	free(text);
	free(sender);
	arena_free(a);
	return 0;
}
