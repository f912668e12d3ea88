/*
 * test_arena.c - bump allocation, alignment, big blocks, resizing,
 * destructors in reverse order, the failure hook.
 */
#include "testlib.h"
#include "util/arena.h"

static int order[8], norder;

static void
dtor(void *arg)
{
	order[norder++] = (int)(intptr_t)arg;
}

static void
test_alloc_align(void **state)
{
	struct arena *a = arena_new(0);
	int i;

	(void)state;
	for (i = 1; i < 200; i++) {
		char *p = arena_alloc(a, (size_t)i);

		assert_non_null(p);
		assert_int_equal((uintptr_t)p % 16, 0);
		memset(p, 0xa5, (size_t)i);
	}
	arena_free(a);
}

static void
test_big_and_copies(void **state)
{
	struct arena *a = arena_new(64);
	char *big, *s;

	(void)state;
	big = arena_alloc(a, 1 << 20);
	assert_non_null(big);
	memset(big, 1, 1 << 20);
	s = arena_strndup(a, "hello world", 5);
	assert_string_equal(s, "hello");
	s = arena_printf(a, "%d-%s", 42, "x");
	assert_string_equal(s, "42-x");
	s = arena_memdup(a, "a\0b", 3);
	assert_memory_equal(s, "a\0b", 3);
	assert_int_equal(s[3], '\0');
	assert_true(arena_bytes(a) >= (1 << 20));
	assert_null(arena_allocarray(a, SIZE_MAX / 2, 4));
	arena_free(a);
}

static void
test_destructors(void **state)
{
	struct arena *a = arena_new(0);

	(void)state;
	norder = 0;
	assert_int_equal(arena_defer(a, dtor, (void *)1), 0);
	assert_int_equal(arena_defer(a, dtor, (void *)2), 0);
	assert_int_equal(arena_defer(a, dtor, (void *)3), 0);
	arena_free(a);
	assert_int_equal(norder, 3);
	assert_int_equal(order[0], 3);
	assert_int_equal(order[2], 1);
}

static void
test_fail_hook(void **state)
{
	struct arena *a;

	(void)state;
	arena_test_fail_after(2);
	a = arena_new(0);
	assert_non_null(arena_alloc(a, 8));
	assert_non_null(arena_alloc(a, 8));
	assert_null(arena_alloc(a, 8));
	assert_null(arena_strdup(a, "x"));
	assert_int_equal(arena_defer(a, dtor, NULL), -1);
	arena_free(a);
	arena_test_fail_after(0);
	a = arena_new(0);
	assert_non_null(arena_alloc(a, 8));
	arena_free(a);
}

/* test_resize - a buffer grown from small to 4 MB keeps its bytes and
 * leaves no old copies behind once big; a failed resize keeps it */
static void
test_resize(void **state)
{
	struct arena *a = arena_new(0);
	size_t len = 16, i, base;
	unsigned char *p = arena_realloc(a, NULL, 0, len), *q;

	(void)state;
	assert_non_null(p);
	for (i = 0; i < len; i++)
		p[i] = (unsigned char)i;
	base = arena_bytes(a);
	while (len < 4 << 20) {
		q = arena_realloc(a, p, len, len * 2);
		assert_non_null(q);
		for (i = 0; i < len; i += 97)
			if (q[i] != (unsigned char)i)
				fail_msg(
				    "byte %zu lost growing to %zu", i, len * 2);
		for (i = len; i < len * 2; i++)
			q[i] = (unsigned char)i;
		p = q;
		len *= 2;
	}
	/* doubling by copies would hold 8 MB by now */
	if (arena_bytes(a) > base + len + 8192)
		fail_msg("arena holds %zu bytes for a buffer of %zu",
		    arena_bytes(a), len);
	/* smaller again, and small: still the first bytes */
	p = arena_realloc(a, p, len, 100000);
	assert_non_null(p);
	assert_int_equal(p[99999], (unsigned char)99999);
	p = arena_realloc(a, p, 100000, 100);
	assert_non_null(p);
	assert_int_equal(p[99], 99);
	arena_free(a);
	/* a resize that fails leaves the buffer as it was */
	arena_test_fail_after(3);
	a = arena_new(0);
	arena_test_fail_after(0);
	p = arena_realloc(a, NULL, 0, 10000);
	assert_non_null(p);
	p[9999] = 7;
	assert_non_null(arena_alloc(a, 8));
	assert_non_null(arena_alloc(a, 8));
	assert_null(arena_realloc(a, p, 10000, 20000));
	assert_int_equal(p[9999], 7);
	arena_free(a);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
	    cmocka_unit_test(test_alloc_align),
	    cmocka_unit_test(test_big_and_copies),
	    cmocka_unit_test(test_resize),
	    cmocka_unit_test(test_destructors),
	    cmocka_unit_test(test_fail_hook),
	};

	return AG_RUN(tests);
}
