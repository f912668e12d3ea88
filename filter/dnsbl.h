/*
 * dnsbl.h - network reputation for the rules check: DNSBL lookups of the
 * client address, URIBL lookups of the host names in the body, and the
 * client's reverse DNS (PTR, and forward confirmation), all through
 * dns.c. A helper of rules.c (as keys.c is of the DKIM checks), not a
 * check of its own: rules.c calls it at each stage.
 *
 * Client lookups start at CONNECT and are kept on the connection, so
 * every message of a connection shares them; URIBL lookups start while
 * the body streams, as the MIME walk finds host names. Nothing is looked
 * up for a client in internal_hosts. dnsbl_collect waits for what is
 * still missing (each query's own deadline bounds the wait) and marks
 * the hits. A DNS failure is never a hit and never an error: a list
 * that cannot be asked simply does not score.
 */
#ifndef AG_DNSBL_H
#define AG_DNSBL_H

#include <stdbool.h>
#include <stddef.h>

struct conn;
struct msg;
struct mime_uri;
struct ruleset;

/* Names a URIBL is asked about, per message: for each URI host (without
 * "www."), the host and its last two and three labels (a list holds
 * registered domains, and we keep no public-suffix list). */
#define DNSBL_MAX_NAMES 24

/* dnsbl_conn_start - the client's lookups (PTR when rdns; one per dnsbl
 * rule); kept on the connection. */
void dnsbl_conn_start(struct conn *, const struct ruleset *, bool rdns);

/* dnsbl_uri_start - URIBL lookups for URIs from the list not yet seen
 * (call as the body streams; cheap when nothing is new). */
void dnsbl_uri_start(
    struct msg *, const struct ruleset *, const struct mime_uri *uris);

/* dnsbl_advance - start what the answers in so far make possible (the
 * PTR names' address lookups), never waiting */
void dnsbl_advance(struct msg *);

/* dnsbl_collect - wait for the answers and set hits[i] = 1 for each
 * dnsbl/uribl rule i that is listed; the rDNS facts into the conn. */
void dnsbl_collect(struct msg *, const struct ruleset *, unsigned char *hits);

/* dnsbl_reverse - the query name of an address in a zone: IPv4 octets
 * reversed, IPv6 nibbles reversed (RFC 5782 2.1, 2.4). family 4 reads
 * a[12..15], 6 reads a[0..15]. -1 when out is too small. */
int dnsbl_reverse(const unsigned char a[16], int family, const char *zone,
    char *out, size_t outlen);

#endif
