/*
 * main.c - argv, config load, socket, privilege drop, signals, smfi_main.
 *
 * fatal paths live only here and in config.c, and only before smfi_main.
 *
 * Signals: libmilter runs its own sigwait() thread for SIGHUP, SIGTERM and
 * SIGINT, and it stops the milter on SIGHUP. smfi_main therefore runs in a
 * thread of its own, and the main thread keeps those signals unblocked,
 * with SA_NODEFER handlers that only write to a pipe. Linux delivers a
 * process-directed signal to the thread group leader when that thread
 * accepts it, so ours are always chosen over libmilter's sigwait(); the
 * main thread then reloads (SIGHUP, SIGUSR1) or drains and exits (SIGTERM,
 * SIGINT). Every other thread has the signals blocked.
 */
#include <sys/types.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libmilter/mfapi.h>

#include "autoconf.h" /* PACKAGE_VERSION */

#include "util/arena.h"
#include "util/buf.h"
#include "util/xalloc.h"
#include "cli.h"
#include "config.h"
#include "metrics.h"
#include "log.h"
#include "milter.h"
#include "snapshot.h"

#define AG_EX_USAGE 64
#define AG_EX_OSERR 71

struct main_opts {
	bool foreground, check_only, print;
	const char *conf;
	const char **overrides;
	size_t noverrides;
};

static void drain(long long);

static struct main_opts opts;
static char *pid_path;
static int status_fd = -1; /* to the waiting parent, while daemonizing */
static int listen_fds[8];  /* libmilter's listening socket(s) */
static int nlisten;
static atomic_bool stopping;
static char *unix_path; /* a unix milter socket, to remove at exit */
static int sig_pipe[2]; /* signal handlers -> main loop */

/* usage - the synopsis */
static void
usage(FILE *fp)
{
	fprintf(fp,
	    "usage: authgate [-f] [-n] [-p] [-c FILE] [-o name=value]...\n"
	    "       authgate check [-c FILE] [-o name=value]... --client-ip "
	    "IP [...] [FILE]\n"
	    "  -f  stay in the foreground, log to stderr\n"
	    "  -n  check the configuration (and keys, tables) and exit 0/1\n"
	    "  -p  print the effective configuration and exit\n"
	    "  -c  configuration file (default %s)\n"
	    "  -o  override one setting (repeatable)\n"
	    "  -V  print the version\n",
	    config_default_path());
}

/* fatal - report a startup problem and exit */
static void __attribute__((noreturn, format(printf, 2, 3)))
fatal(int code, const char *fmt, ...)
{
	va_list ap;
	char line[1024];

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	log_err("%s", line);
	if (status_fd != -1 && write(status_fd, line, strlen(line)) == -1)
		log_err("cannot report to the parent");
	exit(code);
}

/* load_snapshot - config + snapshot; NULL and err on failure */
static struct snapshot *
load_snapshot(const struct snapshot *prev, struct buf *err)
{
	struct config *cfg;

	if ((cfg = config_load(
		 opts.conf, opts.overrides, opts.noverrides, err)) == NULL)
		return NULL;
	return snapshot_build(cfg, prev, NULL, err);
}

/* log_lines - log each line of a multi-line error text */
static void
log_lines(int level, const char *prefix, const char *text)
{
	const char *p = text, *nl;

	while (*p) {
		nl = strchr(p, '\n');
		log_write(level, NULL, "%s%.*s", prefix,
		    (int)(nl ? nl - p : (long)strlen(p)), p);
		p = nl ? nl + 1 : p + strlen(p);
	}
}

/* reload - SIGHUP: build a new snapshot, keep the old one on error */
static void
reload(void)
{
	struct snapshot *old = snapshot_acquire(), *s;
	struct buf err = BUF_INIT;

	if ((s = load_snapshot(old, &err)) == NULL) {
		metrics_reload(false);
		log_lines(LOG_ERR,
		    "reload failed, old configuration stays: ", err.data);
	} else {
		metrics_reload(true);
		if (old != NULL &&
		    (strcmp(s->cfg->milter_socket, old->cfg->milter_socket) ||
			strcmp(s->cfg->user, old->cfg->user) ||
			strcmp(
			    s->cfg->metrics_listen, old->cfg->metrics_listen)))
			log_warn("milter_socket, user and metrics_listen take "
				 "effect only after a restart");
		log_set_level(s->cfg->log_level);
		snapshot_install(s);
		log_info("configuration reloaded from %s (generation %lu)",
		    s->cfg->file[0] ? s->cfg->file : "built-in defaults",
		    s->generation);
	}
	snapshot_release(old);
	buf_release(&err);
}

