/*
 * log.h - every log line of the daemon and the CLI goes through here.
 *
 * Lines go to stderr (foreground, CLI) or syslog. log_write() prefixes the
 * queue id (or NOQUEUE) as Postfix does; msgctx.h wraps it as log_msg(m,..)
 * so call sites never format the id themselves. Levels are syslog's; debug
 * lines are dropped unless log_level = debug. Network input must reach a
 * format only through str_safe()/log_safe(). Thread-safe.
 */
#ifndef AG_LOG_H
#define AG_LOG_H

#include <stdarg.h>
#include <stdbool.h>
#include <syslog.h>

enum ag_log_sink {
	AG_LOG_STDERR,
	AG_LOG_SYSLOG,
};

/* log_open - choose the sink; facility is a syslog LOG_* facility. */
void log_open(const char *ident, enum ag_log_sink, int facility);

/* log_set_level - lines above this syslog level are dropped. */
void log_set_level(int level);

/* log_level_parse, log_facility_parse - names to syslog numbers; -1 if bad */
int log_level_parse(const char *);
int log_facility_parse(const char *);

/* log_enabled - would a line at this level be written? */
bool log_enabled(int level);

/* log_write - one line; qid NULL means no id (not even NOQUEUE). */
void log_write(int level, const char *qid, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(int level, const char *qid, const char *fmt, va_list)
    __attribute__((format(printf, 3, 0)));

/* log_info, log_warn, log_err - lines that belong to no message. */
void log_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_warn(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void log_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
