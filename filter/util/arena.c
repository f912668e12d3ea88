/*
 * arena.c - bump allocator with destructors (see arena.h).
 *
 * Blocks are chained; a request larger than a quarter of the standard block
 * gets a block of its own so big header values do not waste the tail of the
 * current block, and so that arena_realloc() can resize it in place. Only
 * this file and xalloc.c call malloc.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/arena.h"

#define AG_ARENA_ALIGN 16
#define AG_ARENA_BLOCK 8192

struct arena_block {
	struct arena_block *next;
	size_t size; /* usable bytes after the header */
	size_t used;
	max_align_t data[]; /* aligned start of the usable bytes */
};

struct arena_dtor {
	struct arena_dtor *next;
	void (*fn)(void *);
	void *arg;
};

struct arena {
	struct arena_block *cur;   /* block bumped into */
	struct arena_block *large; /* dedicated blocks of big requests */
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

/* arena_block_new - one block of at least size usable bytes */
static struct arena_block *
arena_block_new(size_t size)
{
	struct arena_block *b;

	if (size > SIZE_MAX - sizeof(*b))
		return NULL;
	if ((b = malloc(sizeof(*b) + size)) == NULL)
		return NULL;
	b->next = NULL;
	b->size = size;
	b->used = 0;
	return b;
}

/* arena_new - create an arena */
struct arena *
arena_new(size_t hint)
{
	struct arena *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	if (hint < 512)
		hint = 512;
	if ((a->cur = arena_block_new(hint)) == NULL) {
		free(a);
		return NULL;
	}
	a->bytes = hint;
	a->fail_after = atomic_load(&arena_fail_default);
	return a;
}

/* arena_free - destructors, then memory */
void
arena_free(struct arena *a)
{
	struct arena_block *b, *next;
	struct arena_dtor *d;

	if (a == NULL)
		return;
	/* Destructors may still read arena memory: run them first. */
	for (d = a->dtors; d != NULL; d = d->next)
		d->fn(d->arg);
	for (b = a->cur; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	for (b = a->large; b != NULL; b = next) {
		next = b->next;
		free(b);
	}
	free(a);
}

/* arena_alloc - bump-allocate len bytes */
void *
arena_alloc(struct arena *a, size_t len)
{
	struct arena_block *b;
	size_t need;
	void *p;

	if (a->fail_after != 0 && ++a->nalloc > a->fail_after)
		return NULL;
	if (len == 0)
		len = 1;
	if (len > SIZE_MAX - AG_ARENA_ALIGN)
		return NULL;
	need = (len + AG_ARENA_ALIGN - 1) & ~(size_t)(AG_ARENA_ALIGN - 1);
	b = a->cur;
	if (b->size - b->used >= need) {
		p = (char *)b->data + b->used;
		b->used += need;
		return p;
	}
	if (need > AG_ARENA_BLOCK / 4) {
		/* A big request: its own block, the current one stays. */
		if ((b = arena_block_new(need)) == NULL)
			return NULL;
		b->next = a->large;
		a->large = b;
		b->used = need;
		a->bytes += need;
		return b->data;
	}
	if ((b = arena_block_new(AG_ARENA_BLOCK)) == NULL)
		return NULL;
	b->next = a->cur;
	a->cur = b;
	b->used = need;
	a->bytes += AG_ARENA_BLOCK;
	return b->data;
}

/* arena_realloc - resize; a block of its own is realloc()ed */
void *
arena_realloc(struct arena *a, void *p, size_t old, size_t len)
{
	struct arena_block **bp, *b;
	size_t need;
	void *q;

	for (bp = &a->large; p != NULL && *bp != NULL; bp = &(*bp)->next)
		if ((void *)(*bp)->data == p)
			break;
	if (p == NULL || *bp == NULL || len <= AG_ARENA_BLOCK / 4) {
		/* small, or to be small: a new allocation and a copy */
		if ((q = arena_alloc(a, len)) != NULL && p != NULL)
			memcpy(q, p, old < len ? old : len);
		return q;
	}
	if (a->fail_after != 0 && ++a->nalloc > a->fail_after)
		return NULL;
	if (len > SIZE_MAX - AG_ARENA_ALIGN - sizeof(*b))
		return NULL;
	need = (len + AG_ARENA_ALIGN - 1) & ~(size_t)(AG_ARENA_ALIGN - 1);
	if ((b = realloc(*bp, sizeof(*b) + need)) == NULL)
		return NULL;
	a->bytes = a->bytes - b->size + need;
	b->size = b->used = need;
	*bp = b; /* the list's link to it, which realloc() may have moved */
	return b->data;
}

/* arena_zalloc - zero-filled arena_alloc */
void *
arena_zalloc(struct arena *a, size_t len)
{
	void *p;

	if ((p = arena_alloc(a, len)) != NULL)
		memset(p, 0, len);
	return p;
}

/* arena_allocarray - n elements of size bytes, zeroed */
void *
arena_allocarray(struct arena *a, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		return NULL;
	return arena_zalloc(a, n * size);
}

/* arena_memdup - copy len bytes, plus a NUL after them */
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

/* arena_strndup - copy at most len bytes of a string */
char *
arena_strndup(struct arena *a, const char *s, size_t len)
{
	const char *nul;

	if ((nul = memchr(s, '\0', len)) != NULL)
		len = (size_t)(nul - s);
	return arena_memdup(a, s, len);
}

/* arena_strdup - copy a string */
char *
arena_strdup(struct arena *a, const char *s)
{
	return arena_memdup(a, s, strlen(s));
}

/* arena_vprintf - formatted string in the arena */
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

/* arena_printf - formatted string in the arena */
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

/* arena_defer - register a destructor */
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

/* arena_bytes - memory held */
size_t
arena_bytes(const struct arena *a)
{
	return a->bytes;
}