/* finish - drain open connections, clean up and exit (once) */
static void __attribute__((noreturn)) finish(void)
{
	static pthread_mutex_t once = PTHREAD_MUTEX_INITIALIZER;
	struct snapshot *s;

	atomic_store(&stopping, true);
	pthread_mutex_lock(&once); /* never unlocked: one thread exits */
	/*
	 * Stop accepting, without stopping libmilter: its worker pool stops
	 * serving every open session as soon as smfi_stop() (or a failing
	 * listener) sets its stop flag, so that cannot drain anything.
	 * Instead the listening descriptor becomes the read end of a pipe
	 * that never turns readable: the socket itself is closed (new
	 * connections are refused), libmilter's listener idles, and open
	 * sessions carry on until they end or drain_timeout passes.
	 */
	for (int i = 0; i < nlisten; i++) {
		int p[2];

		if (pipe(p) == -1 || dup2(p[0], listen_fds[i]) == -1)
			log_warn("cannot close the listening socket: %s",
			    strerror(errno));
		close(p[0]); /* p[1] stays open on purpose */
	}
	if (unix_path != NULL && unlink(unix_path) == -1 && errno != ENOENT)
		log_warn("cannot remove %s: %s", unix_path, strerror(errno));
	s = snapshot_acquire();
	drain(s ? s->cfg->drain_timeout_ms : 0);
	snapshot_release(s);
	snapshot_shutdown();
	if (pid_path != NULL && unlink(pid_path) == -1 && errno != ENOENT)
		log_warn("cannot remove %s: %s", pid_path, strerror(errno));
	log_info("stopped");
	exit(0);
}

/* on_signal - handler: hand the signal to the main loop */
static void
on_signal(int sig)
{
	char c = (char)sig;
	int saved = errno;

	if (write(sig_pipe[1], &c, 1) == -1) {
		/* the pipe is full: signals are already waiting */
	}
	errno = saved;
}

/* signal_loop - the main thread: act on signals, forever */
static void __attribute__((noreturn)) signal_loop(const sigset_t *set)
{
	struct sigaction sa;
	char c;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	sa.sa_flags =
	    SA_RESTART | SA_NODEFER; /* never blocked, even mid-handler */
	sigemptyset(&sa.sa_mask);
	sigaction(SIGHUP, &sa, NULL);
	sigaction(SIGUSR1, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	pthread_sigmask(SIG_UNBLOCK, set, NULL);
	for (;;) {
		ssize_t n = read(sig_pipe[0], &c, 1);

		if (n != 1)
			continue; /* EINTR */
		if (c == SIGHUP || c == SIGUSR1) {
			reload();
			continue;
		}
		log_info("%s: stopping, draining %d connection(s)",
		    c == SIGTERM ? "SIGTERM" : "SIGINT", milter_active());
		finish();
	}
}

/* milter_thread - libmilter's main loop, off the main thread */
static void *
milter_thread(void *arg)
{
	(void)arg;
	if (smfi_main() != MI_SUCCESS && !atomic_load(&stopping))
		log_err("smfi_main failed");
	/* libmilter stopped by itself (its own signal thread, or a failure) */
	finish();
}

/* nodelay_listeners - TCP_NODELAY on libmilter's listening socket */
static void
nodelay_listeners(void)
{
	int fd, one = 1, acc;
	socklen_t len;
	struct sockaddr_storage ss;

	/*
	 * libmilter writes each end-of-message reply in its own send();
	 * with Nagle on, the MTA's delayed ACK holds the next one ~40 ms.
	 * Linux copies TCP_NODELAY from a listener to accepted sockets.
	 */
	for (fd = 0; fd < 1024; fd++) {
		len = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) ==
			-1 ||
		    acc == 0)
			continue;
		len = sizeof(ss);
		if (getsockname(fd, (struct sockaddr *)&ss, &len) == -1 ||
		    (ss.ss_family != AF_INET && ss.ss_family != AF_INET6))
			continue;
		if (setsockopt(
			fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) == -1)
			log_warn("TCP_NODELAY: %s", strerror(errno));
	}
}

