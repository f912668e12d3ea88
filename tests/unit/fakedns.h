/*
 * fakedns.h - a small authoritative DNS server on 127.0.0.1 for dns.c's
 * unit tests: UDP only, records from a table, and per-name behaviours
 * (rcode, delay, no answer). Not for the integration suite, which has a
 * full server (tests/integration/dns_server.py).
 */
#ifndef AG_FAKEDNS_H
#define AG_FAKEDNS_H

#include <stdbool.h>

struct fakedns;

struct fakedns *fakedns_start(void);
int fakedns_port(const struct fakedns *);

/* fakedns_add - record: TXT "a|b" (two strings), A "1.2.3.4",
 * AAAA "2001:db8::1", MX "10 mx.example", PTR "host.example" */
void fakedns_add(struct fakedns *, const char *name, int type, const char *data,
    unsigned ttl);

/* fakedns_behave - rcode to answer with (-1: normal), delay, no answer */
void fakedns_behave(
    struct fakedns *, const char *name, int rcode, int delay_ms, bool drop);

/* fakedns_count - queries seen for name (any type) */
unsigned fakedns_count(struct fakedns *, const char *name);

void fakedns_stop(struct fakedns *);

#endif
