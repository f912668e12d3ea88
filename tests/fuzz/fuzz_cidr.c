/*
 * fuzz_cidr.c - libFuzzer target: address and prefix sets (util/cidr.c).
 *
 * The input, as a C string, is parsed as an internal_hosts list with
 * cidr_set_parse(); then every word of it (split on commas, white space
 * and '/') is tried as an address with cidr_addr_parse(), formatted,
 * matched against the set by bytes, by text and through a sockaddr.
 * Asserts, beyond "no crash, no leak":
 *   - a failed parse leaves a message; a successful one holds exactly as
 *     many entries as the list has words (comma/space separated);
 *   - every entry's own address is in the set, and so is that address
 *     with its last host bit flipped when the prefix leaves host bits;
 *   - cidr_addr_format round trip: parse(format(a)) == a, same family;
 *   - cidr_set_match (bytes), cidr_set_match_str (text) and the
 *     cidr_addr_from_sa path (sockaddr_in/in6) agree on every address;
 *   - an IPv4 address (family 4) is the IPv4-mapped form ::ffff:a.b.c.d.
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cidr.h"
#include "util/str.h"
#include "fuzz_common.h"

static const unsigned char v4mapped[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	fuzz_quiet_logs();
	return 0;
}

/* is_sep - list separators of cidr_set_parse */
static bool
is_sep(int c)
{
	return c == ',' || str_isspace(c);
}

/* check_addr - one word tried as an address */
static void
check_addr(const struct cidr_set *set, const char *w)
{
	unsigned char a[16], b[16];
	char text[64];
	struct sockaddr_in s4;
	struct sockaddr_in6 s6;
	int fam = cidr_addr_parse(w, a), fam2, fam3;
	bool m;

	if (fam == -1)
		return;
	FUZZ_CHECK(fam == 4 || fam == 6, "family %d for '%s'", fam, w);
	FUZZ_CHECK((fam == 4) == (memcmp(a, v4mapped, 12) == 0),
	    "family %d but bytes %s IPv4-mapped for '%s'", fam,
	    fam == 4 ? "not" : "", w);
	FUZZ_CHECK(
	    cidr_addr_format(a, text, 46) != NULL, "cannot format '%s'", w);
	fam2 = cidr_addr_parse(text, b);
	FUZZ_CHECK(fam2 == fam && memcmp(a, b, 16) == 0,
	    "round trip '%s' -> '%s' -> family %d, bytes %s", w, text, fam2,
	    memcmp(a, b, 16) == 0 ? "same" : "differ");

	m = cidr_set_match(set, a);
	FUZZ_CHECK(cidr_set_match_str(set, w) == m,
	    "match by text and by bytes differ for '%s'", w);
	if (fam == 4) {
		memset(&s4, 0, sizeof(s4));
		s4.sin_family = AF_INET;
		memcpy(&s4.sin_addr, a + 12, 4);
		fam3 = cidr_addr_from_sa((struct sockaddr *)&s4, b);
	} else {
		memset(&s6, 0, sizeof(s6));
		s6.sin6_family = AF_INET6;
		memcpy(&s6.sin6_addr, a, 16);
		fam3 = cidr_addr_from_sa((struct sockaddr *)&s6, b);
	}
	FUZZ_CHECK(fam3 == fam && memcmp(a, b, 16) == 0,
	    "sockaddr path differs for '%s'", w);
	FUZZ_CHECK(cidr_set_match(set, b) == m,
	    "match through sockaddr differs for '%s'", w);
}

/* check_entry - "addr[/len]" of a parsed set is inside the set */
static void
check_entry(const struct cidr_set *set, const char *tok)
{
	const char *slash = strchr(tok, '/');
	char addr[64];
	unsigned char a[16];
	size_t alen = slash ? (size_t)(slash - tok) : strlen(tok);
	unsigned prefix = 128;
	int fam;

	FUZZ_CHECK(
	    alen < sizeof(addr), "entry '%s' too long but accepted", tok);
	memcpy(addr, tok, alen);
	addr[alen] = '\0';
	fam = cidr_addr_parse(addr, a);
	FUZZ_CHECK(fam != -1, "entry '%s' accepted, address refused", tok);
	FUZZ_CHECK(
	    cidr_set_match(set, a), "entry '%s' not in its own set", tok);
	if (slash != NULL) {
		prefix = (unsigned)strtoul(slash + 1, NULL, 10);
		if (fam == 4 && strchr(addr, ':') == NULL)
			prefix += 96;
	}
	FUZZ_CHECK(
	    prefix <= 128, "entry '%s': prefix %u accepted", tok, prefix);
	if (prefix < 128) {
		a[15] ^= 1;
		FUZZ_CHECK(cidr_set_match(set, a),
		    "entry '%s': a host inside the prefix does not match", tok);
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *s = strndup((const char *)data, size), err[256];
	struct cidr_set *set;
	size_t i, n, nwords = 0;

	if (s == NULL)
		abort();
	err[0] = '\0';
	set = cidr_set_parse(s, err, sizeof(err));
	if (set == NULL)
		FUZZ_CHECK(err[0] != '\0', "cidr_set_parse failed silently");

	/* List words (entries) and address words. */
	for (i = 0; s[i];) {
		char tok[256];

		while (s[i] && is_sep((unsigned char)s[i]))
			i++;
		if (s[i] == '\0')
			break;
		for (n = 0; s[i + n] && !is_sep((unsigned char)s[i + n]); n++)
			;
		nwords++;
		if (set != NULL && n < sizeof(tok)) {
			memcpy(tok, s + i, n);
			tok[n] = '\0';
			check_entry(set, tok);
		}
		i += n;
	}
	if (set != NULL)
		FUZZ_CHECK(cidr_set_count(set) == nwords,
		    "%zu entries from %zu words", cidr_set_count(set), nwords);
	for (i = 0; s[i];) {
		char tok[256];

		while (s[i] && (is_sep((unsigned char)s[i]) || s[i] == '/'))
			i++;
		for (n = 0; s[i + n] && !is_sep((unsigned char)s[i + n]) &&
		     s[i + n] != '/';
		     n++)
			;
		if (n == 0)
			break;
		if (n < sizeof(tok)) {
			memcpy(tok, s + i, n);
			tok[n] = '\0';
			check_addr(set, tok);
		}
		i += n;
	}
	cidr_set_free(set);
	free(s);
	return 0;
}