/* find_listeners - remember libmilter's listening sockets */
static void
find_listeners(void)
{
	int fd, acc;
	socklen_t len;

	for (fd = 0; fd < 1024 && nlisten < 8; fd++) {
		len = sizeof(acc);
		if (getsockopt(fd, SOL_SOCKET, SO_ACCEPTCONN, &acc, &len) ==
			0 &&
		    acc != 0)
			listen_fds[nlisten++] = fd;
	}
}

/* unix_socket_owner - let the service user own a unix socket */
static void
unix_socket_owner(const char *spec, const struct passwd *pw)
{
	const char *path;

	if (strncmp(spec, "unix:", 5) != 0 && strncmp(spec, "local:", 6) != 0)
		return;
	path = strchr(spec, ':') + 1;
	unix_path = xstrdup(path);
	if (pw != NULL && chown(path, pw->pw_uid, pw->pw_gid) == -1)
		log_warn("chown %s: %s", path, strerror(errno));
	if (chmod(path, 0660) == -1)
		log_warn("chmod %s: %s", path, strerror(errno));
}

/* pid_file_write - record our pid; its directory is created for user */
static void
pid_file_write(const char *path, const struct passwd *pw)
{
	char *dir = xstrdup(path), *slash, line[32];
	int fd, n;

	if ((slash = strrchr(dir, '/')) != NULL && slash != dir) {
		*slash = '\0';
		if (mkdir(dir, 0755) == 0 && pw != NULL &&
		    chown(dir, pw->pw_uid, pw->pw_gid) == -1)
			log_warn("chown %s: %s", dir, strerror(errno));
	}
	free(dir);
	if ((fd = open(
		 path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0644)) == -1)
		fatal(AG_EX_CONFIG, "pid_file %s: %s", path, strerror(errno));
	n = snprintf(line, sizeof(line), "%ld\n", (long)getpid());
	if (write(fd, line, (size_t)n) != n)
		fatal(AG_EX_OSERR, "pid_file %s: %s", path, strerror(errno));
	close(fd);
	pid_path = xstrdup(path);
}

/* drop_privileges - become user for good */
static void
drop_privileges(const struct passwd *pw)
{
	if (initgroups(pw->pw_name, pw->pw_gid) == -1 ||
	    setgid(pw->pw_gid) == -1 || setuid(pw->pw_uid) == -1)
		fatal(AG_EX_OSERR, "cannot become user %s: %s", pw->pw_name,
		    strerror(errno));
	if (setuid(0) != -1)
		fatal(AG_EX_OSERR, "privileges could be regained: refusing");
}

/* daemonize - detach; the parent waits for the child's "ready" */
static int
daemonize(void)
{
	int p[2], fd;
	pid_t pid;
	char buf[4096];
	ssize_t n;

	if (pipe(p) == -1)
		fatal(AG_EX_OSERR, "pipe: %s", strerror(errno));
	if ((pid = fork()) == -1)
		fatal(AG_EX_OSERR, "fork: %s", strerror(errno));
	if (pid > 0) {
		/* Parent: relay the child's startup errors, then leave. */
		close(p[1]);
		n = read(p[0], buf, sizeof(buf) - 1);
		if (n > 0) {
			buf[n] = '\0';
			if (strcmp(buf, "ok") == 0)
				_exit(0);
			fprintf(stderr, "authgate: %s%s", buf,
			    buf[n - 1] == '\n' ? "" : "\n");
		}
		_exit(AG_EX_CONFIG);
	}
	close(p[0]);
	setsid();
	if ((fd = open("/dev/null", O_RDWR)) != -1) {
		dup2(fd, 0);
		dup2(fd, 1);
		dup2(fd, 2);
		if (fd > 2)
			close(fd);
	}
	return p[1];
}

