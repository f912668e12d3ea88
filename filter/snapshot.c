/*
 * snapshot.c - build, install, pin and release snapshots (snapshot.h).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>

#include "util/buf.h"
#include "util/xalloc.h"
#include "checks.h"
#include "config.h"
#include "dns.h"
#include "snapshot.h"

static pthread_mutex_t snap_lock = PTHREAD_MUTEX_INITIALIZER;
static struct snapshot *snap_current;
static atomic_ulong snap_generation;

/* snapshot_unload - undo the load hooks of the first n checks */
static void
snapshot_unload(struct snapshot *s, size_t n)
{
	while (n-- > 0)
		if (s->checks[n]->unload != NULL)
			s->checks[n]->unload(s);
}

/* snapshot_free - release everything a snapshot owns */
static void
snapshot_free(struct snapshot *s)
{
	size_t n = 0;

	while (s->checks[n] != NULL)
		n++;
	snapshot_unload(s, n);
	dns_unref(s->dns);
	config_free(s->cfg);
	free(s);
}

/* snapshot_build - resolver, then each check's long-lived data */
struct snapshot *
snapshot_build(struct config *cfg, const struct snapshot *prev,
    const struct check *const *checks, struct buf *err)
{
	struct snapshot *s = xcalloc(1, sizeof(*s));
	struct dns_conf dc;
	char why[512];
	size_t i;

	atomic_init(&s->refs, 1);
	s->cfg = cfg;
	s->checks = checks ? checks : checks_table;
	config_dns_conf(cfg, &dc);
	if (prev != NULL && prev->dns != NULL && dns_same_conf(prev->dns, &dc))
		s->dns = dns_ref(prev->dns);
	else if ((s->dns = dns_new(&dc, why, sizeof(why))) == NULL) {
		buf_addf(
		    err, "%s: %s\n", cfg->file[0] ? cfg->file : "config", why);
		config_free(cfg);
		free(s);
		return NULL;
	}
	for (i = 0; s->checks[i] != NULL; i++) {
		if (s->checks[i]->load != NULL &&
		    s->checks[i]->load(s, err) == -1) {
			snapshot_unload(s, i);
			dns_unref(s->dns);
			config_free(cfg);
			free(s);
			return NULL;
		}
	}
	s->generation = atomic_fetch_add(&snap_generation, 1) + 1;
	return s;
}

/* snapshot_install - make current */
void
snapshot_install(struct snapshot *s)
{
	struct snapshot *old;

	pthread_mutex_lock(&snap_lock);
	old = snap_current;
	snap_current = s;
	pthread_mutex_unlock(&snap_lock);
	snapshot_release(old);
}

/* snapshot_acquire - pin the current one */
struct snapshot *
snapshot_acquire(void)
{
	struct snapshot *s;

	pthread_mutex_lock(&snap_lock);
	if ((s = snap_current) != NULL)
		atomic_fetch_add(&s->refs, 1);
	pthread_mutex_unlock(&snap_lock);
	return s;
}

/* snapshot_release - unpin */
void
snapshot_release(struct snapshot *s)
{
	if (s != NULL && atomic_fetch_sub(&s->refs, 1) == 1)
		snapshot_free(s);
}

/* snapshot_shutdown - drop the current snapshot */
void
snapshot_shutdown(void)
{
	snapshot_install(NULL);
}
