/*
 * xalloc.h - allocation that succeeds or does not return.
 *
 * For long-lived objects (config, snapshots, tables): running out of memory
 * while loading configuration is not something the daemon can recover from.
 * Per-message memory comes from the arena (arena.h), which may fail and lets
 * the message be tempfailed instead. Sizes are checked for overflow before
 * the call reaches malloc. Thread-safe.
 */
#ifndef AG_XALLOC_H
#define AG_XALLOC_H

#include <stddef.h>

void *xmalloc(size_t);
void *xcalloc(size_t, size_t);
void *xrealloc(void *, size_t);
void *xreallocarray(void *, size_t, size_t);
char *xstrdup(const char *);
char *xstrndup(const char *, size_t);
char *xasprintf(const char *, ...) __attribute__((format(printf, 1, 2)));

#endif
