/*
 * dmarc_history.c - the store of DMARC evaluations (see dmarc_history.h).
 *
 * SQL is written once with '?' placeholders; the PostgreSQL backend turns
 * them into $1, $2, ... Every value goes as text (PostgreSQL casts it by
 * the column type), so the two backends share every statement.
 */
#include <sys/file.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <sqlite3.h>

#include "util/buf.h"
#include "util/xalloc.h"
#include "log.h"
#include "dmarc_history.h"

#define DHIST_BATCH  256 /* rows per transaction */
#define DHIST_PARAMS 24	 /* most parameters of one statement */
#define DHIST_RETRY  30	 /* seconds between reconnections (PostgreSQL) */

static const char *const dhist_schema[] = {
    "CREATE TABLE IF NOT EXISTS dmarc_eval ("
    " t BIGINT NOT NULL, host TEXT NOT NULL, policy_domain TEXT NOT NULL,"
    " header_from TEXT NOT NULL, source_ip TEXT NOT NULL,"
    " envelope_from TEXT NOT NULL, envelope_to TEXT NOT NULL,"
    " p TEXT NOT NULL, sp TEXT NOT NULL, np TEXT NOT NULL,"
    " adkim TEXT NOT NULL, aspf TEXT NOT NULL, testing TEXT NOT NULL,"
    " fo TEXT NOT NULL, rua TEXT NOT NULL, disposition TEXT NOT NULL,"
    " dkim_aligned INTEGER NOT NULL, spf_aligned INTEGER NOT NULL,"
    " reason_type TEXT NOT NULL, reason_comment TEXT NOT NULL,"
    " spf_domain TEXT NOT NULL, spf_result TEXT NOT NULL,"
    " dkim TEXT NOT NULL)",
    "CREATE INDEX IF NOT EXISTS dmarc_eval_domain_t"
    " ON dmarc_eval (policy_domain, t)",
    "CREATE TABLE IF NOT EXISTS dmarc_sent ("
    " policy_domain TEXT NOT NULL, begin_t BIGINT NOT NULL,"
    " destination TEXT NOT NULL, report_id TEXT NOT NULL,"
    " sent_at BIGINT NOT NULL,"
    " PRIMARY KEY (policy_domain, begin_t, destination))",
    "CREATE TABLE IF NOT EXISTS dmarc_done ("
    " policy_domain TEXT NOT NULL, begin_t BIGINT NOT NULL,"
    " done_at BIGINT NOT NULL, PRIMARY KEY (policy_domain, begin_t))",
    NULL,
};

static const char dhist_insert_sql[] =
    "INSERT INTO dmarc_eval (t, host, policy_domain, header_from,"
    " source_ip, envelope_from, envelope_to, p, sp, np, adkim, aspf,"
    " testing, fo, rua, disposition, dkim_aligned, spf_aligned,"
    " reason_type, reason_comment, spf_domain, spf_result, dkim)"
    " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?,"
    " ?, ?, ?)";

static const char dhist_select_sql[] =
    "SELECT t, host, policy_domain, header_from, source_ip, envelope_from,"
    " envelope_to, p, sp, np, adkim, aspf, testing, fo, rua, disposition,"
    " dkim_aligned, spf_aligned, reason_type, reason_comment, spf_domain,"
    " spf_result, dkim FROM dmarc_eval"
    " WHERE policy_domain = ? AND t >= ? AND t <= ? ORDER BY t";

static const char dhist_pending_sql[] =
    "SELECT DISTINCT e.policy_domain, e.t - (e.t % 86400) AS day"
    " FROM dmarc_eval e WHERE e.t < ? AND NOT EXISTS (SELECT 1 FROM"
    " dmarc_done d WHERE d.policy_domain = e.policy_domain AND"
    " d.begin_t = e.t - (e.t % 86400)) ORDER BY day, e.policy_domain";

