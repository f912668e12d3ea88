/*
 * test_str.c - ASCII helpers, log masking, strict number/time/size/bool
 * parsing (the config parser's foundations).
 */
#include "testlib.h"
#include "util/arena.h"
#include "util/str.h"

static void
test_case(void **state)
{
	(void)state;
	assert_int_equal(
	    str_casecmp("Authentication-Results", "authentication-results"), 0);
	assert_true(str_casecmp("a", "b") < 0);
	assert_true(str_caseeq_len("FROMx", 4, "from"));
	assert_false(str_caseeq_len("FROM", 4, "fro"));
	assert_non_null(str_casestr("xx MTA.Example yy", 17, "mta.example"));
	assert_null(str_casestr("short", 5, "longer string"));
}

static void
test_safe(void **state)
{
	struct arena *a = arena_new(0);
	char big[300];

	(void)state;
	assert_string_equal(str_safe(a, "a\r\nb\x01\xff", 6), "a??b??");
	memset(big, 'x', sizeof(big));
	assert_int_equal(
	    strlen(str_safe(a, big, sizeof(big))), AG_LOG_SAFE_MAX + 3);
	arena_free(a);
}

static void
test_numbers(void **state)
{
	static const struct {
		const char *in;
		int rc;
		long long ms;
	} times[] = {
	    {"5s", 0, 5000},
	    {"5", 0, 5000},
	    {"500ms", 0, 500},
	    {"2m", 0, 120000},
	    {"1h", 0, 3600000},
	    {"1d", 0, 86400000},
	    {"1S", 0, 1000},
	    {"", -1, 0},
	    {"5 s", -1, 0},
	    {"-1s", -1, 0},
	    {"1w", -1, 0},
	    {"99999999999999999999", -1, 0},
	    {"9999999999999999d", -1, 0},
	};
	unsigned long long u;
	long long v;
	bool b;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(times) / sizeof(times[0]); i++) {
		v = 0;
		want_int(times[i].in, str_parse_time_ms(times[i].in, &v),
		    times[i].rc);
		if (times[i].rc == 0)
			want_int(times[i].in, v, times[i].ms);
	}
	assert_int_equal(str_parse_size("100k", &v), 0);
	assert_int_equal(v, 102400);
	assert_int_equal(str_parse_size("1m", &v), 0);
	assert_int_equal(v, 1048576);
	assert_int_equal(str_parse_size("12x", &v), -1);
	assert_int_equal(str_parse_uint("0123", 4, 1000, &u), 0);
	assert_int_equal(str_parse_uint("1001", 4, 1000, &u), -1);
	assert_int_equal(str_parse_uint("+1", 2, 1000, &u), -1);
	assert_int_equal(str_parse_bool("Yes", &b), 0);
	assert_true(b);
	assert_int_equal(str_parse_bool("off", &b), 0);
	assert_false(b);
	assert_int_equal(str_parse_bool("maybe", &b), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_case),
	    cmocka_unit_test(test_safe),
	    cmocka_unit_test(test_numbers),
	};

	return AG_RUN(tests);
}
