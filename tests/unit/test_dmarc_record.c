/*
 * test_dmarc_record.c - the DMARC record parser (RFC 9989 4.7, 4.8):
 * every tag, bad values, case, white space, duplicates, removed tags.
 */
#include "testlib.h"
#include "util/arena.h"
#include "dmarc_record.h"

#define N AG_DMARC_P_NONE
#define Q AG_DMARC_P_QUARANTINE
#define R AG_DMARC_P_REJECT
#define U AG_DMARC_P_UNSET
#define I AG_DMARC_P_INVALID

static void
test_parse(void **state)
{
	static const struct {
		const char *name, *txt;
		enum ag_dmarc_rec rc;
		int p, sp, np;
		bool adkim_s, aspf_s, t;
		enum ag_dmarc_psd psd;
		size_t nrua, nruf;
	} rows[] = {
	    {"minimal", "v=DMARC1; p=reject", AG_DMARC_REC_OK, R, U, U, 0, 0, 0,
		AG_DMARC_PSD_U, 0, 0},
	    {"every tag",
		"v=DMARC1; p=quarantine; sp=none; np=reject; adkim=s; aspf=s; "
		"t=y; psd=n; rua=mailto:a@example.com,mailto:b@example.net; "
		"ruf=mailto:f@example.com; fo=1",
		AG_DMARC_REC_OK, Q, N, R, 1, 1, 1, AG_DMARC_PSD_N, 2, 1},
	    {"trailing semicolon, white space", " v = DMARC1 ;p = none ; ",
		AG_DMARC_REC_OK, N, U, U, 0, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"tabs", "v=DMARC1;\tp=reject\t;\tadkim=s", AG_DMARC_REC_OK, R, U,
		U, 1, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"keywords in any case",
		"v=DMARC1; p=Reject; sp=QUARANTINE; "
		"adkim=S; t=Y; psd=Y",
		AG_DMARC_REC_OK, R, Q, U, 1, 0, 1, AG_DMARC_PSD_Y, 0, 0},
	    {"tag names in any case", "V=DMARC1; P=reject; ADKIM=s",
		AG_DMARC_REC_OK, R, U, U, 1, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"p need not come second",
		"v=DMARC1; rua=mailto:x@y.example; "
		"p=none",
		AG_DMARC_REC_OK, N, U, U, 0, 0, 0, AG_DMARC_PSD_U, 1, 0},
	    {"no p", "v=DMARC1; rua=mailto:x@y.example", AG_DMARC_REC_OK, U, U,
		U, 0, 0, 0, AG_DMARC_PSD_U, 1, 0},
	    {"bad p", "v=DMARC1; p=bounce", AG_DMARC_REC_OK, I, U, U, 0, 0, 0,
		AG_DMARC_PSD_U, 0, 0},
	    {"bad sp, bad np", "v=DMARC1; p=none; sp=maybe; np=",
		AG_DMARC_REC_OK, N, I, I, 0, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"bad adkim/aspf/t/psd take defaults",
		"v=DMARC1; p=none; adkim=x; aspf=strict; t=yes; psd=maybe",
		AG_DMARC_REC_OK, N, U, U, 0, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"removed pct, rf, ri ignored",
		"v=DMARC1; p=reject; pct=0; rf=afrf; ri=3600", AG_DMARC_REC_OK,
		R, U, U, 0, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"unknown tags ignored", "v=DMARC1; p=reject; xyz=1; foo=bar baz",
		AG_DMARC_REC_OK, R, U, U, 0, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"a piece without '=' ignored", "v=DMARC1; p=reject; junk",
		AG_DMARC_REC_OK, R, U, U, 0, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"tag name not letters ignored", "v=DMARC1; p=reject; p2=none",
		AG_DMARC_REC_OK, R, U, U, 0, 0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"empty tags", "v=DMARC1;; p=none;;", AG_DMARC_REC_OK, N, U, U, 0,
		0, 0, AG_DMARC_PSD_U, 0, 0},
	    {"rua: bad URIs dropped",
		"v=DMARC1; p=none; rua=mailto:a@b.example, not a uri,:x, "
		"https://r.example/x",
		AG_DMARC_REC_OK, N, U, U, 0, 0, 0, AG_DMARC_PSD_U, 2, 0},
	    {"rua: obsolete !size suffix",
		"v=DMARC1; p=none; "
		"rua=mailto:a@b.example!10m",
		AG_DMARC_REC_OK, N, U, U, 0, 0, 0, AG_DMARC_PSD_U, 1, 0},
	    {"duplicate tag", "v=DMARC1; p=reject; p=none",
		AG_DMARC_REC_INVALID, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	    {"duplicate tag, other case",
		"v=DMARC1; p=reject; ADKIM=s; adkim=r", AG_DMARC_REC_INVALID, 0,
		0, 0, 0, 0, 0, 0, 0, 0},
	    {"v twice", "v=DMARC1; p=none; v=DMARC1", AG_DMARC_REC_INVALID, 0,
		0, 0, 0, 0, 0, 0, 0, 0},
	    {"v not first", "p=reject; v=DMARC1", AG_DMARC_REC_NOT, 0, 0, 0, 0,
		0, 0, 0, 0, 0},
	    {"v value case-sensitive", "v=dmarc1; p=reject", AG_DMARC_REC_NOT,
		0, 0, 0, 0, 0, 0, 0, 0, 0},
	    {"v value exact", "v=DMARC1x; p=reject", AG_DMARC_REC_NOT, 0, 0, 0,
		0, 0, 0, 0, 0, 0},
	    {"v=DMARC2", "v=DMARC2; p=reject", AG_DMARC_REC_NOT, 0, 0, 0, 0, 0,
		0, 0, 0, 0},
	    {"SPF record", "v=spf1 -all", AG_DMARC_REC_NOT, 0, 0, 0, 0, 0, 0, 0,
		0, 0},
	    {"empty", "", AG_DMARC_REC_NOT, 0, 0, 0, 0, 0, 0, 0, 0, 0},
	    {"just v", "v=DMARC1", AG_DMARC_REC_OK, U, U, U, 0, 0, 0,
		AG_DMARC_PSD_U, 0, 0},
	    {"8-bit in a value", "v=DMARC1; p=r\xc3\xa9ject", AG_DMARC_REC_OK,
		I, U, U, 0, 0, 0, AG_DMARC_PSD_U, 0, 0},
	};
	struct arena *a = arena_new(0);
	struct dmarc_record r;
	char why[128], row[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		enum ag_dmarc_rec rc = dmarc_record_parse(
		    a, rows[i].txt, strlen(rows[i].txt), &r, why, sizeof(why));

		want_int(rows[i].name, rc, rows[i].rc);
		if (rc != AG_DMARC_REC_OK)
			continue;
		snprintf(row, sizeof(row), "%s: p", rows[i].name);
		want_int(row, r.p, rows[i].p);
		snprintf(row, sizeof(row), "%s: sp", rows[i].name);
		want_int(row, r.sp, rows[i].sp);
		snprintf(row, sizeof(row), "%s: np", rows[i].name);
		want_int(row, r.np, rows[i].np);
		snprintf(row, sizeof(row), "%s: adkim", rows[i].name);
		want_int(row, r.adkim_strict, rows[i].adkim_s);
		snprintf(row, sizeof(row), "%s: aspf", rows[i].name);
		want_int(row, r.aspf_strict, rows[i].aspf_s);
		snprintf(row, sizeof(row), "%s: t", rows[i].name);
		want_int(row, r.testing, rows[i].t);
		snprintf(row, sizeof(row), "%s: psd", rows[i].name);
		want_int(row, r.psd, rows[i].psd);
		snprintf(row, sizeof(row), "%s: rua", rows[i].name);
		want_int(row, r.nrua, rows[i].nrua);
		snprintf(row, sizeof(row), "%s: ruf", rows[i].name);
		want_int(row, r.nruf, rows[i].nruf);
		want_str(rows[i].name, r.text, rows[i].txt);
	}
	arena_free(a);
}

/* URIs keep their case; the reason for an invalid record names the tag */
static void
test_details(void **state)
{
	struct arena *a = arena_new(0);
	struct dmarc_record r;
	char why[128];
	const char *t =
	    "v=DMARC1; p=none; rua=mailto:DMARC-Reports@Example.COM";

	(void)state;
	assert_int_equal(
	    dmarc_record_parse(a, t, strlen(t), &r, why, sizeof(why)),
	    AG_DMARC_REC_OK);
	assert_string_equal(r.rua[0], "mailto:DMARC-Reports@Example.COM");
	t = "v=DMARC1; sp=none; SP=reject";
	assert_int_equal(
	    dmarc_record_parse(a, t, strlen(t), &r, why, sizeof(why)),
	    AG_DMARC_REC_INVALID);
	assert_string_equal(why, "tag 'SP' given twice");
	assert_string_equal(
	    dmarc_policy_name(AG_DMARC_P_QUARANTINE), "quarantine");
	assert_true(dmarc_uri_valid("mailto:a@b", 10));
	assert_false(dmarc_uri_valid("mailto:", 7));
	assert_false(dmarc_uri_valid("1x:y", 4));
	arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_parse),
	    cmocka_unit_test(test_details),
	};

	return AG_RUN(tests);
}
