/*
 * test_buf.c - growable buffer invariants (never NULL, NUL-terminated,
 * binary-safe, detach/release).
 */
#include "testlib.h"
#include "util/buf.h"

static void
test_empty_and_grow(void **state)
{
	struct buf b = BUF_INIT;
	int i;

	(void)state;
	assert_non_null(b.data);
	assert_string_equal(b.data, "");
	for (i = 0; i < 1000; i++)
		buf_addch(&b, 'a' + i % 26);
	assert_int_equal(b.len, 1000);
	assert_int_equal(b.data[1000], '\0');
	buf_add(&b, "x\0y", 3);
	assert_int_equal(b.len, 1003);
	assert_memory_equal(b.data + 1000, "x\0y", 3);
	buf_addf(&b, "%05d", 42);
	assert_string_equal(b.data + 1003, "00042");
	buf_setlen(&b, 2);
	assert_string_equal(b.data, "ab");
	buf_reset(&b);
	assert_int_equal(b.len, 0);
	buf_release(&b);
	assert_int_equal(b.alloc, 0);
	assert_string_equal(b.data, "");
}

static void
test_detach(void **state)
{
	struct buf b = BUF_INIT;
	char *p;
	size_t len;

	(void)state;
	p = buf_detach(&b, &len);
	assert_string_equal(p, "");
	free(p);
	buf_addstr(&b, "owned");
	p = buf_detach(&b, &len);
	assert_int_equal(len, 5);
	assert_string_equal(p, "owned");
	assert_int_equal(b.alloc, 0);
	free(p);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_empty_and_grow),
	    cmocka_unit_test(test_detach),
	};

	return AG_RUN(tests);
}