/* drain - after smfi_main: let open connections finish */
static void
drain(long long timeout_ms)
{
	struct timespec ts = {0, 100 * 1000000};
	long long waited = 0;

	while (milter_active() > 0 && waited < timeout_ms) {
		nanosleep(&ts, NULL);
		waited += 100;
	}
	if (milter_active() > 0)
		log_warn("drain_timeout: exiting with %d connection(s) open",
		    milter_active());
}

/* parse_args - global options; returns the index of "check" or 0 */
static int
parse_args(int argc, char **argv)
{
	int ch, i;

	/* "check" anywhere (not as an option's value) selects the CLI */
	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "check") == 0)
			return i;
		if ((strcmp(argv[i], "-c") == 0 ||
			strcmp(argv[i], "-o") == 0) &&
		    i + 1 < argc)
			i++;
	}
	while ((ch = getopt(argc, argv, "fnpc:o:Vh")) != -1) {
		switch (ch) {
		case 'f':
			opts.foreground = true;
			break;
		case 'n':
			opts.check_only = true;
			break;
		case 'p':
			opts.print = true;
			break;
		case 'c':
			opts.conf = optarg;
			break;
		case 'o':
			opts.overrides = xreallocarray(opts.overrides,
			    opts.noverrides + 1, sizeof(char *));
			opts.overrides[opts.noverrides++] = optarg;
			break;
		case 'V':
			printf("authgate %s\n", PACKAGE_VERSION);
			exit(0);
		case 'h':
			usage(stdout);
			exit(0);
		default:
			usage(stderr);
			exit(AG_EX_USAGE);
		}
	}
	if (optind < argc) {
		fprintf(stderr, "authgate: unexpected argument '%s'\n",
		    argv[optind]);
		usage(stderr);
		exit(AG_EX_USAGE);
	}
	return 0;
}

/* test_hooks - fault injection for the test suite only */
static void
test_hooks(void)
{
	const char *v = getenv("AUTHGATE_TEST_ARENA_FAIL");

	if (v != NULL && *v != '\0')
		arena_test_fail_after(strtoul(v, NULL, 10));
}

/*
 * raise_nofile - every MTA connection holds a descriptor: allow as many
 * as the hard limit (systemd's soft default of 1024 ran out at about
 * 1000 connections, and libevent in libunbound's thread then exited the
 * daemon). libmilter polls, so descriptors past FD_SETSIZE are fine.
 */
static void
raise_nofile(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl) == -1 || rl.rlim_cur >= rl.rlim_max)
		return;
	rl.rlim_cur = rl.rlim_max;
	if (setrlimit(RLIMIT_NOFILE, &rl) == -1)
		log_warn("cannot raise the open file limit to %llu: %s",
		    (unsigned long long)rl.rlim_max, strerror(errno));
}

/*
 * conf_absolute - the daemon's -c as an absolute path: it works in "/"
 * (it holds no directory of the admin's busy), and every reload must
 * read the file it started with. Symbolic links are left to resolve at
 * each reload, as for an absolute path.
 */
static void
conf_absolute(void)
{
	char cwd[4096];
	struct buf b = BUF_INIT;

	if (opts.conf == NULL || opts.conf[0] == '/')
		return;
	if (getcwd(cwd, sizeof(cwd)) == NULL)
		fatal(AG_EX_CONFIG, "%s: cannot make it an absolute path: %s",
		    opts.conf, strerror(errno));
	buf_addf(&b, "%s/%s", strcmp(cwd, "/") == 0 ? "" : cwd, opts.conf);
	opts.conf = buf_detach(&b, NULL); /* kept for the daemon's life */
}

