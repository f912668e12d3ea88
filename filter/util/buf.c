/*
 * buf.c - growable byte buffer (see buf.h for the invariants).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/buf.h"
#include "util/xalloc.h"

char buf_empty[1];

/* buf_grow - make room for extra more bytes plus the terminator */
void
buf_grow(struct buf *b, size_t extra)
{
	size_t want, n;
	int fresh = (b->alloc == 0);

	if (extra > SIZE_MAX - b->len - 1)
		abort(); /* size_t overflow: a caller bug */
	want = b->len + extra + 1;
	if (want <= b->alloc)
		return;
	n = b->alloc ? b->alloc : 64;
	while (n < want)
		n = (n > SIZE_MAX / 2) ? want : n * 2;
	b->data = xrealloc(fresh ? NULL : b->data, n);
	if (fresh)
		b->data[0] = '\0';
	b->alloc = n;
}

/* buf_add - append len bytes */
void
buf_add(struct buf *b, const void *p, size_t len)
{
	if (len == 0)
		return;
	buf_grow(b, len);
	memcpy(b->data + b->len, p, len);
	b->len += len;
	b->data[b->len] = '\0';
}

/* buf_addstr - append a C string */
void
buf_addstr(struct buf *b, const char *s)
{
	buf_add(b, s, strlen(s));
}

/* buf_addch - append one byte */
void
buf_addch(struct buf *b, int c)
{
	buf_grow(b, 1);
	b->data[b->len++] = (char)c;
	b->data[b->len] = '\0';
}

/* buf_vaddf - append formatted text */
void
buf_vaddf(struct buf *b, const char *fmt, va_list ap)
{
	va_list cp;
	int n;

	va_copy(cp, ap);
	n = vsnprintf(NULL, 0, fmt, cp);
	va_end(cp);
	if (n <= 0)
		return;
	buf_grow(b, (size_t)n);
	vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
	b->len += (size_t)n;
}

/* buf_addf - append formatted text */
void
buf_addf(struct buf *b, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	buf_vaddf(b, fmt, ap);
	va_end(ap);
}

/* buf_setlen - shorten (or keep) the contents; growing past alloc is a bug */
void
buf_setlen(struct buf *b, size_t len)
{
	if (len > (b->alloc ? b->alloc - 1 : 0))
		abort();
	b->len = len;
	b->data[len] = '\0';
}

/* buf_reset - empty the buffer, keep its storage */
void
buf_reset(struct buf *b)
{
	if (b->alloc)
		buf_setlen(b, 0);
}

/* buf_detach - hand the storage to the caller (who frees it) */
char *
buf_detach(struct buf *b, size_t *lenp)
{
	char *p;

	if (b->alloc == 0)
		p = xstrdup("");
	else
		p = b->data;
	if (lenp)
		*lenp = b->len;
	b->data = buf_empty;
	b->len = b->alloc = 0;
	return p;
}

/* buf_release - free the storage and reset to BUF_INIT */
void
buf_release(struct buf *b)
{
	if (b->alloc)
		free(b->data);
	b->data = buf_empty;
	b->len = b->alloc = 0;
}
