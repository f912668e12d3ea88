/*
 * buf.h - growable byte buffer (git strbuf invariants).
 *
 * b->data is never NULL and always NUL-terminated at b->len; the contents
 * may hold NUL bytes (header and body bytes are binary-safe). A buffer
 * declared with BUF_INIT needs no allocation until it grows. Growth uses
 * xalloc (aborts on OOM): use it for bounded, long-lived or CLI data; the
 * per-message path uses the arena. Not thread-safe per buffer.
 */
#ifndef AG_BUF_H
#define AG_BUF_H

#include <stdarg.h>
#include <stddef.h>

struct buf {
	char *data;
	size_t len;
	size_t alloc; /* 0: data points at the shared empty string */
};

extern char buf_empty[];
#define BUF_INIT                \
	{                       \
		buf_empty, 0, 0 \
	}

void buf_grow(struct buf *, size_t);
void buf_add(struct buf *, const void *, size_t);
void buf_addstr(struct buf *, const char *);
void buf_addch(struct buf *, int);
void buf_addf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));
void buf_vaddf(struct buf *, const char *, va_list)
    __attribute__((format(printf, 2, 0)));
void buf_setlen(struct buf *, size_t);
void buf_reset(struct buf *);
char *buf_detach(struct buf *, size_t *);
void buf_release(struct buf *);

#endif
