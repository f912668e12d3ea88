/*
 * testlib.h - shared helpers for the cmocka unit tests.
 *
 * Every test program runs one group with TAP output, so the automake TAP
 * driver and tests/run-all count each test case. Table-driven tests print
 * the row name with "got X, want Y" on failure.
 */
#ifndef AG_TESTLIB_H
#define AG_TESTLIB_H

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#define AG_RUN(tests)                              \
	(cmocka_set_message_output(CM_OUTPUT_TAP), \
	    cmocka_run_group_tests(tests, NULL, NULL))

/* want_str - compare strings, naming the table row */
#define want_str(row, got, want)                                     \
	do {                                                         \
		const char *g_ = (got), *w_ = (want);                \
		if ((g_ == NULL) != (w_ == NULL) ||                  \
		    (g_ != NULL && strcmp(g_, w_) != 0))             \
			fail_msg("%s: got '%s', want '%s'", (row),   \
			    g_ ? g_ : "(null)", w_ ? w_ : "(null)"); \
	} while (0)

#define want_int(row, got, want)                                            \
	do {                                                                \
		long long g_ = (long long)(got), w_ = (long long)(want);    \
		if (g_ != w_)                                               \
			fail_msg("%s: got %lld, want %lld", (row), g_, w_); \
	} while (0)

/* tl_write_file - a temp file holding text; returns its malloc'd path */
static inline char *
tl_write_file(const char *text)
{
	char *path = strdup("/tmp/authgate-test-XXXXXX");
	int fd = mkstemp(path);
	size_t len = strlen(text);

	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, len), (ssize_t)len);
	close(fd);
	return path;
}

#endif
