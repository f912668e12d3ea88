/*
 * log.c - the one logging path (see log.h).
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#include "util/str.h"
#include "log.h"

static atomic_int log_sink = AG_LOG_STDERR;
static atomic_int log_max = LOG_INFO;
static const char *log_ident = "authgate";

static const struct {
	const char *name;
	int value;
} log_levels[] =
    {
	{"err", LOG_ERR},
	{"error", LOG_ERR},
	{"warning", LOG_WARNING},
	{"notice", LOG_NOTICE},
	{"info", LOG_INFO},
	{"debug", LOG_DEBUG},
},
  log_facilities[] = {
      {"mail", LOG_MAIL},
      {"daemon", LOG_DAEMON},
      {"user", LOG_USER},
      {"local0", LOG_LOCAL0},
      {"local1", LOG_LOCAL1},
      {"local2", LOG_LOCAL2},
      {"local3", LOG_LOCAL3},
      {"local4", LOG_LOCAL4},
      {"local5", LOG_LOCAL5},
      {"local6", LOG_LOCAL6},
      {"local7", LOG_LOCAL7},
};

/* log_open - select the sink */
void
log_open(const char *ident, enum ag_log_sink sink, int facility)
{
	log_ident = ident;
	if (sink == AG_LOG_SYSLOG)
		openlog(ident, LOG_PID | LOG_NDELAY, facility);
	atomic_store(&log_sink, sink);
}

/* log_set_level - threshold */
void
log_set_level(int level)
{
	atomic_store(&log_max, level);
}

/* log_level_parse - level name to number */
int
log_level_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(log_levels) / sizeof(log_levels[0]); i++)
		if (str_casecmp(s, log_levels[i].name) == 0)
			return log_levels[i].value;
	return -1;
}

/* log_facility_parse - facility name to number */
int
log_facility_parse(const char *s)
{
	size_t i;

	for (i = 0; i < sizeof(log_facilities) / sizeof(log_facilities[0]); i++)
		if (str_casecmp(s, log_facilities[i].name) == 0)
			return log_facilities[i].value;
	return -1;
}

/* log_enabled - level check */
bool
log_enabled(int level)
{
	return level <= atomic_load(&log_max);
}

/* log_level_name - label for stderr lines */
static const char *
log_level_name(int level)
{
	switch (level) {
	case LOG_EMERG:
	case LOG_ALERT:
	case LOG_CRIT:
		return "fatal: ";
	case LOG_ERR:
		return "error: ";
	case LOG_WARNING:
		return "warning: ";
	case LOG_DEBUG:
		return "debug: ";
	default:
		return "";
	}
}

/* log_vwrite - format and emit one line */
void
log_vwrite(int level, const char *qid, const char *fmt, va_list ap)
{
	char line[4096];
	int n = 0;

	if (!log_enabled(level))
		return;
	if (qid != NULL)
		n = snprintf(
		    line, sizeof(line), "%s: ", *qid ? qid : "NOQUEUE");
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	vsnprintf(line + n, sizeof(line) - (size_t)n, fmt, ap);
	if (atomic_load(&log_sink) == AG_LOG_SYSLOG) {
		syslog(level, "%s%s",
		    level <= LOG_WARNING ? log_level_name(level) : "", line);
	} else {
		struct timespec ts;
		struct tm tm;
		char stamp[32];

		clock_gettime(CLOCK_REALTIME, &ts);
		localtime_r(&ts.tv_sec, &tm);
		strftime(stamp, sizeof(stamp), "%Y-%m-%dT%H:%M:%S", &tm);
		/* One fprintf per line: stdio locks the stream per call. */
		fprintf(stderr, "%s.%03ld %s[%ld]: %s%s\n", stamp,
		    ts.tv_nsec / 1000000, log_ident, (long)getpid(),
		    log_level_name(level), line);
	}
}

/* log_write - one line with an optional queue id */
void
log_write(int level, const char *qid, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vwrite(level, qid, fmt, ap);
	va_end(ap);
}

#define AG_LOG_FN(fn, lvl)                      \
	void fn(const char *fmt, ...)           \
	{                                       \
		va_list ap;                     \
		va_start(ap, fmt);              \
		log_vwrite(lvl, NULL, fmt, ap); \
		va_end(ap);                     \
	}

AG_LOG_FN(log_info, LOG_INFO)
AG_LOG_FN(log_warn, LOG_WARNING)
AG_LOG_FN(log_err, LOG_ERR)
AG_LOG_FN(log_debug, LOG_DEBUG)
