/*
 * checks.h - the interface every check implements, and THE table.
 *
 * A check is a record of optional callbacks, called in table order at each
 * stage. load/unload build and free long-lived data in a snapshot (compiled
 * rules, keys) and may refuse a configuration (-1 with a message in err).
 * Stage callbacks write results into typed fields of struct msg and into
 * the A-R list; they start DNS queries as early as their input is known
 * and collect them at eom. They return 0, or -1 for an internal error
 * (which they have recorded with msg_error). They never decide the
 * message's fate: policy.c does; on_verdict sees what it decided.
 */
#ifndef AG_CHECKS_H
#define AG_CHECKS_H

#include <stddef.h>

struct buf;
struct conn;
struct hdr;
struct msg;
struct snapshot;

struct check {
	const char *name;
	int (*load)(struct snapshot *, struct buf *err);
	void (*unload)(struct snapshot *);
	int (*on_connect)(struct conn *);
	int (*on_mail)(struct msg *);
	int (*on_header)(struct msg *, const struct hdr *);
	int (*on_eoh)(struct msg *);
	int (*on_body)(struct msg *, const unsigned char *, size_t);
	/* the whole message is in: start the lookups it tells of, never
	 * waiting (every check's runs before the first on_eom waits) */
	int (*on_body_end)(struct msg *);
	int (*on_eom)(struct msg *);
	/* after policy.c decided: record what was done (never changes it) */
	void (*on_verdict)(struct msg *);
};

/* The daemon's checks in stage order, NULL-terminated (checks.c). */
extern const struct check *const checks_table[];

#endif
