/*
 * keytool.h - authgate-keys: the parsed command line and the commands.
 *
 * main.c parses argv into struct keytool_opts and runs generate or show;
 * check.c runs check. Each command prints its result on stdout and each
 * problem as one line on stderr, and returns the exit status.
 */
#ifndef AG_KEYTOOL_H
#define AG_KEYTOOL_H

#include <stdbool.h>
#include <stddef.h>

struct keyfile;

#define AG_KEYTOOL_EX_OK    0 /* done; check: the key matches DNS */
#define AG_KEYTOOL_EX_FAIL  1 /* the command ran and failed */
#define AG_KEYTOOL_EX_USAGE 2 /* bad command line or configuration */

struct keytool_opts {
	const char *cmd;
	const char *domain; /* as given, without a final dot */
	const char *selector;
	const char *type;	/* generate --type, or NULL */
	const char *bits;	/* generate --bits, or NULL */
	const char *dir;	/* generate --dir, or NULL */
	const char *key;	/* check, show: --key */
	const char *conf;	/* check: -c */
	const char **overrides; /* check: -o */
	size_t noverrides;
	bool force;
	char *domain_copy; /* domain without its final dot, owned */
};

/* keytool_err - one line on stderr: "authgate-keys: <message>" */
void keytool_err(const char *, ...) __attribute__((format(printf, 1, 2)));

/* keytool_owner - "<selector>._domainkey.<domain>" (xmalloc'd) */
char *keytool_owner(const struct keytool_opts *);

/*
 * keytool_load - keyfile_load() for --key, its warnings and error printed
 * on stderr; others_fatal and min_bits as there. -1: the key is unusable.
 */
int keytool_load(
    const char *path, bool others_fatal, int min_bits, struct keyfile *);

/* keytool_check - `authgate-keys check`; returns the exit status */
int keytool_check(const struct keytool_opts *);

#endif
