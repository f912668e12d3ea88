/*
 * test_config.c - the configuration parser: defaults, every value type,
 * continuation lines, overrides, and every error path with its file:line.
 */
#include "testlib.h"
#include "util/buf.h"
#include "util/cidr.h"
#include "config.h"
#include "log.h"

/* load - parse text as a file plus overrides; errors into err */
static struct config *
load(const char *text, const char *const *ov, size_t nov, struct buf *err,
    char **pathp)
{
	char *path = tl_write_file(text);
	struct config *c = config_load(path, ov, nov, err);

	if (pathp)
		*pathp = path;
	else {
		unlink(path);
		free(path);
	}
	return c;
}

static void
test_defaults(void **state)
{
	struct buf err = BUF_INIT;
	struct config *c =
	    config_load("/nonexistent/authgate.conf", NULL, 0, &err);

	(void)state;
	/* an explicitly named file must exist */
	assert_null(c);
	assert_non_null(strstr(err.data,
	    "/nonexistent/authgate.conf: cannot "
	    "open"));
	buf_release(&err);

	c = load("", NULL, 0, &err, NULL);
	assert_non_null(c);
	assert_string_equal(c->milter_socket, "inet:8894@127.0.0.1");
	assert_string_equal(c->user, "authgate");
	assert_int_equal(c->dns_timeout_ms, 5000);
	assert_int_equal(c->header_size_limit, 102400);
	assert_int_equal(c->on_internal_error, AG_ACT_TEMPFAIL);
	assert_int_equal(c->on_dns_error, AG_ACT_ACCEPT);
	assert_true(c->internal_auth);
	assert_true(cidr_set_match_str(c->internal_hosts, "127.0.0.1"));
	assert_true(cidr_set_match_str(c->internal_hosts, "::1"));
	assert_false(cidr_set_match_str(c->internal_hosts, "192.0.2.1"));
	assert_int_equal(c->dns_servers.n, 0);
	config_free(c);
	buf_release(&err);
}

static void
test_values(void **state)
{
	struct buf err = BUF_INIT;
	const char *ov[] = {"dns_timeout=250ms", "log_level = debug"};
	struct config *c;

	(void)state;
	c = load("# comment\n"
		 "   # indented comment\n"
		 "\n"
		 "milter_socket = unix:/run/authgate/milter.sock\n"
		 "dns_servers = 127.0.0.1@5353,\n"
		 "   ::1@5353   192.0.2.53\n"
		 "internal_hosts = 10.0.0.0/8\n"
		 "\t192.168.0.0/16, 2001:db8::/32\n"
		 "internal_auth = no\n"
		 "header_size_limit = 64k\n"
		 "max_headers = 500\n"
		 "dns_timeout = 2s\n"
		 "on_dns_error = TEMPFAIL\n"
		 "authserv_id = mx.example.com\n",
	    ov, 2, &err, NULL);
	if (c == NULL)
		fail_msg("%s", err.data);
	assert_string_equal(c->milter_socket, "unix:/run/authgate/milter.sock");
	assert_int_equal(c->dns_servers.n, 3);
	assert_string_equal(c->dns_servers.v[1], "::1@5353");
	assert_true(cidr_set_match_str(c->internal_hosts, "192.168.4.4"));
	assert_true(cidr_set_match_str(c->internal_hosts, "2001:db8::9"));
	assert_false(cidr_set_match_str(c->internal_hosts, "127.0.0.1"));
	assert_false(c->internal_auth);
	assert_int_equal(c->header_size_limit, 65536);
	assert_int_equal(c->max_headers, 500);
	assert_int_equal(c->dns_timeout_ms, 250); /* -o wins over the file */
	assert_int_equal(c->log_level, LOG_DEBUG);
	assert_int_equal(c->on_dns_error, AG_ACT_TEMPFAIL);
	assert_string_equal(c->authserv_id, "mx.example.com");
	config_free(c);
	buf_release(&err);
}

