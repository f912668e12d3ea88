/*
 * metrics.h - counters and latency histograms of the daemon, served in
 * the Prometheus text format (version 0.0.4) over HTTP by libmicrohttpd
 * when metrics_listen is set.
 *
 * The message path only adds to counters (atomics, plus one short mutex
 * for the per-rule and per-key tables); rendering reads the current
 * snapshot for the resolver's and the DMARC history's own counters.
 * Counters live for the process: a reload keeps them (a resolver rebuilt
 * by a reload starts its own counters from zero, as Prometheus expects of
 * a counter reset).
 */
#ifndef AG_METRICS_H
#define AG_METRICS_H

#include <stdbool.h>

struct buf;

/* The check that counts each message once its verdict is decided (the
 * last of the table, so it sees every other check's results). */
extern const struct check metrics_check;

/* metrics_reload - count a reload and its outcome. */
void metrics_reload(bool ok);

/* metrics_render - the whole exposition text into out. */
void metrics_render(struct buf *out);

/*
 * metrics_start - serve GET /metrics on listen ("127.0.0.1:9894",
 * "[::1]:9894"). -1 with a reason in err when the address is bad or
 * cannot be bound.
 */
int metrics_start(const char *listen, char *err, size_t errlen);

/* metrics_stop - stop serving (at exit). */
void metrics_stop(void);

#endif
