/*
 * snapshot.h - everything long-lived that a message reads, in one object.
 *
 * A snapshot holds the configuration, the resolver and the data each check
 * builds from the configuration (compiled rules, loaded keys). It is
 * immutable once installed and reference-counted: a connection pins the
 * current snapshot at connect and releases it at close, so a reload
 * (SIGHUP) never changes anything under a message in flight. Building a
 * snapshot runs every check's load hook; any failure leaves the old
 * snapshot in force. Thread-safe.
 */
#ifndef AG_SNAPSHOT_H
#define AG_SNAPSHOT_H

#include <stdatomic.h>

struct buf;
struct check;
struct config;
struct dns;
struct dkimv_lib;
struct dkims_lib;
struct dhist;
struct ruleset;

struct snapshot {
	atomic_int refs;
	unsigned long generation;
	struct config *cfg;
	struct dns *dns;
	const struct check *const *checks; /* NULL-terminated, stage order */
	struct dkimv_lib *dkimv; /* dkim_verify.c: libopendkim for verifying */
	struct dkims_lib *dkims; /* dkim_sign.c: tables, keys, signing lib */
	struct dhist *dhist;	 /* dmarc.c: the report history, if any */
	struct ruleset *rules;	 /* rules.c: the compiled rule set */
};

/*
 * snapshot_build - make a snapshot owning cfg (freed with the snapshot,
 * or at once on failure). prev, if given, lends its resolver when the DNS
 * settings are unchanged (keeping its cache). checks NULL means the
 * daemon's table (checks.c). Returns NULL with messages in err.
 */
struct snapshot *snapshot_build(struct config *cfg, const struct snapshot *prev,
    const struct check *const *checks, struct buf *err);

/* snapshot_install - make s current (takes over the caller's reference). */
void snapshot_install(struct snapshot *s);

/* snapshot_acquire - pin the current snapshot (NULL before install). */
struct snapshot *snapshot_acquire(void);

/* snapshot_release - unpin; the last release frees it. NULL is a no-op. */
void snapshot_release(struct snapshot *s);

/* snapshot_shutdown - drop the current one (at exit). */
void snapshot_shutdown(void);

#endif