/* run - the daemon proper; does not return */
static void __attribute__((noreturn)) run(struct config *cfg)
{
	struct passwd *pw = NULL;
	struct snapshot *s;
	struct buf err = BUF_INIT;
	sigset_t set;
	pthread_t mthr;

	if (chdir("/") == -1)
		fatal(AG_EX_OSERR, "chdir /: %s", strerror(errno));
	if (getuid() == 0 && (pw = getpwnam(cfg->user)) == NULL)
		fatal(AG_EX_CONFIG,
		    "user '%s' does not exist: create it (useradd --system "
		    "--no-create-home --shell /usr/sbin/nologin %s) or set "
		    "user = ... in %s",
		    cfg->user, cfg->user,
		    cfg->file[0] ? cfg->file : config_default_path());
	raise_nofile();
	if (milter_register() == -1)
		fatal(AG_EX_OSERR, "smfi_register failed");
	if (smfi_setconn(cfg->milter_socket) != MI_SUCCESS ||
	    smfi_opensocket(true) != MI_SUCCESS)
		fatal(AG_EX_OSERR, "cannot listen on %s (in use? permission?)",
		    cfg->milter_socket);
	find_listeners();
	nodelay_listeners();
	unix_socket_owner(cfg->milter_socket, pw);

	if (!opts.foreground) {
		log_open("authgate", AG_LOG_SYSLOG, cfg->syslog_facility);
		status_fd = daemonize();
	}
	if (cfg->pid_file[0] != '\0')
		pid_file_write(cfg->pid_file, pw);
	if (pw != NULL)
		drop_privileges(pw);

	/* Block the signals before any thread exists (resolver included). */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	{
		char why[256];

		if (metrics_start(cfg->metrics_listen, why, sizeof(why)) == -1)
			fatal(AG_EX_OSERR, "%s", why);
	}

	/* Load keys and tables as the service user: what reload will see. */
	if ((s = load_snapshot(NULL, &err)) == NULL) {
		if (status_fd != -1 &&
		    write(status_fd, err.data, err.len) != (ssize_t)err.len)
			log_err("cannot report to the parent");
		log_lines(LOG_ERR, "", err.data);
		exit(AG_EX_CONFIG);
	}
	buf_release(&err);
	snapshot_install(s);
	if (pipe(sig_pipe) == -1)
		fatal(AG_EX_OSERR, "pipe: %s", strerror(errno));
	fcntl(sig_pipe[1], F_SETFL, O_NONBLOCK);
	log_info("authgate %s listening on %s as %s, configuration %s",
	    PACKAGE_VERSION, cfg->milter_socket,
	    pw ? pw->pw_name : "the invoking user",
	    cfg->file[0] ? cfg->file : "built-in defaults");
	if (pthread_create(&mthr, NULL, milter_thread, NULL) != 0)
		fatal(AG_EX_OSERR, "cannot start the milter thread");
	if (status_fd != -1) {
		if (write(status_fd, "ok", 2) != 2)
			log_warn("cannot report readiness to the parent");
		close(status_fd);
		status_fd = -1;
	}
	signal_loop(&set);
}

int
main(int argc, char **argv)
{
	struct buf err = BUF_INIT;
	struct config *cfg;
	struct snapshot *s;
	int ci;

	log_open("authgate", AG_LOG_STDERR, LOG_MAIL);
	test_hooks();
	if ((ci = parse_args(argc, argv)) > 0) {
		/* argv without the word "check" */
		memmove(argv + ci, argv + ci + 1,
		    (size_t)(argc - ci) * sizeof(char *));
		return cli_check(argc - 1, argv);
	}
	if (!opts.check_only && !opts.print)
		conf_absolute();
	if ((cfg = config_load(
		 opts.conf, opts.overrides, opts.noverrides, &err)) == NULL) {
		fputs(err.data, stderr);
		buf_release(&err);
		free(opts.overrides);
		return opts.check_only ? 1 : AG_EX_CONFIG;
	}
	log_set_level(cfg->log_level);
	if (opts.print) {
		config_print(cfg, stdout);
		config_free(cfg);
		free(opts.overrides);
		return 0;
	}
	if (opts.check_only) {
		/* Everything a start would load: resolver, tables, keys. */
		if ((s = snapshot_build(cfg, NULL, NULL, &err)) == NULL) {
			fputs(err.data, stderr);
			buf_release(&err);
			free(opts.overrides);
			return 1;
		}
		printf("authgate: configuration OK (%s)\n",
		    s->cfg->file[0] ? s->cfg->file : "built-in defaults");
		snapshot_release(s);
		free(opts.overrides);
		return 0;
	}
	run(cfg);
}