struct dhist {
	char *uri;
	bool pg;
	sqlite3 *db;
	sqlite3_stmt *ins; /* dhist_insert_sql, prepared once (SQLite) */
	PGconn *conn;
	time_t next_try; /* PostgreSQL: when to reconnect */
	/* the writer */
	bool writer;
	pthread_t thread;
	pthread_mutex_t lock;
	pthread_cond_t wake, idle;
	struct dhist_row **q;
	size_t qmax, qhead, qlen;
	bool stop, busy;
	unsigned long long written, dropped;
	long long changes; /* rows the last statement changed */
	int lockfd;	   /* authgate-reports' run lock (SQLite) */
	/* acquire/release by URI */
	unsigned refs;
	struct dhist *next;
};

/* ---- one statement, either backend -------------------------------------- */

/* dhist_pg_sql - '?' placeholders as $1, $2, ... */
static char *
dhist_pg_sql(const char *sql)
{
	struct buf b = BUF_INIT;
	int n = 0;

	for (; *sql; sql++)
		if (*sql == '?')
			buf_addf(&b, "$%d", ++n);
		else
			buf_addch(&b, *sql);
	return buf_detach(&b, NULL);
}

/*
 * dhist_exec - run sql with text parameters; for each result row call
 * fn(arg, ncols, values). -1 with err on failure.
 */
