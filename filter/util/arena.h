/*
 * arena.h - bump allocator with registered destructors.
 *
 * One arena per connection and one per message: everything allocated for a
 * message is freed by one arena_free(), on every path (eom, abort, close).
 * Library handles register a destructor with arena_defer(); destructors
 * run in reverse order of registration. Allocation CAN fail (NULL): callers
 * turn that into an internal error for the message (tempfail), never a
 * crash. An arena is used by one thread at a time.
 */
#ifndef AG_ARENA_H
#define AG_ARENA_H

#include <stdarg.h>
#include <stddef.h>

struct arena;

/*
 * arena_new - create an arena; the first block holds hint bytes.
 * Returns NULL when memory is exhausted.
 */
struct arena *arena_new(size_t hint);

/* arena_free - run destructors (newest first), then free all memory. */
void arena_free(struct arena *);

/* arena_alloc - len bytes aligned for any type; NULL on failure. */
void *arena_alloc(struct arena *, size_t len);

/* arena_zalloc - like arena_alloc, zero-filled. */
void *arena_zalloc(struct arena *, size_t len);

/* arena_allocarray - n * size bytes, overflow-checked, zero-filled. */
void *arena_allocarray(struct arena *, size_t n, size_t size);

/*
 * arena_realloc - p (NULL, or from this arena and old bytes long) resized
 * to len bytes, its first min(old, len) bytes kept; NULL on failure, and
 * p stays valid. A big allocation (more than a quarter of a block) lives
 * in a block of its own, which is resized with realloc(): a buffer that
 * keeps growing leaves no old copies behind. A small one is copied, as
 * by arena_alloc. The result is freed with the arena, as usual.
 */
void *arena_realloc(struct arena *, void *p, size_t old, size_t len);

/* arena_memdup, arena_strndup, arena_strdup - copies (NUL-terminated). */
void *arena_memdup(struct arena *, const void *, size_t);
char *arena_strndup(struct arena *, const char *, size_t);
char *arena_strdup(struct arena *, const char *);
char *arena_printf(struct arena *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
char *arena_vprintf(struct arena *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));

/*
 * arena_defer - call fn(arg) when the arena is freed. Returns -1 (and does
 * NOT register) when memory is exhausted: the caller must then release the
 * resource itself.
 */
int arena_defer(struct arena *, void (*fn)(void *), void *arg);

/* arena_bytes - bytes currently held by the arena (for limits and tests). */
size_t arena_bytes(const struct arena *);

/*
 * arena_test_fail_after - test hook: every arena created afterwards fails
 * its (n+1)th allocation and all later ones. 0 turns the hook off.
 */
void arena_test_fail_after(unsigned long n);

#endif
