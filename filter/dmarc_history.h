/*
 * dmarc_history.h - the store of DMARC evaluations that aggregate reports
 * (RFC 9990) are built from.
 *
 * Two backends behind one interface: SQLite on the local disk
 * ("sqlite:/var/lib/authgate/dmarc.db", WAL mode), or a PostgreSQL server
 * shared by every MX host of a site ("postgresql://user@host/db", libpq),
 * so that a fleet sends one report per domain and period, not one per
 * host. The schema is created when missing.
 *
 * Writing (the daemon): dhist_record() copies the row into a bounded
 * queue and returns at once; a writer thread inserts batches in one
 * transaction. A full queue, or a store that is down, drops rows and
 * counts them: a milter thread never waits for the disk or the network.
 *
 * Reading (authgate-reports): the domains and periods not reported yet,
 * the rows of one, and marking what was sent. Times are Unix seconds.
 */
#ifndef AG_DMARC_HISTORY_H
#define AG_DMARC_HISTORY_H

#include <stdbool.h>
#include <stddef.h>

/* One evaluation, as a report row needs it. Strings are "" when absent. */
struct dhist_row {
	long long t;
	char host[64];		 /* the MX host that evaluated it */
	char policy_domain[254]; /* where the applied record was */
	char header_from[254];
	char source_ip[46];
	char envelope_from[254]; /* the SPF domain (HELO for <>) */
	char envelope_to[254];	 /* the first recipient's domain */
	/* policy_published */
	char p[12], sp[12], np[12];
	char adkim[2], aspf[2], testing[2];
	char fo[32];
	char rua[512]; /* the record's valid rua URIs, comma-separated */
	/* policy_evaluated */
	char disposition[12]; /* none, pass, quarantine, reject */
	bool dkim_aligned, spf_aligned;
	char reason_type[24]; /* RFC 9990 3.1.6 override type, or "" */
	char reason_comment[128];
	/* auth_results */
	char spf_domain[254];
	char spf_result[12];
	char dkim[1024]; /* "domain selector result" per signature, ';' */
};

struct dhist;

/*
 * dhist_open - a store for uri ("sqlite:PATH" or "postgresql://..."),
 * its schema created. writer: start the writer thread with a queue of
 * queue_max rows (the daemon); without it only the reading calls work.
 * NULL with a reason in err.
 */
struct dhist *dhist_open(
    const char *uri, bool writer, size_t queue_max, char *err, size_t errlen);

/*
 * dhist_acquire, dhist_release - the daemon's writing store for uri,
 * shared: a reload whose dmarc_history did not change keeps the same
 * store (and its queue); the last release closes it.
 */
struct dhist *dhist_acquire(
    const char *uri, size_t queue_max, char *err, size_t errlen);
void dhist_release(struct dhist *);

/* dhist_uri - the uri it was opened with */
const char *dhist_uri(const struct dhist *);

/* dhist_record - queue a copy of the row; false when it was dropped */
bool dhist_record(struct dhist *, const struct dhist_row *);

/* dhist_stats - rows written and dropped since dhist_open */
void dhist_stats(
    struct dhist *, unsigned long long *written, unsigned long long *dropped);

/* dhist_flush - wait until the queue is empty (tests, shutdown) */
void dhist_flush(struct dhist *);

/* dhist_close - write what is queued, stop the writer, close */
void dhist_close(struct dhist *);

/* ---- reading ---------------------------------------------------------- */

struct dhist_period {
	char policy_domain[254];
	long long begin, end; /* a UTC day: begin 00:00:00, end 23:59:59 */
};

/*
 * dhist_pending - the (policy domain, UTC day) pairs with rows that end
 * before `before` and are not done (listed until dhist_mark_done(), which
 * authgate-reports calls once every destination was sent to or refused).
 * Returns how many went into out (at most max), -1 with err.
 */
int dhist_pending(struct dhist *, long long before, struct dhist_period *out,
    size_t max, char *err, size_t errlen);

/*
 * dhist_rows - call fn for each row of policy_domain within [begin, end],
 * oldest first. Returns 0, or -1 with err.
 */
int dhist_rows(struct dhist *, const char *policy_domain, long long begin,
    long long end, int (*fn)(void *arg, const struct dhist_row *), void *arg,
    char *err, size_t errlen);

/* dhist_sent - was the period already sent to destination? -1 on error */
int dhist_sent(struct dhist *, const struct dhist_period *,
    const char *destination, char *err, size_t errlen);

/* dhist_mark_sent - remember a report sent (report_id, now); -1 on error */
int dhist_mark_sent(struct dhist *, const struct dhist_period *,
    const char *destination, const char *report_id, char *err, size_t errlen);

/* dhist_mark_done - the period needs no more sending (all destinations
 * sent, or none is allowed); -1 on error */
int dhist_mark_done(
    struct dhist *, const struct dhist_period *, char *err, size_t errlen);

/* dhist_prune - delete every row older than `before` (dmarc_history_keep:
 * reported long ago, or given up on); how many, or -1 */
long long dhist_prune(
    struct dhist *, long long before, char *err, size_t errlen);

/* dhist_try_lock - take the lock one authgate-reports run holds over the
 * history (all hosts of a shared PostgreSQL one): 1 taken, 0 another run
 * holds it, -1 error. Released by dhist_close. */
int dhist_try_lock(struct dhist *, char *err, size_t errlen);

#endif
