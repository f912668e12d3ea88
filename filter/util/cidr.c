/*
 * cidr.c - IPv4/IPv6 prefix sets (see cidr.h).
 */
#include <sys/socket.h>
#include <netinet/in.h>
#include <arpa/inet.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "util/cidr.h"
#include "util/str.h"
#include "util/xalloc.h"

struct cidr_entry {
	unsigned char addr[16];
	unsigned prefix; /* 0..128, in the 16-byte space */
};

struct cidr_set {
	size_t n;
	struct cidr_entry *v;
};

static const unsigned char cidr_v4mapped[12] = {
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

/* cidr_addr_parse - text address to 16 bytes */
int
cidr_addr_parse(const char *s, unsigned char out[16])
{
	struct in_addr a4;
	struct in6_addr a6;

	if (str_ncaseeq(s, "IPv6:", 5))
		s += 5;
	if (inet_pton(AF_INET, s, &a4) == 1) {
		memcpy(out, cidr_v4mapped, 12);
		memcpy(out + 12, &a4, 4);
		return 4;
	}
	if (inet_pton(AF_INET6, s, &a6) == 1) {
		memcpy(out, &a6, 16);
		return memcmp(out, cidr_v4mapped, 12) == 0 ? 4 : 6;
	}
	return -1;
}

/* cidr_addr_from_sa - socket address to 16 bytes */
int
cidr_addr_from_sa(const struct sockaddr *sa, unsigned char out[16])
{
	if (sa == NULL)
		return -1;
	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const struct sockaddr_in *)sa;

		memcpy(out, cidr_v4mapped, 12);
		memcpy(out + 12, &s4->sin_addr, 4);
		return 4;
	}
	if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)sa;

		memcpy(out, &s6->sin6_addr, 16);
		return memcmp(out, cidr_v4mapped, 12) == 0 ? 4 : 6;
	}
	return -1;
}

/* cidr_addr_format - 16 bytes to text */
const char *
cidr_addr_format(const unsigned char a[16], char *out, size_t outlen)
{
	if (memcmp(a, cidr_v4mapped, 12) == 0)
		return inet_ntop(AF_INET, a + 12, out, (socklen_t)outlen);
	return inet_ntop(AF_INET6, a, out, (socklen_t)outlen);
}

/* cidr_entry_parse - one "addr[/len]" entry */
static int
cidr_entry_parse(const char *s, struct cidr_entry *e)
{
	char tmp[INET6_ADDRSTRLEN + 8];
	const char *slash;
	unsigned long long len;
	size_t alen;
	int fam, i, maxlen;

	slash = strchr(s, '/');
	alen = slash ? (size_t)(slash - s) : strlen(s);
	if (alen == 0 || alen >= sizeof(tmp))
		return -1;
	memcpy(tmp, s, alen);
	tmp[alen] = '\0';
	if ((fam = cidr_addr_parse(tmp, e->addr)) == -1)
		return -1;
	/* An IPv6 literal of an IPv4-mapped address keeps IPv6 prefix rules */
	maxlen = (fam == 4 && strchr(tmp, ':') == NULL) ? 32 : 128;
	if (slash == NULL) {
		e->prefix = 128;
		return 0;
	}
	/* Leading zeros are refused: "/024" is more likely a typo. */
	if (slash[1] == '0' && slash[2] != '\0')
		return -1;
	if (str_parse_uint(
		slash + 1, strlen(slash + 1), (unsigned)maxlen, &len) == -1)
		return -1;
	e->prefix = (unsigned)len + (maxlen == 32 ? 96 : 0);
	/* Host bits must be zero: 192.0.2.1/24 is a configuration mistake. */
	for (i = (int)e->prefix; i < 128; i++)
		if (e->addr[i / 8] & (0x80 >> (i % 8)))
			return -2;
	return 0;
}

