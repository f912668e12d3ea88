/*
 * xalloc.c - allocation that succeeds or aborts (see xalloc.h).
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/xalloc.h"

/* xalloc_fail - out of memory for a long-lived object: nothing sane is left */
static void
xalloc_fail(size_t len)
{
	fprintf(stderr, "authgate: fatal: out of memory (%zu bytes)\n", len);
	abort();
}

/* xmalloc - malloc that never returns NULL */
void *
xmalloc(size_t len)
{
	void *p;

	if (len == 0)
		len = 1;
	if ((p = malloc(len)) == NULL)
		xalloc_fail(len);
	return p;
}

/* xcalloc - calloc that never returns NULL */
void *
xcalloc(size_t n, size_t size)
{
	void *p;

	if (n == 0 || size == 0)
		n = size = 1;
	if ((p = calloc(n, size)) == NULL)
		xalloc_fail(n * size);
	return p;
}

/* xrealloc - realloc that never returns NULL */
void *
xrealloc(void *old, size_t len)
{
	void *p;

	if (len == 0)
		len = 1;
	if ((p = realloc(old, len)) == NULL)
		xalloc_fail(len);
	return p;
}

/* xreallocarray - realloc of n elements, with the multiplication checked */
void *
xreallocarray(void *old, size_t n, size_t size)
{
	if (size != 0 && n > SIZE_MAX / size)
		xalloc_fail(SIZE_MAX);
	return xrealloc(old, n * size);
}

/* xstrdup - strdup that never returns NULL */
char *
xstrdup(const char *s)
{
	return xstrndup(s, strlen(s));
}

/* xstrndup - copy at most len bytes of s and terminate */
char *
xstrndup(const char *s, size_t len)
{
	char *p;
	const char *nul;

	if ((nul = memchr(s, '\0', len)) != NULL)
		len = (size_t)(nul - s);
	p = xmalloc(len + 1);
	memcpy(p, s, len);
	p[len] = '\0';
	return p;
}

/* xasprintf - formatted string on the heap */
char *
xasprintf(const char *fmt, ...)
{
	va_list ap;
	int n;
	char *p;

	va_start(ap, fmt);
	n = vsnprintf(NULL, 0, fmt, ap);
	va_end(ap);
	if (n < 0)
		xalloc_fail(0);
	p = xmalloc((size_t)n + 1);
	va_start(ap, fmt);
	vsnprintf(p, (size_t)n + 1, fmt, ap);
	va_end(ap);
	return p;
}