static int
dhist_exec(struct dhist *h, const char *sql, const char *const *params,
    int nparams, int (*fn)(void *, int, const char *const *), void *arg,
    char *err, size_t errlen)
{
	int rc = 0, i;

	if (h->pg) {
		char *q = dhist_pg_sql(sql);
		PGresult *r = PQexecParams(
		    h->conn, q, nparams, NULL, params, NULL, NULL, 0);
		ExecStatusType st = PQresultStatus(r);

		free(q);
		h->changes = strtoll(PQcmdTuples(r), NULL, 10);
		if (st != PGRES_COMMAND_OK && st != PGRES_TUPLES_OK) {
			snprintf(err, errlen, "%s", PQerrorMessage(h->conn));
			PQclear(r);
			return -1;
		}
		for (i = 0; fn != NULL && i < PQntuples(r) && rc == 0; i++) {
			const char *v[DHIST_PARAMS];
			int c, nc = PQnfields(r);

			for (c = 0; c < nc && c < DHIST_PARAMS; c++)
				v[c] = PQgetvalue(r, i, c);
			rc = fn(arg, nc < DHIST_PARAMS ? nc : DHIST_PARAMS, v);
		}
		PQclear(r);
		return rc;
	} else {
		/* the writer's INSERT, once per row, is kept prepared */
		bool keep = sql == dhist_insert_sql;
		sqlite3_stmt *st = keep ? h->ins : NULL;
		int s;

		if (st == NULL &&
		    sqlite3_prepare_v3(h->db, sql, -1,
			keep ? SQLITE_PREPARE_PERSISTENT : 0, &st,
			NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s", sqlite3_errmsg(h->db));
			return -1;
		}
		if (keep)
			h->ins = st;
		for (i = 0; i < nparams; i++)
			sqlite3_bind_text(
			    st, i + 1, params[i], -1, SQLITE_STATIC);
		while ((s = sqlite3_step(st)) == SQLITE_ROW && rc == 0) {
			const char *v[DHIST_PARAMS];
			int c, nc = sqlite3_column_count(st);

			for (c = 0; c < nc && c < DHIST_PARAMS; c++) {
				v[c] = (const char *)sqlite3_column_text(st, c);
				if (v[c] == NULL)
					v[c] = "";
			}
			if (fn != NULL)
				rc = fn(arg,
				    nc < DHIST_PARAMS ? nc : DHIST_PARAMS, v);
		}
		if (s != SQLITE_DONE && s != SQLITE_ROW) {
			snprintf(err, errlen, "%s", sqlite3_errmsg(h->db));
			rc = -1;
		}
		h->changes = sqlite3_changes(h->db);
		if (keep) {
			sqlite3_reset(st);
			sqlite3_clear_bindings(st);
		} else
			sqlite3_finalize(st);
		return rc;
	}
}

/* dhist_connect - open the database and create the schema */
static int
dhist_connect(struct dhist *h, char *err, size_t errlen)
{
	size_t i;

	if (h->pg) {
		if (h->conn != NULL)
			PQfinish(h->conn);
		h->conn = PQconnectdb(h->uri);
		if (PQstatus(h->conn) != CONNECTION_OK) {
			snprintf(err, errlen, "%s: %s", h->uri,
			    PQerrorMessage(h->conn));
			PQfinish(h->conn);
			h->conn = NULL;
			return -1;
		}
		/* CREATE ... IF NOT EXISTS notices are not news */
		PQclear(PQexec(h->conn, "SET client_min_messages = warning"));
	} else {
		const char *path = h->uri + strlen("sqlite:");

		if (sqlite3_open_v2(path, &h->db,
			SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE |
			    SQLITE_OPEN_FULLMUTEX,
			NULL) != SQLITE_OK) {
			snprintf(err, errlen, "%s: %s", path,
			    h->db ? sqlite3_errmsg(h->db) : strerror(errno));
			sqlite3_close(h->db);
			h->db = NULL;
			return -1;
		}
		sqlite3_busy_timeout(h->db, 5000);
		if (dhist_exec(h, "PRAGMA journal_mode=WAL", NULL, 0, NULL,
			NULL, err, errlen) == -1)
			return -1;
	}
	/*
	 * PostgreSQL: CREATE ... IF NOT EXISTS races with another host doing
	 * the same at the same moment (a unique violation in pg_type), so
	 * the schema is made in one transaction under an advisory lock.
	 */
	if (h->pg &&
	    (dhist_exec(h, "BEGIN", NULL, 0, NULL, NULL, err, errlen) == -1 ||
		dhist_exec(h,
		    "SELECT pg_advisory_xact_lock(4702353480871379303)", NULL,
		    0, NULL, NULL, err, errlen) == -1))
		return -1;
	for (i = 0; dhist_schema[i] != NULL; i++)
		if (dhist_exec(h, dhist_schema[i], NULL, 0, NULL, NULL, err,
			errlen) == -1) {
			if (h->pg)
				PQclear(PQexec(h->conn, "ROLLBACK"));
			return -1;
		}
	if (h->pg &&
	    dhist_exec(h, "COMMIT", NULL, 0, NULL, NULL, err, errlen) == -1)
		return -1;
	return 0;
}

/* dhist_disconnect - forget a connection (also a half-made one) */
static void
dhist_disconnect(struct dhist *h)
{
	if (h->conn != NULL)
		PQfinish(h->conn);
	h->conn = NULL;
	sqlite3_finalize(h->ins);
	h->ins = NULL;
	if (h->db != NULL)
		sqlite3_close(h->db);
	h->db = NULL;
}

/* dhist_ready - connected, or reconnected now (PostgreSQL) */
static bool
dhist_ready(struct dhist *h)
{
	char err[512];

	if (!h->pg)
		return h->db != NULL;
	if (h->conn != NULL && PQstatus(h->conn) == CONNECTION_OK)
		return true;
	if (time(NULL) < h->next_try)
		return false;
	if (dhist_connect(h, err, sizeof(err)) == -1) {
		dhist_disconnect(h);
		log_err(
		    "dmarc history: %s (retrying in %d s)", err, DHIST_RETRY);
		h->next_try = time(NULL) + DHIST_RETRY;
		return false;
	}
	log_info("dmarc history: connected to %s", h->uri);
	return true;
}

/* ---- writing ------------------------------------------------------------ */

/* dhist_insert - one row */
static int
dhist_insert(
    struct dhist *h, const struct dhist_row *r, char *err, size_t errlen)
{
	char t[24], da[2], sa[2];
	const char *v[23];

	snprintf(t, sizeof(t), "%lld", r->t);
	da[0] = r->dkim_aligned ? '1' : '0';
	sa[0] = r->spf_aligned ? '1' : '0';
	da[1] = sa[1] = '\0';
	v[0] = t;
	v[1] = r->host;
	v[2] = r->policy_domain;
	v[3] = r->header_from;
	v[4] = r->source_ip;
	v[5] = r->envelope_from;
	v[6] = r->envelope_to;
	v[7] = r->p;
	v[8] = r->sp;
	v[9] = r->np;
	v[10] = r->adkim;
	v[11] = r->aspf;
	v[12] = r->testing;
	v[13] = r->fo;
	v[14] = r->rua;
	v[15] = r->disposition;
	v[16] = da;
	v[17] = sa;
	v[18] = r->reason_type;
	v[19] = r->reason_comment;
	v[20] = r->spf_domain;
	v[21] = r->spf_result;
	v[22] = r->dkim;
	return dhist_exec(h, dhist_insert_sql, v, 23, NULL, NULL, err, errlen);
}

/* dhist_write_batch - rows in one transaction; false if they were lost */
static bool
dhist_write_batch(struct dhist *h, struct dhist_row **rows, size_t n)
{
	char err[512] = "";
	size_t i;

	if (!dhist_ready(h))
		return false;
	if (dhist_exec(h, "BEGIN", NULL, 0, NULL, NULL, err, sizeof(err)) ==
	    0) {
		for (i = 0; i < n; i++)
			if (dhist_insert(h, rows[i], err, sizeof(err)) == -1)
				break;
		if (i == n &&
		    dhist_exec(h, "COMMIT", NULL, 0, NULL, NULL, err,
			sizeof(err)) == 0)
			return true;
		dhist_exec(h, "ROLLBACK", NULL, 0, NULL, NULL,
		    err + strlen(err), sizeof(err) - strlen(err));
	}
	log_err("dmarc history: %zu rows lost: %s", n, err);
	return false;
}

/* dhist_writer - the thread: take batches off the queue, write them */
static void *
dhist_writer(void *arg)
{
	struct dhist *h = arg;
	struct dhist_row *batch[DHIST_BATCH];
	size_t n, i;
	bool ok;

	pthread_mutex_lock(&h->lock);
	for (;;) {
		while (h->qlen == 0 && !h->stop)
			pthread_cond_wait(&h->wake, &h->lock);
		if (h->qlen == 0 && h->stop)
			break;
		for (n = 0; n < DHIST_BATCH && h->qlen > 0; n++) {
			batch[n] = h->q[h->qhead];
			h->qhead = (h->qhead + 1) % h->qmax;
			h->qlen--;
		}
		h->busy = true;
		pthread_mutex_unlock(&h->lock);
		ok = dhist_write_batch(h, batch, n);
		for (i = 0; i < n; i++)
			free(batch[i]);
		pthread_mutex_lock(&h->lock);
		h->busy = false;
		if (ok)
			h->written += n;
		else
			h->dropped += n;
		if (h->qlen == 0)
			pthread_cond_broadcast(&h->idle);
	}
	pthread_cond_broadcast(&h->idle);
	pthread_mutex_unlock(&h->lock);
	return NULL;
}

/* dhist_record - queue a copy (never blocks on the store) */
bool
dhist_record(struct dhist *h, const struct dhist_row *r)
{
	struct dhist_row *c;

	if (h == NULL || !h->writer)
		return false;
	pthread_mutex_lock(&h->lock);
	if (h->qlen == h->qmax || h->stop) {
		h->dropped++;
		pthread_mutex_unlock(&h->lock);
		return false;
	}
	pthread_mutex_unlock(&h->lock);
	c = xmalloc(sizeof(*c));
	*c = *r;
	pthread_mutex_lock(&h->lock);
	if (h->qlen == h->qmax || h->stop) {
		h->dropped++;
		pthread_mutex_unlock(&h->lock);
		free(c);
		return false;
	}
	h->q[(h->qhead + h->qlen) % h->qmax] = c;
	h->qlen++;
	pthread_cond_signal(&h->wake);
	pthread_mutex_unlock(&h->lock);
	return true;
}

/* dhist_flush - until the writer has nothing left */
void
dhist_flush(struct dhist *h)
{
	if (h == NULL || !h->writer)
		return;
	pthread_mutex_lock(&h->lock);
	while (h->qlen > 0 || h->busy)
		pthread_cond_wait(&h->idle, &h->lock);
	pthread_mutex_unlock(&h->lock);
}

/* dhist_stats - counters */
void
dhist_stats(
    struct dhist *h, unsigned long long *written, unsigned long long *dropped)
{
	pthread_mutex_lock(&h->lock);
	*written = h->written;
	*dropped = h->dropped;
	pthread_mutex_unlock(&h->lock);
}

/* ---- opening and closing ------------------------------------------------- */

/* dhist_open - parse the URI, connect, start the writer */
struct dhist *
dhist_open(
    const char *uri, bool writer, size_t queue_max, char *err, size_t errlen)
{
	struct dhist *h;

	if (strncmp(uri, "sqlite:", 7) != 0 &&
	    strncmp(uri, "postgresql://", 13) != 0 &&
	    strncmp(uri, "postgres://", 11) != 0) {
		snprintf(err, errlen,
		    "'%s': want sqlite:/path or "
		    "postgresql://...",
		    uri);
		return NULL;
	}
	if (strncmp(uri, "sqlite:", 7) == 0 && uri[7] != '/') {
		snprintf(
		    err, errlen, "'%s': the SQLite path must be absolute", uri);
		return NULL;
	}
	h = xcalloc(1, sizeof(*h));
	h->uri = xstrdup(uri);
	h->pg = strncmp(uri, "sqlite:", 7) != 0;
	pthread_mutex_init(&h->lock, NULL);
	pthread_cond_init(&h->wake, NULL);
	pthread_cond_init(&h->idle, NULL);
	h->lockfd = -1;
	if (dhist_connect(h, err, errlen) == -1) {
		dhist_close(h);
		return NULL;
	}
	if (writer) {
		h->qmax = queue_max > 0 ? queue_max : 1;
		h->q = xcalloc(h->qmax, sizeof(*h->q));
		if (pthread_create(&h->thread, NULL, dhist_writer, h) != 0) {
			snprintf(err, errlen, "cannot start the writer thread");
			dhist_close(h);
			return NULL;
		}
		h->writer = true;
	}
	return h;
}

static pthread_mutex_t dhist_shared_lock = PTHREAD_MUTEX_INITIALIZER;
static struct dhist *dhist_shared;

/* dhist_acquire - the daemon's store for uri, shared by snapshots */
struct dhist *
dhist_acquire(const char *uri, size_t queue_max, char *err, size_t errlen)
{
	struct dhist *h;

	pthread_mutex_lock(&dhist_shared_lock);
	for (h = dhist_shared; h != NULL; h = h->next)
		if (strcmp(h->uri, uri) == 0)
			break;
	if (h == NULL &&
	    (h = dhist_open(uri, true, queue_max, err, errlen)) != NULL) {
		h->next = dhist_shared;
		dhist_shared = h;
	}
	if (h != NULL)
		h->refs++;
	pthread_mutex_unlock(&dhist_shared_lock);
	return h;
}

/* dhist_release - the last snapshot using it closes it */
void
dhist_release(struct dhist *h)
{
	struct dhist **pp;

	if (h == NULL)
		return;
	pthread_mutex_lock(&dhist_shared_lock);
	if (--h->refs > 0) {
		pthread_mutex_unlock(&dhist_shared_lock);
		return;
	}
	for (pp = &dhist_shared; *pp != NULL; pp = &(*pp)->next)
		if (*pp == h) {
			*pp = h->next;
			break;
		}
	pthread_mutex_unlock(&dhist_shared_lock);
	dhist_close(h);
}

/* dhist_uri - as opened */
const char *
dhist_uri(const struct dhist *h)
{
	return h->uri;
}

/* dhist_close - drain, stop, close */
void
dhist_close(struct dhist *h)
{
	if (h == NULL)
		return;
	if (h->writer) {
		pthread_mutex_lock(&h->lock);
		h->stop = true;
		pthread_cond_signal(&h->wake);
		pthread_mutex_unlock(&h->lock);
		pthread_join(h->thread, NULL);
	}
	dhist_disconnect(h);
	if (h->lockfd >= 0)
		close(h->lockfd);
	pthread_mutex_destroy(&h->lock);
	pthread_cond_destroy(&h->wake);
	pthread_cond_destroy(&h->idle);
	free(h->q);
	free(h->uri);
	free(h);
}

/* ---- reading ------------------------------------------------------------ */

struct dhist_collect {
	struct dhist_period *out;
	size_t max, n;
};

/* dhist_pending_row - one (domain, day) */
static int
dhist_pending_row(void *arg, int nc, const char *const *v)
{
	struct dhist_collect *c = arg;
	struct dhist_period *p;

	if (nc < 2 || c->n >= c->max)
		return 0;
	p = &c->out[c->n++];
	snprintf(p->policy_domain, sizeof(p->policy_domain), "%s", v[0]);
	p->begin = strtoll(v[1], NULL, 10);
	p->end = p->begin + 86399;
	return 0;
}

/* dhist_pending - periods over and not done */
int
dhist_pending(struct dhist *h, long long before, struct dhist_period *out,
    size_t max, char *err, size_t errlen)
{
	struct dhist_collect c = {out, max, 0};
	char b[24];
	const char *v[1] = {b};

	/* a day is over when its end is before `before` */
	snprintf(b, sizeof(b), "%lld", before - (before % 86400));
	if (!dhist_ready(h)) {
		snprintf(err, errlen, "%s: not connected", h->uri);
		return -1;
	}
	if (dhist_exec(h, dhist_pending_sql, v, 1, dhist_pending_row, &c, err,
		errlen) == -1)
		return -1;
	return (int)c.n;
}

struct dhist_rows_arg {
	int (*fn)(void *, const struct dhist_row *);
	void *arg;
};

/* dhist_copy - a column into a row field */
static void
dhist_copy(char *dst, size_t len, const char *v)
{
	snprintf(dst, len, "%s", v ? v : "");
}

/* dhist_row_cb - a result row as a struct */
static int
dhist_row_cb(void *arg, int nc, const char *const *v)
{
	struct dhist_rows_arg *a = arg;
	struct dhist_row r;

	if (nc < 23)
		return -1;
	memset(&r, 0, sizeof(r));
	r.t = strtoll(v[0], NULL, 10);
	dhist_copy(r.host, sizeof(r.host), v[1]);
	dhist_copy(r.policy_domain, sizeof(r.policy_domain), v[2]);
	dhist_copy(r.header_from, sizeof(r.header_from), v[3]);
	dhist_copy(r.source_ip, sizeof(r.source_ip), v[4]);
	dhist_copy(r.envelope_from, sizeof(r.envelope_from), v[5]);
	dhist_copy(r.envelope_to, sizeof(r.envelope_to), v[6]);
	dhist_copy(r.p, sizeof(r.p), v[7]);
	dhist_copy(r.sp, sizeof(r.sp), v[8]);
	dhist_copy(r.np, sizeof(r.np), v[9]);
	dhist_copy(r.adkim, sizeof(r.adkim), v[10]);
	dhist_copy(r.aspf, sizeof(r.aspf), v[11]);
	dhist_copy(r.testing, sizeof(r.testing), v[12]);
	dhist_copy(r.fo, sizeof(r.fo), v[13]);
	dhist_copy(r.rua, sizeof(r.rua), v[14]);
	dhist_copy(r.disposition, sizeof(r.disposition), v[15]);
	r.dkim_aligned = v[16][0] == '1';
	r.spf_aligned = v[17][0] == '1';
	dhist_copy(r.reason_type, sizeof(r.reason_type), v[18]);
	dhist_copy(r.reason_comment, sizeof(r.reason_comment), v[19]);
	dhist_copy(r.spf_domain, sizeof(r.spf_domain), v[20]);
	dhist_copy(r.spf_result, sizeof(r.spf_result), v[21]);
	dhist_copy(r.dkim, sizeof(r.dkim), v[22]);
	return a->fn(a->arg, &r);
}

/* dhist_rows - the rows of a domain in a period */
int
dhist_rows(struct dhist *h, const char *policy_domain, long long begin,
    long long end, int (*fn)(void *, const struct dhist_row *), void *arg,
    char *err, size_t errlen)
{
	struct dhist_rows_arg a = {fn, arg};
	char b[24], e[24];
	const char *v[3] = {policy_domain, b, e};

	snprintf(b, sizeof(b), "%lld", begin);
	snprintf(e, sizeof(e), "%lld", end);
	if (!dhist_ready(h)) {
		snprintf(err, errlen, "%s: not connected", h->uri);
		return -1;
	}
	return dhist_exec(
	    h, dhist_select_sql, v, 3, dhist_row_cb, &a, err, errlen);
}

/* dhist_found - result callback: there is a row */
static int
dhist_found(void *arg, int nc, const char *const *v)
{
	(void)nc;
	(void)v;
	*(int *)arg = 1;
	return 0;
}

/* dhist_sent - already sent there? */
int
dhist_sent(struct dhist *h, const struct dhist_period *p,
    const char *destination, char *err, size_t errlen)
{
	char b[24];
	const char *v[3] = {p->policy_domain, b, destination};
	int found = 0;

	if (!dhist_ready(h)) {
		snprintf(err, errlen, "%s: not connected", h->uri);
		return -1;
	}
	snprintf(b, sizeof(b), "%lld", p->begin);
	if (dhist_exec(h,
		"SELECT 1 FROM dmarc_sent WHERE policy_domain = ? AND "
		"begin_t = ? AND destination = ?",
		v, 3, dhist_found, &found, err, errlen) == -1)
		return -1;
	return found;
}

/* dhist_mark_sent - remember one destination */
int
dhist_mark_sent(struct dhist *h, const struct dhist_period *p,
    const char *destination, const char *report_id, char *err, size_t errlen)
{
	char b[24], now[24];
	const char *v[5] = {p->policy_domain, b, destination, report_id, now};

	if (!dhist_ready(h)) {
		snprintf(err, errlen, "%s: not connected", h->uri);
		return -1;
	}
	snprintf(b, sizeof(b), "%lld", p->begin);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	return dhist_exec(h,
	    "INSERT INTO dmarc_sent (policy_domain, begin_t, destination, "
	    "report_id, sent_at) VALUES (?, ?, ?, ?, ?)",
	    v, 5, NULL, NULL, err, errlen);
}

/* dhist_mark_done - the period is finished */
int
dhist_mark_done(
    struct dhist *h, const struct dhist_period *p, char *err, size_t errlen)
{
	char b[24], now[24];
	const char *v[3] = {p->policy_domain, b, now};

	if (!dhist_ready(h)) {
		snprintf(err, errlen, "%s: not connected", h->uri);
		return -1;
	}
	snprintf(b, sizeof(b), "%lld", p->begin);
	snprintf(now, sizeof(now), "%lld", (long long)time(NULL));
	return dhist_exec(h,
	    "INSERT INTO dmarc_done (policy_domain, begin_t, done_at) "
	    "VALUES (?, ?, ?)",
	    v, 3, NULL, NULL, err, errlen);
}

/* dhist_prune - every row older than before: reported, or given up */
long long
dhist_prune(struct dhist *h, long long before, char *err, size_t errlen)
{
	char b[24];
	const char *v[1] = {b};

	snprintf(b, sizeof(b), "%lld", before);
	if (!dhist_ready(h)) {
		snprintf(err, errlen, "%s: not connected", h->uri);
		return -1;
	}
	if (dhist_exec(h, "DELETE FROM dmarc_eval WHERE t < ?", v, 1, NULL,
		NULL, err, errlen) == -1)
		return -1;
	return h->changes;
}

/* dhist_try_lock - one authgate-reports run at a time over a history:
 * PostgreSQL's session advisory lock, or a lock file beside SQLite's */
int
dhist_try_lock(struct dhist *h, char *err, size_t errlen)
{
	int got = 0;
	char path[4096];

	if (h->pg) {
		if (!dhist_ready(h)) {
			snprintf(err, errlen, "%s: not connected", h->uri);
			return -1;
		}
		if (dhist_exec(h,
			"SELECT 1 WHERE "
			"pg_try_advisory_lock(4702353480871379304)",
			NULL, 0, dhist_found, &got, err, errlen) == -1)
			return -1;
		return got;
	}
	snprintf(
	    path, sizeof(path), "%s.reports-lock", h->uri + strlen("sqlite:"));
	if ((h->lockfd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600)) ==
	    -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (flock(h->lockfd, LOCK_EX | LOCK_NB) == -1) {
		close(h->lockfd);
		h->lockfd = -1;
		return 0;
	}
	return 1;
}
