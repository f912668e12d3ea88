/*
 * str.c - bounded ASCII helpers (see str.h).
 */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "util/arena.h"
#include "util/str.h"

/* str_casecmp - ASCII case-insensitive compare */
int
str_casecmp(const char *a, const char *b)
{
	int ca, cb;

	do {
		ca = str_lower((unsigned char)*a++);
		cb = str_lower((unsigned char)*b++);
	} while (ca == cb && ca != 0);
	return ca - cb;
}

/* str_ncaseeq - first n bytes equal, any case (stops at NUL in both) */
bool
str_ncaseeq(const char *a, const char *b, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++) {
		if (str_lower((unsigned char)a[i]) !=
		    str_lower((unsigned char)b[i]))
			return false;
		if (a[i] == '\0')
			return true;
	}
	return true;
}

/* str_caseeq_len - counted a equals C string b, any case */
bool
str_caseeq_len(const char *a, size_t alen, const char *b)
{
	size_t blen = strlen(b);

	return alen == blen && str_ncaseeq(a, b, alen);
}

/* str_casestr - case-insensitive search in a counted haystack */
const char *
str_casestr(const char *hay, size_t len, const char *needle)
{
	size_t nlen = strlen(needle), i;

	if (nlen == 0)
		return hay;
	if (nlen > len)
		return NULL;
	for (i = 0; i + nlen <= len; i++)
		if (str_ncaseeq(hay + i, needle, nlen))
			return hay + i;
	return NULL;
}

/* str_tolower - lowercase in place */
char *
str_tolower(char *s)
{
	char *p;

	for (p = s; *p; p++)
		*p = (char)str_lower((unsigned char)*p);
	return s;
}

/* str_trim - shrink [*s, *s + *len) to exclude white space at both ends */
void
str_trim(const char **s, size_t *len)
{
	const char *p = *s;
	size_t n = *len;

	while (n > 0 && str_isspace((unsigned char)*p)) {
		p++;
		n--;
	}
	while (n > 0 && str_isspace((unsigned char)p[n - 1]))
		n--;
	*s = p;
	*len = n;
}

/* str_safe - printable, bounded copy for logs */
const char *
str_safe(struct arena *a, const char *s, size_t len)
{
	size_t n = len > AG_LOG_SAFE_MAX ? AG_LOG_SAFE_MAX : len, i;
	char *out;

	if (s == NULL)
		return "(null)";
	if ((out = arena_alloc(a, n + 4)) == NULL)
		return "(nomem)";
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		out[i] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	if (n < len) {
		memcpy(out + n, "...", 3);
		n += 3;
	}
	out[n] = '\0';
	return out;
}

/* str_parse_uint - strict bounded decimal */
int
str_parse_uint(
    const char *s, size_t len, unsigned long long max, unsigned long long *out)
{
	unsigned long long v = 0;
	size_t i;

	if (len == 0)
		return -1;
	for (i = 0; i < len; i++) {
		unsigned d;

		if (!str_isdigit((unsigned char)s[i]))
			return -1;
		d = (unsigned)(s[i] - '0');
		if (v > (max - d) / 10)
			return -1;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

/* str_parse_unit - number followed by an optional unit from a table */
static int
str_parse_unit(const char *s, const char *const *units, const long long *mult,
    long long defmult, long long *out)
{
	size_t digits = 0, i;
	unsigned long long v;
	const char *unit;

	while (str_isdigit((unsigned char)s[digits]))
		digits++;
	if (str_parse_uint(s, digits, LLONG_MAX, &v) == -1)
		return -1;
	unit = s + digits;
	if (*unit == '\0') {
		if (v > (unsigned long long)(LLONG_MAX / defmult))
			return -1;
		*out = (long long)v * defmult;
		return 0;
	}
	for (i = 0; units[i] != NULL; i++) {
		if (str_casecmp(unit, units[i]) == 0) {
			if (v > (unsigned long long)(LLONG_MAX / mult[i]))
				return -1;
			*out = (long long)v * mult[i];
			return 0;
		}
	}
	return -1;
}

/* str_parse_time_ms - duration to milliseconds */
int
str_parse_time_ms(const char *s, long long *ms)
{
	static const char *const units[] = {"ms", "s", "m", "h", "d", NULL};
	static const long long mult[] = {1, 1000, 60000, 3600000, 86400000};

	return str_parse_unit(s, units, mult, 1000, ms);
}

/* str_parse_size - size to bytes */
int
str_parse_size(const char *s, long long *bytes)
{
	static const char *const units[] = {"b", "k", "m", "g", NULL};
	static const long long mult[] = {1, 1024, 1048576, 1073741824};

	return str_parse_unit(s, units, mult, 1, bytes);
}

/* str_parse_bool - boolean words */
int
str_parse_bool(const char *s, bool *out)
{
	static const char *const yes[] = {"yes", "true", "on", "1", NULL};
	static const char *const no[] = {"no", "false", "off", "0", NULL};
	int i;

	for (i = 0; yes[i] != NULL; i++)
		if (str_casecmp(s, yes[i]) == 0) {
			*out = true;
			return 0;
		}
	for (i = 0; no[i] != NULL; i++)
		if (str_casecmp(s, no[i]) == 0) {
			*out = false;
			return 0;
		}
	return -1;
}
