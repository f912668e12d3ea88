/*
 * str.h - bounded ASCII string helpers and log-safe masking.
 *
 * Locale-independent: mail syntax is ASCII, and the C library's ctype
 * depends on the locale and on the sign of char. Nothing here allocates
 * except str_safe(), which uses the arena it is given. Thread-safe.
 */
#ifndef AG_STR_H
#define AG_STR_H

#include <stdbool.h>
#include <stddef.h>

struct arena;

#define AG_LOG_SAFE_MAX 200 /* bytes of network input shown in a log line */

static inline int
str_lower(int c)
{
	return (c >= 'A' && c <= 'Z') ? c + ('a' - 'A') : c;
}

static inline bool
str_isspace(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' ||
	    c == '\v';
}

static inline bool
str_isdigit(int c)
{
	return c >= '0' && c <= '9';
}

static inline bool
str_isalpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline bool
str_isalnum(int c)
{
	return str_isalpha(c) || str_isdigit(c);
}

/* str_casecmp - ASCII case-insensitive compare of two C strings */
int str_casecmp(const char *, const char *);

/* str_ncaseeq - true if the first n bytes match ignoring ASCII case */
bool str_ncaseeq(const char *, const char *, size_t);

/* str_caseeq_len - true if a (alen bytes) equals C string b, any case */
bool str_caseeq_len(const char *a, size_t alen, const char *b);

/* str_casestr - find needle in hay[0..len) ignoring case, or NULL */
const char *str_casestr(const char *hay, size_t len, const char *needle);

/* str_tolower - lowercase a string in place; returns it */
char *str_tolower(char *);

/* str_trim - bounds of s without leading/trailing white space */
void str_trim(const char **s, size_t *len);

/*
 * str_safe - a copy of s[0..len) fit for a log line: bytes outside
 * printable ASCII become '?', and the copy stops at AG_LOG_SAFE_MAX bytes
 * (with "..." appended). Returns a static "(nomem)" when the arena fails.
 */
const char *str_safe(struct arena *, const char *s, size_t len);

/*
 * str_parse_uint - strict unsigned decimal: digits only, no sign, no
 * leading/trailing junk, no overflow past max. -1 on any violation.
 */
int str_parse_uint(
    const char *s, size_t len, unsigned long long max, unsigned long long *out);

/*
 * str_parse_time_ms - "5s", "500ms", "2m", "1h", "1d", or bare seconds.
 * -1 on syntax error or overflow.
 */
int str_parse_time_ms(const char *s, long long *ms);

/* str_parse_size - "512", "100k", "10m", "1g" (powers of 1024). */
int str_parse_size(const char *s, long long *bytes);

/* str_parse_bool - yes/no, true/false, on/off, 1/0 (any case). */
int str_parse_bool(const char *s, bool *out);

#endif