static void
test_errors(void **state)
{
	static const struct {
		const char *name, *text, *want;
	} rows[] = {
	    {"unknown", "no_such_thing = 1\n",
		":1: unknown parameter 'no_such_thing'"},
	    {"no equals", "dns_timeout 5s\n", ":1: expected 'name = value'"},
	    {"bad bool", "\n\ninternal_auth = maybe\n",
		":3: internal_auth: 'maybe' is not yes or no"},
	    {"bad time", "dns_timeout = 5 seconds\n",
		":1: dns_timeout: '5 seconds' is not a time"},
	    {"time low", "dns_timeout = 10ms\n",
		":1: dns_timeout: '10ms' is out of range (100ms..1m)"},
	    {"time high", "dns_timeout = 2h\n", "out of range"},
	    {"bad size", "header_size_limit = big\n", "is not a size"},
	    {"size low", "header_size_limit = 10\n", "out of range (1k..16m)"},
	    {"bad int", "max_headers = 12abc\n", "is not a number"},
	    {"int low", "max_headers = 1\n", "out of range (10..100000)"},
	    {"bad enum", "on_dns_error = explode\n",
		"'explode' is not one of accept, tempfail or reject"},
	    {"bad level", "log_level = loud\n",
		"log_level: 'loud' is not one of"},
	    {"bad cidr", "internal_hosts = 10.0.0.0/8, 999.1.1.1\n",
		"bad address or prefix '999.1.1.1'"},
	    {"host bits", "internal_hosts = 10.1.0.0/8\n", "has host bits set"},
	    {"relative path", "pid_file = run/authgate.pid\n",
		"is not an absolute path"},
	    {"relative rules file (2nd of a list)",
		"rules_files = /etc/a.rules, local/*.rules\n",
		":1: rules_files: 'local/*.rules' is not an absolute path"},
	    {"bad socket", "milter_socket = 8894\n", "is not inet:PORT@HOST"},
	    {"bad port", "milter_socket = inet:99999@127.0.0.1\n", "bad port"},
	    {"unix relative", "milter_socket = unix:milter.sock\n",
		"needs an absolute path"},
	    {"duplicate", "dns_timeout = 1s\n# x\ndns_timeout = 2s\n",
		":3: 'dns_timeout' is set again (first set at line 1)"},
	    {"lone continuation", "  dns_timeout = 1s\n",
		":1: continuation line with nothing to continue"},
	    {"continued bad", "internal_hosts = 10.0.0.0/8\n  nonsense\n",
		":1: internal_hosts: bad address or prefix 'nonsense'"},
	};
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		struct buf err = BUF_INIT;
		char *path;
		struct config *c = load(rows[i].text, NULL, 0, &err, &path);

		if (c != NULL)
			fail_msg("%s: loaded, want error '%s'", rows[i].name,
			    rows[i].want);
		if (strstr(err.data, rows[i].want) == NULL)
			fail_msg("%s: got '%s', want '%s'", rows[i].name,
			    err.data, rows[i].want);
		/* every message names the file */
		if (strncmp(err.data, path, strlen(path)) != 0)
			fail_msg("%s: '%s' does not start with %s",
			    rows[i].name, err.data, path);
		unlink(path);
		free(path);
		buf_release(&err);
	}
}

static void
test_all_errors_reported(void **state)
{
	struct buf err = BUF_INIT;
	struct config *c;
	const char *ov[] = {"bogus=1", "dns_timeout"};
	int lines = 0;
	const char *p;

	(void)state;
	c = load("a = 1\nb = 2\ndns_timeout = x\n", ov, 2, &err, NULL);
	assert_null(c);
	for (p = err.data; *p; p++)
		lines += (*p == '\n');
	want_int(err.data, lines, 5);
	assert_non_null(strstr(err.data, "-o: unknown parameter 'bogus'"));
	assert_non_null(strstr(err.data, "-o: expected 'name = value'"));
	buf_release(&err);
}

static void
test_nul_and_long(void **state)
{
	struct buf err = BUF_INIT, text = BUF_INIT;
	char *path = strdup("/tmp/authgate-test-XXXXXX");
	int fd = mkstemp(path), i;

	(void)state;
	assert_int_equal(write(fd, "user = a\0b\n", 11), 11);
	close(fd);
	assert_null(config_load(path, NULL, 0, &err));
	assert_non_null(strstr(err.data, ":1: NUL byte in line"));
	unlink(path);
	free(path);
	buf_reset(&err);
	buf_addstr(&text, "authserv_id = ");
	for (i = 0; i < 70000; i++)
		buf_addch(&text, 'x');
	buf_addch(&text, '\n');
	assert_null(load(text.data, NULL, 0, &err, NULL));
	assert_non_null(strstr(err.data, ":1: line too long"));
	buf_release(&text);
	buf_release(&err);
}

static void
test_print_roundtrip(void **state)
{
	struct buf err = BUF_INIT;
	struct config *c, *c2;
	char *path, *out = NULL;
	size_t outlen = 0, i;
	FILE *fp;

	(void)state;
	c = load("dns_timeout = 1500ms\nheader_size_limit = 2048k\n"
		 "dns_cache_max_ttl = 120m\n",
	    NULL, 0, &err, NULL);
	assert_non_null(c);
	fp = open_memstream(&out, &outlen);
	config_print(c, fp);
	fclose(fp);
	assert_non_null(strstr(out, "\ndns_timeout = 1500ms\n"));
	assert_non_null(strstr(out, "\nheader_size_limit = 2m\n"));
	assert_non_null(strstr(out, "\ndns_cache_max_ttl = 2h\n"));
	/* every row is printed, and the output parses to the same values */
	for (i = 0; i < config_nparams(); i++) {
		char needle[128];

		snprintf(
		    needle, sizeof(needle), "\n%s = ", config_param_name(i));
		if (strstr(out, needle) == NULL)
			fail_msg("-p output lacks %s", config_param_name(i));
	}
	c2 = load(out, NULL, 0, &err, &path);
	if (c2 == NULL)
		fail_msg("reparse: %s", err.data);
	assert_int_equal(c2->dns_timeout_ms, 1500);
	assert_int_equal(c2->header_size_limit, 2097152);
	unlink(path);
	free(path);
	free(out);
	config_free(c);
	config_free(c2);
	buf_release(&err);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_defaults),
	    cmocka_unit_test(test_values),
	    cmocka_unit_test(test_errors),
	    cmocka_unit_test(test_all_errors_reported),
	    cmocka_unit_test(test_nul_and_long),
	    cmocka_unit_test(test_print_roundtrip),
	};

	return AG_RUN(tests);
}
