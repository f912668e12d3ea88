/*
 * arena_malloc.c - the arena API (filter/util/arena.h) for the fuzz build:
 * one malloc per allocation, so AddressSanitizer sees every overflow.
 *
 * filter/util/arena.c bump-allocates inside 8 KB blocks. ASan knows only
 * the blocks, so a write past one arena allocation into the next one, or
 * into the unused tail of a block, goes unnoticed - and almost everything
 * per message lives in an arena. Here each allocation is its own malloc
 * (16-byte aligned like arena.c's, with ASan's redzones around exactly
 * len bytes), recorded so arena_free() releases it. The observable
 * behaviour is arena.c's: destructors run newest first and before the
 * memory goes, allocation counts and fails the same way under
 * arena_test_fail_after(), arena_defer() allocates its record from the
 * arena. fuzz.mk links this file instead of filter/util/arena.c unless
 * FUZZ_ARENA=real. Keep it in step with arena.h.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"

#define AG_ARENA_ALIGN 16

struct arena_dtor {
	struct arena_dtor *next;
	void (*fn)(void *);
	void *arg;
};

struct arena {
	void **ptrs; /* every allocation, to free */
	size_t n, cap;
	struct arena_dtor *dtors;
	size_t bytes;
	unsigned long nalloc;
	unsigned long fail_after; /* test hook; 0 = off */
};

static atomic_ulong arena_fail_default;

/* arena_test_fail_after - test hook, see arena.h */
void
arena_test_fail_after(unsigned long n)
{
	atomic_store(&arena_fail_default, n);
}

/* arena_new - create an arena */
struct arena *
arena_new(size_t hint)
{
	struct arena *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->bytes = hint < 512 ? 512 : hint;
	a->fail_after = atomic_load(&arena_fail_default);
	return a;
}

/* arena_free - destructors (newest first), then memory */
void
arena_free(struct arena *a)
{
	struct arena_dtor *d;
	size_t i;

	if (a == NULL)
		return;
	for (d = a->dtors; d != NULL; d = d->next)
		d->fn(d->arg);
	for (i = 0; i < a->n; i++)
		free(a->ptrs[i]);
	free(a->ptrs);
	free(a);
}

/* arena_alloc - len bytes of their own */
void *
arena_alloc(struct arena *a, size_t len)
{
	void *p;

	if (a->fail_after != 0 && ++a->nalloc > a->fail_after)
		return NULL;
	if (len == 0)
		len = 1;
	if (len > SIZE_MAX - AG_ARENA_ALIGN)
		return NULL;
	if (a->n == a->cap) {
		size_t cap = a->cap ? a->cap * 2 : 16;
		void **v = realloc(a->ptrs, cap * sizeof(*v));

		if (v == NULL)
			return NULL;
		a->ptrs = v;
		a->cap = cap;
	}
	if (posix_memalign(&p, AG_ARENA_ALIGN, len) != 0)
		return NULL;
	a->ptrs[a->n++] = p;
	a->bytes += len;
	return p;
}

/* arena_realloc - realloc() of the allocation itself, as arena.c does
 * for its big ones (for small ones too here: ASan then sees any use of
 * the old copy) */
void *
arena_realloc(struct arena *a, void *p, size_t old, size_t len)
{
	size_t i = a->n;
	void *q;

	(void)old;
	if (p == NULL)
		return arena_alloc(a, len);
	while (i > 0 && a->ptrs[i - 1] != p)
		i--;
	if (i == 0)
		abort(); /* not from this arena: the caller's bug */
	if (a->fail_after != 0 && ++a->nalloc > a->fail_after)
		return NULL;
	if ((q = realloc(p, len ? len : 1)) == NULL)
		return NULL;
	a->ptrs[i - 1] = q;
	a->bytes = a->bytes - old + len;
	return q;
}

/* The rest is arena.c's, on top of arena_alloc. */

void *
arena_zalloc(struct arena *a, size_t len)
{
	void *p;

	if ((p = arena_alloc(a, len)) != NULL)
		memset(p, 0, len);
	return p;
}

void *
arena_allocarray(struct arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return arena_zalloc(a, n * size);
}

void *
arena_memdup(struct arena *a, const void *src, size_t len)
{
	char *p;

	if (len == SIZE_MAX || (p = arena_alloc(a, len + 1)) == NULL)
		return NULL;
	if (len)
		memcpy(p, src, len);
	p[len] = '\0';
	return p;
}

char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	const char *nul;

	if ((nul = memchr(s, '\0', len)) != NULL)
		len = (size_t)(nul - s);
	return arena_memdup(a, s, len);
}

char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_memdup(a, s, strlen(s));
}

char *
arena_vprintf(struct arena *a, const char *fmt, va_list ap)
{
	va_list cp;
	int n;
	char *p;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n < 0 || (p = arena_alloc(a, (size_t)n + 1)) == NULL)
		return NULL;
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	return p;
}

char *
arena_printf(struct arena *a, const char *fmt, ...)
{
	va_list ap;
	char *p;

	va_start(ap, fmt);
	p = arena_vprintf(a, fmt, ap);
	va_end(ap);
	return p;
}

int
arena_defer(struct arena *a, void (*fn)(void *), void *arg)
{
	struct arena_dtor *d;

	if ((d = arena_alloc(a, sizeof(*d))) == NULL)
		return -1;
	d->fn = fn;
	d->arg = arg;
	d->next = a->dtors;
	a->dtors = d;
	return 0;
}

size_t
arena_bytes(const struct arena *a)
{
	return a->bytes;
}