/* cidr_set_parse - list of entries */
struct cidr_set *
cidr_set_parse(const char *list, char *err, size_t errlen)
{
	struct cidr_set *set = xcalloc(1, sizeof(*set));
	const char *p = list;
	char tok[INET6_ADDRSTRLEN + 8];

	while (*p) {
		size_t n = 0;
		int rc;

		while (*p == ',' || str_isspace((unsigned char)*p))
			p++;
		if (*p == '\0')
			break;
		while (p[n] && p[n] != ',' && !str_isspace((unsigned char)p[n]))
			n++;
		if (n >= sizeof(tok)) {
			snprintf(err, errlen, "bad address '%.*s'", (int)n, p);
			cidr_set_free(set);
			return NULL;
		}
		memcpy(tok, p, n);
		tok[n] = '\0';
		set->v = xreallocarray(set->v, set->n + 1, sizeof(*set->v));
		if ((rc = cidr_entry_parse(tok, &set->v[set->n])) != 0) {
			snprintf(err, errlen,
			    rc == -2 ? "'%s' has host bits set past its prefix"
				     : "bad address or prefix '%s'",
			    tok);
			cidr_set_free(set);
			return NULL;
		}
		set->n++;
		p += n;
	}
	return set;
}

/* cidr_entry_match - does a fall in e? */
static bool
cidr_entry_match(const struct cidr_entry *e, const unsigned char a[16])
{
	unsigned full = e->prefix / 8, rest = e->prefix % 8;

	if (memcmp(e->addr, a, full) != 0)
		return false;
	if (rest == 0)
		return true;
	return ((e->addr[full] ^ a[full]) & (0xff00 >> rest)) == 0;
}

/* cidr_set_match - membership */
bool
cidr_set_match(const struct cidr_set *set, const unsigned char a[16])
{
	size_t i;

	if (set == NULL)
		return false;
	for (i = 0; i < set->n; i++)
		if (cidr_entry_match(&set->v[i], a))
			return true;
	return false;
}

/* cidr_set_match_str - membership of a text address */
bool
cidr_set_match_str(const struct cidr_set *set, const char *s)
{
	unsigned char a[16];

	if (cidr_addr_parse(s, a) == -1)
		return false;
	return cidr_set_match(set, a);
}

/* cidr_set_count - entries */
size_t
cidr_set_count(const struct cidr_set *set)
{
	return set ? set->n : 0;
}

/* cidr_set_free - release */
void
cidr_set_free(struct cidr_set *set)
{
	if (set == NULL)
		return;
	free(set->v);
	free(set);
}

int
cidr_hostport_parse(const char *s, struct sockaddr_storage *ss)
{
	char host[64];
	const char *colon, *p;
	unsigned long port = 0;
	size_t n;

	memset(ss, 0, sizeof(*ss));
	if (s[0] == '[') {
		const char *close = strchr(s, ']');

		if (close == NULL || close[1] != ':')
			return -1;
		s++;
		n = (size_t)(close - s);
		colon = close + 1;
	} else {
		if ((colon = strrchr(s, ':')) == NULL)
			return -1;
		n = (size_t)(colon - s);
	}
	if (n == 0 || n >= sizeof(host) || colon[1] == '\0')
		return -1;
	memcpy(host, s, n);
	host[n] = '\0';
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || port > 65535)
			return -1;
		port = port * 10 + (unsigned long)(*p - '0');
	}
	if (port == 0 || port > 65535)
		return -1;
	if (inet_pton(AF_INET, host, &((struct sockaddr_in *)ss)->sin_addr) ==
	    1) {
		((struct sockaddr_in *)ss)->sin_family = AF_INET;
		((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
		return 0;
	}
	if (inet_pton(
		AF_INET6, host, &((struct sockaddr_in6 *)ss)->sin6_addr) == 1) {
		((struct sockaddr_in6 *)ss)->sin6_family = AF_INET6;
		((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
		return 0;
	}
	return -1;
}
