/*
 * fuzz_common.h - helpers shared by the libFuzzer targets.
 *
 * FUZZ_CHECK() is the harness's assert: it prints what was expected and
 * what was seen, then abort()s so libFuzzer saves the input. The daemon's
 * log lines are formatted at debug level (so every format string runs)
 * but written to /dev/null: glibc lets a program reassign stderr, while
 * libFuzzer and the sanitizers keep writing to the real fd 2. Set
 * AG_FUZZ_VERBOSE=1 to see the log lines when replaying a crash.
 * A reader hands out bytes, numbers and strings from the input; it never
 * fails, it returns zeros and empty strings once the input is used up.
 */
#ifndef AG_FUZZ_COMMON_H
#define AG_FUZZ_COMMON_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/mman.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

static FILE *fuzz_err; /* the real stderr */

/* fuzz_fail - report a broken assertion and abort */
static void __attribute__((noreturn, unused, format(printf, 4, 5)))
fuzz_fail(const char *file, int line, const char *cond, const char *fmt, ...)
{
	va_list ap;
	FILE *fp = fuzz_err ? fuzz_err : stderr;

	fprintf(
	    fp, "\n==fuzz assertion failed== %s:%d: %s\n", file, line, cond);
	va_start(ap, fmt);
	vfprintf(fp, fmt, ap);
	va_end(ap);
	fputc('\n', fp);
	fflush(fp);
	abort();
}

#define FUZZ_CHECK(cond, ...)                                              \
	do {                                                               \
		if (!(cond))                                               \
			fuzz_fail(__FILE__, __LINE__, #cond, __VA_ARGS__); \
	} while (0)

/*
 * FUZZ_KNOWN - the assertion for a bug that is reported, with its
 * reproducer in tests/fuzz/crashes/<id>.bin, but not fixed yet. With
 * AG_FUZZ_STRICT=1 (run.sh repro sets it) it fails like FUZZ_CHECK;
 * otherwise it notes the hit once and yields false, and the harness skips
 * what depends on it, so fuzzing goes on past a known bug instead of
 * finding it again and again. When the bug is fixed, turn it back into a
 * FUZZ_CHECK.
 */
#define FUZZ_KNOWN(cond, id, ...) \
	((cond) || fuzz_known(__FILE__, __LINE__, #cond, id, __VA_ARGS__))

/* fuzz_known - see FUZZ_KNOWN */
static bool __attribute__((unused, format(printf, 5, 6)))
fuzz_known(const char *file, int line, const char *cond, const char *id,
    const char *fmt, ...)
{
	static bool noted;
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (getenv("AG_FUZZ_STRICT") != NULL)
		fuzz_fail(file, line, cond, "known bug %s: %s", id, msg);
	if (!noted) {
		fprintf(fuzz_err ? fuzz_err : stderr,
		    "fuzz: known bug %s hit (AG_FUZZ_STRICT=1 stops on it): "
		    "%s\n",
		    id, msg);
		noted = true;
	}
	return false;
}

/* fuzz_memfd - an anonymous file and its /proc/self/fd path, so a target
 * can hand a file name to code that opens one (no temporary files) */
static int __attribute__((unused))
fuzz_memfd(const char *name, char *path, size_t len)
{
	int fd = memfd_create(name, 0);

	if (fd == -1) {
		perror("memfd_create");
		abort();
	}
	snprintf(path, len, "/proc/self/fd/%d", fd);
	return fd;
}

/* fuzz_quiet_logs - daemon logs formatted but discarded (see above) */
static void __attribute__((unused)) fuzz_quiet_logs(void)
{
	FILE *null;

	fuzz_err = stderr;
	log_set_level(LOG_DEBUG);
	if (getenv("AG_FUZZ_VERBOSE") != NULL)
		return;
	if ((null = fopen("/dev/null", "w")) != NULL)
		stderr = null;
}

/* fuzz_escape - printable rendering of bytes for assertion messages;
 * four buffers in turn, so one message may hold four renderings */
static const char *__attribute__((unused))
fuzz_escape(const char *s, size_t len)
{
	static char bufs[4][4 * 512 + 8];
	static unsigned next;
	char *out = bufs[next++ % 4];
	size_t i, n = 0, size = sizeof(bufs[0]);

	for (i = 0; i < len && n + 8 < size; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c >= 0x20 && c < 0x7f && c != '\\')
			out[n++] = (char)c;
		else
			n += (size_t)snprintf(out + n, size - n, "\\x%02x", c);
	}
	if (i < len)
		n += (size_t)snprintf(out + n, size - n, "...");
	out[n] = '\0';
	return out;
}

struct fuzz_reader {
	const uint8_t *p;
	size_t n;
};

/* fr_byte - next byte, 0 at the end */
static inline uint8_t
fr_byte(struct fuzz_reader *r)
{
	if (r->n == 0)
		return 0;
	r->n--;
	return *r->p++;
}

/* fr_u16 - next two bytes, big-endian */
static inline unsigned
fr_u16(struct fuzz_reader *r)
{
	unsigned hi = fr_byte(r);

	return (hi << 8) | fr_byte(r);
}

/*
 * fr_bytes - a length-prefixed run of bytes: one length byte, or 0xff
 * and then a 16-bit length; clamped to what is left. *lenp gets the
 * length, the return value points into the input.
 */
static inline const uint8_t *
fr_bytes(struct fuzz_reader *r, size_t *lenp)
{
	size_t len = fr_byte(r);
	const uint8_t *p;

	if (len == 0xff)
		len = fr_u16(r);
	if (len > r->n)
		len = r->n;
	p = r->p;
	r->p += len;
	r->n -= len;
	*lenp = len;
	return p;
}

/* fr_str - fr_bytes as a malloc'd C string (cut at the first NUL, as
 * the MTA's strings are); the caller frees it */
static inline char *
fr_str(struct fuzz_reader *r)
{
	size_t len;
	const uint8_t *p = fr_bytes(r, &len);
	char *s = malloc(len + 1);

	if (s == NULL)
		abort();
	memcpy(s, p, len);
	s[len] = '\0';
	return s;
}

#endif
