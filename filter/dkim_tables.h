/*
 * dkim_tables.h - OpenDKIM's KeyTable and SigningTable, so an OpenDKIM
 * setup moves over unchanged.
 *
 * KeyTable lines: "keyname domain:selector:/path/to/key". SigningTable
 * lines: "pattern keyname"; with "refile:" before the table's path the
 * patterns are globs on the From: address ("*@example.com"), otherwise
 * they are looked up as the address, its domain, the parent domains as
 * ".example.com", then "*". Every matching line signs (an RSA and an
 * Ed25519 key for one domain give two signatures). Keys are loaded and
 * checked (keys.h) when the tables are; any problem refuses the tables
 * with "file:line: message". Immutable after loading; any thread.
 */
#ifndef AG_DKIM_TABLES_H
#define AG_DKIM_TABLES_H

#include <stddef.h>

struct buf;
struct ag_key;
struct dkimt;

#define AG_DKIM_MAX_SIGN 4 /* signatures one message may get */

/* dkimt_load - both tables; NULL with messages appended to err. */
struct dkimt *dkimt_load(const char *key_table, const char *signing_table,
    int min_rsa_bits, struct buf *err);

void dkimt_free(struct dkimt *);

/*
 * dkimt_match - the keys to sign mail from local@domain with, in
 * table order, no key twice; at most max. Returns how many.
 */
size_t dkimt_match(const struct dkimt *, const char *local, const char *domain,
    const struct ag_key **out, size_t max);

/* dkimt_nkeys - keys in the KeyTable (for logs). */
size_t dkimt_nkeys(const struct dkimt *);

#endif
