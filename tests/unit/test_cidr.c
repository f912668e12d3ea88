/*
 * test_cidr.c - prefix sets: IPv4, IPv6, IPv4-mapped IPv6, bounds, bad
 * entries, the MTA's "IPv6:" prefix.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include "testlib.h"
#include "util/cidr.h"

static void
test_match(void **state)
{
	static const struct {
		const char *set, *addr;
		bool want;
	} rows[] = {
	    {"192.0.2.0/24", "192.0.2.1", true},
	    {"192.0.2.0/24", "192.0.2.255", true},
	    {"192.0.2.0/24", "192.0.3.0", false},
	    {"192.0.2.0/24", "::ffff:192.0.2.9", true},
	    {"192.0.2.0/24", "IPv6:::ffff:192.0.2.9", true},
	    {"192.0.2.0/24", "2001:db8::1", false},
	    {"2001:db8::/32", "2001:db8:ffff::1", true},
	    {"2001:db8::/32", "IPv6:2001:db8::1", true},
	    {"2001:db8::/32", "2001:db9::1", false},
	    {"::1", "::1", true},
	    {"::1", "::2", false},
	    {"10.0.0.0/8, 127.0.0.1", "127.0.0.1", true},
	    {"10.0.0.0/8 127.0.0.1", "127.0.0.2", false},
	    {"0.0.0.0/0", "203.0.113.5", true},
	    {"0.0.0.0/0", "2001:db8::1", false},
	    {"::/0", "2001:db8::1", true},
	    {"::/0", "203.0.113.5", true},
	    {"198.51.100.128/25", "198.51.100.127", false},
	    {"198.51.100.128/25", "198.51.100.128", true},
	    {"192.0.2.7/32", "192.0.2.7", true},
	    {"", "192.0.2.7", false},
	    {"192.0.2.0/24", "not-an-ip", false},
	};
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct cidr_set *s =
		    cidr_set_parse(rows[i].set, err, sizeof(err));
		char row[128];

		snprintf(
		    row, sizeof(row), "%s in %s", rows[i].addr, rows[i].set);
		if (s == NULL)
			fail_msg("%s: parse: %s", row, err);
		want_int(
		    row, cidr_set_match_str(s, rows[i].addr), rows[i].want);
		cidr_set_free(s);
	}
}

static void
test_bad(void **state)
{
	static const char *const bad[] = {"192.0.2.0/33", "2001:db8::/129",
	    "192.0.2.1/24", "192.0.2.0/024", "300.1.1.1", "192.0.2.0/",
	    "example.com", "192.0.2.0/-1", "1.2.3.4/8x"};
	char err[128];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct cidr_set *s = cidr_set_parse(bad[i], err, sizeof(err));

		if (s != NULL)
			fail_msg("'%s' parsed, want an error", bad[i]);
		if (strstr(err, "192.0.2.1/24") == NULL &&
		    strstr(err, bad[i]) == NULL)
			fail_msg(
			    "'%s': error does not name it: %s", bad[i], err);
	}
}

static void
test_sockaddr_and_format(void **state)
{
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	unsigned char a[16];
	char out[64];

	(void)state;
	memset(&s4, 0, sizeof(s4));
	s4.sin_family = AF_INET;
	inet_pton(AF_INET, "192.0.2.33", &s4.sin_addr);
	assert_int_equal(cidr_addr_from_sa((struct sockaddr *)&s4, a), 4);
	assert_string_equal(
	    cidr_addr_format(a, out, sizeof(out)), "192.0.2.33");
	memset(&s6, 0, sizeof(s6));
	s6.sin6_family = AF_INET6;
	inet_pton(AF_INET6, "::ffff:192.0.2.34", &s6.sin6_addr);
	assert_int_equal(cidr_addr_from_sa((struct sockaddr *)&s6, a), 4);
	assert_string_equal(
	    cidr_addr_format(a, out, sizeof(out)), "192.0.2.34");
	inet_pton(AF_INET6, "2001:DB8:0:0::1", &s6.sin6_addr);
	assert_int_equal(cidr_addr_from_sa((struct sockaddr *)&s6, a), 6);
	assert_string_equal(
	    cidr_addr_format(a, out, sizeof(out)), "2001:db8::1");
	assert_int_equal(cidr_addr_from_sa(NULL, a), -1);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_match),
	    cmocka_unit_test(test_bad),
	    cmocka_unit_test(test_sockaddr_and_format),
	};

	return AG_RUN(tests);
}
