/*
 * cidr.h - IPv4/IPv6 prefix sets (internal_hosts, DNSBL answers).
 *
 * Every address is held as 16 bytes: IPv4 as IPv4-mapped IPv6
 * (::ffff:a.b.c.d) with the prefix length raised by 96, so an IPv4 client
 * seen by the MTA as ::ffff:192.0.2.1 matches 192.0.2.0/24, and ::/0 covers
 * every address while 0.0.0.0/0 covers only IPv4. A set is immutable after
 * parsing and may be read by any number of threads.
 */
#ifndef AG_CIDR_H
#define AG_CIDR_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;
struct cidr_set;

/*
 * cidr_addr_parse - parse an IPv4 or IPv6 address (an "IPv6:" prefix as
 * the MTAs send it is accepted) into 16 bytes. Returns 4 or 6 (the family
 * written), -1 when s is not an address.
 */
int cidr_addr_parse(const char *s, unsigned char out[16]);

/* cidr_addr_from_sa - same from a socket address; -1 if not inet/inet6. */
int cidr_addr_from_sa(const struct sockaddr *, unsigned char out[16]);

/*
 * cidr_hostport_parse - "192.0.2.1:9894" or "[2001:db8::1]:9894" (a
 * numeric address and a port 1..65535) into a socket address; -1 when
 * it is not one.
 */
struct sockaddr_storage;
int cidr_hostport_parse(const char *s, struct sockaddr_storage *ss);

/*
 * cidr_addr_format - print 16 bytes as text: IPv4-mapped addresses in
 * dotted quad, others in RFC 5952 form. out must hold 46 bytes.
 */
const char *cidr_addr_format(
    const unsigned char a[16], char *out, size_t outlen);

/*
 * cidr_set_parse - parse a list of "addr" or "addr/len" entries separated
 * by commas and/or white space. On error returns NULL and writes a
 * message naming the bad entry into err.
 */
struct cidr_set *cidr_set_parse(const char *list, char *err, size_t errlen);

/* cidr_set_match - does the set contain this 16-byte address? */
bool cidr_set_match(const struct cidr_set *, const unsigned char a[16]);

/* cidr_set_match_str - same for an address in text form (false if bad). */
bool cidr_set_match_str(const struct cidr_set *, const char *);

/* cidr_set_count - number of entries. */
size_t cidr_set_count(const struct cidr_set *);

void cidr_set_free(struct cidr_set *);

#endif
